// Command latency measures what herd adds to an /output call: the round trip
// of POST /output through a real herd serve (SQLite, one output worker) against
// the same worker called directly over its stdin/stdout protocol.
//
//	go run ./bench/latency [-n 5000] [-worker 'python3 examples/mean-python/worker.py']
//
// It prints p50, p90, p99 and the mean for both paths and their difference.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/herd-ml/herd/serve"
	"github.com/herd-ml/herd/worker"
)

func main() {
	n := flag.Int("n", 5000, "requests per path")
	command := flag.String("worker", "python3 examples/mean-python/worker.py", "worker command")
	flag.Parse()
	if err := run(*n, *command); err != nil {
		log.Fatal(err)
	}
}

func run(n int, command string) error {
	ctx := context.Background()
	tmp, err := os.MkdirTemp("", "herd-latency-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	files := filepath.Join(tmp, "files")
	state := filepath.Join(tmp, "state")
	for _, d := range []string{files, state} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	train, query := filepath.Join(files, "train.txt"), filepath.Join(files, "query.txt")
	if err := os.WriteFile(train, []byte("1 2 3 4 5 6 7 8"), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(query, []byte("2 3 4 5 6 7 8 9"), 0o644); err != nil {
		return err
	}

	// Direct: the worker alone.
	proc, err := worker.Start(ctx, worker.Config{Command: command})
	if err != nil {
		return err
	}
	if _, err := proc.Do(ctx, &worker.Request{ID: "t", Op: worker.OpTrain, Model: "m", Files: []string{train}, StateDir: state}, nil); err != nil {
		return err
	}
	direct := make([]time.Duration, 0, n)
	for i := range n + n/10 {
		start := time.Now()
		if _, err := proc.Do(ctx, &worker.Request{ID: fmt.Sprint(i), Op: worker.OpOutput, Model: "m", Files: []string{query}, URIs: []string{"query.txt"}, StateDir: state}, nil); err != nil {
			return err
		}
		if i >= n/10 { // the first tenth warms up
			direct = append(direct, time.Since(start))
		}
	}
	_ = proc.Stop(ctx)

	// Through herd.
	svc, err := serve.Open(ctx, serve.Options{Worker: command, DataDir: filepath.Join(tmp, "herd"), FilesRoots: []string{files}})
	if err != nil {
		return err
	}
	if err := svc.Start(ctx); err != nil {
		return err
	}
	defer svc.Stop(ctx)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: svc.Handler()}
	go srv.Serve(ln)
	defer srv.Close()
	base := "http://" + ln.Addr().String()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	if err := waitReady(client, base); err != nil {
		return err
	}
	if err := trainVia(client, base); err != nil {
		return err
	}
	viaHerd := make([]time.Duration, 0, n)
	body := []byte(`{"Files": ["query.txt"], "model": "m"}`)
	for i := range n + n/10 {
		start := time.Now()
		resp, err := client.Post(base+"/output", "application/json", bytes.NewReader(body))
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("/output answered %d", resp.StatusCode)
		}
		if i >= n/10 {
			viaHerd = append(viaHerd, time.Since(start))
		}
	}

	d, h := summarize(direct), summarize(viaHerd)
	fmt.Printf("/output round trip, %d sequential requests each, worker %q\n\n", n, command)
	fmt.Printf("| path | p50 | p90 | p99 | mean |\n|---|---|---|---|---|\n")
	fmt.Printf("| worker direct (stdin/stdout) | %s | %s | %s | %s |\n", d[0], d[1], d[2], d[3])
	fmt.Printf("| through herd (HTTP + fetch + state + worker) | %s | %s | %s | %s |\n", h[0], h[1], h[2], h[3])
	fmt.Printf("| herd adds | %s | %s | %s | %s |\n", h[0]-d[0], h[1]-d[1], h[2]-d[2], h[3]-d[3])
	return nil
}

func summarize(ds []time.Duration) [4]time.Duration {
	slices.Sort(ds)
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	at := func(q float64) time.Duration { return ds[int(q*float64(len(ds)-1))].Round(time.Microsecond) }
	return [4]time.Duration{at(0.5), at(0.9), at(0.99), (sum / time.Duration(len(ds))).Round(time.Microsecond)}
}

func waitReady(client *http.Client, base string) error {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		resp, err := client.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("herd never became ready")
}

func trainVia(client *http.Client, base string) error {
	resp, err := client.Post(base+"/train", "application/json", bytes.NewReader([]byte(`{"Files": ["train.txt"], "model": "m"}`)))
	if err != nil {
		return err
	}
	var accepted struct{ JobID string }
	err = json.NewDecoder(resp.Body).Decode(&accepted)
	resp.Body.Close()
	if err != nil {
		return err
	}
	for range 500 {
		resp, err := client.Get(base + "/status?jobId=" + accepted.JobID)
		if err != nil {
			return err
		}
		var st struct{ State, Error string }
		_ = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		switch st.State {
		case "done":
			return nil
		case "error", "cancelled":
			return fmt.Errorf("training failed: %s", st.Error)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("training did not finish")
}
