package web

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/herd-ml/herd/fetch"
)

func TestFetcher(t *testing.T) {
	t.Parallel()

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/data.txt":
			_, _ = w.Write([]byte("1 2 3"))
		case "/big":
			_, _ = w.Write([]byte(strings.Repeat("x", 100)))
		case "/to-metadata":
			http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)

	open := New(Config{AllowPrivate: true, MaxSize: 50})
	guarded := New(Config{})

	t.Run("downloads into the directory", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		p, err := open.Fetch(context.Background(), srv.URL+"/data.txt", dir)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(p)
		if string(b) != "1 2 3" || !strings.HasPrefix(p, dir) {
			t.Fatalf("got %q at %s", b, p)
		}
	})

	tests := []struct {
		name    string
		f       *Fetcher
		uri     string
		kind    fetch.Kind
		message string
	}{
		{"loopback refused by default", guarded, srv.URL + "/data.txt", fetch.KindForbidden, "not allowed"},
		{"metadata address refused", open, "http://169.254.169.254/latest/meta-data/", fetch.KindForbidden, "not allowed"},
		{"metadata IPv6 refused", open, "http://[fd00:ec2::254]/", fetch.KindForbidden, "not allowed"},
		{"redirect to metadata refused", open, srv.URL + "/to-metadata", fetch.KindForbidden, "not allowed"},
		{"over the size limit", open, srv.URL + "/big", fetch.KindTooLarge, "limit"},
		{"missing", open, srv.URL + "/nope", fetch.KindNotFound, "404"},
		{"not http", open, "ftp://x/y", fetch.KindInvalid, "http"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := tt.f.Fetch(context.Background(), tt.uri, t.TempDir())
			if fetch.KindOf(err) != tt.kind || !strings.Contains(err.Error(), tt.message) {
				t.Fatalf("err = %v (kind %d), want kind %d mentioning %q", err, fetch.KindOf(err), tt.kind, tt.message)
			}
		})
	}
}
