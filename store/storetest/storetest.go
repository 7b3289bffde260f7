// Package storetest is the conformance suite every store.Store passes.
package storetest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/herd-ml/herd/store"
)

// Run exercises s; newStore must return an empty store each call.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	t.Run("latest of an unknown key is ErrNotFound", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		if _, err := s.Latest(context.Background(), "nobody"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("err = %v, want ErrNotFound", err)
		}
	})

	t.Run("save then load round-trips files", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		s := newStore(t)
		src := t.TempDir()
		write(t, filepath.Join(src, "weights.bin"), "w1")
		write(t, filepath.Join(src, "sub", "vocab.txt"), "v1")
		v, err := s.Save(ctx, "alice", src)
		if err != nil {
			t.Fatal(err)
		}
		latest, err := s.Latest(ctx, "alice")
		if err != nil || latest.ID != v.ID {
			t.Fatalf("Latest = %v, %v; want %s", latest, err, v.ID)
		}
		if latest.Created.IsZero() || time.Since(latest.Created) > time.Minute {
			t.Fatalf("Latest.Created = %v, want the save time", latest.Created)
		}
		dst := t.TempDir()
		if err := s.Load(ctx, "alice", v.ID, dst); err != nil {
			t.Fatal(err)
		}
		if got := read(t, filepath.Join(dst, "sub", "vocab.txt")); got != "v1" {
			t.Fatalf("loaded %q", got)
		}
		// A version is immutable: changing a loaded copy changes nothing.
		write(t, filepath.Join(dst, "weights.bin"), "w2")
		dst2 := t.TempDir()
		if err := s.Load(ctx, "alice", v.ID, dst2); err != nil {
			t.Fatal(err)
		}
		if got := read(t, filepath.Join(dst2, "weights.bin")); got != "w1" {
			t.Fatalf("version changed after save: %q", got)
		}
	})

	t.Run("the last completed save is latest", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		s := newStore(t)
		var mu sync.Mutex
		var last string
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				src := t.TempDir()
				write(t, filepath.Join(src, "x"), "x")
				mu.Lock() // serialise completion order so "last" is well defined
				defer mu.Unlock()
				v, err := s.Save(ctx, "k", src)
				if err != nil {
					t.Error(err)
					return
				}
				last = v.ID
			})
		}
		wg.Wait()
		latest, err := s.Latest(ctx, "k")
		if err != nil || latest.ID != last {
			t.Fatalf("Latest = %v, %v; want %s", latest, err, last)
		}
	})

	t.Run("keys are independent", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		s := newStore(t)
		src := t.TempDir()
		write(t, filepath.Join(src, "x"), "x")
		if _, err := s.Save(ctx, "a", src); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Latest(ctx, "b"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("b: %v, want ErrNotFound", err)
		}
	})
}

func write(t *testing.T, name, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
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
