package hub

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/herd-ml/herd/node"
)

// BenchmarkCommand is one session command through the hub and a relay node
// to a WebDriver that answers at once: the grid's own cost per command
// (compare BenchmarkCommandDirect). bench/grid measures it with real
// processes and against Chromium.
func BenchmarkCommand(b *testing.B) {
	stub := stubDriver()
	defer stub.Close()
	n, err := node.New(node.Config{Browsers: []node.Browser{{Stereotype: map[string]any{"browserName": "chrome"}, MaxSessions: 4, RelayURL: stub.URL}}})
	if err != nil {
		b.Fatal(err)
	}
	nodeSrv := httptest.NewServer(n)
	defer nodeSrv.Close()
	h := New(Config{})
	_ = h.Start(context.Background())
	defer h.Stop(context.Background())
	if err := h.Register(Registration{ID: "n", URI: nodeSrv.URL, Slots: []RegistrationSlot{{Stereotype: map[string]any{"browserName": "chrome"}, MaxSessions: 4}}}); err != nil {
		b.Fatal(err)
	}
	hubSrv := httptest.NewServer(h)
	defer hubSrv.Close()
	benchCommands(b, hubSrv.URL)
}

// BenchmarkCommandDirect is the same command sent to the stub directly.
func BenchmarkCommandDirect(b *testing.B) {
	stub := stubDriver()
	defer stub.Close()
	benchCommands(b, stub.URL)
}

func benchCommands(b *testing.B, base string) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	resp, err := client.Post(base+"/session", "application/json", strings.NewReader(`{"capabilities":{}}`))
	if err != nil {
		b.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	id := strings.Split(strings.Split(string(body), `"sessionId":"`)[1], `"`)[0]
	b.ResetTimer()
	for range b.N {
		resp, err := client.Get(base + "/session/" + id + "/title")
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

func stubDriver() *httptest.Server {
	var mu sync.Mutex
	next := 0
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		if r.Method == "POST" && r.URL.Path == "/session" {
			mu.Lock()
			next++
			id := next
			mu.Unlock()
			fmt.Fprintf(w, `{"value":{"sessionId":"stub-%d","capabilities":{}}}`, id)
			return
		}
		_, _ = w.Write([]byte(`{"value":"title"}`))
	}))
}
