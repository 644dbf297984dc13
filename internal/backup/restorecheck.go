package backup

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/pgzip"

	"github.com/org/deploy-kit/internal/docker"
)

// rowCounts is the number of rows of every table, keyed "database/schema.table".
type rowCounts map[string]int64

// parseCounts reads "name|count" lines.
func parseCounts(prefix, out string, into rowCounts) error {
	for _, line := range strings.Split(out, "\n") {
		if line = strings.TrimSpace(line); line == "" {
			continue
		}
		name, n, ok := strings.Cut(line, "|")
		if !ok {
			name, n, ok = strings.Cut(line, "\t")
		}
		count, err := strconv.ParseInt(strings.TrimSpace(n), 10, 64)
		if !ok || err != nil {
			return fmt.Errorf("unexpected row count line %q", line)
		}
		into[prefix+name] = count
	}
	return nil
}

// compareCounts says what was compared, or how the restored database differs.
func compareCounts(source, restored rowCounts) (string, error) {
	var diffs []string
	var rows int64
	names := make([]string, 0, len(source))
	for name := range source {
		names = append(names, name)
	}
	for name := range restored {
		if _, ok := source[name]; !ok {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		s, inSource := source[name]
		r, inRestored := restored[name]
		rows += s
		switch {
		case !inRestored:
			diffs = append(diffs, name+" is missing from the restored database")
		case !inSource:
			diffs = append(diffs, name+" is in the restored database only")
		case s != r:
			diffs = append(diffs, fmt.Sprintf("%s has %d rows in the source and %d restored", name, s, r))
		}
	}
	if len(diffs) > 0 {
		if len(diffs) > 5 {
			diffs = append(diffs[:5], fmt.Sprintf("and %d more", len(diffs)-5))
		}
		return "", fmt.Errorf("the restored backup differs from the source: %s", strings.Join(diffs, "; "))
	}
	return fmt.Sprintf("row counts of %d tables (%d rows) equal the source", len(source), rows), nil
}

// gunzipFile opens a backup for reading its uncompressed dump.
func gunzipFile(file string) (*pgzip.Reader, func(), error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, nil, err
	}
	zr, err := pgzip.NewReader(f)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w", file, err)
	}
	return zr, func() { zr.Close(); f.Close() }, nil
}

// scratchServer starts a container of image (a database server, configured by
// env the way its official image is) to restore into, and waits until ready
// succeeds in it. The container carries the job's labels and is removed by the
// returned function.
func scratchServer(ctx context.Context, client serverEngine, image string, env []string, port string, labels map[string]string, ready program) (execRunner, func(), error) {
	id, _, err := client.Run(ctx, docker.RunSpec{Image: image, Env: env, Port: port, Labels: labels})
	if err != nil {
		return execRunner{}, nil, err
	}
	remove := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = client.Remove(ctx, id)
	}
	r := execRunner{client: client, container: id, mask: func(s string) string { return s }}
	deadline := time.Now().Add(120 * time.Second)
	for {
		err := r.run(ctx, ready)
		if err == nil {
			return r, remove, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			remove()
			return execRunner{}, nil, fmt.Errorf("the scratch %s server did not become ready: %w", image, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
