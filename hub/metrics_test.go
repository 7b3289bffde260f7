package hub

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape reads url's Prometheus metrics as "name{label="value",...}" ->
// value; histograms appear as name_count and name_sum.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics = %s", resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for name, f := range families {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			sort.Strings(labels)
			key := name
			if len(labels) > 0 {
				key += "{" + strings.Join(labels, ",") + "}"
			}
			switch {
			case m.Gauge != nil:
				out[key] = m.GetGauge().GetValue()
			case m.Counter != nil:
				out[key] = m.GetCounter().GetValue()
			case m.Histogram != nil:
				out[strings.Replace(key, name, name+"_count", 1)] = float64(m.GetHistogram().GetSampleCount())
				out[strings.Replace(key, name, name+"_sum", 1)] = m.GetHistogram().GetSampleSum()
			}
		}
	}
	return out
}

func TestMetrics(t *testing.T) {
	t.Parallel()

	g := setupGrid(t, Config{}, 1, 1)
	first := createSession(t, g.url)
	get(t, g.url+"/session/"+first+"/title")
	get(t, g.url+"/session/"+first+"/url")

	// A second request queues behind the one slot.
	second := make(chan string, 1)
	go func() {
		_, body := post(t, g.url+"/session", `{"capabilities":{"alwaysMatch":{"browserName":"chrome"}}}`)
		second <- body
	}()
	waitFor(t, func() bool { return len(g.hub.queued()) == 1 })

	m := scrape(t, g.url)
	want := map[string]float64{
		`herd_grid_nodes{availability="UP"}`:                  1,
		`herd_grid_nodes{availability="DRAINING"}`:            0,
		`herd_grid_slots{browser="chrome"}`:                   1,
		`herd_grid_slots_busy{browser="chrome"}`:              1,
		`herd_grid_sessions{browser="chrome"}`:                1,
		`herd_grid_queue_length`:                              1,
		`herd_grid_commands_total{method="GET"}`:              2,
		`herd_grid_session_create_seconds_count{result="ok"}`: 1,
		`herd_grid_queue_wait_seconds_count`:                  0,
	}
	for k, v := range want {
		if got, ok := m[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	if m["herd_grid_queue_oldest_seconds"] <= 0 {
		t.Errorf("herd_grid_queue_oldest_seconds = %v with a request queued", m["herd_grid_queue_oldest_seconds"])
	}
	if m["process_resident_memory_bytes"] <= 0 || m["go_goroutines"] <= 0 {
		t.Errorf("process and Go runtime metrics missing")
	}

	deleteSession(t, g.url, first) // the queued request gets the slot
	var created struct{ Value struct{ SessionID string } }
	if err := json.Unmarshal([]byte(<-second), &created); err != nil || created.Value.SessionID == "" {
		t.Fatalf("queued session not created: %v", err)
	}
	deleteSession(t, g.url, created.Value.SessionID)

	m = scrape(t, g.url)
	for k, v := range map[string]float64{
		`herd_grid_queue_length`:                              0,
		`herd_grid_queue_wait_seconds_count`:                  1,
		`herd_grid_session_create_seconds_count{result="ok"}`: 2,
		`herd_grid_sessions_ended_total{reason="deleted"}`:    2,
		`herd_grid_sessions_ended_total{reason="timeout"}`:    0,
		`herd_grid_sessions{browser="chrome"}`:                0,
		`herd_grid_commands_total{method="DELETE"}`:           2,
	} {
		if got, ok := m[k]; !ok || got != v {
			t.Errorf("after the sessions ended: %s = %v (present %v), want %v", k, got, ok, v)
		}
	}
}
