package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herd-ml/herd/internal/testenv"
)

// bundle is what a test of the whole service needs.
type bundle struct {
	url   string
	token string
	files string // the files root
	svc   *Service
}

type setupOpts struct {
	worker   string // "python", "lua", or "misbehave"
	postgres bool
	mutate   func(*Options)
}

func repoPath(t *testing.T, rel string) string {
	t.Helper()
	abs, err := filepath.Abs(filepath.Join("..", rel))
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

func workerCommand(t *testing.T, name string) string {
	t.Helper()
	switch name {
	case "lua":
		return testenv.Command(t, "lua5.1") + " " + repoPath(t, "examples/mean-lua/worker.lua")
	case "misbehave":
		return testenv.Command(t, "python3") + " " + repoPath(t, "worker/testdata/misbehave.py")
	default:
		return testenv.Command(t, "python3") + " " + repoPath(t, "examples/mean-python/worker.py")
	}
}

func setup(t *testing.T, so setupOpts) *bundle {
	t.Helper()
	files := t.TempDir()
	for name, content := range map[string]string{
		"a.txt": "1 2 3", "b.txt": "3 4 5", "c.txt": "8 9 10", "query.txt": "2 3 7", "bad.txt": "one two",
	} {
		if err := os.WriteFile(filepath.Join(files, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	opts := Options{
		Worker:       workerCommand(t, so.worker),
		DataDir:      t.TempDir(),
		FilesRoots:   []string{files},
		PollInterval: 20 * time.Millisecond,
		CancelGrace:  time.Second,
	}
	if so.postgres {
		opts.DatabaseURL = testenv.PostgresSchema(t)
	}
	if so.mutate != nil {
		so.mutate(&opts)
	}
	ctx := context.Background()
	svc, err := Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(svc.Handler())
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = svc.Stop(ctx)
	})
	b := &bundle{url: srv.URL, token: opts.AuthToken, files: files, svc: svc}
	b.waitReady(t)
	return b
}

func (b *bundle) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequest("GET", b.url+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+b.token)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("service not ready: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// call makes a request and returns the status, headers and raw body.
func (b *bundle) call(t *testing.T, method, path, body string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, b.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, raw
}

// object decodes a JSON object body, failing on anything else.
func object(t *testing.T, raw []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", raw, err)
	}
	return m
}

func (b *bundle) submit(t *testing.T, path, body string) string {
	t.Helper()
	status, hdr, raw := b.call(t, "POST", path, body)
	if status != 202 || !strings.HasPrefix(hdr.Get("Content-Type"), "application/json") {
		t.Fatalf("POST %s = %d %s", path, status, raw)
	}
	m := object(t, raw)
	id, ok := m["jobId"].(string)
	if len(m) != 1 || !ok || id == "" {
		t.Fatalf("POST %s body = %s, want exactly {\"jobId\": \"<id>\"}", path, raw)
	}
	return id
}

// wait polls /status until the job's state is terminal and returns the body.
func (b *bundle) wait(t *testing.T, id string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		status, _, raw := b.call(t, "GET", "/status?jobId="+id, "")
		if status != 200 {
			t.Fatalf("GET /status = %d %s", status, raw)
		}
		m := object(t, raw)
		switch m["state"] {
		case "done", "error", "cancelled":
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s still %v", id, m["state"])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (b *bundle) output(t *testing.T, body string) []float64 {
	t.Helper()
	status, _, raw := b.call(t, "POST", "/output", body)
	if status != 200 {
		t.Fatalf("POST /output = %d %s", status, raw)
	}
	var out map[string][]float64
	if err := json.Unmarshal(raw, &out); err != nil || len(out) != 1 || out["outputVector"] == nil {
		t.Fatalf("POST /output body = %s, want exactly {\"outputVector\": [...]}", raw)
	}
	return out["outputVector"]
}

func TestFourCalls(t *testing.T) {
	t.Parallel()

	for _, db := range []string{"sqlite", "postgres"} {
		for _, w := range []string{"python", "lua"} {
			t.Run(db+"/"+w, func(t *testing.T) {
				t.Parallel()
				b := setup(t, setupOpts{worker: w, postgres: db == "postgres"})

				// The design's spelling: Files, jobId.
				id := b.submit(t, "/train", `{"Files": ["a.txt", "b.txt"]}`)
				st := b.wait(t, id)
				if st["status"] != "done" || st["state"] != "done" {
					t.Fatalf("train status = %v", st)
				}
				if got := b.output(t, `{"Files": ["query.txt"]}`); len(got) != 1 || got[0] != 3 {
					t.Fatalf("outputVector = %v, want [3] (distance of 2,3,7 to mean 2,3,4)", got)
				}

				// The 2016 wrappers' spelling: files, taskID.
				id = b.submit(t, "/input", `{"files": ["c.txt"]}`)
				b.wait(t, id)
				status, _, raw := b.call(t, "GET", "/status?taskID="+id, "")
				st = object(t, raw)
				if status != 200 || st["status"] != "done" || st["jobId"] != id {
					t.Fatalf("GET /status?taskID = %d %s", status, raw)
				}
				if res, _ := st["result"].(map[string]any); res["samples"] != float64(3) {
					t.Fatalf("input result = %v, want samples 3", st["result"])
				}
				// mean is now (4,5,6); distance of (2,3,7) is 3.
				if got := b.output(t, `{"files": ["query.txt", "c.txt"]}`); len(got) != 2 || got[0] != 3 || got[1] != 4*1.7320508075688772 {
					t.Fatalf("outputVector = %v, want [3, 6.928...]", got)
				}

				// Models are independent.
				bob := b.submit(t, "/train", `{"Files": ["c.txt"], "model": "bob"}`)
				b.wait(t, bob)
				if got := b.output(t, `{"Files": ["c.txt"], "model": "bob"}`); len(got) != 1 || got[0] != 0 {
					t.Fatalf("bob outputVector = %v, want [0]", got)
				}
				if got := b.output(t, `{"Files": ["query.txt"]}`); got[0] != 3 {
					t.Fatalf("default model changed by bob's training: %v", got)
				}
				// An algorithm error is the job's error, with the worker's words.
				bad := b.submit(t, "/train", `{"Files": ["bad.txt"], "model": "carol"}`)
				st = b.wait(t, bad)
				if st["status"] != "error" || !strings.Contains(st["error"].(string), "bad.txt: not a list of numbers") {
					t.Fatalf("bad train = %v", st)
				}
			})
		}
	}
}

func TestStatusFields(t *testing.T) {
	t.Parallel()

	b := setup(t, setupOpts{worker: "python"})
	id := b.submit(t, "/train", `{"Files": ["a.txt", "b.txt"], "model": "m1"}`)
	st := b.wait(t, id)
	for _, k := range []string{"jobId", "status", "state", "op", "model", "files", "progress", "result", "createdAt", "startedAt", "finishedAt", "attempt"} {
		if _, ok := st[k]; !ok {
			t.Errorf("status lacks %q: %v", k, st)
		}
	}
	if st["op"] != "train" || st["model"] != "m1" || st["attempt"] != float64(1) || st["progress"] != float64(1) {
		t.Errorf("status = %v", st)
	}
	status, _, raw := b.call(t, "GET", "/jobs/"+id, "")
	if status != 200 || object(t, raw)["jobId"] != id {
		t.Fatalf("GET /jobs/%s = %d %s", id, status, raw)
	}
	other := b.submit(t, "/input", `{"Files": ["c.txt"], "model": "m2"}`)
	b.wait(t, other)
	status, _, raw = b.call(t, "GET", "/jobs?model=m1", "")
	var list struct{ Jobs []map[string]any }
	if err := json.Unmarshal(raw, &list); status != 200 || err != nil || len(list.Jobs) != 1 || list.Jobs[0]["jobId"] != id {
		t.Fatalf("GET /jobs?model=m1 = %d %s", status, raw)
	}
	_, _, raw = b.call(t, "GET", "/jobs?limit=10", "")
	if err := json.Unmarshal(raw, &list); err != nil || len(list.Jobs) != 2 || list.Jobs[0]["jobId"] != other {
		t.Fatalf("GET /jobs = %s, want both, newest first", raw)
	}
}

func TestBadInput(t *testing.T) {
	t.Parallel()

	b := setup(t, setupOpts{worker: "python", mutate: func(o *Options) { o.MaxBodyBytes = 512 }})
	outside := filepath.Join(t.TempDir(), "secret.txt")
	if err := os.WriteFile(outside, []byte("1 2 3"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(b.files, "link.txt")); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		method string
		path   string
		body   string
		status int
		code   string
		msg    string
	}{
		{"malformed JSON", "POST", "/train", `{"Files": [`, 400, "invalid_json", "not valid JSON"},
		{"empty body", "POST", "/train", ``, 400, "invalid_json", "body is empty"},
		{"not an object", "POST", "/input", `["a.txt"]`, 400, "invalid_json", "must be a JSON object"},
		{"Files of the wrong type", "POST", "/train", `{"Files": "a.txt"}`, 400, "invalid_field", `"Files" must be an array of strings`},
		{"a file of the wrong type", "POST", "/output", `{"Files": [1]}`, 400, "invalid_field", "must be a string"},
		{"model of the wrong type", "POST", "/train", `{"Files": ["a.txt"], "model": 7}`, 400, "invalid_field", `"model" must be a string`},
		{"missing Files", "POST", "/train", `{}`, 400, "invalid_field", "at least one file"},
		{"empty Files", "POST", "/output", `{"Files": []}`, 400, "invalid_field", "at least one file"},
		{"blank file name", "POST", "/input", `{"Files": [" "]}`, 400, "invalid_field", `"Files"[0] is empty`},
		{"bad model key", "POST", "/train", `{"Files": ["a.txt"], "model": "../etc"}`, 400, "invalid_field", "not a valid model key"},
		{"bad callback URL", "POST", "/train", `{"Files": ["a.txt"], "callbackUrl": "ftp://x"}`, 400, "invalid_field", "callbackUrl"},
		{"callback on output", "POST", "/output", `{"Files": ["a.txt"], "callbackUrl": "http://x"}`, 400, "invalid_field", "only for /train"},
		{"body over the limit", "POST", "/train", `{"Files": ["` + strings.Repeat("a", 600) + `"]}`, 413, "body_too_large", "over the limit of 512 bytes"},
		{"unsupported scheme", "POST", "/train", `{"Files": ["ftp://host/key"]}`, 400, "unsupported_uri", `unsupported URI scheme "ftp://"`},
		{"s3 URI without a key", "POST", "/train", `{"Files": ["s3://bucket"]}`, 400, "invalid_field", "bucket and key are both needed"},
		{"http when not enabled", "POST", "/output", `{"Files": ["http://example.com/x"]}`, 400, "unsupported_uri", "file://"},
		{"file outside the roots", "POST", "/train", `{"Files": ["` + outside + `"]}`, 403, "forbidden_file", "outside the allowed files roots"},
		{"dot-dot escape", "POST", "/output", `{"Files": ["../../../../etc/passwd"]}`, 403, "forbidden_file", "outside the allowed files roots"},
		{"symlink leaving the root", "POST", "/input", `{"Files": ["link.txt"]}`, 403, "forbidden_file", "outside"},
		{"missing file", "POST", "/train", `{"Files": ["nope.txt"]}`, 400, "file_not_found", "nope.txt"},
		{"status without id", "GET", "/status", ``, 400, "invalid_field", "jobId"},
		{"unknown jobId", "GET", "/status?jobId=424242", ``, 404, "not_found", `no job with id "424242"`},
		{"non-numeric jobId", "GET", "/status?taskID=abc", ``, 404, "not_found", "abc"},
		{"unknown job", "GET", "/jobs/999999", ``, 404, "not_found", "999999"},
		{"cancel unknown job", "DELETE", "/jobs/999999", ``, 404, "not_found", "999999"},
		{"bad state filter", "GET", "/jobs?state=sleeping", ``, 400, "invalid_field", "queued, running"},
		{"bad limit", "GET", "/jobs?limit=0", ``, 400, "invalid_field", "limit"},
		{"wrong method", "GET", "/train", ``, 405, "method_not_allowed", "use POST"},
		{"unknown path", "GET", "/nope", ``, 404, "not_found", "/nope"},
		{"algorithm refuses output", "POST", "/output", `{"Files": ["a.txt"], "model": "never-trained"}`, 422, "algorithm_error", "not trained yet"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			status, hdr, raw := b.call(t, tt.method, tt.path, tt.body)
			var e struct {
				Error struct{ Code, Message string }
			}
			if err := json.Unmarshal(raw, &e); err != nil {
				t.Fatalf("%d %q is not a JSON error: %v", status, raw, err)
			}
			if status != tt.status || e.Error.Code != tt.code || !strings.Contains(e.Error.Message, tt.msg) {
				t.Fatalf("got %d %s %q; want %d %s containing %q", status, e.Error.Code, e.Error.Message, tt.status, tt.code, tt.msg)
			}
			if !strings.HasPrefix(hdr.Get("Content-Type"), "application/json") {
				t.Errorf("Content-Type = %q", hdr.Get("Content-Type"))
			}
			if status == 405 && hdr.Get("Allow") == "" {
				t.Error("405 without Allow")
			}
		})
	}

	t.Run("nothing was queued by the refused calls", func(t *testing.T) {
		t.Parallel()
		_, _, raw := b.call(t, "GET", "/jobs", "")
		if !bytes.Contains(raw, []byte(`"jobs":[]`)) {
			t.Fatalf("refused calls queued jobs: %s", raw)
		}
	})
}

func TestOutputOverload(t *testing.T) {
	t.Parallel()

	b := setup(t, setupOpts{worker: "misbehave", mutate: func(o *Options) {
		o.OutputWorkers = 1
		o.OutputWait = 100 * time.Millisecond
	}})
	slow := make(chan int, 1)
	go func() {
		status, _, _ := b.call(t, "POST", "/output", `{"Files": ["a.txt"], "model": "slow"}`)
		slow <- status
	}()
	deadline := time.Now().Add(10 * time.Second)
	for b.svc.outputPool.Busy() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	status, hdr, raw := b.call(t, "POST", "/output", `{"Files": ["a.txt"], "model": "ok"}`)
	if status != 503 || hdr.Get("Retry-After") == "" || !strings.Contains(string(raw), `"overloaded"`) {
		t.Fatalf("busy /output = %d Retry-After %q %s", status, hdr.Get("Retry-After"), raw)
	}
	// Jobs have their own workers: a job runs while /output is busy.
	id := b.submit(t, "/train", `{"Files": ["a.txt"], "model": "ok"}`)
	if st := b.wait(t, id); st["state"] != "done" {
		t.Fatalf("job during busy output: %v", st)
	}
	if s := <-slow; s != 200 {
		t.Fatalf("slow /output = %d", s)
	}
}

func TestWorkerFailures(t *testing.T) {
	t.Parallel()

	b := setup(t, setupOpts{worker: "misbehave", mutate: func(o *Options) {
		o.MaxAttempts = 1
		// Long enough for the job after a crash to wait out the worker's
		// restart on a loaded machine (CI runs browsers beside this test):
		// the timeout counts from the job's start.
		o.JobTimeout = 10 * time.Second
		o.CancelGrace = 300 * time.Millisecond
	}})
	tests := []struct {
		model string
		msg   string
	}{
		{"crash", "exit status 3"},
		{"garbage", `"this is not JSON"`},
		{"hang", "job exceeded the job timeout of 10s"},
		{"fail", "bad input for fail"},
	}
	for _, tt := range tests {
		// Sequential: each failure is followed by a job that must succeed.
		id := b.submit(t, "/train", `{"Files": ["a.txt"], "model": "`+tt.model+`"}`)
		st := b.wait(t, id)
		if st["status"] != "error" || !strings.Contains(st["error"].(string), tt.msg) {
			t.Fatalf("%s: status = %v, want error containing %q", tt.model, st, tt.msg)
		}
		if status, _, _ := b.call(t, "GET", "/healthz", ""); status != 200 {
			t.Fatalf("%s: service down", tt.model)
		}
		next := b.submit(t, "/train", `{"Files": ["a.txt"], "model": "ok"}`)
		if st := b.wait(t, next); st["state"] != "done" {
			t.Fatalf("job after %s: %v", tt.model, st)
		}
	}
	// /output survives a crashing worker too.
	status, _, raw := b.call(t, "POST", "/output", `{"Files": ["a.txt"], "model": "crash"}`)
	if status != 502 || !strings.Contains(string(raw), "worker_crashed") {
		t.Fatalf("crashing /output = %d %s", status, raw)
	}
	if got := b.output(t, `{"Files": ["a.txt", "b.txt"], "model": "ok"}`); len(got) != 2 || got[0] != 2 {
		t.Fatalf("output after crash = %v", got)
	}
}

func TestCancel(t *testing.T) {
	t.Parallel()

	b := setup(t, setupOpts{worker: "misbehave", mutate: func(o *Options) { o.JobWorkers = 1 }})
	running := b.submit(t, "/train", `{"Files": ["a.txt"], "model": "slow"}`)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, _, raw := b.call(t, "GET", "/status?jobId="+running, "")
		if object(t, raw)["state"] == "running" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("job never ran")
		}
		time.Sleep(10 * time.Millisecond)
	}
	queued := b.submit(t, "/train", `{"Files": ["a.txt"], "model": "ok"}`)
	status, _, raw := b.call(t, "DELETE", "/jobs/"+queued, "")
	if st := object(t, raw); status != 200 || st["state"] != "cancelled" || st["status"] != "error" {
		t.Fatalf("DELETE queued = %d %s", status, raw)
	}
	status, _, raw = b.call(t, "DELETE", "/jobs/"+running, "")
	if status != 200 {
		t.Fatalf("DELETE running = %d %s", status, raw)
	}
	if st := b.wait(t, running); st["state"] != "cancelled" {
		t.Fatalf("running job after cancel: %v", st)
	}
	if st := b.wait(t, queued); st["startedAt"] != nil {
		t.Fatalf("cancelled queued job started: %v", st)
	}
	status, _, raw = b.call(t, "DELETE", "/jobs/"+running, "")
	if status != 409 || !strings.Contains(string(raw), "already ended") {
		t.Fatalf("DELETE ended job = %d %s", status, raw)
	}
	next := b.submit(t, "/train", `{"Files": ["a.txt"], "model": "ok"}`)
	if st := b.wait(t, next); st["state"] != "done" {
		t.Fatalf("job after cancel: %v", st)
	}
}

func TestAuth(t *testing.T) {
	t.Parallel()

	b := setup(t, setupOpts{worker: "python", mutate: func(o *Options) { o.AuthToken = "s3cret" }})
	for _, path := range []string{"/", "/readyz", "/status?jobId=1", "/jobs", "/openapi.json"} {
		status, hdr, raw := b.call(t, "GET", path, "")
		if status != 401 || !strings.Contains(string(raw), "unauthorized") || hdr.Get("WWW-Authenticate") == "" {
			t.Errorf("GET %s without token = %d %s", path, status, raw)
		}
	}
	if status, _, _ := b.call(t, "POST", "/train", `{"Files":["a.txt"]}`); status != 401 {
		t.Errorf("POST /train without token = %d", status)
	}
	if status, _, _ := b.call(t, "GET", "/healthz", ""); status != 200 {
		t.Errorf("/healthz needs no token, got %d", status)
	}
	req, _ := http.NewRequest("POST", b.url+"/train", strings.NewReader(`{"Files":["a.txt"]}`))
	req.Header.Set("Authorization", "Bearer wrong")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 401 {
		t.Errorf("wrong token accepted: %v %v", resp.StatusCode, err)
	}
	req, _ = http.NewRequest("POST", b.url+"/train", strings.NewReader(`{"Files":["a.txt"]}`))
	req.Header.Set("Authorization", "Bearer s3cret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 202 {
		t.Fatalf("right token refused: %v %v", resp.StatusCode, err)
	}
}

func TestCallback(t *testing.T) {
	t.Parallel()

	got := make(chan map[string]any, 1)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		got <- body
	}))
	t.Cleanup(receiver.Close)

	t.Run("delivered when private addresses are allowed", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{worker: "python", mutate: func(o *Options) { o.AllowPrivate = true }})
		id := b.submit(t, "/train", `{"Files": ["a.txt"], "callbackUrl": "`+receiver.URL+`/done"}`)
		select {
		case body := <-got:
			if body["jobId"] != id || body["status"] != "done" || body["state"] != "done" {
				t.Fatalf("callback body = %v", body)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("no callback")
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			st := b.wait(t, id)
			if cb, _ := st["callback"].(map[string]any); cb["state"] == "delivered" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("callback never reported delivered: %v", st["callback"])
			}
			time.Sleep(20 * time.Millisecond)
		}
	})

	t.Run("refused to a loopback address by default, visibly", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{worker: "python"})
		id := b.submit(t, "/train", `{"Files": ["a.txt"], "callbackUrl": "`+receiver.URL+`/done"}`)
		deadline := time.Now().Add(20 * time.Second)
		for {
			st := b.wait(t, id)
			cb, _ := st["callback"].(map[string]any)
			if e, _ := cb["error"].(string); strings.Contains(e, "not allowed") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("callback = %v, want an error saying the address is not allowed", cb)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}
