package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/herd-ml/herd/hub"
	"github.com/herd-ml/herd/node"
)

// StandaloneCommand is `herd standalone`: a hub and one local node in one
// process, the quick start.
type StandaloneCommand struct {
	Stdout, Stderr io.Writer
}

// Run runs the hub and node until ctx ends.
func (c *StandaloneCommand) Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("herd standalone", flag.ContinueOnError)
	fs.SetOutput(c.Stderr)
	addr := fs.String("addr", ":4444", "address to listen on")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	var hf hubFlags
	hf.register(fs)
	var nf nodeFlags
	nf.register(fs)
	fs.Usage = func() {
		fmt.Fprintf(c.Stderr, "Usage: herd standalone [flags]\n\nA WebDriver grid in one process: a hub and a local node with Chromium.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	logger, err := newLogger(c.Stderr, *logLevel)
	if err != nil {
		return err
	}
	hcfg, err := hf.config(logger)
	if err != nil {
		return err
	}
	ncfg, err := nf.config(logger)
	if err != nil {
		return err
	}
	n, err := node.New(ncfg)
	if err != nil {
		return err
	}
	// The node is registered at a loopback address, but the hub hands it
	// every request in process.
	nodeLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	nodeHost := nodeLn.Addr().String()
	hcfg.Transport = &hub.HandlerTransport{Host: nodeHost, Handler: n, Fallback: http.DefaultTransport}
	hcfg.InProcess = map[string]http.Handler{nodeHost: n}
	h := hub.New(hcfg)

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		nodeLn.Close()
		return err
	}
	_ = n.Start(ctx)
	_ = h.Start(ctx)
	nodeURL := "http://" + nodeLn.Addr().String()
	nodeCtx, stopNode := context.WithCancel(context.Background())
	nodeDone := make(chan error, 1)
	go func() { nodeDone <- serveUntil(nodeCtx, nodeLn, n, time.Second) }()
	register := func() error { return h.Register(registration(n, nodeURL)) }
	if err := register(); err != nil {
		stopNode()
		return err
	}
	go func() {
		tick := time.NewTicker(hcfg.HeartbeatPeriod)
		defer tick.Stop()
		for {
			select {
			case <-nodeCtx.Done():
				return
			case <-tick.C:
				_ = register()
			}
		}
	}()
	logger.Info("standalone.listening", "url", "http://"+listenURL(ln.Addr()), "browsers", len(ncfg.Browsers))
	err = serveUntil(ctx, ln, h, 5*time.Second)
	_ = h.Stop(context.Background())
	stopNode()
	<-nodeDone
	_ = n.Stop(context.Background())
	return err
}
