package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/herd-ml/herd/webdriver"
)

// waiter is a new-session request waiting for a slot. Each waiter is matched
// on its own, in arrival order, so a backlog for one browser never blocks a
// request another node can serve.
type waiter struct {
	candidates []map[string]any
	enqueued   time.Time
	ready      chan reservation // buffered: dispatch never blocks
}

type reservation struct {
	node *nodeEntry
	slot int
	err  *webdriver.Error
}

func (w *waiter) fail(err *webdriver.Error) { w.ready <- reservation{err: err} }

// tryReserve takes a free slot matching a candidate on the least-loaded node.
// h.mu must be held.
func (h *Hub) tryReserve(candidates []map[string]any) (reservation, bool) {
	var best *nodeEntry
	bestSlot := -1
	for _, n := range h.nodes {
		if n.draining {
			continue
		}
		for i, s := range n.slots {
			if s.busy >= s.maxSessions || !matchesAny(s.stereotype, candidates) {
				continue
			}
			if best == nil || n.load() < best.load() {
				best, bestSlot = n, i
			}
			break
		}
	}
	if best == nil {
		return reservation{}, false
	}
	best.slots[bestSlot].busy++
	best.slots[bestSlot].lastStarted = time.Now()
	return reservation{node: best, slot: bestSlot}, true
}

// couldEverMatch reports whether any registered node has a slot that
// matches, busy or not. h.mu must be held.
func (h *Hub) couldEverMatch(candidates []map[string]any) bool {
	for _, n := range h.nodes {
		for _, s := range n.slots {
			if matchesAny(s.stereotype, candidates) {
				return true
			}
		}
	}
	return false
}

func matchesAny(stereotype map[string]any, candidates []map[string]any) bool {
	for _, c := range candidates {
		if webdriver.Matches(stereotype, c) {
			return true
		}
	}
	return false
}

// dispatch gives freed slots to waiters in arrival order. h.mu must be held.
func (h *Hub) dispatch() {
	kept := h.waiters[:0]
	for _, w := range h.waiters {
		if res, ok := h.tryReserve(w.candidates); ok {
			w.ready <- res
			continue
		}
		kept = append(kept, w)
	}
	clear(h.waiters[len(kept):])
	h.waiters = kept
}

// acquire returns a reserved slot, waiting in the queue up to QueueTimeout
// or until ctx (the client's request) ends.
func (h *Hub) acquire(ctx context.Context, candidates []map[string]any) (reservation, *webdriver.Error) {
	h.mu.Lock()
	if res, ok := h.tryReserve(candidates); ok {
		h.mu.Unlock()
		return res, nil
	}
	if !h.cfg.KeepUnmatched && !h.couldEverMatch(candidates) {
		h.mu.Unlock()
		return reservation{}, webdriver.Errorf(webdriver.ErrSessionNotCreated,
			"no node of this grid offers %s; registered: %s", webdriver.Describe(candidates), h.describeNodes())
	}
	w := &waiter{candidates: candidates, enqueued: time.Now(), ready: make(chan reservation, 1)}
	h.waiters = append(h.waiters, w)
	h.mu.Unlock()

	timer := time.NewTimer(h.cfg.QueueTimeout)
	defer timer.Stop()
	select {
	case res := <-w.ready:
		if res.err == nil {
			h.metrics.queueWait.Observe(time.Since(w.enqueued).Seconds())
		}
		return res, res.err
	case <-ctx.Done():
		h.leaveQueue(w)
		return reservation{}, webdriver.Errorf(webdriver.ErrSessionNotCreated, "the client went away while queued")
	case <-timer.C:
		h.leaveQueue(w)
		return reservation{}, webdriver.Errorf(webdriver.ErrSessionNotCreated,
			"no free slot for %s within the queue timeout of %s", webdriver.Describe(candidates), h.cfg.QueueTimeout)
	}
}

// leaveQueue removes w; a slot handed to it meanwhile goes back.
func (h *Hub) leaveQueue(w *waiter) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, x := range h.waiters {
		if x == w {
			h.waiters = append(h.waiters[:i], h.waiters[i+1:]...)
			return
		}
	}
	select {
	case res := <-w.ready:
		if res.node != nil {
			h.release(res)
		}
	default:
	}
}

// release frees a reserved slot. h.mu must be held.
func (h *Hub) release(res reservation) {
	if s := &res.node.slots[res.slot]; s.busy > 0 {
		s.busy--
	}
	h.dispatch()
}

// describeNodes lists the stereotypes on offer. h.mu must be held.
func (h *Hub) describeNodes() string {
	if len(h.nodes) == 0 {
		return "no nodes"
	}
	var parts []string
	for _, n := range h.nodes {
		for _, s := range n.slots {
			b, _ := json.Marshal(s.stereotype)
			parts = append(parts, string(b))
		}
	}
	return strings.Join(parts, ", ")
}

// newSession handles POST /session.
func (h *Hub) newSession(w http.ResponseWriter, r *http.Request) {
	ns, candidates, werr := webdriver.ReadNewSession(r)
	if werr != nil {
		webdriver.WriteError(w, werr)
		return
	}
	res, werr := h.acquire(r.Context(), candidates)
	if werr != nil {
		webdriver.WriteError(w, werr)
		return
	}
	started := time.Now()
	status, respBody, err := webdriver.CreateSession(r.Context(), h.transport, res.node.uri.String(), ns.Forwardable())
	result := "ok"
	if err != nil || status != http.StatusOK {
		result = "error"
	}
	h.metrics.sessionCreate.WithLabelValues(result).Observe(time.Since(started).Seconds())
	var created struct {
		Value struct {
			SessionID    string         `json:"sessionId"`
			Capabilities map[string]any `json:"capabilities"`
		} `json:"value"`
	}
	if err == nil && status == http.StatusOK {
		err = json.Unmarshal(respBody, &created)
		if err == nil && created.Value.SessionID == "" {
			err = fmt.Errorf("node answered without a session id: %.200s", respBody)
		}
	}
	if err != nil || status != http.StatusOK {
		h.mu.Lock()
		h.release(res)
		h.mu.Unlock()
		if err != nil {
			webdriver.WriteError(w, webdriver.Errorf(webdriver.ErrSessionNotCreated, "node %s (%s) could not create the session: %v", res.node.id, res.node.uri, err))
			return
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(status)
		_, _ = w.Write(respBody)
		return
	}
	s := &sessionEntry{id: created.Value.SessionID, node: res.node, slot: res.slot, created: time.Now(), lastSeen: time.Now(), capabilities: created.Value.Capabilities}
	h.mu.Lock()
	if h.nodes[res.node.id] != res.node { // dropped while the session was being created
		h.mu.Unlock()
		h.deleteOnNode(s)
		webdriver.WriteError(w, webdriver.Errorf(webdriver.ErrSessionNotCreated, "node %s was lost while creating the session", res.node.id))
		return
	}
	h.sessions[s.id] = s
	h.mu.Unlock()
	h.cfg.Logger.Info("hub.session_created", "session", s.id, "node", res.node.id)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_, _ = w.Write(h.publicEndpoints(r, respBody, s.id))
}
