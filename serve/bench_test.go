package serve

import (
	"bytes"
	"io"
	"net/http"
	"testing"
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
