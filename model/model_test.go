package model

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/herd-ml/herd/store"
	"github.com/herd-ml/herd/store/file"
)

// remote hides store.Local, so the Manager must copy versions into its cache
// as it will for object stores.
type remote struct{ store.Store }

func TestManager(t *testing.T) {
	t.Parallel()

	for name, local := range map[string]bool{"local store": true, "remote store": false} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			fs, err := file.New(t.TempDir(), 0)
			if err != nil {
				t.Fatal(err)
			}
			var s store.Store = fs
			if !local {
				s = remote{fs}
			}
			m, err := NewManager(s, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}

			dir, version, err := m.ReadDir(ctx, "alice")
			if err != nil || version != "" {
				t.Fatalf("untrained model: %q %q %v", dir, version, err)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Fatalf("untrained model's directory is not empty: %v", entries)
			}

			work, err := m.Checkout(ctx, "alice")
			if err != nil {
				t.Fatal(err)
			}
			write(t, filepath.Join(work, "w"), "v1")
			v1, err := m.Commit(ctx, "alice", work)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(work); !os.IsNotExist(err) {
				t.Fatal("working copy left behind after commit")
			}

			// A failed job's changes are discarded: the next checkout sees v1.
			work, _ = m.Checkout(ctx, "alice")
			if got := read(t, filepath.Join(work, "w")); got != "v1" {
				t.Fatalf("checkout = %q, want v1", got)
			}
			write(t, filepath.Join(work, "w"), "half-written")
			m.Discard(work)

			dir, version, err = m.ReadDir(ctx, "alice")
			if err != nil || version != v1.ID || read(t, filepath.Join(dir, "w")) != "v1" {
				t.Fatalf("ReadDir = %q %q %v, want version %s holding v1", dir, version, err, v1.ID)
			}
			again, _, _ := m.ReadDir(ctx, "alice")
			if again != dir {
				t.Fatalf("second ReadDir = %q, want the cached %q", again, dir)
			}
			if _, v, _ := m.ReadDir(ctx, "bob"); v != "" {
				t.Fatal("bob sees alice's model")
			}
		})
	}

	t.Run("valid keys", func(t *testing.T) {
		t.Parallel()
		for key, want := range map[string]bool{
			"default": true, "s002": true, "user@example.com": true, "a.b-c_d": true,
			"": false, "../x": false, ".hidden": false, "a/b": false, "sp ace": false,
		} {
			if ValidKey(key) != want {
				t.Errorf("ValidKey(%q) = %v", key, !want)
			}
		}
	})
}

func write(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDropSuperseded(t *testing.T) {
	t.Parallel()
	keyDir := t.TempDir()
	start := time.Now().Add(-time.Hour)
	var ids []string
	for i := range 5 {
		id := store.NewVersionID(start.Add(time.Duration(i) * time.Minute))
		ids = append(ids, id)
		if err := os.Mkdir(filepath.Join(keyDir, id), 0o755); err != nil {
			t.Fatal(err)
		}
		// ids[0..2] were cached long ago, ids[3] a minute ago, ids[4] now.
		cachedAt := start.Add(time.Duration(i) * time.Minute)
		if i == 3 {
			cachedAt = time.Now().Add(-time.Minute)
		}
		if i < 4 {
			if err := os.Chtimes(filepath.Join(keyDir, id), cachedAt, cachedAt); err != nil {
				t.Fatal(err)
			}
		}
	}
	dropSuperseded(keyDir, ids[4])
	var left []string
	entries, _ := os.ReadDir(keyDir)
	for _, e := range entries {
		left = append(left, e.Name())
	}
	// ids[0] and ids[1] were replaced long ago; ids[2] only a minute ago
	// (when ids[3] came), ids[3] is the one before the latest.
	if want := ids[2:]; !slices.Equal(left, want) {
		t.Fatalf("left %v, want %v", left, want)
	}
}
