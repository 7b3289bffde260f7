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
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/herd-ml/herd/hub"
	"github.com/herd-ml/herd/node"
	"github.com/herd-ml/herd/webdriver"
)

// hubFlags are the settings `herd hub` and `herd standalone` share.
type hubFlags struct {
	cfg           hub.Config
	secretFile    string
	basicAuthFile string
}

func (f *hubFlags) register(fs *flag.FlagSet) {
	fs.DurationVar(&f.cfg.SessionTimeout, "session-timeout", 300*time.Second, "end a session after this long without a command")
	fs.DurationVar(&f.cfg.QueueTimeout, "queue-timeout", 300*time.Second, "fail a new-session request that found no free slot in this time")
	fs.DurationVar(&f.cfg.NodeTimeout, "node-timeout", 30*time.Second, "drop a node that sent no heartbeat for this long")
	fs.DurationVar(&f.cfg.HeartbeatPeriod, "heartbeat", 5*time.Second, "how often nodes are told to heartbeat")
	fs.BoolVar(&f.cfg.KeepUnmatched, "keep-unmatched", false, "queue requests no registered node could serve (autoscaled fleets) instead of failing them")
	fs.StringVar(&f.cfg.PublicURL, "public-url", "", "the hub's URL as clients see it, for the se:cdp and webSocketUrl capabilities (default: the Host each client used)")
	fs.StringVar(&f.secretFile, "registration-secret-file", "", "file holding the secret nodes and operator calls must send (or HERD_REGISTRATION_SECRET)")
	fs.StringVar(&f.basicAuthFile, "basic-auth-file", "", "file holding user:password that clients must send as HTTP basic auth (or HERD_BASIC_AUTH); default no auth")
}

func (f *hubFlags) config(logger *slog.Logger) (hub.Config, error) {
	cfg := f.cfg
	cfg.Logger, cfg.Version = logger, version
	secret, err := readSecret(f.secretFile, "HERD_REGISTRATION_SECRET")
	if err != nil {
		return cfg, err
	}
	cfg.RegistrationSecret = secret
	auth, err := readSecret(f.basicAuthFile, "HERD_BASIC_AUTH")
	if err != nil || auth == "" {
		return cfg, err
	}
	user, password, ok := strings.Cut(auth, ":")
	if !ok || user == "" || password == "" {
		return cfg, usageError{"basic auth must be user:password (from --basic-auth-file or HERD_BASIC_AUTH), with neither empty"}
	}
	cfg.BasicAuthUser, cfg.BasicAuthPassword = user, password
	return cfg, nil
}

// readSecret reads a secret from a file, else from an environment variable.
func readSecret(file, env string) (string, error) {
	if file == "" {
		return os.Getenv(env), nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("cannot read secret file: %w", err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("secret file %s is empty", file)
	}
	return s, nil
}

// parseBrowser reads a --browser value: comma-separated key=value pairs.
// Keys: browserName, browserVersion (or version), platformName (or platform),
// maxSessions (or maxInstances), binary (or chrome_binary), driver, args
// (';'-separated browser arguments), labels (';'-separated key:value),
// relay (an existing WebDriver URL to forward to).
func parseBrowser(spec string) (node.Browser, error) {
	b := node.Browser{Stereotype: map[string]any{}, MaxSessions: runtime.NumCPU()}
	labels := map[string]any{}
	for _, part := range strings.Split(spec, ",") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return b, usageError{fmt.Sprintf("--browser %q: %q is not key=value", spec, part)}
		}
		switch strings.TrimSpace(k) {
		case "browserName":
			b.Stereotype["browserName"] = v
		case "browserVersion", "version":
			b.Stereotype["browserVersion"] = v
		case "platformName", "platform":
			b.Stereotype["platformName"] = strings.ToLower(v)
		case "maxSessions", "maxInstances":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return b, usageError{fmt.Sprintf("--browser %q: maxSessions must be a positive number", spec)}
			}
			b.MaxSessions = n
		case "binary", "chrome_binary":
			b.Binary = v
		case "driver":
			b.Driver = v
		case "args":
			b.Args = strings.Split(v, ";")
		case "labels":
			for _, l := range strings.Split(v, ";") {
				lk, lv, _ := strings.Cut(l, ":")
				labels[lk] = lv
			}
		case "relay":
			b.RelayURL = v
		default:
			return b, usageError{fmt.Sprintf("--browser %q: unknown key %q", spec, k)}
		}
	}
	if len(labels) > 0 {
		b.Stereotype[webdriver.LabelsCapability] = labels
	}
	if b.Stereotype["browserName"] == nil {
		b.Stereotype["browserName"] = "chrome"
	}
	if b.Stereotype["platformName"] == nil {
		b.Stereotype["platformName"] = runtime.GOOS
	}
	if b.RelayURL == "" && b.Driver == "" {
		p, err := exec.LookPath("chromedriver")
		if err != nil {
			return b, errors.New("no chromedriver on PATH: install it (Debian: apt-get install chromium-driver) or pass driver=/path in --browser")
		}
		b.Driver = p
	}
	if b.RelayURL == "" && b.Binary == "" {
		for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
			if p, err := exec.LookPath(name); err == nil {
				b.Binary = p
				break
			}
		}
		if b.Binary == "" {
			return b, errors.New("no Chromium on PATH: install it (Debian: apt-get install chromium) or pass binary=/path in --browser")
		}
	}
	return b, nil
}

// nodeFlags are the settings `herd node` and `herd standalone` share.
type nodeFlags struct {
	browsers    stringList
	idleTimeout time.Duration
	profileDir  string
}

func (f *nodeFlags) register(fs *flag.FlagSet) {
	fs.Var(&f.browsers, "browser", "a browser to offer, e.g. browserName=chrome,maxSessions=5,binary=/usr/bin/chromium,driver=/usr/bin/chromedriver (repeatable; default Chromium from PATH, one session per CPU)")
	fs.DurationVar(&f.idleTimeout, "idle-timeout", 10*time.Minute, "the node ends a session idle this long even if its hub is gone")
	fs.StringVar(&f.profileDir, "profile-dir", "", "directory for the sessions' temporary browser profiles (default: the system temp dir); keep the path short, Chrome puts sockets under it")
}

func (f *nodeFlags) config(logger *slog.Logger) (node.Config, error) {
	specs := f.browsers
	if len(specs) == 0 {
		specs = stringList{""}
	}
	cfg := node.Config{IdleTimeout: f.idleTimeout, ProfileDir: f.profileDir, Logger: logger}
	for _, spec := range specs {
		b, err := parseBrowser(spec)
		if err != nil {
			return cfg, err
		}
		cfg.Browsers = append(cfg.Browsers, b)
	}
	return cfg, nil
}

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, usageError{fmt.Sprintf("--log-level %q: use debug, info, warn or error", level)}
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// serveUntil serves h on ln until ctx ends, then shuts down within grace.
func serveUntil(ctx context.Context, ln net.Listener, h http.Handler, grace time.Duration) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	_ = srv.Shutdown(sctx)
	return nil
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected arguments %q", fs.Args())}
	}
	return applyEnv(fs)
}
