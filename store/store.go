// Package store keeps every model key's state as immutable, complete versions
// plus a pointer to the latest one, so that a half-written model is never
// served and any replica can load what another trained.
//
// Implementations live in subpackages named after what they wrap (store/file;
// S3 comes later) and all pass the shared suite in store/storetest.
package store

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned when a model key has no saved version.
var ErrNotFound = errors.New("model has no saved version")

// Version is one saved, complete state of a model.
type Version struct {
	ID      string    `json:"id"` // sorts in save order
	Created time.Time `json:"created"`
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
}

// Local is implemented by stores whose versions already sit on local disk,
// so readers can use them in place instead of copying.
type Local interface {
	// Path returns the directory holding version id of key.
	Path(key, id string) string
}
