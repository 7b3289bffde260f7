// Command herd serves ML algorithms behind one REST API (herd serve) and
// runs a W3C WebDriver grid (herd hub, herd node, herd standalone). main
// only parses the command line and wires packages.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.As(err, new(exitError)):
		var e exitError
		errors.As(err, &e)
		if e.msg != "" {
			fmt.Fprintln(os.Stderr, "herd:", e.msg)
		}
		os.Exit(e.code)
	case errors.As(err, new(usageError)):
		fmt.Fprintln(os.Stderr, "herd:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "herd:", err)
		os.Exit(1)
	}
}

// usageError is a mistake on the command line (exit status 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// exitError ends herd with a given status, saying msg if it is not empty.
type exitError struct {
	code int
	msg  string
}

func (e exitError) Error() string { return fmt.Sprintf("exit status %d: %s", e.code, e.msg) }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		usage(stderr)
		return usageError{"no command given"}
	}
	switch args[0] {
	case "serve":
		return (&ServeCommand{Stdout: stdout, Stderr: stderr}).Run(ctx, args[1:])
	case "hub":
		return (&HubCommand{Stdout: stdout, Stderr: stderr}).Run(ctx, args[1:])
	case "node":
		return (&NodeCommand{Stdout: stdout, Stderr: stderr}).Run(ctx, args[1:])
	case "run":
		return (&RunCommand{Stdin: os.Stdin, Stdout: stdout, Stderr: stderr, Terminal: isTerminal(stderr)}).Run(ctx, args[1:])
	case "serve-dir":
		return (&ServeDirCommand{Stdout: stdout, Stderr: stderr}).Run(ctx, args[1:])
	case "merge":
		return (&MergeCommand{Stdout: stdout, Stderr: stderr}).Run(ctx, args[1:])
	case "standalone":
		return (&StandaloneCommand{Stdout: stdout, Stderr: stderr}).Run(ctx, args[1:])
	case "up":
		return (&UpCommand{Stdout: stdout, Stderr: stderr}).Run(ctx, args[1:])
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "herd", version)
		return nil
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return nil
	default:
		usage(stderr)
		return usageError{fmt.Sprintf("unknown command %q", args[0])}
	}
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func usage(w io.Writer) {
	fmt.Fprint(w, `herd: serve ML algorithms in any runtime behind one REST API, and run
a WebDriver grid that Selenium clients use unchanged.

Usage:
  herd serve --worker CMD [flags]   serve an algorithm (herd serve -h for flags)
  herd up                           a demo on this machine: a grid and the example ML services
  herd standalone [flags]           a WebDriver grid in one process (hub + local Chromium node)
  herd hub [flags]                  a WebDriver grid hub on :4444
  herd node --hub URL [flags]       a node running browsers for a hub
  herd run --targets FILE -- CMD     run CMD against many targets in parallel, one JUnit report
  herd merge A.xml B.xml -o C.xml   merge JUnit reports (of herd run --shard)
  herd serve-dir DIR                serve a directory of test pages over HTTP
  herd version                      print the version

Every flag can also be set as an environment variable: --job-workers is
HERD_JOB_WORKERS. Flags win over the environment.
`)
}
