// Package file is a store.Store on a local (or shared network) directory.
//
// Layout: ROOT/<key>/<version>/... holds each version; ROOT/<key>/LATEST
// names the latest one and is replaced atomically by rename.
package file

import (
	"context"
	"crypto/rand"
	"encoding/hex"
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
	root string
}

var (
	_ store.Store = (*Store)(nil)
	_ store.Local = (*Store)(nil)
)

// New returns a Store rooted at root, creating it if needed.
func New(root string) (*Store, error) {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create model store %s: %w", root, err)
	}
	return &Store{root: root}, nil
}

// Latest implements store.Store.
func (s *Store) Latest(_ context.Context, key string) (store.Version, error) {
	b, err := os.ReadFile(filepath.Join(s.root, key, "LATEST"))
	if errors.Is(err, fs.ErrNotExist) {
		return store.Version{}, store.ErrNotFound
	}
	if err != nil {
		return store.Version{}, err
	}
	id := strings.TrimSpace(string(b))
	st, err := os.Stat(filepath.Join(s.root, key, id))
	if err != nil {
		return store.Version{}, fmt.Errorf("model %s: latest version %s: %w", key, id, err)
	}
	return store.Version{ID: id, Created: st.ModTime().UTC()}, nil
}

// Save implements store.Store.
func (s *Store) Save(ctx context.Context, key, dir string) (store.Version, error) {
	keyDir := filepath.Join(s.root, key)
	if err := os.MkdirAll(keyDir, 0o755); err != nil {
		return store.Version{}, err
	}
	id := NewVersionID(time.Now())
	tmp := filepath.Join(keyDir, ".tmp-"+id)
	if err := CopyDir(ctx, dir, tmp); err != nil {
		_ = os.RemoveAll(tmp)
		return store.Version{}, fmt.Errorf("cannot save model %s: %w", key, err)
	}
	final := filepath.Join(keyDir, id)
	if err := os.Rename(tmp, final); err != nil {
		_ = os.RemoveAll(tmp)
		return store.Version{}, err
	}
	if err := writeAtomic(filepath.Join(keyDir, "LATEST"), []byte(id+"\n")); err != nil {
		return store.Version{}, err
	}
	return store.Version{ID: id, Created: time.Now().UTC()}, nil
}

// Load implements store.Store.
func (s *Store) Load(ctx context.Context, key, id, dst string) error {
	src := filepath.Join(s.root, key, id)
	if _, err := os.Stat(src); errors.Is(err, fs.ErrNotExist) {
		return store.ErrNotFound
	}
	return CopyDir(ctx, src, dst)
}

// Path implements store.Local.
func (s *Store) Path(key, id string) string { return filepath.Join(s.root, key, id) }

// NewVersionID returns an ID that sorts by time, with random bits so that two
// replicas saving in the same nanosecond differ.
func NewVersionID(t time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%s", t.UTC().Format("20060102T150405.000000000Z"), hex.EncodeToString(b[:]))
}

// CopyDir copies the regular files and directories under src to dst, which
// must not exist. Symlinks are refused: a model's state is plain files.
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

func writeAtomic(name string, data []byte) error {
	tmp := fmt.Sprintf("%s.tmp-%s", name, NewVersionID(time.Now()))
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, name); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return nil
}
