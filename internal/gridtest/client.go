package gridtest

import (
	"bufio"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/herd-ml/herd/internal/testenv"
)

// Clients names the official bindings a Client can run.
var Clients = []string{"python", "js"}

// Client is an official Selenium client (Python or JavaScript) in a process
// of its own, driven one command at a time (see client.py and js/client.js),
// so a test can act as a user of either binding would around grid events.
type Client struct {
	t     testing.TB
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
}

// StartClient starts the named client ("python" or "js") against grid. The
// process ends with the test, or earlier with Kill.
func StartClient(t testing.TB, lang, grid string) *Client {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Dir(file)
	var cmd *exec.Cmd
	switch lang {
	case "python":
		cmd = exec.Command(Python(t), filepath.Join(dir, "client.py"), grid)
	case "js":
		cmd = exec.Command(testenv.Command(t, "node"), filepath.Join(JSDir(t), "client.js"), grid)
	default:
		t.Fatalf("no client %q", lang)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &Client{t: t, cmd: cmd, stdin: stdin, lines: make(chan string)}
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		c.Kill()
		if t.Failed() && stderr.Len() > 0 {
			t.Logf("%s client stderr:\n%s", lang, stderr.String())
		}
	})
	return c
}

// Do sends one command and returns the answer after "ok ", or an error
// holding the answer after "error " (the binding's error class and message).
func (c *Client) Do(command string) (string, error) {
	c.t.Helper()
	if _, err := fmt.Fprintln(c.stdin, command); err != nil {
		c.t.Fatalf("client %q: %v", command, err)
	}
	select {
	case line, ok := <-c.lines:
		if !ok {
			c.t.Fatalf("client exited during %q", command)
		}
		if rest, found := strings.CutPrefix(line, "ok"); found {
			return strings.TrimSpace(rest), nil
		}
		return "", fmt.Errorf("%s", strings.TrimPrefix(line, "error "))
	case <-time.After(3 * time.Minute):
		c.t.Fatalf("client: no answer to %q in 3 minutes", command)
		return "", nil
	}
}

// Must is Do that fails the test on an error answer.
func (c *Client) Must(command string) string {
	c.t.Helper()
	out, err := c.Do(command)
	if err != nil {
		c.t.Fatalf("%s: %v", command, err)
	}
	return out
}

// Kill ends the client process at once, as a CI job that dies would; its
// session is left behind on the grid.
func (c *Client) Kill() {
	if c.cmd.ProcessState == nil {
		_ = c.cmd.Process.Kill()
		_ = c.cmd.Wait()
	}
}
