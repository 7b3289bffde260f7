package junit

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

// What Node's built-in test runner writes with --test-reporter=junit:
// cases directly under <testsuites>, describe() blocks as nested suites.
const nodeReport = `<?xml version="1.0" encoding="utf-8"?>
<testsuites>
	<testcase name="finds form" time="0.002365" classname="test"/>
	<testcase name="fails" time="0.001708" classname="test" failure="1 == 2">
		<failure type="testCodeFailure" message="1 == 2">AssertionError: 1 == 2</failure>
	</testcase>
	<testsuite name="group" time="0.006171" tests="2" failures="0" skipped="1">
		<testcase name="inner" time="0.005315" classname="test"/>
		<testcase name="skipme" time="0.000228" classname="test"><skipped type="skipped" message="true"/></testcase>
	</testsuite>
</testsuites>`

// What pytest writes: one root suite named after the tool.
const pytestReport = `<?xml version="1.0" encoding="utf-8"?><testsuite name="pytest" errors="1" failures="0" skipped="0" tests="2" time="1,234.5" timestamp="2026-11-26T04:00:00"><testcase classname="test_login" name="test_form" time="0.5"/><testcase classname="test_login" name="test_boom" time="0.1"><error message="boom">Traceback</error></testcase></testsuite>`

func TestReadAndFlatten(t *testing.T) {
	rep, err := Read(strings.NewReader(nodeReport))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range rep.Flatten() {
		got = append(got, c.Name+"="+c.Outcome().String())
	}
	want := "finds form=passed, fails=failed, group > inner=passed, group > skipme=skipped"
	if strings.Join(got, ", ") != want {
		t.Fatalf("flattened = %v, want %s", got, want)
	}

	rep, err = Read(strings.NewReader(pytestReport))
	if err != nil {
		t.Fatal(err)
	}
	cases := rep.Flatten()
	if len(cases) != 2 || cases[0].Name != "test_form" || cases[1].Outcome() != Errored || cases[1].Error.Message != "boom" {
		t.Fatalf("pytest cases = %+v", cases)
	}
	if rep.Suites[0].Time != 1234.5 {
		t.Fatalf("time with a thousands separator = %v", rep.Suites[0].Time)
	}
}

func TestReadRejects(t *testing.T) {
	for _, in := range []string{"", "<html></html>", "<testsuite><testcase", `<testsuite name="x"><testcase time="soon"/></testsuite>`} {
		if _, err := Read(strings.NewReader(in)); err == nil {
			t.Errorf("Read(%q) succeeded", in)
		}
	}
}

func TestWriteRoundTripWithReruns(t *testing.T) {
	rep := &Report{Suites: []Suite{{
		Name: "https://example.com", Timestamp: "2026-11-26T04:00:00Z",
		Cases: []Case{
			{Name: "ok", Classname: "https://example.com", Time: 0.25},
			{Name: "flaky", Classname: "https://example.com", Time: 1,
				FlakyFailures: []Rerun{{Message: "timeout", Type: "exit", StackTrace: "line 1 & <2>", SystemOut: "out"}}},
			{Name: "broken", Classname: "https://example.com",
				Failure:       &Result{Message: "no form", Text: "details\x1b[31m"},
				RerunFailures: []Rerun{{Message: "no form again"}}},
			{Name: "skip", Skipped: &Result{Message: "not today"}},
		},
		SystemOut: "hello",
	}}}
	var buf bytes.Buffer
	if err := rep.Write(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		`<testsuites tests="4" failures="1" errors="0" skipped="1" time="1.250">`,
		`<testsuite name="https://example.com" tests="4" failures="1" errors="0" skipped="1" time="1.250" timestamp="2026-11-26T04:00:00Z">`,
		`<flakyFailure message="timeout" type="exit">`, `<stackTrace>line 1 &amp; &lt;2&gt;</stackTrace>`,
		`<rerunFailure message="no form again">`, `<system-out>hello</system-out>`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\x1b") {
		t.Error("a control character that XML 1.0 forbids was written")
	}
	back, err := Read(&buf)
	if err != nil {
		t.Fatal(err)
	}
	var outcomes []string
	for _, c := range back.Flatten() {
		outcomes = append(outcomes, c.Outcome().String())
	}
	if strings.Join(outcomes, " ") != "passed flaky failed skipped" {
		t.Fatalf("outcomes after a round trip = %v", outcomes)
	}
}

func TestMergeJoinsSameNamedSuites(t *testing.T) {
	a := &Report{Suites: []Suite{
		{Name: "site-a", Time: 2, Timestamp: "2026-11-26T04:00:02Z", Cases: []Case{{Name: "t1"}}, SystemOut: "a1"},
		{Name: "site-b", Cases: []Case{{Name: "t1", Failure: &Result{Message: "x"}}}},
	}}
	b := &Report{Suites: []Suite{
		{Name: "site-a", Time: 3, Timestamp: "2026-11-26T04:00:01Z", Cases: []Case{{Name: "t2"}}, SystemOut: "a2"},
		{Name: "site-c", Cases: []Case{{Name: "t1"}}},
	}}
	m := Merge(a, b)
	if len(m.Suites) != 3 || m.Suites[0].Name != "site-a" || m.Suites[1].Name != "site-b" || m.Suites[2].Name != "site-c" {
		t.Fatalf("suites = %+v", m.Suites)
	}
	sa := m.Suites[0]
	if len(sa.Cases) != 2 || sa.Time != 5 || sa.Timestamp != "2026-11-26T04:00:01Z" || sa.SystemOut != "a1\na2" {
		t.Fatalf("merged site-a = %+v", sa)
	}
	if m.Tests != 4 || m.Failures != 1 {
		t.Fatalf("totals = %+v", m.Totals)
	}
}

// BenchmarkMerge10000 merges and writes 10,000 test cases from 100 reports
// (target: under a second).
func BenchmarkMerge10000(b *testing.B) {
	var inputs [][]byte
	for r := range 100 {
		rep := &Report{}
		for s := range 10 {
			suite := Suite{Name: fmt.Sprintf("https://site-%d.example/", (r*10+s)%500)}
			for c := range 10 {
				tc := Case{Name: fmt.Sprintf("test %d", c), Classname: suite.Name, Time: Seconds(c)}
				if c == 3 {
					tc.Failure = &Result{Message: "no login form", Text: strings.Repeat("stack line\n", 20)}
				}
				suite.Cases = append(suite.Cases, tc)
			}
			rep.Suites = append(rep.Suites, suite)
		}
		var buf bytes.Buffer
		if err := rep.Write(&buf); err != nil {
			b.Fatal(err)
		}
		inputs = append(inputs, buf.Bytes())
	}
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		var reps []*Report
		for _, in := range inputs {
			rep, err := Read(bytes.NewReader(in))
			if err != nil {
				b.Fatal(err)
			}
			reps = append(reps, rep)
		}
		m := Merge(reps...)
		if m.Tests != 10000 {
			b.Fatalf("merged %d cases", m.Tests)
		}
		if err := m.Write(&bytes.Buffer{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(time.Since(start).Milliseconds())/float64(b.N), "ms/merge")
}
