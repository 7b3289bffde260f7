package job

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herd-ml/herd/internal/testenv"
)

// runnerFunc adapts a function to Runner.
type runnerFunc func(ctx context.Context, j *Job, progress func(float64)) (json.RawMessage, string, error)

func (f runnerFunc) Run(ctx context.Context, j *Job, progress func(float64)) (json.RawMessage, string, error) {
	return f(ctx, j, progress)
}

// testRunner behaves by model key: "ok" succeeds, "fail" fails for good,
// "flaky" fails its first attempt, "block" waits for its context.
func testRunner(ctx context.Context, j *Job, progress func(float64)) (json.RawMessage, string, error) {
	switch j.Model {
	case "fail":
		return nil, "log line", Permanent(errors.New("the algorithm refused the input"))
	case "flaky":
		if j.Attempt == 1 {
			return nil, "", errors.New("worker crashed: exited: exit status 3")
		}
	case "block":
		progress(0.5)
		<-ctx.Done()
		return nil, "", context.Cause(ctx)
	case "slow":
		select {
		case <-time.After(2 * time.Second):
		case <-ctx.Done():
			return nil, "", context.Cause(ctx)
		}
	}
	return json.RawMessage(`{"op":"` + j.Op + `"}`), "worked", nil
}

type opener func(t *testing.T, cfg Config) *Queue

func openSQLite(t *testing.T, cfg Config) *Queue {
	db, err := OpenSQLiteDB(filepath.Join(t.TempDir(), "jobs.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	q, err := OpenSQLite(context.Background(), db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func openPostgres(t *testing.T, cfg Config) *Queue {
	pool := testenv.PostgresPool(t)
	q, err := OpenPostgres(context.Background(), pool, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func TestQueue(t *testing.T) {
	t.Parallel()

	for name, open := range map[string]opener{"sqlite": openSQLite, "postgres": openPostgres} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			runQueueSuite(t, open)
		})
	}
}

func start(t *testing.T, open opener, cfg Config) *Queue {
	t.Helper()
	if cfg.Runner == nil {
		cfg.Runner = runnerFunc(testRunner)
	}
	cfg.PollInterval = 20 * time.Millisecond
	q := open(t, cfg)
	if err := q.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = q.Stop(ctx)
	})
	return q
}

func waitState(t *testing.T, q *Queue, id string, want State) *Status {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := q.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if st.State == want {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s is %s (error %q), want %s", id, st.State, st.Error, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func runQueueSuite(t *testing.T, open opener) {
	ctx := context.Background()

	t.Run("a job runs to done with its result", func(t *testing.T) {
		t.Parallel()
		q := start(t, open, Config{})
		id, err := q.Submit(ctx, Args{Op: "train", Model: "ok", Files: []string{"a"}})
		if err != nil {
			t.Fatal(err)
		}
		st := waitState(t, q, id, StateDone)
		if st.Status != "done" || string(st.Result) != `{"op":"train"}` || st.Log != "worked" || st.Attempt != 1 {
			t.Fatalf("status = %+v", st)
		}
		if st.StartedAt == nil || st.FinishedAt == nil || st.Progress == nil || *st.Progress != 1 {
			t.Fatalf("times or progress missing: %+v", st)
		}
	})

	t.Run("counts by model, op and state", func(t *testing.T) {
		t.Parallel()
		release := make(chan struct{})
		started := make(chan struct{}, 1)
		q := start(t, open, Config{Workers: 1, Runner: runnerFunc(func(ctx context.Context, j *Job, _ func(float64)) (json.RawMessage, string, error) {
			started <- struct{}{}
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil, "", nil
		})})
		first, _ := q.Submit(ctx, Args{Op: "train", Model: "a"})
		<-started // the one worker is busy: the rest stay queued
		for range 2 {
			_, _ = q.Submit(ctx, Args{Op: "input", Model: "a"})
		}
		_, _ = q.Submit(ctx, Args{Op: "train", Model: "b"})
		counts, err := q.Counts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int{}
		for _, c := range counts {
			got[c.Model+"/"+c.Op+"/"+string(c.State)] = c.N
		}
		want := map[string]int{"a/train/running": 1, "a/input/queued": 2, "b/train/queued": 1}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("Counts = %v, want %v", got, want)
		}
		close(release)
		waitState(t, q, first, StateDone)
	})

	t.Run("a permanent failure ends in error at once", func(t *testing.T) {
		t.Parallel()
		q := start(t, open, Config{MaxAttempts: 3})
		id, _ := q.Submit(ctx, Args{Op: "input", Model: "fail"})
		st := waitState(t, q, id, StateError)
		if st.Status != "error" || !strings.Contains(st.Error, "refused the input") || st.Attempt != 1 || st.Log != "log line" {
			t.Fatalf("status = %+v", st)
		}
	})

	t.Run("a crash is retried", func(t *testing.T) {
		t.Parallel()
		q := start(t, open, Config{MaxAttempts: 3})
		id, _ := q.Submit(ctx, Args{Op: "train", Model: "flaky"})
		st := waitState(t, q, id, StateDone)
		if st.Attempt != 2 {
			t.Fatalf("attempt = %d, want 2", st.Attempt)
		}
	})

	t.Run("a crash with no attempts left is an error", func(t *testing.T) {
		t.Parallel()
		q := start(t, open, Config{MaxAttempts: 1})
		id, _ := q.Submit(ctx, Args{Op: "train", Model: "flaky"})
		st := waitState(t, q, id, StateError)
		if !strings.Contains(st.Error, "exit status 3") {
			t.Fatalf("error = %q", st.Error)
		}
	})

	t.Run("a job over the timeout ends in error saying so", func(t *testing.T) {
		t.Parallel()
		q := start(t, open, Config{JobTimeout: 200 * time.Millisecond})
		id, _ := q.Submit(ctx, Args{Op: "train", Model: "block"})
		st := waitState(t, q, id, StateError)
		if !strings.HasPrefix(st.Error, "job exceeded the job timeout of 200ms") || st.Attempt != 1 {
			t.Fatalf("status = %+v", st)
		}
	})

	t.Run("cancel a queued and a running job", func(t *testing.T) {
		t.Parallel()
		q := start(t, open, Config{Workers: 1})
		running, _ := q.Submit(ctx, Args{Op: "train", Model: "block"})
		st := waitState(t, q, running, StateRunning)
		if st.Status != "running" {
			t.Fatalf("legacy status = %q", st.Status)
		}
		queued, _ := q.Submit(ctx, Args{Op: "train", Model: "ok"})
		st, err := q.Cancel(ctx, queued)
		if err != nil {
			t.Fatal(err)
		}
		if st.State != StateCancelled || st.Status != "error" {
			t.Fatalf("queued job after cancel: %+v", st)
		}
		if _, err := q.Cancel(ctx, running); err != nil {
			t.Fatal(err)
		}
		st = waitState(t, q, running, StateCancelled)
		if st.Error != "cancelled by request" {
			t.Fatalf("error = %q", st.Error)
		}
		// The queued job never started.
		st = waitState(t, q, queued, StateCancelled)
		if st.StartedAt != nil {
			t.Fatalf("cancelled queued job started: %+v", st)
		}
	})

	t.Run("unknown ids are ErrNotFound", func(t *testing.T) {
		t.Parallel()
		q := start(t, open, Config{})
		for _, id := range []string{"999999", "abc", "-1", ""} {
			if _, err := q.Get(ctx, id); !errors.Is(err, ErrNotFound) {
				t.Errorf("Get(%q) = %v", id, err)
			}
			if _, err := q.Cancel(ctx, id); !errors.Is(err, ErrNotFound) {
				t.Errorf("Cancel(%q) = %v", id, err)
			}
		}
	})

	t.Run("list filters by model and state, newest first", func(t *testing.T) {
		t.Parallel()
		q := start(t, open, Config{})
		a, _ := q.Submit(ctx, Args{Op: "train", Model: "ok"})
		b, _ := q.Submit(ctx, Args{Op: "input", Model: "fail"})
		c, _ := q.Submit(ctx, Args{Op: "input", Model: "ok"})
		waitState(t, q, a, StateDone)
		waitState(t, q, b, StateError)
		waitState(t, q, c, StateDone)
		all, err := q.List(ctx, Filter{})
		if err != nil || len(all) != 3 || all[0].ID != c || all[2].ID != a {
			t.Fatalf("all = %v, %v", ids(all), err)
		}
		ok, _ := q.List(ctx, Filter{Model: "ok"})
		if len(ok) != 2 || ok[0].ID != c || ok[1].ID != a {
			t.Fatalf("model ok = %v", ids(ok))
		}
		failed, _ := q.List(ctx, Filter{State: StateError})
		if len(failed) != 1 || failed[0].ID != b {
			t.Fatalf("errors = %v", ids(failed))
		}
		one, _ := q.List(ctx, Filter{Limit: 1})
		if len(one) != 1 || one[0].ID != c {
			t.Fatalf("limit 1 = %v", ids(one))
		}
	})

	t.Run("callbacks deliver the final status and retry", func(t *testing.T) {
		t.Parallel()
		var mu sync.Mutex
		var calls int
		var got []byte
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			defer mu.Unlock()
			calls++
			if calls == 1 {
				http.Error(w, "not yet", http.StatusServiceUnavailable)
				return
			}
			got, _ = io.ReadAll(r.Body)
		}))
		t.Cleanup(srv.Close)
		q := start(t, open, Config{})
		id, _ := q.Submit(ctx, Args{Op: "train", Model: "ok", CallbackURL: srv.URL})
		waitState(t, q, id, StateDone)
		deadline := time.Now().Add(20 * time.Second)
		for {
			st, _ := q.Get(ctx, id)
			if st.Callback != nil && st.Callback.State == "delivered" {
				if st.Callback.Attempts != 2 {
					t.Fatalf("callback = %+v, want delivered on attempt 2", st.Callback)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("callback = %+v", st.Callback)
			}
			time.Sleep(50 * time.Millisecond)
		}
		mu.Lock()
		defer mu.Unlock()
		var body Status
		if err := json.Unmarshal(got, &body); err != nil || body.ID != id || body.Status != "done" {
			t.Fatalf("callback body = %s (%v)", got, err)
		}
	})

	t.Run("a failing callback is visible on the job", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "nope", http.StatusInternalServerError)
		}))
		t.Cleanup(srv.Close)
		q := start(t, open, Config{})
		id, _ := q.Submit(ctx, Args{Op: "train", Model: "ok", CallbackURL: srv.URL})
		waitState(t, q, id, StateDone)
		deadline := time.Now().Add(20 * time.Second)
		for {
			st, _ := q.Get(ctx, id)
			if st.Callback != nil && st.Callback.Error != "" {
				if !strings.Contains(st.Callback.Error, "500") || st.Callback.State != "pending" {
					t.Fatalf("callback = %+v", st.Callback)
				}
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("callback = %+v", st.Callback)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}

func ids(ss []*Status) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.ID)
	}
	return out
}
