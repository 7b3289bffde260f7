// Package s3test runs a real S3 protocol server on loopback for tests
// (gofakes3 over memory, spoken to through the AWS SDK like any store), with
// the faults tests need: throttling, held uploads and per-object counts.
package s3test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/herd-ml/herd/internal/s3client"
)

// Server is an S3 server on loopback.
type Server struct {
	URL    string     // endpoint, for --s3-endpoint
	Client *s3.Client // path-style client with the server's credentials

	mu       sync.Mutex
	gets     map[string]int  // "bucket/key" -> GET requests
	throttle int             // answer this many next requests with 503 SlowDown
	denied   map[string]bool // buckets whose requests get 403 AccessDenied
	hold     string          // PUTs whose path contains this wait on release
	held     chan string     // receives each held PUT's path
	release  chan struct{}
}

// Credentials of the test server (it accepts any), for child processes.
const (
	AccessKey = "herd-test"
	SecretKey = "herd-test-secret"
	Region    = "us-east-1"
)

// Start runs a server holding the given buckets until the test ends.
func Start(t testing.TB, buckets ...string) *Server {
	t.Helper()
	backend := s3mem.New()
	for _, b := range buckets {
		if err := backend.CreateBucket(b); err != nil {
			t.Fatal(err)
		}
	}
	faker := gofakes3.New(backend, gofakes3.WithLogger(gofakes3.DiscardLog()))
	s := &Server{gets: map[string]int{}, denied: map[string]bool{}, held: make(chan string, 16), release: make(chan struct{})}
	inner := faker.Server()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.fault(w, r) {
			return
		}
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(s.Release)
	s.URL = srv.URL
	client, err := s3client.New(context.Background(), s3client.Options{
		Endpoint: s.URL, Region: Region, PathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(AccessKey, SecretKey, ""),
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Client = client
	return s
}

func (s *Server) fault(w http.ResponseWriter, r *http.Request) bool {
	s.mu.Lock()
	path := strings.TrimPrefix(r.URL.Path, "/")
	if r.Method == http.MethodGet && strings.Contains(path, "/") { // an object, not a listing
		s.gets[path]++
	}
	if s.throttle > 0 {
		s.throttle--
		s.mu.Unlock()
		writeError(w, http.StatusServiceUnavailable, "SlowDown", "Please reduce your request rate.")
		return true
	}
	if bucket, _, _ := strings.Cut(path, "/"); s.denied[bucket] {
		s.mu.Unlock()
		writeError(w, http.StatusForbidden, "AccessDenied", "Access Denied")
		return true
	}
	hold := s.hold != "" && r.Method == http.MethodPut && strings.Contains(path, s.hold)
	release := s.release
	s.mu.Unlock()
	if hold {
		s.held <- path
		select {
		case <-release:
		case <-r.Context().Done():
			return true
		}
	}
	return false
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>` + code + `</Code><Message>` + message + `</Message></Error>`))
}

// Deny makes every request to bucket fail with 403 AccessDenied, as for
// credentials without permission.
func (s *Server) Deny(bucket string) {
	s.mu.Lock()
	s.denied[bucket] = true
	s.mu.Unlock()
}

// Env is the environment a child process needs to reach the server through
// the SDK's standard credential chain, and nothing of the user's own.
func (s *Server) Env() []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + AccessKey, "AWS_SECRET_ACCESS_KEY=" + SecretKey, "AWS_REGION=" + Region,
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_EC2_METADATA_DISABLED=true",
	}
}

// Put stores an object.
func (s *Server) Put(t testing.TB, bucket, key string, body []byte) {
	t.Helper()
	_, err := s.Client.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body)})
	if err != nil {
		t.Fatalf("put s3://%s/%s: %v", bucket, key, err)
	}
}

// Gets returns how many times the object was downloaded.
func (s *Server) Gets(bucket, key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gets[bucket+"/"+key]
}

// Throttle makes the next n requests fail with 503 SlowDown.
func (s *Server) Throttle(n int) {
	s.mu.Lock()
	s.throttle = n
	s.mu.Unlock()
}

// Hold makes uploads (PUTs) whose path contains substr wait until Release;
// each one's path arrives on the returned channel as it starts waiting.
func (s *Server) Hold(substr string) <-chan string {
	s.mu.Lock()
	s.hold = substr
	s.release = make(chan struct{})
	s.mu.Unlock()
	return s.held
}

// Release lets held uploads go on, and holds no more.
func (s *Server) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hold != "" {
		s.hold = ""
		close(s.release)
	}
}
