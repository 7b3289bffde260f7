package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/herd-ml/herd/hub"
	"github.com/herd-ml/herd/node"
)

// NodeCommand is `herd node`.
type NodeCommand struct {
	Stdout, Stderr io.Writer
}

// Run runs a node registered with a hub until ctx ends; then it drains.
func (c *NodeCommand) Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("herd node", flag.ContinueOnError)
	fs.SetOutput(c.Stderr)
	addr := fs.String("addr", ":5555", "address to listen on")
	hubURL := fs.String("hub", "", "the hub's URL, e.g. http://hub:4444 (the 2016 form http://hub:4444/grid/register works too)")
	publicURL := fs.String("public-url", "", "URL the hub reaches this node at (default http://<hostname>:<port>)")
	secretFile := fs.String("registration-secret-file", "", "file holding the hub's registration secret (or HERD_REGISTRATION_SECRET)")
	drainTimeout := fs.Duration("drain-timeout", 5*time.Minute, "on SIGTERM, how long running sessions may go on before the node stops")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	var nf nodeFlags
	nf.register(fs)
	fs.Usage = func() {
		fmt.Fprintf(c.Stderr, "Usage: herd node --hub URL [--browser SPEC] [flags]\n\nRuns browser sessions for a herd hub: one driver process and a fresh profile per session.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *hubURL == "" {
		return usageError{"--hub is required, e.g. --hub http://localhost:4444"}
	}
	logger, err := newLogger(c.Stderr, *logLevel)
	if err != nil {
		return err
	}
	secret, err := readSecret(*secretFile, "HERD_REGISTRATION_SECRET")
	if err != nil {
		return err
	}
	cfg, err := nf.config(logger)
	if err != nil {
		return err
	}
	n, err := node.New(cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	if *publicURL == "" {
		host, _ := os.Hostname()
		if tcp, ok := ln.Addr().(*net.TCPAddr); ok && !tcp.IP.IsUnspecified() {
			host = tcp.IP.String()
		}
		*publicURL = "http://" + net.JoinHostPort(host, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
	}
	if err := n.Start(ctx); err != nil {
		return err
	}

	regCtx, stopRegistering := context.WithCancel(context.Background())
	regDone := make(chan struct{})
	reregister := make(chan struct{}, 1)
	go func() {
		defer close(regDone)
		hub.RegisterLoop(regCtx, *hubURL, secret, reregister, func() hub.Registration { return registration(n, *publicURL) }, logger.Info)
	}()
	logger.Info("node.listening", "url", *publicURL, "hub", *hubURL, "browsers", len(cfg.Browsers))

	serveCtx, stopServing := context.WithCancel(context.Background())
	defer stopServing()
	served := make(chan error, 1)
	go func() { served <- serveUntil(serveCtx, ln, n, 5*time.Second) }()

	select {
	case err := <-served:
		stopRegistering()
		<-regDone
		_ = n.Stop(context.Background())
		return err
	case <-ctx.Done():
	}
	// Drain: no new sessions; running ones go on (and keep being proxied)
	// until they end or drain-timeout passes; then deregister and stop.
	n.Drain()
	reregister <- struct{}{} // tell the hub now, not at the next heartbeat
	logger.Info("node.draining", "sessions", len(n.SessionIDs()), "timeout", *drainTimeout)
	deadline := time.Now().Add(*drainTimeout)
	for len(n.SessionIDs()) > 0 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	stopRegistering()
	<-regDone
	stopServing()
	<-served
	return n.Stop(context.Background())
}

// registration describes n for the hub.
func registration(n *node.Node, uri string) hub.Registration {
	reg := hub.Registration{ID: n.ID(), URI: uri, Version: version, Sessions: n.SessionIDs(), Draining: n.Draining()}
	for _, s := range n.Slots() {
		reg.Slots = append(reg.Slots, hub.RegistrationSlot{Stereotype: s.Stereotype, MaxSessions: s.MaxSessions})
	}
	return reg
}
