package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/herd-ml/herd/internal/gridtest"
	"github.com/herd-ml/herd/internal/testenv"
	"github.com/herd-ml/herd/junit"
)

// sites serves n plain pages (/site/0 ...), /broken (no heading), /flaky
// (no heading on its first load only) and /hold (the test waits there).
func sites(t *testing.T) string {
	t.Helper()
	var flakyLoads atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		switch {
		case strings.HasPrefix(r.URL.Path, "/site/"):
			fmt.Fprintf(w, "<title>Site %s</title><h1>Welcome</h1>", strings.TrimPrefix(r.URL.Path, "/site/"))
		case r.URL.Path == "/broken":
			fmt.Fprint(w, "<title>Broken</title><p>no heading here</p>")
		case r.URL.Path == "/flaky" && flakyLoads.Add(1) == 1:
			fmt.Fprint(w, "<title>Flaky</title><p>not yet</p>")
		case r.URL.Path == "/flaky":
			fmt.Fprint(w, "<title>Flaky</title><h1>Now it works</h1>")
		case r.URL.Path == "/hold":
			fmt.Fprint(w, "<title>hold</title><h1>Hold</h1>")
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// gridSessions counts sessions the grid's /status shows.
func gridSessions(t *testing.T, hubURL string) int {
	n := 0
	for _, node := range gridStatus(t, hubURL) {
		for _, s := range node.Slots {
			if s.Session != nil {
				n++
			}
		}
	}
	return n
}

// nodeTestCommand runs site.test.js with Node's test runner, through a
// link named after the test, so that its processes can be told apart from
// those of tests running beside it. It returns the command and that name.
func nodeTestCommand(t *testing.T) ([]string, string) {
	js := gridtest.JSDir(t)
	marker := fmt.Sprintf("site-%s-%d.test.js", t.Name(), time.Now().UnixNano())
	link := filepath.Join(js, marker)
	if err := os.Symlink("site.test.js", link); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(link) })
	return []string{testenv.Command(t, "node"), "--test", "--test-reporter=junit", "--test-reporter-destination={report}", link}, marker
}

// TestRunOnTheGrid runs the JavaScript test file against a dozen pages
// through herd standalone: one page fails, one passes only on its retry.
func TestRunOnTheGrid(t *testing.T) {
	t.Parallel()

	grid, _, _ := startStandalone(t, 3)
	site := sites(t)
	dir := t.TempDir()
	var lines []string
	for i := range 10 {
		lines = append(lines, fmt.Sprintf("%s/site/%d Site %d", site, i, i))
	}
	lines = append(lines, "# two that misbehave", site+"/broken Broken site", site+"/flaky Flaky site")
	targets := writeFile(t, filepath.Join(dir, "sites.txt"), strings.Join(lines, "\n")+"\n")
	report := filepath.Join(dir, "report.xml")
	timings := filepath.Join(dir, "timings.json")

	command, marker := nodeTestCommand(t)
	args := append([]string{"run", "--grid", grid, "--targets", targets, "--retries", "1", "--junit", report, "--timings", timings, "--"}, command...)
	cmd := exec.Command(herdBinary, args...)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("herd run with a failing site: %v (want exit status 1)\n%s", err, out)
	}
	for _, want := range []string{"FAIL Broken site — page has a heading", "12 targets: 22 tests passed, 1 flaky (passed on a retry), 1 failed"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	// The report, element by element.
	rep, err := junit.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Tests != 24 || rep.Failures != 1 || rep.Errors != 0 || rep.Skipped != 0 || len(rep.Suites) != 12 {
		t.Fatalf("totals = %+v, %d suites", rep.Totals, len(rep.Suites))
	}
	for i, s := range rep.Suites {
		target := strings.Fields(lines[min(i, 9)])[0]
		wantName := fmt.Sprintf("Site %d", i)
		switch i {
		case 10:
			target, wantName = site+"/broken", "Broken site"
		case 11:
			target, wantName = site+"/flaky", "Flaky site"
		}
		if s.Name != wantName || s.Tests != 2 || s.Timestamp == "" || s.Time <= 0 {
			t.Errorf("suite %d = %q tests=%d timestamp=%q time=%v", i, s.Name, s.Tests, s.Timestamp, s.Time)
		}
		if len(s.Cases) != 2 || s.Cases[0].Name != "page has a title" || s.Cases[1].Name != "page has a heading" {
			t.Fatalf("suite %q cases = %+v", s.Name, s.Cases)
		}
		for _, c := range s.Cases {
			if c.Classname != target {
				t.Errorf("%s: classname %q, want the target %q", s.Name, c.Classname, target)
			}
		}
		heading := s.Cases[1]
		switch i {
		case 10:
			if heading.Outcome() != junit.Failed || len(heading.RerunFailures) != 1 || !strings.Contains(heading.Failure.Message+heading.Failure.Text, "no such element") {
				t.Errorf("broken heading = %+v", heading)
			}
		case 11:
			if heading.Outcome() != junit.Flaky || len(heading.FlakyFailures) != 1 || heading.Failure != nil {
				t.Errorf("flaky heading = %+v", heading)
			}
		default:
			if heading.Outcome() != junit.Passed || len(heading.FlakyFailures) != 0 {
				t.Errorf("%s heading = %+v", s.Name, heading)
			}
		}
	}

	// Beside it: every attempt as JSON, and the timings for next time.
	var attempts struct {
		Chunks []struct {
			Passed   bool
			Attempts []struct{ ExitCode int }
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "report.attempts.json"))
	if err != nil || json.Unmarshal(b, &attempts) != nil || len(attempts.Chunks) != 12 {
		t.Fatalf("attempts file: %v %s", err, b)
	}
	if len(attempts.Chunks[10].Attempts) != 2 || attempts.Chunks[10].Passed || len(attempts.Chunks[11].Attempts) != 2 || !attempts.Chunks[11].Passed {
		t.Fatalf("attempts of the broken and flaky sites = %+v", attempts.Chunks[10:])
	}
	var times map[string]float64
	b, _ = os.ReadFile(timings)
	if json.Unmarshal(b, &times) != nil || len(times) != 12 || times[site+"/site/0"] <= 0 {
		t.Fatalf("timings = %s", b)
	}

	// A real JUnit consumer reads it: junit-report-merger.
	merged := filepath.Join(dir, "merged.xml")
	jrm := exec.Command(testenv.Command(t, "node"), filepath.Join(gridtest.JSDir(t), "node_modules", "junit-report-merger", "cli.js"), merged, report)
	if out, err := jrm.CombinedOutput(); err != nil {
		t.Fatalf("junit-report-merger: %v\n%s", err, out)
	}
	back, err := junit.ReadFile(merged)
	if err != nil || back.Tests != 24 || back.Failures != 1 || len(back.Suites) != 12 {
		t.Fatalf("junit-report-merger's output: %v %+v", err, back)
	}

	// Every session ended, no test process left.
	if n := gridSessions(t, grid); n != 0 {
		t.Fatalf("%d grid sessions left after the run", n)
	}
	if left := processesNaming(t, marker); len(left) > 0 {
		t.Fatalf("test processes left: %v", left)
	}
}

// TestRunInterrupted sends SIGINT mid-run: running chunks stop, their grid
// sessions end, and the report written holds what happened.
func TestRunInterrupted(t *testing.T) {
	t.Parallel()

	grid, _, _ := startStandalone(t, 2)
	site := sites(t)
	dir := t.TempDir()
	var lines []string
	for i := range 5 {
		lines = append(lines, fmt.Sprintf("%s/hold?%d hold %d", site, i, i))
	}
	targets := writeFile(t, filepath.Join(dir, "sites.txt"), strings.Join(lines, "\n")+"\n")
	report := filepath.Join(dir, "report.xml")
	command, marker := nodeTestCommand(t)
	args := append([]string{"run", "--grid", grid, "--targets", targets, "--parallel", "2", "--junit", report, "--"}, command...)
	cmd := exec.Command(herdBinary, args...)
	logs := &testenv.Output{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 60*time.Second, func() bool { return gridSessions(t, grid) == 2 })
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 130 {
		t.Fatalf("interrupted herd run: %v (want exit status 130)\n%s", err, logs.String())
	}
	if n := gridSessions(t, grid); n != 0 {
		t.Fatalf("%d grid sessions left after the interrupt", n)
	}
	if left := processesNaming(t, marker); len(left) > 0 {
		t.Fatalf("test processes left: %v", left)
	}
	rep, err := junit.ReadFile(report)
	if err != nil {
		t.Fatalf("partial report: %v", err)
	}
	var interrupted, notRun int
	for _, s := range rep.Suites {
		for _, c := range s.Cases {
			switch {
			case c.Error != nil && c.Error.Type == "interrupted":
				interrupted++
			case c.Skipped != nil && strings.Contains(c.Skipped.Message, "not run"):
				notRun++
			}
		}
	}
	if len(rep.Suites) != 5 || interrupted != 2 || notRun != 3 {
		t.Fatalf("partial report: %d suites, %d interrupted, %d not run:\n%s", len(rep.Suites), interrupted, notRun, logs.String())
	}
}

// processesNaming lists live processes whose command line contains s.
func processesNaming(t *testing.T, s string) []string {
	t.Helper()
	var out []string
	deadline := time.Now().Add(5 * time.Second)
	for {
		out = out[:0]
		b, _ := exec.Command("pgrep", "-af", s).Output()
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if line != "" && !strings.Contains(line, "pgrep") && !strings.Contains(line, "herd run") && !strings.Contains(line, herdBinary) {
				out = append(out, line)
			}
		}
		if len(out) == 0 || time.Now().After(deadline) {
			return out
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestShardsMergeToTheUnshardedReport splits a run in three with --shard and
// merges the reports with herd merge: the same cases, the same outcomes as
// one unsharded run.
func TestShardsMergeToTheUnshardedReport(t *testing.T) {
	t.Parallel()

	dir := t.TempDir()
	var lines []string
	for i := range 20 {
		lines = append(lines, fmt.Sprintf("t%d Target %d", i, i))
	}
	targets := writeFile(t, filepath.Join(dir, "targets.txt"), strings.Join(lines, "\n")+"\n")
	// Targets ending in 3 fail, those ending in 7 fail on the first attempt.
	script := `case "$HERD_TARGET" in *3) ok= ;; *7) [ "$HERD_ATTEMPT" -ge 2 ] && ok=1 ;; *) ok=1 ;; esac
for n in a b; do
  if [ -n "$ok" ]; then echo "<testcase name=\"$n\"/>"; else echo "<testcase name=\"$n\"><failure message=\"bad $HERD_TARGET\"/></testcase>"; fi
done | { echo "<testsuite name=\"x\">"; cat; echo "</testsuite>"; } > "$HERD_REPORT"
echo "shard ${TEST_SHARD_INDEX:-none} of ${TEST_TOTAL_SHARDS:-none}"`
	runHerd := func(extra ...string) string {
		out := filepath.Join(dir, fmt.Sprintf("report%d.xml", len(extra)))
		if len(extra) > 0 {
			out = filepath.Join(dir, "shard-"+strings.ReplaceAll(extra[1], "/", "-")+".xml")
		}
		args := append([]string{"run", "--targets", targets, "--parallel", "4", "--retries", "1", "--junit", out}, extra...)
		args = append(args, "--", "/bin/sh", "-c", script)
		cmd := exec.Command(herdBinary, args...)
		b, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if err != nil && (!errors.As(err, &exit) || exit.ExitCode() != 1) {
			t.Fatalf("herd %v: %v (want exit status 0 or 1)\n%s", args, err, b)
		}
		if len(extra) == 0 && err == nil {
			t.Fatalf("unsharded run passed, but targets ending in 3 fail:\n%s", b)
		}
		return out
	}
	whole := runHerd()
	var shards []string
	for i := 1; i <= 3; i++ {
		shards = append(shards, runHerd("--shard", fmt.Sprintf("%d/3", i)))
	}
	merged := filepath.Join(dir, "merged.xml")
	if out, err := exec.Command(herdBinary, append(append([]string{"merge"}, shards...), "-o", merged)...).CombinedOutput(); err != nil {
		t.Fatalf("herd merge: %v\n%s", err, out)
	}

	outcomes := func(path string) []string {
		rep, err := junit.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, s := range rep.Suites {
			for _, c := range s.Cases {
				out = append(out, fmt.Sprintf("%s|%s|%s|%s", s.Name, c.Classname, c.Name, c.Outcome()))
			}
		}
		sort.Strings(out)
		return out
	}
	want, got := outcomes(whole), outcomes(merged)
	if len(want) != 40 || strings.Join(want, "\n") != strings.Join(got, "\n") {
		t.Fatalf("merged shards differ from the unsharded run:\n%s\n---\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	counts := map[string]int{}
	for _, line := range want {
		counts[line[strings.LastIndex(line, "|")+1:]]++
	}
	if counts["failed"] != 4 || counts["flaky"] != 4 || counts["passed"] != 32 {
		t.Fatalf("outcomes = %v", counts)
	}
	// Each shard ran about a third, and its chunks knew their shard.
	for i, path := range shards {
		rep, err := junit.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Suites) < 6 || len(rep.Suites) > 7 {
			t.Errorf("shard %d ran %d of 20 targets", i+1, len(rep.Suites))
		}
		if !strings.Contains(rep.Suites[0].SystemOut, fmt.Sprintf("shard %d of 3", i)) {
			t.Errorf("shard %d output = %q", i+1, rep.Suites[0].SystemOut)
		}
	}
}

func TestRunBadInput(t *testing.T) {
	t.Parallel()

	dir := t.TempDir()
	targets := writeFile(t, filepath.Join(dir, "t.txt"), "a\n")
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"run", "--targets", targets}, "no command: put it after --"},
		{[]string{"run", "--", "true"}, "--targets is required"},
		{[]string{"run", "--targets", filepath.Join(dir, "nope"), "--", "true"}, "no such file"},
		{[]string{"run", "--targets", writeFile(t, filepath.Join(dir, "dup.txt"), "a X\nb X\n"), "--parallel", "1", "--", "true"}, `target name "X" is already used on line 1`},
		{[]string{"run", "--targets", targets, "--shard", "4/3", "--", "true"}, "--shard \"4/3\""},
		{[]string{"run", "--targets", targets, "--parallel", "zero", "--", "true"}, "--parallel \"zero\""},
		{[]string{"run", "--targets", targets, "--grid", "http://127.0.0.1:1", "--", "true"}, "--parallel auto: cannot ask the grid at http://127.0.0.1:1"},
		{[]string{"run", "--targets", targets, "--grid", "http://ci:s3cret@127.0.0.1:1", "--", "true"}, "cannot ask the grid at http://ci:xxxxx@127.0.0.1:1 "},
		{[]string{"merge"}, "no reports to merge"},
		{[]string{"merge", targets}, "no <testsuites> or <testsuite> element"},
	}
	for _, tt := range tests {
		cmd := exec.Command(herdBinary, tt.args...)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), tt.want) || strings.Contains(string(out), "s3cret") {
			t.Errorf("herd %v = %v\n%s\nwant an error saying %q", tt.args, err, out, tt.want)
		}
	}
	// Targets from stdin; a passing run exits 0 and says so.
	stdin := exec.Command(herdBinary, "run", "--targets", "-", "--parallel", "2", "--", "/bin/sh", "-c", `test "$HERD_TARGET" = "$1"`, "sh", "{target}")
	stdin.Stdin = strings.NewReader("x one\ny two\n")
	if out, err := stdin.CombinedOutput(); err != nil || !strings.Contains(string(out), "2 targets: 2 tests passed") {
		t.Fatalf("targets from stdin: %v\n%s", err, out)
	}
	out, err := exec.Command(herdBinary, "run", "--targets", targets, "--parallel", "1", "--", "true").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "1 targets: 1 tests passed") {
		t.Fatalf("passing run: %v\n%s", err, out)
	}
}
