// Package gridtest gives grid tests what they share: a local site to browse,
// the official Python Selenium client to drive it, and a check that no
// driver, browser or profile outlives the test.
package gridtest

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herd-ml/herd/internal/testenv"
)

var pages = map[string]string{
	"/form.html": `<!doctype html><title>Form page</title>
<form onsubmit="return false"><input id=user name=user><input id=pass type=password><input id=go type=submit value=Go
 onclick="document.getElementById('out').textContent='hello '+document.getElementById('user').value"></form>
<p id=out></p><button id=alert onclick="alert('careful')">alert</button>`,
	"/other.html":  `<!doctype html><title>Other page</title><p>other</p>`,
	"/frames.html": `<!doctype html><title>Frames page</title><iframe id=inner src="/form.html"></iframe>`,
}

// ProfileDir returns a new, short directory for a node's profiles, removed
// after the test. Short, because Chrome puts a Unix socket in the profile's
// temporary directory and socket paths are limited to 107 bytes; the test's
// own temporary directory is too deep.
func ProfileDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "hp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// Site serves the scenario pages on loopback.
func Site(t testing.TB) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		page, ok := pages[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(page))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// Chrome returns the paths of chromedriver and Chromium, or calls
// testenv.Missing.
func Chrome(t testing.TB) (driver, browser string) {
	t.Helper()
	driver = testenv.Command(t, "chromedriver")
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return driver, p
		}
	}
	testenv.Missing(t, "no chromium on PATH")
	return "", ""
}

// Python is Debian's interpreter, the one that can import python3-selenium.
func Python(t testing.TB) string {
	t.Helper()
	return testenv.DebianPython(t, "selenium", "python3-selenium")
}

// RunPython runs one of this package's Python scripts with Debian's
// interpreter and returns what it printed.
func RunPython(ctx context.Context, t testing.TB, script string, args ...string) (string, error) {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	cmd := exec.CommandContext(ctx, Python(t), append([]string{filepath.Join(filepath.Dir(file), script)}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// RunJSScenarios drives grid with the official JavaScript client
// (selenium-webdriver, installed from js/package-lock.json with npm ci when
// missing) and returns what it printed.
func RunJSScenarios(ctx context.Context, t testing.TB, grid, site string) (string, error) {
	t.Helper()
	nodeBin := testenv.Command(t, "node")
	dir := JSDir(t)
	cmd := exec.CommandContext(ctx, nodeBin, filepath.Join(dir, "scenarios.js"), grid, site)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// JSDir returns the directory of the JavaScript test files, with their
// npm dependencies installed.
func JSDir(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "js")
	NPMInstall(t, dir, "selenium-webdriver", "junit-report-merger")
	return dir
}

var npmMu sync.Mutex

// NPMInstall runs npm ci in dir (from its package-lock.json) unless every
// named package is already in its node_modules.
func NPMInstall(t testing.TB, dir string, packages ...string) {
	t.Helper()
	npmMu.Lock()
	defer npmMu.Unlock()
	missing := false
	for _, p := range packages {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", p)); err != nil {
			missing = true
		}
	}
	if !missing {
		return
	}
	cmd := exec.Command(testenv.Command(t, "npm"), "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in %s: %v\n%s", dir, err, out)
	}
}

// RunScenarios drives grid with the Python client through the named
// scenarios (all when none) and returns what it printed.
func RunScenarios(ctx context.Context, t testing.TB, grid, site string, names ...string) (string, error) {
	t.Helper()
	return RunPython(ctx, t, "scenarios.py", append([]string{grid, site}, names...)...)
}

// NoLeaks fails the test if, after a grace period, a driver or browser
// process still names a profile under profileDir, or a profile is left there.
// Call it once the node has stopped.
func NoLeaks(t testing.TB, profileDir string) {
	t.Helper()
	waitGone(t, func() []string {
		profiles, _ := filepath.Glob(filepath.Join(profileDir, "herd-profile-*"))
		return append(leakedProcesses(profileDir, false), profiles...)
	})
}

// NoBrowsers fails the test if, after a grace period, a browser still runs
// with a profile under profileDir. A running node keeps a spare driver (and
// its profile) ready, so this is the check for while it runs.
func NoBrowsers(t testing.TB, profileDir string) {
	t.Helper()
	waitGone(t, func() []string { return leakedProcesses(profileDir, true) })
}

func waitGone(t testing.TB, left func() []string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		l := left()
		if len(l) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("leaked after the test: %v", l)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func leakedProcesses(profileDir string, browsersOnly bool) []string {
	entries, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range entries {
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if browsersOnly && !bytes.Contains(cmdline, []byte("--user-data-dir=")) {
			continue
		}
		if bytes.Contains(cmdline, []byte(filepath.Join(profileDir, "herd-profile-"))) {
			out = append(out, e.Name()+": "+strings.ReplaceAll(string(cmdline[:min(len(cmdline), 120)]), "\x00", " "))
		}
	}
	return out
}
