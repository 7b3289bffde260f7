// Package s3 is a store.Store in an S3 bucket (AWS or any S3-compatible
// store), shared by every replica of a service.
//
// Layout under the prefix, per model key:
//
//	<key>/<version>/<file>...   the version's files
//	<key>/<version>.manifest    written after the last file: the version is complete
//	<key>/LATEST                the latest complete version's ID, written last
//
// A save uploads the files, then the manifest, then the pointer, so a
// replica killed half-way leaves at most unreferenced files behind: readers
// follow LATEST, which only ever names a version whose manifest exists, and
// List shows only versions with a manifest. Of concurrent saves the last to
// write LATEST wins. Leftovers of interrupted saves are removed by later
// saves of the same key once they are an hour old.
package s3

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"golang.org/x/sync/errgroup"

	"github.com/herd-ml/herd/internal/s3client"
	"github.com/herd-ml/herd/store"
)

// Store is a store.Store in a bucket.
type Store struct {
	client *s3.Client
	bucket string
	prefix string // "" or ending in "/"
	keep   int
	prune  store.PruneSchedule
}

var _ store.Store = (*Store)(nil)

// Timings of pruning: a superseded version may still be loading somewhere
// for pruneAfter; leftovers of a crashed save are surely dead after
// abandonedAfter; one key is listed for pruning at most every pruneEvery.
const (
	pruneAfter     = time.Minute
	abandonedAfter = time.Hour
	pruneEvery     = 10 * time.Second
	parallel       = 8 // uploads or downloads at once per save or load
)

// New returns a Store at uri (s3://bucket or s3://bucket/prefix) that keeps
// the newest keep versions of each model (store.DefaultKeep if keep < 1). It
// checks that the bucket can be reached, so a wrong name or missing
// credentials fail at start, not at the first training.
func New(ctx context.Context, client *s3.Client, uri string, keep int) (*Store, error) {
	u, err := url.Parse(uri)
	if err != nil || u.Scheme != "s3" || u.Host == "" {
		return nil, fmt.Errorf("model store %q: want s3://bucket or s3://bucket/prefix", uri)
	}
	prefix := strings.Trim(u.Path, "/")
	if prefix != "" {
		prefix += "/"
	}
	if keep < 1 {
		keep = store.DefaultKeep
	}
	if _, err := client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(u.Host)}); err != nil {
		switch s3client.Classify(err) {
		case s3client.NoSuchKey, s3client.NoSuchBucket:
			return nil, fmt.Errorf("model store %s: bucket %q does not exist", uri, u.Host)
		case s3client.AccessDenied:
			return nil, fmt.Errorf("model store %s: access denied to bucket %q: check the credentials herd runs with", uri, u.Host)
		}
		return nil, fmt.Errorf("model store %s: %s", uri, s3client.Short(err))
	}
	return &Store{client: client, bucket: u.Host, prefix: prefix, keep: keep, prune: store.PruneSchedule{Every: pruneEvery}}, nil
}

func (s *Store) latestKey(key string) string       { return s.prefix + key + "/LATEST" }
func (s *Store) manifestKey(key, id string) string { return s.prefix + key + "/" + id + ".manifest" }
func (s *Store) fileKey(key, id, rel string) string {
	return s.prefix + key + "/" + id + "/" + rel
}

// manifest lists a complete version's files.
type manifest struct {
	Files []manifestFile `json:"files"`
}

type manifestFile struct {
	Path string `json:"path"` // slash-separated, relative to the version
	Size int64  `json:"size"`
}

// Latest implements store.Store.
func (s *Store) Latest(ctx context.Context, key string) (store.Version, error) {
	body, err := s.get(ctx, s.latestKey(key))
	if err != nil {
		return store.Version{}, s.wrap(key, "cannot read latest version", err)
	}
	id := strings.TrimSpace(string(body))
	return store.Version{ID: id, Created: store.VersionTime(id)}, nil
}

// Save implements store.Store. dir is left in place for the caller.
func (s *Store) Save(ctx context.Context, key, dir string) (store.Version, error) {
	id := store.NewVersionID(time.Now())
	var m manifest
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s: only regular files and directories can be saved", rel)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		m.Files = append(m.Files, manifestFile{Path: filepath.ToSlash(rel), Size: info.Size()})
		return nil
	})
	if err != nil {
		return store.Version{}, fmt.Errorf("cannot save model %s: %w", key, err)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(parallel)
	for _, f := range m.Files {
		g.Go(func() error {
			file, err := os.Open(filepath.Join(dir, filepath.FromSlash(f.Path)))
			if err != nil {
				return err
			}
			defer file.Close()
			_, err = s.client.PutObject(gctx, &s3.PutObjectInput{
				Bucket: &s.bucket, Key: aws.String(s.fileKey(key, id, f.Path)), Body: file, ContentLength: aws.Int64(f.Size),
			})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return store.Version{}, s.wrap(key, "cannot upload version "+id, err)
	}
	body, _ := json.Marshal(m)
	if err := s.put(ctx, s.manifestKey(key, id), body); err != nil {
		return store.Version{}, s.wrap(key, "cannot complete version "+id, err)
	}
	if err := s.put(ctx, s.latestKey(key), []byte(id)); err != nil {
		return store.Version{}, s.wrap(key, "cannot point at version "+id, err)
	}
	if s.prune.Due(key) {
		s.pruneKey(ctx, key, id)
	}
	return store.Version{ID: id, Created: store.VersionTime(id)}, nil
}

// Load implements store.Store.
func (s *Store) Load(ctx context.Context, key, id, dst string) error {
	body, err := s.get(ctx, s.manifestKey(key, id))
	if err != nil {
		return s.wrap(key, "cannot read version "+id, err)
	}
	var m manifest
	if err := json.Unmarshal(body, &m); err != nil {
		return fmt.Errorf("model %s version %s: bad manifest: %w", key, id, err)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(parallel)
	for _, f := range m.Files {
		target := filepath.Join(dst, filepath.FromSlash(f.Path))
		if !filepath.IsLocal(filepath.FromSlash(f.Path)) {
			return fmt.Errorf("model %s version %s: manifest names %q, outside the version", key, id, f.Path)
		}
		g.Go(func() error {
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			out, err := s.client.GetObject(gctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: aws.String(s.fileKey(key, id, f.Path))})
			if err != nil {
				return err
			}
			defer out.Body.Close()
			file, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
			if err != nil {
				return err
			}
			_, err = io.Copy(file, out.Body)
			if cerr := file.Close(); err == nil {
				err = cerr
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return s.wrap(key, "cannot load version "+id, err)
	}
	return nil
}

// List implements store.Store, in one listing of the prefix.
func (s *Store) List(ctx context.Context) ([]store.Model, error) {
	objects, err := s.list(ctx, s.prefix)
	if err != nil {
		return nil, fmt.Errorf("cannot list models: %s", s3client.Short(err))
	}
	byKey := map[string]*store.Model{}
	sizes := map[string]int64{}   // key/id -> bytes
	complete := map[string]bool{} // key/id
	for _, o := range objects {
		rest := strings.TrimPrefix(aws.ToString(o.Key), s.prefix)
		key, name, ok := strings.Cut(rest, "/")
		if !ok {
			continue
		}
		switch {
		case name == "LATEST":
			if body, err := s.get(ctx, aws.ToString(o.Key)); err == nil {
				byKey[key] = &store.Model{Key: key, Latest: strings.TrimSpace(string(body))}
			}
		case strings.HasSuffix(name, ".manifest") && !strings.Contains(name, "/"):
			complete[key+"/"+strings.TrimSuffix(name, ".manifest")] = true
		default:
			id, _, _ := strings.Cut(name, "/")
			sizes[key+"/"+id] += aws.ToInt64(o.Size)
		}
	}
	for kid := range complete {
		key, id, _ := strings.Cut(kid, "/")
		if m := byKey[key]; m != nil {
			m.Versions = append(m.Versions, store.Version{ID: id, Created: store.VersionTime(id), Size: sizes[kid]})
		}
	}
	var models []store.Model
	for _, m := range byKey {
		slices.SortFunc(m.Versions, func(a, b store.Version) int { return strings.Compare(a.ID, b.ID) })
		models = append(models, *m)
	}
	slices.SortFunc(models, func(a, b store.Model) int { return strings.Compare(a.Key, b.Key) })
	return models, nil
}

// Delete implements store.Store. The pointer goes first, so readers stop
// finding the model before its versions go.
func (s *Store) Delete(ctx context.Context, key string) error {
	if _, err := s.Latest(ctx, key); err != nil {
		return err
	}
	if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: aws.String(s.latestKey(key))}); err != nil {
		return s.wrap(key, "cannot delete", err)
	}
	objects, err := s.list(ctx, s.prefix+key+"/")
	if err != nil {
		return s.wrap(key, "cannot list versions to delete", err)
	}
	return s.deleteObjects(ctx, objects)
}

// pruneKey removes key's complete versions beyond the newest s.keep once they
// are older than pruneAfter, and what interrupted saves left once it is
// older than abandonedAfter. Failures only leave old objects behind.
func (s *Store) pruneKey(ctx context.Context, key, latest string) {
	objects, err := s.list(ctx, s.prefix+key+"/")
	if err != nil {
		return
	}
	var complete []string
	byID := map[string][]types.Object{}
	for _, o := range objects {
		name := strings.TrimPrefix(aws.ToString(o.Key), s.prefix+key+"/")
		if name == "LATEST" {
			continue
		}
		if id, ok := strings.CutSuffix(name, ".manifest"); ok && !strings.Contains(id, "/") {
			complete = append(complete, id)
			byID[id] = append(byID[id], o)
			continue
		}
		id, _, _ := strings.Cut(name, "/")
		byID[id] = append(byID[id], o)
	}
	var doomed []types.Object
	for _, id := range store.Expendable(complete, latest, s.keep, pruneAfter) {
		doomed = append(doomed, byID[id]...)
	}
	for id, objs := range byID {
		if !slices.Contains(complete, id) && id != latest && time.Since(store.VersionTime(id)) > abandonedAfter {
			doomed = append(doomed, objs...)
		}
	}
	_ = s.deleteObjects(ctx, doomed)
}

func (s *Store) deleteObjects(ctx context.Context, objects []types.Object) error {
	for batch := range slices.Chunk(objects, 1000) {
		ids := make([]types.ObjectIdentifier, len(batch))
		for i, o := range batch {
			ids[i] = types.ObjectIdentifier{Key: o.Key}
		}
		out, err := s.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: &s.bucket, Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)}})
		if err != nil {
			return fmt.Errorf("cannot delete objects: %s", s3client.Short(err))
		}
		if len(out.Errors) > 0 {
			return fmt.Errorf("cannot delete %s: %s", aws.ToString(out.Errors[0].Key), aws.ToString(out.Errors[0].Message))
		}
	}
	return nil
}

func (s *Store) list(ctx context.Context, prefix string) ([]types.Object, error) {
	var objects []types.Object
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: &s.bucket, Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		objects = append(objects, page.Contents...)
	}
	return objects, nil
}

func (s *Store) get(ctx context.Context, key string) ([]byte, error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: &key})
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	return io.ReadAll(out.Body)
}

func (s *Store) put(ctx context.Context, key string, body []byte) error {
	_, err := s.client.PutObject(ctx, &s3.PutObjectInput{Bucket: &s.bucket, Key: &key, Body: bytes.NewReader(body)})
	return err
}

// wrap turns an S3 error about key into store.ErrNotFound or a message
// that names the model and the bucket.
func (s *Store) wrap(key, what string, err error) error {
	switch s3client.Classify(err) {
	case s3client.NoSuchKey:
		return store.ErrNotFound
	case s3client.NoSuchBucket:
		return fmt.Errorf("model %s: %s: bucket %q does not exist", key, what, s.bucket)
	case s3client.AccessDenied:
		return fmt.Errorf("model %s: %s: access denied to s3://%s/%s: check the credentials herd runs with", key, what, s.bucket, path.Join(s.prefix, key))
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("model %s: %s: %w", key, what, err)
	}
	return fmt.Errorf("model %s: %s: %s", key, what, s3client.Short(err))
}
