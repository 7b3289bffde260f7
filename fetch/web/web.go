// Package web fetches http:// and https:// URIs into a job's directory,
// refusing link-local, cloud-metadata and (unless allowed) private addresses,
// also after redirects.
package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path"
	"syscall"
	"time"

	"github.com/herd-ml/herd/fetch"
)

// Config configures a Fetcher. Zero fields take the defaults stated.
type Config struct {
	// MaxSize is the largest file accepted, in bytes; default 1 GiB.
	MaxSize int64
	// AllowPrivate permits loopback and private (RFC 1918, ULA) addresses.
	// Link-local and cloud-metadata addresses are refused regardless.
	AllowPrivate bool
	// Timeout bounds one download; default 5 minutes.
	Timeout time.Duration
	// Downloaded, if set, is told the size of each completed download.
	Downloaded func(bytes int64)
}

// Fetcher downloads over HTTP(S). It is safe for concurrent use.
type Fetcher struct {
	cfg    Config
	client *http.Client
}

var _ fetch.Fetcher = (*Fetcher)(nil)

// errBlockedAddress marks a dial refused by the address guard.
var errBlockedAddress = errors.New("address not allowed")

// New returns a Fetcher.
func New(cfg Config) *Fetcher {
	if cfg.MaxSize <= 0 {
		cfg.MaxSize = 1 << 30
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Minute
	}
	dialer := &net.Dialer{
		Timeout: 10 * time.Second,
		// Control sees the resolved address of every connection, redirects
		// included, so DNS tricks cannot reach a refused address.
		Control: func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return err
			}
			if !allowed(ap.Addr().Unmap(), cfg.AllowPrivate) {
				return fmt.Errorf("%w: %s", errBlockedAddress, ap.Addr())
			}
			return nil
		},
	}
	transport := &http.Transport{
		Proxy:               nil, // a proxy would dial on our behalf and bypass the guard
		DialContext:         dialer.DialContext,
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConnsPerHost: 8,
	}
	return &Fetcher{cfg: cfg, client: &http.Client{Transport: transport, Timeout: cfg.Timeout}}
}

var metadataV6 = netip.MustParseAddr("fd00:ec2::254")

func allowed(a netip.Addr, allowPrivate bool) bool {
	switch {
	case a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast(), a == metadataV6, a.IsUnspecified(), a.IsMulticast():
		return false
	case a.IsLoopback(), a.IsPrivate():
		return allowPrivate
	}
	return true
}

// Check implements fetch.Fetcher: the URI must be an absolute http(s) URL.
func (f *Fetcher) Check(uri string) error {
	u, err := url.Parse(uri)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fetch.Errorf(fetch.KindInvalid, uri, "not an absolute http(s) URL")
	}
	if ip, err := netip.ParseAddr(u.Hostname()); err == nil && !allowed(ip.Unmap(), f.cfg.AllowPrivate) {
		return fetch.Errorf(fetch.KindForbidden, uri, "address %s is not allowed", ip)
	}
	return nil
}

// Fetch implements fetch.Fetcher, downloading uri into dir.
func (f *Fetcher) Fetch(ctx context.Context, uri, dir string) (string, error) {
	if err := f.Check(uri); err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return "", &fetch.Error{Kind: fetch.KindInvalid, URI: uri, Err: err}
	}
	resp, err := f.client.Do(req)
	if err != nil {
		if errors.Is(err, errBlockedAddress) {
			return "", &fetch.Error{Kind: fetch.KindForbidden, URI: uri, Err: err}
		}
		return "", &fetch.Error{Kind: fetch.KindUnavailable, URI: uri, Err: err}
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return "", fetch.Errorf(fetch.KindNotFound, uri, "server answered %s", resp.Status)
	case resp.StatusCode != http.StatusOK:
		return "", fetch.Errorf(fetch.KindUnavailable, uri, "server answered %s", resp.Status)
	case resp.ContentLength > f.cfg.MaxSize:
		return "", fetch.Errorf(fetch.KindTooLarge, uri, "%d bytes is over the limit of %d", resp.ContentLength, f.cfg.MaxSize)
	}
	name := fetch.LocalName(dir, uri, path.Base(req.URL.Path))
	var n int64
	err = fetch.WriteNew(ctx, name, func(_ context.Context, w io.Writer) error {
		n, err = io.Copy(w, io.LimitReader(resp.Body, f.cfg.MaxSize+1))
		return err
	})
	if err != nil {
		return "", &fetch.Error{Kind: fetch.KindUnavailable, URI: uri, Err: err}
	}
	if n > f.cfg.MaxSize {
		_ = os.Remove(name)
		return "", fetch.Errorf(fetch.KindTooLarge, uri, "over the limit of %d bytes", f.cfg.MaxSize)
	}
	if f.cfg.Downloaded != nil {
		f.cfg.Downloaded(n)
	}
	return name, nil
}

// Client returns the guarded HTTP client, for other outbound calls that must
// obey the same address rules (job callbacks).
func (f *Fetcher) Client() *http.Client { return f.client }
