// Package local serves file:// URIs and plain paths from configured root
// directories, refusing anything that resolves outside them.
package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/herd-ml/herd/fetch"
)

// Fetcher resolves local files inside Roots. It is safe for concurrent use.
type Fetcher struct {
	roots []string // absolute, symlinks resolved
}

var _ fetch.Fetcher = (*Fetcher)(nil)

// New returns a Fetcher limited to roots. Each root must be an existing
// directory. With no roots every local file is refused.
func New(roots []string) (*Fetcher, error) {
	f := &Fetcher{}
	for _, r := range roots {
		abs, err := filepath.Abs(r)
		if err != nil {
			return nil, err
		}
		real, err := filepath.EvalSymlinks(abs)
		if err != nil {
			return nil, fmt.Errorf("files root %s: %w", r, err)
		}
		if st, err := os.Stat(real); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("files root %s is not a directory", r)
		}
		f.roots = append(f.roots, real)
	}
	return f, nil
}

// Check implements fetch.Fetcher: the file must exist inside a root.
func (f *Fetcher) Check(uri string) error {
	_, err := f.resolve(uri)
	return err
}

// Fetch implements fetch.Fetcher. The file is returned in place; dir is not used.
func (f *Fetcher) Fetch(_ context.Context, uri, _ string) (string, error) {
	return f.resolve(uri)
}

// InPlace implements fetch.InPlace: local files are never copied.
func (f *Fetcher) InPlace(string) bool { return true }

func (f *Fetcher) resolve(uri string) (string, error) {
	name := uri
	if strings.HasPrefix(strings.ToLower(uri), "file://") {
		u, err := url.Parse(uri)
		if err != nil {
			return "", &fetch.Error{Kind: fetch.KindInvalid, URI: uri, Err: err}
		}
		if u.Host != "" && u.Host != "localhost" {
			return "", fetch.Errorf(fetch.KindInvalid, uri, "file URIs name no host: use file:///absolute/path")
		}
		name = u.Path
	}
	if len(f.roots) == 0 {
		return "", fetch.Errorf(fetch.KindForbidden, uri, "local files are disabled: start herd with --files-root DIR")
	}
	var candidates []string
	if filepath.IsAbs(name) {
		candidates = []string{filepath.Clean(name)}
	} else {
		for _, root := range f.roots {
			candidates = append(candidates, filepath.Join(root, name))
		}
	}
	var firstErr error
	for _, c := range candidates {
		if p, ok := f.plainFile(c); ok {
			return p, nil
		}
		real, err := filepath.EvalSymlinks(c)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		if !f.inRoots(real) {
			return "", fetch.Errorf(fetch.KindForbidden, uri, "outside the allowed files roots (%s)", strings.Join(f.roots, ", "))
		}
		st, err := os.Stat(real)
		if err != nil {
			return "", &fetch.Error{Kind: fetch.KindNotFound, URI: uri, Err: err}
		}
		if !st.Mode().IsRegular() {
			return "", fetch.Errorf(fetch.KindInvalid, uri, "not a regular file")
		}
		return real, nil
	}
	// Say "forbidden" for names outside the roots even when they do not exist,
	// so probing cannot tell which files exist elsewhere.
	for _, c := range candidates {
		if !f.inRoots(c) {
			return "", fetch.Errorf(fetch.KindForbidden, uri, "outside the allowed files roots (%s)", strings.Join(f.roots, ", "))
		}
	}
	if errors.Is(firstErr, fs.ErrNotExist) {
		return "", fetch.Errorf(fetch.KindNotFound, uri, "no such file")
	}
	return "", &fetch.Error{Kind: fetch.KindNotFound, URI: uri, Err: firstErr}
}

// plainFile is the fast path for the common case, a regular file reached
// without symbolic links: it lstats only the components below the root (the
// roots themselves were resolved at start), usually one system call instead of
// EvalSymlinks' one per component. Anything else takes the slow path.
func (f *Fetcher) plainFile(path string) (string, bool) {
	for _, root := range f.roots {
		rel, ok := strings.CutPrefix(path, root+string(filepath.Separator))
		if !ok {
			continue
		}
		dir := root
		parts := strings.Split(rel, string(filepath.Separator))
		for i, part := range parts {
			if part == "" || part == "." || part == ".." {
				return "", false
			}
			dir = filepath.Join(dir, part)
			st, err := os.Lstat(dir)
			if err != nil {
				return "", false
			}
			last := i == len(parts)-1
			if (last && !st.Mode().IsRegular()) || (!last && !st.IsDir()) {
				return "", false
			}
		}
		return dir, true
	}
	return "", false
}

func (f *Fetcher) inRoots(path string) bool {
	for _, root := range f.roots {
		if path == root || strings.HasPrefix(path, root+string(filepath.Separator)) {
			return true
		}
	}
	return false
}
