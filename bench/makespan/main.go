// Command makespan measures herd run's scheduler: 1,000 chunks whose
// durations are skewed (many short, a few long; each chunk is a real
// `sleep` process), run once in file order with no timings and once ordered
// by the timings the first run recorded. Efficiency is the ideal makespan
// (total work ÷ workers, or the longest chunk if that is longer) divided by
// the actual one.
//
//	go run ./bench/makespan [-chunks 1000] [-parallel 32] [-mean 1s]
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"math"
	"math/rand/v2"
	"os/exec"
	"time"

	"github.com/herd-ml/herd/fanout"
)

func main() {
	chunks := flag.Int("chunks", 1000, "chunks to run")
	parallel := flag.Int("parallel", 32, "workers")
	mean := flag.Duration("mean", time.Second, "mean chunk duration")
	flag.Parse()
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		log.Fatal(err)
	}

	// Pareto (alpha 1.5) durations, capped at half the ideal makespan so
	// that a perfect order can reach efficiency 1.
	rng := rand.New(rand.NewPCG(1, 2))
	raw := make([]float64, *chunks)
	sum := 0.0
	for i := range raw {
		raw[i] = math.Min(1/math.Pow(1-rng.Float64(), 1/1.5), 40)
		sum += raw[i]
	}
	scale := mean.Seconds() * float64(*chunks) / sum
	var targets []fanout.Target
	total, longest := 0.0, 0.0
	for i, r := range raw {
		d := fmt.Sprintf("%.3f", r*scale)
		var secs float64
		fmt.Sscan(d, &secs)
		total += secs
		longest = max(longest, secs)
		targets = append(targets, fanout.Target{Value: d, Name: fmt.Sprintf("chunk %d (%ss)", i, d)})
	}
	ideal := math.Max(total/float64(*parallel), longest)
	fmt.Printf("%d chunks, %d workers: total work %.1f s, longest chunk %.2f s, ideal makespan %.2f s\n\n", *chunks, *parallel, total, longest, ideal)
	fmt.Println("| order | makespan | efficiency (ideal ÷ actual) |")
	fmt.Println("|---|---|---|")

	timings := fanout.Timings{}
	for _, withTimings := range []bool{false, true} {
		cfg := fanout.Config{Command: []string{sleep, "{target}"}, Chunks: fanout.Chunks(targets, 1), Parallel: *parallel}
		label := "file order, no timings"
		if withTimings {
			cfg.Timings = timings
			label = "longest first, timings of the run before"
		}
		res, err := fanout.Run(context.Background(), cfg)
		if err != nil {
			log.Fatal(err)
		}
		for _, c := range res.Chunks {
			if !c.Passed() {
				log.Fatalf("chunk %s failed", c.Chunk.Targets[0].Name)
			}
		}
		res.UpdateTimings(timings)
		actual := res.End.Sub(res.Start).Seconds()
		fmt.Printf("| %s | %.2f s | **%.2f** |\n", label, actual, ideal/actual)
	}
}
