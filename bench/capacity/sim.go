package main

import (
	"math"
	"math/rand/v2"
	"slices"
)

// Trace is a request trace: arrival times and service times, in seconds.
type Trace struct {
	Arrivals []float64
	Service  []float64
}

// SpikeTrace draws a Poisson trace of length horizon: base jobs per second,
// multiplied by spikeFactor between spikeStart and spikeEnd; service times
// are log-normal with the given mean (sigma 0.5).
func SpikeTrace(seed uint64, horizon, base, spikeFactor, spikeStart, spikeEnd, meanService float64) Trace {
	rng := rand.New(rand.NewPCG(seed, 8))
	var tr Trace
	const sigma = 0.5
	mu := math.Log(meanService) - sigma*sigma/2
	peak := base * spikeFactor
	// Thinning: draw at the peak rate, keep each arrival with rate(t)/peak.
	for t := rng.ExpFloat64() / peak; t < horizon; t += rng.ExpFloat64() / peak {
		rate := base
		if t >= spikeStart && t < spikeEnd {
			rate = peak
		}
		if rng.Float64() < rate/peak {
			tr.Arrivals = append(tr.Arrivals, t)
			tr.Service = append(tr.Service, math.Exp(mu+sigma*rng.NormFloat64()))
		}
	}
	return tr
}

// Policy is how many replicas run: a fixed fleet, or KEDA + HPA rules.
type Policy struct {
	Name string
	// Fixed > 0: that many replicas all the time; the rest is ignored.
	Fixed int
	// KEDA ScaledObject: min and max replicas, polling interval, cooldown
	// before scaling to zero, and the metric's target per replica (the
	// postgresql trigger's targetQueryValue: unfinished jobs per replica).
	Min, Max        int
	PollingInterval float64
	Cooldown        float64
	Target          float64
	// HPA: scale-down stabilisation window (default 300 s); scale-up is
	// limited to max(doubling, +4 pods) per 15 s, HPA's default policy.
	Stabilization float64
	// ColdStart is the time from a new replica's creation to its taking
	// jobs (scheduling, image pull, worker setup and model load).
	ColdStart float64
}

// Result is one policy's run over a trace.
type Result struct {
	Policy                 Policy
	GPUHours               float64
	WaitP50, WaitP95, Max  float64 // queue wait, seconds
	MaxQueue               int
	Times, Replicas, Queue []float64 // sampled every 10 s, for the plot
}

type replica struct {
	readyAt float64 // when it takes jobs
	busyTil float64 // its current job ends (0: idle)
	leaving bool    // scaled down: finishes its job, then goes
}

// Simulate replays tr under p with a one-second step. Each replica runs one
// job at a time (one GPU). A replica scaled down finishes its running job
// first (herd serve's --shutdown-grace) and is billed until it is gone.
func Simulate(tr Trace, p Policy, horizon float64) Result {
	const dt = 1.0
	res := Result{Policy: p}
	var reps []*replica
	add := func(now float64, n int) {
		for range n {
			reps = append(reps, &replica{readyAt: now + p.ColdStart})
		}
	}
	if p.Fixed > 0 {
		add(-p.ColdStart, p.Fixed) // ready from the start
	} else {
		add(-p.ColdStart, p.Min)
	}
	var queue []int // indexes of waiting jobs, in arrival order
	next := 0       // next arrival
	var waits []float64
	var history []struct{ t, desired float64 } // for the stabilisation window
	lastActive := math.Inf(-1)                 // idle since ever: min 0 starts at zero
	lastPoll := math.Inf(-1)
	lastScaleUp := math.Inf(-1)

	for now := 0.0; now < horizon; now += dt {
		for next < len(tr.Arrivals) && tr.Arrivals[next] <= now {
			queue = append(queue, next)
			next++
		}
		// Finish jobs; replicas leaving go once idle.
		running := 0
		kept := reps[:0]
		for _, r := range reps {
			if r.busyTil != 0 && r.busyTil <= now {
				r.busyTil = 0
			}
			if r.leaving && r.busyTil == 0 {
				continue
			}
			if r.busyTil != 0 {
				running++
			}
			kept = append(kept, r)
		}
		reps = kept
		// Start jobs on idle, ready replicas.
		for _, r := range reps {
			if len(queue) == 0 {
				break
			}
			if !r.leaving && r.busyTil == 0 && r.readyAt <= now {
				j := queue[0]
				queue = queue[1:]
				waits = append(waits, now-tr.Arrivals[j])
				r.busyTil = now + tr.Service[j]
				running++
			}
		}
		if len(queue) > res.MaxQueue {
			res.MaxQueue = len(queue)
		}

		// Autoscaling: KEDA polls the metric, the HPA acts on it.
		if p.Fixed == 0 && now-lastPoll >= p.PollingInterval {
			lastPoll = now
			metric := float64(len(queue) + running)
			if metric > 0 {
				lastActive = now
			}
			desired := int(math.Ceil(metric / p.Target))
			desired = min(max(desired, p.Min), p.Max)
			if desired == 0 && p.Min == 0 && now-lastActive < p.Cooldown {
				desired = 1 // KEDA keeps one replica until the cooldown passes
			}
			history = append(history, struct{ t, desired float64 }{now, float64(desired)})
			// Scale down only to the highest recommendation of the window.
			stable := 0.0
			for _, h := range history {
				if now-h.t <= p.Stabilization {
					stable = max(stable, h.desired)
				}
			}
			current := 0
			for _, r := range reps {
				if !r.leaving {
					current++
				}
			}
			switch {
			case desired > current:
				if now-lastScaleUp >= 15 {
					limit := max(2*current, current+4)
					add(now, min(desired, limit)-current)
					lastScaleUp = now
				}
			case int(stable) < current:
				drop := current - int(stable)
				// Idle replicas go first, then the most recently started.
				slices.SortStableFunc(reps, func(a, b *replica) int {
					return boolInt(a.busyTil == 0 && !a.leaving) - boolInt(b.busyTil == 0 && !b.leaving)
				})
				for i := len(reps) - 1; i >= 0 && drop > 0; i-- {
					if !reps[i].leaving {
						reps[i].leaving = true
						drop--
					}
				}
			}
		}
		res.GPUHours += float64(len(reps)) * dt / 3600
		if int(now)%10 == 0 {
			res.Times = append(res.Times, now/60)
			res.Replicas = append(res.Replicas, float64(len(reps)))
			res.Queue = append(res.Queue, float64(len(queue)))
		}
	}
	slices.Sort(waits)
	if len(waits) > 0 {
		res.WaitP50 = waits[len(waits)/2]
		res.WaitP95 = waits[int(0.95*float64(len(waits)-1))]
		res.Max = waits[len(waits)-1]
	}
	return res
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
