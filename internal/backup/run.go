package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/org/deploy-kit/internal/action"
	"github.com/org/deploy-kit/internal/docker"
	"github.com/org/deploy-kit/internal/lock"
	"github.com/org/deploy-kit/internal/notify"
	"github.com/org/deploy-kit/internal/remote"
	"github.com/org/deploy-kit/internal/steps"
)

// Pipeline is the backup, top to bottom (ARCHITECTURE.md, "Each action's steps"). Nothing gets the final name
// before verify (and restore-check, when asked) passed; nothing is deleted before
// the new backup is published. A step that does not apply returns skip(reason).
var Pipeline = []steps.Step[*job]{
	steps.Func("clean", cleanStep),                // temp files of backups killed mid-way (their process is gone)
	steps.Func("dump", dumpStep),                  // dump → parallel gzip → temp file in dir, fsync
	steps.Func("verify", verifyStep),              // full decompression; header, trailer, min-size
	steps.Func("restore-check", restoreCheckStep), // restore into a scratch database, compare row counts
	steps.Func("publish", publishStep),            // rename to <prefix>-<id>.<ext>.gz, write .sha256
	steps.Func("docker-host", dockerHostStep),     // with docker-host: upload to dir on the host, SHA-256 compared there
	steps.Func("host-copy", hostCopyStep),         // copy to host-path
	steps.Func("offsite", offsiteStep),            // copy to S3-compatible storage, read back, remote retention
	steps.Func("retention", retentionStep),        // keep-daily/weekly/monthly; delete the rest
}

func skip(format string, args ...any) error { return steps.Skip(format, args...) }

// job is one backup run.
type job struct {
	a       *action.Context
	opts    Options // as given, for a job built again (locked)
	engine  Engine
	name    string // engine input
	dir     string
	prefix  string
	id      string
	pid     int
	level   int
	minSize int64
	keep    Keep
	host    string
	// remote is the Docker host a runner elsewhere keeps the backup on (in
	// onHost), nil when dir is this machine's.
	remote  Host
	onHost  string
	restore bool
	dryRun  bool
	// artifact: the workflow uploads the published file (the artifact input, as
	// this binary reads it: yes, on and 1 count).
	artifact bool

	tmp, final  string
	published   bool // the file has its final name
	wrote       written
	checked     verified
	restored    string
	lockNote    string // the stack lock the backup action held, for the summary
	hostFile    string
	offsite     *offsite
	offsiteCopy string
	deleted     []string
	kept        []string
	steps.Runner[*job]
}

var prefixRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// Run is `deploykit backup`.
func Run(ctx context.Context, a *action.Context, ao ActionOptions) error {
	if ao.VerifyOnly != "" {
		return verifyOnly(a, ao.VerifyOnly, ao.MinSize)
	}
	target, err := ao.Notify.Checked()
	if err != nil {
		return err
	}
	o := ao.Options
	if o.Offsite, err = newOffsite(ao.Remote); err != nil {
		return action.Usagef("%v", err)
	}
	var conn *remote.Conn
	if ao.DockerHost.Remote() {
		if _, _, err := remote.Parse(ao.DockerHost, a.TempDir()); err != nil {
			return err
		}
		// The dump, the restore check's container and the backup's place
		// are all on the host from here on.
		if conn, err = remote.Connect(ctx, a, ao.DockerHost); err != nil {
			return action.Failedf("%w", err)
		}
		defer conn.End()
		o.Host = conn
	}
	j, err := newJob(a, o)
	if err != nil {
		return err
	}
	stack, explicit := stackOf(ctx, a, o, ao.StackLock) // inputs checked: only now is the engine asked
	if j.dryRun {
		defer j.engine.Close()
		if stack != "" {
			a.Logf("would take the lock of stack %s: %s", stack, lock.PathFor(lock.Dir(ao.HistoryFile), stack))
		}
		return j.plan()
	}
	start := time.Now()
	var failed error
	if stack == "" {
		j.lockNote = "none: the database is in no compose project or swarm stack here (project-name names one)"
	} else {
		var release func()
		j, release, failed = j.locked(ctx, conn, ao.StackLock, stack, explicit)
		defer release()
	}
	defer j.engine.Close()
	if failed == nil {
		failed = j.run(ctx)
	}
	took := time.Since(start)
	if j.remote != nil && !(failed == nil && j.artifact) {
		// Kept on the host; the runner's copy stays only for the artifact.
		defer os.RemoveAll(j.dir)
	}
	if failed == nil {
		if err := a.SetOutputs(
			action.Out{Name: "upload-artifact", Value: strconv.FormatBool(j.artifact)},
			action.Out{Name: "artifact-name", Value: j.prefix + "-" + j.id},
			action.Out{Name: "artifact-path", Value: j.final + "\n" + j.final + ".sha256"},
			action.Out{Name: "path", Value: j.keptAt()},
			action.Out{Name: "size", Value: strconv.FormatInt(j.wrote.Size, 10)},
			action.Out{Name: "sha256", Value: j.wrote.SHA256},
			action.Out{Name: "backup-id", Value: j.id},
			action.Out{Name: "duration", Value: took.Round(100 * time.Millisecond).String()},
			action.Out{Name: "offsite", Value: j.offsiteCopy},
		); err != nil {
			return err
		}
	}
	summary := j.summary(took, failed)
	if conn != nil {
		summary += "\nDocker host: " + conn.Stats() + "\n"
	}
	if target.Wants(failed == nil) {
		summary += "\n" + j.notify(ctx, target, failed) + "\n"
	}
	if err := a.Summary(summary); err != nil {
		a.Warningf("writing the job summary: %v", err)
	}
	if failed != nil {
		return action.Failedf("%w", failed)
	}
	return nil
}

// Result is a finished, verified backup.
type Result struct {
	Path string // where it is kept: on the Docker host with Options.Host
	// Local is the file on this machine: Path, or with Options.Host the
	// runner's copy in a directory of its own, which Discard removes.
	Local  string
	Size   int64
	SHA256 string
	ID     string
	// Where is Path for people: "… on user@host:port" with Options.Host.
	Where string
}

// Discard removes the runner's copy of a backup kept on the Docker host; a
// backup kept on this machine stays.
func (r Result) Discard() {
	if r.Local != r.Path {
		os.RemoveAll(filepath.Dir(r.Local))
	}
}

// Check validates o the way the backup action validates its inputs, touching
// nothing: for a pipeline that backs up later (deploy's backup step) and must
// refuse bad input before it changes anything.
func Check(a *action.Context, o Options) error {
	j, err := newJob(a, o)
	if err != nil {
		return err
	}
	return j.engine.Close()
}

// Make runs a whole backup for another pipeline: the same steps, log and
// guarantees as the backup action, without its outputs and summary.
func Make(ctx context.Context, a *action.Context, o Options) (Result, error) {
	j, err := newJob(a, o)
	if err != nil {
		return Result{}, err
	}
	defer j.engine.Close()
	if err := j.run(ctx); err != nil {
		return Result{}, err
	}
	return Result{Path: j.keptAt(), Local: j.final, Size: j.wrote.Size, SHA256: j.wrote.SHA256, ID: j.id, Where: j.where()}, nil
}

// keptAt is the backup's path where it is kept: on the Docker host, or here.
func (j *job) keptAt() string {
	if j.remote != nil {
		return path.Join(j.onHost, filepath.Base(j.final))
	}
	return j.final
}

// where is keptAt for people.
func (j *job) where() string {
	if j.remote != nil {
		return j.keptAt() + " on " + j.remote.String()
	}
	return j.final
}

// keptDir is the directory the backups are kept in, where they are kept.
func (j *job) keptDir() string {
	if j.remote != nil {
		return j.onHost
	}
	return j.dir
}

// run runs the pipeline, removing its temp files on every exit.
func (j *job) run(ctx context.Context) error {
	j.Runner = steps.Runner[*job]{Logf: j.a.Logf, OnExit: j.a.OnExit}
	j.Defer(j.removeScratch)
	defer j.Cleanup()
	if failed, err := j.Run(ctx, Pipeline, j, nil); err != nil {
		if j.remote != nil {
			os.RemoveAll(j.dir) // nothing of it was kept
		}
		return fmt.Errorf("backup failed at %s: %w", failed, err)
	}
	return nil
}

// Options describe a backup: what the backup action reads from its inputs, and
// what deploy's backup step passes.
type Options struct {
	Engine       string `input:"engine"` // postgres, mysql, mariadb or sqlite
	Container    string `input:"container"`
	SwarmService string `input:"swarm-service"`
	DatabaseURL  string `input:"database-url"`
	DBUser       string `input:"db-user"`
	DBPassword   string `input:"db-password"`
	SQLitePath   string `input:"sqlite-path"`
	Dir          string `input:"dir"`
	Prefix       string `input:"prefix"`
	HostPath     string `input:"host-path"`
	Level        int    `input:"compression-level"`
	MinSize      int64  `input:"min-size"`
	Keep         Keep
	RestoreCheck bool `input:"restore-check"`
	Artifact     bool `input:"artifact"`
	DryRun       bool `input:"dry-run"`
	// Offsite is the checked offsite target (the backup action's offsite-*
	// inputs), or nil.
	Offsite *offsite
	// Host, when set, is the Docker host reached over SSH (docker-host): Dir
	// is a directory there, the backup is made in the runner's temp
	// directory and kept in Dir, and retention runs there (host.go).
	Host Host
	// InputPrefix goes before input names in messages: deploy's inputs are
	// backup-container, backup-dir, ….
	InputPrefix string
	// Stack, when the run holds a stack's lock (a deploy's pre-deploy backup,
	// a restore's safety backup), is that stack: the throwaway containers the
	// run starts carry it (docker.LabelStack), and the next run holding the
	// lock removes what a killed one left.
	Stack string
}

// throwawayLabels are the labels of a throwaway container the run starts: a
// scratch server of a restore check, a sidecar on a swarm service's network.
func (o Options) throwawayLabels(a *action.Context) map[string]string {
	labels := map[string]string{"org.deploykit.role": "backup-restore-check", "org.deploykit.run-id": a.Getenv("GITHUB_RUN_ID"), docker.LabelOwner: docker.Owner()}
	if o.Stack != "" {
		labels[docker.LabelStack] = o.Stack
	}
	return labels
}

func (o Options) name(input string) string { return o.InputPrefix + input }

// ActionOptions are the backup action's inputs, decoded at the edge.
type ActionOptions struct {
	Options
	StackLock
	DockerHost remote.Options // the Docker host, over SSH from a runner elsewhere
	Remote     OffsiteOptions
	Notify     notify.Webhook
	VerifyOnly string `input:"verify-only"`
}

// newJob checks the options and builds the engine; any problem is a usage error
// (exit 2) and nothing has been touched.
func newJob(a *action.Context, o Options) (*job, error) {
	j := &job{
		a:        a,
		opts:     o,
		name:     o.Engine,
		prefix:   o.Prefix,
		pid:      os.Getpid(),
		level:    o.Level,
		minSize:  o.MinSize,
		keep:     o.Keep,
		restore:  o.RestoreCheck,
		dryRun:   o.DryRun,
		artifact: o.Artifact,
		offsite:  o.Offsite,
		remote:   o.Host,
		id:       time.Now().UTC().Format(idLayout),
	}
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if !prefixRE.MatchString(j.prefix) {
		bad("input %s: %q is not a file name prefix: want letters, digits, '.', '_' and '-', starting with a letter or digit", o.name("prefix"), j.prefix)
	}
	// Paths end up in outputs and the summary: one line each, or nothing is done.
	for _, p := range []struct{ input, value string }{{"dir", o.Dir}, {"host-path", o.HostPath}} {
		if strings.IndexFunc(p.value, unicode.IsControl) >= 0 {
			bad("input %s: %q contains a control character (a line break?): want a directory path", o.name(p.input), p.value)
		}
	}
	switch {
	case o.Dir == "":
		bad("input %s is empty: want the directory backups are written to", o.name("dir"))
	case o.Host != nil:
		// Made on the runner, kept on the host.
		j.onHost = path.Clean(o.Dir)
		j.dir = filepath.Join(a.TempDir(), fmt.Sprintf("deploykit-backup-%d", j.pid))
		if !path.IsAbs(o.Dir) {
			bad("input %s: %q is a directory on the Docker host %s (docker-host): want an absolute path", o.name("dir"), o.Dir, o.Host)
		}
		if o.HostPath != "" {
			bad("input %s: with docker-host the backup is kept on the Docker host, in %s; for a second copy elsewhere use offsite-url", o.name("host-path"), o.name("dir"))
		}
		if o.Engine == "sqlite" {
			bad("input %s: a SQLite file is on the Docker host, where a runner elsewhere cannot read it; back it up from a runner on the host, without docker-host", o.name("engine"))
		}
	default:
		abs, err := filepath.Abs(o.Dir)
		if err != nil {
			bad("input %s: %v", o.name("dir"), err)
			break
		}
		j.dir = abs
		if st, err := os.Stat(abs); err == nil && !st.IsDir() {
			bad("input %s: %s is not a directory", o.name("dir"), abs)
		}
	}
	if o.HostPath != "" && o.Host == nil {
		j.host, _ = filepath.Abs(o.HostPath)
		if sameDir(j.host, j.dir) {
			bad("input %s: %s is %s itself; give another directory (another disk) or leave it empty", o.name("host-path"), o.HostPath, o.name("dir"))
		}
	}
	engine, err := newEngine(a, j, o)
	if err != nil {
		bad("%v", err)
	}
	if len(problems) > 0 {
		if engine != nil {
			engine.Close()
		}
		return nil, action.Usagef("%s", strings.Join(problems, "\n"))
	}
	j.engine = engine
	j.final = filepath.Join(j.dir, fileName(j.prefix, j.id, engine.Ext()))
	j.tmp = j.scratch(engine.Ext() + ".gz")
	return j, nil
}

// sameDir reports whether a and b are one directory, through symlinks too (also
// a link to a directory that is yet to be made).
func sameDir(a, b string) bool {
	return a == b || resolvePath(a) == resolvePath(b)
}

// resolvePath follows symlinks as far as they lead, to a path that may not exist.
func resolvePath(p string) string {
	for range 40 {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			return r
		}
		target, err := os.Readlink(p)
		if err != nil {
			return p
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(p), target)
		}
		p = target
	}
	return p
}

// scratch is a temp path in the backup directory, named after this process so
// that a later run can tell it was left by a backup that no longer runs.
func (j *job) scratch(what string) string {
	return filepath.Join(j.dir, fmt.Sprintf(".%s-%s.%s.partial-%d", j.prefix, j.id, what, j.pid))
}

// removeScratch removes this run's temp files (on every exit, signals included).
func (j *job) removeScratch() {
	matches, _ := filepath.Glob(filepath.Join(j.dir, fmt.Sprintf(".%s-*.partial-%d", j.prefix, j.pid)))
	for _, m := range matches {
		os.Remove(m)
	}
}

func (j *job) plan() error {
	j.a.Logf("dry run: nothing is dumped, written or deleted")
	j.a.Logf("source: %s", j.engine.Source())
	for _, c := range j.engine.Plan() {
		j.a.Logf("would run: %s", c)
	}
	j.a.Logf("would write: %s (gzip level %d), verify it and write %s.sha256", j.final, j.level, filepath.Base(j.final))
	if j.restore {
		j.a.Logf("would restore it into a scratch database and compare row counts")
	}
	if j.host != "" {
		j.a.Logf("would copy it to %s", j.host)
	}
	if o := j.offsite; o != nil {
		every := "every backup"
		if o.every > 0 {
			every = "when the newest copy there is older than " + o.every.String()
		}
		j.a.Logf("would copy its .sha256 and then it to %s (%s), read it back, and apply the same retention there", o.where(), every)
	}
	if j.remote != nil {
		j.a.Logf("would keep it in %s on %s: its .sha256 and then it uploaded, its SHA-256 computed there and compared", j.onHost, j.remote)
	}
	j.a.Logf("would keep %d daily, %d weekly, %d monthly backups of %s-* in %s and delete the rest", j.keep.Daily, j.keep.Weekly, j.keep.Monthly, j.prefix, j.keptDir())
	return nil
}

func cleanStep(ctx context.Context, j *job) error {
	var removed []string
	// Throwaway containers (restore-check servers, sidecars) of runs of this
	// host that were killed.
	if sw, ok := j.engine.(interface {
		sweepDead(context.Context) (docker.Removed, error)
	}); ok && !j.dryRun {
		gone, err := sw.sweepDead(ctx)
		if err != nil {
			j.a.Warningf("%v", err)
		}
		if !gone.Empty() {
			removed = append(removed, "containers "+strings.Join(gone.Containers, ", "))
		}
	}
	// dir is made by dump, once the source is known to be there.
	matches, err := filepath.Glob(filepath.Join(j.dir, "."+j.prefix+"-*.partial-*"))
	if err != nil {
		return err
	}
	for _, m := range matches {
		pid, err := strconv.Atoi(m[strings.LastIndex(m, ".partial-")+len(".partial-"):])
		if err != nil || pid == j.pid || lock.Alive(pid) {
			continue
		}
		if err := os.Remove(m); err != nil {
			return err
		}
		removed = append(removed, filepath.Base(m))
	}
	if len(removed) == 0 {
		return skip("no temp files or throwaway containers of earlier runs")
	}
	j.Did("removed what backups that did not finish left: %s", strings.Join(removed, ", "))
	return nil
}

func dumpStep(ctx context.Context, j *job) error {
	j.a.Logf("    %s", j.engine.Source())
	for _, c := range j.engine.Plan() {
		j.a.Logf("    %s", c)
	}
	// A container that is missing or stopped fails here, before dir exists.
	if r, ok := j.engine.(interface{ Ready(context.Context) error }); ok {
		if err := r.Ready(ctx); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(j.dir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", j.dir, err)
	}
	w, err := writeCompressed(ctx, j.engine, j.tmp, j.level)
	if err != nil {
		return err
	}
	j.wrote = w
	j.Did("%s dumped, %s compressed", bytesText(w.Raw), bytesText(w.Size))
	return nil
}

// verifyStep judges the file: the stream written was decompressed in full and
// held the dump's header and trailer (checked while writing), the file on disk
// is those bytes (its SHA-256), and it is not implausibly small.
func verifyStep(_ context.Context, j *job) error {
	st, err := os.Stat(j.tmp)
	if err != nil {
		return err
	}
	if err := checkSize(j.tmp, st.Size(), j.minSize); err != nil {
		return err
	}
	if j.wrote.VerifyErr != nil {
		return fmt.Errorf("%s: %w", j.tmp, j.wrote.VerifyErr)
	}
	if v := j.wrote.Verified; v.Raw != j.wrote.Raw {
		return fmt.Errorf("decompressed %d bytes, but %d were dumped", v.Raw, j.wrote.Raw)
	}
	sum, err := fileSHA256(j.tmp)
	if err != nil {
		return err
	}
	if st.Size() != j.wrote.Size || sum != j.wrote.SHA256 {
		return fmt.Errorf("%s on disk (%d bytes, sha256 %s) is not what was written and verified (%d bytes, sha256 %s)", j.tmp, st.Size(), sum, j.wrote.Size, j.wrote.SHA256)
	}
	j.checked = j.wrote.Verified
	j.checked.Checks = append([]string{sizeCheck(st.Size(), j.minSize)}, j.checked.Checks...)
	j.checked.Checks = append(j.checked.Checks, "the file on disk has the SHA-256 of the verified stream")
	j.Did("%s", strings.Join(j.checked.Checks, "; "))
	return nil
}

func restoreCheckStep(ctx context.Context, j *job) error {
	if !j.restore {
		return skip("not requested (restore-check: false)")
	}
	what, err := j.engine.RestoreCheck(ctx, j.tmp)
	if err != nil {
		return err
	}
	j.restored = what
	j.Did("%s", what)
	return nil
}

func publishStep(_ context.Context, j *job) error {
	// A hard link never replaces an existing file, unlike rename.
	if err := os.Link(j.tmp, j.final); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%s already exists: another backup of this prefix finished in the same second", j.final)
		}
		return err
	}
	if err := os.Remove(j.tmp); err != nil {
		return err
	}
	j.published = j.remote == nil // else once it is on the host
	if err := writeSumFile(j.final, j.wrote.SHA256); err != nil {
		return fmt.Errorf("writing %s.sha256: %w", j.final, err)
	}
	if err := syncDir(j.dir); err != nil {
		return err
	}
	j.Did("%s", j.final)
	return nil
}

func dockerHostStep(ctx context.Context, j *job) error {
	if j.remote == nil {
		return skip("no docker-host: kept in %s on this machine", j.dir)
	}
	if _, err := keepOnHost(ctx, j.remote, j.final, j.onHost, j.wrote.SHA256); err != nil {
		return err
	}
	j.published = true
	j.Did("%s (its SHA-256 computed there matches)", j.where())
	return nil
}

func hostCopyStep(_ context.Context, j *job) error {
	if j.host == "" {
		return skip("no host-path")
	}
	if err := os.MkdirAll(j.host, 0o700); err != nil {
		return err
	}
	dst := filepath.Join(j.host, filepath.Base(j.final))
	for _, f := range []struct{ from, to string }{{j.final, dst}, {j.final + ".sha256", dst + ".sha256"}} {
		if err := copyFile(f.from, f.to); err != nil {
			return fmt.Errorf("copying to host-path: %w", diskFull(err, f.to))
		}
	}
	if err := checkSumFile(dst); err != nil {
		return err
	}
	j.hostFile = dst
	j.Did("%s (checksum verified)", dst)
	return syncDir(j.host)
}

// copyFile copies from to a temp name beside to, fsyncs and renames.
func copyFile(from, to string) (err error) {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	tmp := filepath.Join(filepath.Dir(to), "."+filepath.Base(to)+fmt.Sprintf(".partial-%d", os.Getpid()))
	dst, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			dst.Close()
			os.Remove(tmp)
		}
	}()
	if _, err = io.Copy(dst, src); err != nil {
		return err
	}
	if err = dst.Sync(); err != nil {
		return err
	}
	if err = dst.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, to)
}

func retentionStep(ctx context.Context, j *job) error {
	if j.keep.All {
		return skip("every backup of this prefix is kept")
	}
	var on shelf = localShelf(j.dir)
	if j.remote != nil {
		on = hostShelf{j.remote, j.onHost}
	}
	deleted, kept, err := prune(ctx, on, j.prefix, j.engine.Ext(), filepath.Base(j.final), j.keep)
	j.deleted, j.kept = deleted, kept
	if err != nil {
		return err
	}
	j.Did("kept %d, deleted %d%s", len(kept), len(deleted), listed(deleted))
	return nil
}

// bytesText is a size for people: "12.3 MiB (12898765 bytes)".
func bytesText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d bytes", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB (%d bytes)", float64(n)/float64(div), "KMGTPE"[exp], n)
}

// notify tells target how the backup went and returns a line for the summary; a
// failed notification is a warning and never changes the result.
func (j *job) notify(ctx context.Context, target *notify.Webhook, failed error) string {
	m := notify.Message{Action: "backup", Status: "success", OK: failed == nil, JobURL: j.a.JobURL()}
	var text strings.Builder
	if failed == nil {
		m.Title = "deploykit backup: succeeded — " + j.engine.Source()
		fmt.Fprintf(&text, "%s (%s, sha256 %s), verified", j.where(), bytesText(j.wrote.Size), j.wrote.SHA256)
		if j.restored != "" {
			fmt.Fprintf(&text, "; restore check: %s", j.restored)
		}
		text.WriteString(".\n")
	} else {
		m.Status = "failed"
		m.Title = "deploykit backup: failed — " + j.engine.Source()
		fmt.Fprintf(&text, "%v\n", failed)
		if j.published {
			fmt.Fprintf(&text, "The verified backup %s was kept.\n", j.where())
		} else {
			text.WriteString("No backup file was kept and nothing was deleted.\n")
		}
	}
	if m.JobURL != "" {
		fmt.Fprintf(&text, "\nJob: %s\n", m.JobURL)
	}
	m.Text = text.String()
	return notify.Tell(ctx, j.a, target, m, "backup")
}

// listed is ": a, b, c" for a non-empty list, for a step's details.
func listed(names []string) string {
	if len(names) == 0 {
		return ""
	}
	return ": " + strings.Join(names, ", ")
}
