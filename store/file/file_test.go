package file

import (
	"testing"

	"github.com/herd-ml/herd/store"
	"github.com/herd-ml/herd/store/storetest"
)

func TestStore(t *testing.T) {
	t.Parallel()

	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := New(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
