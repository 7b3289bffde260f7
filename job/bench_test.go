package job

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"
)

// BenchmarkSubmitToDone is the queue alone (River, herd's job wrapper, the
// database) with a runner that does nothing: b.N jobs submitted by 16
// goroutines, timed until none is queued or running. bench/jobs measures the
// whole service, worker processes and model versions included.
func BenchmarkSubmitToDone(b *testing.B) {
	for name, open := range map[string]opener{"sqlite": openSQLite, "postgres": openPostgres} {
		b.Run(name, func(b *testing.B) {
			t := &testing.T{}
			noop := runnerFunc(func(context.Context, *Job, func(float64)) (json.RawMessage, string, error) { return nil, "", nil })
			q := open(t, Config{Runner: noop, Workers: 8, PollInterval: 50 * time.Millisecond})
			ctx := context.Background()
			if err := q.Start(ctx); err != nil {
				b.Fatal(err)
			}
			defer q.Stop(ctx)
			b.ResetTimer()
			var wg sync.WaitGroup
			for c := range 16 {
				wg.Go(func() {
					for i := c; i < b.N; i += 16 {
						if _, err := q.Submit(ctx, Args{Op: "input", Model: "m", Files: []string{"x"}}); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			for {
				queued, _ := q.List(ctx, Filter{State: StateQueued, Limit: 1})
				running, _ := q.List(ctx, Filter{State: StateRunning, Limit: 1})
				if len(queued) == 0 && len(running) == 0 {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
		})
	}
}
