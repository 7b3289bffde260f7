package fetch

import (
	"context"
	"strings"
	"testing"
)

type stub struct{ scheme string }

func (s stub) Check(string) error { return nil }
func (s stub) Fetch(context.Context, string, string) (string, error) {
	return s.scheme, nil
}

func TestMux(t *testing.T) {
	t.Parallel()

	m := Mux{"file": stub{"file"}, "http": stub{"http"}}
	for uri, want := range map[string]string{"a/b.txt": "file", "/abs": "file", "file:///x": "file", "HTTP://h/x": "http"} {
		got, err := m.Fetch(context.Background(), uri, "")
		if err != nil || got != want {
			t.Errorf("Fetch(%q) routed to %q, %v; want %q", uri, got, err, want)
		}
	}
	err := m.Check("s3://bucket/key")
	if KindOf(err) != KindUnsupported || !strings.Contains(err.Error(), `unsupported URI scheme "s3://"`) || !strings.Contains(err.Error(), "file://, http://") {
		t.Fatalf("err = %v, want an unsupported-scheme error listing what is accepted", err)
	}
	if KindOf(m.Check("")) != KindInvalid {
		t.Fatal("empty URI accepted")
	}

	// With a default bucket, relative names are keys in it.
	m[""], m["s3"] = stub{"bucket"}, stub{"s3"}
	for uri, want := range map[string]string{"a/b.txt": "bucket", "/abs": "file", "file:///x": "file", "s3://b/k": "s3"} {
		got, err := m.Fetch(context.Background(), uri, "")
		if err != nil || got != want {
			t.Errorf("with a default bucket, Fetch(%q) routed to %q, %v; want %q", uri, got, err, want)
		}
	}
}
