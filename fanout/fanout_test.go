package fanout

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herd-ml/herd/junit"
)

func TestReadTargets(t *testing.T) {
	got, err := ReadTargets(strings.NewReader("# sites\nhttps://a.example/login  Site A\n\n  https://b.example/\nc\tThe C site\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []Target{{"https://a.example/login", "Site A"}, {"https://b.example/", "https://b.example/"}, {"c", "The C site"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("targets = %v, want %v", got, want)
	}
	for in, msg := range map[string]string{
		"":                   "no targets",
		"# only a comment\n": "no targets",
		"a Same\nb Same\n":   `line 2: target name "Same" is already used on line 1`,
	} {
		if _, err := ReadTargets(strings.NewReader(in)); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("ReadTargets(%q) = %v, want %q", in, err, msg)
		}
	}
}

func TestShardIsAPartitionBalancedByTime(t *testing.T) {
	var targets []Target
	timings := Timings{}
	for i := range 30 {
		v := fmt.Sprintf("t%02d", i)
		targets = append(targets, Target{v, v})
		timings[v] = float64(1 + (i*7)%13) // uneven durations
	}
	chunks := Chunks(targets, 1)
	seen := map[int]int{}
	var loads []float64
	for i := range 3 {
		load := 0.0
		for _, c := range Shard(chunks, timings, i, 3) {
			seen[c.ID]++
			load += timings[c.Targets[0].Value]
		}
		loads = append(loads, load)
		// The same inputs give the same split.
		if fmt.Sprint(Shard(chunks, timings, i, 3)) != fmt.Sprint(Shard(chunks, timings, i, 3)) {
			t.Fatal("Shard is not deterministic")
		}
	}
	if len(seen) != 30 {
		t.Fatalf("shards cover %d of 30 chunks", len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("chunk %d is in %d shards", id, n)
		}
	}
	lo, hi := loads[0], loads[0]
	for _, l := range loads {
		lo, hi = min(lo, l), max(hi, l)
	}
	if hi-lo > 13 { // at most the longest chunk apart
		t.Fatalf("shard loads %v are unbalanced", loads)
	}
}

// script returns a command running a shell script.
func script(s string) []string { return []string{"/bin/sh", "-c", s} }

func targets(names ...string) []Target {
	var out []Target
	for _, n := range names {
		out = append(out, Target{Value: "https://" + n + ".example/", Name: n})
	}
	return out
}

// caseOf returns the one case of suite name in rep.
func suiteOf(t *testing.T, rep *junit.Report, name string) junit.Suite {
	t.Helper()
	for _, s := range rep.Suites {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no suite %q in the report", name)
	return junit.Suite{}
}

func TestRetriesFlakyAndFailing(t *testing.T) {
	t.Parallel()

	// Writes a JUnit report with one case whose outcome depends on the
	// target and the attempt: "flaky" fails once, "bad" always.
	cmd := script(`
case "$HERD_TARGET_NAME" in
  flaky) [ "$HERD_ATTEMPT" -ge 2 ] && ok=1 ;;
  bad) ok= ;;
  *) ok=1 ;;
esac
if [ -n "$ok" ]; then body='<testcase name="finds form" classname="x" time="0.1"/>'
else body='<testcase name="finds form" classname="x" time="0.1"><failure message="no form on attempt '$HERD_ATTEMPT'">trace</failure></testcase>'; fi
echo "output of $HERD_TARGET_NAME attempt $HERD_ATTEMPT"
printf '<testsuites><testsuite name="login">%s</testsuite></testsuites>' "$body" > "$HERD_REPORT"
[ -n "$ok" ]`)
	res, err := Run(context.Background(), Config{Command: cmd, Chunks: Chunks(targets("good", "flaky", "bad"), 1), Parallel: 3, Retries: 2})
	if err != nil {
		t.Fatal(err)
	}
	attempts := []int{}
	for _, c := range res.Chunks {
		attempts = append(attempts, len(c.Attempts))
	}
	if fmt.Sprint(attempts) != "[1 2 3]" {
		t.Fatalf("attempts per chunk = %v, want [1 2 3]", attempts)
	}
	rep := res.Report(cmd)
	if len(rep.Suites) != 3 || rep.Tests != 3 || rep.Failures != 1 || rep.Errors != 0 {
		t.Fatalf("report totals = %+v with %d suites", rep.Totals, len(rep.Suites))
	}
	good := suiteOf(t, rep, "good").Cases[0]
	if good.Outcome() != junit.Passed || good.Classname != "https://good.example/" || good.Name != "finds form" {
		t.Fatalf("good = %+v", good)
	}
	flaky := suiteOf(t, rep, "flaky")
	if len(flaky.Cases) != 1 {
		t.Fatalf("flaky has %d cases; a retried test must stay one case", len(flaky.Cases))
	}
	if fc := flaky.Cases[0]; fc.Outcome() != junit.Flaky || len(fc.FlakyFailures) != 1 || fc.FlakyFailures[0].Message != "no form on attempt 1" || fc.FlakyFailures[0].StackTrace != "trace" {
		t.Fatalf("flaky case = %+v", fc)
	}
	if !strings.Contains(flaky.SystemOut, "output of flaky attempt 2") {
		t.Fatalf("flaky suite output = %q", flaky.SystemOut)
	}
	bad := suiteOf(t, rep, "bad").Cases[0]
	if bad.Outcome() != junit.Failed || bad.Failure.Message != "no form on attempt 1" || len(bad.RerunFailures) != 2 || bad.RerunFailures[1].Message != "no form on attempt 3" {
		t.Fatalf("bad case = %+v", bad)
	}
	if p := suiteOf(t, rep, "bad").Properties; len(p) != 2 || p[1].Value != "3" {
		t.Fatalf("bad suite properties = %+v", p)
	}
}

func TestNoReportExitStatusDecides(t *testing.T) {
	t.Parallel()

	cmd := script(`echo "checking $1" >&2; [ "$HERD_TARGET_NAME" != down ] || { echo "connection refused" >&2; exit 3; }`)
	cmd = append(cmd, "sh", "{target}")
	res, err := Run(context.Background(), Config{Command: cmd, Chunks: Chunks(targets("up", "down"), 1), Parallel: 2})
	if err != nil {
		t.Fatal(err)
	}
	rep := res.Report(cmd)
	up, down := suiteOf(t, rep, "up").Cases[0], suiteOf(t, rep, "down").Cases[0]
	if up.Outcome() != junit.Passed || !strings.Contains(suiteOf(t, rep, "up").SystemErr, "checking https://up.example/") {
		t.Fatalf("up = %+v, stderr %q", up, suiteOf(t, rep, "up").SystemErr)
	}
	if down.Outcome() != junit.Failed || down.Failure.Message != "exited with status 3" || !strings.Contains(down.Failure.Text, "connection refused") {
		t.Fatalf("down = %+v", down)
	}
}

func TestBatchFilesCasesUnderTheirTargets(t *testing.T) {
	t.Parallel()

	// One process for two targets; it names each suite after a target, and a
	// setup suite after none. A chunk of one target owns all its cases.
	cmd := script(`{
printf '<testsuites>'
while read -r target name; do printf '<testsuite name="%s"><testcase name="t" classname="c"/></testsuite>' "$name"; done < "$HERD_TARGETS"
printf '<testsuite name="setup"><testcase name="browser started"/></testsuite></testsuites>'
} > "$HERD_REPORT"`)
	res, err := Run(context.Background(), Config{Command: cmd, Chunks: Chunks(targets("a", "b", "c"), 2)})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Chunks) != 2 {
		t.Fatalf("%d chunks for 3 targets in batches of 2", len(res.Chunks))
	}
	rep := res.Report(cmd)
	var names []string
	for _, s := range rep.Suites {
		names = append(names, fmt.Sprintf("%s:%d", s.Name, len(s.Cases)))
	}
	if got := strings.Join(names, " "); got != "a:1 b:1 batch: a, b:1 c:2" {
		t.Fatalf("suites = %s", got)
	}
	if suiteOf(t, rep, "b").Cases[0].Classname != "https://b.example/" {
		t.Fatal("classname is not the target")
	}
}

// processesWith lists live processes whose command line contains marker.
func processesWith(t *testing.T, marker string) []string {
	out, _ := exec.Command("pgrep", "-af", marker).Output()
	var procs []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line != "" && !strings.Contains(line, "pgrep") {
			procs = append(procs, line)
		}
	}
	return procs
}

func TestTimeoutKillsTheProcessGroup(t *testing.T) {
	t.Parallel()

	marker := fmt.Sprintf("herd-timeout-%d", time.Now().UnixNano())
	// The child ignores SIGTERM, so only the group kill after the grace ends it.
	cmd := script(`trap '' TERM; sh -c 'trap "" TERM; sleep 30; echo ` + marker + `' & wait`)
	start := time.Now()
	res, err := Run(context.Background(), Config{Command: cmd, Chunks: Chunks(targets("slow"), 1), Timeout: 300 * time.Millisecond, StopGrace: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatal("the timeout did not stop the chunk")
	}
	a := res.Chunks[0].Attempts[0]
	if !a.TimedOut {
		t.Fatalf("attempt = %+v", a)
	}
	tc := res.Report(cmd).Suites[0].Cases[0]
	if tc.Outcome() != junit.Errored || tc.Error.Type != "timeout" || !strings.Contains(tc.Error.Message, "--timeout") {
		t.Fatalf("timed-out case = %+v", tc)
	}
	if left := processesWith(t, "sleep 30; echo "+marker); len(left) > 0 {
		t.Fatalf("processes left after the timeout: %v", left)
	}
}

func TestInterruptStopsChunksAndSkipsTheRest(t *testing.T) {
	t.Parallel()

	marker := fmt.Sprintf("herd-interrupt-%d", time.Now().UnixNano())
	cmd := script(`sleep 30 # ` + marker)
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{}, 10)
	go func() {
		<-started
		<-started
		cancel()
	}()
	res, err := Run(ctx, Config{
		Command: cmd, Chunks: Chunks(targets("a", "b", "c", "d"), 1), Parallel: 2, StopGrace: time.Second,
		Progress: func(e Event) {
			if !e.Done {
				started <- struct{}{}
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Interrupted {
		t.Fatal("result not marked interrupted")
	}
	rep := res.Report(cmd)
	outcomes := map[string]int{}
	for _, s := range rep.Suites {
		for _, c := range s.Cases {
			outcomes[c.Outcome().String()]++
		}
	}
	if outcomes["error"] != 2 || outcomes["skipped"] != 2 {
		t.Fatalf("outcomes = %v, want 2 interrupted (error) and 2 not run (skipped)", outcomes)
	}
	if left := processesWith(t, marker); len(left) > 0 {
		t.Fatalf("processes left after the interrupt: %v", left)
	}
}

func TestTimingsRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "timings.json")
	got, err := LoadTimings(path)
	if err != nil || len(got) != 0 {
		t.Fatalf("missing file = %v, %v", got, err)
	}
	res := &Result{Chunks: []ChunkRun{{Chunk: Chunk{Targets: targets("a", "b")}, Attempts: []Attempt{{Duration: 4 * time.Second}}}}}
	res.UpdateTimings(got)
	if err := got.Save(path); err != nil {
		t.Fatal(err)
	}
	back, err := LoadTimings(path)
	if err != nil || back["https://a.example/"] != 2 || back["https://b.example/"] != 2 {
		t.Fatalf("timings = %v, %v", back, err)
	}
	if err := os.WriteFile(path, []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadTimings(path); err == nil {
		t.Fatal("a broken timings file loaded")
	}
}

func TestProgress(t *testing.T) {
	chunk := Chunk{ID: 0, Targets: targets("a")}
	passed := &ChunkRun{Chunk: chunk, Attempts: []Attempt{{ExitCode: 0, Duration: time.Second}}}
	flaky := &ChunkRun{Chunk: chunk, Attempts: []Attempt{{ExitCode: 1}, {ExitCode: 0, Duration: time.Second}}}
	failed := &ChunkRun{Chunk: chunk, Attempts: []Attempt{{ExitCode: 2}}}

	var plain strings.Builder
	p := NewProgress(&plain, false, 3)
	p.Event(Event{Chunk: chunk, Attempt: 1})
	p.Event(Event{Chunk: chunk, Attempt: 1, Done: true, Final: passed})
	p.Event(Event{Chunk: chunk, Attempt: 1})
	p.Event(Event{Chunk: chunk, Attempt: 1, Done: true})
	p.Event(Event{Chunk: chunk, Attempt: 2})
	p.Event(Event{Chunk: chunk, Attempt: 2, Done: true, Final: flaky})
	p.Event(Event{Chunk: chunk, Attempt: 1})
	p.Event(Event{Chunk: chunk, Attempt: 1, Done: true, Final: failed})
	p.Finish()
	want := "ok    a (attempt 1, 1s) [1/3]\nretry a (attempt 1 failed)\nFLAKY a (attempt 2, 1s) [2/3]\nFAIL  a (attempt 1, 0s) [3/3]\n"
	if plain.String() != want {
		t.Fatalf("plain progress:\n%s\nwant:\n%s", plain.String(), want)
	}

	var term strings.Builder
	p = NewProgress(&term, true, 2)
	p.Event(Event{Chunk: chunk, Attempt: 1})
	p.Event(Event{Chunk: chunk, Attempt: 1, Done: true, Final: failed})
	p.Finish()
	out := term.String()
	if !strings.Contains(out, "\r\033[K1/2 done · 1 failed · 0 flaky · 0 running · ETA ") || !strings.HasSuffix(out, "\n") || strings.Contains(out, "FAIL") {
		t.Fatalf("terminal progress = %q", out)
	}
}

func TestGridCapacity(t *testing.T) {
	grid := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if user, password, ok := r.BasicAuth(); !ok || user != "ci" || password != "pw" || r.URL.Path != "/wd/hub/status" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, `{"value":{"nodes":[
			{"availability":"UP","slots":[{"stereotype":{"browserName":"chrome"}},{"stereotype":{"browserName":"chrome"}},{"stereotype":{"browserName":"firefox"}}]},
			{"availability":"DRAINING","slots":[{"stereotype":{"browserName":"chrome"}}]}]}}`)
	}))
	t.Cleanup(grid.Close)
	authed := strings.Replace(grid.URL, "http://", "http://ci:pw@", 1) + "/wd/hub/"
	if n, err := GridCapacity(context.Background(), authed, "chrome"); err != nil || n != 2 {
		t.Fatalf("capacity = %d, %v; want the 2 chrome slots of the UP node", n, err)
	}
	if _, err := GridCapacity(context.Background(), grid.URL+"/wd/hub", "chrome"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("capacity without the password: %v", err)
	}
}
