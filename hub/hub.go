// Package hub is the grid's router: it keeps the registry of nodes and their
// slots, matches new-session requests to a free slot on the least-loaded
// matching node (queueing them per request, so one browser's backlog never
// blocks another's), proxies every session command to the session's node,
// and ends sessions that idle past the timeout or whose node was lost.
package hub

import (
	"context"
	"crypto/subtle"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/herd-ml/herd/webdriver"
)

// Config configures a Hub. Zero fields take the defaults stated.
type Config struct {
	// SessionTimeout ends a session with no command for this long; default 300 s.
	SessionTimeout time.Duration
	// QueueTimeout fails a new-session request that found no slot in this
	// time; default 300 s.
	QueueTimeout time.Duration
	// NodeTimeout drops a node that sent no heartbeat for this long;
	// default 30 s.
	NodeTimeout time.Duration
	// HeartbeatPeriod is what nodes are told to use; default 5 s.
	HeartbeatPeriod time.Duration
	// RegistrationSecret, when set, must come with node registrations and
	// operator calls in the X-Registration-Secret header.
	RegistrationSecret string
	// BasicAuthUser and BasicAuthPassword, when set, are required of every
	// client: WebDriver commands, /status, /metrics, /ui and the operator
	// API. Node registrations use RegistrationSecret instead.
	BasicAuthUser, BasicAuthPassword string
	// KeepUnmatched queues requests that no registered node could ever serve
	// (for fleets that autoscale on the queue) instead of failing them at once.
	KeepUnmatched bool
	// PublicURL is the hub's address as clients see it (behind a load
	// balancer, say); it is written into the se:cdp and webSocketUrl
	// capabilities. Empty means the Host each client used.
	PublicURL string
	// Transport carries requests to nodes; nil means a pooled keep-alive
	// transport. Upgrades (CDP, BiDi) always use connections of their own.
	Transport http.RoundTripper
	// InProcess maps the host:port of nodes that run in this process to
	// their handlers: session commands for them are handed over directly,
	// with no proxy in between (herd standalone).
	InProcess map[string]http.Handler
	// Version is reported in /status.
	Version string
	// Logger receives grid events; nil discards them.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.SessionTimeout <= 0 {
		c.SessionTimeout = 300 * time.Second
	}
	if c.QueueTimeout <= 0 {
		c.QueueTimeout = 300 * time.Second
	}
	if c.NodeTimeout <= 0 {
		c.NodeTimeout = 30 * time.Second
	}
	if c.HeartbeatPeriod <= 0 {
		c.HeartbeatPeriod = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Hub routes WebDriver traffic. It is safe for concurrent use.
type Hub struct {
	cfg       Config
	pool      *http.Transport // the default node transport
	transport http.RoundTripper
	proxy     *httputil.ReverseProxy
	// wsProxy carries CDP and BiDi WebSockets on connections of their own,
	// which count every read and write as the session's activity.
	wsProxy *httputil.ReverseProxy
	metrics *metrics
	graphql http.HandlerFunc // POST /graphql, Selenium Grid's subset

	mu       sync.Mutex
	nodes    map[string]*nodeEntry
	sessions map[string]*sessionEntry
	lost     map[string]string // ended session id -> why, for a clear error
	lostIDs  []string          // lost's keys, oldest first, to bound it
	waiters  []*waiter

	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

// maxLost bounds how many ended sessions the hub remembers.
const maxLost = 10000

type nodeEntry struct {
	id       string
	uri      *url.URL
	version  string
	slots    []slotState
	lastSeen time.Time
	draining bool
	started  time.Time
}

type slotState struct {
	stereotype  map[string]any
	maxSessions int
	busy        int // sessions running or being created
	lastStarted time.Time
}

func (n *nodeEntry) load() float64 {
	busy, total := 0, 0
	for _, s := range n.slots {
		busy += s.busy
		total += s.maxSessions
	}
	if total == 0 {
		return 1
	}
	return float64(busy) / float64(total)
}

type sessionEntry struct {
	id           string
	node         *nodeEntry
	slot         int
	created      time.Time
	capabilities map[string]any

	mu       sync.Mutex
	lastSeen time.Time
}

func (s *sessionEntry) touch() {
	s.mu.Lock()
	s.lastSeen = time.Now()
	s.mu.Unlock()
}

func (s *sessionEntry) idleFor() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return time.Since(s.lastSeen)
}

// New returns a Hub. Call Start to begin enforcing timeouts.
func New(cfg Config) *Hub {
	h := &Hub{
		cfg:      cfg.withDefaults(),
		pool:     &http.Transport{MaxIdleConnsPerHost: 256, IdleConnTimeout: 90 * time.Second},
		nodes:    make(map[string]*nodeEntry),
		sessions: make(map[string]*sessionEntry),
		lost:     make(map[string]string),
		stop:     make(chan struct{}),
	}
	h.transport = h.cfg.Transport
	if h.transport == nil {
		h.transport = h.pool
	}
	rewrite := func(pr *httputil.ProxyRequest) {
		s := sessionFrom(pr.In.Context())
		pr.SetURL(s.node.uri)
		pr.Out.URL.Path = strings.TrimSuffix(s.node.uri.Path, "/") + strings.TrimPrefix(pr.In.URL.Path, "/wd/hub")
		pr.Out.URL.RawPath = ""
		pr.SetXForwarded()
	}
	errorHandler := func(w http.ResponseWriter, r *http.Request, err error) {
		s := sessionFrom(r.Context())
		if errors.Is(err, context.Canceled) {
			return // the client went away
		}
		webdriver.WriteError(w, webdriver.Errorf(webdriver.ErrUnknownError, "node %s (%s) did not answer for session %s: %v", s.node.id, s.node.uri, s.id, err))
	}
	h.proxy = &httputil.ReverseProxy{Transport: h.transport, Rewrite: rewrite, ErrorHandler: errorHandler}
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	h.wsProxy = &httputil.ReverseProxy{
		Transport: &http.Transport{
			DisableKeepAlives: true,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := dialer.DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				if s := sessionFrom(ctx); s != nil {
					return &activeConn{Conn: c, session: s}, nil
				}
				return c, nil
			},
		},
		Rewrite:      rewrite,
		ErrorHandler: errorHandler,
	}
	h.metrics = newMetrics(h)
	h.graphql = h.graphqlHandler()
	return h
}

// uiPage is the live grid page served at /ui.
//
//go:embed ui/index.html
var uiPage []byte

type sessionKey struct{}

func sessionFrom(ctx context.Context) *sessionEntry {
	s, _ := ctx.Value(sessionKey{}).(*sessionEntry)
	return s
}

// Start begins ending idle sessions and dropping silent nodes.
func (h *Hub) Start(context.Context) error {
	h.wg.Add(1)
	go h.watch()
	return nil
}

// Stop stops the watcher and fails queued requests. Sessions are left on
// their nodes (which reap them on their own idle timeout). Calling it twice
// is safe.
func (h *Hub) Stop(context.Context) error {
	h.stopOnce.Do(func() { close(h.stop) })
	h.wg.Wait()
	h.mu.Lock()
	for _, w := range h.waiters {
		w.fail(webdriver.Errorf(webdriver.ErrSessionNotCreated, "the hub is shutting down"))
	}
	h.waiters = nil
	h.mu.Unlock()
	h.pool.CloseIdleConnections()
	return nil
}

// ServeHTTP serves the W3C WebDriver API at / and /wd/hub, the node
// registration API, and the operator API.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.cfg.BasicAuthUser != "" && !strings.HasPrefix(r.URL.Path, "/se/herd/node") && !h.basicAuthOK(r) {
		w.Header().Set("WWW-Authenticate", `Basic realm="herd grid", charset="UTF-8"`)
		webdriver.WriteError(w, webdriver.Errorf(webdriver.ErrUnauthorized, "this grid needs a user and password: put them in the grid URL, as in http://user:password@%s/", r.Host))
		return
	}
	path := strings.TrimPrefix(r.URL.Path, "/wd/hub")
	switch {
	case path == "/session" && r.Method == http.MethodPost:
		h.newSession(w, r)
	case strings.HasPrefix(path, "/session/"):
		id, rest, _ := strings.Cut(strings.TrimPrefix(path, "/session/"), "/")
		h.command(w, r, id, rest)
	case path == "/status" && r.Method == http.MethodGet:
		h.status(w)
	case r.URL.Path == "/graphql":
		h.graphql(w, r)
	case r.URL.Path == "/metrics" && r.Method == http.MethodGet:
		h.metrics.handler.ServeHTTP(w, r)
	case r.URL.Path == "/ui" || r.URL.Path == "/ui/":
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'")
		_, _ = w.Write(uiPage)
	case r.URL.Path == "/":
		http.Redirect(w, r, "/ui", http.StatusFound)
	case strings.HasPrefix(r.URL.Path, "/se/"):
		h.operator(w, r)
	case path == "/session" || path == "/status":
		webdriver.WriteError(w, webdriver.Errorf(webdriver.ErrUnknownMethod, "%s %s is not supported", r.Method, r.URL.Path))
	default:
		webdriver.WriteError(w, webdriver.Errorf(webdriver.ErrUnknownCommand, "no command %s %s", r.Method, r.URL.Path))
	}
}

func (h *Hub) command(w http.ResponseWriter, r *http.Request, id, rest string) {
	h.mu.Lock()
	s := h.sessions[id]
	why := h.lost[id]
	h.mu.Unlock()
	if s == nil {
		if why == "" {
			why = "no such session on this grid"
		}
		webdriver.WriteError(w, webdriver.Errorf(webdriver.ErrInvalidSessionID, "session %s: %s", id, why))
		return
	}
	s.touch()
	h.metrics.commands.WithLabelValues(methodLabel(r.Method)).Inc()
	ctx := context.WithValue(r.Context(), sessionKey{}, s)
	if local, ok := h.cfg.InProcess[s.node.uri.Host]; ok {
		local.ServeHTTP(w, r.WithContext(ctx))
	} else if rest == "se/cdp" || rest == "se/bidi" {
		h.wsProxy.ServeHTTP(w, r.WithContext(ctx))
	} else {
		h.proxy.ServeHTTP(w, r.WithContext(ctx))
	}
	s.touch()
	if rest == "" && r.Method == http.MethodDelete {
		h.endSession(s, "deleted", "deleted by the client")
	}
}

// methodLabel keeps the commands metric's label values few, whatever
// methods clients send.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodPost, http.MethodDelete:
		return m
	}
	return "other"
}

// endSession forgets s, frees its slot and remembers why it ended.
func (h *Hub) endSession(s *sessionEntry, reason, why string) {
	if h.forget(s, reason, why) {
		h.freeSlot(s)
	}
}

// forget removes s from the routing table so commands get why as their
// error; it reports whether s was still there. reason labels the
// sessions-ended metric.
func (h *Hub) forget(s *sessionEntry, reason, why string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sessions[s.id] != s {
		return false
	}
	h.removeSession(s.id, reason, why)
	return true
}

// removeSession drops a session from the routing table. h.mu must be held.
func (h *Hub) removeSession(id, reason, why string) {
	delete(h.sessions, id)
	h.rememberLost(id, why)
	h.metrics.sessionsEnded.WithLabelValues(reason).Inc()
}

// freeSlot gives s's slot to the queue.
func (h *Hub) freeSlot(s *sessionEntry) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s.node.slots[s.slot].busy > 0 {
		s.node.slots[s.slot].busy--
	}
	h.dispatch()
}

func (h *Hub) rememberLost(id, why string) {
	if _, ok := h.lost[id]; !ok {
		h.lostIDs = append(h.lostIDs, id)
	}
	h.lost[id] = why
	for len(h.lostIDs) > maxLost {
		delete(h.lost, h.lostIDs[0])
		h.lostIDs = h.lostIDs[1:]
	}
}

// watch ends idle sessions and drops nodes that stopped heartbeating.
func (h *Hub) watch() {
	defer h.wg.Done()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-tick.C:
		}
		h.mu.Lock()
		var idle []*sessionEntry
		for _, s := range h.sessions {
			if s.idleFor() > h.cfg.SessionTimeout {
				idle = append(idle, s)
			}
		}
		for id, n := range h.nodes {
			if time.Since(n.lastSeen) > h.cfg.NodeTimeout {
				h.dropNode(id, fmt.Sprintf("the node running it (%s at %s) was lost: no heartbeat for %s", n.id, n.uri, h.cfg.NodeTimeout))
			}
		}
		h.mu.Unlock()
		for _, s := range idle {
			// Forget first, so a late command gets the reason; free the slot
			// only once the node has ended the browser.
			if h.forget(s, "timeout", fmt.Sprintf("ended after %s without a command (--session-timeout)", h.cfg.SessionTimeout)) {
				h.cfg.Logger.Info("hub.session_timeout", "session", s.id, "node", s.node.id)
				h.deleteOnNode(s)
				h.freeSlot(s)
			}
		}
	}
}

// dropNode removes a node and ends its sessions. h.mu must be held.
func (h *Hub) dropNode(id, why string) {
	n := h.nodes[id]
	if n == nil {
		return
	}
	delete(h.nodes, id)
	for sid, s := range h.sessions {
		if s.node == n {
			h.removeSession(sid, "node_lost", why)
		}
	}
	h.cfg.Logger.Warn("hub.node_dropped", "node", id, "uri", n.uri.String(), "why", why)
}

func (h *Hub) deleteOnNode(s *sessionEntry) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := webdriver.DeleteSession(ctx, h.transport, s.node.uri.String(), s.id); err != nil {
		h.cfg.Logger.Warn("hub.delete_failed", "session", s.id, "error", err)
	}
}

// activeConn marks its session active on every read and write, so a
// WebSocket's messages keep the session from idling out.
type activeConn struct {
	net.Conn
	session *sessionEntry
}

func (c *activeConn) Read(b []byte) (int, error) {
	c.session.touch()
	return c.Conn.Read(b)
}

func (c *activeConn) Write(b []byte) (int, error) {
	c.session.touch()
	return c.Conn.Write(b)
}

// publicEndpoints points the se:cdp and webSocketUrl capabilities of a
// new-session reply at the hub, which proxies them to the node.
func (h *Hub) publicEndpoints(r *http.Request, body []byte, id string) []byte {
	var reply map[string]any
	if json.Unmarshal(body, &reply) != nil {
		return body
	}
	value, _ := reply["value"].(map[string]any)
	caps, _ := value["capabilities"].(map[string]any)
	if caps == nil {
		return body
	}
	base := "ws://" + r.Host
	if r.TLS != nil {
		base = "wss://" + r.Host
	}
	if h.cfg.PublicURL != "" {
		base = strings.TrimSuffix(h.cfg.PublicURL, "/")
		base = strings.Replace(strings.Replace(base, "https://", "wss://", 1), "http://", "ws://", 1)
	}
	changed := false
	if _, ok := caps["webSocketUrl"].(string); ok {
		caps["webSocketUrl"] = base + "/session/" + id + "/se/bidi"
		changed = true
	}
	if opts, ok := caps["goog:chromeOptions"].(map[string]any); ok && opts["debuggerAddress"] != nil {
		caps["se:cdp"] = base + "/session/" + id + "/se/cdp"
		if v, ok := caps["browserVersion"].(string); ok {
			caps["se:cdpVersion"] = v
		}
		changed = true
	}
	if !changed {
		return body
	}
	out, err := json.Marshal(reply)
	if err != nil {
		return body
	}
	return out
}

func (h *Hub) basicAuthOK(r *http.Request) bool {
	user, password, ok := r.BasicAuth()
	userOK := subtle.ConstantTimeCompare([]byte(user), []byte(h.cfg.BasicAuthUser))
	passwordOK := subtle.ConstantTimeCompare([]byte(password), []byte(h.cfg.BasicAuthPassword))
	return ok && userOK&passwordOK == 1
}

func (h *Hub) secretOK(r *http.Request) bool {
	if h.cfg.RegistrationSecret == "" {
		return true
	}
	got := r.Header.Get("X-Registration-Secret")
	return subtle.ConstantTimeCompare([]byte(got), []byte(h.cfg.RegistrationSecret)) == 1
}
