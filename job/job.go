// Package job is herd's durable job queue: train and input calls become jobs
// in River (riverqueue/river), stored in SQLite or Postgres, so they survive
// restarts and any replica sharing the database can run them or report on
// them. It knows nothing of HTTP or of worker processes: a Runner does the
// work.
package job

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/riverqueue/river/rivertype"
)

// Kinds of River jobs herd inserts.
const (
	kindML       = "herd_ml"
	kindCallback = "herd_callback"
)

// Args are what a job was asked to do, stored with it.
type Args struct {
	Op          string   `json:"op"`
	Model       string   `json:"model"`
	Files       []string `json:"files"`
	CallbackURL string   `json:"callbackUrl,omitempty"`
}

// Kind implements river.JobArgs.
func (Args) Kind() string { return kindML }

// Job is one job handed to a Runner.
type Job struct {
	ID      string
	Attempt int
	Args
}

// Runner does a job's work. Run returns the job's result (any JSON, may be
// nil) and the worker's log; progress reports a fraction from 0 to 1.
// Errors wrapped by Permanent are not retried.
type Runner interface {
	Run(ctx context.Context, j *Job, progress func(float64)) (result json.RawMessage, log string, err error)
}

// permanentError marks an error that retrying cannot fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as not worth retrying: the job ends in error at once.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// State is a job's state as herd's API reports it.
type State string

// The job states.
const (
	StateQueued    State = "queued"
	StateRunning   State = "running"
	StateDone      State = "done"
	StateError     State = "error"
	StateCancelled State = "cancelled"
)

// LegacyStatus is the state in the 2016 API's three words: a queued job is
// "running", a cancelled one "error".
func (s State) LegacyStatus() string {
	switch s {
	case StateDone:
		return "done"
	case StateError, StateCancelled:
		return "error"
	default:
		return "running"
	}
}

// Terminal reports whether the job has ended.
func (s State) Terminal() bool {
	return s == StateDone || s == StateError || s == StateCancelled
}

// Status is everything herd reports about a job.
type Status struct {
	ID         string          `json:"jobId"`
	Status     string          `json:"status"`
	State      State           `json:"state"`
	Op         string          `json:"op"`
	Model      string          `json:"model"`
	Files      []string        `json:"files"`
	Error      string          `json:"error,omitempty"`
	Progress   *float64        `json:"progress,omitempty"`
	Result     json.RawMessage `json:"result,omitempty"`
	Log        string          `json:"log,omitempty"`
	CreatedAt  time.Time       `json:"createdAt"`
	StartedAt  *time.Time      `json:"startedAt,omitempty"`
	FinishedAt *time.Time      `json:"finishedAt,omitempty"`
	Attempt    int             `json:"attempt"`
	Callback   *Callback       `json:"callback,omitempty"`
}

// Callback reports the delivery of a job's final status to its callbackUrl.
type Callback struct {
	URL      string `json:"url"`
	State    string `json:"state"` // pending | delivered | failed
	Attempts int    `json:"attempts"`
	Error    string `json:"error,omitempty"`
}

// output is what herd keeps in a River job's metadata "output" key.
type output struct {
	Progress    *float64        `json:"progress,omitempty"`
	Result      json.RawMessage `json:"result,omitempty"`
	Log         string          `json:"log,omitempty"`
	Failed      bool            `json:"failed,omitempty"` // cancelled by herd because the job failed for good
	CallbackJob int64           `json:"callbackJob,omitempty"`
}

func decodeOutput(row *rivertype.JobRow) output {
	var meta struct {
		Output output `json:"output"`
	}
	_ = json.Unmarshal(row.Metadata, &meta)
	return meta.Output
}

func stateOf(row *rivertype.JobRow, out output) State {
	switch row.State {
	case rivertype.JobStateRunning:
		return StateRunning
	case rivertype.JobStateCompleted:
		return StateDone
	case rivertype.JobStateDiscarded:
		return StateError
	case rivertype.JobStateCancelled:
		if out.Failed {
			return StateError
		}
		return StateCancelled
	default: // available, scheduled, retryable, pending
		return StateQueued
	}
}

// statusOf builds the API's view of a River job row.
func statusOf(row *rivertype.JobRow) (*Status, error) {
	var args Args
	if err := json.Unmarshal(row.EncodedArgs, &args); err != nil {
		return nil, err
	}
	out := decodeOutput(row)
	st := stateOf(row, out)
	s := &Status{
		ID:        strconv.FormatInt(row.ID, 10),
		Status:    st.LegacyStatus(),
		State:     st,
		Op:        args.Op,
		Model:     args.Model,
		Files:     args.Files,
		Progress:  out.Progress,
		Result:    compact(out.Result),
		Log:       out.Log,
		CreatedAt: row.CreatedAt.UTC(),
		Attempt:   row.Attempt,
	}
	if row.AttemptedAt != nil {
		t := row.AttemptedAt.UTC()
		s.StartedAt = &t
	}
	if row.FinalizedAt != nil {
		t := row.FinalizedAt.UTC()
		s.FinishedAt = &t
	}
	if args.CallbackURL != "" {
		s.Callback = &Callback{URL: args.CallbackURL, State: "pending"}
	}
	if st == StateDone {
		one := 1.0
		s.Progress = &one
	}
	if st == StateCancelled {
		s.Error = "cancelled by request"
	} else if n := len(row.Errors); n > 0 && st != StateDone {
		s.Error = explain(row.Errors[n-1].Error)
	}
	return s, nil
}

// compact removes the whitespace Postgres's jsonb adds, so results read the
// same on every database.
func compact(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return nil
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return raw
	}
	return b.Bytes()
}

// explain rewrites River's words for the situations herd's users meet.
func explain(msg string) string {
	msg = strings.TrimPrefix(msg, "JobCancelError: ") // how River records river.JobCancel
	if strings.Contains(msg, "Stuck job rescued") {
		return "the herd serve process running this job stopped before it finished (crash, kill or lost replica)"
	}
	return msg
}

// ErrNotFound is returned for a job id that does not exist.
var ErrNotFound = errors.New("no such job")

func parseID(id string) (int64, error) {
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil || n <= 0 {
		return 0, ErrNotFound
	}
	return n, nil
}
