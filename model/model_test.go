package model

import (
	"context"
	"os"
	"path/filepath"
	"testing"

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
