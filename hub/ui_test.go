package hub

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestUIShowsSessionsAndQueue loads /ui in real headless Chromium (a session
// of the grid itself) and waits for the page to show another running session
// and a queued request, whose capabilities must appear as text, not markup.
func TestUIShowsSessionsAndQueue(t *testing.T) {
	t.Parallel()

	g := setupGrid(t, Config{}, 1, 2)
	running := createSession(t, g.url)
	defer deleteSession(t, g.url, running)
	viewer := createSession(t, g.url)
	defer deleteSession(t, g.url, viewer)

	ctx, leave := context.WithCancel(context.Background())
	defer leave() // before the deletes free a slot for it
	go func() {
		req, _ := http.NewRequestWithContext(ctx, "POST", g.url+"/session", strings.NewReader(
			`{"capabilities":{"alwaysMatch":{"browserName":"chrome","herd:note":"<b id=injected>x</b>"}}}`))
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	waitFor(t, func() bool { return len(g.hub.queued()) == 1 })

	if status, body := post(t, g.url+"/session/"+viewer+"/url", `{"url":"`+g.url+`/ui"}`); status != 200 {
		t.Fatalf("navigate to /ui = %d %s", status, body)
	}
	var text string
	deadline := time.Now().Add(20 * time.Second)
	for {
		status, body := post(t, g.url+"/session/"+viewer+"/execute/sync",
			`{"script":"return [document.body.innerText, document.getElementById('injected') === null]","args":[]}`)
		var reply struct{ Value []any }
		if err := json.Unmarshal([]byte(body), &reply); err != nil || status != 200 || len(reply.Value) != 2 {
			t.Fatalf("read the page = %d %s", status, body)
		}
		text, _ = reply.Value[0].(string)
		if reply.Value[1] != true {
			t.Fatalf("a capability was rendered as HTML:\n%s", text)
		}
		if strings.Contains(text, running) && strings.Contains(text, "<b id=injected>x</b>") && strings.Contains(text, "1 queued") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the page never showed session %s and the queued request:\n%s", running, text)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, want := range []string{g.nodes[0].ID(), "UP", "2 / 2 slots busy", "chrome"} {
		if !strings.Contains(text, want) {
			t.Errorf("the page lacks %q:\n%s", want, text)
		}
	}

	// It refreshes live: a request that leaves the queue and a session that
	// ends leave the page.
	leave()
	waitFor(t, func() bool { return len(g.hub.queued()) == 0 })
	deleteSession(t, g.url, running)
	waitFor(t, func() bool {
		_, body := post(t, g.url+"/session/"+viewer+"/execute/sync", `{"script":"return document.body.innerText","args":[]}`)
		return !strings.Contains(body, running) && strings.Contains(body, viewer) && strings.Contains(body, "the queue is empty")
	})
}
