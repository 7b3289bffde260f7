package job

import (
	"context"
	"sync"

	"github.com/riverqueue/river"
)

// maxBatch caps how many submissions share one insert transaction.
const maxBatch = 128

// batcher turns concurrent Submit calls into multi-row inserts: while one
// insert transaction is in flight, new submissions wait and then go together
// in the next. A lone submission goes at once, so nothing waits on a timer;
// under load the database commits (and syncs) once per batch instead of once
// per job. Every caller still returns only after its job is committed.
type batcher struct {
	client riverClient
	queue  string
	reqs   chan *submission
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
}

type submission struct {
	args  Args
	reply chan submitResult
}

type submitResult struct {
	id  int64
	err error
}

func newBatcher(client riverClient, queue string) *batcher {
	b := &batcher{client: client, queue: queue, reqs: make(chan *submission), stop: make(chan struct{}), done: make(chan struct{})}
	go b.run()
	return b
}

// submit inserts args and returns the new job's id.
func (b *batcher) submit(ctx context.Context, args Args) (int64, error) {
	s := &submission{args: args, reply: make(chan submitResult, 1)}
	select {
	case b.reqs <- s:
	case <-ctx.Done():
		return 0, context.Cause(ctx)
	case <-b.stop:
		return 0, errStopped
	}
	// Once handed over the insert happens; wait for it even if ctx ends, so
	// the caller never reports failure for a job that was stored.
	r := <-s.reply
	return r.id, r.err
}

func (b *batcher) run() {
	defer close(b.done)
	batch := make([]*submission, 0, maxBatch)
	for {
		select {
		case s := <-b.reqs:
			batch = append(batch[:0], s)
		case <-b.stop:
			return
		}
	gather:
		for len(batch) < maxBatch {
			select {
			case s := <-b.reqs:
				batch = append(batch, s)
			default:
				break gather
			}
		}
		b.insert(batch)
	}
}

func (b *batcher) insert(batch []*submission) {
	params := make([]river.InsertManyParams, len(batch))
	for i, s := range batch {
		params[i] = river.InsertManyParams{Args: s.args, InsertOpts: &river.InsertOpts{Queue: b.queue}}
	}
	res, err := b.client.InsertMany(context.Background(), params)
	for i, s := range batch {
		if err != nil {
			s.reply <- submitResult{err: err}
			continue
		}
		s.reply <- submitResult{id: res[i].Job.ID}
	}
}

// close stops the batcher after the insert in flight, if any.
func (b *batcher) close() {
	b.once.Do(func() { close(b.stop) })
	<-b.done
}
