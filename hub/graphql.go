package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"time"

	graphql "github.com/graph-gophers/graphql-go"
)

// The subset of Selenium Grid 4's GraphQL schema that dashboards and KEDA's
// selenium-grid scaler query. As in Selenium, capabilities and stereotypes
// are JSON text inside strings, and node.stereotypes is a JSON list of
// {"slots": n, "stereotype": {...}}.
const graphqlSchema = `
schema { query: Query }
type Query {
  grid: Grid!
  nodesInfo: NodesInfo!
  sessionsInfo: SessionsInfo!
}
type Grid {
  uri: String!
  totalSlots: Int!
  nodeCount: Int!
  maxSession: Int!
  sessionCount: Int!
  sessionQueueSize: Int!
  version: String!
}
type NodesInfo { nodes: [Node!]! }
type Node {
  id: String!
  uri: String!
  status: String!
  maxSession: Int!
  slotCount: Int!
  sessionCount: Int!
  stereotypes: String!
  version: String!
  osInfo: OsInfo!
  sessions: [Session!]!
}
type OsInfo { arch: String! name: String! version: String! }
type Session {
  id: String!
  capabilities: String!
  startTime: String!
  uri: String!
  nodeId: String!
  nodeUri: String!
  sessionDurationMillis: String!
  slot: Slot!
}
type Slot { id: String! stereotype: String! lastStarted: String! }
type SessionsInfo {
  sessionQueueRequests: [String!]!
  sessions: [Session!]!
}
`

// graphqlRequest is the body of POST /graphql.
type graphqlRequest struct {
	Query         string         `json:"query"`
	OperationName string         `json:"operationName"`
	Variables     map[string]any `json:"variables"`
}

func (h *Hub) graphqlHandler() http.HandlerFunc {
	schema := graphql.MustParseSchema(graphqlSchema, &gqlQuery{}, graphql.UseFieldResolvers())
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			graphqlError(w, http.StatusMethodNotAllowed, `POST a {"query": "..."} body`)
			return
		}
		var req graphqlRequest
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
			graphqlError(w, http.StatusBadRequest, `the body must be JSON: {"query": "..."}: `+err.Error())
			return
		}
		// One snapshot per request, so every field agrees with the others.
		ctx := context.WithValue(r.Context(), snapshotKey{}, h.snapshot(r))
		resp := schema.Exec(ctx, req.Query, req.OperationName, req.Variables)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(resp)
	}
}

// graphqlError answers in GraphQL's error shape.
func graphqlError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"message": msg}}})
}

type snapshotKey struct{}

// gridSnapshot is the grid's state at one moment, in GraphQL's shapes.
type gridSnapshot struct {
	grid     gqlGrid
	nodes    []*gqlNode
	queue    []string
	sessions []*gqlSession
}

func (h *Hub) snapshot(r *http.Request) *gridSnapshot {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := &gridSnapshot{nodes: []*gqlNode{}, queue: []string{}, sessions: []*gqlSession{}}
	s.grid.URI = "http://" + r.Host
	if h.cfg.PublicURL != "" {
		s.grid.URI = h.cfg.PublicURL
	}
	s.grid.Version = h.cfg.Version
	now := time.Now()
	for _, n := range h.nodes {
		gn := &gqlNode{ID: n.id, URI: n.uri.String(), Status: "UP", Version: n.version,
			OsInfo: gqlOsInfo{Arch: runtime.GOARCH, Name: runtime.GOOS}, Sessions: []*gqlSession{}}
		if n.draining {
			gn.Status = "DRAINING"
		}
		type stereotype struct {
			Slots      int            `json:"slots"`
			Stereotype map[string]any `json:"stereotype"`
		}
		var stereotypes []stereotype
		for i, sl := range n.slots {
			gn.MaxSession += int32(sl.maxSessions)
			stereotypes = append(stereotypes, stereotype{sl.maxSessions, sl.stereotype})
			for k, se := range h.sessionsIn(n, i) {
				gs := &gqlSession{
					ID: se.id, Capabilities: jsonText(se.capabilities), StartTime: se.created.UTC().Format(time.RFC3339),
					URI: n.uri.String(), NodeID: n.id, NodeURI: n.uri.String(),
					SessionDurationMillis: fmt.Sprint(now.Sub(se.created).Milliseconds()),
					Slot:                  gqlSlot{ID: fmt.Sprintf("%s-%d-%d", n.id, i, k), Stereotype: jsonText(sl.stereotype), LastStarted: sl.lastStarted.UTC().Format(time.RFC3339)},
				}
				gn.Sessions = append(gn.Sessions, gs)
				s.sessions = append(s.sessions, gs)
			}
		}
		gn.SlotCount = gn.MaxSession
		gn.SessionCount = int32(len(gn.Sessions))
		gn.Stereotypes = jsonText(stereotypes)
		s.nodes = append(s.nodes, gn)
		s.grid.TotalSlots += gn.SlotCount
		s.grid.MaxSession += gn.MaxSession
		s.grid.SessionCount += gn.SessionCount
	}
	s.grid.NodeCount = int32(len(s.nodes))
	for _, w := range h.waiters {
		// Each request as the capabilities it asks for first, as Selenium
		// lists them.
		var first map[string]any
		if len(w.candidates) > 0 {
			first = w.candidates[0]
		}
		s.queue = append(s.queue, jsonText(first))
	}
	s.grid.SessionQueueSize = int32(len(s.queue))
	return s
}

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return "{}"
	}
	return string(b)
}

// Resolvers: graphql-go reads these types' exported fields and methods.

type gqlQuery struct{}

func snap(ctx context.Context) *gridSnapshot { return ctx.Value(snapshotKey{}).(*gridSnapshot) }

func (*gqlQuery) Grid(ctx context.Context) *gqlGrid { return &snap(ctx).grid }
func (*gqlQuery) NodesInfo(ctx context.Context) *gqlNodesInfo {
	return &gqlNodesInfo{Nodes: snap(ctx).nodes}
}
func (*gqlQuery) SessionsInfo(ctx context.Context) *gqlSessionsInfo {
	s := snap(ctx)
	return &gqlSessionsInfo{SessionQueueRequests: s.queue, Sessions: s.sessions}
}

type gqlGrid struct {
	URI              string
	TotalSlots       int32
	NodeCount        int32
	MaxSession       int32
	SessionCount     int32
	SessionQueueSize int32
	Version          string
}

type gqlNodesInfo struct{ Nodes []*gqlNode }

type gqlNode struct {
	ID           string
	URI          string
	Status       string
	MaxSession   int32
	SlotCount    int32
	SessionCount int32
	Stereotypes  string
	Version      string
	OsInfo       gqlOsInfo
	Sessions     []*gqlSession
}

type gqlOsInfo struct{ Arch, Name, Version string }

type gqlSession struct {
	ID                    string
	Capabilities          string
	StartTime             string
	URI                   string
	NodeID                string
	NodeURI               string
	SessionDurationMillis string
	Slot                  gqlSlot
}

type gqlSlot struct{ ID, Stereotype, LastStarted string }

type gqlSessionsInfo struct {
	SessionQueueRequests []string
	Sessions             []*gqlSession
}
