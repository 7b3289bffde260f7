package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"
)

// ServeDirCommand is `herd serve-dir`: a static file server for test pages
// (the login-form corpora, say), so they load over HTTP as sites do.
type ServeDirCommand struct {
	Stdout, Stderr io.Writer
}

// Run serves the directory until ctx ends.
func (c *ServeDirCommand) Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("herd serve-dir", flag.ContinueOnError)
	fs.SetOutput(c.Stderr)
	addr := fs.String("addr", "127.0.0.1:8000", "address to listen on")
	fs.Usage = func() {
		fmt.Fprintf(c.Stderr, "Usage: herd serve-dir [--addr HOST:PORT] DIR\n\nServes the files under DIR over HTTP; nothing outside it, symbolic links included.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	var dir string
	if len(args) > 0 && args[len(args)-1] != "" && args[len(args)-1][0] != '-' {
		dir, args = args[len(args)-1], args[:len(args)-1]
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if dir == "" {
		return usageError{"give the directory to serve: herd serve-dir DIR"}
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return usageError{fmt.Sprintf("cannot serve %s: %v", dir, err)}
	}
	defer root.Close()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.Stderr, "herd serve-dir: serving %s at http://%s/\n", dir, listenURL(ln.Addr()))
	return serveUntil(ctx, ln, http.FileServerFS(root.FS()), 5*time.Second)
}
