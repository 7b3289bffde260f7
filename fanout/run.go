// Package fanout runs one test command against many targets (websites) in
// parallel on a WebDriver grid, and turns what the runs report into one JUnit
// report. Each chunk (one target, or a batch of them) is a process of its
// own, started with the target and the grid in its environment. Free workers
// pull the next chunk, longest first by recorded timings; failed chunks are
// retried, and a chunk that passed on a retry is reported as flaky, not as
// a failure or as a duplicate test.
package fanout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/herd-ml/herd/internal/procgroup"
	"github.com/herd-ml/herd/junit"
)

// Config configures a run. Command and Chunks are required.
type Config struct {
	// Command is the program and its arguments. In arguments, {target},
	// {name} and {report} are replaced by the chunk's (first) target, its
	// display name and HERD_REPORT.
	Command []string
	// Chunks are what to run (see Chunks and Shard).
	Chunks []Chunk
	// Parallel is how many chunks run at once; default 1.
	Parallel int
	// Retries is how many times a failed chunk runs again.
	Retries int
	// Timeout kills a chunk's attempt that runs longer; 0 means no limit.
	Timeout time.Duration
	// Grid is the WebDriver grid the chunks use; "" runs them without one.
	Grid string
	// Shard and Shards are this run's 0-based shard and the number of
	// shards (Bazel's TEST_SHARD_INDEX, TEST_TOTAL_SHARDS); Shards 0 means
	// the run is not sharded.
	Shard, Shards int
	// Timings order the chunks longest first; nil runs them in file order.
	Timings Timings
	// StopGrace is how long an interrupted or timed-out chunk's process
	// group has between SIGTERM and SIGKILL; default 5 s.
	StopGrace time.Duration
	// OutputLimit caps each attempt's kept stdout and stderr; default 64 KiB.
	OutputLimit int
	// Env is added to every chunk's environment (after os.Environ()).
	Env []string
	// Progress, when set, is told of chunks starting and ending.
	Progress func(Event)
	// Logger receives run events; nil discards them.
	Logger *slog.Logger
}

// Event is a chunk starting or ending, for progress displays.
type Event struct {
	Chunk   Chunk
	Attempt int
	Done    bool      // the attempt ended
	Final   *ChunkRun // set when the chunk will not run again
}

// Result is what a run did.
type Result struct {
	Start, End  time.Time
	Chunks      []ChunkRun // in chunk order
	Interrupted bool
}

// ChunkRun is one chunk's attempts.
type ChunkRun struct {
	Chunk    Chunk
	Attempts []Attempt
}

// Attempt is one run of a chunk's command.
type Attempt struct {
	Number      int           `json:"attempt"` // 1-based
	Start       time.Time     `json:"start"`
	Duration    time.Duration `json:"durationNs"`
	ExitCode    int           `json:"exitCode"` // -1 when killed or never started
	TimedOut    bool          `json:"timedOut,omitempty"`
	Interrupted bool          `json:"interrupted,omitempty"`
	// StartError says why the command could not start.
	StartError string `json:"startError,omitempty"`
	// Report is the JUnit XML the attempt wrote to HERD_REPORT, if any;
	// ReportError says why it could not be read.
	Report      *junit.Report `json:"-"`
	ReportError string        `json:"reportError,omitempty"`
	// LeftSessions counts grid sessions the attempt left open (herd ended them).
	LeftSessions   int    `json:"leftSessions,omitempty"`
	Stdout, Stderr string `json:"-"`
}

// Passed reports whether the attempt succeeded: exit status 0 and no
// failed or errored case in its report.
func (a *Attempt) Passed() bool {
	if a.ExitCode != 0 || a.TimedOut || a.Interrupted || a.StartError != "" || a.ReportError != "" {
		return false
	}
	if a.Report != nil {
		a.Report.Recount()
		return a.Report.Failures == 0 && a.Report.Errors == 0
	}
	return true
}

// Passed reports whether the chunk's last attempt passed.
func (c *ChunkRun) Passed() bool {
	return len(c.Attempts) > 0 && c.Attempts[len(c.Attempts)-1].Passed()
}

// Run runs every chunk and returns what happened. When ctx ends, running
// chunks are stopped (SIGTERM to their process groups, then SIGKILL), the
// grid sessions they left are ended, chunks not started are left out, and
// Result.Interrupted is set.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if len(cfg.Command) == 0 {
		return nil, errors.New("no command to run")
	}
	cfg.Parallel = max(cfg.Parallel, 1)
	if cfg.StopGrace <= 0 {
		cfg.StopGrace = 5 * time.Second
	}
	if cfg.OutputLimit <= 0 {
		cfg.OutputLimit = 64 << 10
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	work, err := os.MkdirTemp("", "herd-run-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	r := &runner{cfg: cfg, work: work}
	if cfg.Grid != "" {
		if r.proxy, err = startGridProxy(cfg.Grid); err != nil {
			return nil, err
		}
		defer r.proxy.close()
	}

	order := cfg.Chunks
	if cfg.Timings != nil {
		order = longestFirst(cfg.Chunks, newEstimator(cfg.Timings))
	}
	res := &Result{Start: time.Now(), Chunks: make([]ChunkRun, len(cfg.Chunks))}
	index := make(map[int]int, len(cfg.Chunks))
	for i, c := range cfg.Chunks {
		index[c.ID] = i
		res.Chunks[i].Chunk = c
	}
	next := make(chan Chunk)
	var wg sync.WaitGroup
	for range cfg.Parallel {
		wg.Go(func() {
			for c := range next {
				res.Chunks[index[c.ID]] = r.runChunk(ctx, c)
			}
		})
	}
feed:
	for _, c := range order {
		select {
		case next <- c:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	res.End = time.Now()
	res.Interrupted = ctx.Err() != nil
	return res, nil
}

type runner struct {
	cfg   Config
	work  string
	proxy *gridProxy
}

// runChunk runs c until it passes or its retries are spent.
func (r *runner) runChunk(ctx context.Context, c Chunk) ChunkRun {
	run := ChunkRun{Chunk: c}
	for n := 1; n <= 1+r.cfg.Retries; n++ {
		if ctx.Err() != nil && n > 1 {
			break
		}
		r.event(Event{Chunk: c, Attempt: n})
		a := r.attempt(ctx, c, n)
		run.Attempts = append(run.Attempts, a)
		final := a.Passed() || a.Interrupted || n == 1+r.cfg.Retries
		ev := Event{Chunk: c, Attempt: n, Done: true}
		if final {
			ev.Final = &run
		}
		r.event(ev)
		if final {
			break
		}
	}
	return run
}

func (r *runner) event(e Event) {
	if r.cfg.Progress != nil {
		r.cfg.Progress(e)
	}
}

// attempt runs c's command once.
func (r *runner) attempt(ctx context.Context, c Chunk, n int) Attempt {
	a := Attempt{Number: n, Start: time.Now(), ExitCode: -1}
	key := fmt.Sprintf("%d-%d", c.ID, n)
	dir := filepath.Join(r.work, key)
	if err := os.Mkdir(dir, 0o755); err != nil {
		a.StartError = err.Error()
		return a
	}
	report := filepath.Join(dir, "report.xml")
	targetsFile := filepath.Join(dir, "targets.txt")
	var list strings.Builder
	for _, t := range c.Targets {
		fmt.Fprintf(&list, "%s %s\n", t.Value, t.Name)
	}
	if err := os.WriteFile(targetsFile, []byte(list.String()), 0o644); err != nil {
		a.StartError = err.Error()
		return a
	}
	first := c.Targets[0]
	args := make([]string, len(r.cfg.Command))
	for i, arg := range r.cfg.Command {
		args[i] = strings.NewReplacer("{target}", first.Value, "{name}", first.Name, "{report}", report).Replace(arg)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.SysProcAttr = procgroup.Attr()
	env := append(os.Environ(), r.cfg.Env...)
	env = append(env,
		"HERD_TARGETS="+targetsFile,
		"HERD_REPORT="+report,
		"HERD_ATTEMPT="+strconv.Itoa(n),
		"HERD_CHUNK="+strconv.Itoa(c.ID),
	)
	if len(c.Targets) == 1 {
		env = append(env, "HERD_TARGET="+first.Value, "HERD_TARGET_NAME="+first.Name)
	}
	if r.proxy != nil {
		env = append(env, "SELENIUM_REMOTE_URL="+r.proxy.URL(key))
	}
	if r.cfg.Shards > 0 {
		env = append(env, "TEST_SHARD_INDEX="+strconv.Itoa(r.cfg.Shard), "TEST_TOTAL_SHARDS="+strconv.Itoa(r.cfg.Shards))
	}
	cmd.Env = env
	stdout, stderr := newTailBuffer(r.cfg.OutputLimit), newTailBuffer(r.cfg.OutputLimit)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		a.StartError = err.Error()
		a.Duration = time.Since(a.Start)
		return a
	}
	r.cfg.Logger.Debug("run.chunk_started", "chunk", c.ID, "attempt", n, "target", first.Name, "pid", cmd.Process.Pid)

	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var timeout <-chan time.Time
	if r.cfg.Timeout > 0 {
		timer := time.NewTimer(r.cfg.Timeout)
		defer timer.Stop()
		timeout = timer.C
	}
	var err error
	select {
	case err = <-exited:
	case <-timeout:
		a.TimedOut = true
		err = r.stop(cmd, exited)
	case <-ctx.Done():
		a.Interrupted = true
		err = r.stop(cmd, exited)
	}
	// The process is gone, but what it spawned may not be.
	procgroup.Kill(cmd)
	a.Duration = time.Since(a.Start)
	var exit *exec.ExitError
	switch {
	case err == nil:
		a.ExitCode = 0
	case errors.As(err, &exit):
		a.ExitCode = exit.ExitCode()
	}
	a.Stdout, a.Stderr = stdout.String(), stderr.String()
	if r.proxy != nil {
		cleanup, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		a.LeftSessions = r.proxy.endSessions(cleanup, key)
		cancel()
	}
	if _, statErr := os.Stat(report); statErr == nil {
		rep, err := junit.ReadFile(report)
		if err != nil {
			a.ReportError = err.Error()
		} else {
			a.Report = rep
		}
	}
	return a
}

// stop asks the process group to end, then kills it after the grace time.
func (r *runner) stop(cmd *exec.Cmd, exited <-chan error) error {
	procgroup.Signal(cmd, syscall.SIGTERM)
	select {
	case err := <-exited:
		return err
	case <-time.After(r.cfg.StopGrace):
		procgroup.Kill(cmd)
		return <-exited
	}
}

// tailBuffer keeps the last limit bytes written to it and counts the rest.
type tailBuffer struct {
	mu      sync.Mutex
	limit   int
	buf     []byte
	dropped int64
}

func newTailBuffer(limit int) *tailBuffer { return &tailBuffer{limit: limit} }

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.limit; over > 0 {
		b.dropped += int64(over)
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.dropped > 0 {
		return fmt.Sprintf("[… %d earlier bytes left out …]\n%s", b.dropped, b.buf)
	}
	return string(b.buf)
}
