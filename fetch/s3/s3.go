// Package s3 fetches s3://bucket/key inputs, and keys relative to a default
// bucket as the 2016 wrapper accepted them ("files": ["path/in/bucket"]),
// through the AWS SDK, with a local cache keyed by URI and ETag.
//
// Each fetch asks the store for the object's size and ETag first (one HEAD):
// an object over the size limit is refused before a byte is downloaded, and
// a changed object is downloaded again, never served stale from the cache.
package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/herd-ml/herd/fetch"
	"github.com/herd-ml/herd/fetch/filecache"
	"github.com/herd-ml/herd/internal/s3client"
)

// Config configures a Fetcher.
type Config struct {
	Client   *s3.Client
	Bucket   string           // bucket of keys given without s3://; "" refuses them
	Cache    *filecache.Cache // nil: download every time
	MaxSize  int64            // largest object, in bytes; default 1 GiB
	Parallel int              // downloads at once; default 8
	Timeout  time.Duration    // per download; default 10 minutes
	// Downloaded, if set, is told the size of each completed download
	// (not of cache hits): for a bytes-fetched metric.
	Downloaded func(bytes int64)
}

// Fetcher is a fetch.Fetcher for S3 objects.
type Fetcher struct {
	cfg   Config
	slots chan struct{}
}

var _ fetch.Fetcher = (*Fetcher)(nil)

// New returns a Fetcher for cfg.
func New(cfg Config) *Fetcher {
	if cfg.MaxSize <= 0 {
		cfg.MaxSize = 1 << 30
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 8
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Minute
	}
	return &Fetcher{cfg: cfg, slots: make(chan struct{}, cfg.Parallel)}
}

// object is one parsed S3 location.
type object struct{ bucket, key string }

func (o object) String() string { return "s3://" + o.bucket + "/" + o.key }

func (f *Fetcher) parse(uri string) (object, error) {
	if !strings.Contains(uri, "://") {
		if f.cfg.Bucket == "" {
			return object{}, fetch.Errorf(fetch.KindInvalid, uri, "a key without s3:// needs a default bucket (--s3-bucket)")
		}
		key := strings.TrimPrefix(uri, "/")
		if key == "" || strings.HasSuffix(key, "/") {
			return object{}, fetch.Errorf(fetch.KindInvalid, uri, "not an object key")
		}
		return object{f.cfg.Bucket, key}, nil
	}
	u, err := url.Parse(uri)
	if err != nil || u.Scheme != "s3" {
		return object{}, fetch.Errorf(fetch.KindInvalid, uri, "not an s3://bucket/key URI")
	}
	key := strings.TrimPrefix(u.Path, "/")
	if u.Host == "" || key == "" || strings.HasSuffix(key, "/") {
		return object{}, fetch.Errorf(fetch.KindInvalid, uri, "not an s3://bucket/key URI (bucket and key are both needed)")
	}
	return object{u.Host, key}, nil
}

// Check implements fetch.Fetcher: the URI must name a bucket and a key.
func (f *Fetcher) Check(uri string) error {
	_, err := f.parse(uri)
	return err
}

// Fetch implements fetch.Fetcher, placing the object in dir.
func (f *Fetcher) Fetch(ctx context.Context, uri, dir string) (string, error) {
	obj, err := f.parse(uri)
	if err != nil {
		return "", err
	}
	head, err := f.cfg.Client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &obj.bucket, Key: &obj.key})
	if err != nil {
		return "", f.fail(ctx, uri, obj, err)
	}
	size, etag := aws.ToInt64(head.ContentLength), aws.ToString(head.ETag)
	if size > f.cfg.MaxSize {
		return "", fetch.Errorf(fetch.KindTooLarge, uri, "the object is %d bytes, over the limit of %d (--max-file-size)", size, f.cfg.MaxSize)
	}
	dst := fetch.LocalName(dir, uri, path.Base(obj.key))
	download := func(ctx context.Context, w io.Writer) error {
		select {
		case f.slots <- struct{}{}:
			defer func() { <-f.slots }()
		case <-ctx.Done():
			return context.Cause(ctx)
		}
		ctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
		defer cancel()
		in := &s3.GetObjectInput{Bucket: &obj.bucket, Key: &obj.key}
		if etag != "" {
			in.IfMatch = &etag // the bytes must be the ones the cache entry is named after
		}
		out, err := f.cfg.Client.GetObject(ctx, in)
		if err != nil {
			return err
		}
		defer out.Body.Close()
		n, err := io.Copy(w, io.LimitReader(out.Body, f.cfg.MaxSize+1))
		switch {
		case err != nil:
			return err
		case n > f.cfg.MaxSize:
			return errTooLarge
		case n != size:
			return fmt.Errorf("object changed during the download: got %d bytes, expected %d", n, size)
		}
		if f.cfg.Downloaded != nil {
			f.cfg.Downloaded(n)
		}
		return nil
	}
	if f.cfg.Cache == nil {
		err = fetch.WriteNew(ctx, dst, download)
	} else {
		// Keyed by the object, not the spelling: "k" and "s3://bucket/k" share.
		_, err = f.cfg.Cache.Fetch(ctx, obj.String()+"\x00"+etag, dst, size, download)
	}
	if errors.Is(err, errTooLarge) {
		return "", fetch.Errorf(fetch.KindTooLarge, uri, "over the limit of %d bytes (--max-file-size)", f.cfg.MaxSize)
	}
	if err != nil {
		return "", f.fail(ctx, uri, obj, err)
	}
	return dst, nil
}

var errTooLarge = errors.New("object over the size limit")

// fail turns an S3 error into a fetch.Error whose message says what to fix.
func (f *Fetcher) fail(ctx context.Context, uri string, obj object, err error) error {
	switch s3client.Classify(err) {
	case s3client.NoSuchKey:
		// A HEAD's 404 does not say whether the key or the bucket is missing.
		if _, berr := f.cfg.Client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &obj.bucket}); berr != nil && s3client.Classify(berr) == s3client.NoSuchKey {
			return fetch.Errorf(fetch.KindNotFound, uri, "bucket %q does not exist", obj.bucket)
		}
		return fetch.Errorf(fetch.KindNotFound, uri, "no such object: %s", obj)
	case s3client.NoSuchBucket:
		return fetch.Errorf(fetch.KindNotFound, uri, "bucket %q does not exist", obj.bucket)
	case s3client.AccessDenied:
		return fetch.Errorf(fetch.KindForbidden, uri, "access denied to %s: check the credentials herd runs with (%s)", obj, s3client.Short(err))
	}
	if ctx.Err() != nil {
		return &fetch.Error{Kind: fetch.KindUnavailable, URI: uri, Err: context.Cause(ctx)}
	}
	return fetch.Errorf(fetch.KindUnavailable, uri, "S3 request failed: %s", s3client.Short(err))
}
