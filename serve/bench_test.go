package serve

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/herd-ml/herd/internal/s3client"
	"github.com/herd-ml/herd/internal/s3test"
)

// BenchmarkOutput is POST /output through the whole service with the Python
// example worker, from parallel keep-alive clients. Compare the worker alone
// with bench/latency, and other servers with bench/output-rps.sh.
func BenchmarkOutput(b *testing.B) {
	t := &testing.T{}
	bundle := setup(t, setupOpts{worker: "python", mutate: func(o *Options) { o.OutputWorkers = 2 }})
	_ = t
	id := bundle.submit(t, "/train", `{"Files": ["a.txt", "b.txt"]}`)
	bundle.wait(t, id)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	body := []byte(`{"Files": ["query.txt"]}`)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Post(bundle.url+"/output", "application/json", bytes.NewReader(body))
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}

// BenchmarkOutputS3 is one /output call at a time with three small inputs:
// local files (the floor), S3 objects already in the fetch cache (warm),
// and S3 objects never fetched before (cold), against an S3 server on
// loopback. See BENCHMARKS.md.
func BenchmarkOutputS3(b *testing.B) {
	srv := s3test.Start(b, "inputs")
	t := &testing.T{}
	bundle := setup(t, setupOpts{worker: "python", mutate: func(o *Options) {
		o.S3 = s3client.Options{Endpoint: srv.URL, Region: s3test.Region, PathStyle: true,
			Credentials: credentials.NewStaticCredentialsProvider(s3test.AccessKey, s3test.SecretKey, "")}
		o.S3Bucket = "inputs"
	}})
	srv.Put(b, "inputs", "a.txt", []byte("1 2 3"))
	srv.Put(b, "inputs", "b.txt", []byte("3 4 5"))
	id := bundle.submit(t, "/train", `{"Files": ["a.txt", "b.txt"]}`)
	bundle.wait(t, id)
	for _, name := range []string{"q1.txt", "q2.txt", "q3.txt"} {
		srv.Put(b, "inputs", name, []byte("2 3 7"))
	}
	local := strconv.Quote(filepath.Join(bundle.files, "query.txt"))
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	call := func(b *testing.B, body string) {
		resp, err := client.Post(bundle.url+"/output", "application/json", strings.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d: %s", resp.StatusCode, raw)
		}
	}
	b.Run("local", func(b *testing.B) {
		for b.Loop() {
			call(b, `{"Files": [`+local+`, `+local+`, `+local+`]}`)
		}
	})
	b.Run("s3-warm", func(b *testing.B) {
		for b.Loop() {
			call(b, `{"Files": ["q1.txt", "q2.txt", "q3.txt"]}`)
		}
	})
	b.Run("s3-cold", func(b *testing.B) {
		n := 0
		for b.Loop() {
			b.StopTimer()
			var keys []string
			for range 3 {
				n++
				key := fmt.Sprintf("cold/%d-%d.txt", time.Now().UnixNano(), n)
				srv.Put(b, "inputs", key, []byte("2 3 7"))
				keys = append(keys, `"s3://inputs/`+key+`"`)
			}
			b.StartTimer()
			call(b, `{"Files": [`+strings.Join(keys, ", ")+`]}`)
		}
	})
}
