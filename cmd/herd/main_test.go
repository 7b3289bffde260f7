package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/herd-ml/herd/internal/testenv"
)

// herdBinary is built once for the tests that run herd as a real process.
var herdBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "herd-bin-")
	if err != nil {
		panic(err)
	}
	herdBinary = filepath.Join(dir, "herd")
	out, err := exec.Command("go", "build", "-race", "-o", herdBinary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "cannot build herd: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// replica is one `herd serve` process.
type replica struct {
	url  string
	cmd  *exec.Cmd
	logs *testenv.Output
}

func startReplica(t *testing.T, env []string, args ...string) *replica {
	t.Helper()
	addr := testenv.FreeAddr(t)
	cmd := exec.Command(herdBinary, append([]string{"serve", "--addr", addr}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	logs := &testenv.Output{}
	cmd.Stdout = logs
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := &replica{url: "http://" + addr, cmd: cmd, logs: logs}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("replica %s log:\n%s", addr, r.logs.String())
		}
	})
	testenv.WaitHTTP(t, r.url+"/readyz", 60*time.Second)
	return r
}

func post(t *testing.T, url, body string) string {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ JobID string }
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 202 || json.Unmarshal(raw, &out) != nil || out.JobID == "" {
		t.Fatalf("POST %s = %d %s", url, resp.StatusCode, raw)
	}
	return out.JobID
}

type jobStatus struct {
	JobID, Status, State, Error string
}

func status(t *testing.T, base, id string) jobStatus {
	t.Helper()
	resp, err := http.Get(base + "/status?jobId=" + id)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st jobStatus
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /status %s = %d %v", id, resp.StatusCode, err)
	}
	return st
}

func waitEnded(t *testing.T, base, id string, within time.Duration) jobStatus {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		st := status(t, base, id)
		if st.State == "done" || st.State == "error" || st.State == "cancelled" {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s still %s after %s", id, st.State, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func misbehaveWorker(t *testing.T) string {
	abs, err := filepath.Abs("../../worker/testdata/misbehave.py")
	if err != nil {
		t.Fatal(err)
	}
	return testenv.Command(t, "python3") + " " + abs
}

func filesRoot(t *testing.T) string {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.txt"), []byte("1 2 3"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestReplicasShareOnePostgres: 200 jobs submitted alternately to two
// replicas each run exactly once, and either replica reports any job.
func TestReplicasShareOnePostgres(t *testing.T) {
	t.Parallel()

	dbURL := testenv.PostgresSchema(t)
	shared := t.TempDir()
	root := filesRoot(t)
	args := func() []string {
		return []string{"--worker", misbehaveWorker(t), "--files-root", root, "--database-url", dbURL,
			"--data-dir", t.TempDir(), "--model-store", filepath.Join(shared, "models"), "--workers", "2", "--poll-interval", "20ms"}
	}
	// Each replica's workers record every execution in the replica's own file.
	records := []string{filepath.Join(shared, "a.log"), filepath.Join(shared, "b.log")}
	a := startReplica(t, []string{"HERD_TEST_RECORD=" + records[0]}, args()...)
	b := startReplica(t, []string{"HERD_TEST_RECORD=" + records[1]}, args()...)

	const n = 200
	ids := make([]string, n)
	for i := range n {
		target := a
		if i%2 == 1 {
			target = b
		}
		ids[i] = post(t, target.url+"/input", fmt.Sprintf(`{"Files": ["a.txt"], "model": "m%d"}`, i%7))
	}
	for i, id := range ids {
		reader := b // read from the other replica than the one that took it
		if i%2 == 1 {
			reader = a
		}
		if st := waitEnded(t, reader.url, id, 90*time.Second); st.State != "done" {
			t.Fatalf("job %s: %+v", id, st)
		}
	}

	runs := map[string]int{}
	for _, record := range records {
		f, err := os.Open(record)
		if err != nil {
			t.Fatalf("a replica ran no job: %v", err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text()) // op model request-id
			runs[strings.TrimPrefix(fields[2], "job-")]++
		}
		f.Close()
	}
	for _, id := range ids {
		if runs[id] != 1 {
			t.Errorf("job %s ran %d times, want exactly once", id, runs[id])
		}
	}
	if len(runs) != n {
		t.Errorf("%d distinct jobs ran, want %d", len(runs), n)
	}
}

// TestKill9 kills herd serve with SIGKILL while jobs are queued and running;
// after a restart every job ends done or error: none lost, none stuck.
func TestKill9(t *testing.T) {
	t.Parallel()

	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			t.Parallel()
			root := filesRoot(t)
			data := t.TempDir()
			args := []string{"--worker", misbehaveWorker(t), "--files-root", root, "--data-dir", data,
				"--workers", "2", "--job-timeout", "3s", "--cancel-grace", "500ms", "--poll-interval", "20ms"}
			if db == "postgres" {
				args = append(args, "--database-url", testenv.PostgresSchema(t))
			}
			first := startReplica(t, nil, args...)
			var ids []string
			for i := range 6 {
				ids = append(ids, post(t, first.url+"/train", fmt.Sprintf(`{"Files": ["a.txt"], "model": "slow%d"}`, i)))
			}
			for i := range 4 {
				ids = append(ids, post(t, first.url+"/input", fmt.Sprintf(`{"Files": ["a.txt"], "model": "ok%d"}`, i)))
			}
			// Wait until two jobs are running, then kill -9.
			deadline := time.Now().Add(30 * time.Second)
			for {
				running := 0
				for _, id := range ids {
					if status(t, first.url, id).State == "running" {
						running++
					}
				}
				if running == 2 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("jobs never started")
				}
				time.Sleep(20 * time.Millisecond)
			}
			if err := first.cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			_ = first.cmd.Wait()

			second := startReplica(t, nil, args...)
			for _, id := range ids {
				st := waitEnded(t, second.url, id, 120*time.Second)
				if st.State != "done" && st.State != "error" {
					t.Errorf("job %s ended %s", id, st.State)
				}
			}
		})
	}
}

func TestServeFlags(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		args []string
		env  []string
		msg  string
	}{
		{"no worker", []string{}, nil, "--worker is required"},
		{"zero workers", []string{"--worker", "x", "--workers", "0"}, nil, "at least 1"},
		{"stray argument", []string{"--worker", "python3", "w.py"}, nil, "quote the worker command"},
		{"bad env value", []string{"--worker", "x"}, []string{"HERD_JOB_WORKERS=lots"}, "HERD_JOB_WORKERS"},
		{"missing token file", []string{"--worker", "x", "--auth-token-file", "/nonexistent"}, nil, "--auth-token-file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(herdBinary, append([]string{"serve"}, tt.args...)...)
			cmd.Env = append(os.Environ(), tt.env...)
			out, err := cmd.CombinedOutput()
			if err == nil || !strings.Contains(string(out), tt.msg) {
				t.Fatalf("err = %v, output %q; want failure mentioning %q", err, out, tt.msg)
			}
		})
	}
}

// TestServeEnvironment is not parallel: it sets environment variables.
func TestServeEnvironment(t *testing.T) {
	t.Setenv("HERD_JOB_WORKERS", "3")
	t.Setenv("HERD_OUTPUT_WORKERS", "5")
	t.Setenv("HERD_FILES_ROOT", "/a"+string(os.PathListSeparator)+"/b")
	c := &ServeCommand{Stdout: io.Discard, Stderr: io.Discard}
	f, err := c.parse([]string{"--worker", "w", "--output-workers", "2"})
	if err != nil {
		t.Fatal(err)
	}
	if f.opts.JobWorkers != 3 || f.opts.OutputWorkers != 2 {
		t.Fatalf("job workers %d, output workers %d; want 3 from the environment, 2 from the flag", f.opts.JobWorkers, f.opts.OutputWorkers)
	}
	if len(f.opts.FilesRoots) != 2 || f.opts.FilesRoots[1] != "/b" {
		t.Fatalf("files roots = %v", f.opts.FilesRoots)
	}
}

// TestServeSIGTERM: on SIGTERM a replica stops taking jobs, lets its running
// job finish, and exits; the jobs still queued stay queued and another
// replica runs them.
func TestServeSIGTERM(t *testing.T) {
	t.Parallel()

	dbURL := testenv.PostgresSchema(t)
	root := filesRoot(t)
	shared := t.TempDir()
	args := func() []string {
		return []string{"--worker", misbehaveWorker(t), "--files-root", root, "--database-url", dbURL, "--data-dir", t.TempDir(),
			"--model-store", filepath.Join(shared, "models"), "--workers", "1", "--poll-interval", "20ms", "--shutdown-grace", "30s"}
	}
	records := []string{filepath.Join(shared, "a.log"), filepath.Join(shared, "b.log")}
	a := startReplica(t, []string{"HERD_TEST_RECORD=" + records[0]}, args()...)

	slow := post(t, a.url+"/train", `{"Files": ["a.txt"], "model": "slow"}`)
	for status(t, a.url, slow).State != "running" {
		time.Sleep(20 * time.Millisecond)
	}
	queued := []string{
		post(t, a.url+"/input", `{"Files": ["a.txt"], "model": "later1"}`),
		post(t, a.url+"/input", `{"Files": ["a.txt"], "model": "later2"}`),
	}
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- a.cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("replica A exited with %v:\n%s", err, a.logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("replica A still running 30 s after SIGTERM:\n%s", a.logs.String())
	}
	ran := func(record string) string {
		b, _ := os.ReadFile(record)
		return string(b)
	}
	if got := ran(records[0]); !strings.Contains(got, "train slow job-"+slow) || strings.Contains(got, "later") {
		t.Fatalf("replica A ran %q; want the running job finished and nothing new taken", got)
	}

	b := startReplica(t, []string{"HERD_TEST_RECORD=" + records[1]}, args()...)
	if st := status(t, b.url, slow); st.State != "done" {
		t.Fatalf("the job running at SIGTERM: %+v, want done", st)
	}
	for _, id := range queued {
		if st := waitEnded(t, b.url, id, 30*time.Second); st.State != "done" {
			t.Fatalf("queued job %s: %+v", id, st)
		}
	}
	if got := ran(records[1]); !strings.Contains(got, "later1") || !strings.Contains(got, "later2") {
		t.Fatalf("replica B ran %q; want the two jobs left queued", got)
	}
}
