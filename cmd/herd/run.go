package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/herd-ml/herd/fanout"
	"github.com/herd-ml/herd/junit"
)

// RunCommand is `herd run`.
type RunCommand struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Terminal says Stderr is a terminal, for the live progress line.
	Terminal bool
}

// Run runs the command after -- once per chunk of targets.
func (c *RunCommand) Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("herd run", flag.ContinueOnError)
	fs.SetOutput(c.Stderr)
	defaultGrid := os.Getenv("SELENIUM_REMOTE_URL")
	if defaultGrid == "" {
		defaultGrid = "http://localhost:4444"
	}
	grid := fs.String("grid", defaultGrid, "the WebDriver grid; chunks get it as SELENIUM_REMOTE_URL (default $SELENIUM_REMOTE_URL, else http://localhost:4444)")
	targetsFile := fs.String("targets", "", "file of targets, one a line: TARGET [display name]; - reads stdin (required)")
	parallel := fs.String("parallel", "auto", "chunks at once: a number, or auto for the grid's free capacity for --browser")
	browser := fs.String("browser", "chrome", "browser whose grid capacity --parallel auto uses")
	batch := fs.Int("batch", 1, "targets per process (listed in the file HERD_TARGETS)")
	retries := fs.Int("retries", 0, "times a failed chunk runs again; one that then passes is reported flaky")
	timeout := fs.Duration("timeout", 10*time.Minute, "kill a chunk's attempt after this long (0: no limit)")
	junitOut := fs.String("junit", "", "write the merged JUnit XML report here (and the attempts as .attempts.json beside it)")
	shard := fs.String("shard", "", "run only shard i of n (i/n, 1-based), split by recorded durations")
	timingsFile := fs.String("timings", "", "JSON file of durations per target: orders the work longest first and balances shards; updated after the run")
	logLevel := fs.String("log-level", "warn", "debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprintf(c.Stderr, `Usage: herd run --targets FILE [flags] -- COMMAND [ARGS...]

Runs COMMAND once per target (or per --batch of targets), in parallel, and
merges what they report into one JUnit report. Each run gets HERD_TARGET,
HERD_TARGET_NAME, HERD_TARGETS, HERD_REPORT (where it may write JUnit XML),
HERD_ATTEMPT and SELENIUM_REMOTE_URL; {target}, {name} and {report} in ARGS
are replaced. Without a report, the exit status decides. Exit status: 0 when
everything passed (flaky included), 1 when something failed, 130 when
interrupted.

Flags:
`)
		fs.PrintDefaults()
	}
	var command []string
	for i, a := range args {
		if a == "--" {
			args, command = args[:i], args[i+1:]
			break
		}
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if len(command) == 0 {
		return usageError{"no command: put it after --, e.g. herd run --targets sites.txt -- node test.js"}
	}
	if *targetsFile == "" {
		return usageError{"--targets is required"}
	}
	if *batch < 1 || *retries < 0 || *timeout < 0 {
		return usageError{"--batch must be at least 1, --retries and --timeout not negative"}
	}
	logger, err := newLogger(c.Stderr, *logLevel)
	if err != nil {
		return err
	}

	var in io.Reader = c.Stdin
	if *targetsFile != "-" {
		f, err := os.Open(*targetsFile)
		if err != nil {
			return usageError{fmt.Sprintf("--targets: %v", err)}
		}
		defer f.Close()
		in = f
	}
	targets, err := fanout.ReadTargets(in)
	if err != nil {
		return usageError{fmt.Sprintf("--targets %s: %v", *targetsFile, err)}
	}
	timings := fanout.Timings{}
	if *timingsFile != "" {
		if timings, err = fanout.LoadTimings(*timingsFile); err != nil {
			return err
		}
	}
	cfg := fanout.Config{Command: command, Chunks: fanout.Chunks(targets, *batch), Retries: *retries, Timeout: *timeout, Grid: *grid, Logger: logger}
	if *timingsFile != "" {
		cfg.Timings = timings
	}
	if *shard != "" {
		i, n, err := parseShard(*shard)
		if err != nil {
			return err
		}
		cfg.Shard, cfg.Shards = i, n
		cfg.Chunks = fanout.Shard(cfg.Chunks, timings, i, n)
	}
	if cfg.Parallel, err = c.parallelism(ctx, *parallel, *grid, *browser, len(cfg.Chunks)); err != nil {
		return err
	}
	logger.Info("run.start", "chunks", len(cfg.Chunks), "parallel", cfg.Parallel, "grid", redactURL(*grid))

	progress := fanout.NewProgress(c.Stderr, c.Terminal, len(cfg.Chunks))
	cfg.Progress = progress.Event
	res, err := fanout.Run(ctx, cfg)
	if err != nil {
		return err
	}
	progress.Finish()
	rep := res.Report(command)
	if *junitOut != "" {
		if err := rep.WriteFile(*junitOut); err != nil {
			return err
		}
		if err := res.WriteAttempts(strings.TrimSuffix(*junitOut, ".xml") + ".attempts.json"); err != nil {
			return err
		}
	}
	if *timingsFile != "" {
		res.UpdateTimings(timings)
		if err := timings.Save(*timingsFile); err != nil {
			return err
		}
	}
	fanout.Summary(c.Stdout, rep)
	switch {
	case res.Interrupted:
		return exitError{130, "interrupted; the report holds what finished"}
	case rep.Failures+rep.Errors > 0:
		return exitError{1, ""}
	}
	return nil
}

// parallelism resolves --parallel.
func (c *RunCommand) parallelism(ctx context.Context, flagValue, grid, browser string, chunks int) (int, error) {
	if flagValue != "auto" {
		n, err := strconv.Atoi(flagValue)
		if err != nil || n < 1 {
			return 0, usageError{fmt.Sprintf("--parallel %q: give a positive number or auto", flagValue)}
		}
		return n, nil
	}
	qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	n, err := fanout.GridCapacity(qctx, grid, browser)
	if err != nil {
		return 0, fmt.Errorf("--parallel auto: cannot ask the grid at %s for its capacity: %v (start one, or give --parallel N)", redactURL(grid), err)
	}
	if n == 0 {
		return 0, fmt.Errorf("--parallel auto: the grid at %s has no available %s slot", redactURL(grid), browser)
	}
	return min(n, max(chunks, 1)), nil
}

// parseShard reads i/n (1-based) into a 0-based index and a count.
func parseShard(s string) (int, int, error) {
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 1 || i > n {
		return 0, 0, usageError{fmt.Sprintf("--shard %q: use i/n with 1 ≤ i ≤ n, e.g. 2/3", s)}
	}
	return i - 1, n, nil
}

// redactURL hides a password in a URL for logs and errors.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return s
	}
	return u.Redacted()
}

// MergeCommand is `herd merge`.
type MergeCommand struct {
	Stdout, Stderr io.Writer
}

// Run merges JUnit reports: same-named suites become one.
func (c *MergeCommand) Run(_ context.Context, args []string) error {
	out := ""
	var inputs []string
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-o" || a == "--o" || a == "-out" || a == "--out":
			if i+1 == len(args) {
				return usageError{a + " needs a file name"}
			}
			out = args[i+1]
			i++
		case strings.HasPrefix(a, "-o=") || strings.HasPrefix(a, "--out="):
			_, out, _ = strings.Cut(a, "=")
		case a == "-h" || a == "--help" || a == "-help":
			fmt.Fprintln(c.Stderr, "Usage: herd merge REPORT.xml... [-o merged.xml]\n\nMerges JUnit XML reports (e.g. of herd run --shard): suites with the same name become one. Writes to stdout without -o.")
			return flag.ErrHelp
		default:
			inputs = append(inputs, a)
		}
	}
	if len(inputs) == 0 {
		return usageError{"no reports to merge: herd merge a.xml b.xml -o all.xml"}
	}
	var reports []*junit.Report
	for _, path := range inputs {
		rep, err := junit.ReadFile(path)
		if err != nil {
			return err
		}
		reports = append(reports, rep)
	}
	merged := junit.Merge(reports...)
	if out == "" {
		return merged.Write(c.Stdout)
	}
	return merged.WriteFile(out)
}
