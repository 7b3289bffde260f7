package worker

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// Restart backoff: doubles from backoffMin up to backoffMax while workers keep
// dying young; a worker that lived longer than healthyAfter resets it.
const (
	backoffMin   = 100 * time.Millisecond
	backoffMax   = 30 * time.Second
	healthyAfter = 10 * time.Second
)

// Pool keeps Size worker processes running and lends them out one request at
// a time. A process that exits is restarted with backoff. It is safe for
// concurrent use.
type Pool struct {
	cfg  Config
	size int

	avail   chan struct{} // a token: the free list may be non-empty
	busy    atomic.Int64
	started atomic.Int64 // slots whose first process finished setup
	stop    chan struct{}
	wg      sync.WaitGroup

	mu      sync.Mutex
	procs   map[*Process]struct{}
	free    []*Process
	stopped bool
	lastErr error
}

// NewPool returns a pool of size workers started from cfg. It starts nothing
// until Start.
func NewPool(cfg Config, size int) *Pool {
	if size < 1 {
		size = 1
	}
	return &Pool{
		cfg:   cfg.withDefaults(),
		size:  size,
		avail: make(chan struct{}, 1),
		stop:  make(chan struct{}),
		procs: make(map[*Process]struct{}),
	}
}

// Start launches the pool's workers in the background and returns at once;
// Ready reports when their setup is done.
func (p *Pool) Start(ctx context.Context) error {
	for range p.size {
		p.wg.Add(1)
		go p.runSlot(context.WithoutCancel(ctx))
	}
	return nil
}

// Ready reports whether every worker has completed its setup handshake once.
func (p *Pool) Ready() bool { return p.started.Load() >= int64(p.size) }

// LastError returns the most recent failure to start a worker, or nil.
func (p *Pool) LastError() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lastErr
}

// Size is the number of workers the pool keeps.
func (p *Pool) Size() int { return p.size }

// Busy is the number of workers handling a request now.
func (p *Pool) Busy() int { return int(p.busy.Load()) }

// Do runs req on a free worker. It waits for one at most wait (zero: as long
// as ctx allows) and then returns ErrNoWorker. Errors are those of
// Process.Do.
func (p *Pool) Do(ctx context.Context, wait time.Duration, req *Request, progress func(float64, string)) (*Response, error) {
	proc, err := p.acquire(ctx, wait)
	if err != nil {
		return nil, err
	}
	p.busy.Add(1)
	defer p.busy.Add(-1)
	resp, err := proc.Do(ctx, req, progress)
	if proc.Alive() {
		p.release(proc)
	}
	return resp, err
}

// release puts proc on the free list and wakes one waiter.
func (p *Pool) release(proc *Process) {
	p.mu.Lock()
	p.free = append(p.free, proc)
	p.mu.Unlock()
	p.signal()
}

func (p *Pool) signal() {
	select {
	case p.avail <- struct{}{}:
	default:
	}
}

// takeFree pops a live process from the free list, dropping dead ones (their
// slots restart them).
func (p *Pool) takeFree() *Process {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.free) > 0 {
		proc := p.free[len(p.free)-1]
		p.free = p.free[:len(p.free)-1]
		if proc.Alive() {
			if len(p.free) > 0 {
				p.signal() // pass the wake-up on to the next waiter
			}
			return proc
		}
	}
	return nil
}

func (p *Pool) acquire(ctx context.Context, wait time.Duration) (*Process, error) {
	var timeout <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timeout = t.C
	}
	for {
		if proc := p.takeFree(); proc != nil {
			return proc, nil
		}
		select {
		case <-p.avail:
		case <-timeout:
			return nil, ErrNoWorker
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		case <-p.stop:
			return nil, errors.New("worker pool stopped")
		}
	}
}

// runSlot keeps one worker alive until the pool stops.
func (p *Pool) runSlot(ctx context.Context) {
	defer p.wg.Done()
	first := true
	backoff := backoffMin
	for {
		proc, err := Start(ctx, p.cfg)
		if err != nil {
			p.mu.Lock()
			p.lastErr = err
			p.mu.Unlock()
			p.cfg.Logger.Error("worker.start_failed", "error", err, "retry_in", backoff)
			if !p.sleep(backoff) {
				return
			}
			backoff = min(2*backoff, backoffMax)
			continue
		}
		if !p.track(proc) {
			_ = proc.Stop(ctx)
			return
		}
		if first {
			first = false
			p.started.Add(1)
		}
		born := time.Now()
		p.release(proc)
		select {
		case <-proc.Exited():
		case <-p.stop:
			return
		}
		p.untrack(proc)
		if time.Since(born) > healthyAfter {
			backoff = backoffMin
		}
		p.cfg.Logger.Warn("worker.exited", "log_tail", lastLine(proc.Log()), "restart_in", backoff)
		if !p.sleep(backoff) {
			return
		}
		backoff = min(2*backoff, backoffMax)
	}
}

func (p *Pool) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-p.stop:
		return false
	}
}

func (p *Pool) track(proc *Process) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return false
	}
	p.procs[proc] = struct{}{}
	return true
}

func (p *Pool) untrack(proc *Process) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.procs, proc)
	for i, f := range p.free {
		if f == proc {
			p.free = append(p.free[:i], p.free[i+1:]...)
			break
		}
	}
}

// Stop stops every worker: each gets its stdin closed and is killed if it has
// not exited when ctx ends. Calling Stop twice is safe.
func (p *Pool) Stop(ctx context.Context) error {
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		return nil
	}
	p.stopped = true
	close(p.stop)
	procs := make([]*Process, 0, len(p.procs))
	for proc := range p.procs {
		procs = append(procs, proc)
	}
	p.mu.Unlock()

	var wg sync.WaitGroup
	for _, proc := range procs {
		wg.Go(func() { _ = proc.Stop(ctx) })
	}
	wg.Wait()
	p.wg.Wait()
	return nil
}

func lastLine(s string) string {
	for len(s) > 0 && s[len(s)-1] == '\n' {
		s = s[:len(s)-1]
	}
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '\n' {
			return s[i+1:]
		}
	}
	return s
}
