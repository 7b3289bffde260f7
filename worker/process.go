package worker

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/herd-ml/herd/internal/procgroup"
)

// Config says how to start and treat worker processes. The zero value of each
// field but Command takes the default stated on it.
type Config struct {
	// Command is the worker's command line, run by /bin/sh.
	Command string
	// Dir is the working directory; empty means herd's own.
	Dir string
	// Env is added to herd's own environment.
	Env []string
	// SetupTimeout bounds the wait for the ready handshake; default 2 minutes.
	SetupTimeout time.Duration
	// CancelGrace is how long a worker told to stop (SIGINT) may take to
	// answer before it is killed; default 5 s.
	CancelGrace time.Duration
	// LogLimit caps the stderr kept per request and per process; default 64 KiB.
	LogLimit int
	// Logger receives lifecycle events and the worker's stderr lines at debug
	// level; nil discards them.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.SetupTimeout <= 0 {
		c.SetupTimeout = 2 * time.Minute
	}
	if c.CancelGrace <= 0 {
		c.CancelGrace = 5 * time.Second
	}
	if c.LogLimit <= 0 {
		c.LogLimit = 64 << 10
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// line is one thing the stdout reader saw: a message, or why it stopped.
type line struct {
	msg *message
	raw []byte
	err error // io.EOF when stdout closed; errGarbage for a non-protocol line
}

var errGarbage = errors.New("garbage on stdout")

// Process is one running worker. Its methods are safe for concurrent use,
// but it handles one request at a time: Do calls are serialised.
type Process struct {
	cfg    Config
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan line
	exited chan struct{} // closed once the process has exited and been reaped

	doMu sync.Mutex // serialises Do

	mu      sync.Mutex
	tail    *tailBuffer // the process's whole stderr, capped
	reqLog  *tailBuffer // stderr during the current request; nil between requests
	broken  bool        // crashed, killed or stopped: never usable again
	exitErr error
}

// Start launches a worker and waits until it reports ready, its setup done.
// It returns an error naming what went wrong (exit, garbage, timeout) with
// the tail of the worker's stderr.
func Start(ctx context.Context, cfg Config) (*Process, error) {
	cfg = cfg.withDefaults()
	if cfg.Command == "" {
		return nil, errors.New("worker command is empty")
	}
	cmd := exec.Command("/bin/sh", "-c", "exec "+cfg.Command)
	cmd.Dir = cfg.Dir
	cmd.Env = append(os.Environ(), append([]string{fmt.Sprintf("HERD_PROTOCOL=%d", ProtocolVersion)}, cfg.Env...)...)
	cmd.SysProcAttr = procgroup.Attr()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("cannot start worker %q: %w", cfg.Command, err)
	}
	p := &Process{
		cfg:    cfg,
		cmd:    cmd,
		stdin:  stdin,
		lines:  make(chan line, 16),
		exited: make(chan struct{}),
		tail:   newTailBuffer(cfg.LogLimit),
	}
	var readers sync.WaitGroup
	readers.Add(2)
	go func() { defer readers.Done(); p.readStdout(stdout) }()
	go func() { defer readers.Done(); p.readStderr(stderr) }()
	go func() {
		readers.Wait()
		err := cmd.Wait()
		p.mu.Lock()
		p.exitErr = err
		p.broken = true
		p.mu.Unlock()
		close(p.exited)
	}()

	if err := p.handshake(ctx); err != nil {
		p.kill()
		return nil, err
	}
	cfg.Logger.Debug("worker.ready", "pid", cmd.Process.Pid)
	return p, nil
}

func (p *Process) handshake(ctx context.Context) error {
	timer := time.NewTimer(p.cfg.SetupTimeout)
	defer timer.Stop()
	select {
	case l := <-p.lines:
		if l.err != nil {
			return p.crash(l)
		}
		if l.msg.Type != typeReady {
			return &CrashError{Reason: fmt.Sprintf("first message must be {\"type\":\"ready\"}, got %s", quote(l.raw)), Log: p.tail.String()}
		}
		if l.msg.Protocol != 0 && l.msg.Protocol != ProtocolVersion {
			return &CrashError{Reason: fmt.Sprintf("worker speaks protocol %d, herd speaks %d", l.msg.Protocol, ProtocolVersion)}
		}
		return nil
	case <-timer.C:
		return &CrashError{Reason: fmt.Sprintf("no ready message within setup timeout %s", p.cfg.SetupTimeout), Log: p.tail.String()}
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// Do sends one request and waits for its final answer, passing progress
// reports to progress (which may be nil).
//
// When ctx ends first, the worker gets SIGINT and CancelGrace to answer;
// after that it is killed. Do then returns an error wrapping ErrCancelled
// and ctx's cause. A *RemoteError means the algorithm failed and the process
// is fine; a *CrashError means the process is gone.
func (p *Process) Do(ctx context.Context, req *Request, progress func(float64, string)) (*Response, error) {
	p.doMu.Lock()
	defer p.doMu.Unlock()

	reqLog := newTailBuffer(p.cfg.LogLimit)
	p.mu.Lock()
	if p.broken {
		p.mu.Unlock()
		return nil, &CrashError{Reason: "worker is not running", Log: p.tail.String()}
	}
	p.reqLog = reqLog
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.reqLog = nil
		p.mu.Unlock()
	}()

	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	if _, err := p.stdin.Write(append(body, '\n')); err != nil {
		p.kill()
		return nil, p.crash(line{err: fmt.Errorf("cannot write request: %w", err)})
	}

	var graceC <-chan time.Time
	done := ctx.Done()
	for {
		select {
		case l := <-p.lines:
			if l.err != nil {
				crash := p.crash(l)
				if graceC != nil { // it died of the SIGINT: that is the cancellation
					return nil, fmt.Errorf("%w: %w", ErrCancelled, context.Cause(ctx))
				}
				return nil, crash
			}
			m := l.msg
			if m.ID != req.ID {
				p.kill()
				return nil, &CrashError{Reason: fmt.Sprintf("answer for request %q while %q was pending: %s", m.ID, req.ID, quote(l.raw)), Log: p.tail.String()}
			}
			switch m.Type {
			case typeProgress:
				if progress != nil && m.Progress != nil {
					progress(*m.Progress, m.Message)
				}
				continue
			case typeError:
				if graceC != nil {
					return nil, fmt.Errorf("%w: %w", ErrCancelled, context.Cause(ctx))
				}
				msg := m.Error
				if msg == "" {
					msg = "worker reported an error without a message"
				}
				return nil, &RemoteError{Message: msg, Log: reqLog.String()}
			case typeDone:
				if graceC != nil {
					return nil, fmt.Errorf("%w: %w", ErrCancelled, context.Cause(ctx))
				}
				return &Response{OutputVector: m.OutputVector, Result: m.Result, Log: reqLog.String()}, nil
			default:
				p.kill()
				return nil, &CrashError{Reason: fmt.Sprintf("unexpected message type %q: %s", m.Type, quote(l.raw)), Log: p.tail.String()}
			}
		case <-done:
			done = nil
			p.signal(syscall.SIGINT)
			graceTimer := time.NewTimer(p.cfg.CancelGrace)
			defer graceTimer.Stop()
			graceC = graceTimer.C
		case <-graceC:
			p.kill()
			return nil, fmt.Errorf("%w: %w (worker killed after %s grace)", ErrCancelled, context.Cause(ctx), p.cfg.CancelGrace)
		}
	}
}

// Log returns the tail of everything the worker wrote to stderr.
func (p *Process) Log() string { return p.tail.String() }

// Alive reports whether the process can still take requests.
func (p *Process) Alive() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.broken
}

// Exited is closed once the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Stop asks the worker to exit by closing its stdin and kills it if it has
// not exited when ctx ends. Stopping a stopped process is a no-op.
func (p *Process) Stop(ctx context.Context) error {
	p.mu.Lock()
	p.broken = true
	p.mu.Unlock()
	_ = p.stdin.Close()
	select {
	case <-p.exited:
		return nil
	case <-ctx.Done():
		p.kill()
		<-p.exited
		return nil
	}
}

func (p *Process) kill() {
	p.mu.Lock()
	p.broken = true
	p.mu.Unlock()
	p.signal(syscall.SIGKILL)
}

func (p *Process) signal(sig syscall.Signal) {
	// The negative pid addresses the whole process group.
	_ = syscall.Kill(-p.cmd.Process.Pid, sig)
}

// crash turns the reader's end-of-stream into a CrashError, waiting briefly
// for the exit status so the message can say how the worker ended.
func (p *Process) crash(l line) error {
	reason := ""
	switch {
	case errors.Is(l.err, errGarbage):
		p.kill()
		reason = "wrote non-protocol output to stdout: " + quote(l.raw)
	case errors.Is(l.err, io.EOF):
		p.kill()
		select {
		case <-p.exited:
		case <-time.After(2 * time.Second):
		}
		p.mu.Lock()
		exitErr := p.exitErr
		p.mu.Unlock()
		reason = "exited"
		if exitErr != nil {
			reason = "exited: " + exitErr.Error()
		}
	default:
		p.kill()
		reason = l.err.Error()
	}
	return &CrashError{Reason: reason, Log: p.tail.String()}
}

func (p *Process) readStdout(r io.Reader) {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		raw, err := br.ReadBytes('\n')
		if len(bytes.TrimSpace(raw)) == 0 && err == nil {
			continue
		}
		if err != nil {
			if len(bytes.TrimSpace(raw)) > 0 {
				p.lines <- line{raw: raw, err: errGarbage}
			} else {
				p.lines <- line{err: io.EOF}
			}
			_, _ = io.Copy(io.Discard, br)
			return
		}
		var m message
		if jerr := json.Unmarshal(raw, &m); jerr != nil || m.Type == "" {
			p.lines <- line{raw: bytes.TrimRight(raw, "\n"), err: errGarbage}
			_, _ = io.Copy(io.Discard, br)
			return
		}
		p.lines <- line{msg: &m, raw: raw}
	}
}

func (p *Process) readStderr(r io.Reader) {
	br := bufio.NewReader(r)
	for {
		raw, err := br.ReadBytes('\n')
		if len(raw) > 0 {
			p.mu.Lock()
			p.tail.Write(raw)
			if p.reqLog != nil {
				p.reqLog.Write(raw)
			}
			p.mu.Unlock()
			p.cfg.Logger.Debug("worker.stderr", "pid", p.cmd.Process.Pid, "line", string(bytes.TrimRight(raw, "\n")))
		}
		if err != nil {
			return
		}
	}
}

// tailBuffer keeps the last limit bytes written to it. It is safe for
// concurrent use.
type tailBuffer struct {
	limit int
	buf   []byte
	mu    sync.Mutex
}

func newTailBuffer(limit int) *tailBuffer { return &tailBuffer{limit: limit} }

func (t *tailBuffer) Write(b []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	if len(t.buf) > 2*t.limit {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.limit:]...)
	}
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.buf
	if len(b) > t.limit {
		b = b[len(b)-t.limit:]
	}
	return string(b)
}
