// Package store keeps every model key's state as immutable, complete versions
// plus a pointer to the latest one, so that a half-written model is never
// served and any replica can load what another trained.
//
// Implementations live in subpackages named after what they wrap (store/file,
// store/s3) and all pass the shared suite in store/storetest.
package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// ErrNotFound is returned when a model key has no saved version.
var ErrNotFound = errors.New("model has no saved version")

// Version is one saved, complete state of a model.
type Version struct {
	ID      string    `json:"id"` // sorts in save order
	Created time.Time `json:"created"`
	Size    int64     `json:"size"` // bytes of state; filled in by List
}

// Model describes one model key: its complete versions, oldest first, and
// the one served.
type Model struct {
	Key      string    `json:"key"`
	Latest   string    `json:"latest"`
	Versions []Version `json:"versions"`
}

// Store holds model versions. Implementations are safe for concurrent use.
type Store interface {
	// Latest returns the newest complete version of key, or ErrNotFound.
	Latest(ctx context.Context, key string) (Version, error)
	// Save stores the directory dir as a new version of key and makes it the
	// latest. Of concurrent saves of one key the last to complete wins. Save
	// may take dir over (move it) instead of copying: callers must not use
	// dir afterwards, only remove it if it still exists.
	Save(ctx context.Context, key, dir string) (Version, error)
	// Load copies version id of key into the directory dst, which must exist
	// and be empty.
	Load(ctx context.Context, key, id, dst string) error
	// List describes every model key with a saved version, sorted by key.
	List(ctx context.Context) ([]Model, error)
	// Delete removes key and all its versions, or returns ErrNotFound.
	Delete(ctx context.Context, key string) error
}

// Local is implemented by stores whose versions already sit on local disk,
// so readers can use them in place instead of copying.
type Local interface {
	// Path returns the directory holding version id of key.
	Path(key, id string) string
}

// PruneSchedule says when a model key is due for pruning: at most once per
// Every, because listing a busy key's versions on every save would make
// saving quadratic. The zero value with Every set is ready to use.
type PruneSchedule struct {
	Every time.Duration

	mu   sync.Mutex
	last map[string]time.Time
}

// Due reports whether key is due, and if so starts its next period.
func (p *PruneSchedule) Due(key string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if time.Since(p.last[key]) < p.Every {
		return false
	}
	if p.last == nil {
		p.last = map[string]time.Time{}
	}
	p.last[key] = time.Now()
	return true
}

// Expendable returns the versions (IDs of one key's complete versions, in
// any order) that a store keeping keep versions may remove: all but latest
// and the newest keep-1 others, and of those only the ones saved more than
// minAge ago, since a reader may still be loading a recent one.
func Expendable(versions []string, latest string, keep int, minAge time.Duration) []string {
	others := slices.DeleteFunc(slices.Clone(versions), func(v string) bool { return v == latest })
	slices.Sort(others) // IDs sort by time
	var out []string
	for _, v := range others[:max(len(others)-(keep-1), 0)] {
		if time.Since(VersionTime(v)) > minAge {
			out = append(out, v)
		}
	}
	return out
}

// DefaultKeep is how many versions of each model a store keeps.
const DefaultKeep = 5

const versionLayout = "20060102T150405.000000000Z"

// NewVersionID returns an ID that sorts by time, with random bits so that two
// replicas saving in the same nanosecond differ.
func NewVersionID(t time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%s", t.UTC().Format(versionLayout), hex.EncodeToString(b[:]))
}

// VersionTime reads the save time back from a version ID.
func VersionTime(id string) time.Time {
	stamp, _, _ := strings.Cut(id, "-")
	t, _ := time.Parse(versionLayout, stamp)
	return t
}
