package hub

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herd-ml/herd/internal/gridtest"
	"github.com/herd-ml/herd/node"
)

// grid is a hub with real Chromium nodes, all in this process.
type grid struct {
	hub      *Hub
	beats    []chan struct{} // close to stop node i's heartbeats
	url      string
	nodes    []*node.Node
	nodeURLs []string
	site     string
	profiles string
}

func setupGrid(t *testing.T, cfg Config, nodes, maxSessions int) *grid {
	t.Helper()
	driver, browser := gridtest.Chrome(t)
	g := &grid{hub: New(cfg), site: gridtest.Site(t), profiles: gridtest.ProfileDir(t)}
	if err := g.hub.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	hubSrv := httptest.NewServer(g.hub)
	g.url = hubSrv.URL
	var servers []*httptest.Server
	for range nodes {
		n, err := node.New(node.Config{
			Browsers:   []node.Browser{{Stereotype: map[string]any{"browserName": "chrome", "platformName": "linux"}, MaxSessions: maxSessions, Driver: driver, Binary: browser}},
			ProfileDir: g.profiles,
		})
		if err != nil {
			t.Fatal(err)
		}
		_ = n.Start(context.Background())
		srv := httptest.NewServer(n)
		servers = append(servers, srv)
		g.nodes = append(g.nodes, n)
		g.nodeURLs = append(g.nodeURLs, srv.URL)
		g.heartbeat(t, n, srv.URL)
		stop := make(chan struct{})
		g.beats = append(g.beats, stop)
		go func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(200 * time.Millisecond):
					g.heartbeat(t, n, srv.URL)
				}
			}
		}()
	}
	t.Cleanup(func() {
		for _, b := range g.beats {
			select {
			case <-b:
			default:
				close(b)
			}
		}
		hubSrv.Close()
		_ = g.hub.Stop(context.Background())
		for i, n := range g.nodes {
			servers[i].Close()
			_ = n.Stop(context.Background())
		}
		gridtest.NoLeaks(t, g.profiles)
	})
	return g
}

// heartbeat registers a node once, as its registration loop would.
func (g *grid) heartbeat(t *testing.T, n *node.Node, uri string) {
	t.Helper()
	reg := Registration{ID: n.ID(), URI: uri, Sessions: n.SessionIDs()}
	for _, s := range n.Slots() {
		reg.Slots = append(reg.Slots, RegistrationSlot{Stereotype: s.Stereotype, MaxSessions: s.MaxSessions})
	}
	if err := g.hub.Register(reg); err != nil {
		t.Error(err)
	}
}

func TestScenariosThroughHub(t *testing.T) {
	t.Parallel()

	g := setupGrid(t, Config{}, 2, 2)
	for _, prefix := range []string{"", "/wd/hub"} {
		out, err := gridtest.RunScenarios(context.Background(), t, g.url+prefix, g.site)
		if err != nil || strings.Count(out, "ok ") != 9 {
			t.Fatalf("Python scenarios via %q: %v\n%s", prefix, err, out)
		}
	}
	out, err := gridtest.RunJSScenarios(context.Background(), t, g.url, g.site)
	if err != nil || strings.Count(out, "ok ") != 10 {
		t.Fatalf("JavaScript scenarios: %v\n%s", err, out)
	}
}

func TestParallelSessionsHonourMaxSessions(t *testing.T) {
	t.Parallel()

	g := setupGrid(t, Config{}, 2, 3) // 6 slots for 10 sessions: 4 must queue
	var mu sync.Mutex
	peak := make([]int, len(g.nodes))
	peakQueue := 0
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			queued := len(g.hub.queued())
			mu.Lock()
			peakQueue = max(peakQueue, queued)
			for i, n := range g.nodes {
				peak[i] = max(peak[i], n.Slots()[0].Sessions)
			}
			mu.Unlock()
		}
	})
	// Ten clients at once, half of each official binding; each holds its
	// session for a while, so later ones wait in the queue.
	var clients []*gridtest.Client
	for i := range 10 {
		clients = append(clients, gridtest.StartClient(t, gridtest.Clients[i%2], g.url))
	}
	errs := make([]error, len(clients))
	var sessions sync.WaitGroup
	for i, c := range clients {
		sessions.Go(func() {
			if _, errs[i] = c.Do("new"); errs[i] != nil {
				return
			}
			if _, errs[i] = c.Do("get " + g.site + "/other.html"); errs[i] != nil {
				return
			}
			time.Sleep(1500 * time.Millisecond)
			_, errs[i] = c.Do("quit")
		})
	}
	sessions.Wait()
	close(stop)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("%s client %d: %v", gridtest.Clients[i%2], i, err)
		}
	}
	for i, p := range peak {
		if p > 3 {
			t.Errorf("node %d ran %d sessions at once, more than maxSessions 3", i, p)
		}
		if p == 0 {
			t.Errorf("node %d got no session: the hub did not spread the load", i)
		}
	}
	if peakQueue == 0 {
		t.Error("no request ever waited in the queue, with 10 sessions for 6 slots")
	}
}

func TestNoMatchFailsAtOnce(t *testing.T) {
	t.Parallel()

	g := setupGrid(t, Config{}, 1, 1)
	status, body := post(t, g.url+"/session", `{"capabilities":{"alwaysMatch":{"browserName":"firefox"}}}`)
	if status != 500 || !strings.Contains(body, `"session not created"`) || !strings.Contains(body, "no node of this grid offers") || !strings.Contains(body, "chrome") {
		t.Fatalf("firefox on a chrome grid = %d %s", status, body)
	}
}

func TestQueueTimeoutAndClientLeaving(t *testing.T) {
	t.Parallel()

	g := setupGrid(t, Config{QueueTimeout: 500 * time.Millisecond}, 1, 1)
	id := createSession(t, g.url)
	defer deleteSession(t, g.url, id)

	start := time.Now()
	status, body := post(t, g.url+"/session", `{"capabilities":{"alwaysMatch":{"browserName":"chrome"}}}`)
	if status != 500 || !strings.Contains(body, "queue timeout") || time.Since(start) < 400*time.Millisecond {
		t.Fatalf("queued past the timeout = %d %s", status, body)
	}

	// A client that disconnects leaves the queue.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		req, _ := http.NewRequestWithContext(ctx, "POST", g.url+"/session", strings.NewReader(`{"capabilities":{}}`))
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	waitFor(t, func() bool { return len(g.hub.queued()) == 1 })
	cancel()
	<-done
	waitFor(t, func() bool { return len(g.hub.queued()) == 0 })
}

// The lifecycle tests run with both official clients: what matters is what
// a user of each binding sees.

// withEachClient runs f as a parallel subtest for each official binding.
func withEachClient(t *testing.T, f func(t *testing.T, lang string)) {
	for _, lang := range gridtest.Clients {
		t.Run(lang, func(t *testing.T) {
			t.Parallel()
			f(t, lang)
		})
	}
}

func TestQueueWithOfficialClients(t *testing.T) {
	t.Parallel()
	withEachClient(t, func(t *testing.T, lang string) {
		g := setupGrid(t, Config{}, 1, 1)
		first := gridtest.StartClient(t, lang, g.url)
		first.Must("new")
		second := gridtest.StartClient(t, lang, g.url)
		created := make(chan error, 1)
		go func() { _, err := second.Do("new"); created <- err }()
		waitFor(t, func() bool { return len(g.hub.queued()) == 1 })
		select {
		case err := <-created:
			t.Fatalf("a second session started on a grid with one slot: %v", err)
		case <-time.After(500 * time.Millisecond):
		}
		first.Must("quit")
		if err := <-created; err != nil {
			t.Fatalf("queued session: %v", err)
		}
		second.Must("get " + g.site + "/other.html")
		if title := second.Must("title"); title != "Other page" {
			t.Fatalf("title = %q", title)
		}
		second.Must("quit")
	})
}

func TestIdleTimeoutEndsSessionAndBrowser(t *testing.T) {
	t.Parallel()
	withEachClient(t, func(t *testing.T, lang string) {
		g := setupGrid(t, Config{SessionTimeout: 2 * time.Second}, 1, 2)
		vanished := gridtest.StartClient(t, lang, g.url)
		vanished.Must("new")
		vanished.Kill() // the client disappears mid-session
		idle := gridtest.StartClient(t, lang, g.url)
		idle.Must("new")
		idle.Must("get " + g.site + "/other.html")
		waitFor(t, func() bool { return len(g.nodes[0].SessionIDs()) == 0 })
		_, err := idle.Do("title")
		if !invalidSession(err) || !strings.Contains(err.Error(), "without a command") {
			t.Fatalf("command after the idle timeout: %v", err)
		}
		gridtest.NoBrowsers(t, g.profiles) // both browsers are gone
		idle.Must("new")                   // and the slots are free again
		idle.Must("quit")
	})
}

func TestNodeLostMidSession(t *testing.T) {
	t.Parallel()
	withEachClient(t, func(t *testing.T, lang string) {
		g := setupGrid(t, Config{NodeTimeout: time.Second}, 1, 1)
		c := gridtest.StartClient(t, lang, g.url)
		c.Must("new")
		close(g.beats[0]) // no more heartbeats: the hub drops the node and its session
		waitFor(t, func() bool {
			g.hub.mu.Lock()
			defer g.hub.mu.Unlock()
			return len(g.hub.nodes) == 0
		})
		_, err := c.Do("title")
		if !invalidSession(err) || !strings.Contains(err.Error(), "was lost") {
			t.Fatalf("command on a lost node: %v", err)
		}
	})
}

func TestDrain(t *testing.T) {
	t.Parallel()
	withEachClient(t, func(t *testing.T, lang string) {
		g := setupGrid(t, Config{QueueTimeout: 300 * time.Millisecond}, 1, 2)
		running := gridtest.StartClient(t, lang, g.url)
		running.Must("new")
		status, body := post(t, g.url+"/se/grid/distributor/node/"+g.nodes[0].ID()+"/drain", "")
		if status != 200 {
			t.Fatalf("drain = %d %s", status, body)
		}
		running.Must("get " + g.site + "/other.html") // the running session goes on
		// No new session lands on the draining node.
		_, err := gridtest.StartClient(t, lang, g.url).Do("new")
		if err == nil || !strings.Contains(err.Error(), "SessionNotCreated") {
			t.Fatalf("new session on a draining grid: %v", err)
		}
		_, body = get(t, g.url+"/status")
		if !strings.Contains(body, `"availability":"DRAINING"`) {
			t.Fatalf("status does not show the drain: %s", body)
		}
		running.Must("quit")
	})
}

// invalidSession reports whether a client's error is the binding's
// invalid-session error.
func invalidSession(err error) bool {
	return err != nil && (strings.HasPrefix(err.Error(), "InvalidSessionIdException") || strings.HasPrefix(err.Error(), "NoSuchSessionError"))
}

func TestStatusShape(t *testing.T) {
	t.Parallel()

	g := setupGrid(t, Config{}, 1, 2)
	id := createSession(t, g.url)
	defer deleteSession(t, g.url, id)
	_, body := get(t, g.url+"/status")
	var st struct {
		Value struct {
			Ready   bool
			Message string
			Nodes   []struct {
				ID, URI, Availability string
				MaxSessions           int
				SessionTimeout        int64
				HeartbeatPeriod       int64
				OSInfo                map[string]string `json:"osInfo"`
				Slots                 []struct {
					ID         map[string]string
					Session    *struct{ SessionID string }
					Stereotype map[string]any
				}
			}
		}
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	v := st.Value
	if !v.Ready || v.Message != "Selenium Grid ready." || len(v.Nodes) != 1 {
		t.Fatalf("status = %s", body)
	}
	n := v.Nodes[0]
	if n.MaxSessions != 2 || len(n.Slots) != 2 || n.Availability != "UP" || n.SessionTimeout != 300000 || n.OSInfo["name"] == "" {
		t.Fatalf("node = %+v", n)
	}
	busy := 0
	for _, s := range n.Slots {
		if s.Session != nil && s.Session.SessionID == id {
			busy++
		}
		if s.ID["hostId"] != n.ID || s.Stereotype["browserName"] != "chrome" {
			t.Fatalf("slot = %+v", s)
		}
	}
	if busy != 1 {
		t.Fatalf("the running session is in %d slots: %s", busy, body)
	}
}

func TestW3CErrors(t *testing.T) {
	t.Parallel()

	h := New(Config{})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	tests := []struct {
		method, path, body string
		status             int
		code               string
	}{
		{"GET", "/session/nope/url", "", 404, "invalid session id"},
		{"GET", "/wd/hub/session/nope/url", "", 404, "invalid session id"},
		{"POST", "/session", "not json", 400, "invalid argument"},
		{"POST", "/session", `{"capabilities":{"alwaysMatch":{"browserName":"chrome"},"firstMatch":[{"browserName":"chrome"}]}}`, 400, "invalid argument"},
		{"GET", "/nope", "", 404, "unknown command"},
		{"GET", "/session", "", 405, "unknown method"},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(tt.method, srv.URL+tt.path, strings.NewReader(tt.body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var e struct {
			Value struct {
				Error, Message string
				Stacktrace     *string
			}
		}
		_ = json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != tt.status || e.Value.Error != tt.code || e.Value.Message == "" || e.Value.Stacktrace == nil {
			t.Errorf("%s %s = %d %+v; want %d %q with message and stacktrace", tt.method, tt.path, resp.StatusCode, e.Value, tt.status, tt.code)
		}
	}
}

func createSession(t *testing.T, base string) string {
	t.Helper()
	status, body := post(t, base+"/session", `{"capabilities":{"alwaysMatch":{"browserName":"chrome"}}}`)
	var created struct{ Value struct{ SessionID string } }
	if err := json.Unmarshal([]byte(body), &created); err != nil || status != 200 || created.Value.SessionID == "" {
		t.Fatalf("new session = %d %s", status, body)
	}
	return created.Value.SessionID
}

func deleteSession(t *testing.T, base, id string) {
	t.Helper()
	req, _ := http.NewRequest("DELETE", base+"/session/"+id, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

func post(t *testing.T, url, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 20s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestQueueListAndClearOverHTTP(t *testing.T) {
	t.Parallel()

	g := setupGrid(t, Config{RegistrationSecret: "s3cret"}, 1, 1)
	id := createSession(t, g.url)
	defer deleteSession(t, g.url, id)
	queued := make(chan string, 1)
	go func() {
		_, body := post(t, g.url+"/session", `{"capabilities":{"alwaysMatch":{"browserName":"chrome","herd:note":"nightly"}}}`)
		queued <- body
	}()
	waitFor(t, func() bool { return len(g.hub.queued()) == 1 })

	// Listing needs no secret (the /ui page reads it).
	status, body := get(t, g.url+"/se/grid/newsessionqueue/queue")
	var list struct {
		Value []struct {
			Capabilities []map[string]any
			Enqueued     time.Time
		}
	}
	if err := json.Unmarshal([]byte(body), &list); err != nil || status != 200 || len(list.Value) != 1 {
		t.Fatalf("queue listing = %d %s", status, body)
	}
	if q := list.Value[0]; q.Capabilities[0]["browserName"] != "chrome" || time.Since(q.Enqueued) > time.Minute {
		t.Fatalf("queued request = %+v", q)
	}

	// Clearing it does.
	clear := func(secret string) (int, string) {
		req, _ := http.NewRequest("DELETE", g.url+"/se/grid/newsessionqueue/queue", nil)
		if secret != "" {
			req.Header.Set("X-Registration-Secret", secret)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if status, body := clear(""); status != 401 || !strings.Contains(body, "X-Registration-Secret") {
		t.Fatalf("clear without the secret = %d %s", status, body)
	}
	if status, body := clear("wrong"); status != 401 {
		t.Fatalf("clear with a wrong secret = %d %s", status, body)
	}
	if len(g.hub.queued()) != 1 {
		t.Fatal("a refused clear emptied the queue")
	}
	if status, body := clear("s3cret"); status != 200 || strings.TrimSpace(body) != `{"value":1}` {
		t.Fatalf("clear = %d %s", status, body)
	}
	if body := <-queued; !strings.Contains(body, "session not created") || !strings.Contains(body, "cleared by an operator") {
		t.Fatalf("the queued client got %s", body)
	}
}

func TestBasicAuth(t *testing.T) {
	t.Parallel()

	g := setupGrid(t, Config{BasicAuthUser: "ci", BasicAuthPassword: "pass-word", RegistrationSecret: "s3cret"}, 1, 1)
	authed := strings.Replace(g.url, "http://", "http://ci:pass-word@", 1)
	for _, path := range []string{"/status", "/session", "/metrics", "/ui", "/session/x/url", "/se/grid/newsessionqueue/queue"} {
		for _, base := range []string{g.url, strings.Replace(g.url, "http://", "http://ci:wrong@", 1)} {
			resp, err := http.Get(base + path)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic ") || !strings.Contains(string(b), `"unauthorized"`) {
				t.Errorf("GET %s without the right password = %d %s", path, resp.StatusCode, b)
			}
		}
	}
	if status, body := get(t, authed+"/status"); status != 200 {
		t.Fatalf("GET /status with the password = %d %s", status, body)
	}
	// Nodes register with the secret alone.
	req, _ := http.NewRequest("POST", g.url+"/se/herd/node", strings.NewReader(`{"id":"extra","uri":"http://127.0.0.1:1","slots":[{"stereotype":{"browserName":"firefox"},"maxSessions":1}]}`))
	req.Header.Set("X-Registration-Secret", "s3cret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("node registration under basic auth = %s", resp.Status)
	}
	// The official client, with the user and password in the grid URL.
	out, err := gridtest.RunScenarios(context.Background(), t, authed, g.site, "navigation", "elements")
	if err != nil || strings.Count(out, "ok ") != 2 {
		t.Fatalf("Python client with basic auth: %v\n%s", err, out)
	}
}
