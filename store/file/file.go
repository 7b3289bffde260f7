// Package file is a store.Store on a local (or shared network) directory.
//
// Layout: ROOT/<key>/<version>/... holds each version; ROOT/<key>/LATEST is
// a symbolic link to the latest one, replaced atomically by rename. Reading
// the pointer is one readlink, which matters: /output reads it every call.
package file

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/herd-ml/herd/store"
)

// Store is a store.Store in a directory.
type Store struct {
	root  string
	keep  int
	prune store.PruneSchedule
}

var (
	_ store.Store = (*Store)(nil)
	_ store.Local = (*Store)(nil)
)

// pruneAfter protects a superseded version that a reader may still be
// loading: it is removed only once it is older than this. pruneEvery limits
// how often one key's directory is listed.
const (
	pruneAfter = time.Minute
	pruneEvery = 10 * time.Second
)

// New returns a Store rooted at root, creating it if needed, that keeps the
// newest keep versions of each model (store.DefaultKeep if keep < 1).
func New(root string, keep int) (*Store, error) {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create model store %s: %w", root, err)
	}
	if keep < 1 {
		keep = store.DefaultKeep
	}
	return &Store{root: root, keep: keep, prune: store.PruneSchedule{Every: pruneEvery}}, nil
}

// Latest implements store.Store.
func (s *Store) Latest(_ context.Context, key string) (store.Version, error) {
	id, err := os.Readlink(filepath.Join(s.root, key, "LATEST"))
	if errors.Is(err, fs.ErrNotExist) {
		return store.Version{}, store.ErrNotFound
	}
	if err != nil {
		return store.Version{}, fmt.Errorf("model %s: cannot read latest version: %w", key, err)
	}
	return store.Version{ID: id, Created: store.VersionTime(id)}, nil
}

// Save implements store.Store. A dir on the same file system is moved into
// the store, not copied.
func (s *Store) Save(ctx context.Context, key, dir string) (store.Version, error) {
	keyDir := filepath.Join(s.root, key)
	id := store.NewVersionID(time.Now())
	final := filepath.Join(keyDir, id)
	err := os.Rename(dir, final)
	if errors.Is(err, fs.ErrNotExist) { // the model's first version
		if err := os.MkdirAll(keyDir, 0o755); err != nil {
			return store.Version{}, err
		}
		err = os.Rename(dir, final)
	}
	if err != nil {
		// Another file system: copy to a temporary name, then rename, so a
		// version is never visible half-copied.
		tmp := filepath.Join(keyDir, ".tmp-"+id)
		if err := CopyDir(ctx, dir, tmp); err != nil {
			_ = os.RemoveAll(tmp)
			return store.Version{}, fmt.Errorf("cannot save model %s: %w", key, err)
		}
		if err := os.Rename(tmp, final); err != nil {
			_ = os.RemoveAll(tmp)
			return store.Version{}, err
		}
	}
	if err := pointAtomic(filepath.Join(keyDir, "LATEST"), id); err != nil {
		return store.Version{}, err
	}
	if s.prune.Due(key) {
		s.pruneKey(keyDir, id)
	}
	return store.Version{ID: id, Created: store.VersionTime(id)}, nil
}

// pruneKey removes versions of a key beyond the newest s.keep, once they are
// older than pruneAfter. Failures only leave old versions behind.
func (s *Store) pruneKey(keyDir, latest string) {
	entries, err := os.ReadDir(keyDir)
	if err != nil {
		return
	}
	var versions []string
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			versions = append(versions, e.Name())
		}
	}
	for _, v := range store.Expendable(versions, latest, s.keep, pruneAfter) {
		_ = os.RemoveAll(filepath.Join(keyDir, v))
	}
}

// Load implements store.Store.
func (s *Store) Load(ctx context.Context, key, id, dst string) error {
	src := filepath.Join(s.root, key, id)
	if _, err := os.Stat(src); errors.Is(err, fs.ErrNotExist) {
		return store.ErrNotFound
	}
	return CopyDir(ctx, src, dst)
}

// List implements store.Store.
func (s *Store) List(ctx context.Context) ([]store.Model, error) {
	keys, err := os.ReadDir(s.root)
	if err != nil {
		return nil, err
	}
	var models []store.Model
	for _, k := range keys {
		if !k.IsDir() || strings.HasPrefix(k.Name(), ".") {
			continue
		}
		latest, err := s.Latest(ctx, k.Name())
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		m := store.Model{Key: k.Name(), Latest: latest.ID}
		entries, err := os.ReadDir(filepath.Join(s.root, k.Name()))
		if err != nil {
			return nil, err
		}
		for _, e := range entries { // ReadDir sorts by name, and IDs by time
			if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			size, err := dirSize(filepath.Join(s.root, k.Name(), e.Name()))
			if err != nil {
				continue // pruned meanwhile
			}
			m.Versions = append(m.Versions, store.Version{ID: e.Name(), Created: store.VersionTime(e.Name()), Size: size})
		}
		models = append(models, m)
	}
	return models, nil
}

func dirSize(dir string) (int64, error) {
	var size int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			size += info.Size()
		}
		return nil
	})
	return size, err
}

// Delete implements store.Store. The pointer goes first, so readers stop
// finding the model before its versions go.
func (s *Store) Delete(_ context.Context, key string) error {
	keyDir := filepath.Join(s.root, key)
	err := os.Remove(filepath.Join(keyDir, "LATEST"))
	if errors.Is(err, fs.ErrNotExist) {
		return store.ErrNotFound
	}
	if err != nil {
		return err
	}
	return os.RemoveAll(keyDir)
}

// Path implements store.Local.
func (s *Store) Path(key, id string) string { return filepath.Join(s.root, key, id) }

// CopyDir copies the regular files and directories under src into dst,
// creating dst if it does not exist. Symlinks are refused: a model's state
// is plain files.
func CopyDir(ctx context.Context, src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir() && rel == ".":
			if err := os.Mkdir(target, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
			return nil
		case d.IsDir():
			return os.Mkdir(target, 0o755)
		case d.Type().IsRegular():
			return copyFile(path, target)
		default:
			return fmt.Errorf("%s: only regular files and directories can be saved", rel)
		}
	})
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// pointAtomic makes name a symbolic link to target, replacing any old link
// in one rename so readers see the old or the new target, never none.
func pointAtomic(name, target string) error {
	tmp := fmt.Sprintf("%s.tmp-%s", name, store.NewVersionID(time.Now()))
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, name); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return nil
}
