// Command jobs measures job throughput through herd's API with a no-op
// worker: N jobs POSTed to /input by concurrent clients, timed from the first
// submit until every job reports done, on SQLite and on Postgres.
//
//	go run ./bench/jobs [-n 3000] [-workers 8] [-clients 16] [-database-url postgres://...]
//
// The database URL defaults to HERD_TEST_DATABASE_URL or the test database on
// herd's development machines; the benchmark creates and drops its own schema.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/herd-ml/herd/internal/testenv"
	"github.com/herd-ml/herd/serve"
)

func main() {
	n := flag.Int("n", 3000, "jobs per run")
	workers := flag.Int("workers", 8, "job worker processes")
	clients := flag.Int("clients", 16, "concurrent submitting clients")
	models := flag.Int("models", 1, "jobs spread round-robin over this many model keys")
	dbURL := flag.String("database-url", testenv.PostgresURL(), "Postgres for the shared-queue run")
	only := flag.String("only", "", "run one database only: sqlite or postgres")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of herd's side to this file")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	fmt.Printf("%d no-op jobs through POST /input, %d job workers, %d clients, %d model keys\n\n", *n, *workers, *clients, *models)
	fmt.Println("| database | submit (jobs/s) | submit-to-done (jobs/s) |")
	fmt.Println("|---|---|---|")
	for _, db := range []string{"sqlite", "postgres"} {
		if *only != "" && *only != db {
			continue
		}
		submit, done, err := run(db, *dbURL, *n, *workers, *clients, *models)
		if err != nil {
			log.Printf("%s: %v", db, err)
			return
		}
		fmt.Printf("| %s | %.0f | %.0f |\n", db, submit, done)
	}
}

func run(db, dbURL string, n, workers, clients, models int) (submitRate, doneRate float64, err error) {
	ctx := context.Background()
	tmp, err := os.MkdirTemp("", "herd-jobs-bench-")
	if err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(tmp)
	if err := os.WriteFile(filepath.Join(tmp, "x.txt"), []byte("1"), 0o644); err != nil {
		return 0, 0, err
	}
	opts := serve.Options{
		Worker:     "python3 bench/noop_worker.py",
		DataDir:    filepath.Join(tmp, "data"),
		FilesRoots: []string{tmp},
		JobWorkers: workers,
		// A replica polls only when idle; under load River fetches as jobs finish.
		PollInterval: 50 * time.Millisecond,
	}
	if db == "postgres" {
		schema := fmt.Sprintf("herd_bench_%d", time.Now().UnixNano())
		conn, err := pgx.Connect(ctx, dbURL)
		if err != nil {
			return 0, 0, err
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
			return 0, 0, err
		}
		defer conn.Exec(context.WithoutCancel(ctx), "DROP SCHEMA "+schema+" CASCADE")
		opts.DatabaseURL = dbURL + "&search_path=" + schema
	}
	svc, err := serve.Open(ctx, opts)
	if err != nil {
		return 0, 0, err
	}
	if err := svc.Start(ctx); err != nil {
		return 0, 0, err
	}
	defer svc.Stop(ctx)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, 0, err
	}
	srv := &http.Server{Handler: svc.Handler()}
	go srv.Serve(ln)
	defer srv.Close()
	base := "http://" + ln.Addr().String()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	for {
		resp, err := client.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
	}

	ids := make([]string, n)
	var wg sync.WaitGroup
	var firstErr error
	var mu sync.Mutex
	start := time.Now()
	for c := range clients {
		wg.Go(func() {
			for i := c; i < n; i += clients {
				body := fmt.Sprintf(`{"Files": ["x.txt"], "model": "m%d"}`, i%models)
				resp, err := client.Post(base+"/input", "application/json", strings.NewReader(body))
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					return
				}
				var accepted struct{ JobID string }
				_ = json.NewDecoder(resp.Body).Decode(&accepted)
				resp.Body.Close()
				ids[i] = accepted.JobID
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return 0, 0, firstErr
	}
	submitted := time.Since(start)
	// Timed: until no job is queued or running (two cheap list calls a poll).
	for {
		queued, err := count(client, base, "queued")
		if err != nil {
			return 0, 0, err
		}
		running, err := count(client, base, "running")
		if err != nil {
			return 0, 0, err
		}
		if queued == 0 && running == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond) // coarse: the polling itself loads the database
	}
	total := time.Since(start)
	// Untimed: every job must be done.
	for _, id := range ids {
		resp, err := client.Get(base + "/status?jobId=" + id)
		if err != nil {
			return 0, 0, err
		}
		var st struct{ State, Error string }
		_ = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if st.State != "done" {
			return 0, 0, fmt.Errorf("job %s: %s %s", id, st.State, st.Error)
		}
	}
	return float64(n) / submitted.Seconds(), float64(n) / total.Seconds(), nil
}

// count returns 0 or 1: whether any job is in state.
func count(client *http.Client, base, state string) (int, error) {
	resp, err := client.Get(base + "/jobs?limit=1&state=" + state)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var list struct{ Jobs []json.RawMessage }
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		return 0, err
	}
	return len(list.Jobs), nil
}
