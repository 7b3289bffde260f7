package job

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// progressEvery throttles progress writes to the database.
const progressEvery = 200 * time.Millisecond

// mlWorker runs herd_ml jobs through the Queue's Runner.
type mlWorker struct {
	river.WorkerDefaults[Args]
	q *Queue
}

func (w *mlWorker) Work(ctx context.Context, rj *river.Job[Args]) error {
	q := w.q
	j := &Job{ID: strconv.FormatInt(rj.ID, 10), Attempt: rj.Attempt, Args: rj.Args}

	var mu sync.Mutex
	var last time.Time
	progress := func(f float64) {
		mu.Lock()
		defer mu.Unlock()
		if time.Since(last) < progressEvery && f < 1 {
			return
		}
		last = time.Now()
		if _, err := q.client.JobUpdate(ctx, rj.ID, &river.JobUpdateParams{Output: output{Progress: &f}}); err != nil {
			q.cfg.Logger.Warn("job.progress_failed", "job", j.ID, "error", err)
		}
	}

	timeout := fmt.Errorf("job exceeded the job timeout of %s", q.cfg.JobTimeout)
	runCtx, cancel := context.WithTimeoutCause(ctx, q.cfg.JobTimeout, timeout)
	defer cancel()
	result, log, err := q.cfg.Runner.Run(runCtx, j, progress)

	var perm *permanentError
	timedOut := errors.Is(context.Cause(runCtx), timeout) && err != nil
	if timedOut {
		err = timeout
	}
	failedForGood := errors.As(err, &perm) || timedOut
	cancelled := errors.Is(context.Cause(ctx), rivertype.ErrJobCancelledRemotely)
	final := err == nil || failedForGood || cancelled || rj.Attempt >= rj.MaxAttempts

	out := output{Result: result, Log: log, Failed: failedForGood}
	if err == nil {
		one := 1.0
		out.Progress = &one
	}
	if final && rj.Args.CallbackURL != "" {
		cb, cbErr := q.insertCallback(context.WithoutCancel(ctx), rj.ID, rj.Args.CallbackURL)
		if cbErr != nil {
			q.cfg.Logger.Error("job.callback_insert_failed", "job", j.ID, "error", cbErr)
		}
		out.CallbackJob = cb
	}
	if rerr := river.RecordOutput(ctx, out); rerr != nil {
		q.cfg.Logger.Error("job.record_output_failed", "job", j.ID, "error", rerr)
	}
	if failedForGood {
		return river.JobCancel(err)
	}
	return err
}

// callbackArgs name the job whose final status is POSTed to URL.
type callbackArgs struct {
	JobID int64  `json:"jobId"`
	URL   string `json:"url"`
}

func (callbackArgs) Kind() string { return kindCallback }

func (q *Queue) insertCallback(ctx context.Context, jobID int64, url string) (int64, error) {
	res, err := q.client.Insert(ctx, callbackArgs{JobID: jobID, URL: url}, &river.InsertOpts{Queue: q.cfg.Queue, MaxAttempts: 8})
	if err != nil {
		return 0, err
	}
	return res.Job.ID, nil
}

// callbackWorker delivers a finished job's status to its callbackUrl,
// retrying with the Queue's backoff.
type callbackWorker struct {
	river.WorkerDefaults[callbackArgs]
	q *Queue
}

func (w *callbackWorker) Work(ctx context.Context, rj *river.Job[callbackArgs]) error {
	st, err := w.q.Get(ctx, strconv.FormatInt(rj.Args.JobID, 10))
	if err != nil {
		return err
	}
	if !st.State.Terminal() {
		// The job's final state is committed just after its worker returns.
		return river.JobSnooze(100 * time.Millisecond)
	}
	st.Callback, st.Log = nil, ""
	body, err := json.Marshal(st)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rj.Args.URL, bytes.NewReader(body))
	if err != nil {
		return river.JobCancel(fmt.Errorf("bad callbackUrl: %w", err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "herd-callback")
	resp, err := w.q.cfg.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("callback POST %s: %w", rj.Args.URL, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("callback POST %s answered %s", rj.Args.URL, resp.Status)
	}
	return nil
}

// fillCallback reports the delivery state of callback job id into cb.
func (q *Queue) fillCallback(ctx context.Context, id int64, cb *Callback) {
	row, err := q.client.JobGet(ctx, id)
	if err != nil {
		return
	}
	cb.Attempts = row.Attempt
	switch row.State {
	case rivertype.JobStateCompleted:
		cb.State = "delivered"
	case rivertype.JobStateDiscarded, rivertype.JobStateCancelled:
		cb.State = "failed"
	default:
		cb.State = "pending"
	}
	if n := len(row.Errors); n > 0 && cb.State != "delivered" {
		cb.Error = row.Errors[n-1].Error
	}
}
