package s3_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/herd-ml/herd/internal/s3test"
	"github.com/herd-ml/herd/store"
	s3store "github.com/herd-ml/herd/store/s3"
	"github.com/herd-ml/herd/store/storetest"
)

func TestConformance(t *testing.T) {
	srv := s3test.Start(t, "models")
	var n atomic.Int64
	storetest.Run(t, func(t *testing.T) store.Store {
		// One bucket, a prefix per store: a store sees only its own prefix.
		s, err := s3store.New(context.Background(), srv.Client, fmt.Sprintf("s3://models/run%d/", n.Add(1)), 0)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestNewChecksTheBucket(t *testing.T) {
	srv := s3test.Start(t, "models", "locked")
	srv.Deny("locked")
	for uri, want := range map[string]string{
		"s3://nobucket/models": `bucket "nobucket" does not exist`,
		"s3://locked/models":   `access denied to bucket "locked": check the credentials`,
		"s3:///models":         "want s3://bucket",
		"file:///tmp":          "want s3://bucket",
	} {
		if _, err := s3store.New(context.Background(), srv.Client, uri, 0); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New(%s) = %v, want an error saying %q", uri, err, want)
		}
	}
}

func TestInterruptedSaveIsInvisible(t *testing.T) {
	srv := s3test.Start(t, "models")
	ctx := context.Background()
	s, err := s3store.New(ctx, srv.Client, "s3://models/p", 0)
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	writeFile(t, src, "weights", "v1")
	v1, err := s.Save(ctx, "m", src)
	if err != nil {
		t.Fatal(err)
	}

	// The second save dies half-way: one file uploaded, one on its way.
	held := srv.Hold("/weights")
	src2 := t.TempDir()
	writeFile(t, src2, "weights", "v2-partial")
	writeFile(t, src2, "vocab", "v2")
	saveCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { _, err := s.Save(saveCtx, "m", src2); done <- err }()
	<-held
	cancel()
	if err := <-done; err == nil {
		t.Fatal("an interrupted save reported success")
	}
	srv.Release()

	latest, err := s.Latest(ctx, "m")
	if err != nil || latest.ID != v1.ID {
		t.Fatalf("Latest = %v, %v; want the first version %s", latest, err, v1.ID)
	}
	models, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(models) != 1 || len(models[0].Versions) != 1 || models[0].Versions[0].ID != v1.ID {
		t.Fatalf("List = %+v, want only the complete version", models)
	}
	dst := t.TempDir()
	if err := s.Load(ctx, "m", latest.ID, dst); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, dst, "weights"); got != "v1" {
		t.Fatalf("served %q, want v1", got)
	}
}

func writeFile(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
