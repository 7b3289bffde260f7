package worker

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// pythonWorker is the command line of the misbehaving test worker.
func pythonWorker(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		t.Fatalf("python3 is needed for worker tests: %v", err)
	}
	return "python3 testdata/misbehave.py"
}

func startProcess(t *testing.T, cfg Config) *Process {
	t.Helper()
	ctx := context.Background()
	p, err := Start(ctx, cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_ = p.Stop(ctx)
	})
	return p
}

func TestProcess(t *testing.T) {
	t.Parallel()

	t.Run("answers and reports progress and log", func(t *testing.T) {
		t.Parallel()
		p := startProcess(t, Config{Command: pythonWorker(t)})
		var progress []float64
		resp, err := p.Do(context.Background(), &Request{ID: "1", Op: OpTrain, Model: "log", Files: []string{"a"}}, func(f float64, _ string) { progress = append(progress, f) })
		if err != nil {
			t.Fatalf("Do: %v", err)
		}
		if string(resp.Result) != `{"files":1,"model":"log"}` {
			t.Errorf("result = %s", resp.Result)
		}
		// stderr is read concurrently; the log line may trail the answer by a moment.
		deadline := time.Now().Add(2 * time.Second)
		for !strings.Contains(p.Log(), "hello from the worker") && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if !strings.Contains(p.Log(), "hello from the worker") {
			t.Errorf("log = %q", p.Log())
		}
		out, err := p.Do(context.Background(), &Request{ID: "2", Op: OpOutput, Model: "ok", Files: []string{"a", "b"}}, nil)
		if err != nil {
			t.Fatalf("Do output: %v", err)
		}
		if len(out.OutputVector) != 2 || out.OutputVector[0] != 2 || out.OutputVector[1] != 1.5 {
			t.Errorf("outputVector = %v", out.OutputVector)
		}
	})

	t.Run("algorithm error leaves the process usable", func(t *testing.T) {
		t.Parallel()
		p := startProcess(t, Config{Command: pythonWorker(t)})
		_, err := p.Do(context.Background(), &Request{ID: "1", Op: OpTrain, Model: "fail"}, nil)
		var remote *RemoteError
		if !errors.As(err, &remote) || !strings.Contains(remote.Message, "bad input for fail") {
			t.Fatalf("err = %v, want RemoteError naming the cause", err)
		}
		if !p.Alive() {
			t.Fatal("process died after an algorithm error")
		}
		if _, err := p.Do(context.Background(), &Request{ID: "2", Op: OpTrain, Model: "ok"}, nil); err != nil {
			t.Fatalf("next request: %v", err)
		}
	})

	t.Run("crash names the exit and stderr", func(t *testing.T) {
		t.Parallel()
		p := startProcess(t, Config{Command: pythonWorker(t)})
		_, err := p.Do(context.Background(), &Request{ID: "1", Op: OpTrain, Model: "crash"}, nil)
		var crash *CrashError
		if !errors.As(err, &crash) {
			t.Fatalf("err = %v, want CrashError", err)
		}
		if !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), "about to crash") {
			t.Errorf("crash message lacks exit status or stderr: %v", err)
		}
		if p.Alive() {
			t.Error("crashed process reports alive")
		}
	})

	t.Run("garbage on stdout is a crash that quotes it", func(t *testing.T) {
		t.Parallel()
		p := startProcess(t, Config{Command: pythonWorker(t)})
		_, err := p.Do(context.Background(), &Request{ID: "1", Op: OpTrain, Model: "garbage"}, nil)
		var crash *CrashError
		if !errors.As(err, &crash) || !strings.Contains(err.Error(), `"this is not JSON`) {
			t.Fatalf("err = %v, want CrashError quoting the garbage", err)
		}
		select {
		case <-p.Exited():
		case <-time.After(5 * time.Second):
			t.Fatal("garbage-writing worker was not killed")
		}
	})

	t.Run("cancel stops a cooperative worker and keeps it", func(t *testing.T) {
		t.Parallel()
		p := startProcess(t, Config{Command: pythonWorker(t)})
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		_, err := p.Do(ctx, &Request{ID: "1", Op: OpTrain, Model: "slow"}, nil)
		if !errors.Is(err, ErrCancelled) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want ErrCancelled wrapping the deadline", err)
		}
		if !p.Alive() {
			t.Fatal("a worker that honoured SIGINT was killed")
		}
		if _, err := p.Do(context.Background(), &Request{ID: "2", Op: OpTrain, Model: "ok"}, nil); err != nil {
			t.Fatalf("next request: %v", err)
		}
	})

	t.Run("a worker that ignores SIGINT is killed after the grace", func(t *testing.T) {
		t.Parallel()
		p := startProcess(t, Config{Command: pythonWorker(t), CancelGrace: 200 * time.Millisecond})
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		_, err := p.Do(ctx, &Request{ID: "1", Op: OpTrain, Model: "hang"}, nil)
		if !errors.Is(err, ErrCancelled) || !strings.Contains(err.Error(), "killed") {
			t.Fatalf("err = %v, want ErrCancelled saying it was killed", err)
		}
		select {
		case <-p.Exited():
		case <-time.After(5 * time.Second):
			t.Fatal("hung worker still running")
		}
	})

	t.Run("setup failure is reported with stderr", func(t *testing.T) {
		t.Parallel()
		p, err := Start(context.Background(), Config{Command: pythonWorker(t), Env: []string{"HERD_TEST_SETUP_FAIL=1"}})
		if p != nil {
			t.Fatal("Start returned a process for a worker whose setup failed")
		}
		if err == nil || !strings.Contains(err.Error(), "setup failed on purpose") {
			t.Fatalf("err = %v, want the setup failure quoted", err)
		}
	})
}

func TestPool(t *testing.T) {
	t.Parallel()

	t.Run("restarts a crashed worker and serves the next request", func(t *testing.T) {
		t.Parallel()
		pool := NewPool(Config{Command: pythonWorker(t)}, 1)
		ctx := context.Background()
		if err := pool.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = pool.Stop(ctx) })
		_, err := pool.Do(ctx, 0, &Request{ID: "1", Op: OpTrain, Model: "crash"}, nil)
		var crash *CrashError
		if !errors.As(err, &crash) {
			t.Fatalf("err = %v, want CrashError", err)
		}
		resp, err := pool.Do(ctx, 10*time.Second, &Request{ID: "2", Op: OpOutput, Model: "ok"}, nil)
		if err != nil {
			t.Fatalf("after restart: %v", err)
		}
		if len(resp.OutputVector) != 2 {
			t.Errorf("outputVector = %v", resp.OutputVector)
		}
		if !pool.Ready() {
			t.Error("pool not ready after serving")
		}
	})

	t.Run("bounded wait returns ErrNoWorker", func(t *testing.T) {
		t.Parallel()
		pool := NewPool(Config{Command: pythonWorker(t)}, 1)
		ctx := context.Background()
		_ = pool.Start(ctx)
		t.Cleanup(func() { _ = pool.Stop(ctx) })
		busy := make(chan error, 1)
		slowCtx, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() {
			_, err := pool.Do(slowCtx, 0, &Request{ID: "1", Op: OpTrain, Model: "slow"}, nil)
			busy <- err
		}()
		for pool.Busy() == 0 {
			time.Sleep(5 * time.Millisecond)
		}
		_, err := pool.Do(ctx, 50*time.Millisecond, &Request{ID: "2", Op: OpOutput, Model: "ok"}, nil)
		if !errors.Is(err, ErrNoWorker) {
			t.Fatalf("err = %v, want ErrNoWorker", err)
		}
		cancel()
		<-busy
	})
}
