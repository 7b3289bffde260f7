package local

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/herd-ml/herd/fetch"
)

func TestFetcher(t *testing.T) {
	t.Parallel()

	root := t.TempDir()
	outside := t.TempDir()
	must(t, os.WriteFile(filepath.Join(root, "a.txt"), []byte("1 2"), 0o644))
	must(t, os.MkdirAll(filepath.Join(root, "sub"), 0o755))
	must(t, os.WriteFile(filepath.Join(root, "sub", "b.txt"), []byte("3"), 0o644))
	must(t, os.WriteFile(filepath.Join(outside, "secret"), []byte("s"), 0o644))
	must(t, os.Symlink(filepath.Join(outside, "secret"), filepath.Join(root, "escape")))
	must(t, os.Symlink(filepath.Join(root, "a.txt"), filepath.Join(root, "inside-link")))

	f, err := New([]string{root})
	must(t, err)
	realRoot, _ := filepath.EvalSymlinks(root)

	tests := []struct {
		name string
		uri  string
		want string // path on success
		kind fetch.Kind
	}{
		{name: "relative path", uri: "a.txt", want: filepath.Join(realRoot, "a.txt")},
		{name: "nested relative path", uri: "sub/b.txt", want: filepath.Join(realRoot, "sub", "b.txt")},
		{name: "absolute path", uri: filepath.Join(root, "a.txt"), want: filepath.Join(realRoot, "a.txt")},
		{name: "file URI", uri: "file://" + filepath.Join(root, "sub", "b.txt"), want: filepath.Join(realRoot, "sub", "b.txt")},
		{name: "symlink inside root", uri: "inside-link", want: filepath.Join(realRoot, "a.txt")},
		{name: "dot-dot escape", uri: "../" + filepath.Base(outside) + "/secret", kind: fetch.KindForbidden},
		{name: "dot-dot in absolute path", uri: filepath.Join(root, "sub") + "/../../" + filepath.Base(outside) + "/secret", kind: fetch.KindForbidden},
		{name: "absolute path outside", uri: filepath.Join(outside, "secret"), kind: fetch.KindForbidden},
		{name: "missing file outside is forbidden, not not-found", uri: "/etc/nonexistent-herd", kind: fetch.KindForbidden},
		{name: "symlink leaving the root", uri: "escape", kind: fetch.KindForbidden},
		{name: "missing file", uri: "nope.txt", kind: fetch.KindNotFound},
		{name: "directory", uri: "sub", kind: fetch.KindInvalid},
		{name: "file URI with a host", uri: "file://example.com/a.txt", kind: fetch.KindInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := f.Fetch(context.Background(), tt.uri, "")
			if tt.want != "" {
				if err != nil || got != tt.want {
					t.Fatalf("Fetch(%q) = %q, %v; want %q", tt.uri, got, err, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Fetch(%q) = %q, want an error", tt.uri, got)
			}
			if k := fetch.KindOf(err); k != tt.kind {
				t.Fatalf("Fetch(%q) kind = %d (%v), want %d", tt.uri, k, err, tt.kind)
			}
			if cerr := f.Check(tt.uri); fetch.KindOf(cerr) != tt.kind {
				t.Fatalf("Check(%q) = %v, want the same kind as Fetch", tt.uri, cerr)
			}
		})
	}

	t.Run("no roots refuses everything", func(t *testing.T) {
		t.Parallel()
		none, err := New(nil)
		must(t, err)
		if err := none.Check(filepath.Join(root, "a.txt")); fetch.KindOf(err) != fetch.KindForbidden {
			t.Fatalf("err = %v, want forbidden", err)
		}
	})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
