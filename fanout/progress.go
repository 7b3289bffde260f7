package fanout

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// Progress shows a run as it goes: on a terminal, one status line redrawn
// in place (done, failed, running, ETA); elsewhere (CI logs), a plain line
// per chunk that ends.
type Progress struct {
	w        io.Writer
	terminal bool
	total    int
	start    time.Time

	mu                           sync.Mutex
	done, failed, flaky, running int
	lastDraw                     time.Time
}

// NewProgress returns a Progress for total chunks writing to w.
func NewProgress(w io.Writer, terminal bool, total int) *Progress {
	return &Progress{w: w, terminal: terminal, total: total, start: time.Now()}
}

// Event records e; pass it as Config.Progress.
func (p *Progress) Event(e Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !e.Done {
		p.running++
	} else {
		p.running--
	}
	if e.Final != nil {
		p.done++
		passed := e.Final.Passed()
		switch {
		case !passed:
			p.failed++
		case len(e.Final.Attempts) > 1:
			p.flaky++
		}
		if !p.terminal {
			fmt.Fprintf(p.w, "%s %s (attempt %d, %s) [%d/%d]\n", verdict(e.Final), name(e.Chunk), e.Attempt,
				e.Final.Attempts[len(e.Final.Attempts)-1].Duration.Round(time.Millisecond), p.done, p.total)
		}
	} else if e.Done && !p.terminal {
		fmt.Fprintf(p.w, "retry %s (attempt %d failed)\n", name(e.Chunk), e.Attempt)
	}
	if p.terminal && (e.Final != nil || time.Since(p.lastDraw) > 100*time.Millisecond) {
		p.draw()
	}
}

// draw rewrites the status line. p.mu must be held.
func (p *Progress) draw() {
	p.lastDraw = time.Now()
	eta := "—"
	if p.done > 0 && p.done < p.total {
		elapsed := time.Since(p.start)
		eta = (elapsed * time.Duration(p.total-p.done) / time.Duration(p.done)).Round(time.Second).String()
	}
	fmt.Fprintf(p.w, "\r\033[K%d/%d done · %d failed · %d flaky · %d running · ETA %s", p.done, p.total, p.failed, p.flaky, p.running, eta)
}

// Finish ends the status line.
func (p *Progress) Finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.terminal {
		p.draw()
		fmt.Fprintln(p.w)
	}
}

func verdict(c *ChunkRun) string {
	switch {
	case !c.Passed():
		return "FAIL "
	case len(c.Attempts) > 1:
		return "FLAKY"
	}
	return "ok   "
}

func name(c Chunk) string {
	if len(c.Targets) == 1 {
		return c.Targets[0].Name
	}
	return fmt.Sprintf("%s (+%d)", c.Targets[0].Name, len(c.Targets)-1)
}
