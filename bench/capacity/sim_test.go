package main

import (
	"math"
	"testing"
)

func TestFixedFleetBillsEveryHour(t *testing.T) {
	tr := SpikeTrace(1, 3600, 1.0/60, 1, 0, 0, 20)
	r := Simulate(tr, Policy{Fixed: 3}, 3600)
	if math.Abs(r.GPUHours-3) > 0.01 {
		t.Fatalf("3 replicas for an hour used %.3f GPU-hours, want 3", r.GPUHours)
	}
	if r.WaitP95 > 60 {
		t.Fatalf("p95 wait %.0f s with 3 replicas for 1 job a minute", r.WaitP95)
	}
}

func TestScaleToZeroAndColdStart(t *testing.T) {
	// One job at minute 10 into an idle service that may scale to zero.
	tr := Trace{Arrivals: []float64{600}, Service: []float64{30}}
	p := Policy{Min: 0, Max: 5, PollingInterval: 15, Cooldown: 300, Target: 1, Stabilization: 300, ColdStart: 90}
	r := Simulate(tr, p, 3600)
	if r.WaitP50 < 90 || r.WaitP50 > 90+15+2 {
		t.Fatalf("the job waited %.0f s; want the cold start (90 s) plus at most one polling interval", r.WaitP50)
	}
	// Billed from the scale-up to the end of the cooldown and stabilisation
	// window, not for the idle hour.
	if r.GPUHours <= 0 || r.GPUHours > 0.25 {
		t.Fatalf("%.3f GPU-hours for one 30-second job", r.GPUHours)
	}
	p.Min = 1
	if r1 := Simulate(tr, p, 3600); r1.GPUHours < 0.99 || r1.WaitP50 != 0 {
		t.Fatalf("with one replica kept: %.3f GPU-hours, wait %.0f s; want about 1 and no wait", r1.GPUHours, r1.WaitP50)
	}
}

func TestAutoscalerStaysWithinMax(t *testing.T) {
	tr := SpikeTrace(2, 2*3600, 3.0/60, 20, 1800, 3600, 40)
	r := Simulate(tr, Policy{Min: 1, Max: 7, PollingInterval: 15, Cooldown: 300, Target: 1, Stabilization: 300, ColdStart: 60}, 2*3600)
	for i, n := range r.Replicas {
		if n > 7 {
			t.Fatalf("%v replicas at minute %.0f, max 7", n, r.Times[i])
		}
	}
	if r.MaxQueue == 0 {
		t.Fatal("a 20x spike on at most 7 replicas should queue")
	}
}
