package hub

import (
	"encoding/json"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// The response types of KEDA's selenium-grid scaler, copied from
// github.com/kedacore/keda pkg/scalers/selenium_grid_scaler.go (v2.18), so
// the hub's answer is read exactly as the scaler reads it.
type SeleniumResponse struct {
	Data Data `json:"data"`
}

type Data struct {
	Grid         Grid         `json:"grid"`
	NodesInfo    NodesInfo    `json:"nodesInfo"`
	SessionsInfo SessionsInfo `json:"sessionsInfo"`
}

type Grid struct {
	SessionCount int64 `json:"sessionCount"`
	MaxSession   int64 `json:"maxSession"`
	TotalSlots   int64 `json:"totalSlots"`
}

type NodesInfo struct {
	Nodes Nodes `json:"nodes"`
}

type SessionsInfo struct {
	SessionQueueRequests []string `json:"sessionQueueRequests"`
}

type Nodes []struct {
	ID           string   `json:"id"`
	Status       string   `json:"status"`
	SessionCount int64    `json:"sessionCount"`
	MaxSession   int64    `json:"maxSession"`
	SlotCount    int64    `json:"slotCount"`
	Stereotypes  string   `json:"stereotypes"`
	Sessions     Sessions `json:"sessions"`
}

type Sessions []struct {
	ID           string `json:"id"`
	Capabilities string `json:"capabilities"`
	Slot         Slot   `json:"slot"`
}

type Slot struct {
	ID         string `json:"id"`
	Stereotype string `json:"stereotype"`
}

type Stereotypes []struct {
	Slots      int64                  `json:"slots"`
	Stereotype map[string]interface{} `json:"stereotype"`
}

// kedaQuery is the scaler's query, character for character.
const kedaQuery = "{ grid { sessionCount, maxSession, totalSlots }, nodesInfo { nodes { id, status, sessionCount, maxSession, slotCount, stereotypes, sessions { id, capabilities, slot { id, stereotype } } } }, sessionsInfo { sessionQueueRequests } }"

func TestGraphQLAsKEDAReadsIt(t *testing.T) {
	t.Parallel()
	g := setupGrid(t, Config{}, 2, 1) // two nodes with one chrome slot each

	ask := func() SeleniumResponse {
		t.Helper()
		body, _ := json.Marshal(map[string]string{"query": kedaQuery})
		status, raw := post(t, g.url+"/graphql", string(body))
		if status != 200 || strings.Contains(raw, `"errors"`) {
			t.Fatalf("POST /graphql = %d %s", status, raw)
		}
		var r SeleniumResponse
		if err := json.Unmarshal([]byte(raw), &r); err != nil {
			t.Fatalf("KEDA's structs cannot read %s: %v", raw, err)
		}
		return r
	}

	idle := ask()
	if idle.Data.Grid.TotalSlots != 2 || idle.Data.Grid.SessionCount != 0 || len(idle.Data.NodesInfo.Nodes) != 2 || len(idle.Data.SessionsInfo.SessionQueueRequests) != 0 {
		t.Fatalf("idle grid: %+v", idle.Data)
	}

	// Two sessions take both slots; a third request waits in the queue.
	first, second := createSession(t, g.url), createSession(t, g.url)
	third := make(chan string, 1)
	go func() {
		_, body := post(t, g.url+"/session", `{"capabilities":{"alwaysMatch":{"browserName":"chrome","platformName":"linux"}}}`)
		third <- body
	}()
	waitFor(t, func() bool { return len(g.hub.queued()) == 1 })

	busy := ask()
	d := busy.Data
	if d.Grid.SessionCount != 2 || d.Grid.MaxSession != 2 || d.Grid.TotalSlots != 2 {
		t.Fatalf("grid = %+v, want 2 sessions on 2 slots", d.Grid)
	}
	if len(d.SessionsInfo.SessionQueueRequests) != 1 {
		t.Fatalf("queue = %v, want one request", d.SessionsInfo.SessionQueueRequests)
	}
	var queued map[string]any
	if err := json.Unmarshal([]byte(d.SessionsInfo.SessionQueueRequests[0]), &queued); err != nil || queued["browserName"] != "chrome" || queued["platformName"] != "linux" {
		t.Fatalf("queued request %q, want its capabilities as JSON (%v)", d.SessionsInfo.SessionQueueRequests[0], err)
	}
	var sessions []string
	var chromeSlots, chromeSessions int64
	for _, n := range d.NodesInfo.Nodes {
		if n.Status != "UP" || n.MaxSession != 1 || n.SlotCount != 1 || n.SessionCount != 1 || len(n.Sessions) != 1 {
			t.Fatalf("node %+v, want UP with its one slot busy", n)
		}
		var st Stereotypes
		if err := json.Unmarshal([]byte(n.Stereotypes), &st); err != nil {
			t.Fatalf("stereotypes %q: %v", n.Stereotypes, err)
		}
		for _, s := range st {
			if s.Stereotype["browserName"] == "chrome" {
				chromeSlots += s.Slots
			}
		}
		for _, s := range n.Sessions {
			sessions = append(sessions, s.ID)
			var slot map[string]any
			if err := json.Unmarshal([]byte(s.Slot.Stereotype), &slot); err != nil || slot["browserName"] != "chrome" {
				t.Fatalf("session %s slot stereotype %q (%v)", s.ID, s.Slot.Stereotype, err)
			}
			var caps map[string]any
			if err := json.Unmarshal([]byte(s.Capabilities), &caps); err != nil || caps["browserName"] == nil {
				t.Fatalf("session %s capabilities %q (%v)", s.ID, s.Capabilities, err)
			}
			chromeSessions++
		}
	}
	// What the scaler computes for a chrome trigger: one queued request
	// that no free chrome slot can take (so one new node), and two
	// ongoing chrome sessions.
	if chromeSlots != 2 || chromeSessions != 2 || !(slices.Contains(sessions, first) && slices.Contains(sessions, second)) {
		t.Fatalf("chrome slots %d, sessions %d %v; want 2, 2 and %s, %s", chromeSlots, chromeSessions, sessions, first, second)
	}

	deleteSession(t, g.url, first)
	got := <-third
	var created struct{ Value struct{ SessionID string } }
	if err := json.Unmarshal([]byte(got), &created); err != nil || created.Value.SessionID == "" {
		t.Fatalf("queued request: %s", got)
	}
	after := ask()
	if after.Data.Grid.SessionCount != 2 || len(after.Data.SessionsInfo.SessionQueueRequests) != 0 {
		t.Fatalf("after the queue moved: %+v", after.Data)
	}
	deleteSession(t, g.url, second)
	deleteSession(t, g.url, created.Value.SessionID)
}

func TestGraphQLErrors(t *testing.T) {
	t.Parallel()
	ts := httptest.NewServer(New(Config{}))
	t.Cleanup(ts.Close)
	srv := ts.URL
	status, body := post(t, srv+"/graphql", `{"query": "{ grid { nosuchfield } }"}`)
	if status != 200 || !strings.Contains(body, `"errors"`) || !strings.Contains(body, "nosuchfield") {
		t.Fatalf("unknown field: %d %s, want a GraphQL error naming it", status, body)
	}
	status, body = post(t, srv+"/graphql", `not json`)
	if status != 400 || !strings.Contains(body, "query") {
		t.Fatalf("bad body: %d %s", status, body)
	}
	status, body = get(t, srv+"/graphql")
	if status != 405 {
		t.Fatalf("GET /graphql: %d %s, want 405", status, body)
	}
}
