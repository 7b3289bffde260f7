package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/herd-ml/herd/internal/gridtest"
	"github.com/herd-ml/herd/internal/testenv"
)

// startHerd runs the herd binary with args and waits until url answers
// GET /status with 200.
func startHerd(t *testing.T, url string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := testenv.Start(t, herdBinary, args...)
	if url != "" {
		testenv.WaitHTTP(t, url+"/status", 30*time.Second)
	}
	return cmd
}

// startStandalone runs herd standalone with Chromium and maxSessions slots
// on a profile directory of its own, and returns its URL, that directory
// and its process.
func startStandalone(t *testing.T, maxSessions int) (url, profiles string, cmd *exec.Cmd) {
	t.Helper()
	gridtest.Chrome(t)
	addr := testenv.FreeAddr(t)
	profiles = gridtest.ProfileDir(t)
	cmd = startHerd(t, "http://"+addr, "standalone", "--addr", addr, "--browser", fmt.Sprintf("maxSessions=%d", maxSessions),
		"--profile-dir", profiles)
	return "http://" + addr, profiles, cmd
}

func waitUntil(t *testing.T, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func gridNodes(t *testing.T, hubURL string) int {
	return len(gridStatus(t, hubURL))
}

func TestStandalone(t *testing.T) {
	t.Parallel()

	grid, profiles, cmd := startStandalone(t, 2)
	site := gridtest.Site(t)
	out, err := gridtest.RunScenarios(context.Background(), t, grid+"/wd/hub", site)
	if err != nil || strings.Count(out, "ok ") != 9 {
		t.Fatalf("Python scenarios through herd standalone: %v\n%s", err, out)
	}
	out, err = gridtest.RunJSScenarios(context.Background(), t, grid, site)
	if err != nil || strings.Count(out, "ok ") != 10 {
		t.Fatalf("JavaScript scenarios through herd standalone: %v\n%s", err, out)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()
	gridtest.NoLeaks(t, profiles)
}

func TestHubWithTwoNodes(t *testing.T) {
	t.Parallel()

	gridtest.Chrome(t)
	profiles := gridtest.ProfileDir(t)
	hubAddr := testenv.FreeAddr(t)
	hubURL := "http://" + hubAddr
	secret := t.TempDir() + "/secret"
	if err := os.WriteFile(secret, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	startHerd(t, hubURL, "hub", "--addr", hubAddr, "--node-timeout", "2s", "--heartbeat", "300ms", "--registration-secret-file", secret)
	nodeArgs := func(addr string) []string {
		// The 2016 registration URL and maxInstances spelling.
		return []string{"node", "--addr", addr, "--hub", hubURL + "/grid/register", "--registration-secret-file", secret,
			"--profile-dir", profiles, "--browser", "browserName=chrome,maxInstances=2", "--drain-timeout", "30s"}
	}
	nodeA := testenv.FreeAddr(t)
	a := startHerd(t, "http://"+nodeA, nodeArgs(nodeA)...)
	nodeB := testenv.FreeAddr(t)
	b := startHerd(t, "http://"+nodeB, nodeArgs(nodeB)...)
	waitUntil(t, 20*time.Second, func() bool { return gridNodes(t, hubURL) == 2 })

	site := gridtest.Site(t)
	out, err := gridtest.RunScenarios(context.Background(), t, hubURL, site)
	if err != nil || strings.Count(out, "ok ") != 9 {
		t.Fatalf("Python scenarios through herd hub + 2 nodes: %v\n%s", err, out)
	}
	out, err = gridtest.RunJSScenarios(context.Background(), t, hubURL, site)
	if err != nil || strings.Count(out, "ok ") != 10 {
		t.Fatalf("JavaScript scenarios through herd hub + 2 nodes: %v\n%s", err, out)
	}
	out, err = gridtest.RunPython(context.Background(), t, "parallel.py", hubURL, site, "6", "0.5")
	if err != nil || strings.Count(out, "done ") != 6 {
		t.Fatalf("6 parallel sessions on 4 slots: %v\n%s", err, out)
	}

	// A node killed mid-session: the hub drops it, its sessions fail clearly.
	ids := map[string]bool{}
	for range 4 { // fill every slot, so one session surely lands on node A
		ids[newSession(t, hubURL)] = true
	}
	if err := a.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = a.Wait()
	waitUntil(t, 20*time.Second, func() bool { return gridNodes(t, hubURL) == 1 })
	lost := 0
	for id := range ids {
		resp, err := http.Get(hubURL + "/session/" + id + "/title")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 404 && strings.Contains(string(body), "was lost") {
			lost++
			continue
		}
		if resp.StatusCode != 200 {
			t.Fatalf("session on the surviving node = %d %s", resp.StatusCode, body)
		}
		deleteSessions(t, hubURL, id)
	}
	if lost != 2 {
		t.Fatalf("%d sessions reported lost, want the 2 on the killed node", lost)
	}
	// The killed node's driver and browsers are orphans; a node restarted on
	// the same profile directory reaps them. Once both live nodes stop,
	// nothing may be left.
	restarted := startHerd(t, "http://"+nodeA, nodeArgs(nodeA)...)
	waitUntil(t, 20*time.Second, func() bool { return gridNodes(t, hubURL) == 2 })

	// SIGTERM drains a node: the hub sends it nothing new, its running
	// session goes on, and the node exits once that session ends.
	running := newSession(t, hubURL)
	procs := map[string]*exec.Cmd{"http://" + nodeA: restarted, "http://" + nodeB: b}
	drained := procs[sessionNode(t, hubURL, running)]
	exited := make(chan error, 1)
	if err := drained.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	go func() { exited <- drained.Wait() }()
	waitUntil(t, 10*time.Second, func() bool { return nodeAvailability(t, hubURL, sessionNode(t, hubURL, running)) == "DRAINING" })
	other := newSession(t, hubURL)
	if sessionNode(t, hubURL, other) == sessionNode(t, hubURL, running) {
		t.Fatal("a new session went to the draining node")
	}
	if resp, err := http.Get(hubURL + "/session/" + running + "/title"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("command on the draining node: %v", err)
	} else {
		resp.Body.Close()
	}
	select {
	case err := <-exited:
		t.Fatalf("the draining node exited with a session running: %v", err)
	case <-time.After(time.Second):
	}
	deleteSessions(t, hubURL, running)
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("drained node exited with %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the drained node did not exit after its last session ended")
	}
	deleteSessions(t, hubURL, other)
	for _, c := range []*exec.Cmd{restarted, b} {
		if c != drained {
			_ = c.Process.Signal(syscall.SIGTERM)
			_ = c.Wait()
		}
	}
	gridtest.NoLeaks(t, profiles)
}

// sessionNode returns the URI of the node running session id, from /status.
func sessionNode(t *testing.T, hubURL, id string) string {
	t.Helper()
	for _, n := range gridStatus(t, hubURL) {
		for _, s := range n.Slots {
			if s.Session != nil && s.Session.SessionID == id {
				return n.URI
			}
		}
	}
	t.Fatalf("session %s is on no node in /status", id)
	return ""
}

func nodeAvailability(t *testing.T, hubURL, uri string) string {
	for _, n := range gridStatus(t, hubURL) {
		if n.URI == uri {
			return n.Availability
		}
	}
	return ""
}

type statusNode struct {
	URI, Availability string
	Slots             []struct{ Session *struct{ SessionID string } }
}

func gridStatus(t *testing.T, hubURL string) []statusNode {
	t.Helper()
	resp, err := http.Get(hubURL + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct{ Value struct{ Nodes []statusNode } }
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st.Value.Nodes
}

func deleteSessions(t *testing.T, hubURL string, ids ...string) {
	t.Helper()
	for _, id := range ids {
		req, _ := http.NewRequest("DELETE", hubURL+"/session/"+id, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
}

func newSession(t *testing.T, hubURL string) string {
	t.Helper()
	resp, err := http.Post(hubURL+"/session", "application/json", strings.NewReader(`{"capabilities":{"alwaysMatch":{"browserName":"chrome"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var created struct{ Value struct{ SessionID string } }
	if err := json.NewDecoder(resp.Body).Decode(&created); err != nil || created.Value.SessionID == "" {
		t.Fatalf("new session: %d %v", resp.StatusCode, err)
	}
	return created.Value.SessionID
}
