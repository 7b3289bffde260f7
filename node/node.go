// Package node runs browser sessions for the grid: for each new session it
// starts a WebDriver (chromedriver) on a free local port with a fresh
// temporary profile, forwards the session's commands to it, and on delete,
// timeout or shutdown kills the driver and every browser process that used
// the profile, then removes the profile. It serves the W3C WebDriver API
// itself, so a hub (or a client) talks to it like to any driver, and it
// registers with a hub (see docs/node-protocol.md).
package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herd-ml/herd/webdriver"
)

// Browser is one kind of browser a node offers.
type Browser struct {
	// Stereotype is what the slot advertises: browserName, browserVersion,
	// platformName and optionally herd:labels.
	Stereotype map[string]any
	// MaxSessions is how many sessions of this browser may run at once.
	MaxSessions int
	// Driver is the WebDriver binary, e.g. /usr/bin/chromedriver.
	Driver string
	// Binary is the browser binary passed to the driver; "" lets it choose.
	Binary string
	// Args are added to the browser's command line. Nil means DefaultChromeArgs.
	Args []string
	// RelayURL, when set, forwards sessions to an existing WebDriver endpoint
	// instead of launching drivers. Binary and Args are then added to new
	// sessions only when set.
	RelayURL string
}

// DefaultChromeArgs suit headless Linux machines and containers: no display,
// no sandbox as root, small /dev/shm, and no background network traffic.
var DefaultChromeArgs = []string{
	"--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
	"--disable-background-networking", "--disable-component-update", "--disable-sync",
	"--no-first-run", "--disable-default-apps", "--disable-extensions",
}

// Config configures a Node.
type Config struct {
	// ID names the node; default a random id.
	ID string
	// Browsers are the slots offered; required.
	Browsers []Browser
	// ProfileDir holds the sessions' temporary browser profiles; "" means the
	// system's temporary directory.
	ProfileDir string
	// IdleTimeout deletes a session with no command for this long, a backstop
	// for when the hub is gone; default 10 minutes.
	IdleTimeout time.Duration
	// Logger receives session events; nil discards them.
	Logger *slog.Logger
}

// Node runs sessions. It is safe for concurrent use.
type Node struct {
	cfg       Config
	transport *http.Transport
	proxy     *httputil.ReverseProxy

	spares  []chan *session // per browser: a started driver waiting for a session
	filling []atomic.Int32  // per browser: spares being started

	mu       sync.Mutex
	sessions map[string]*session
	starting map[int]int // browser index -> sessions being created
	draining bool

	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

// New returns a Node. Call Start to begin reaping idle sessions.
func New(cfg Config) (*Node, error) {
	if len(cfg.Browsers) == 0 {
		return nil, errors.New("node offers no browsers")
	}
	for i := range cfg.Browsers {
		b := &cfg.Browsers[i]
		if b.MaxSessions < 1 {
			b.MaxSessions = 1
		}
		if b.Driver == "" && b.RelayURL == "" {
			return nil, fmt.Errorf("browser %v: no driver binary and no relay URL", b.Stereotype["browserName"])
		}
	}
	if cfg.ID == "" {
		cfg.ID = randomID()
	}
	if cfg.ProfileDir != "" {
		if err := os.MkdirAll(cfg.ProfileDir, 0o700); err != nil {
			return nil, fmt.Errorf("profile directory: %w", err)
		}
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 10 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	n := &Node{
		cfg:       cfg,
		transport: &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second},
		sessions:  make(map[string]*session),
		starting:  make(map[int]int),
		stop:      make(chan struct{}),
	}
	for range cfg.Browsers {
		n.spares = append(n.spares, make(chan *session, 2))
	}
	n.filling = make([]atomic.Int32, len(cfg.Browsers))
	n.proxy = &httputil.ReverseProxy{
		Transport: n.transport,
		Rewrite: func(pr *httputil.ProxyRequest) {
			s := sessionFromContext(pr.In.Context())
			pr.SetURL(s.driverURL)
			pr.Out.URL.Path = s.driverPath(pr.In.URL.Path)
			pr.Out.URL.RawPath = ""
			pr.Out.Host = s.driverURL.Host
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			webdriver.WriteError(w, webdriver.Errorf(webdriver.ErrUnknownError, "the session's driver did not answer: %v", err))
		},
	}
	return n, nil
}

// ID returns the node's id.
func (n *Node) ID() string { return n.cfg.ID }

// Start reaps what a previous run left behind (see ReapOrphans) and begins
// reaping idle sessions.
func (n *Node) Start(context.Context) error {
	if killed := ReapOrphans(n.cfg.ProfileDir); killed > 0 {
		n.cfg.Logger.Warn("node.reaped_orphans", "processes", killed)
	}
	n.wg.Add(1)
	go n.reap()
	for i, b := range n.cfg.Browsers {
		if b.RelayURL == "" {
			n.refillSpare(i)
		}
	}
	return nil
}

// Stop deletes every session (killing drivers and browsers) and stops the
// reaper. Calling it twice is safe.
func (n *Node) Stop(ctx context.Context) error {
	n.stopOnce.Do(func() { close(n.stop) })
	n.wg.Wait()
	n.mu.Lock()
	all := make([]*session, 0, len(n.sessions))
	for _, s := range n.sessions {
		all = append(all, s)
	}
	n.mu.Unlock()
	for _, s := range all {
		n.endSession(ctx, s, true)
	}
	for i := range n.spares {
		for len(n.spares[i]) > 0 {
			if s := n.takeSpare(i); s != nil {
				n.cleanup(s)
			}
		}
	}
	n.transport.CloseIdleConnections()
	return nil
}

// Drain stops the node from taking new sessions; running ones go on.
func (n *Node) Drain() {
	n.mu.Lock()
	n.draining = true
	n.mu.Unlock()
}

// Slot describes one browser's capacity for registration and status.
type Slot struct {
	Stereotype  map[string]any `json:"stereotype"`
	MaxSessions int            `json:"maxSessions"`
	Sessions    int            `json:"sessions"`
}

// Slots returns the node's browsers with their current use.
func (n *Node) Slots() []Slot {
	n.mu.Lock()
	defer n.mu.Unlock()
	slots := make([]Slot, len(n.cfg.Browsers))
	for i, b := range n.cfg.Browsers {
		slots[i] = Slot{Stereotype: b.Stereotype, MaxSessions: b.MaxSessions, Sessions: n.starting[i]}
	}
	for _, s := range n.sessions {
		slots[s.browser].Sessions++
	}
	return slots
}

// SessionIDs lists the sessions running now.
func (n *Node) SessionIDs() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	ids := make([]string, 0, len(n.sessions))
	for id := range n.sessions {
		ids = append(ids, id)
	}
	return ids
}

// Draining reports whether the node refuses new sessions.
func (n *Node) Draining() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.draining
}

// ServeHTTP serves the W3C WebDriver API, at / and under /wd/hub.
func (n *Node) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(r.URL.Path, "/wd/hub")
	switch {
	case path == "/session" && r.Method == http.MethodPost:
		n.newSession(w, r)
	case path == "/status" && r.Method == http.MethodGet:
		n.status(w)
	case path == "/se/herd/drain" && r.Method == http.MethodPost:
		n.Drain()
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_, _ = w.Write([]byte(`{"value":true}` + "\n"))
	case strings.HasPrefix(path, "/session/"):
		id, rest, _ := strings.Cut(strings.TrimPrefix(path, "/session/"), "/")
		n.command(w, r, id, rest)
	default:
		webdriver.WriteError(w, webdriver.Errorf(webdriver.ErrUnknownCommand, "no command %s %s", r.Method, r.URL.Path))
	}
}

func (n *Node) command(w http.ResponseWriter, r *http.Request, id, rest string) {
	n.mu.Lock()
	s := n.sessions[id]
	n.mu.Unlock()
	if s == nil {
		webdriver.WriteError(w, webdriver.Errorf(webdriver.ErrInvalidSessionID, "no session %s on node %s (ended, timed out or never existed)", id, n.cfg.ID))
		return
	}
	s.touch()
	defer s.touch()
	if rest == "se/cdp" || rest == "se/bidi" {
		n.webSocket(w, r, s, rest)
		return
	}
	if rest == "" && r.Method == http.MethodDelete {
		n.proxy.ServeHTTP(w, r.WithContext(withSession(r.Context(), s)))
		n.endSession(context.WithoutCancel(r.Context()), s, false)
		return
	}
	n.proxy.ServeHTTP(w, r.WithContext(withSession(r.Context(), s)))
}

// webSocket proxies a session's CDP or BiDi WebSocket to the browser's
// DevTools endpoint or the driver's BiDi endpoint.
func (n *Node) webSocket(w http.ResponseWriter, r *http.Request, s *session, kind string) {
	target, err := n.webSocketTarget(r.Context(), s, kind)
	if err != nil {
		webdriver.WriteError(w, webdriver.Errorf(webdriver.ErrUnknownCommand, "session %s: %v", s.id, err))
		return
	}
	proxy := &httputil.ReverseProxy{
		Transport: n.transport,
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(&url.URL{Scheme: "http", Host: target.Host})
			pr.Out.URL.Path, pr.Out.URL.RawPath = target.Path, ""
			pr.Out.Host = target.Host
			// DevTools refuses cross-origin WebSockets; the client is remote by design.
			pr.Out.Header.Del("Origin")
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			webdriver.WriteError(w, webdriver.Errorf(webdriver.ErrUnknownError, "cannot reach the browser's %s endpoint: %v", kind, err))
		},
	}
	proxy.ServeHTTP(w, r)
}

func (n *Node) webSocketTarget(ctx context.Context, s *session, kind string) (*url.URL, error) {
	var raw string
	switch kind {
	case "se/bidi":
		raw, _ = s.capabilities["webSocketUrl"].(string)
		if raw == "" {
			return nil, errors.New("no BiDi endpoint: create the session with the capability webSocketUrl: true")
		}
	default:
		opts, _ := s.capabilities["goog:chromeOptions"].(map[string]any)
		addr, _ := opts["debuggerAddress"].(string)
		if addr == "" {
			return nil, errors.New("the browser has no DevTools endpoint (CDP works with Chrome and Chromium)")
		}
		addr = strings.Replace(addr, "localhost", "127.0.0.1", 1)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/json/version", nil)
		if err != nil {
			return nil, err
		}
		resp, err := n.transport.RoundTrip(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		var version struct {
			WebSocketDebuggerURL string `json:"webSocketDebuggerUrl"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&version); err != nil || version.WebSocketDebuggerURL == "" {
			return nil, fmt.Errorf("the browser did not name its DevTools WebSocket: %v", err)
		}
		raw = version.WebSocketDebuggerURL
	}
	u, err := url.Parse(strings.Replace(raw, "localhost", "127.0.0.1", 1))
	if err != nil {
		return nil, err
	}
	return u, nil
}

// reap deletes sessions idle for longer than IdleTimeout.
func (n *Node) reap() {
	defer n.wg.Done()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	lastOrphanScan := time.Now()
	for {
		select {
		case <-n.stop:
			return
		case <-tick.C:
		}
		if time.Since(lastOrphanScan) > 30*time.Second {
			lastOrphanScan = time.Now()
			if killed := ReapOrphans(n.cfg.ProfileDir); killed > 0 {
				n.cfg.Logger.Warn("node.reaped_orphans", "processes", killed)
			}
		}
		n.mu.Lock()
		var idle []*session
		for _, s := range n.sessions {
			if s.idleFor() > n.cfg.IdleTimeout {
				idle = append(idle, s)
			}
		}
		n.mu.Unlock()
		for _, s := range idle {
			n.cfg.Logger.Info("node.session_idle", "session", s.id, "idle", s.idleFor().Round(time.Second))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			n.endSession(ctx, s, true)
			cancel()
		}
	}
}

// mustURL parses a URL known to be valid.
func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}
