package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/org/deploy-kit/internal/action"
)

// The offsite copy (docs/offsite.md): a verified backup and its .sha256
// in S3-compatible storage, through minio-go (no hand-made request signing).
// Publishing relies on S3's atomic uploads: an object appears under its name only
// once its upload completed, so an interrupted upload never leaves an object a
// restore or the retention would take for a backup; the .sha256 is published
// before the backup, so a published backup always has its checksum. A copy counts
// only once it has been read back and has the local file's size and SHA-256.
// Remote retention runs after that, with the local rules, and never deletes the
// newest proven copy.

// OffsiteConnInputs say where the offsite copies are and how to reach them (the
// backup action's, and restore's to fetch one).
var OffsiteConnInputs = []action.Input{
	{Name: "offsite-url", Description: "S3-compatible target of a copy of each verified backup: s3://bucket/prefix. Empty: no offsite copy."},
	{Name: "offsite-endpoint", Description: "The storage's endpoint URL, e.g. https://s3.eu-central-1.amazonaws.com, https://<account>.r2.cloudflarestorage.com, http://minio.lan:9000 (default AWS)."},
	{Name: "offsite-region", Default: "us-east-1", Description: "The bucket's region."},
	{Name: "offsite-access-key", Secret: true, Description: "Access key ID."},
	{Name: "offsite-secret-key", Secret: true, Description: "Secret access key."},
	{Name: "offsite-path-style", Kind: action.Bool, Default: "false", Description: "Address the bucket in the path (MinIO, Garage, many self-hosted servers) instead of the host name."},
}

// OffsiteInputs are the backup action's inputs for the offsite copy.
var OffsiteInputs = append(slices.Clone(OffsiteConnInputs), []action.Input{
	{Name: "offsite-every", Kind: action.Duration, Description: "Upload only when the newest remote copy is older than this (e.g. 7d for a weekly copy); empty: every backup."},
	{Name: "offsite-required", Kind: action.Bool, Default: "true", Description: "A failed offsite copy fails the job (the local backup is kept either way); false only warns."},
}...)

// OffsiteConn is where the offsite copies are and how to reach them: the
// OffsiteConnInputs.
type OffsiteConn struct {
	URL       string `input:"offsite-url"`
	Endpoint  string `input:"offsite-endpoint"`
	Region    string `input:"offsite-region"`
	AccessKey string `input:"offsite-access-key"`
	SecretKey string `input:"offsite-secret-key"`
	PathStyle bool   `input:"offsite-path-style"`
}

// OffsiteOptions are the backup action's offsite inputs.
type OffsiteOptions struct {
	OffsiteConn
	Every    time.Duration `input:"offsite-every"`
	Required bool          `input:"offsite-required"`
}

// offsite is a checked offsite target.
type offsite struct {
	client   *minio.Client
	endpoint string // for messages
	bucket   string
	prefix   string // key prefix, "" or ending in "/"
	every    time.Duration
	required bool
}

// newOffsite reads the offsite inputs; nil when offsite-url is empty. Problems
// are returned for the caller's usage error.
func newOffsite(in OffsiteOptions) (*offsite, error) {
	raw := in.URL
	if raw == "" {
		return nil, nil
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "s3" || u.Host == "" {
		return nil, fmt.Errorf("input offsite-url: %q is not s3://bucket/prefix", raw)
	}
	ak, sk := in.AccessKey, in.SecretKey
	if ak == "" || sk == "" {
		return nil, errors.New("inputs offsite-access-key and offsite-secret-key are required with offsite-url")
	}
	endpoint, secure := "s3.amazonaws.com", true
	if e := in.Endpoint; e != "" {
		eu, err := url.Parse(e)
		if err != nil || (eu.Scheme != "http" && eu.Scheme != "https") || eu.Host == "" || (eu.Path != "" && eu.Path != "/") {
			return nil, fmt.Errorf("input offsite-endpoint: %q is not http(s)://host[:port]", e)
		}
		endpoint, secure = eu.Host, eu.Scheme == "https"
	}
	lookup := minio.BucketLookupAuto
	if in.PathStyle {
		lookup = minio.BucketLookupPath
	}
	client, err := minio.New(endpoint, &minio.Options{
		Creds: credentials.NewStaticV4(ak, sk, ""), Secure: secure, Region: in.Region, BucketLookup: lookup,
	})
	if err != nil {
		return nil, fmt.Errorf("input offsite-endpoint: %w", err)
	}
	prefix := strings.Trim(u.Path, "/")
	if prefix != "" {
		prefix += "/"
	}
	return &offsite{client: client, endpoint: endpoint, bucket: u.Host, prefix: prefix, every: in.Every, required: in.Required}, nil
}

// where names the target in messages.
func (o *offsite) where() string {
	return fmt.Sprintf("s3://%s/%s on %s", o.bucket, o.prefix, o.endpoint)
}

// explain turns a storage error into what a person can act on.
func (o *offsite) explain(op string, err error) error {
	if err == nil {
		return nil
	}
	cause := err.Error()
	switch minio.ToErrorResponse(err).Code {
	case "NoSuchBucket":
		cause = "no such bucket " + o.bucket
	case "AccessDenied":
		cause = "access denied (the key may not write or read this bucket)"
	case "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidClientTokenId", "XAdminUserNotFound": // the last: versitygw's unknown key
		cause = "bad credentials (offsite-access-key, offsite-secret-key)"
	default:
		var ue *url.Error
		if errors.As(err, &ue) {
			cause = "unreachable: " + ue.Err.Error()
		}
	}
	return fmt.Errorf("offsite copy to %s: %s: %s", o.where(), op, cause)
}

// clockSkew is how far in the future a copy's time may be and still count: the
// clocks of the runners that made the copies may be a little ahead.
const clockSkew = 10 * time.Minute

// remote lists the proven backups of prefix/ext in the target, newest first: a
// copy counts only with its .sha256 beside it and a time that is not in the
// future, so that an object merely named like a backup can neither stop
// offsite-every, nor be kept by the retention in place of a proven copy, nor be
// what latest restores. The objects left out are returned too, for a warning.
func (o *offsite) remote(ctx context.Context, prefix, ext string) (proven []stored, ignored []string, err error) {
	var named []stored
	sums := map[string]bool{}
	for obj := range o.client.ListObjects(ctx, o.bucket, minio.ListObjectsOptions{Prefix: o.prefix + prefix + "-"}) {
		if obj.Err != nil {
			return nil, nil, o.explain("listing", obj.Err)
		}
		name := strings.TrimPrefix(obj.Key, o.prefix)
		if strings.Contains(name, "/") {
			continue
		}
		if base, ok := strings.CutSuffix(name, ".sha256"); ok {
			sums[base] = true
			continue
		}
		if at, ok := backupTime(name, prefix, ext); ok {
			named = append(named, stored{Name: name, At: at})
		}
	}
	latest := time.Now().Add(clockSkew)
	for _, b := range named {
		switch {
		case action.HasControl(b.Name):
			ignored = append(ignored, action.Name(b.Name)+" (control characters in its name)")
		case !sums[b.Name]:
			ignored = append(ignored, b.Name+" (no .sha256 beside it)")
		case b.At.After(latest):
			ignored = append(ignored, b.Name+" (dated in the future)")
		default:
			proven = append(proven, b)
		}
	}
	sort.Slice(proven, func(i, j int) bool { return proven[i].At.After(proven[j].At) })
	return proven, ignored, nil
}

// warnIgnored says which objects named like backups the listing did not count.
func (o *offsite) warnIgnored(a *action.Context, ignored []string) {
	if len(ignored) > 0 {
		a.Warningf("offsite copy to %s: not counted as backups (never kept in place of one, never deleted, never restored): %s", o.where(), strings.Join(ignored, ", "))
	}
}

// publish uploads file under its name. S3 makes an object visible only once
// its upload is complete — a single PUT, or the completion of a multipart upload —
// so an interrupted upload leaves no object under the name (an incomplete
// multipart upload stays out of listings until the bucket's lifecycle rule
// aborts it).
func (o *offsite) publish(ctx context.Context, file string) error {
	name := filepath.Base(file)
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	_, err = o.client.PutObject(ctx, o.bucket, o.prefix+name, f, st.Size(), minio.PutObjectOptions{ContentType: "application/octet-stream"})
	return o.explain("uploading "+name, err)
}

// prove reads the object back and compares its size and SHA-256 with file's.
func (o *offsite) prove(ctx context.Context, file, sum string, size int64) error {
	name := filepath.Base(file)
	obj, err := o.client.GetObject(ctx, o.bucket, o.prefix+name, minio.GetObjectOptions{})
	if err != nil {
		return o.explain("reading "+name+" back", err)
	}
	defer obj.Close()
	h := sha256.New()
	n, err := io.Copy(h, obj)
	if err != nil {
		return o.explain("reading "+name+" back", err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); n != size || got != sum {
		return fmt.Errorf("offsite copy to %s: %s read back as %d bytes with sha256 %s, not %d bytes with sha256 %s: the copy does not count", o.where(), name, n, got, size, sum)
	}
	return nil
}

// prune applies the retention rules to the remote backups (and their .sha256),
// keeping justMade, which has just been proven.
func (o *offsite) prune(ctx context.Context, prefix, ext, justMade string, k Keep) (deleted []string, err error) {
	list, _, err := o.remote(ctx, prefix, ext)
	if err != nil {
		return nil, err
	}
	keep := keepSet(list, k)
	keep[justMade] = true
	for _, b := range list {
		if keep[b.Name] {
			continue
		}
		for _, key := range []string{o.prefix + b.Name, o.prefix + b.Name + ".sha256"} {
			if err := o.client.RemoveObject(ctx, o.bucket, key, minio.RemoveObjectOptions{}); err != nil {
				return deleted, o.explain("deleting "+path.Base(key), err)
			}
		}
		deleted = append(deleted, b.Name)
	}
	return deleted, nil
}

// offsiteStep copies the published backup offsite, proves the copy, and applies
// the remote retention; with offsite-every it uploads only when the newest
// remote copy is old enough.
func offsiteStep(ctx context.Context, j *job) error {
	o := j.offsite
	if o == nil {
		return skip("no offsite-url")
	}
	ext := j.engine.Ext()
	if o.every > 0 {
		list, ignored, err := o.remote(ctx, j.prefix, ext)
		if err != nil {
			return j.offsiteFailed(err)
		}
		o.warnIgnored(j.a, ignored)
		if len(list) > 0 && time.Since(list[0].At) < o.every {
			return skip("the newest copy in %s is %s old, younger than offsite-every %s", o.where(), time.Since(list[0].At).Round(time.Minute), o.every)
		}
	}
	name := filepath.Base(j.final)
	if err := o.publish(ctx, j.final+".sha256"); err != nil {
		return j.offsiteFailed(err)
	}
	if err := o.publish(ctx, j.final); err != nil {
		// The checksum went first; without its backup it is only clutter.
		_ = o.client.RemoveObject(context.WithoutCancel(ctx), o.bucket, o.prefix+name+".sha256", minio.RemoveObjectOptions{})
		return j.offsiteFailed(err)
	}
	if err := o.prove(ctx, j.final, j.wrote.SHA256, j.wrote.Size); err != nil {
		return j.offsiteFailed(err)
	}
	deleted, err := o.prune(ctx, j.prefix, ext, name, j.keep)
	if err != nil {
		return j.offsiteFailed(err)
	}
	j.offsiteCopy = "s3://" + o.bucket + "/" + o.prefix + name
	j.Did("%s, read back: %d bytes, sha256 matches; remote retention deleted %d%s", j.offsiteCopy, j.wrote.Size, len(deleted), listed(deleted))
	return nil
}

// offsiteFailed is a failed offsite copy: the job's failure when it is
// required, else a warning and a skipped step.
func (j *job) offsiteFailed(err error) error {
	if j.offsite.required {
		return err
	}
	j.a.Warningf("%v; the local backup is kept (offsite-required is false)", err)
	return skip("failed, not required: %v", err)
}

// FetchOffsite downloads a backup and its .sha256 from the offsite target the
// connection conn describes into dir, and returns the local path: file is
// s3://bucket/key, or latest for the newest <prefix>-<timestamp>.<ext>.gz under
// offsite-url. The download is verified like any local backup afterwards.
func FetchOffsite(ctx context.Context, a *action.Context, conn OffsiteConn, file, prefix, ext, dir string) (string, error) {
	o, err := newOffsite(OffsiteOptions{OffsiteConn: conn, Required: true})
	if err != nil {
		return "", action.Usagef("%v", err)
	}
	if o == nil {
		return "", action.Usagef("input file: %s is an offsite backup: set offsite-url and its keys", file)
	}
	key := ""
	if file == "latest" {
		list, ignored, err := o.remote(ctx, prefix, ext)
		if err != nil {
			return "", action.Failedf("%w", err)
		}
		o.warnIgnored(a, ignored)
		if len(list) == 0 {
			return "", action.Usagef("input file: no backup named %s-<timestamp>.%s.gz with its .sha256 in %s", prefix, ext, o.where())
		}
		key = o.prefix + list[0].Name
	} else {
		u, err := url.Parse(file)
		if err != nil || u.Scheme != "s3" || u.Host != o.bucket || strings.Trim(u.Path, "/") == "" {
			return "", action.Usagef("input file: %q is not s3://%s/<key> (the bucket of offsite-url)", file, o.bucket)
		}
		key = strings.TrimPrefix(u.Path, "/")
	}
	if action.HasControl(key) {
		return "", action.Usagef("input file: %s: a backup whose name holds control characters is refused (rename it)", action.Name(key))
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", action.Failedf("%w", err)
	}
	local := filepath.Join(dir, path.Base(key))
	for _, k := range []string{key + ".sha256", key} {
		if err := o.client.FGetObject(ctx, o.bucket, k, filepath.Join(dir, path.Base(k)), minio.GetObjectOptions{}); err != nil {
			return "", action.Failedf("%w", o.explain("downloading "+path.Base(k), err))
		}
	}
	return local, nil
}
