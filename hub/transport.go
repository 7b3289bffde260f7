package hub

import (
	"io"
	"net/http"
	"strings"
	"sync"
)

// HandlerTransport sends requests for Host straight to Handler in this
// process, skipping a loopback HTTP hop; everything else, and every
// connection upgrade (WebSockets need a real connection), goes to Fallback.
// herd standalone uses it to reach its own node.
type HandlerTransport struct {
	Host     string
	Handler  http.Handler
	Fallback http.RoundTripper
}

// RoundTrip implements http.RoundTripper. The response body streams as the
// handler writes it.
func (t *HandlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host != t.Host || strings.EqualFold(req.Header.Get("Connection"), "upgrade") || req.Header.Get("Upgrade") != "" {
		return t.Fallback.RoundTrip(req)
	}
	in := req.Clone(req.Context())
	if in.Body == nil {
		in.Body = http.NoBody
	}
	in.RequestURI = req.URL.RequestURI()
	in.Host = req.URL.Host
	pr, pw := io.Pipe()
	w := &pipeResponse{header: http.Header{}, body: pw, ready: make(chan struct{})}
	go func() {
		defer func() {
			w.WriteHeader(http.StatusOK) // a handler that wrote nothing
			_ = pw.Close()
		}()
		t.Handler.ServeHTTP(w, in)
	}()
	select {
	case <-w.ready:
	case <-req.Context().Done():
		_ = pr.CloseWithError(req.Context().Err())
		return nil, req.Context().Err()
	}
	return &http.Response{
		Status:        http.StatusText(w.status),
		StatusCode:    w.status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        w.sent,
		Body:          pr,
		ContentLength: -1,
		Request:       req,
	}, nil
}

// pipeResponse is the http.ResponseWriter of an in-process request.
type pipeResponse struct {
	header http.Header
	sent   http.Header // the header as of WriteHeader
	body   *io.PipeWriter
	once   sync.Once
	ready  chan struct{}
	status int
}

func (w *pipeResponse) Header() http.Header { return w.header }

func (w *pipeResponse) WriteHeader(code int) {
	w.once.Do(func() {
		w.status, w.sent = code, w.header.Clone()
		close(w.ready)
	})
}

func (w *pipeResponse) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(b)
}

// Flush implements http.Flusher; writes reach the reader as they happen.
func (w *pipeResponse) Flush() {}
