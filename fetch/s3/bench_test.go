package s3_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/herd-ml/herd/fetch/filecache"
	s3fetch "github.com/herd-ml/herd/fetch/s3"
	"github.com/herd-ml/herd/internal/s3test"
)

// BenchmarkFetch compares a cache hit (a HEAD for the ETag, then a hard
// link) with downloading the object every time (HEAD and GET, no cache),
// for a small and a larger object, against an S3 server on loopback.
func BenchmarkFetch(b *testing.B) {
	srv := s3test.Start(b, "data")
	cache, err := filecache.New(filepath.Join(b.TempDir(), "cache"), 1<<30)
	if err != nil {
		b.Fatal(err)
	}
	cached := s3fetch.New(s3fetch.Config{Client: srv.Client, Cache: cache})
	uncached := s3fetch.New(s3fetch.Config{Client: srv.Client})
	for _, size := range []int{1 << 10, 1 << 20} {
		key := fmt.Sprintf("obj-%d", size)
		srv.Put(b, "data", key, bytes.Repeat([]byte("x"), size))
		uri := "s3://data/" + key
		for name, f := range map[string]*s3fetch.Fetcher{"hit": cached, "no-cache": uncached} {
			b.Run(fmt.Sprintf("%s/%dKiB", name, size>>10), func(b *testing.B) {
				dir := b.TempDir()
				for b.Loop() {
					p, err := f.Fetch(context.Background(), uri, dir)
					if err != nil {
						b.Fatal(err)
					}
					_ = os.Remove(p)
				}
			})
		}
	}
}
