package serve

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// apiError is an error with its HTTP status, answered as
// {"error":{"code":"...","message":"..."}}.
type apiError struct {
	Status     int
	Code       string
	Message    string
	RetryAfter time.Duration // sets Retry-After when non-zero
}

func (e *apiError) Error() string { return e.Message }

func errorf(status int, code, format string, args ...any) *apiError {
	return &apiError{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// The error codes of the API, one per kind of mistake or failure.
const (
	codeBadRequest     = "bad_request"
	codeInvalidJSON    = "invalid_json"
	codeInvalidField   = "invalid_field"
	codeUnsupportedURI = "unsupported_uri"
	codeForbiddenFile  = "forbidden_file"
	codeFileNotFound   = "file_not_found"
	codeFileTooLarge   = "file_too_large"
	codeFetchFailed    = "fetch_failed"
	codeBodyTooLarge   = "body_too_large"
	codeUnauthorized   = "unauthorized"
	codeNotFound       = "not_found"
	codeMethod         = "method_not_allowed"
	codeJobEnded       = "job_ended"
	codeOverloaded     = "overloaded"
	codeAlgorithm      = "algorithm_error"
	codeWorkerCrashed  = "worker_crashed"
	codeTimeout        = "timeout"
	codeUnavailable    = "unavailable"
	codeInternal       = "internal"
	codeNotReady       = "not_ready"
)

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, e *apiError) {
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((e.RetryAfter+time.Second-1)/time.Second)))
	}
	type body struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	writeJSON(w, e.Status, map[string]body{"error": {Code: e.Code, Message: e.Message}})
}
