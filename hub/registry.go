package hub

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"time"

	"github.com/herd-ml/herd/webdriver"
)

// Registration is what a node sends to POST /se/herd/node, at start and
// then every heartbeat period (docs/node-protocol.md).
type Registration struct {
	ID       string             `json:"id"`
	URI      string             `json:"uri"`
	Version  string             `json:"version,omitempty"`
	Slots    []RegistrationSlot `json:"slots"`
	Sessions []string           `json:"sessions"`
	Draining bool               `json:"draining,omitempty"`
}

// RegistrationSlot is one browser a node offers.
type RegistrationSlot struct {
	Stereotype  map[string]any `json:"stereotype"`
	MaxSessions int            `json:"maxSessions"`
}

// RegistrationReply is the hub's answer to a registration.
type RegistrationReply struct {
	HeartbeatPeriodMs int64 `json:"heartbeatPeriodMs"`
}

// Register adds or refreshes a node. It is what POST /se/herd/node does, and
// what herd standalone calls in process.
func (h *Hub) Register(reg Registration) error {
	if reg.ID == "" || len(reg.Slots) == 0 {
		return fmt.Errorf("registration needs an id and at least one slot")
	}
	u, err := url.Parse(reg.URI)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("registration uri %q is not an absolute http(s) URL", reg.URI)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	n := h.nodes[reg.ID]
	if n == nil || n.uri.String() != u.String() {
		n = &nodeEntry{id: reg.ID, uri: u, started: time.Now()}
		for _, s := range reg.Slots {
			n.slots = append(n.slots, slotState{stereotype: s.Stereotype, maxSessions: max(s.MaxSessions, 1)})
		}
		if old := h.nodes[reg.ID]; old != nil {
			h.dropNode(reg.ID, "its node re-registered at another address")
		}
		h.nodes[reg.ID] = n
		h.cfg.Logger.Info("hub.node_registered", "node", reg.ID, "uri", reg.URI, "slots", len(n.slots))
	}
	n.lastSeen = time.Now()
	n.version = reg.Version
	n.draining = n.draining || reg.Draining
	// Sessions the hub routes to this node but the node no longer has
	// (ended by the node's own reaper, or lost in a node restart).
	running := make(map[string]bool, len(reg.Sessions))
	for _, id := range reg.Sessions {
		running[id] = true
	}
	for id, s := range h.sessions {
		if s.node == n && !running[id] && time.Since(s.created) > 2*h.cfg.HeartbeatPeriod {
			h.removeSession(id, "gone_from_node", fmt.Sprintf("node %s no longer runs it", n.id))
			if n.slots[s.slot].busy > 0 {
				n.slots[s.slot].busy--
			}
		}
	}
	h.dispatch()
	return nil
}

// Deregister removes a node (its sessions end); unknown ids are ignored.
func (h *Hub) Deregister(id, why string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.dropNode(id, why)
}

// operator serves the registration API and the Selenium Grid 4 operator
// calls herd supports.
func (h *Hub) operator(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	// Reading the queue is for the /ui page as much as for operators.
	readOnly := path == "/se/grid/newsessionqueue/queue" && r.Method == http.MethodGet
	if !readOnly && !h.secretOK(r) {
		webdriver.WriteError(w, webdriver.Errorf(webdriver.ErrUnauthorized, "missing or wrong X-Registration-Secret header (the hub's --registration-secret-file)"))
		return
	}
	switch {
	case path == "/se/herd/node" && r.Method == http.MethodPost:
		var reg Registration
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&reg); err != nil {
			webdriver.WriteError(w, webdriver.Errorf(webdriver.ErrInvalidArgument, "bad registration: %v", err))
			return
		}
		if err := h.Register(reg); err != nil {
			webdriver.WriteError(w, webdriver.Errorf(webdriver.ErrInvalidArgument, "%v", err))
			return
		}
		writeValue(w, RegistrationReply{HeartbeatPeriodMs: h.cfg.HeartbeatPeriod.Milliseconds()})
	case strings.HasPrefix(path, "/se/herd/node/") && r.Method == http.MethodDelete:
		h.Deregister(strings.TrimPrefix(path, "/se/herd/node/"), "its node shut down")
		writeValue(w, nil)
	case strings.HasPrefix(path, "/se/grid/distributor/node/") && strings.HasSuffix(path, "/drain") && r.Method == http.MethodPost:
		id := strings.TrimSuffix(strings.TrimPrefix(path, "/se/grid/distributor/node/"), "/drain")
		if err := h.Drain(r.Context(), id); err != nil {
			webdriver.WriteError(w, webdriver.Errorf(webdriver.ErrInvalidArgument, "%v", err))
			return
		}
		writeValue(w, true)
	case strings.HasPrefix(path, "/se/grid/distributor/node/") && r.Method == http.MethodDelete:
		h.Deregister(strings.TrimPrefix(path, "/se/grid/distributor/node/"), "its node was removed by an operator")
		writeValue(w, true)
	case path == "/se/grid/newsessionqueue/queue" && r.Method == http.MethodGet:
		writeValue(w, h.queued())
	case path == "/se/grid/newsessionqueue/queue" && r.Method == http.MethodDelete:
		writeValue(w, h.clearQueue())
	default:
		webdriver.WriteError(w, webdriver.Errorf(webdriver.ErrUnknownCommand, "no operator call %s %s", r.Method, path))
	}
}

// Drain stops new sessions on a node and tells the node; running sessions
// go on until they end.
func (h *Hub) Drain(ctx context.Context, id string) error {
	h.mu.Lock()
	n := h.nodes[id]
	if n != nil {
		n.draining = true
	}
	h.mu.Unlock()
	if n == nil {
		return fmt.Errorf("no node %q", id)
	}
	u := *n.uri
	u.Path = strings.TrimSuffix(u.Path, "/") + "/se/herd/drain"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), nil)
	if err != nil {
		return err
	}
	resp, err := h.transport.RoundTrip(req)
	if err != nil {
		return fmt.Errorf("node %s did not take the drain: %w", id, err)
	}
	resp.Body.Close()
	return nil
}

func (h *Hub) queued() []map[string]any {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]map[string]any, 0, len(h.waiters))
	for _, w := range h.waiters {
		out = append(out, map[string]any{"capabilities": w.candidates, "enqueued": w.enqueued.UTC()})
	}
	return out
}

func (h *Hub) clearQueue() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := len(h.waiters)
	for _, w := range h.waiters {
		w.fail(webdriver.Errorf(webdriver.ErrSessionNotCreated, "the queue was cleared by an operator"))
	}
	h.waiters = nil
	return n
}

// sessionsIn returns the sessions running in slot i of n; h.mu is held.
func (h *Hub) sessionsIn(n *nodeEntry, i int) []*sessionEntry {
	var out []*sessionEntry
	for _, se := range h.sessions {
		if se.node == n && se.slot == i {
			out = append(out, se)
		}
	}
	return out
}

func writeValue(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(map[string]any{"value": v})
}

// status answers GET /status in Selenium Grid 4's shape.
func (h *Hub) status(w http.ResponseWriter) {
	h.mu.Lock()
	defer h.mu.Unlock()
	nodes := make([]map[string]any, 0, len(h.nodes))
	ready := false
	for _, n := range h.nodes {
		availability := "UP"
		if n.draining {
			availability = "DRAINING"
		}
		var slots []map[string]any
		total := 0
		for i, s := range n.slots {
			total += s.maxSessions
			running := h.sessionsIn(n, i)
			for k := range s.maxSessions {
				var sess any
				if k < len(running) {
					se := running[k]
					sess = map[string]any{"sessionId": se.id, "start": se.created.UTC(), "capabilities": se.capabilities, "stereotype": s.stereotype, "uri": n.uri.String()}
				}
				slots = append(slots, map[string]any{
					"id":          map[string]string{"hostId": n.id, "id": fmt.Sprintf("%s-%d-%d", n.id, i, k)},
					"lastStarted": s.lastStarted.UTC(),
					"session":     sess,
					"stereotype":  s.stereotype,
				})
			}
			if !n.draining && s.busy < s.maxSessions {
				ready = true
			}
		}
		nodes = append(nodes, map[string]any{
			"id":              n.id,
			"uri":             n.uri.String(),
			"maxSessions":     total,
			"sessionTimeout":  h.cfg.SessionTimeout.Milliseconds(),
			"osInfo":          map[string]string{"arch": runtime.GOARCH, "name": runtime.GOOS, "version": ""},
			"heartbeatPeriod": h.cfg.HeartbeatPeriod.Milliseconds(),
			"availability":    availability,
			"version":         n.version,
			"slots":           slots,
		})
	}
	msg := "Selenium Grid ready."
	if !ready {
		msg = "Selenium Grid not ready."
	}
	writeValue(w, map[string]any{"ready": ready, "message": msg, "nodes": nodes})
}

// RegisterLoop registers reg() with the hub at hubURL and then heartbeats at
// the period the hub asks for, and at once whenever wake fires (the node
// started draining, say), until ctx ends; then it deregisters. Errors are
// logged through logf and retried.
func RegisterLoop(ctx context.Context, hubURL, secret string, wake <-chan struct{}, reg func() Registration, logf func(msg string, args ...any)) {
	base := hubBase(hubURL)
	client := &http.Client{Timeout: 10 * time.Second}
	period := 5 * time.Second
	registered := false
	for {
		r := reg()
		body, _ := json.Marshal(r)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/se/herd/node", bytes.NewReader(body))
		if err == nil {
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Registration-Secret", secret)
			var resp *http.Response
			resp, err = client.Do(req)
			if err == nil {
				var reply struct{ Value RegistrationReply }
				_ = json.NewDecoder(resp.Body).Decode(&reply)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("hub answered %s", resp.Status)
				} else if reply.Value.HeartbeatPeriodMs > 0 {
					period = time.Duration(reply.Value.HeartbeatPeriodMs) * time.Millisecond
				}
			}
		}
		switch {
		case err != nil && ctx.Err() == nil:
			logf("node.register_failed", "hub", base, "error", err)
		case err == nil && !registered:
			registered = true
			logf("node.registered", "hub", base, "heartbeat", period)
		}
		select {
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			req, err := http.NewRequestWithContext(dctx, http.MethodDelete, base+"/se/herd/node/"+url.PathEscape(r.ID), nil)
			if err == nil {
				req.Header.Set("X-Registration-Secret", secret)
				if resp, err := client.Do(req); err == nil {
					resp.Body.Close()
				}
			}
			cancel()
			return
		case <-wake:
		case <-time.After(period):
		}
	}
}

// hubBase accepts the 2016 form http://host:4444/grid/register and the
// /wd/hub form, and returns the hub's base URL.
func hubBase(hubURL string) string {
	u := strings.TrimSuffix(hubURL, "/")
	for _, suffix := range []string{"/grid/register", "/wd/hub"} {
		u = strings.TrimSuffix(u, suffix)
	}
	return u
}
