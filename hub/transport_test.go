package hub

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHandlerTransport(t *testing.T) {
	t.Parallel()

	local := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Path", r.URL.Path)
		w.WriteHeader(http.StatusTeapot)
		_, _ = w.Write([]byte("local:" + string(body)))
	})
	remote := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("remote"))
	}))
	t.Cleanup(remote.Close)
	remoteHost := strings.TrimPrefix(remote.URL, "http://")
	client := &http.Client{Transport: &HandlerTransport{Host: "node.local:1", Handler: local, Fallback: http.DefaultTransport}}

	resp, err := client.Post("http://node.local:1/session/x/url", "application/json", strings.NewReader("hi"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTeapot || string(b) != "local:hi" || resp.Header.Get("X-Path") != "/session/x/url" {
		t.Fatalf("in-process = %d %q %v", resp.StatusCode, b, resp.Header)
	}

	resp, err = client.Get("http://" + remoteHost + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "remote" {
		t.Fatalf("other host = %q, want the fallback's answer", b)
	}

	req, _ := http.NewRequest("GET", "http://node.local:1/session/x/se/cdp", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	if _, err := client.Do(req); err == nil {
		t.Fatal("an upgrade was served in process; it must go over a real connection")
	}
}
