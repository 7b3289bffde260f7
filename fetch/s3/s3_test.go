package s3_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/herd-ml/herd/fetch"
	"github.com/herd-ml/herd/fetch/filecache"
	s3fetch "github.com/herd-ml/herd/fetch/s3"
	"github.com/herd-ml/herd/internal/s3test"
)

func newFetcher(t *testing.T, srv *s3test.Server, cfg s3fetch.Config) *s3fetch.Fetcher {
	t.Helper()
	cfg.Client = srv.Client
	if cfg.Cache == nil {
		c, err := filecache.New(filepath.Join(t.TempDir(), "cache"), 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Cache = c
	}
	return s3fetch.New(cfg)
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestFetch(t *testing.T) {
	srv := s3test.Start(t, "data")
	srv.Put(t, "data", "in/a.csv", []byte("1,2,3"))
	f := newFetcher(t, srv, s3fetch.Config{Bucket: "data"})
	ctx := context.Background()

	t.Run("fetch, then a cache hit downloads nothing", func(t *testing.T) {
		for i := range 2 {
			p, err := f.Fetch(ctx, "s3://data/in/a.csv", t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			if got := readFile(t, p); got != "1,2,3" {
				t.Fatalf("fetch %d: content %q", i, got)
			}
			if !strings.HasSuffix(p, "a.csv") {
				t.Fatalf("local name %s lost the key's base name", p)
			}
		}
		if n := srv.Gets("data", "in/a.csv"); n != 1 {
			t.Fatalf("object downloaded %d times, want 1", n)
		}
	})

	t.Run("a key relative to --s3-bucket", func(t *testing.T) {
		p, err := f.Fetch(ctx, "in/a.csv", t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if got := readFile(t, p); got != "1,2,3" {
			t.Fatalf("content %q", got)
		}
		if n := srv.Gets("data", "in/a.csv"); n != 1 {
			t.Fatalf("the same object by another name was downloaded again (%d downloads)", n)
		}
	})

	t.Run("a changed object is downloaded again", func(t *testing.T) {
		srv.Put(t, "data", "in/b.csv", []byte("old"))
		if _, err := f.Fetch(ctx, "s3://data/in/b.csv", t.TempDir()); err != nil {
			t.Fatal(err)
		}
		srv.Put(t, "data", "in/b.csv", []byte("new!"))
		p, err := f.Fetch(ctx, "s3://data/in/b.csv", t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if got := readFile(t, p); got != "new!" {
			t.Fatalf("content %q, want the new object", got)
		}
	})

	t.Run("concurrent identical requests download once", func(t *testing.T) {
		srv.Put(t, "data", "big.bin", bytes.Repeat([]byte("x"), 256<<10))
		var wg sync.WaitGroup
		for range 10 {
			wg.Go(func() {
				p, err := f.Fetch(ctx, "s3://data/big.bin", t.TempDir())
				if err != nil {
					t.Error(err)
					return
				}
				if fi, err := os.Stat(p); err != nil || fi.Size() != 256<<10 {
					t.Errorf("stat %s: %v, %v", p, fi, err)
				}
			})
		}
		wg.Wait()
		if n := srv.Gets("data", "big.bin"); n != 1 {
			t.Fatalf("object downloaded %d times by 10 concurrent fetches, want 1", n)
		}
	})

	t.Run("throttling is retried", func(t *testing.T) {
		srv.Put(t, "data", "c.csv", []byte("c"))
		srv.Throttle(3)
		p, err := f.Fetch(ctx, "s3://data/c.csv", t.TempDir())
		if err != nil {
			t.Fatalf("3 SlowDown answers then success: %v", err)
		}
		if got := readFile(t, p); got != "c" {
			t.Fatalf("content %q", got)
		}
	})
}

func TestFetchErrors(t *testing.T) {
	srv := s3test.Start(t, "data", "secret")
	srv.Put(t, "data", "large.bin", bytes.Repeat([]byte("x"), 2048))
	srv.Put(t, "secret", "a.csv", []byte("1"))
	srv.Deny("secret")
	ctx := context.Background()
	f := newFetcher(t, srv, s3fetch.Config{MaxSize: 1024})
	for _, tc := range []struct {
		name, uri string
		kind      fetch.Kind
		message   string
	}{
		{"missing key", "s3://data/nope.csv", fetch.KindNotFound, "no such object: s3://data/nope.csv"},
		{"missing bucket", "s3://nobucket/a.csv", fetch.KindNotFound, `bucket "nobucket" does not exist`},
		{"access denied", "s3://secret/a.csv", fetch.KindForbidden, "access denied to s3://secret/a.csv: check the credentials"},
		{"over the size limit", "s3://data/large.bin", fetch.KindTooLarge, "2048 bytes, over the limit of 1024"},
		{"no key", "s3://data/", fetch.KindInvalid, "bucket and key are both needed"},
		{"relative key without a default bucket", "in/a.csv", fetch.KindInvalid, "--s3-bucket"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			_, err := f.Fetch(ctx, tc.uri, dir)
			var fe *fetch.Error
			if !errors.As(err, &fe) || fe.Kind != tc.kind {
				t.Fatalf("err = %v, want kind %v", err, tc.kind)
			}
			if !strings.Contains(err.Error(), tc.message) || !strings.Contains(err.Error(), tc.uri) {
				t.Fatalf("message %q should name the URI and say %q", err, tc.message)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Fatalf("a failed fetch left %d files behind", len(entries))
			}
		})
	}
	if n := srv.Gets("data", "large.bin"); n != 0 {
		t.Fatalf("an object over the limit was downloaded %d times", n)
	}

	t.Run("throttled past the retries", func(t *testing.T) {
		srv.Put(t, "data", "d.csv", []byte("d"))
		srv.Throttle(1000)
		defer srv.Throttle(0)
		_, err := f.Fetch(ctx, "s3://data/d.csv", t.TempDir())
		if fetch.KindOf(err) != fetch.KindUnavailable || !strings.Contains(err.Error(), "Unavailable") {
			t.Fatalf("err = %v, want unavailable, naming the store's answer", err)
		}
	})
}
