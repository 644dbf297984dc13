package rollback

import (
	"context"
	"path/filepath"
	"strings"

	"fmt"

	"github.com/org/deploy-kit/internal/action"
	"github.com/org/deploy-kit/internal/deploy"
	"github.com/org/deploy-kit/internal/schema"
)

// schemaStep refuses to roll the code back under a database whose schema is ahead
// of it: the target's newest migration must be at least the database's version.
type schemaStep struct {
	migrations string
	url        string
	allowAhead bool
}

func (schemaStep) String() string { return "schema" }

func (st schemaStep) Run(_ context.Context, s *deploy.State) error {
	if st.url == "" || st.migrations == "" {
		return deploy.Skip("set database-url and migrations-path to check the database schema against the target")
	}
	db, err := schema.DatabaseVersion(st.url)
	if err != nil {
		return action.Failedf("schema check: %v", err)
	}
	if db.Dirty {
		return action.Failedf("the database is dirty at migration %d: a migration failed half-way. Repair the schema, then record the version that is really applied (migrate force N) before rolling back", db.Version)
	}
	if db.None {
		s.Did("the database has no migrations applied")
		return nil
	}
	targetList, err := schema.List(filepath.Join(s.Git.Dir, st.migrations))
	if err != nil {
		return action.Failedf("%w", err)
	}
	newest := schema.Newest(targetList)
	if db.Version <= newest {
		s.Did("database at migration %d; %s knows migrations up to %d", db.Version, s.Version, newest)
		return nil
	}
	// Name the migrations that are ahead from the current checkout, which has them;
	// when it cannot be read, the range below names them by number.
	current, _ := schema.List(filepath.Join(s.Workspace, st.migrations))
	var ahead []string
	for _, m := range schema.Between(current, newest, db.Version) {
		ahead = append(ahead, m.String())
	}
	if len(ahead) == 0 {
		ahead = append(ahead, fmt.Sprintf("%d to %d", newest+1, db.Version))
	}
	msg := fmt.Sprintf("the database is at migration %d, ahead of %s, whose newest migration is %d: migrations %s would stay applied under code that does not know them",
		db.Version, s.Version, newest, strings.Join(ahead, ", "))
	if !st.allowAhead {
		return action.Failedf("%s. Migrate the database down to %d first (migrate -path %s -database <url> goto %d), or set allow-schema-ahead: true if those migrations are backward compatible", msg, newest, st.migrations, newest)
	}
	s.A.Warningf("%s (allow-schema-ahead: true)", msg)
	s.Did("WARNING: %s; going ahead because allow-schema-ahead is true", msg)
	return nil
}
