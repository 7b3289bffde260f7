package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/herd-ml/herd/fetch"
	"github.com/herd-ml/herd/fetch/filecache"
	"github.com/herd-ml/herd/fetch/local"
	s3fetch "github.com/herd-ml/herd/fetch/s3"
	"github.com/herd-ml/herd/fetch/web"
	"github.com/herd-ml/herd/gpu"
	"github.com/herd-ml/herd/internal/s3client"
	"github.com/herd-ml/herd/job"
	"github.com/herd-ml/herd/model"
	"github.com/herd-ml/herd/store"
	"github.com/herd-ml/herd/store/file"
	s3store "github.com/herd-ml/herd/store/s3"
	"github.com/herd-ml/herd/worker"
)

// Options are the settings of a whole `herd serve`. Zero fields take the
// defaults stated.
type Options struct {
	Worker        string   // the worker command line; required
	WorkerDir     string   // its working directory; "" means herd's
	JobWorkers    int      // processes for train and input; default 1
	OutputWorkers int      // processes for /output; default 1
	DataDir       string   // SQLite file, model store, caches; default "herd-data"
	DatabaseURL   string   // postgres://... for a shared queue; "" means SQLite in DataDir
	Queue         string   // River queue name; default "herd"
	ModelStore    string   // file:///dir or a path; default DataDir/models
	ModelVersions int      // versions kept per model; default 5
	FilesRoots    []string // directories local files may come from
	AllowHTTP     bool     // accept http(s):// inputs
	AllowPrivate  bool     // let http(s) inputs and callbacks reach private addresses
	MaxFileSize   int64    // per downloaded file; default 1 GiB
	// S3 says where s3:// inputs and an s3:// model store live; credentials
	// come from the AWS SDK's standard chain.
	S3            s3client.Options
	S3Bucket      string // default bucket: input names without a scheme are keys in it
	CacheSize     int64  // bytes of downloaded inputs kept on disk; default 1 GiB
	Downloads     int    // downloads at once; default 8
	AuthToken     string
	MaxBodyBytes  int64
	OutputWait    time.Duration
	OutputTimeout time.Duration
	JobTimeout    time.Duration
	MaxAttempts   int
	CancelGrace   time.Duration
	SetupTimeout  time.Duration
	PollInterval  time.Duration
	Version       string
	Logger        *slog.Logger
}

// unavailable is the fetcher of a scheme whose client could not be built.
type unavailable struct{ err error }

func (u unavailable) Check(uri string) error {
	return fetch.Errorf(fetch.KindUnavailable, uri, "S3 is not usable here: %v", u.err)
}

func (u unavailable) Fetch(_ context.Context, uri, _ string) (string, error) { return "", u.Check(uri) }

// openStore opens the model store opts name: s3://bucket/prefix, or
// file:///dir or a path.
func openStore(ctx context.Context, opts Options, client *s3.Client) (store.Store, error) {
	where := opts.ModelStore
	if where == "" {
		where = filepath.Join(opts.DataDir, "models")
	}
	if strings.HasPrefix(where, "s3://") {
		return s3store.New(ctx, client, where, opts.ModelVersions)
	}
	dir, ok := strings.CutPrefix(where, "file://")
	if !ok && strings.Contains(where, "://") {
		return nil, fmt.Errorf("model store %q: use s3://bucket/prefix, file:///dir or a path", opts.ModelStore)
	}
	return file.New(dir, opts.ModelVersions)
}

// Service is a wired `herd serve`: worker pools, job queue and HTTP API.
type Service struct {
	opts       Options
	jobPool    *worker.Pool
	outputPool *worker.Pool
	queue      *job.Queue
	server     *Server
	closers    []func()
}

// Open builds a Service from opts, opening (and migrating) the database. It
// starts nothing; call Start.
func Open(ctx context.Context, opts Options) (*Service, error) {
	if strings.TrimSpace(opts.Worker) == "" {
		return nil, errors.New("no worker command: pass --worker 'python3 my_worker.py'")
	}
	if opts.DataDir == "" {
		opts.DataDir = "herd-data"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	tmp := filepath.Join(opts.DataDir, "tmp")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create data dir %s: %w", opts.DataDir, err)
	}
	s := &Service{opts: opts}

	localFiles, err := local.New(opts.FilesRoots)
	if err != nil {
		return nil, err
	}
	fetcher := fetch.Mux{"file": localFiles}
	fetched := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "herd_fetch_bytes_total", Help: "Bytes of input files downloaded (cache hits excluded), by scheme.",
	}, []string{"scheme"})
	counted := func(scheme string) func(int64) {
		c := fetched.WithLabelValues(scheme)
		return func(n int64) { c.Add(float64(n)) }
	}
	collectors := []prometheus.Collector{fetched}
	if g, err := gpu.Open(); err == nil {
		collectors = append(collectors, g)
		s.closers = append(s.closers, g.Close)
	} else {
		opts.Logger.Debug("serve.gpu", "metrics", "none", "why", err)
	}
	guarded := web.New(web.Config{MaxSize: opts.MaxFileSize, AllowPrivate: opts.AllowPrivate, Downloaded: counted("http")})
	if opts.AllowHTTP {
		fetcher["http"], fetcher["https"] = guarded, guarded
	}

	// Building the client contacts nothing; credentials are looked up at
	// the first S3 call. A broken AWS configuration (AWS_PROFILE naming no
	// profile, say) stops the start only where S3 is configured; elsewhere
	// s3:// inputs fail with its reason.
	s3c, err := s3client.New(ctx, opts.S3)
	usesS3 := opts.S3Bucket != "" || strings.HasPrefix(opts.ModelStore, "s3://")
	switch {
	case err != nil && usesS3:
		return nil, err
	case err != nil:
		opts.Logger.Warn("serve.s3", "error", err)
		fetcher["s3"] = unavailable{err}
	default:
		if opts.CacheSize <= 0 {
			opts.CacheSize = 1 << 30
		}
		cache, err := filecache.New(filepath.Join(opts.DataDir, "cache", "files"), opts.CacheSize)
		if err != nil {
			return nil, err
		}
		objects := s3fetch.New(s3fetch.Config{Client: s3c, Bucket: opts.S3Bucket, Cache: cache, MaxSize: opts.MaxFileSize, Parallel: opts.Downloads, Downloaded: counted("s3")})
		fetcher["s3"] = objects
		if opts.S3Bucket != "" {
			fetcher[""] = objects
		}
	}

	st, err := openStore(ctx, opts, s3c)
	if err != nil {
		return nil, err
	}
	models, err := model.NewManager(st, filepath.Join(opts.DataDir, "state"))
	if err != nil {
		return nil, err
	}

	wcfg := worker.Config{Command: opts.Worker, Dir: opts.WorkerDir, SetupTimeout: opts.SetupTimeout, CancelGrace: opts.CancelGrace, Logger: opts.Logger.With("pool", "jobs")}
	s.jobPool = worker.NewPool(wcfg, max(opts.JobWorkers, 1))
	wcfg.Logger = opts.Logger.With("pool", "output")
	s.outputPool = worker.NewPool(wcfg, max(opts.OutputWorkers, 1))

	qcfg := job.Config{
		Runner:       &Runner{Pool: s.jobPool, Fetcher: fetcher, Models: models, TempDir: tmp},
		Queue:        opts.Queue,
		Workers:      s.jobPool.Size(),
		MaxAttempts:  opts.MaxAttempts,
		JobTimeout:   opts.JobTimeout,
		CancelGrace:  opts.CancelGrace,
		PollInterval: opts.PollInterval,
		HTTPClient:   &http.Client{Transport: guarded.Client().Transport, Timeout: 10 * time.Second},
		Logger:       opts.Logger,
	}
	if opts.DatabaseURL != "" {
		pcfg, err := pgxpool.ParseConfig(opts.DatabaseURL)
		if err != nil {
			return nil, fmt.Errorf("bad database URL: %w", err)
		}
		if !strings.Contains(opts.DatabaseURL, "pool_max_conns") {
			// pgx's default (the CPU count, at least 4) starves River's
			// producer, completer and notifier beside the API's queries.
			pcfg.MaxConns = int32(max(10, 2*s.jobPool.Size()+4))
		}
		pool, err := pgxpool.NewWithConfig(ctx, pcfg)
		if err != nil {
			return nil, fmt.Errorf("cannot connect to Postgres: %w", err)
		}
		s.closers = append(s.closers, pool.Close)
		if s.queue, err = job.OpenPostgres(ctx, pool, qcfg); err != nil {
			s.close()
			return nil, err
		}
	} else {
		db, err := job.OpenSQLiteDB(filepath.Join(opts.DataDir, "herd.db"))
		if err != nil {
			return nil, err
		}
		s.closers = append(s.closers, func() { _ = db.Close() })
		if s.queue, err = job.OpenSQLite(ctx, db, qcfg); err != nil {
			s.close()
			return nil, err
		}
	}

	s.server = New(Config{
		Jobs:          s.queue,
		JobPool:       s.jobPool,
		OutputPool:    s.outputPool,
		Fetcher:       fetcher,
		Models:        models,
		AuthToken:     opts.AuthToken,
		MaxBodyBytes:  opts.MaxBodyBytes,
		OutputWait:    opts.OutputWait,
		OutputTimeout: opts.OutputTimeout,
		TempDir:       tmp,
		Version:       opts.Version,
		Logger:        opts.Logger,
		Collectors:    collectors,
	})
	return s, nil
}

// Handler is the HTTP API.
func (s *Service) Handler() http.Handler { return s.server }

// Start starts the workers and then the job queue.
func (s *Service) Start(ctx context.Context) error {
	if err := s.jobPool.Start(ctx); err != nil {
		return err
	}
	if err := s.outputPool.Start(ctx); err != nil {
		return err
	}
	return s.queue.Start(ctx)
}

// Stop stops taking jobs, lets running ones finish until ctx ends (then
// cancels them, leaving them to be retried), and stops the workers. Calling
// it twice is safe.
func (s *Service) Stop(ctx context.Context) error {
	err := s.queue.Stop(ctx)
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = s.jobPool.Stop(stopCtx)
	_ = s.outputPool.Stop(stopCtx)
	s.close()
	return err
}

func (s *Service) close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
	s.closers = nil
}
