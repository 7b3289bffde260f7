package fanout

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/herd-ml/herd/junit"
)

// Report builds the merged JUnit report: one suite per target, in chunk
// order, holding the cases the chunk reported (classname = the target), or
// one case named after the command when it wrote no report. Retries fold
// into each case Surefire's way.
func (res *Result) Report(command []string) *junit.Report {
	name := commandName(command)
	rep := &junit.Report{}
	for _, cr := range res.Chunks {
		rep.Suites = append(rep.Suites, chunkSuites(cr, name)...)
	}
	rep.Recount()
	return rep
}

// commandName names the one case of a chunk that wrote no report.
func commandName(command []string) string {
	parts := append([]string{filepath.Base(command[0])}, command[1:]...)
	s := strings.Join(parts, " ")
	if len(s) > 100 {
		s = s[:97] + "..."
	}
	return s
}

func chunkSuites(cr ChunkRun, name string) []junit.Suite {
	c := cr.Chunk
	if len(cr.Attempts) == 0 {
		var out []junit.Suite
		for _, t := range c.Targets {
			out = append(out, junit.Suite{Name: t.Name, Cases: []junit.Case{{
				Name: name, Classname: t.Value, Skipped: &junit.Result{Message: "not run: the run was interrupted"},
			}}})
		}
		return out
	}
	// Each attempt's cases, per target; the last slot holds cases of a
	// batch that name no target.
	perAttempt := make([][][]junit.Case, len(cr.Attempts))
	for i := range cr.Attempts {
		perAttempt[i] = attemptCases(&cr.Attempts[i], c, name)
	}
	first, final := cr.Attempts[0], cr.Attempts[len(cr.Attempts)-1]
	suite := func(suiteName, classname string, slot int) junit.Suite {
		history := make([][]junit.Case, len(cr.Attempts))
		for i := range cr.Attempts {
			history[i] = perAttempt[i][slot]
		}
		return junit.Suite{
			Name:      suiteName,
			Time:      junit.Seconds(final.Duration.Seconds()),
			Timestamp: first.Start.UTC().Format("2006-01-02T15:04:05"),
			Properties: []junit.Property{
				{Name: "herd.target", Value: classname},
				{Name: "herd.attempts", Value: strconv.Itoa(len(cr.Attempts))},
			},
			Cases:     foldRetries(history),
			SystemOut: final.Stdout,
			SystemErr: final.Stderr,
		}
	}
	var out []junit.Suite
	for i, t := range c.Targets {
		out = append(out, suite(t.Name, t.Value, i))
	}
	unassigned := false
	for _, cases := range perAttempt {
		unassigned = unassigned || len(cases[len(c.Targets)]) > 0
	}
	if unassigned {
		var names []string
		for _, t := range c.Targets {
			names = append(names, t.Name)
		}
		batch := "batch: " + strings.Join(names, ", ")
		out = append(out, suite(batch, batch, len(c.Targets)))
	}
	return out
}

// attemptCases turns one attempt into cases per target (index i for
// c.Targets[i], and one more slot for a batch's cases that name no target).
func attemptCases(a *Attempt, c Chunk, name string) [][]junit.Case {
	out := make([][]junit.Case, len(c.Targets)+1)
	everyTarget := func(tc junit.Case) {
		for i, t := range c.Targets {
			tc.Classname = t.Value
			out[i] = append(out[i], tc)
		}
	}
	took := junit.Seconds(a.Duration.Seconds())
	if a.StartError != "" {
		everyTarget(junit.Case{Name: name, Time: took, Error: &junit.Result{Type: "start", Message: "could not start the command: " + a.StartError}})
		return out
	}
	failed := false
	if a.Report != nil {
		for _, tc := range assign(a.Report, c, out) {
			failed = failed || tc.Outcome().Failing()
		}
	}
	switch {
	case a.TimedOut:
		everyTarget(junit.Case{Name: name, Time: took, Error: &junit.Result{Type: "timeout", Message: fmt.Sprintf("timed out after %s (--timeout); killed", a.Duration.Round(100e6))}})
	case a.Interrupted:
		everyTarget(junit.Case{Name: name, Time: took, Error: &junit.Result{Type: "interrupted", Message: "interrupted: herd run was stopped"}})
	case a.ReportError != "":
		everyTarget(junit.Case{Name: name, Time: took, Error: &junit.Result{Type: "report", Message: "HERD_REPORT is not valid JUnit XML: " + a.ReportError}})
	case a.Report == nil:
		tc := junit.Case{Name: name, Time: took}
		if a.ExitCode != 0 {
			tc.Failure = &junit.Result{Type: "exit", Message: fmt.Sprintf("exited with status %d", a.ExitCode), Text: lastLines(a.Stderr, 30)}
		}
		everyTarget(tc)
	case a.ExitCode != 0 && !failed:
		everyTarget(junit.Case{Name: name, Time: took, Error: &junit.Result{Type: "exit", Message: fmt.Sprintf("exited with status %d, though its report shows no failure", a.ExitCode), Text: lastLines(a.Stderr, 30)}})
	}
	return out
}

// assign files a chunk's reported cases under its targets: all of them for
// a single target; in a batch, by a top-level suite or a classname equal to
// a target's value or name, the rest in the last slot. It returns every
// case it filed.
func assign(rep *junit.Report, c Chunk, out [][]junit.Case) []junit.Case {
	find := func(s string) int {
		for i, t := range c.Targets {
			if s == t.Value || s == t.Name {
				return i
			}
		}
		return -1
	}
	var all []junit.Case
	file := func(i int, tc junit.Case) {
		if i < 0 {
			i = len(c.Targets)
		} else {
			tc.Classname = c.Targets[i].Value
		}
		out[i] = append(out[i], tc)
		all = append(all, tc)
	}
	if len(c.Targets) == 1 {
		for _, tc := range rep.Flatten() {
			file(0, tc)
		}
		return all
	}
	for _, tc := range rep.Cases {
		file(find(tc.Classname), tc)
	}
	for _, s := range rep.Suites {
		bySuite := find(s.Name)
		for _, tc := range (&junit.Report{Suites: []junit.Suite{s}}).Flatten() {
			if bySuite >= 0 {
				file(bySuite, tc)
			} else {
				file(find(tc.Classname), tc)
			}
		}
	}
	return all
}

// foldRetries merges one target's cases from every attempt into the final
// attempt's cases: a case that failed before and passes now gets the
// earlier failures as <flakyFailure>/<flakyError>; one that fails now gets
// its first failure as <failure>/<error> and the later ones as
// <rerunFailure>/<rerunError>. Failures of cases the final attempt no
// longer has are kept as flaky failures of its first case.
func foldRetries(history [][]junit.Case) []junit.Case {
	final := append([]junit.Case(nil), history[len(history)-1]...)
	if len(history) == 1 {
		return final
	}
	byName := map[string]int{}
	for i, tc := range final {
		byName[tc.Name] = i
	}
	var orphans []junit.Rerun
	fails := make([][]*junit.Case, len(final)) // failing runs of each final case, in order
	for _, cases := range history {
		for _, tc := range cases {
			if !tc.Outcome().Failing() {
				continue
			}
			i, ok := byName[tc.Name]
			if !ok {
				r := rerunOf(&tc)
				r.Message = tc.Name + ": " + r.Message
				orphans = append(orphans, r)
				continue
			}
			fails[i] = append(fails[i], &tc)
		}
	}
	for i := range final {
		tc := &final[i]
		runs := fails[i]
		if len(runs) == 0 {
			continue
		}
		if !tc.Outcome().Failing() {
			for _, r := range runs {
				if r.Error != nil {
					tc.FlakyErrors = append(tc.FlakyErrors, rerunOf(r))
				} else {
					tc.FlakyFailures = append(tc.FlakyFailures, rerunOf(r))
				}
			}
			continue
		}
		tc.Failure, tc.Error = runs[0].Failure, runs[0].Error
		for _, r := range runs[1:] {
			if r.Error != nil {
				tc.RerunErrors = append(tc.RerunErrors, rerunOf(r))
			} else {
				tc.RerunFailures = append(tc.RerunFailures, rerunOf(r))
			}
		}
	}
	if len(orphans) > 0 && len(final) > 0 && !final[0].Outcome().Failing() {
		final[0].FlakyFailures = append(final[0].FlakyFailures, orphans...)
	}
	return final
}

func rerunOf(tc *junit.Case) junit.Rerun {
	r := tc.Problem()
	return junit.Rerun{Message: r.Message, Type: r.Type, StackTrace: r.Text, SystemOut: tc.SystemOut, SystemErr: tc.SystemErr}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// WriteAttempts writes every attempt of every chunk as JSON, for tools and
// for a look at what each retry did.
func (res *Result) WriteAttempts(path string) error {
	type chunkJSON struct {
		Chunk    int       `json:"chunk"`
		Targets  []Target  `json:"targets"`
		Passed   bool      `json:"passed"`
		Attempts []Attempt `json:"attempts"`
	}
	out := struct {
		Start       string      `json:"start"`
		End         string      `json:"end"`
		Interrupted bool        `json:"interrupted"`
		Chunks      []chunkJSON `json:"chunks"`
	}{Start: res.Start.UTC().Format("2006-01-02T15:04:05.000Z"), End: res.End.UTC().Format("2006-01-02T15:04:05.000Z"), Interrupted: res.Interrupted}
	for _, cr := range res.Chunks {
		out.Chunks = append(out.Chunks, chunkJSON{Chunk: cr.Chunk.ID, Targets: cr.Chunk.Targets, Passed: cr.Passed(), Attempts: cr.Attempts})
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// UpdateTimings records each finished chunk's duration (its last attempt's,
// shared among its targets) into t.
func (res *Result) UpdateTimings(t Timings) {
	for _, cr := range res.Chunks {
		if len(cr.Attempts) == 0 {
			continue
		}
		a := cr.Attempts[len(cr.Attempts)-1]
		if a.Interrupted || a.StartError != "" {
			continue
		}
		per := a.Duration.Seconds() / float64(len(cr.Chunk.Targets))
		for _, tg := range cr.Chunk.Targets {
			t[tg.Value] = per
		}
	}
}

// Summary writes the totals and, for each failed case, its target, name,
// message and the first lines of its details.
func Summary(w io.Writer, rep *junit.Report) {
	var passed, flaky, failed, skipped int
	var failures []string
	for _, s := range rep.Suites {
		for _, tc := range s.Cases {
			switch tc.Outcome() {
			case junit.Passed:
				passed++
			case junit.Flaky:
				flaky++
			case junit.Skipped:
				skipped++
			default:
				failed++
				r := tc.Problem()
				msg := fmt.Sprintf("FAIL %s — %s: %s", s.Name, tc.Name, r.Message)
				if details := firstLines(r.Text, 5); details != "" {
					msg += "\n    " + strings.ReplaceAll(details, "\n", "\n    ")
				}
				failures = append(failures, msg)
			}
		}
	}
	for _, f := range failures {
		fmt.Fprintln(w, f)
	}
	fmt.Fprintf(w, "%d targets: %d tests passed, %d flaky (passed on a retry), %d failed, %d skipped or not run\n",
		len(rep.Suites), passed, flaky, failed, skipped)
}

func firstLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = append(lines[:n], "…")
	}
	return strings.Join(lines, "\n")
}
