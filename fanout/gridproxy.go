package fanout

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/herd-ml/herd/webdriver"
)

// gridProxy stands between the chunks and the grid, on loopback. Each
// attempt gets a URL of its own (SELENIUM_REMOTE_URL), so the proxy knows
// which grid sessions each attempt opened and can end those it left behind:
// killed for a timeout or an interrupt, or just never calling quit. Without
// it such sessions would hold a browser until the grid's idle timeout.
type gridProxy struct {
	grid      *url.URL // without user info
	transport *http.Transport
	rt        http.RoundTripper // transport, adding the grid URL's basic auth
	proxy     *httputil.ReverseProxy
	srv       *http.Server
	base      string // http://127.0.0.1:port

	mu       sync.Mutex
	sessions map[string]map[string]bool // attempt key -> open session ids
}

func startGridProxy(grid string) (*gridProxy, error) {
	u, err := url.Parse(strings.TrimSuffix(grid, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--grid %q is not an http(s) URL", grid)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &gridProxy{
		transport: &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second},
		base:      "http://" + ln.Addr().String(),
		sessions:  map[string]map[string]bool{},
	}
	p.rt = p.transport
	if u.User != nil {
		p.rt = basicAuth{u.User, p.transport}
		u.User = nil
	}
	p.grid = u
	p.proxy = &httputil.ReverseProxy{
		Transport: p.rt,
		Rewrite: func(pr *httputil.ProxyRequest) {
			key, rest := splitKey(pr.In.URL.Path)
			pr.SetURL(p.grid)
			pr.Out.URL.Path = p.grid.Path + rest
			pr.Out.URL.RawPath = ""
			pr.Out = pr.Out.WithContext(context.WithValue(pr.Out.Context(), attemptKey{}, key))
		},
		ModifyResponse: p.track,
	}
	p.srv = &http.Server{Handler: p.proxy, ReadHeaderTimeout: 30 * time.Second}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

type attemptKey struct{}

// splitKey takes "/a/<key>/rest" apart.
func splitKey(path string) (key, rest string) {
	path = strings.TrimPrefix(path, "/a/")
	key, rest, _ = strings.Cut(path, "/")
	return key, "/" + rest
}

// URL is the grid URL an attempt's process is given.
func (p *gridProxy) URL(key string) string { return p.base + "/a/" + key }

// track records sessions created and deleted through the proxy.
func (p *gridProxy) track(resp *http.Response) error {
	key, _ := resp.Request.Context().Value(attemptKey{}).(string)
	rest := strings.TrimSuffix(strings.TrimPrefix(resp.Request.URL.Path, p.grid.Path), "/")
	switch {
	case resp.Request.Method == http.MethodPost && rest == "/session" && resp.StatusCode == http.StatusOK:
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		var created struct {
			Value struct {
				SessionID string `json:"sessionId"`
			} `json:"value"`
		}
		if json.Unmarshal(body, &created) == nil && created.Value.SessionID != "" {
			p.mu.Lock()
			if p.sessions[key] == nil {
				p.sessions[key] = map[string]bool{}
			}
			p.sessions[key][created.Value.SessionID] = true
			p.mu.Unlock()
		}
	case resp.Request.Method == http.MethodDelete && strings.Count(rest, "/") == 2 && strings.HasPrefix(rest, "/session/"):
		p.mu.Lock()
		delete(p.sessions[key], strings.TrimPrefix(rest, "/session/"))
		p.mu.Unlock()
	}
	return nil
}

// endSessions deletes on the grid the sessions that attempt key left open,
// and reports how many there were.
func (p *gridProxy) endSessions(ctx context.Context, key string) int {
	p.mu.Lock()
	ids := p.sessions[key]
	delete(p.sessions, key)
	p.mu.Unlock()
	for id := range ids {
		_ = webdriver.DeleteSession(ctx, p.rt, p.grid.String(), id)
	}
	return len(ids)
}

func (p *gridProxy) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = p.srv.Shutdown(ctx)
	p.transport.CloseIdleConnections()
}

// basicAuth adds the grid URL's user and password to requests.
type basicAuth struct {
	user *url.Userinfo
	next http.RoundTripper
}

func (b basicAuth) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	password, _ := b.user.Password()
	r.SetBasicAuth(b.user.Username(), password)
	return b.next.RoundTrip(r)
}
