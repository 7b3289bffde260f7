package node

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/herd-ml/herd/internal/procgroup"
	"github.com/herd-ml/herd/webdriver"
)

// session is one browser session and the driver that runs it.
type session struct {
	id        string
	browser   int // index into Config.Browsers
	driverURL *url.URL
	// driverPrefix is the relay URL's path, prepended to command paths.
	driverPrefix string
	cmd          *exec.Cmd     // nil in relay mode
	exited       chan struct{} // closed when cmd has exited
	// profile is the driver's temporary directory ("" in relay mode): its
	// TMPDIR, so the browser profile it creates for each session lands
	// inside, and its log. Letting the driver create the profile matters:
	// Chrome launched with a --user-data-dir of ours took ~0.3 s longer.
	profile      string
	created      time.Time
	capabilities map[string]any // as the driver returned them

	mu       sync.Mutex
	lastSeen time.Time
	ended    bool
}

func (s *session) touch() {
	s.mu.Lock()
	s.lastSeen = time.Now()
	s.mu.Unlock()
}

func (s *session) idleFor() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return time.Since(s.lastSeen)
}

func (s *session) driverPath(inPath string) string {
	p := strings.TrimPrefix(inPath, "/wd/hub")
	return s.driverPrefix + p
}

type sessionKey struct{}

func withSession(ctx context.Context, s *session) context.Context {
	return context.WithValue(ctx, sessionKey{}, s)
}

func sessionFromContext(ctx context.Context) *session {
	s, _ := ctx.Value(sessionKey{}).(*session)
	return s
}

// newSession handles POST /session: pick a browser, start its driver,
// create the session there, and keep the driver for the session's commands.
func (n *Node) newSession(w http.ResponseWriter, r *http.Request) {
	ns, candidates, werr := webdriver.ReadNewSession(r)
	if werr != nil {
		webdriver.WriteError(w, werr)
		return
	}
	idx, werr := n.reserve(candidates)
	if werr != nil {
		webdriver.WriteError(w, werr)
		return
	}
	released := false
	release := func() {
		if !released {
			released = true
			n.mu.Lock()
			n.starting[idx]--
			n.mu.Unlock()
		}
	}
	defer release()

	b := n.cfg.Browsers[idx]
	s := &session{browser: idx, created: time.Now(), lastSeen: time.Now()}
	if b.RelayURL != "" {
		u, err := url.Parse(strings.TrimSuffix(b.RelayURL, "/"))
		if err != nil {
			webdriver.WriteError(w, webdriver.Errorf(webdriver.ErrSessionNotCreated, "bad relay URL: %v", err))
			return
		}
		// Keep the relay's path apart: commands are appended to it.
		s.driverPrefix, u.Path, u.RawPath = u.Path, "", ""
		s.driverURL = u
	} else if spare := n.takeSpare(idx); spare != nil {
		s.cmd, s.exited, s.profile, s.driverURL = spare.cmd, spare.exited, spare.profile, spare.driverURL
	} else if err := n.startDriver(r.Context(), s, b); err != nil {
		n.cleanup(s)
		webdriver.WriteError(w, webdriver.Errorf(webdriver.ErrSessionNotCreated, "cannot start %s: %v", b.Driver, err))
		return
	}

	forward := ns.Forwardable()
	if b.RelayURL == "" || b.Binary != "" || b.Args != nil {
		// A relay's browser is set up at the relay, unless told otherwise.
		forward = withBrowserOptions(forward, b)
	}
	status, respBody, err := webdriver.CreateSession(r.Context(), n.transport, s.driverURL.String()+s.driverPrefix, forward)
	if err != nil || status != http.StatusOK {
		n.cleanup(s)
		if err != nil {
			webdriver.WriteError(w, webdriver.Errorf(webdriver.ErrSessionNotCreated, "driver did not create a session: %v", err))
			return
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(status)
		_, _ = w.Write(respBody)
		return
	}
	var created struct {
		Value struct {
			SessionID    string         `json:"sessionId"`
			Capabilities map[string]any `json:"capabilities"`
		} `json:"value"`
		SessionID string `json:"sessionId"` // JSON Wire drivers
	}
	_ = json.Unmarshal(respBody, &created)
	s.id, s.capabilities = created.Value.SessionID, created.Value.Capabilities
	if s.id == "" {
		s.id = created.SessionID
	}
	if s.id == "" {
		n.cleanup(s)
		webdriver.WriteError(w, webdriver.Errorf(webdriver.ErrSessionNotCreated, "driver answered without a session id: %.200s", respBody))
		return
	}
	n.mu.Lock()
	n.sessions[s.id] = s
	n.mu.Unlock()
	release()
	if b.RelayURL == "" && len(n.spares[idx]) == 0 && n.filling[idx].Load() == 0 {
		// Only now: a driver starting beside the browser would slow it down.
		defer n.refillSpare(idx)
	}
	n.cfg.Logger.Info("node.session_created", "session", s.id, "browser", b.Stereotype["browserName"], "in", time.Since(s.created).Round(time.Millisecond))
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_, _ = w.Write(respBody)
}

// takeSpare returns browser idx's pre-started driver: a ready one, or the
// one being started if there is one (starting a second at the same time
// would only slow both down). It returns nil when there is none.
func (n *Node) takeSpare(idx int) *session {
	var s *session
	select {
	case s = <-n.spares[idx]:
	default:
		if n.filling[idx].Load() == 0 {
			return nil
		}
		select {
		case s = <-n.spares[idx]:
		case <-time.After(20 * time.Second):
			return nil
		case <-n.stop:
			return nil
		}
	}
	select {
	case <-s.exited:
		n.cleanup(s) // it died waiting
		return nil
	default:
		return s
	}
}

// refillSpare starts a spare driver for browser idx in the background.
func (n *Node) refillSpare(idx int) {
	n.wg.Add(1)
	n.filling[idx].Add(1)
	go func() {
		defer n.wg.Done()
		defer n.filling[idx].Add(-1)
		select {
		case <-n.stop:
			return
		default:
		}
		s := &session{browser: idx}
		if err := n.startDriver(context.Background(), s, n.cfg.Browsers[idx]); err != nil {
			n.cleanup(s)
			n.cfg.Logger.Warn("node.spare_failed", "driver", n.cfg.Browsers[idx].Driver, "error", err)
			return
		}
		select {
		case n.spares[idx] <- s:
		default: // one is there already
			n.cleanup(s)
		}
		select {
		case <-n.stop: // Stop may have drained the spares before this one arrived
			if s := n.takeSpare(idx); s != nil {
				n.cleanup(s)
			}
		default:
		}
	}()
}

// reserve picks the first browser matching a candidate with a free slot and
// counts a session as starting on it.
func (n *Node) reserve(candidates []map[string]any) (int, *webdriver.Error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.draining {
		return 0, webdriver.Errorf(webdriver.ErrSessionNotCreated, "node %s is draining and takes no new sessions", n.cfg.ID)
	}
	used := map[int]int{}
	for _, s := range n.sessions {
		used[s.browser]++
	}
	matched := false
	for _, caps := range candidates {
		for i, b := range n.cfg.Browsers {
			if !webdriver.Matches(b.Stereotype, caps) {
				continue
			}
			matched = true
			if used[i]+n.starting[i] < b.MaxSessions {
				n.starting[i]++
				return i, nil
			}
		}
	}
	if !matched {
		return 0, webdriver.Errorf(webdriver.ErrSessionNotCreated, "node %s has no browser matching %s", n.cfg.ID, webdriver.Describe(candidates))
	}
	return 0, webdriver.Errorf(webdriver.ErrSessionNotCreated, "node %s has no free slot for %s", n.cfg.ID, webdriver.Describe(candidates))
}

// driverLog is the driver's log file in its directory.
const driverLog = "chromedriver.log"

// startDriver launches the driver on a free port with a fresh directory and
// waits until it answers /status.
func (n *Node) startDriver(ctx context.Context, s *session, b Browser) error {
	profile, err := os.MkdirTemp(n.cfg.ProfileDir, profilePrefix())
	if err != nil {
		return err
	}
	s.profile = profile
	var lastErr error
	for range 3 { // a port found free may be taken before the driver binds it
		port, err := freePort()
		if err != nil {
			return err
		}
		// The log path puts the profile in the driver's command line, so
		// reaping finds a dead node's drivers as it finds its browsers.
		cmd := exec.Command(b.Driver, "--port="+strconv.Itoa(port), "--allowed-ips=127.0.0.1",
			"--log-level=WARNING", "--log-path="+filepath.Join(profile, driverLog))
		cmd.SysProcAttr = procgroup.Attr()
		cmd.Env = append(os.Environ(), "TMPDIR="+profile)
		cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
		if err := cmd.Start(); err != nil {
			return err
		}
		s.cmd = cmd
		s.driverURL = mustURL("http://127.0.0.1:" + strconv.Itoa(port))
		s.exited = make(chan struct{})
		waitErr := make(chan error, 1)
		go func(exited chan struct{}) { waitErr <- cmd.Wait(); close(exited) }(s.exited)
		if lastErr = n.waitDriver(ctx, s.driverURL, waitErr); lastErr == nil {
			return nil
		}
		procgroup.Kill(cmd)
	}
	return lastErr
}

func (n *Node) waitDriver(ctx context.Context, u *url.URL, exited <-chan error) error {
	client := &http.Client{Transport: n.transport, Timeout: time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("driver exited at start: %v", err)
		case <-ctx.Done():
			return context.Cause(ctx)
		default:
		}
		resp, err := client.Get(u.String() + "/status")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("driver did not answer on %s within 20s", u)
}

// endSession removes s, optionally deleting it on the driver first (for
// timeouts and shutdown; a client's DELETE has already been forwarded), then
// kills its processes and removes its profile.
func (n *Node) endSession(ctx context.Context, s *session, deleteOnDriver bool) {
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return
	}
	s.ended = true
	s.mu.Unlock()
	n.mu.Lock()
	delete(n.sessions, s.id)
	n.mu.Unlock()
	if deleteOnDriver {
		_ = webdriver.DeleteSession(ctx, n.transport, s.driverURL.String()+s.driverPrefix, s.id)
	}
	if !n.recycle(s) {
		n.cleanup(s)
	}
	n.cfg.Logger.Info("node.session_ended", "session", s.id, "lived", time.Since(s.created).Round(time.Millisecond))
}

// recycle keeps s's driver as a spare for the next session: the browser and
// its profile go, the driver (which holds nothing of the session once it
// has been deleted there) stays with its emptied directory. A driver that has already
// launched a browser launches the next one faster than a new driver does.
// It reports false when the driver cannot be kept.
func (n *Node) recycle(s *session) bool {
	if s.cmd == nil || n.stopping() {
		return false
	}
	select {
	case <-s.exited:
		return false
	default:
	}
	// The browser's processes name its profile, inside the driver's directory.
	killUsing("--user-data-dir=" + s.profile)
	entries, _ := os.ReadDir(s.profile)
	for _, e := range entries {
		if e.Name() != driverLog {
			_ = os.RemoveAll(filepath.Join(s.profile, e.Name()))
		}
	}
	spare := &session{browser: s.browser, cmd: s.cmd, exited: s.exited, driverURL: s.driverURL, profile: s.profile}
	select {
	case n.spares[s.browser] <- spare:
		return true
	default: // enough spares already
		return false
	}
}

func (n *Node) stopping() bool {
	select {
	case <-n.stop:
		return true
	default:
		return false
	}
}

// cleanup kills the driver's process group and any browser process still
// using the session's profile, then removes the profile.
func (n *Node) cleanup(s *session) {
	if s.cmd != nil {
		procgroup.Kill(s.cmd)
	}
	if s.profile != "" {
		killUsing(s.profile)
		_ = os.RemoveAll(s.profile)
	}
}

// killUsing kills every process whose command line mentions dir: browsers
// that left the driver's process group still name their --user-data-dir.
func killUsing(dir string) {
	needle := []byte(dir)
	eachProcess(func(pid int, cmdline []byte) {
		if bytes.Contains(cmdline, needle) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
}

// eachProcess calls fn with the pid and command line (NUL-separated) of every
// process but this one.
func eachProcess(fn func(pid int, cmdline []byte)) {
	entries, _ := os.ReadDir("/proc")
	self := os.Getpid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		if cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline"); err == nil {
			fn(pid, cmdline)
		}
	}
}

// profilePrefix names a session's profile directory after the node's
// process, so a later node can tell the profiles of a dead one.
func profilePrefix() string { return fmt.Sprintf("herd-profile-%d-", os.Getpid()) }

// ReapOrphans cleans up after nodes that died (kill -9, OOM, crash): it
// kills every process whose command line names a herd profile under
// profileDir owned by a process that no longer exists, and removes those
// profiles. Profiles of live nodes are left alone, so several nodes can share
// one profileDir. It returns how many processes it killed.
func ReapOrphans(profileDir string) int {
	if profileDir == "" {
		profileDir = os.TempDir()
	}
	prefix := filepath.Join(profileDir, "herd-profile-")
	dead := func(profile string) bool {
		pid, _, ok := strings.Cut(strings.TrimPrefix(profile, prefix), "-")
		if !ok {
			return false
		}
		_, err := os.Stat("/proc/" + pid)
		return os.IsNotExist(err)
	}
	killed := 0
	eachProcess(func(pid int, cmdline []byte) {
		i := bytes.Index(cmdline, []byte(prefix))
		if i < 0 {
			return
		}
		end := i + len(prefix)
		for end < len(cmdline) && cmdline[end] != 0 && cmdline[end] != '/' && cmdline[end] != ' ' {
			end++
		}
		if dead(string(cmdline[i:end])) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			killed++
		}
	})
	dirs, _ := filepath.Glob(prefix + "*")
	for _, d := range dirs {
		if dead(d) {
			_ = os.RemoveAll(d)
		}
	}
	return killed
}

// withBrowserOptions adds the node's browser binary and arguments to the
// Chrome options of every capability set.
func withBrowserOptions(body []byte, b Browser) []byte {
	var raw map[string]any
	if json.Unmarshal(body, &raw) != nil {
		return body
	}
	args := b.Args
	if args == nil {
		args = DefaultChromeArgs
	}
	add := func(caps map[string]any) {
		opts, _ := caps["goog:chromeOptions"].(map[string]any)
		if opts == nil {
			opts = map[string]any{}
		}
		existing, _ := opts["args"].([]any)
		have := map[string]bool{}
		for _, a := range existing {
			if s, ok := a.(string); ok {
				name, _, _ := strings.Cut(s, "=")
				have[name] = true
			}
		}
		for _, a := range args {
			name, _, _ := strings.Cut(a, "=")
			if !have[name] {
				existing = append(existing, a)
			}
		}
		opts["args"] = existing
		if b.Binary != "" {
			if _, set := opts["binary"]; !set {
				opts["binary"] = b.Binary
			}
		}
		caps["goog:chromeOptions"] = opts
	}
	if caps, ok := raw["capabilities"].(map[string]any); ok {
		am, _ := caps["alwaysMatch"].(map[string]any)
		if am == nil {
			am = map[string]any{}
		}
		// Options go in alwaysMatch unless a firstMatch entry sets its own.
		fms, _ := caps["firstMatch"].([]any)
		inFirst := false
		for _, fm := range fms {
			if m, ok := fm.(map[string]any); ok {
				if _, has := m["goog:chromeOptions"]; has {
					add(m)
					inFirst = true
				}
			}
		}
		if !inFirst {
			add(am)
		}
		caps["alwaysMatch"] = am
	}
	out, err := json.Marshal(raw)
	if err != nil {
		return body
	}
	return out
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// status answers GET /status in the W3C shape, with the node's slots.
func (n *Node) status(w http.ResponseWriter) {
	slots := n.Slots()
	ready := !n.Draining()
	free := false
	for _, s := range slots {
		if s.Sessions < s.MaxSessions {
			free = true
		}
	}
	msg := "herd node ready"
	switch {
	case !ready:
		msg = "herd node draining"
	case !free:
		msg = "herd node full"
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(map[string]any{"value": map[string]any{
		"ready": ready && free, "message": msg, "nodeId": n.cfg.ID, "slots": slots,
	}})
}
