package file

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/herd-ml/herd/store"
	"github.com/herd-ml/herd/store/storetest"
)

func TestStore(t *testing.T) {
	t.Parallel()

	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := New(t.TempDir(), 0)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestPrune(t *testing.T) {
	t.Parallel()

	ctx := context.Background()
	root := t.TempDir()
	s, err := New(root, 2)
	if err != nil {
		t.Fatal(err)
	}
	keyDir := filepath.Join(root, "m")
	// Three old versions, as if saved two minutes ago.
	old := time.Now().Add(-2 * time.Minute)
	for i := range 3 {
		if err := os.MkdirAll(filepath.Join(keyDir, store.NewVersionID(old.Add(time.Duration(i)*time.Second))), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	src := t.TempDir()
	v, err := s.Save(ctx, "m", src)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(src); !os.IsNotExist(err) {
		t.Error("Save on the same file system should move the directory, not copy it")
	}
	entries, _ := os.ReadDir(keyDir)
	var dirs []string
	for _, e := range entries {
		if e.IsDir() {
			dirs = append(dirs, e.Name())
		}
	}
	if len(dirs) != 2 || dirs[1] != v.ID {
		t.Fatalf("versions after prune = %v, want the newest old one and %s", dirs, v.ID)
	}
	// A recent superseded version is kept even beyond the limit: a reader
	// may be loading it. (Pruning runs at most every pruneEvery per key;
	// forget the last run so the second save prunes.)
	for i := range 2 {
		if i == 1 {
			s.prune = store.PruneSchedule{Every: pruneEvery}
		}
		src := t.TempDir()
		if _, err := s.Save(ctx, "m", src); err != nil {
			t.Fatal(err)
		}
	}
	entries, _ = os.ReadDir(keyDir)
	n := 0
	for _, e := range entries {
		if e.IsDir() {
			n++
		}
	}
	if n != 3 {
		t.Fatalf("%d versions, want 3: the old one pruned, the 3 recent ones kept past the limit of 2 until a minute old", n)
	}
}
