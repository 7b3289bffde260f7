// Package serve is herd's ML API: POST /train, /input (async jobs), /output
// (synchronous), GET /status and the job, health and discovery endpoints
// around them, in front of worker pools that run any algorithm.
//
// The API is specified in openapi.json (served at GET /openapi.json and
// copied to docs/).
package serve

import (
	"context"
	"crypto/subtle"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/herd-ml/herd/fetch"
	"github.com/herd-ml/herd/job"
	"github.com/herd-ml/herd/model"
	"github.com/herd-ml/herd/store"
	"github.com/herd-ml/herd/worker"
)

//go:embed openapi.json
var openAPI []byte

// Jobs is the durable queue behind /train, /input, /status and /jobs;
// *job.Queue implements it.
type Jobs interface {
	Submit(ctx context.Context, args job.Args) (string, error)
	Get(ctx context.Context, id string) (*job.Status, error)
	List(ctx context.Context, f job.Filter) ([]*job.Status, error)
	Cancel(ctx context.Context, id string) (*job.Status, error)
	Counts(ctx context.Context) ([]job.Count, error)
}

// Config configures a Server. Fields marked required must be set.
type Config struct {
	Jobs       Jobs           // required
	JobPool    *worker.Pool   // required: runs train and input (for /readyz)
	OutputPool *worker.Pool   // required: runs /output
	Fetcher    fetch.Fetcher  // required
	Models     *model.Manager // required
	// AuthToken, when set, must come as "Authorization: Bearer <token>" on
	// every call but /healthz.
	AuthToken string
	// MaxBodyBytes limits request bodies; default 1 MiB.
	MaxBodyBytes int64
	// OutputWait is the longest /output waits for a free worker before 503;
	// default 5 s.
	OutputWait time.Duration
	// OutputTimeout bounds one /output call in the worker; default 60 s.
	OutputTimeout time.Duration
	// TempDir holds /output's downloads; "" means os.TempDir().
	TempDir string
	// Version is reported by GET /.
	Version string
	// Logger receives request errors; nil discards them.
	Logger *slog.Logger
	// Collectors are more Prometheus metrics for GET /metrics (fetched
	// bytes, GPUs).
	Collectors []prometheus.Collector
}

// Server serves the ML API. It is safe for concurrent use.
type Server struct {
	cfg     Config
	mux     *http.ServeMux
	counter atomic.Uint64
	metrics *metrics
}

// New returns a Server.
func New(cfg Config) *Server {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	if cfg.OutputWait <= 0 {
		cfg.OutputWait = 5 * time.Second
	}
	if cfg.OutputTimeout <= 0 {
		cfg.OutputTimeout = 60 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux()}
	s.route("/train", "POST", s.handleSubmit(worker.OpTrain))
	s.route("/input", "POST", s.handleSubmit(worker.OpInput))
	s.route("/output", "POST", s.handleOutput)
	s.route("/status", "GET", s.handleStatus)
	s.route("/jobs", "GET", s.handleList)
	s.mux.HandleFunc("/jobs/{id}", s.methods(map[string]http.HandlerFunc{"GET": s.handleJob, "DELETE": s.handleCancel}))
	s.route("/models", "GET", s.handleModels)
	s.mux.HandleFunc("/models/{key}", s.methods(map[string]http.HandlerFunc{"DELETE": s.handleDeleteModel}))
	s.metrics = newMetrics(s)
	s.route("/metrics", "GET", s.metrics.handler.ServeHTTP)
	s.route("/healthz", "GET", s.handleHealthz)
	s.route("/readyz", "GET", s.handleReadyz)
	s.route("/openapi.json", "GET", s.handleOpenAPI)
	s.mux.HandleFunc("/", s.handleIndex)
	return s
}

// endpoints are listed by GET /.
var endpoints = []string{
	"POST /train", "POST /input", "POST /output", "GET /status?jobId=",
	"GET /jobs", "GET /jobs/{id}", "DELETE /jobs/{id}", "GET /models", "DELETE /models/{key}", "GET /metrics",
	"GET /healthz", "GET /readyz", "GET /openapi.json",
}

func (s *Server) route(path, method string, h http.HandlerFunc) {
	s.mux.HandleFunc(path, s.methods(map[string]http.HandlerFunc{method: h}))
}

// methods dispatches by method, answering 405 in the API's error shape.
func (s *Server) methods(byMethod map[string]http.HandlerFunc) http.HandlerFunc {
	allowed := make([]string, 0, len(byMethod))
	for m := range byMethod {
		allowed = append(allowed, m)
	}
	return func(w http.ResponseWriter, r *http.Request) {
		h, ok := byMethod[r.Method]
		if !ok && r.Method == http.MethodHead {
			h, ok = byMethod[http.MethodGet]
		}
		if !ok {
			w.Header().Set("Allow", strings.Join(allowed, ", "))
			writeError(w, errorf(405, codeMethod, "%s %s is not supported; use %s", r.Method, r.URL.Path, strings.Join(allowed, " or ")))
			return
		}
		h(w, r)
	}
}

// ServeHTTP implements http.Handler, checking the bearer token first.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.cfg.AuthToken != "" && r.URL.Path != "/healthz" && !s.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="herd"`)
		writeError(w, errorf(401, codeUnauthorized, "missing or wrong bearer token: send Authorization: Bearer <token>"))
		return
	}
	s.mux.ServeHTTP(w, r)
}

func (s *Server) authorized(r *http.Request) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(s.cfg.AuthToken)) == 1
}

// request is the body of /train, /input and /output. encoding/json matches
// keys case-insensitively, so the 2016 clients' "files" is accepted too.
type request struct {
	Files       []string `json:"Files"`
	Model       string   `json:"model"`
	CallbackURL string   `json:"callbackUrl"`
}

// decode reads and validates a request body.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, op worker.Op) (*request, *apiError) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, errorf(413, codeBodyTooLarge, "request body is over the limit of %d bytes", s.cfg.MaxBodyBytes)
		}
		return nil, errorf(400, codeBadRequest, "cannot read request body: %v", err)
	}
	var req request
	if err := json.Unmarshal(body, &req); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field == "" {
			return nil, errorf(400, codeInvalidJSON, `request body must be a JSON object like {"Files": ["<uri>", ...]}, not a JSON %s`, typeErr.Value)
		}
		if errors.As(err, &typeErr) {
			want := "a string"
			if typeErr.Type.Kind() == reflect.Slice {
				want = "an array of strings"
			}
			return nil, errorf(400, codeInvalidField, "field %q must be %s, not a JSON %s", typeErr.Field, want, typeErr.Value)
		}
		if len(strings.TrimSpace(string(body))) == 0 {
			return nil, errorf(400, codeInvalidJSON, `request body is empty: send {"Files": ["<uri>", ...]}`)
		}
		return nil, errorf(400, codeInvalidJSON, "request body is not valid JSON: %v", err)
	}
	if len(req.Files) == 0 {
		return nil, errorf(400, codeInvalidField, `"Files" must list at least one file URI, e.g. {"Files": ["data/x.csv"]}`)
	}
	for i, f := range req.Files {
		if strings.TrimSpace(f) == "" {
			return nil, errorf(400, codeInvalidField, `"Files"[%d] is empty`, i)
		}
	}
	if req.Model == "" {
		req.Model = model.DefaultKey
	}
	if !model.ValidKey(req.Model) {
		return nil, invalidModelKey(req.Model)
	}
	if req.CallbackURL != "" {
		if op == worker.OpOutput {
			return nil, errorf(400, codeInvalidField, `"callbackUrl" is only for /train and /input; /output answers directly`)
		}
		u, err := url.Parse(req.CallbackURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, errorf(400, codeInvalidField, `"callbackUrl" must be an absolute http(s) URL`)
		}
	}
	return &req, nil
}

func (s *Server) handleSubmit(op worker.Op) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		req, apiErr := s.decode(w, r, op)
		if apiErr != nil {
			writeError(w, apiErr)
			return
		}
		// Refuse now what would fail later: bad schemes, files outside the roots.
		for _, uri := range req.Files {
			if err := s.cfg.Fetcher.Check(uri); err != nil {
				writeError(w, errFromFetch(err))
				return
			}
		}
		id, err := s.cfg.Jobs.Submit(r.Context(), job.Args{Op: string(op), Model: req.Model, Files: req.Files, CallbackURL: req.CallbackURL})
		if err != nil {
			s.cfg.Logger.Error("serve.submit_failed", "error", err)
			writeError(w, &apiError{Status: 503, Code: codeUnavailable, Message: "cannot store the job now; retry later", RetryAfter: time.Second})
			return
		}
		writeJSON(w, http.StatusAccepted, map[string]string{"jobId": id})
	}
}

func (s *Server) handleOutput(w http.ResponseWriter, r *http.Request) {
	req, apiErr := s.decode(w, r, worker.OpOutput)
	if apiErr != nil {
		writeError(w, apiErr)
		return
	}
	ctx, cancel := context.WithTimeoutCause(r.Context(), s.cfg.OutputTimeout, errOutputTimeout)
	defer cancel()
	start := time.Now()
	vector, apiErr := s.output(ctx, req)
	outcome := "ok"
	if apiErr != nil {
		outcome = apiErr.Code
	}
	s.metrics.output.WithLabelValues(outcome).Observe(time.Since(start).Seconds())
	if apiErr != nil {
		writeError(w, apiErr)
		return
	}
	writeJSON(w, http.StatusOK, map[string][]float64{"outputVector": vector})
}

var errOutputTimeout = errors.New("output timeout")

func (s *Server) output(ctx context.Context, req *request) ([]float64, *apiError) {
	dir, err := downloadDir(s.cfg.Fetcher, s.cfg.TempDir, "output-", req.Files)
	if err != nil {
		return nil, errorf(500, codeInternal, "cannot create a download directory: %v", err)
	}
	defer os.RemoveAll(dir)
	paths, err := fetchAll(ctx, s.cfg.Fetcher, req.Files, dir)
	if err != nil {
		return nil, errFromFetch(err)
	}
	stateDir, _, err := s.cfg.Models.ReadDir(ctx, req.Model)
	if err != nil {
		s.cfg.Logger.Error("serve.model_load_failed", "model", req.Model, "error", err)
		return nil, &apiError{Status: 503, Code: codeUnavailable, Message: err.Error(), RetryAfter: time.Second}
	}
	wreq := &worker.Request{
		ID:       "out-" + strconv.FormatUint(s.counter.Add(1), 10),
		Op:       worker.OpOutput,
		Model:    req.Model,
		Files:    paths,
		URIs:     req.Files,
		StateDir: stateDir,
	}
	resp, err := s.cfg.OutputPool.Do(ctx, s.cfg.OutputWait, wreq, nil)
	if err != nil {
		var remote *worker.RemoteError
		var crash *worker.CrashError
		switch {
		case errors.Is(err, worker.ErrNoWorker):
			return nil, &apiError{Status: 503, Code: codeOverloaded, Message: fmt.Sprintf("all %d output workers stayed busy for %s; retry later", s.cfg.OutputPool.Size(), s.cfg.OutputWait), RetryAfter: time.Second}
		case errors.As(err, &remote):
			return nil, errorf(422, codeAlgorithm, "the algorithm could not answer: %s", remote.Message)
		case errors.As(err, &crash):
			return nil, errorf(502, codeWorkerCrashed, "%s", crash.Error())
		case errors.Is(context.Cause(ctx), errOutputTimeout):
			return nil, errorf(504, codeTimeout, "the worker did not answer within the output timeout of %s", s.cfg.OutputTimeout)
		default:
			return nil, errorf(503, codeUnavailable, "%v", err)
		}
	}
	if resp.OutputVector == nil {
		resp.OutputVector = []float64{}
	}
	return resp.OutputVector, nil
}

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	id := q.Get("jobId")
	if id == "" {
		id = q.Get("taskID")
	}
	if id == "" {
		writeError(w, errorf(400, codeInvalidField, "name the job: GET /status?jobId=<id>"))
		return
	}
	s.writeStatus(w, r, id)
}

func (s *Server) handleJob(w http.ResponseWriter, r *http.Request) {
	s.writeStatus(w, r, r.PathValue("id"))
}

func (s *Server) writeStatus(w http.ResponseWriter, r *http.Request, id string) {
	st, err := s.cfg.Jobs.Get(r.Context(), id)
	if err != nil {
		writeError(w, s.jobError(id, err))
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) jobError(id string, err error) *apiError {
	if errors.Is(err, job.ErrNotFound) {
		return errorf(404, codeNotFound, "no job with id %q", id)
	}
	s.cfg.Logger.Error("serve.job_lookup_failed", "job", id, "error", err)
	return &apiError{Status: 503, Code: codeUnavailable, Message: "cannot read jobs now; retry later", RetryAfter: time.Second}
}

func (s *Server) handleCancel(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	before, err := s.cfg.Jobs.Get(r.Context(), id)
	if err != nil {
		writeError(w, s.jobError(id, err))
		return
	}
	if before.State.Terminal() {
		writeError(w, errorf(409, codeJobEnded, "job %s already ended (%s); nothing to cancel", id, before.State))
		return
	}
	st, err := s.cfg.Jobs.Cancel(r.Context(), id)
	if err != nil {
		writeError(w, s.jobError(id, err))
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func invalidModelKey(key string) *apiError {
	return errorf(400, codeInvalidField, `"model" %q is not a valid model key: use 1-128 letters, digits, '.', '_', '@' or '-', starting with a letter or digit`, key)
}

func (s *Server) handleModels(w http.ResponseWriter, r *http.Request) {
	models, err := s.cfg.Models.List(r.Context())
	if err != nil {
		s.cfg.Logger.Error("serve.models", "error", err)
		writeError(w, errorf(http.StatusServiceUnavailable, codeUnavailable, "%v", err))
		return
	}
	if models == nil {
		models = []store.Model{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"models": models})
}

func (s *Server) handleDeleteModel(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	if !model.ValidKey(key) {
		writeError(w, invalidModelKey(key))
		return
	}
	err := s.cfg.Models.Delete(r.Context(), key)
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, errorf(404, codeNotFound, "model %s has no saved version", key))
	case err != nil:
		s.cfg.Logger.Error("serve.delete_model", "model", key, "error", err)
		writeError(w, errorf(http.StatusServiceUnavailable, codeUnavailable, "cannot delete model %s: %v", key, err))
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

var jobStates = []job.State{job.StateQueued, job.StateRunning, job.StateDone, job.StateError, job.StateCancelled}

func (s *Server) handleList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := job.Filter{State: job.State(q.Get("state")), Model: q.Get("model")}
	if f.State != "" && !validState(f.State) {
		writeError(w, errorf(400, codeInvalidField, "state %q is not one of queued, running, done, error, cancelled", f.State))
		return
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, errorf(400, codeInvalidField, "limit must be a number from 1 to 1000"))
			return
		}
		f.Limit = n
	}
	jobs, err := s.cfg.Jobs.List(r.Context(), f)
	if err != nil {
		writeError(w, s.jobError("", err))
		return
	}
	for _, j := range jobs {
		j.Log = "" // GET /jobs/{id} has it
	}
	writeJSON(w, http.StatusOK, map[string]any{"jobs": jobs})
}

func validState(st job.State) bool {
	for _, s := range jobStates {
		if s == st {
			return true
		}
	}
	return false
}

func (s *Server) handleHealthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) handleReadyz(w http.ResponseWriter, _ *http.Request) {
	type poolState struct {
		Workers int    `json:"workers"`
		Ready   bool   `json:"ready"`
		Error   string `json:"error,omitempty"`
	}
	state := func(p *worker.Pool) poolState {
		ps := poolState{Workers: p.Size(), Ready: p.Ready()}
		if err := p.LastError(); err != nil && !ps.Ready {
			ps.Error = err.Error()
		}
		return ps
	}
	jobs, output := state(s.cfg.JobPool), state(s.cfg.OutputPool)
	ready := jobs.Ready && output.Ready
	status := http.StatusOK
	if !ready {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, map[string]any{"ready": ready, "jobWorkers": jobs, "outputWorkers": output})
}

func (s *Server) handleOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openAPI)
}

func (s *Server) handleIndex(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		writeError(w, errorf(404, codeNotFound, "no endpoint %s; GET / lists them", r.URL.Path))
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET")
		writeError(w, errorf(405, codeMethod, "%s / is not supported; use GET", r.Method))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"name":      "herd",
		"version":   s.cfg.Version,
		"endpoints": endpoints,
		"openapi":   "/openapi.json",
	})
}
