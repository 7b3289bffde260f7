package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/herd-ml/herd/hub"
)

// HubCommand is `herd hub`.
type HubCommand struct {
	Stdout, Stderr io.Writer
}

// Run runs a hub until ctx ends.
func (c *HubCommand) Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("herd hub", flag.ContinueOnError)
	fs.SetOutput(c.Stderr)
	addr := fs.String("addr", ":4444", "address to listen on")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	var hf hubFlags
	hf.register(fs)
	fs.Usage = func() {
		fmt.Fprintf(c.Stderr, "Usage: herd hub [flags]\n\nA W3C WebDriver grid hub: Selenium clients connect here (also under /wd/hub); nodes register with it.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	logger, err := newLogger(c.Stderr, *logLevel)
	if err != nil {
		return err
	}
	cfg, err := hf.config(logger)
	if err != nil {
		return err
	}
	h := hub.New(cfg)
	if err := h.Start(ctx); err != nil {
		return err
	}
	defer h.Stop(context.Background())
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	logger.Info("hub.listening", "url", "http://"+listenURL(ln.Addr()), "session_timeout", cfg.SessionTimeout, "queue_timeout", cfg.QueueTimeout)
	return serveUntil(ctx, ln, h, 5*time.Second)
}
