// Command capacity replays a request trace with a traffic spike against
// KEDA + HPA scaling rules and against fixed fleets, and reports the GPU
// hours each uses and the queue wait jobs see, as a table and a plot.
//
//	go run ./bench/capacity -png docs/capacity.png
//
// The trace: 3 hours of GPU jobs (one job per GPU replica at a time),
// Poisson arrivals at 3 a minute with a 20-minute spike at 10 times that,
// log-normal service times with a mean of 40 s. The autoscaled service
// follows the manifests in deploy/k8s: KEDA's postgresql trigger on
// unfinished jobs, polled every 15 s, HPA's default scale-up limits and
// 300 s scale-down stabilisation, a cold start of 90 s for a GPU pod.
package main

import (
	"flag"
	"fmt"
	"image/color"
	"log"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

func main() {
	png := flag.String("png", "", "write the plot to this PNG file")
	seed := flag.Uint64("seed", 1, "trace seed")
	coldStart := flag.Float64("cold-start", 90, "seconds from a new replica's creation to its first job")
	flag.Parse()
	log.SetFlags(0)

	const horizon = 3 * 3600.0
	tr := SpikeTrace(*seed, horizon, 3.0/60, 10, 60*60, 80*60, 40)
	keda := Policy{Min: 1, Max: 30, PollingInterval: 15, Cooldown: 300, Target: 1, Stabilization: 300, ColdStart: *coldStart}
	toZero := keda
	toZero.Min = 0
	policies := []Policy{
		{Name: "fixed fleet sized for the spike (22 GPUs)", Fixed: 22},
		{Name: "fixed fleet sized for the average (4 GPUs)", Fixed: 4},
		withName(keda, "KEDA + HPA, 1 to 30 replicas"),
		withName(toZero, "KEDA + HPA, 0 to 30 replicas"),
	}
	fmt.Printf("%d jobs in %.0f h (3/min, 30/min from minute 60 to 80), mean service %.0f s; cold start %.0f s\n\n",
		len(tr.Arrivals), horizon/3600, 40.0, *coldStart)
	fmt.Println("| policy | GPU-hours | vs spike-sized fleet | queue wait p50 | p95 | max | longest queue |")
	fmt.Println("|---|---|---|---|---|---|---|")
	var results []Result
	for _, p := range policies {
		r := Simulate(tr, p, horizon)
		results = append(results, r)
	}
	for _, r := range results {
		fmt.Printf("| %s | %.1f | %.2f× | %.0f s | %.0f s | %.0f s | %d |\n", r.Policy.Name, r.GPUHours, r.GPUHours/results[0].GPUHours,
			r.WaitP50, r.WaitP95, r.Max, r.MaxQueue)
	}
	if *png != "" {
		if err := plotResults(*png, results); err != nil {
			log.Fatal(err)
		}
		fmt.Printf("\nplot: %s\n", *png)
	}
}

func withName(p Policy, name string) Policy {
	p.Name = name
	return p
}

// plotResults draws replicas over time for each policy, and the queue of
// the autoscaled one.
func plotResults(path string, results []Result) error {
	p := plot.New()
	p.Title.Text = "GPU replicas through a 10x traffic spike (minutes 60-80)"
	p.X.Label.Text = "minutes"
	p.Y.Label.Text = "replicas / queued jobs"
	colors := []color.RGBA{{200, 60, 60, 255}, {230, 150, 40, 255}, {40, 110, 200, 255}, {40, 160, 90, 255}}
	for i, r := range results {
		line, err := plotter.NewLine(points(r.Times, r.Replicas))
		if err != nil {
			return err
		}
		line.Color = colors[i%len(colors)]
		line.Width = vg.Points(1.5)
		p.Add(line)
		p.Legend.Add("replicas: "+r.Policy.Name, line)
	}
	q, err := plotter.NewLine(points(results[2].Times, results[2].Queue))
	if err != nil {
		return err
	}
	q.Color = color.RGBA{120, 120, 120, 255}
	q.Dashes = []vg.Length{vg.Points(3), vg.Points(3)}
	p.Add(q)
	p.Legend.Add("queued jobs: "+results[2].Policy.Name, q)
	p.Legend.Top = true
	p.Legend.Left = true
	p.Y.Min, p.Y.Max = 0, 45 // room for the legend above the lines
	return p.Save(10*vg.Inch, 5*vg.Inch, path)
}

func points(x, y []float64) plotter.XYs {
	pts := make(plotter.XYs, len(x))
	for i := range x {
		pts[i].X, pts[i].Y = x[i], y[i]
	}
	return pts
}
