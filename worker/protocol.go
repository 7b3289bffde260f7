// Package worker runs an ML algorithm as long-lived child processes that speak
// herd's JSON-lines worker protocol (docs/worker-protocol.md) on stdin and
// stdout, and hands them out to callers as a bounded pool.
//
// A Process is one child; a Pool keeps N of them alive, restarting crashed
// ones with backoff. Neither knows about HTTP or job queues.
package worker

import (
	"encoding/json"
	"errors"
	"fmt"
)

// ProtocolVersion is the worker protocol version herd speaks.
const ProtocolVersion = 1

// Op names what a request asks the algorithm to do.
type Op string

// The three operations of the ML API.
const (
	OpTrain  Op = "train"
	OpInput  Op = "input"
	OpOutput Op = "output"
)

// Request is one line herd writes to a worker's stdin.
type Request struct {
	ID       string   `json:"id"`
	Op       Op       `json:"op"`
	Model    string   `json:"model"`
	Files    []string `json:"files"`
	URIs     []string `json:"uris,omitempty"`
	StateDir string   `json:"stateDir"`
}

// Message types a worker writes to stdout.
const (
	typeReady    = "ready"
	typeProgress = "progress"
	typeDone     = "done"
	typeError    = "error"
)

// message is any line a worker writes to stdout.
type message struct {
	Type         string          `json:"type"`
	ID           string          `json:"id"`
	Protocol     int             `json:"protocol"`
	Progress     *float64        `json:"progress"`
	Message      string          `json:"message"`
	OutputVector []float64       `json:"outputVector"`
	Result       json.RawMessage `json:"result"`
	Error        string          `json:"error"`
}

// Response is the final answer of a worker to one Request.
type Response struct {
	// OutputVector is the answer to an output request.
	OutputVector []float64
	// Result is what a train or input request returned, as raw JSON; nil if
	// the worker returned nothing.
	Result json.RawMessage
	// Log holds what the worker wrote to stderr while it handled the request,
	// capped to the tail of Config.LogLimit bytes.
	Log string
}

// RemoteError is an error the algorithm itself reported for one request. The
// worker process is healthy after it.
type RemoteError struct {
	Message string
	Log     string // what the worker wrote to stderr during the request
}

func (e *RemoteError) Error() string { return e.Message }

// CrashError says the worker process died, hung, or broke the protocol while
// handling a request. The process is gone after it and the pool restarts it.
type CrashError struct {
	Reason string // what happened, in words
	Log    string // the tail of the worker's stderr
}

func (e *CrashError) Error() string {
	if e.Log == "" {
		return "worker crashed: " + e.Reason
	}
	return fmt.Sprintf("worker crashed: %s; stderr tail: %s", e.Reason, e.Log)
}

// ErrCancelled is returned by Process.Do when the request's context ended
// and the worker stopped (or was killed) because of it.
var ErrCancelled = errors.New("request cancelled")

// ErrNoWorker is returned by Pool.Do when no worker became free within the
// wait the caller allowed.
var ErrNoWorker = errors.New("no worker free")

// quote shortens a garbage line for an error message.
func quote(line []byte) string {
	const max = 200
	if len(line) > max {
		return fmt.Sprintf("%q...", line[:max])
	}
	return fmt.Sprintf("%q", line)
}
