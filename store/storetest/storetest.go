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

	listTests(t, newStore)

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

func listTests(t *testing.T, newStore func(t *testing.T) store.Store) {
	t.Run("list describes every model and its versions", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		s := newStore(t)
		if models, err := s.List(ctx); err != nil || len(models) != 0 {
			t.Fatalf("empty store lists %v, %v", models, err)
		}
		var saved []store.Version
		for _, content := range []string{"one", "three"} {
			src := t.TempDir()
			write(t, filepath.Join(src, "sub", "state"), content)
			v, err := s.Save(ctx, "m", src)
			if err != nil {
				t.Fatal(err)
			}
			saved = append(saved, v)
		}
		src := t.TempDir()
		write(t, filepath.Join(src, "x"), "x")
		if _, err := s.Save(ctx, "a", src); err != nil {
			t.Fatal(err)
		}
		models, err := s.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(models) != 2 || models[0].Key != "a" || models[1].Key != "m" {
			t.Fatalf("List = %+v, want a and m in order", models)
		}
		m := models[1]
		if m.Latest != saved[1].ID || len(m.Versions) != 2 || m.Versions[0].ID != saved[0].ID || m.Versions[1].ID != saved[1].ID {
			t.Fatalf("m = %+v, want versions %s, %s (latest)", m, saved[0].ID, saved[1].ID)
		}
		if m.Versions[0].Size != 3 || m.Versions[1].Size != 5 || m.Versions[1].Created.IsZero() {
			t.Fatalf("sizes %d, %d and created %v; want 3, 5 and the save time", m.Versions[0].Size, m.Versions[1].Size, m.Versions[1].Created)
		}
	})

	t.Run("delete removes every version", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		s := newStore(t)
		src := t.TempDir()
		write(t, filepath.Join(src, "x"), "x")
		v, err := s.Save(ctx, "gone", src)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, "gone"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Latest(ctx, "gone"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Latest after Delete: %v, want ErrNotFound", err)
		}
		if err := s.Load(ctx, "gone", v.ID, t.TempDir()); err == nil {
			t.Fatal("a deleted version still loads")
		}
		if models, _ := s.List(ctx); len(models) != 0 {
			t.Fatalf("List after Delete = %+v", models)
		}
		if err := s.Delete(ctx, "gone"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("second Delete: %v, want ErrNotFound", err)
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
