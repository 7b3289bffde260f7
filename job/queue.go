package job

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"
)

// Config configures a Queue. Zero fields take the defaults stated.
type Config struct {
	// Runner does the work; required to work jobs (nil: insert and report only).
	Runner Runner
	// Queue names the River queue; services sharing a database need distinct
	// names. Default "herd".
	Queue string
	// Workers is how many jobs this process runs at once; default 1.
	Workers int
	// MaxAttempts is how often a job that crashed its worker is tried; default 3.
	MaxAttempts int
	// JobTimeout is the longest a job may run; default 1 hour. A job running
	// longer than this plus CancelGrace on a process that died is retried.
	JobTimeout time.Duration
	// CancelGrace is how long a cancelled job's worker gets to stop; default 5 s.
	CancelGrace time.Duration
	// PollInterval bounds the wait before a new job starts where the database
	// cannot notify (SQLite); default 50 ms.
	PollInterval time.Duration
	// HTTPClient delivers callbacks; default a client with a 10 s timeout.
	HTTPClient *http.Client
	// Logger receives queue events; nil discards them.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Queue == "" {
		c.Queue = "herd"
	}
	if c.Workers < 1 {
		c.Workers = 1
	}
	if c.MaxAttempts < 1 {
		c.MaxAttempts = 3
	}
	if c.JobTimeout <= 0 {
		c.JobTimeout = time.Hour
	}
	if c.CancelGrace <= 0 {
		c.CancelGrace = 5 * time.Second
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 50 * time.Millisecond
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// riverClient is the part of river.Client that herd uses; it does not depend
// on the driver's transaction type, so one Queue serves SQLite and Postgres.
type riverClient interface {
	Insert(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error)
	InsertMany(ctx context.Context, params []river.InsertManyParams) ([]*rivertype.JobInsertResult, error)
	JobCancel(ctx context.Context, id int64) (*rivertype.JobRow, error)
	JobGet(ctx context.Context, id int64) (*rivertype.JobRow, error)
	JobList(ctx context.Context, params *river.JobListParams) (*river.JobListResult, error)
	JobUpdate(ctx context.Context, id int64, params *river.JobUpdateParams) (*rivertype.JobRow, error)
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
	StopAndCancel(ctx context.Context) error
}

// Queue submits, runs and reports jobs. It is safe for concurrent use.
type Queue struct {
	cfg        Config
	client     riverClient
	batch      *batcher
	modelWhere string // SQL predicate on the job's model, in the database's dialect
	countRows  func(ctx context.Context) ([]Count, error)
}

// Count is how many unfinished jobs of one model and op are in one state.
type Count struct {
	Model, Op string
	State     State // StateQueued or StateRunning
	N         int
}

// countSQL groups the queue's unfinished ML jobs; model and op are read
// from args by the dialect's JSON operator.
func countSQL(model, op, param string) string {
	return `SELECT ` + model + `, ` + op + `, state, count(*) FROM river_job
WHERE queue = ` + param + ` AND kind = '` + kindML + `' AND state IN ('available', 'pending', 'retryable', 'scheduled', 'running')
GROUP BY 1, 2, 3`
}

// Counts returns the unfinished jobs by model, op and state (queued or
// running), read in one query for metrics and autoscalers.
func (q *Queue) Counts(ctx context.Context) ([]Count, error) { return q.countRows(ctx) }

// rows is what database/sql's and pgx's query results share.
type rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// collectCounts reads countSQL's rows, folding River's waiting states into
// queued.
func collectCounts(r rows) ([]Count, error) {
	byKey := map[[3]string]int{}
	for r.Next() {
		var model, op, state string
		var n int
		if err := r.Scan(&model, &op, &state, &n); err != nil {
			return nil, err
		}
		st := StateQueued
		if state == "running" {
			st = StateRunning
		}
		byKey[[3]string{model, op, string(st)}] += n
	}
	out := make([]Count, 0, len(byKey))
	for k, n := range byKey {
		out = append(out, Count{Model: k[0], Op: k[1], State: State(k[2]), N: n})
	}
	return out, r.Err()
}

// OpenSQLite returns a Queue on the SQLite database db (see OpenSQLiteDB),
// migrating River's tables first.
func OpenSQLite(ctx context.Context, db *sql.DB, cfg Config) (*Queue, error) {
	cfg = cfg.withDefaults()
	driver := riversqlite.New(db)
	if err := migrate(ctx, driver); err != nil {
		return nil, err
	}
	q := &Queue{cfg: cfg, modelWhere: "json_extract(args, '$.model') = @model"}
	query := countSQL("json_extract(args, '$.model')", "json_extract(args, '$.op')", "?")
	q.countRows = func(ctx context.Context) ([]Count, error) {
		rows, err := db.QueryContext(ctx, query, cfg.Queue)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		return collectCounts(rows)
	}
	rc := q.riverConfig()
	rc.PollOnly = true
	client, err := river.NewClient(driver, rc)
	if err != nil {
		return nil, err
	}
	q.client = client
	q.batch = newBatcher(client, cfg.Queue)
	return q, nil
}

// OpenPostgres returns a Queue on a Postgres pool, migrating River's tables
// first (under an advisory lock, so replicas can start together).
func OpenPostgres(ctx context.Context, pool *pgxpool.Pool, cfg Config) (*Queue, error) {
	cfg = cfg.withDefaults()
	driver := riverpgxv5.New(pool)
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("cannot connect to Postgres: %w", err)
	}
	defer conn.Release()
	const lockID = 0x68657264 // "herd"
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", lockID); err != nil {
		return nil, err
	}
	err = migrate(ctx, driver)
	_, _ = conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", lockID)
	if err != nil {
		return nil, err
	}
	q := &Queue{cfg: cfg, modelWhere: "args->>'model' = @model"}
	query := countSQL("args->>'model'", "args->>'op'", "$1")
	q.countRows = func(ctx context.Context) ([]Count, error) {
		rows, err := pool.Query(ctx, query, cfg.Queue)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		return collectCounts(rows)
	}
	client, err := river.NewClient(driver, q.riverConfig())
	if err != nil {
		return nil, err
	}
	q.client = client
	q.batch = newBatcher(client, cfg.Queue)
	return q, nil
}

func migrate[TTx any](ctx context.Context, driver riverdriver.Driver[TTx]) error {
	m, err := rivermigrate.New(driver, nil)
	if err != nil {
		return err
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("cannot migrate the job tables: %w", err)
	}
	return nil
}

func (q *Queue) riverConfig() *river.Config {
	cfg := &river.Config{
		FetchCooldown:     2 * time.Millisecond,
		FetchPollInterval: q.cfg.PollInterval,
		// River's own timeout is a backstop; the Runner enforces JobTimeout
		// and says so in the job's error.
		JobTimeout:           q.cfg.JobTimeout + q.cfg.CancelGrace + 5*time.Second,
		RescueStuckJobsAfter: q.cfg.JobTimeout + q.cfg.CancelGrace + 10*time.Second,
		MaxAttempts:          q.cfg.MaxAttempts,
		Logger:               q.cfg.Logger,
		RetryPolicy:          retryPolicy{},
	}
	if q.cfg.Runner != nil {
		workers := river.NewWorkers()
		river.AddWorker(workers, &mlWorker{q: q})
		river.AddWorker(workers, &callbackWorker{q: q})
		cfg.Workers = workers
		cfg.Queues = map[string]river.QueueConfig{q.cfg.Queue: {MaxWorkers: q.cfg.Workers}}
	}
	return cfg
}

// retryPolicy retries after 1 s, 2 s, 4 s ... up to a minute.
type retryPolicy struct{}

func (retryPolicy) NextRetry(job *rivertype.JobRow) time.Time {
	d := time.Second << min(job.Attempt-1, 6)
	return time.Now().Add(min(d, time.Minute))
}

// Start starts working jobs (when a Runner is configured).
func (q *Queue) Start(ctx context.Context) error {
	if q.cfg.Runner == nil {
		return nil
	}
	return q.client.Start(ctx)
}

// Stop stops taking jobs and waits for running ones until ctx ends; then
// their contexts are cancelled. It also stops accepting submissions. Calling
// it twice is safe.
func (q *Queue) Stop(ctx context.Context) error {
	defer q.batch.close()
	if q.cfg.Runner == nil {
		return nil
	}
	err := q.client.Stop(ctx)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		// Out of patience: cancel what still runs; River marks it for retry.
		cancelCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), q.cfg.CancelGrace+5*time.Second)
		defer cancel()
		_ = q.client.StopAndCancel(cancelCtx)
		return nil
	}
	return err
}

// Submit stores a new job and returns its id.
// Concurrent submissions share insert transactions (see batcher).
func (q *Queue) Submit(ctx context.Context, args Args) (string, error) {
	id, err := q.batch.submit(ctx, args)
	if err != nil {
		return "", fmt.Errorf("cannot store job: %w", err)
	}
	return strconv.FormatInt(id, 10), nil
}

var errStopped = errors.New("job queue stopped")

// Get returns a job's status, or ErrNotFound.
func (q *Queue) Get(ctx context.Context, id string) (*Status, error) {
	n, err := parseID(id)
	if err != nil {
		return nil, err
	}
	row, err := q.client.JobGet(ctx, n)
	if errors.Is(err, river.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if row.Kind != kindML {
		return nil, ErrNotFound
	}
	st, err := statusOf(row)
	if err != nil {
		return nil, err
	}
	if cb := decodeOutput(row).CallbackJob; cb != 0 && st.Callback != nil {
		q.fillCallback(ctx, cb, st.Callback)
	}
	return st, nil
}

// Filter selects jobs for List. Zero fields select everything.
type Filter struct {
	State State
	Model string
	Limit int // default 100, at most 1000
}

// List returns jobs matching f, newest first.
func (q *Queue) List(ctx context.Context, f Filter) ([]*Status, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 1000)
	params := river.NewJobListParams().Kinds(kindML).Queues(q.cfg.Queue).
		OrderBy(river.JobListOrderByID, river.SortOrderDesc).First(limit)
	if f.Model != "" {
		params = params.Where(q.modelWhere, river.NamedArgs{"model": f.Model})
	}
	if f.State != "" {
		params = params.States(riverStates(f.State)...)
	}
	res, err := q.client.JobList(ctx, params)
	if err != nil {
		return nil, err
	}
	out := make([]*Status, 0, len(res.Jobs))
	for _, row := range res.Jobs {
		st, err := statusOf(row)
		if err != nil {
			return nil, err
		}
		// "cancelled" in River holds both cancelled and failed-for-good jobs.
		if f.State != "" && st.State != f.State {
			continue
		}
		out = append(out, st)
	}
	return out, nil
}

func riverStates(s State) []rivertype.JobState {
	switch s {
	case StateQueued:
		return []rivertype.JobState{rivertype.JobStateAvailable, rivertype.JobStateScheduled, rivertype.JobStateRetryable, rivertype.JobStatePending}
	case StateRunning:
		return []rivertype.JobState{rivertype.JobStateRunning}
	case StateDone:
		return []rivertype.JobState{rivertype.JobStateCompleted}
	case StateError:
		return []rivertype.JobState{rivertype.JobStateDiscarded, rivertype.JobStateCancelled}
	default:
		return []rivertype.JobState{rivertype.JobStateCancelled}
	}
}

// Cancel cancels a job: a queued job never starts; a running one has its
// context cancelled wherever it runs. Cancelling an ended job changes
// nothing. It returns the job's status afterwards, or ErrNotFound.
func (q *Queue) Cancel(ctx context.Context, id string) (*Status, error) {
	n, err := parseID(id)
	if err != nil {
		return nil, err
	}
	if _, err := q.Get(ctx, id); err != nil {
		return nil, err
	}
	row, err := q.client.JobCancel(ctx, n)
	if errors.Is(err, river.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if row.State == rivertype.JobStateCancelled && q.cfg.Runner != nil {
		// Cancelled before it ran: no worker will send its callback.
		var args Args
		if err := json.Unmarshal(row.EncodedArgs, &args); err == nil && args.CallbackURL != "" {
			if cb, err := q.insertCallback(ctx, row.ID, args.CallbackURL); err == nil {
				_, _ = q.client.JobUpdate(ctx, row.ID, &river.JobUpdateParams{Output: output{CallbackJob: cb}})
			}
		}
	}
	return q.Get(ctx, id)
}
