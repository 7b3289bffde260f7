// Package junit reads, merges and writes JUnit XML test reports in the
// subset that Jenkins, GitLab and GitHub reporters agree on, with Maven
// Surefire's elements for reruns: a test that failed and then passed holds
// <flakyFailure> elements, one that failed every time holds a <failure> and
// <rerunFailure> elements, so one test is always one <testcase>.
package junit

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// Report is a <testsuites> document.
type Report struct {
	XMLName xml.Name `xml:"testsuites"`
	Name    string   `xml:"name,attr,omitempty"`
	Totals
	Time   Seconds `xml:"time,attr"`
	Suites []Suite `xml:"testsuite"`
	// Cases directly under <testsuites> occur in some reporters' output
	// (Node's, for one); Read keeps them, Write never produces them.
	Cases []Case `xml:"testcase"`
}

// Suite is a <testsuite>.
type Suite struct {
	Name string `xml:"name,attr"`
	Totals
	Time       Seconds    `xml:"time,attr"`
	Timestamp  string     `xml:"timestamp,attr,omitempty"`
	Hostname   string     `xml:"hostname,attr,omitempty"`
	Properties []Property `xml:"properties>property,omitempty"`
	Cases      []Case     `xml:"testcase"`
	Suites     []Suite    `xml:"testsuite"` // nested suites, as some reporters write them
	SystemOut  string     `xml:"system-out,omitempty"`
	SystemErr  string     `xml:"system-err,omitempty"`
}

// Totals are a report's or suite's counts, one per case (a flaky case
// counts as passed).
type Totals struct {
	Tests    int `xml:"tests,attr"`
	Failures int `xml:"failures,attr"`
	Errors   int `xml:"errors,attr"`
	Skipped  int `xml:"skipped,attr"`
}

func (t *Totals) add(o Totals) {
	t.Tests += o.Tests
	t.Failures += o.Failures
	t.Errors += o.Errors
	t.Skipped += o.Skipped
}

func (t *Totals) count(c *Case) {
	t.Tests++
	switch c.Outcome() {
	case Failed:
		t.Failures++
	case Errored:
		t.Errors++
	case Skipped:
		t.Skipped++
	}
}

// Property is a <property name value>.
type Property struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

// Case is a <testcase>.
type Case struct {
	Name      string  `xml:"name,attr"`
	Classname string  `xml:"classname,attr"`
	Time      Seconds `xml:"time,attr"`
	Failure   *Result `xml:"failure"`
	Error     *Result `xml:"error"`
	Skipped   *Result `xml:"skipped"`
	// Surefire's rerun elements.
	FlakyFailures []Rerun `xml:"flakyFailure"`
	FlakyErrors   []Rerun `xml:"flakyError"`
	RerunFailures []Rerun `xml:"rerunFailure"`
	RerunErrors   []Rerun `xml:"rerunError"`
	SystemOut     string  `xml:"system-out,omitempty"`
	SystemErr     string  `xml:"system-err,omitempty"`
}

// Result is a <failure>, <error> or <skipped>.
type Result struct {
	Message string `xml:"message,attr,omitempty"`
	Type    string `xml:"type,attr,omitempty"`
	Text    string `xml:",chardata"`
}

// Rerun is one earlier (flaky) or later (rerun) failed attempt of a test.
type Rerun struct {
	Message    string `xml:"message,attr,omitempty"`
	Type       string `xml:"type,attr,omitempty"`
	StackTrace string `xml:"stackTrace,omitempty"`
	SystemOut  string `xml:"system-out,omitempty"`
	SystemErr  string `xml:"system-err,omitempty"`
}

// Outcome is what became of a test case.
type Outcome int

// The outcomes, worst last.
const (
	Passed Outcome = iota
	Skipped
	Flaky // failed, then passed on a retry
	Failed
	Errored
)

func (o Outcome) String() string {
	return [...]string{"passed", "skipped", "flaky", "failed", "error"}[o]
}

// Failing reports whether o is a failure or an error.
func (o Outcome) Failing() bool { return o == Failed || o == Errored }

// Problem returns the case's <failure>, else its <error>, else nil.
func (c *Case) Problem() *Result {
	if c.Failure != nil {
		return c.Failure
	}
	return c.Error
}

// Outcome reports the case's outcome.
func (c *Case) Outcome() Outcome {
	switch {
	case c.Error != nil:
		return Errored
	case c.Failure != nil:
		return Failed
	case len(c.FlakyFailures) > 0 || len(c.FlakyErrors) > 0:
		return Flaky
	case c.Skipped != nil:
		return Skipped
	}
	return Passed
}

// Seconds is a duration attribute, written with millisecond precision.
type Seconds float64

// MarshalXMLAttr writes s as seconds with three decimals.
func (s Seconds) MarshalXMLAttr(name xml.Name) (xml.Attr, error) {
	return xml.Attr{Name: name, Value: strconv.FormatFloat(float64(s), 'f', 3, 64)}, nil
}

// UnmarshalXMLAttr reads seconds, tolerating thousands separators and an
// empty value, as some reporters write them.
func (s *Seconds) UnmarshalXMLAttr(attr xml.Attr) error {
	v := strings.ReplaceAll(strings.TrimSpace(attr.Value), ",", "")
	if v == "" {
		*s = 0
		return nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return fmt.Errorf("time %q: %w", attr.Value, err)
	}
	*s = Seconds(f)
	return nil
}

// Read parses a report whose root is <testsuites> or a single <testsuite>.
func Read(r io.Reader) (*Report, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	dec := xml.NewDecoder(bytes.NewReader(data))
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil, fmt.Errorf("no <testsuites> or <testsuite> element")
		}
		if err != nil {
			return nil, err
		}
		start, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		switch start.Name.Local {
		case "testsuites":
			var rep Report
			if err := dec.DecodeElement(&rep, &start); err != nil {
				return nil, err
			}
			return &rep, nil
		case "testsuite":
			var s Suite
			if err := dec.DecodeElement(&s, &start); err != nil {
				return nil, err
			}
			return &Report{Suites: []Suite{s}}, nil
		default:
			return nil, fmt.Errorf("root element is <%s>, not <testsuites> or <testsuite>", start.Name.Local)
		}
	}
}

// ReadFile reads the report at path.
func ReadFile(path string) (*Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rep, err := Read(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return rep, nil
}

// Recount sets every suite's and the report's totals from their cases.
func (r *Report) Recount() {
	r.Totals, r.Time = Totals{}, 0
	for i := range r.Suites {
		s := &r.Suites[i]
		s.recount()
		r.add(s.Totals)
		r.Time += s.Time
	}
	for i := range r.Cases {
		r.count(&r.Cases[i])
		r.Time += r.Cases[i].Time
	}
}

func (s *Suite) recount() {
	s.Totals = Totals{}
	var sum Seconds
	for i := range s.Suites {
		n := &s.Suites[i]
		n.recount()
		s.add(n.Totals)
		sum += n.Time
	}
	for i := range s.Cases {
		s.count(&s.Cases[i])
		sum += s.Cases[i].Time
	}
	// A suite's own time (wall clock) may exceed its cases' sum; keep it.
	s.Time = max(s.Time, sum)
}

// Write writes the report with an XML header, totals recounted.
func (r *Report) Write(w io.Writer) error {
	r.Recount()
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(r); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// WriteFile writes the report to path through a temporary file, so a
// reader never sees half a report.
func (r *Report) WriteFile(path string) error {
	var buf bytes.Buffer
	if err := r.Write(&buf); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Merge combines reports into one: suites with the same name become one
// suite holding all their cases, in first-seen order; loose cases (directly
// under <testsuites>) are kept as they are.
func Merge(reports ...*Report) *Report {
	out := &Report{}
	index := map[string]int{}
	for _, r := range reports {
		out.Cases = append(out.Cases, r.Cases...)
		for _, s := range r.Suites {
			i, seen := index[s.Name]
			if !seen {
				index[s.Name] = len(out.Suites)
				out.Suites = append(out.Suites, s)
				continue
			}
			m := &out.Suites[i]
			m.Cases = append(m.Cases, s.Cases...)
			m.Suites = append(m.Suites, s.Suites...)
			m.Properties = append(m.Properties, s.Properties...)
			m.Time += s.Time
			if s.Timestamp != "" && (m.Timestamp == "" || s.Timestamp < m.Timestamp) {
				m.Timestamp = s.Timestamp
			}
			m.SystemOut = joinOutput(m.SystemOut, s.SystemOut)
			m.SystemErr = joinOutput(m.SystemErr, s.SystemErr)
		}
	}
	out.Recount()
	return out
}

func joinOutput(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return strings.TrimRight(a, "\n") + "\n" + b
}

// Flatten returns every case of r in document order, each named with the
// suites around it ("group > test") so that cases of different suites stay
// apart. A lone root suite (pytest's "pytest", mocha's "Mocha Tests") names
// the tool, not a group, and is left out.
func (r *Report) Flatten() []Case {
	out := append([]Case(nil), r.Cases...)
	if len(r.Suites) == 1 && len(r.Cases) == 0 {
		return r.Suites[0].flatten(out, "")
	}
	for _, s := range r.Suites {
		out = s.flatten(out, s.Name+" > ")
	}
	return out
}

func (s *Suite) flatten(out []Case, prefix string) []Case {
	for _, c := range s.Cases {
		c.Name = prefix + c.Name
		out = append(out, c)
	}
	for _, n := range s.Suites {
		out = n.flatten(out, prefix+n.Name+" > ")
	}
	return out
}
