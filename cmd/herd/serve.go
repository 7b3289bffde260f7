package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strings"
	"time"

	"github.com/herd-ml/herd/serve"
)

// ServeCommand is `herd serve`.
type ServeCommand struct {
	Stdout, Stderr io.Writer
}

// serveFlags are the command line of `herd serve`.
type serveFlags struct {
	addr          string
	debugAddr     string
	authTokenFile string
	logLevel      string
	shutdownGrace time.Duration
	workers       int
	opts          serve.Options
	filesRoots    stringList
}

func (c *ServeCommand) flagSet(f *serveFlags) *flag.FlagSet {
	fs := flag.NewFlagSet("herd serve", flag.ContinueOnError)
	fs.SetOutput(c.Stderr)
	o := &f.opts
	fs.StringVar(&f.addr, "addr", ":8080", "address to listen on")
	fs.StringVar(&f.debugAddr, "debug-addr", "", "if set, serve Go's pprof profiles on this address (keep it private), e.g. 127.0.0.1:6060")
	fs.StringVar(&o.Worker, "worker", "", "worker command line, e.g. 'python3 examples/mean-python/worker.py' (required)")
	fs.StringVar(&o.WorkerDir, "worker-dir", "", "working directory of the workers (default: herd's)")
	fs.IntVar(&f.workers, "workers", 1, "worker processes for jobs and, separately, for /output")
	fs.IntVar(&o.JobWorkers, "job-workers", 0, "worker processes for train and input jobs (default: --workers)")
	fs.IntVar(&o.OutputWorkers, "output-workers", 0, "worker processes for /output (default: --workers)")
	fs.StringVar(&o.DataDir, "data-dir", "herd-data", "directory for the SQLite job database, models and downloads")
	fs.StringVar(&o.DatabaseURL, "database-url", "", "postgres://... to share jobs between replicas (also DATABASE_URL); default SQLite in --data-dir")
	fs.StringVar(&o.Queue, "queue", "herd", "job queue name; services sharing one database need distinct names")
	fs.StringVar(&o.ModelStore, "model-store", "", "where model versions live, shared by replicas: s3://bucket/prefix, file:///dir or a path (default: <data-dir>/models)")
	fs.IntVar(&o.ModelVersions, "model-versions", 5, "versions of each model kept in the model store")
	fs.Var(&f.filesRoots, "files-root", "directory that file paths and file:// URIs may come from (repeatable)")
	fs.BoolVar(&o.AllowHTTP, "allow-http", false, "accept http:// and https:// input files")
	fs.BoolVar(&o.AllowPrivate, "allow-private-http", false, "let http(s) inputs and callbacks reach loopback and private addresses")
	fs.Int64Var(&o.MaxFileSize, "max-file-size", 1<<30, "largest downloaded input file, in bytes")
	fs.StringVar(&o.S3Bucket, "s3-bucket", "", "default bucket: input names without a scheme (\"path/in/bucket\") are keys in it")
	fs.StringVar(&o.S3.Endpoint, "s3-endpoint", "", "S3-compatible endpoint, e.g. http://127.0.0.1:9000 for MinIO (default: AWS); credentials come from the AWS chain (AWS_ACCESS_KEY_ID, ~/.aws, roles)")
	fs.StringVar(&o.S3.Region, "s3-region", "", "S3 region (default: AWS_REGION or the AWS config, else us-east-1)")
	fs.BoolVar(&o.S3.PathStyle, "s3-path-style", false, "put the bucket in the URL path, as MinIO and most self-hosted stores need")
	fs.Int64Var(&o.CacheSize, "cache-size", 1<<30, "bytes of downloaded S3 inputs kept on disk, least recently used evicted first")
	fs.IntVar(&o.Downloads, "downloads", 8, "S3 downloads at once")
	fs.StringVar(&f.authTokenFile, "auth-token-file", "", "file holding a bearer token every call but /healthz must send (or HERD_AUTH_TOKEN)")
	fs.Int64Var(&o.MaxBodyBytes, "max-body", 1<<20, "largest request body, in bytes")
	fs.DurationVar(&o.OutputWait, "output-wait", 5*time.Second, "longest /output waits for a free worker before answering 503")
	fs.DurationVar(&o.OutputTimeout, "output-timeout", 60*time.Second, "longest a worker may take for one /output")
	fs.DurationVar(&o.JobTimeout, "job-timeout", time.Hour, "longest a train or input job may run, counted from its start (waiting for a worker included)")
	fs.IntVar(&o.MaxAttempts, "max-attempts", 3, "tries of a job whose worker crashed (algorithm errors are not retried)")
	fs.DurationVar(&o.CancelGrace, "cancel-grace", 5*time.Second, "time a worker told to stop (SIGINT) gets before it is killed")
	fs.DurationVar(&o.SetupTimeout, "setup-timeout", 2*time.Minute, "longest a worker may take to start and report ready")
	fs.DurationVar(&o.PollInterval, "poll-interval", 50*time.Millisecond, "how often idle replicas look for new jobs (SQLite, or Postgres without notifications)")
	fs.DurationVar(&f.shutdownGrace, "shutdown-grace", 30*time.Second, "on SIGTERM, time running jobs get to finish before they are handed back to the queue")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprintf(c.Stderr, "Usage: herd serve --worker CMD [flags]\n\nServes an ML algorithm behind POST /train, /input, /output and GET /status.\nEvery flag can be set as HERD_<FLAG> in the environment.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	return fs
}

// parse reads args and the environment into validated options.
func (c *ServeCommand) parse(args []string) (*serveFlags, error) {
	f := &serveFlags{}
	fs := c.flagSet(f)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return nil, usageError{fmt.Sprintf("unexpected arguments %q (quote the worker command: --worker 'python3 w.py')", fs.Args())}
	}
	if err := applyEnv(fs); err != nil {
		return nil, err
	}
	o := &f.opts
	if o.DatabaseURL == "" {
		o.DatabaseURL = os.Getenv("DATABASE_URL")
	}
	o.FilesRoots = f.filesRoots
	if o.JobWorkers == 0 {
		o.JobWorkers = f.workers
	}
	if o.OutputWorkers == 0 {
		o.OutputWorkers = f.workers
	}
	switch {
	case o.Worker == "":
		return nil, usageError{"--worker is required, e.g. --worker 'python3 examples/mean-python/worker.py'"}
	case f.workers < 1 || o.JobWorkers < 1 || o.OutputWorkers < 1:
		return nil, usageError{"--workers, --job-workers and --output-workers must be at least 1"}
	case o.MaxAttempts < 1:
		return nil, usageError{"--max-attempts must be at least 1"}
	}
	o.AuthToken = os.Getenv("HERD_AUTH_TOKEN")
	if f.authTokenFile != "" {
		b, err := os.ReadFile(f.authTokenFile)
		if err != nil {
			return nil, fmt.Errorf("cannot read --auth-token-file: %w", err)
		}
		o.AuthToken = strings.TrimSpace(string(b))
		if o.AuthToken == "" {
			return nil, fmt.Errorf("--auth-token-file %s is empty", f.authTokenFile)
		}
	}
	return f, nil
}

// Run runs herd serve until ctx ends, then shuts down gracefully.
func (c *ServeCommand) Run(ctx context.Context, args []string) error {
	f, err := c.parse(args)
	if err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return usageError{fmt.Sprintf("--log-level %q: use debug, info, warn or error", f.logLevel)}
	}
	logger := slog.New(slog.NewTextHandler(c.Stderr, &slog.HandlerOptions{Level: level}))
	f.opts.Logger = logger
	f.opts.Version = version

	svc, err := serve.Open(ctx, f.opts)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		_ = svc.Stop(ctx)
		return err
	}
	// The workers and the queue outlive ctx: on SIGTERM, Stop below lets
	// running jobs finish within --shutdown-grace instead of cutting them.
	if err := svc.Start(context.WithoutCancel(ctx)); err != nil {
		_ = svc.Stop(ctx)
		return err
	}
	if f.debugAddr != "" {
		go serveDebug(f.debugAddr, logger)
	}
	srv := &http.Server{Handler: svc.Handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	store := "sqlite:" + f.opts.DataDir + "/herd.db"
	if f.opts.DatabaseURL != "" {
		store = "postgres"
	}
	logger.Info("serve.listening", "url", "http://"+listenURL(ln.Addr()), "worker", f.opts.Worker,
		"job_workers", f.opts.JobWorkers, "output_workers", f.opts.OutputWorkers, "jobs", store)

	select {
	case err := <-errc:
		_ = svc.Stop(context.Background())
		return err
	case <-ctx.Done():
	}
	logger.Info("serve.stopping", "grace", f.shutdownGrace)
	grace, cancel := context.WithTimeout(context.Background(), f.shutdownGrace)
	defer cancel()
	_ = srv.Shutdown(grace)
	return svc.Stop(grace)
}

// serveDebug serves pprof on its own listener, never on the API's.
func serveDebug(addr string, logger *slog.Logger) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	logger.Info("serve.debug", "url", "http://"+addr+"/debug/pprof/")
	if err := http.ListenAndServe(addr, mux); err != nil {
		logger.Error("serve.debug_failed", "error", err)
	}
}

func listenURL(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if ok && tcp.IP.IsUnspecified() {
		return fmt.Sprintf("localhost:%d", tcp.Port)
	}
	return a.String()
}
