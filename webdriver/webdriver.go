// Package webdriver holds the parts of the W3C WebDriver protocol that a
// router needs: the error shape and codes, and the processing and matching of
// new-session capabilities. It imports nothing from herd.
package webdriver

import (
	"encoding/json"
	"fmt"
	"net/http"
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
)

var statusOf = map[string]int{
	ErrInvalidArgument:   http.StatusBadRequest,
	ErrInvalidSessionID:  http.StatusNotFound,
	ErrSessionNotCreated: http.StatusInternalServerError,
	ErrTimeout:           http.StatusInternalServerError,
	ErrUnknownCommand:    http.StatusNotFound,
	ErrUnknownError:      http.StatusInternalServerError,
	ErrUnknownMethod:     http.StatusMethodNotAllowed,
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
