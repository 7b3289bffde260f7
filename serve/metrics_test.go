package serve

import (
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func TestMetrics(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{worker: "python"})
	id := b.submit(t, "/train", `{"Files": ["a.txt", "b.txt"], "model": "m1"}`)
	b.wait(t, id)
	b.output(t, `{"Files": ["query.txt"], "model": "m1"}`)
	if status, _, _ := b.call(t, "POST", "/output", `{"Files": ["query.txt"], "model": "never-trained"}`); status != 422 {
		t.Fatalf("output of an untrained model: %d", status)
	}

	status, _, raw := b.call(t, "GET", "/metrics", "")
	if status != 200 {
		t.Fatalf("GET /metrics = %d %s", status, raw)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	value := func(name string, labels map[string]string) (float64, bool) {
		for _, m := range families[name].GetMetric() {
			ok := true
			for _, l := range m.GetLabel() {
				if want, has := labels[l.GetName()]; has && want != l.GetValue() {
					ok = false
				}
			}
			if !ok {
				continue
			}
			switch {
			case m.Gauge != nil:
				return m.GetGauge().GetValue(), true
			case m.Histogram != nil:
				return float64(m.GetHistogram().GetSampleCount()), true
			}
		}
		return 0, false
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"herd_worker_slots", map[string]string{"pool": "jobs"}, 1},
		{"herd_worker_slots", map[string]string{"pool": "output"}, 1},
		{"herd_worker_slots_busy", map[string]string{"pool": "output"}, 0},
		{"herd_output_seconds", map[string]string{"outcome": "ok"}, 1},
		{"herd_output_seconds", map[string]string{"outcome": "algorithm_error"}, 1},
		{"herd_jobs_scrape_error", nil, 0},
	} {
		if got, ok := value(c.name, c.labels); !ok || got != c.want {
			t.Errorf("%s%v = %v (found %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	// The job is done, so nothing is queued or running.
	if n := len(families["herd_jobs"].GetMetric()); n != 0 {
		t.Errorf("herd_jobs has %d series with every job done", n)
	}
	if _, ok := families["go_goroutines"]; !ok {
		t.Error("Go runtime metrics missing")
	}
}
