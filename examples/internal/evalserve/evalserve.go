// Package evalserve runs `herd serve` for the examples' evaluation commands
// and speaks its API as any client would: POST /train and wait on
// GET /status, POST /output.
package evalserve

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Build builds herd into dir and returns the binary's path. root is the
// repository root, relative to the working directory.
func Build(root, dir string) (string, error) {
	bin := filepath.Join(dir, "herd")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/herd")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build herd: %v\n%s", err, out)
	}
	return bin, nil
}

// Scratch makes a temporary directory for an evaluation and, when herd is
// "", builds herd into it (from the repository root, the working
// directory). It returns the directory and the herd binary; remove the
// directory when done.
func Scratch(prefix, herd string) (dir, bin string, err error) {
	dir, err = os.MkdirTemp("", prefix)
	if err != nil {
		return "", "", err
	}
	if herd != "" {
		return dir, herd, nil
	}
	if bin, err = Build(".", dir); err != nil {
		os.RemoveAll(dir)
		return "", "", err
	}
	return dir, bin, nil
}

// Server is one running `herd serve`.
type Server struct {
	URL    string
	cmd    *exec.Cmd
	exited chan struct{}
	logs   bytes.Buffer
}

// Start runs `herd serve` with args on a free loopback port and waits until
// /readyz answers (the worker is up).
func Start(herd string, args ...string) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	s := &Server{URL: "http://" + addr}
	s.cmd = exec.Command(herd, append([]string{"serve", "--addr", addr, "--log-level", "warn"}, args...)...)
	s.cmd.Stdout, s.cmd.Stderr = &s.logs, &s.logs
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	s.exited = make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(s.exited) }()
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
		select {
		case <-s.exited:
			return nil, fmt.Errorf("herd serve exited:\n%s", s.logs.String())
		default:
		}
		resp, err := http.Get(s.URL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("herd serve not ready in 2 minutes:\n%s", s.logs.String())
		}
	}
}

// Stop ends the server (SIGTERM, then waits).
func (s *Server) Stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	<-s.exited
}

func (s *Server) post(path string, body any, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	resp, err := http.Post(s.URL+path, "application/json", bytes.NewReader(b))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		return fmt.Errorf("POST %s: %d %s", path, resp.StatusCode, strings.TrimSpace(string(raw)))
	}
	return json.Unmarshal(raw, out)
}

type call struct {
	Files []string `json:"Files"`
	Model string   `json:"model"`
}

// Submit queues a train job and returns its id.
func (s *Server) Submit(model string, files ...string) (string, error) {
	var job struct{ JobID string }
	if err := s.post("/train", call{files, model}, &job); err != nil {
		return "", err
	}
	return job.JobID, nil
}

// Wait polls /status until the job ends and returns its result, or its
// error.
func (s *Server) Wait(id string) (json.RawMessage, error) {
	for {
		resp, err := http.Get(s.URL + "/status?jobId=" + id)
		if err != nil {
			return nil, err
		}
		var st struct {
			State, Error string
			Result       json.RawMessage
		}
		err = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		switch st.State {
		case "done":
			return st.Result, nil
		case "error", "cancelled":
			return nil, fmt.Errorf("job %s %s: %s", id, st.State, st.Error)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TrainAll submits one training per model (files[model]), waits for all,
// and returns each job's result.
func (s *Server) TrainAll(files map[string][]string) (map[string]json.RawMessage, error) {
	ids := map[string]string{}
	for model, f := range files {
		id, err := s.Submit(model, f...)
		if err != nil {
			return nil, err
		}
		ids[model] = id
	}
	results := map[string]json.RawMessage{}
	for model, id := range ids {
		res, err := s.Wait(id)
		if err != nil {
			return nil, fmt.Errorf("training %s: %w", model, err)
		}
		results[model] = res
	}
	return results, nil
}

// Labels reads the label list a training result names under field (the
// worker's outputs are indexes into it).
func Labels(result json.RawMessage, field string) ([]string, error) {
	var r map[string]json.RawMessage
	var labels []string
	if json.Unmarshal(result, &r) != nil || json.Unmarshal(r[field], &labels) != nil || len(labels) == 0 {
		return nil, fmt.Errorf("the training result %s lists no %s", result, field)
	}
	return labels, nil
}

// Output calls /output and returns the output vector and the call's time.
func (s *Server) Output(model string, files ...string) ([]float64, time.Duration, error) {
	var out struct{ OutputVector []float64 }
	start := time.Now()
	err := s.post("/output", call{files, model}, &out)
	return out.OutputVector, time.Since(start), err
}

// Median is the middle of the call times (the upper one of an even count).
func Median(d []time.Duration) time.Duration {
	s := slices.Sorted(slices.Values(d))
	return s[len(s)/2]
}

// MeanSD is the mean and the sample standard deviation (n-1) of v; the
// deviation is 0 for fewer than two values.
func MeanSD(v []float64) (mean, sd float64) {
	for _, x := range v {
		mean += x / float64(len(v))
	}
	if len(v) < 2 {
		return mean, 0
	}
	var ss float64
	for _, x := range v {
		ss += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(ss / float64(len(v)-1))
}
