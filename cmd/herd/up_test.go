package main

import (
	"io"
	"math/rand/v2"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/herd-ml/herd/internal/gridtest"
	"github.com/herd-ml/herd/internal/testenv"
)

// TestUp runs `herd up` as the README says (from the repository root) and
// uses both halves: the grid is ready with a Chromium slot, and the
// example ML services answer, the plain Python one through a whole
// train-then-output round. SIGTERM stops it all.
func TestUp(t *testing.T) {
	t.Parallel()
	gridtest.Chrome(t)
	testenv.Command(t, "python3")

	// herd up takes consecutive ports from --port: take them below the
	// kernel's ephemeral range, where the free ports other tests are handed
	// (testenv.FreeAddr) never come from.
	gridPort, port := freePort(t), freeRun(t, 5)
	cmd := exec.Command(herdBinary, "up", "--grid-port", strconv.Itoa(gridPort), "--port", strconv.Itoa(port),
		"--data-dir", filepath.Join(t.TempDir(), "up"))
	cmd.Dir = "../.."
	var out testenv.Output
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			t.Logf("herd up output:\n%s", out.String())
		}
	})

	deadline := time.Now().Add(90 * time.Second)
	for !strings.Contains(out.String(), "herd up: running") {
		if time.Now().After(deadline) {
			t.Fatal("herd up printed no table of URLs in 90 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	grid := "http://127.0.0.1:" + strconv.Itoa(gridPort)
	mean := "http://127.0.0.1:" + strconv.Itoa(port)
	for _, want := range []string{"grid", grid, "mean-python", mean} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("the table lacks %q", want)
		}
	}
	if _, body := getBody(t, grid+"/status"); !strings.Contains(body, `"ready":true`) || !strings.Contains(body, `"browserName":"chrome"`) {
		t.Fatalf("grid /status: %s", body)
	}
	id := post(t, mean+"/train", `{"Files": ["a.txt", "b.txt"]}`)
	if st := waitEnded(t, mean, id, 60*time.Second); st.State != "done" {
		t.Fatalf("train through herd up: %+v", st)
	}
	if code, body := output(t, mean, `{"Files": ["query.txt"]}`); code != 200 || !strings.Contains(body, `"outputVector":[3]`) {
		t.Fatalf("/output through herd up: %d %s", code, body)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("herd up exited with %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("herd up still running 60 s after SIGTERM")
	}
}

func TestUpOutsideTheRepository(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(herdBinary, "up")
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	if code := exitCode(err); code != 2 || !strings.Contains(string(out), "run it from the repository root") {
		t.Fatalf("herd up outside the repository: exit %d, %s", code, out)
	}
}

// freeRun returns the first of n consecutive free ports in 20000-29999.
func freeRun(t *testing.T, n int) int {
	t.Helper()
	for base := 20000 + rand.IntN(9000); base < 29990; base += n {
		var held []net.Listener
		for p := base; p < base+n; p++ {
			ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
			if err != nil {
				break
			}
			held = append(held, ln)
		}
		for _, ln := range held {
			ln.Close()
		}
		if len(held) == n {
			return base
		}
	}
	t.Fatal("no run of free ports")
	return 0
}

func freePort(t *testing.T) int {
	_, port, _ := net.SplitHostPort(testenv.FreeAddr(t))
	n, _ := strconv.Atoi(port)
	return n
}

func exitCode(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

func getBody(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := upClient.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
