// Package webdriver holds the parts of the W3C WebDriver protocol that a
// router needs: the error shape and codes, and the processing and matching of
// new-session capabilities. It imports nothing from herd.
package webdriver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// The W3C error codes herd answers with, and their HTTP statuses.
const (
	ErrInvalidArgument   = "invalid argument"
	ErrInvalidSessionID  = "invalid session id"
	ErrSessionNotCreated = "session not created"
	ErrTimeout           = "timeout"
	ErrUnknownCommand    = "unknown command"
	ErrUnknownError      = "unknown error"
	ErrUnknownMethod     = "unknown method"
	// ErrUnauthorized is not a W3C code (the spec leaves authentication
	// out); herd answers with it when a grid's basic auth or registration
	// secret is missing or wrong.
	ErrUnauthorized = "unauthorized"
)

var statusOf = map[string]int{
	ErrInvalidArgument:   http.StatusBadRequest,
	ErrInvalidSessionID:  http.StatusNotFound,
	ErrSessionNotCreated: http.StatusInternalServerError,
	ErrTimeout:           http.StatusInternalServerError,
	ErrUnknownCommand:    http.StatusNotFound,
	ErrUnknownError:      http.StatusInternalServerError,
	ErrUnknownMethod:     http.StatusMethodNotAllowed,
	ErrUnauthorized:      http.StatusUnauthorized,
}

// Error is a W3C WebDriver error.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Status is the HTTP status the spec assigns to the error's code.
func (e *Error) Status() int {
	if s, ok := statusOf[e.Code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// Errorf builds an *Error.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// WriteError answers with e as {"value":{"error","message","stacktrace"}}.
func WriteError(w http.ResponseWriter, e *Error) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(e.Status())
	_ = json.NewEncoder(w).Encode(map[string]any{"value": map[string]string{
		"error": e.Code, "message": e.Message, "stacktrace": "",
	}})
}

// CreateSession forwards a new-session body to the WebDriver endpoint base
// (a node or a driver) through rt and returns the answer's status and body,
// whatever the status.
func CreateSession(ctx context.Context, rt http.RoundTripper, base string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(base, "/")+"/session", bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	return resp.StatusCode, b, err
}

// DeleteSession ends session id on the WebDriver endpoint base through rt,
// ignoring the answer: callers clean up whatever it says.
func DeleteSession(ctx context.Context, rt http.RoundTripper, base, id string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, strings.TrimSuffix(base, "/")+"/session/"+id, nil)
	if err != nil {
		return err
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}
