package backup

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// idLayout is a backup's id and the timestamp in its file name (UTC).
const idLayout = "2006-01-02T150405Z"

// stored is one finished backup in the backup directory.
type stored struct {
	Name string // file name
	At   time.Time
}

// fileName is <prefix>-<id>.<ext>.gz.
func fileName(prefix, id, ext string) string { return prefix + "-" + id + "." + ext + ".gz" }

// listBackups returns the finished backups of prefix in dir, newest first. Files
// that do not match the name exactly (other prefixes, temp files, checksums)
// are never listed, so retention cannot touch them.
func listBackups(dir, prefix, ext string) ([]stored, error) {
	names, err := localShelf(dir).list(context.Background())
	if err != nil {
		return nil, err
	}
	return backupsIn(names, prefix, ext), nil
}

// backupsIn are the backups of prefix among the file names, newest first.
func backupsIn(names []string, prefix, ext string) []stored {
	var out []stored
	for _, name := range names {
		if at, ok := backupTime(name, prefix, ext); ok {
			out = append(out, stored{Name: name, At: at})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].At.After(out[j].At) })
	return out
}

// shelf is a directory backups are kept in: this machine's, or one on the
// Docker host (hostShelf).
type shelf interface {
	list(ctx context.Context) ([]string, error) // its regular files' names
	remove(ctx context.Context, name string) error
}

// localShelf is a directory of this machine.
type localShelf string

func (d localShelf) list(context.Context) ([]string, error) {
	entries, err := os.ReadDir(string(d))
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if e.Type().IsRegular() {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

func (d localShelf) remove(_ context.Context, name string) error {
	return os.Remove(filepath.Join(string(d), name))
}

// hostShelf is a directory on the Docker host.
type hostShelf struct {
	host Host
	dir  string
}

func (h hostShelf) list(ctx context.Context) ([]string, error) { return h.host.List(ctx, h.dir) }

func (h hostShelf) remove(ctx context.Context, name string) error {
	return h.host.RemoveFile(ctx, path.Join(h.dir, name))
}

// backupTime is the time in a backup's name, <prefix>-<timestamp>.<ext>.gz;
// false for any other name.
func backupTime(name, prefix, ext string) (time.Time, bool) {
	id, ok := strings.CutPrefix(name, prefix+"-")
	if !ok {
		return time.Time{}, false
	}
	if id, ok = strings.CutSuffix(id, "."+ext+".gz"); !ok {
		return time.Time{}, false
	}
	at, err := time.Parse(idLayout, id)
	return at, err == nil
}

// Keep is a count-based retention policy.
type Keep struct {
	Daily   int `input:"keep-daily"`
	Weekly  int `input:"keep-weekly"`
	Monthly int `input:"keep-monthly"`
	// All keeps every backup: nothing is pruned (the restore's safety backups,
	// one of which a later restore may be reading).
	All bool
}

// keepSet decides which backups stay: for each rule, the newest backup of each of
// the newest N periods (days, ISO weeks, months) that have a backup. The newest
// backup always stays. backups must be newest first.
func keepSet(backups []stored, k Keep) map[string]bool {
	keep := map[string]bool{}
	if len(backups) > 0 {
		keep[backups[0].Name] = true
	}
	rules := []struct {
		n      int
		period func(time.Time) string
	}{
		{k.Daily, func(t time.Time) string { return t.Format("2006-01-02") }},
		{k.Weekly, func(t time.Time) string { y, w := t.ISOWeek(); return fmt.Sprintf("%d-W%02d", y, w) }},
		{k.Monthly, func(t time.Time) string { return t.Format("2006-01") }},
	}
	for _, r := range rules {
		seen := map[string]bool{}
		for _, b := range backups {
			if len(seen) >= r.n {
				break
			}
			p := r.period(b.At.UTC())
			if !seen[p] {
				seen[p] = true
				keep[b.Name] = true
			}
		}
	}
	return keep
}

// prune deletes the backups of prefix on the shelf that keepSet does not
// keep, with their checksum files, and returns the names it deleted and kept.
// justMade always stays, even if a file with a later time exists.
func prune(ctx context.Context, on shelf, prefix, ext, justMade string, k Keep) (deleted, kept []string, err error) {
	names, err := on.list(ctx)
	if err != nil {
		return nil, nil, err
	}
	backups := backupsIn(names, prefix, ext)
	keep := keepSet(backups, k)
	keep[justMade] = true
	for _, b := range backups {
		if keep[b.Name] {
			kept = append(kept, b.Name)
			continue
		}
		if err := on.remove(ctx, b.Name); err != nil {
			return deleted, kept, err
		}
		_ = on.remove(ctx, b.Name+".sha256")
		deleted = append(deleted, b.Name)
	}
	return deleted, kept, nil
}
