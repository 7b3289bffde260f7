package filecache_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/herd-ml/herd/fetch/filecache"
)

func content(s string, calls *int) filecache.Fill {
	return func(_ context.Context, w io.Writer) error {
		*calls++
		_, err := io.WriteString(w, s)
		return err
	}
}

func TestEvictsLeastRecentlyUsed(t *testing.T) {
	c, err := filecache.New(filepath.Join(t.TempDir(), "cache"), 10)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	dir := t.TempDir()
	var a, b, d, n int
	fetch := func(key string, fill filecache.Fill) bool {
		t.Helper()
		n++
		hit, err := c.Fetch(ctx, key, filepath.Join(dir, fmt.Sprint(key, n)), 4, fill)
		if err != nil {
			t.Fatal(err)
		}
		return hit
	}
	fetch("a", content("aaaa", &a))
	fetch("b", content("bbbb", &b))
	if !fetch("a", content("aaaa", &a)) { // a is now the most recent
		t.Fatal("second fetch of a missed")
	}
	fetch("d", content("dddd", &d)) // 12 bytes > 10: b goes
	if c.Size() > 10 {
		t.Fatalf("cache holds %d bytes, limit 10", c.Size())
	}
	if !fetch("a", content("aaaa", &a)) {
		t.Fatal("a was evicted, though b was used less recently")
	}
	if fetch("b", content("bbbb", &b)) {
		t.Fatal("b still cached")
	}
	if a != 1 || b != 2 || d != 1 {
		t.Fatalf("downloads a=%d b=%d d=%d, want 1 2 1", a, b, d)
	}
}

func TestFailedFillLeavesNothing(t *testing.T) {
	cacheDir := filepath.Join(t.TempDir(), "cache")
	c, err := filecache.New(cacheDir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "out")
	boom := errors.New("connection reset")
	_, err = c.Fetch(context.Background(), "k", dst, 10, func(_ context.Context, w io.Writer) error {
		_, _ = io.WriteString(w, "half")
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the fill's", err)
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Fatalf("dst exists after a failed fill: %v", err)
	}
	if entries, _ := os.ReadDir(cacheDir); len(entries) != 0 {
		t.Fatalf("cache dir holds %d files after a failed fill", len(entries))
	}
	calls := 0
	if hit, err := c.Fetch(context.Background(), "k", dst, 4, content("full", &calls)); err != nil || hit || calls != 1 {
		t.Fatalf("retry: hit=%v err=%v calls=%d, want a fresh download", hit, err, calls)
	}
}

func TestEvictionKeepsLinkedCopies(t *testing.T) {
	c, err := filecache.New(filepath.Join(t.TempDir(), "cache"), 4)
	if err != nil {
		t.Fatal(err)
	}
	var calls int
	held := filepath.Join(t.TempDir(), "held")
	if _, err := c.Fetch(context.Background(), "a", held, 4, content("aaaa", &calls)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Fetch(context.Background(), "b", filepath.Join(t.TempDir(), "b"), 4, content("bbbb", &calls)); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(held); err != nil || string(got) != "aaaa" {
		t.Fatalf("a job's copy after eviction: %q, %v", got, err)
	}
}

func TestLargerThanTheCacheIsNotKept(t *testing.T) {
	c, err := filecache.New(filepath.Join(t.TempDir(), "cache"), 4)
	if err != nil {
		t.Fatal(err)
	}
	var calls int
	for i := range 2 {
		dst := filepath.Join(t.TempDir(), "big")
		if _, err := c.Fetch(context.Background(), "big", dst, 8, content("12345678", &calls)); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(dst); string(got) != "12345678" {
			t.Fatalf("fetch %d: %q", i, got)
		}
	}
	if calls != 2 || c.Size() != 0 {
		t.Fatalf("calls=%d size=%d, want 2 downloads and nothing cached", calls, c.Size())
	}
}
