// Package fetch makes the files named in API calls (file paths, file://,
// http(s)://, s3://) available to workers as local paths.
//
// A Fetcher handles one family of URIs; Mux routes each URI to the Fetcher
// registered for its scheme. Implementations live in subpackages named after
// what they wrap (fetch/local, fetch/web).
package fetch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Fetcher makes URIs available as local files.
type Fetcher interface {
	// Check validates uri without fetching it, so a bad call can be refused
	// before a job is queued. It returns an *Error.
	Check(uri string) error
	// Fetch returns a local path holding uri's content. Implementations that
	// download put the file under dir, which the caller removes afterwards;
	// local files are returned in place. It returns an *Error.
	Fetch(ctx context.Context, uri, dir string) (string, error)
}

// InPlace is implemented by Fetchers that return files where they already
// are, so callers can skip making a download directory for them.
type InPlace interface {
	InPlace(uri string) bool
}

// Kind classifies a fetch failure so the API can answer with the right status.
type Kind int

// The kinds of fetch failure.
const (
	KindInvalid     Kind = iota // malformed URI or not a file: 400
	KindUnsupported             // a scheme this server does not fetch: 400
	KindForbidden               // outside the allowed roots or addresses: 403
	KindNotFound                // no such file or object: 404
	KindTooLarge                // over the size limit: 413
	KindUnavailable             // the source failed or timed out: 502
)

// Error is a fetch failure for one URI.
type Error struct {
	Kind Kind
	URI  string
	Err  error
}

func (e *Error) Error() string { return fmt.Sprintf("cannot fetch %s: %v", e.URI, e.Err) }
func (e *Error) Unwrap() error { return e.Err }

// Errorf builds an *Error.
func Errorf(kind Kind, uri, format string, args ...any) *Error {
	return &Error{Kind: kind, URI: uri, Err: fmt.Errorf(format, args...)}
}

// Mux routes URIs to Fetchers by scheme. A name without a scheme is a plain
// path, routed to the Fetcher registered for "file" — unless it is relative
// and a Fetcher is registered for "" (keys in a default bucket, as the 2016
// wrapper took them).
type Mux map[string]Fetcher

var _ Fetcher = Mux(nil)

func (m Mux) route(uri string) (Fetcher, error) {
	if uri == "" {
		return nil, Errorf(KindInvalid, uri, "empty file name")
	}
	scheme := "file"
	if relative, ok := m[""]; ok && !strings.Contains(uri, "://") && !strings.HasPrefix(uri, "/") {
		return relative, nil
	}
	if i := strings.Index(uri, "://"); i > 0 {
		u, err := url.Parse(uri)
		if err != nil {
			return nil, &Error{Kind: KindInvalid, URI: uri, Err: err}
		}
		scheme = strings.ToLower(u.Scheme)
	}
	f, ok := m[scheme]
	if !ok {
		known := make([]string, 0, len(m))
		for s := range m {
			if s != "" {
				known = append(known, s+"://")
			}
		}
		sort.Strings(known)
		return nil, Errorf(KindUnsupported, uri, "unsupported URI scheme %q: this server accepts %s", scheme+"://", strings.Join(known, ", "))
	}
	return f, nil
}

// Check implements Fetcher.
func (m Mux) Check(uri string) error {
	f, err := m.route(uri)
	if err != nil {
		return err
	}
	return f.Check(uri)
}

// InPlace reports whether uri's Fetcher returns it in place.
func (m Mux) InPlace(uri string) bool {
	f, err := m.route(uri)
	if err != nil {
		return true // nothing will be downloaded
	}
	ip, ok := f.(InPlace)
	return ok && ip.InPlace(uri)
}

// Fetch implements Fetcher.
func (m Mux) Fetch(ctx context.Context, uri, dir string) (string, error) {
	f, err := m.route(uri)
	if err != nil {
		return "", err
	}
	return f.Fetch(ctx, uri, dir)
}

// KindOf returns the Kind of err, or KindUnavailable if err is not an *Error.
func KindOf(err error) Kind {
	var fe *Error
	if errors.As(err, &fe) {
		return fe.Kind
	}
	return KindUnavailable
}

// LocalName is the path in dir for a download of uri whose remote name is
// base: the name keeps base's safe characters, for workers that look at
// extensions, and a hash of uri, so two inputs with one base name differ.
func LocalName(dir, uri, base string) string {
	sum := sha256.Sum256([]byte(uri))
	return filepath.Join(dir, hex.EncodeToString(sum[:8])+"-"+sanitize(base))
}

func sanitize(base string) string {
	b := []byte(base)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			b[i] = '_'
		}
	}
	if len(b) == 0 || string(b) == "." || string(b) == ".." {
		return "file"
	}
	return string(b)
}

// WriteNew creates the file dst and fills it with write; on failure dst is
// removed, so no partial download is left under a real name.
func WriteNew(ctx context.Context, dst string, write func(ctx context.Context, w io.Writer) error) error {
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	err = write(ctx, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(dst)
	}
	return err
}
