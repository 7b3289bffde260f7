package node

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herd-ml/herd/internal/gridtest"
)

func chromeNode(t *testing.T, maxSessions int, idle time.Duration) (*Node, string, string) {
	t.Helper()
	driver, browser := gridtest.Chrome(t)
	profiles := gridtest.ProfileDir(t)
	n, err := New(Config{
		Browsers: []Browser{{
			Stereotype:  map[string]any{"browserName": "chrome", "platformName": "linux"},
			MaxSessions: maxSessions,
			Driver:      driver,
			Binary:      browser,
		}},
		ProfileDir:  profiles,
		IdleTimeout: idle,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(n)
	t.Cleanup(func() {
		srv.Close()
		_ = n.Stop(context.Background())
		gridtest.NoLeaks(t, profiles)
	})
	return n, srv.URL, profiles
}

func TestNodeScenarios(t *testing.T) {
	t.Parallel()

	n, url, profiles := chromeNode(t, 2, time.Minute)
	site := gridtest.Site(t)
	out, err := gridtest.RunScenarios(context.Background(), t, url, site)
	if err != nil {
		t.Fatalf("scenarios failed: %v\n%s", err, out)
	}
	if strings.Count(out, "ok ") != 9 {
		t.Fatalf("not every scenario ran:\n%s", out)
	}
	if ids := n.SessionIDs(); len(ids) != 0 {
		t.Fatalf("sessions left after quit: %v", ids)
	}
	gridtest.NoBrowsers(t, profiles)
}

// TestRelay forwards sessions to an existing WebDriver endpoint under a path
// (here a stub that records what it is asked) instead of starting drivers.
func TestRelay(t *testing.T) {
	t.Parallel()

	var mu sync.Mutex
	var paths []string
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.Method+" "+r.URL.Path)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if r.Method == "POST" && r.URL.Path == "/wd/hub/session" {
			_, _ = w.Write([]byte(`{"value":{"sessionId":"up-1","capabilities":{}}}`))
			return
		}
		_, _ = w.Write([]byte(`{"value":"t"}`))
	}))
	t.Cleanup(upstream.Close)
	n, err := New(Config{Browsers: []Browser{{Stereotype: map[string]any{"browserName": "chrome"}, MaxSessions: 1, RelayURL: upstream.URL + "/wd/hub"}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(n)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { _ = n.Stop(context.Background()) })

	resp, err := http.Post(srv.URL+"/session", "application/json", strings.NewReader(`{"capabilities":{}}`))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("new session: %v %v", resp, err)
	}
	resp.Body.Close()
	if resp, err = http.Get(srv.URL + "/session/up-1/title"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("command: %v %v", resp, err)
	}
	resp.Body.Close()
	req, _ := http.NewRequest("DELETE", srv.URL+"/session/up-1", nil)
	if resp, err = http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("delete: %v %v", resp, err)
	}
	resp.Body.Close()
	mu.Lock()
	defer mu.Unlock()
	want := []string{"POST /wd/hub/session", "GET /wd/hub/session/up-1/title", "DELETE /wd/hub/session/up-1"}
	if strings.Join(paths, ", ") != strings.Join(want, ", ") {
		t.Fatalf("upstream saw %v, want %v", paths, want)
	}
	if len(n.SessionIDs()) != 0 {
		t.Fatal("relayed session still listed after delete")
	}
}

// TestRelayToChromedriver relays to a chromedriver the node did not start,
// serving under a path, and drives real Chromium through it.
func TestRelayToChromedriver(t *testing.T) {
	t.Parallel()

	driver, browser := gridtest.Chrome(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cd := exec.Command(driver, "--port="+strconv.Itoa(port), "--url-base=/wd/hub")
	if err := cd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cd.Process.Kill(); _ = cd.Wait() })
	relay := fmt.Sprintf("http://127.0.0.1:%d/wd/hub", port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(relay + "/status")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("chromedriver did not come up: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	n, err := New(Config{Browsers: []Browser{{
		Stereotype: map[string]any{"browserName": "chrome"}, MaxSessions: 1,
		RelayURL: relay, Binary: browser, Args: DefaultChromeArgs,
	}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(n)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { _ = n.Stop(context.Background()) })
	out, err := gridtest.RunScenarios(context.Background(), t, srv.URL, gridtest.Site(t), "navigation", "elements", "screenshot")
	if err != nil || strings.Count(out, "ok ") != 3 {
		t.Fatalf("scenarios through a relay: %v\n%s", err, out)
	}
	if ids := n.SessionIDs(); len(ids) != 0 {
		t.Fatalf("relayed sessions left after quit: %v", ids)
	}
	// The relay's driver ended its browsers when the sessions were deleted.
	deadline = time.Now().Add(10 * time.Second)
	for {
		children, _ := exec.Command("pgrep", "-P", strconv.Itoa(cd.Process.Pid)).Output()
		if len(strings.TrimSpace(string(children))) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("chromedriver still has child processes after the sessions ended: %s", children)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
