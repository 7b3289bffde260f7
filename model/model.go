// Package model gives workers a model key's state directory: for /output the
// latest saved version, read in place or cached locally; for train and input
// a private working copy, saved back to the store as a new version only when
// the job succeeds. A half-written model is therefore never served.
package model

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/herd-ml/herd/store"
)

// DefaultKey is the model key of calls that name none.
const DefaultKey = "default"

var keyPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$`)

// ValidKey reports whether key can name a model: 1 to 128 letters, digits,
// '.', '_', '@' or '-', starting with a letter or digit.
func ValidKey(key string) bool { return keyPattern.MatchString(key) }

// Manager hands out state directories. It is safe for concurrent use.
type Manager struct {
	store store.Store
	dir   string // local cache and working copies
}

// NewManager returns a Manager over s that keeps local copies under dir.
func NewManager(s store.Store, dir string) (*Manager, error) {
	for _, sub := range []string{"cache", "work", "empty"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, err
		}
	}
	return &Manager{store: s, dir: dir}, nil
}

// ReadDir returns a directory holding the latest version of key, and its
// version id ("" for a model never trained, whose directory is empty).
// Callers must not write to it.
func (m *Manager) ReadDir(ctx context.Context, key string) (dir, version string, err error) {
	v, err := m.store.Latest(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return filepath.Join(m.dir, "empty"), "", nil
	}
	if err != nil {
		return "", "", fmt.Errorf("cannot read model %s: %w", key, err)
	}
	if local, ok := m.store.(store.Local); ok {
		return local.Path(key, v.ID), v.ID, nil
	}
	cached := filepath.Join(m.dir, "cache", key, v.ID)
	if _, err := os.Stat(cached); err == nil {
		return cached, v.ID, nil
	}
	if err := os.MkdirAll(filepath.Dir(cached), 0o755); err != nil {
		return "", "", err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(cached), ".load-")
	if err != nil {
		return "", "", err
	}
	defer os.RemoveAll(tmp)
	if err := m.store.Load(ctx, key, v.ID, tmp); err != nil {
		return "", "", fmt.Errorf("cannot load model %s version %s: %w", key, v.ID, err)
	}
	// Versions are immutable, so if another request loaded it meanwhile
	// either copy will do.
	if err := os.Rename(tmp, cached); err != nil {
		if _, statErr := os.Stat(cached); statErr != nil {
			return "", "", err
		}
	}
	dropSuperseded(filepath.Dir(cached), v.ID)
	return cached, v.ID, nil
}

// supersededAge is how long a replaced cached version stays for /output
// calls that may still read it (longer than any output timeout).
const supersededAge = 10 * time.Minute

// dropSuperseded removes the cached versions in keyDir older than latest,
// except the one just before it, once they have been replaced for
// supersededAge. Without it a replica's cache grows by one copy of the
// model per training.
func dropSuperseded(keyDir, latest string) {
	entries, err := os.ReadDir(keyDir)
	if err != nil {
		return
	}
	var older []os.DirEntry
	for _, e := range entries { // sorted by name, and version IDs sort by time
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") && e.Name() < latest {
			older = append(older, e)
		}
	}
	// Each version was replaced when the next one was cached.
	for i := 0; i+1 < len(older); i++ {
		if info, err := older[i+1].Info(); err == nil && time.Since(info.ModTime()) > supersededAge {
			_ = os.RemoveAll(filepath.Join(keyDir, older[i].Name()))
		}
	}
}

// Checkout returns a new private working directory holding the latest
// version of key (empty for a model never trained). Pass it to Commit or
// Discard.
func (m *Manager) Checkout(ctx context.Context, key string) (string, error) {
	work, err := os.MkdirTemp(filepath.Join(m.dir, "work"), key+"-")
	if err != nil {
		return "", err
	}
	v, err := m.store.Latest(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return work, nil
	}
	if err == nil {
		err = m.store.Load(ctx, key, v.ID, work)
	}
	if err != nil {
		_ = os.RemoveAll(work)
		return "", fmt.Errorf("cannot check out model %s: %w", key, err)
	}
	return work, nil
}

// Commit saves the working directory as the new latest version of key. The
// directory is gone afterwards, moved into the store or removed.
func (m *Manager) Commit(ctx context.Context, key, work string) (store.Version, error) {
	v, err := m.store.Save(ctx, key, work)
	if err != nil {
		m.Discard(work)
		return store.Version{}, fmt.Errorf("cannot save model %s: %w", key, err)
	}
	if _, statErr := os.Lstat(work); statErr == nil {
		m.Discard(work) // the store copied it
	}
	return v, nil
}

// Discard removes a working directory without saving it.
func (m *Manager) Discard(work string) { _ = os.RemoveAll(work) }

// List describes every saved model: keys, versions, sizes and times.
func (m *Manager) List(ctx context.Context) ([]store.Model, error) {
	models, err := m.store.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("cannot list models: %w", err)
	}
	return models, nil
}

// Delete removes every version of key from the store, and this replica's
// cached copies. It returns store.ErrNotFound for a key never saved.
func (m *Manager) Delete(ctx context.Context, key string) error {
	err := m.store.Delete(ctx, key)
	_ = os.RemoveAll(filepath.Join(m.dir, "cache", key))
	return err
}
