// Package filecache keeps downloaded files on local disk for the fetchers,
// bounded in total size with least-recently-used eviction.
//
// Entries are keyed by what identifies one content (for S3, the URI and the
// object's ETag), so a changed object is a new entry, never a stale hit.
// Concurrent requests for one key share one download; a download is written
// under a temporary name and renamed into place, so a partial file is never
// visible. Callers get a hard link of the cached file in their own
// directory: evicting the entry later does not pull a file from under a
// worker that is reading it.
package filecache

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sync/singleflight"

	"github.com/herd-ml/herd/fetch"
)

// Cache is a size-bounded directory of downloaded files. It is safe for
// concurrent use.
type Cache struct {
	dir   string
	limit int64

	mu      sync.Mutex
	size    int64
	lru     *list.List // of *entry, most recently used first
	entries map[string]*list.Element
	group   singleflight.Group
}

type entry struct {
	key  string
	path string
	size int64
}

// New returns a Cache in dir holding at most limit bytes. Whatever dir holds
// from an earlier run is removed: entries are rebuilt as files are fetched.
func New(dir string, limit int64) (*Cache, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("cache size must be positive, got %d", limit)
	}
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("cannot clear cache %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create cache %s: %w", dir, err)
	}
	return &Cache{dir: dir, limit: limit, lru: list.New(), entries: make(map[string]*list.Element)}, nil
}

// Fill writes one content to w. It runs once per key however many callers
// wait for it, under a context that outlives any one caller's.
type Fill func(ctx context.Context, w io.Writer) error

// Fetch places key's content in the new file dst, from the cache or, on a
// miss, through fill. size is the content's expected size: a content larger
// than the whole cache is written straight to dst and not kept. hit reports
// whether the content was already cached.
func (c *Cache) Fetch(ctx context.Context, key, dst string, size int64, fill Fill) (hit bool, err error) {
	if size > c.limit {
		return false, fetch.WriteNew(ctx, dst, fill)
	}
	if c.linkCached(key, dst) {
		return true, nil
	}
	// The shared download must not die with the first caller's context;
	// each caller still stops waiting when its own ends.
	ch := c.group.DoChan(key, func() (any, error) {
		return nil, c.download(context.WithoutCancel(ctx), key, fill)
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return false, res.Err
		}
	case <-ctx.Done():
		return false, context.Cause(ctx)
	}
	if c.linkCached(key, dst) {
		return false, nil
	}
	// Evicted between the download and now (a cache much smaller than the
	// working set): fetch it for this caller alone.
	return false, fetch.WriteNew(ctx, dst, fill)
}

// Size returns the bytes the cache holds.
func (c *Cache) Size() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.size
}

// linkCached links key's cached file to dst if there is one. It links under
// the lock so that eviction cannot remove the file half-way.
func (c *Cache) linkCached(key, dst string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[key]
	if !ok {
		return false
	}
	e := el.Value.(*entry)
	if err := os.Link(e.path, dst); err != nil {
		if errors.Is(err, os.ErrExist) {
			return false
		}
		// Another file system: copy (rare; the cache sits in the data dir).
		if err := copyFile(e.path, dst); err != nil {
			return false
		}
	}
	c.lru.MoveToFront(el)
	return true
}

func (c *Cache) download(ctx context.Context, key string, fill Fill) error {
	sum := sha256.Sum256([]byte(key))
	final := filepath.Join(c.dir, hex.EncodeToString(sum[:]))
	tmp, err := os.CreateTemp(c.dir, ".part-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename this fails harmlessly
	err = fill(ctx, tmp)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	info, err := os.Stat(tmp.Name())
	if err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[key]; ok { // raced with an earlier identical download
		c.lru.MoveToFront(el)
		return nil
	}
	c.entries[key] = c.lru.PushFront(&entry{key: key, path: final, size: info.Size()})
	c.size += info.Size()
	for c.size > c.limit && c.lru.Len() > 1 {
		c.evict(c.lru.Back())
	}
	return nil
}

// evict removes one entry; c.mu is held.
func (c *Cache) evict(el *list.Element) {
	e := el.Value.(*entry)
	c.lru.Remove(el)
	delete(c.entries, e.key)
	c.size -= e.size
	_ = os.Remove(e.path)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	return fetch.WriteNew(context.Background(), dst, func(_ context.Context, w io.Writer) error {
		_, err := io.Copy(w, in)
		return err
	})
}
