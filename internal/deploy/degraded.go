package deploy

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/org/deploy-kit/internal/backup"
	"github.com/org/deploy-kit/internal/command"
	"github.com/org/deploy-kit/internal/schema"
	"github.com/org/deploy-kit/internal/steps"
)

// A failed deploy that changed the database says so (docs/actions/deploy.md, step
// rollback): a switch back restores containers, not a schema. After a failure
// that reached the stack, the kit compares golang-migrate's state with what it
// was before apply, and checks the release it switched back to; when the schema
// moved or that release fails, the outcome is "failed, production degraded",
// with the command that restores the pre-deploy backup — never a clean
// "rolled back".

// schemas reads golang-migrate's state, database by database, where the deploy
// can read it: database-url, else the pre-deploy backup's container (or URL).
// nil when there is nowhere to read it.
func (s *State) schemas(ctx context.Context) (map[string]string, error) {
	if url := s.Opts.DatabaseURL; url != "" {
		st, err := schema.DatabaseVersion(url)
		switch {
		case err != nil:
			return nil, err
		case st.None:
			return map[string]string{"database-url": "none"}, nil
		case st.Dirty:
			return map[string]string{"database-url": fmt.Sprintf("%d (dirty)", st.Version)}, nil
		}
		return map[string]string{"database-url": fmt.Sprint(st.Version)}, nil
	}
	if !s.Opts.Backup.Enabled || (s.Opts.Backup.Container == "" && s.Opts.Backup.DatabaseURL == "") {
		return nil, nil
	}
	t, err := backup.NewLiveDB(s.A, s.Opts.Backup.options("schema"))
	if err != nil {
		return nil, err
	}
	defer t.Close()
	return t.Schemas(ctx)
}

// schemaText is a schemas map as one line: "db 3 (dirty), other 7".
func schemaText(m map[string]string) string {
	if len(m) == 0 {
		return "no schema_migrations"
	}
	var parts []string
	for _, db := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, db+" at "+m[db])
	}
	return strings.Join(parts, ", ")
}

// checkDegraded runs after a failure that reached the stack: did the database
// move, and does what serves now pass its checks?
func (s *State) checkDegraded(ctx context.Context) {
	var why []string
	if s.schemaBefore != nil {
		after, err := s.schemas(ctx)
		switch {
		case err != nil:
			s.A.Warningf("reading the database's migration state after the failure: %v", err)
		case !maps.Equal(after, s.schemaBefore):
			why = append(why, fmt.Sprintf("the database moved while %s ran: before %s, now %s", orUnknown(s.Version), schemaText(s.schemaBefore), schemaText(after)))
		}
	}
	if s.Out.RollbackErr != nil {
		why = append(why, fmt.Sprintf("%s does not pass its checks again: %v", s.rollbackVersion(), s.Out.RollbackErr))
	} else if s.Strategy.OldServing() {
		// The old containers never stopped; after a rollback the rollback step
		// verified them. What serves now must pass the checks either way.
		if err := s.verify(ctx); err != nil && !steps.IsSkip(err) {
			why = append(why, fmt.Sprintf("what serves now (%s) fails its checks: %v", s.rollbackVersion(), err))
		}
	}
	if len(why) == 0 {
		return
	}
	s.Out.Degraded = strings.Join(why, "; ")
	s.Out.RolledBack = false
	s.Out.HandOff += "\n#### Production is degraded\n\n- " + strings.Join(why, "\n- ") + "\n- " + s.restoreAdvice() + "\n"
}

// restoreAdvice is how to put the database back as it was before the deploy.
func (s *State) restoreAdvice() string {
	if s.Backup.Path == "" {
		return "No pre-deploy backup was taken (backup: true takes one): restore the newest backup from before this deploy, with the restore action."
	}
	b := s.Opts.Backup
	// dir: the safety backup of what is there now goes beside the pre-deploy ones.
	argv := []string{"deploykit", "restore", "--confirm", "RESTORE", "--file", s.Backup.Kept, "--dir", b.Dir, "--engine", b.Engine}
	secrets := "" // given from the environment, never written out
	if s.Remote != nil {
		// The same restore from a runner elsewhere; on the host, without these.
		argv = append(argv, "--docker-host", s.Opts.Remote.Host)
		secrets += ` --ssh-key "$DEPLOY_SSH_KEY" --ssh-known-hosts "$DEPLOY_KNOWN_HOSTS"`
	}
	switch {
	case b.Container != "":
		argv = append(argv, "--container", b.Container)
	case b.DatabaseURL != "":
		secrets += ` --database-url "$DATABASE_URL"`
	case b.SQLitePath != "":
		argv = append(argv, "--sqlite-path", b.SQLitePath)
	}
	if b.DBPassword != "" {
		secrets += ` --db-password "$DB_PASSWORD"`
	}
	var app []string // every service that ran, but the database
	db := dbService(s.Project, b.Container)
	for _, name := range s.Snapshot.Names() {
		if name != db {
			app = append(app, name)
		}
	}
	argv = append(argv, "--project-name", s.Compose.Name)
	if len(app) > 0 {
		argv = append(argv, "--stop-services", strings.Join(app, "\n"))
	}
	return fmt.Sprintf("Put the database back as it was before the deploy from the pre-deploy backup (the restore action, or on the host):\n\n```sh\n%s%s\n```\n", command.Join(argv), secrets)
}
