package fanout

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"sort"
	"strings"
	"unicode"
)

// Target is one line of a targets file: what the test runs against (a URL
// or any string) and the name it has in reports.
type Target struct {
	Value string `json:"target"`
	Name  string `json:"name"`
}

// ReadTargets parses a targets file: one target a line, its first field the
// target and the rest of the line, if any, its display name. Blank lines and
// lines starting with # are skipped. Two targets with the same name are an
// error, since their reports would merge.
func ReadTargets(r io.Reader) ([]Target, error) {
	var out []Target
	seen := map[string]int{}
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		t := Target{Value: text, Name: text}
		if i := strings.IndexFunc(text, unicode.IsSpace); i >= 0 {
			t.Value, t.Name = text[:i], strings.TrimSpace(text[i:])
		}
		if first, dup := seen[t.Name]; dup {
			return nil, fmt.Errorf("line %d: target name %q is already used on line %d", line, t.Name, first)
		}
		seen[t.Name] = line
		out = append(out, t)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, errors.New("no targets: the file has no lines other than blanks and # comments")
	}
	return out, nil
}

// Chunk is the targets one process runs (one, or --batch of them).
type Chunk struct {
	ID      int
	Targets []Target
}

// Chunks splits targets into chunks of batch targets each, in file order.
func Chunks(targets []Target, batch int) []Chunk {
	batch = max(batch, 1)
	var out []Chunk
	for i := 0; i < len(targets); i += batch {
		out = append(out, Chunk{ID: len(out), Targets: targets[i:min(i+batch, len(targets))]})
	}
	return out
}

// Timings are recorded durations in seconds per target, from earlier runs
// (--timings). They order the work longest first and balance shards.
type Timings map[string]float64

// LoadTimings reads a timings file; a missing file is no timings.
func LoadTimings(path string) (Timings, error) {
	t := Timings{}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return t, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("timings file %s: %w", path, err)
	}
	return t, nil
}

// Save writes the timings as JSON through a temporary file.
func (t Timings) Save(path string) error {
	b, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// estimator guesses a chunk's duration: the sum of its targets' recorded
// times, a target never timed counting as the median of those that were
// (or 1 s when none was).
type estimator struct {
	timings Timings
	unknown float64
}

func newEstimator(t Timings) estimator {
	var known []float64
	for _, v := range t {
		if v >= 0 && !math.IsInf(v, 0) && !math.IsNaN(v) {
			known = append(known, v)
		}
	}
	e := estimator{timings: t, unknown: 1}
	if len(known) > 0 {
		sort.Float64s(known)
		e.unknown = known[len(known)/2]
	}
	return e
}

func (e estimator) estimate(c Chunk) float64 {
	sum := 0.0
	for _, t := range c.Targets {
		if v, ok := e.timings[t.Value]; ok && v >= 0 {
			sum += v
		} else {
			sum += e.unknown
		}
	}
	return sum
}

// longestFirst orders chunks by estimated duration, longest first (ties in
// file order): with pull-based workers that keeps the makespan near total
// work divided by workers.
func longestFirst(chunks []Chunk, e estimator) []Chunk {
	out := append([]Chunk(nil), chunks...)
	sort.SliceStable(out, func(i, j int) bool { return e.estimate(out[i]) > e.estimate(out[j]) })
	return out
}

// Shard returns the chunks of shard index (0-based) of total: chunks go,
// longest first, to the shard with the least estimated work so far (ties to
// the lower index). Every machine computes the same split from the same
// targets and timings.
func Shard(chunks []Chunk, timings Timings, index, total int) []Chunk {
	e := newEstimator(timings)
	load := make([]float64, total)
	var out []Chunk
	for _, c := range longestFirst(chunks, e) {
		best := 0
		for i := range load {
			if load[i] < load[best] {
				best = i
			}
		}
		load[best] += e.estimate(c)
		if best == index {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
