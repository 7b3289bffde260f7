package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"text/tabwriter"
	"time"
)

// UpCommand is `herd up`: everything for a demo on one machine, on the
// embedded defaults — a grid (hub and a local Chromium node) and the example
// ML services whose runtimes are installed — in one process.
type UpCommand struct {
	Stdout, Stderr io.Writer
}

// upService is one example ML service herd up can start.
type upService struct {
	name, worker, filesRoot string
	needs                   func() error // nil when its runtime is here
}

func upServices() []upService {
	python := func() error { _, err := exec.LookPath("python3"); return err }
	numpy := func() error {
		return exec.Command("/usr/bin/python3", "-c", "import numpy").Run()
	}
	lua := "lua5.1"
	if _, err := exec.LookPath("luajit"); err == nil {
		lua = "luajit"
	}
	cjson := func() error { return exec.Command(lua, "-e", `require "cjson"`).Run() }
	return []upService{
		{"mean-python", "python3 examples/mean-python/worker.py", "examples/data", python},
		{"mean-lua", lua + " examples/mean-lua/worker.lua", "examples/data", cjson},
		{"keystroke", "/usr/bin/python3 examples/keystroke/worker.py", "", numpy},
		{"face", "/usr/bin/python3 examples/face/worker.py", "", numpy},
		{"gait", lua + " examples/gait/worker.lua", "", cjson},
	}
}

// Run starts everything and waits until ctx ends (Ctrl-C), then stops it
// all gracefully.
func (c *UpCommand) Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("herd up", flag.ContinueOnError)
	fs.SetOutput(c.Stderr)
	host := fs.String("host", "127.0.0.1", "interface to listen on (0.0.0.0 to open the demo to the network)")
	gridPort := fs.Int("grid-port", 4444, "port of the grid")
	port := fs.Int("port", 8080, "port of the first ML service; the others follow")
	dataDir := fs.String("data-dir", "herd-data/up", "directory for the services' jobs, models and downloads")
	noGrid := fs.Bool("no-grid", false, "start no grid")
	logLevel := fs.String("log-level", "warn", "log level of every part: debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprintf(c.Stderr, "Usage: herd up [flags]\n\nStarts, on this machine, a grid (hub and a local Chromium node) and the example\nML services whose runtimes are installed, and prints their URLs. Run it from\nthe repository root. Ctrl-C stops everything.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if _, err := os.Stat("examples/mean-python/worker.py"); err != nil {
		return usageError{"herd up serves the examples: run it from the repository root (examples/ not found here)"}
	}

	type part struct {
		name, url, note string
		ready           string // path that answers 200 once it serves
		run             func(ctx context.Context, stderr io.Writer) error
	}
	var parts []part
	var skipped []string
	if !*noGrid {
		// The node's own defaults find Chromium on PATH; asking them first
		// turns their error into a line of the table instead of a failure.
		const browser = "browserName=chrome,maxSessions=2"
		if _, err := parseBrowser(browser); err != nil {
			skipped = append(skipped, "grid: "+err.Error())
		} else {
			addr := net.JoinHostPort(*host, strconv.Itoa(*gridPort))
			args := []string{"--addr", addr, "--log-level", *logLevel, "--profile-dir", filepath.Join(os.TempDir(), "herd-up"),
				"--browser", browser}
			parts = append(parts, part{"grid", "http://" + addr, "WebDriver: point Selenium at it; /ui shows it live", "/status",
				func(ctx context.Context, stderr io.Writer) error {
					return (&StandaloneCommand{Stdout: io.Discard, Stderr: stderr}).Run(ctx, args)
				}})
		}
	}
	next := *port
	for _, s := range upServices() {
		if err := s.needs(); err != nil {
			skipped = append(skipped, fmt.Sprintf("%s: its runtime is missing (%s: %v)", s.name, s.worker, err))
			continue
		}
		addr := net.JoinHostPort(*host, strconv.Itoa(next))
		next++
		args := []string{"--addr", addr, "--worker", s.worker, "--data-dir", filepath.Join(*dataDir, s.name), "--log-level", *logLevel}
		note := "POST /train, /input, /output; GET /status"
		if s.filesRoot != "" {
			args = append(args, "--files-root", s.filesRoot)
			note += "; files from " + s.filesRoot
		}
		parts = append(parts, part{s.name, "http://" + addr, note, "/readyz", func(ctx context.Context, stderr io.Writer) error {
			return (&ServeCommand{Stdout: io.Discard, Stderr: stderr}).Run(ctx, args)
		}})
	}
	if len(parts) == 0 {
		return errors.New("nothing to start: " + fmt.Sprint(skipped))
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, len(parts))
	for _, p := range parts {
		wg.Go(func() {
			if err := p.run(ctx, &prefixWriter{prefix: p.name + ": ", w: c.Stderr}); err != nil && ctx.Err() == nil {
				errs <- fmt.Errorf("%s: %w", p.name, err)
				cancel() // one part failing stops the demo
			}
		})
	}

	// Print the table once every part answers (waitUp gives up with ctx).
	for _, p := range parts {
		waitUp(ctx, p.url+p.ready)
	}
	if ctx.Err() == nil {
		tw := tabwriter.NewWriter(c.Stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "herd up: running (Ctrl-C stops everything)")
		for _, p := range parts {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", p.name, p.url, p.note)
		}
		for _, s := range skipped {
			fmt.Fprintf(tw, "  not started\t%s\t\n", s)
		}
		_ = tw.Flush()
	}
	<-ctx.Done()
	wg.Wait()
	close(errs)
	return errors.Join(collect(errs)...)
}

func collect(errs <-chan error) []error {
	var out []error
	for err := range errs {
		out = append(out, err)
	}
	return out
}

var upClient = &http.Client{Timeout: 2 * time.Second}

// waitUp polls url until it answers 200 or ctx ends.
func waitUp(ctx context.Context, url string) {
	for ctx.Err() == nil {
		if resp, err := upClient.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// prefixWriter writes whole lines to w, each with a prefix, so the parts'
// logs stay apart.
type prefixWriter struct {
	prefix string
	w      io.Writer

	mu  sync.Mutex
	buf []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			return len(b), nil
		}
		if _, err := fmt.Fprintf(p.w, "%s%s", p.prefix, p.buf[:i+1]); err != nil {
			return len(b), err
		}
		p.buf = p.buf[i+1:]
	}
}
