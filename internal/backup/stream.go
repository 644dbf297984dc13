package backup

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/klauspost/pgzip"
)

// counter counts the bytes written through it.
type counter struct{ n int64 }

func (c *counter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// written is what streaming a dump to disk produced.
type written struct {
	Size     int64  // compressed bytes on disk
	Raw      int64  // uncompressed dump bytes
	SHA256   string // of the compressed file
	Verified verified
	// VerifyErr is why the compressed stream, decompressed as it was written,
	// is not a complete dump of the engine's format.
	VerifyErr error
}

// writeCompressed streams the engine's dump through parallel gzip into a new file
// at path (0600: a backup holds every secret of the database) and fsyncs it.
// The compressed bytes are decompressed and checked as they are written (full
// decompression, header, trailer), on other cores, instead of reading the file
// back afterwards. Memory stays at a few compression blocks whatever the size
// of the database. On error the file is removed.
func writeCompressed(ctx context.Context, e Engine, path string, level int) (w written, err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return w, err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(path)
		}
	}()
	pr, pw := io.Pipe()
	checked := make(chan struct{})
	var v verified
	var verifyErr error
	go func() {
		defer close(checked)
		v, verifyErr = verifyStream(pr, []Format{e.Format()})
		// Drain what a failed check did not read, so the dump can finish and
		// say how it ended; the verdict is already taken.
		_, _ = io.Copy(io.Discard, pr)
	}()
	defer func() {
		pw.CloseWithError(err)
		<-checked
		w.Verified, w.VerifyErr = v, verifyErr
	}()
	hash := sha256.New()
	size := &counter{}
	zw, err := pgzip.NewWriterLevel(io.MultiWriter(f, hash, size, pw), level)
	if err != nil {
		return w, err
	}
	if err := zw.SetConcurrency(1<<20, 2*runtime.GOMAXPROCS(0)); err != nil {
		return w, err
	}
	raw := &counter{}
	if err := e.Dump(ctx, io.MultiWriter(zw, raw)); err != nil {
		zw.Close()
		return w, diskFull(err, path)
	}
	if err := zw.Close(); err != nil {
		return w, diskFull(fmt.Errorf("compressing: %w", err), path)
	}
	if err := f.Sync(); err != nil {
		return w, diskFull(fmt.Errorf("fsync %s: %w", path, err), path)
	}
	if err := f.Close(); err != nil {
		return w, diskFull(err, path)
	}
	w.Size, w.Raw, w.SHA256 = size.n, raw.n, hex.EncodeToString(hash.Sum(nil))
	return w, nil
}

// diskFull makes "no space left on device" say where.
func diskFull(err error, path string) error {
	if err != nil && strings.Contains(err.Error(), "no space left on device") && !strings.Contains(err.Error(), "is full") {
		return fmt.Errorf("the file system of %s is full: %w", filepath.Dir(path), err)
	}
	return err
}

// verified is what the verify step established about a backup file.
type verified struct {
	Format string
	Raw    int64
	Checks []string
}

const headTailSize = 4096

// verifyFile decompresses the whole file and checks size, gzip stream and the
// dump's header and trailer (--verify-only); it returns the file's SHA-256 too,
// hashed in the same read.
func verifyFile(file string, minSize int64, candidates []Format) (verified, string, error) {
	st, err := os.Stat(file)
	if err != nil {
		return verified{}, "", err
	}
	if err := checkSize(file, st.Size(), minSize); err != nil {
		return verified{}, "", err
	}
	f, err := os.Open(file)
	if err != nil {
		return verified{}, "", err
	}
	defer f.Close()
	hash := sha256.New()
	v, err := verifyStream(io.TeeReader(f, hash), candidates)
	if err != nil {
		return v, "", fmt.Errorf("%s: %w", file, err)
	}
	if _, err := io.Copy(hash, f); err != nil { // whatever the gzip reader left
		return v, "", err
	}
	v.Checks = append([]string{sizeCheck(st.Size(), minSize)}, v.Checks...)
	return v, hex.EncodeToString(hash.Sum(nil)), nil
}

func checkSize(file string, size, minSize int64) error {
	if size == 0 {
		return fmt.Errorf("%s is empty (0 bytes)", file)
	}
	if size < minSize {
		return fmt.Errorf("%s is %d bytes, below min-size %d: the dump is implausibly small", file, size, minSize)
	}
	return nil
}

func sizeCheck(size, minSize int64) string {
	return fmt.Sprintf("size %d bytes ≥ min-size %d", size, minSize)
}

// verifyStream decompresses a whole gzip stream and checks the dump's header and
// completion trailer against candidates (one format for a backup being made;
// all of them for --verify-only).
func verifyStream(compressed io.Reader, candidates []Format) (verified, error) {
	var v verified
	zr, err := pgzip.NewReader(compressed)
	if err != nil {
		return v, fmt.Errorf("not a gzip stream: %w", err)
	}
	defer zr.Close()
	head := make([]byte, headTailSize)
	n, err := io.ReadFull(zr, head)
	head = head[:n]
	tail := &tailBuffer{max: headTailSize}
	tail.Write(head)
	if err == nil {
		var rest int64
		rest, err = io.Copy(tail, zr)
		v.Raw = int64(n) + rest
	} else if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		// A dump shorter than headTailSize: ReadFull's EOF is the stream's
		// end only if the gzip trailer checked out, which a second read says.
		v.Raw = int64(n)
		_, err = zr.Read(make([]byte, 1))
		if errors.Is(err, io.EOF) {
			err = nil
		}
	}
	if err != nil {
		return v, fmt.Errorf("the gzip stream is damaged after %d bytes: %w", v.Raw, err)
	}
	v.Checks = append(v.Checks, fmt.Sprintf("gzip stream complete: %d bytes decompressed", v.Raw))
	var wrongFormat, damaged error
	for _, f := range candidates {
		err := f.Check(head, tail.bytes(), v.Raw)
		if err == nil {
			v.Format = f.Name()
			v.Checks = append(v.Checks, f.Name()+" header and completion trailer present")
			return v, nil
		}
		if errors.Is(err, errOtherFormat) {
			wrongFormat = cmp.Or(wrongFormat, err)
		} else {
			damaged = cmp.Or(damaged, err)
		}
	}
	if damaged == nil && len(candidates) > 1 {
		damaged = errors.New("not a dump deploykit makes (pg_dumpall, pg_dump, mysqldump, mariadb-dump or a SQLite file)")
	}
	return v, cmp.Or(damaged, wrongFormat)
}

// checkSumFile compares file with the sha256sum-style file beside it.
func checkSumFile(file string) error {
	got, err := fileSHA256(file)
	if err != nil {
		return err
	}
	return compareSum(file, got)
}

// compareSum compares got, the SHA-256 of file, with the file's .sha256.
func compareSum(file, got string) error {
	want, err := os.ReadFile(file + ".sha256")
	if err != nil {
		return err
	}
	fields := strings.Fields(string(want))
	if len(fields) == 0 {
		return fmt.Errorf("%s.sha256 is empty", file)
	}
	if fields[0] != got {
		return fmt.Errorf("%s does not match %s.sha256: the file changed after it was written (sha256 %s, recorded %s)", file, file, got, fields[0])
	}
	return nil
}

func fileSHA256(file string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// writeSumFile writes "<sha256>  <name>" beside file, so that `sha256sum -c`
// works in its directory; written to a temp name and renamed, then fsynced.
func writeSumFile(file, sum string) error {
	tmp := file + ".sha256.partial"
	if err := os.WriteFile(tmp, []byte(sum+"  "+filepath.Base(file)+"\n"), 0o600); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := syncFile(tmp); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, file+".sha256")
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
