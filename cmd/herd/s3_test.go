package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/herd-ml/herd/internal/s3test"
	"github.com/herd-ml/herd/internal/testenv"
)

// s3Service is what two replicas of one service share: Postgres for jobs,
// a bucket for models, a bucket for inputs.
type s3Service struct {
	srv   *s3test.Server
	dbURL string
}

func newS3Service(t *testing.T) *s3Service {
	srv := s3test.Start(t, "models", "inputs")
	srv.Put(t, "inputs", "train/a.txt", []byte("2 3 4"))
	srv.Put(t, "inputs", "query.txt", []byte("2 3 7"))
	return &s3Service{srv: srv, dbURL: testenv.PostgresSchema(t)}
}

// replica starts one `herd serve` with an empty data directory of its own.
func (s *s3Service) replica(t *testing.T) *replica {
	worker, err := filepath.Abs("../../examples/mean-python/worker.py")
	if err != nil {
		t.Fatal(err)
	}
	return startReplica(t, s.srv.Env(), "--worker", testenv.Command(t, "python3")+" "+worker,
		"--database-url", s.dbURL, "--data-dir", t.TempDir(), "--poll-interval", "20ms",
		"--model-store", "s3://models/svc", "--s3-endpoint", s.srv.URL, "--s3-path-style", "--s3-bucket", "inputs")
}

// output calls /output and returns the status and body.
func output(t *testing.T, base, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(base+"/output", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

type modelList struct {
	Models []struct {
		Key, Latest string
		Versions    []struct {
			ID   string
			Size int64
		}
	}
}

func listModels(t *testing.T, base string) modelList {
	t.Helper()
	resp, err := http.Get(base + "/models")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var l modelList
	if err := json.NewDecoder(resp.Body).Decode(&l); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /models = %d, %v", resp.StatusCode, err)
	}
	return l
}

func train(t *testing.T, base, model, file string) {
	t.Helper()
	id := post(t, base+"/train", `{"files": ["`+file+`"], "model": "`+model+`"}`)
	if st := waitEnded(t, base, id, 60*time.Second); st.State != "done" {
		t.Fatalf("train %s: %+v", model, st)
	}
}

// A model trained through replica A is served by replica B, and by a
// replica started afterwards with nothing cached; inputs come from S3 as
// relative keys and s3:// URIs.
func TestS3ReplicasShareModels(t *testing.T) {
	t.Parallel()
	svc := newS3Service(t)
	a, b := svc.replica(t), svc.replica(t)

	train(t, a.url, "alice", "train/a.txt") // relative to --s3-bucket
	want := `"outputVector":[3]`            // distance of 2,3,7 to the mean 2,3,4
	if code, body := output(t, b.url, `{"files": ["s3://inputs/query.txt"], "model": "alice"}`); code != 200 || !strings.Contains(body, want) {
		t.Fatalf("replica B /output = %d %s, want %s", code, body, want)
	}
	fresh := svc.replica(t)
	// The same object three times, by two names: one download, three answers.
	if code, body := output(t, fresh.url, `{"files": ["query.txt", "s3://inputs/query.txt", "query.txt"], "model": "alice"}`); code != 200 || !strings.Contains(body, `"outputVector":[3,3,3]`) {
		t.Fatalf("a fresh replica's /output = %d %s, want [3,3,3]", code, body)
	}
	if n := svc.srv.Gets("inputs", "query.txt"); n != 2 {
		t.Errorf("query.txt downloaded %d times by two replicas, want 2 (one each)", n)
	}
	before := fetchedBytes(t, b.url)
	if code, body := output(t, b.url, `{"files": ["s3://inputs/query.txt"], "model": "alice"}`); code != 200 || !strings.Contains(body, want) {
		t.Fatalf("replica B again: %d %s", code, body)
	}
	if after := fetchedBytes(t, b.url); before < 5 || after != before {
		t.Errorf("herd_fetch_bytes_total{scheme=\"s3\"} on replica B: %v, then %v after a cache hit; want at least 5 (query.txt), unchanged", before, after)
	}
	if n := svc.srv.Gets("inputs", "query.txt"); n != 2 {
		t.Errorf("a cache hit downloaded query.txt again (%d downloads)", n)
	}

	// A missing object: 400 file_not_found naming it, and the job's error names it too.
	if code, body := output(t, b.url, `{"files": ["s3://inputs/nope.txt"], "model": "alice"}`); code != 400 || !strings.Contains(body, "file_not_found") || !strings.Contains(body, "s3://inputs/nope.txt") {
		t.Fatalf("/output with a missing object = %d %s, want 400 file_not_found naming it", code, body)
	}
	id := post(t, a.url+"/input", `{"files": ["nope.txt"], "model": "alice"}`)
	if st := waitEnded(t, a.url, id, 60*time.Second); st.State != "error" || !strings.Contains(st.Error, "s3://inputs/nope.txt") {
		t.Fatalf("input job with a missing object: %+v, want an error naming s3://inputs/nope.txt", st)
	}

	l := listModels(t, b.url)
	if len(l.Models) != 1 || l.Models[0].Key != "alice" || len(l.Models[0].Versions) != 1 || l.Models[0].Versions[0].Size == 0 {
		t.Fatalf("GET /models = %+v, want alice with one version", l)
	}
	req, _ := http.NewRequest("DELETE", a.url+"/models/alice", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 {
		t.Fatalf("DELETE /models/alice = %d", resp.StatusCode)
	}
	if code, body := output(t, b.url, `{"files": ["query.txt"], "model": "alice"}`); code == 200 || !strings.Contains(body, "not trained") {
		t.Fatalf("/output of a deleted model = %d %s, want the worker's 'not trained yet'", code, body)
	}
}

// Kill -9 while a new model version is being uploaded: the previous version
// stays the one served and no partial version is listed.
func TestS3Kill9DuringModelUpload(t *testing.T) {
	t.Parallel()
	svc := newS3Service(t)
	svc.srv.Put(t, "inputs", "train/b.txt", []byte("10 10 10"))
	a := svc.replica(t) // alone, so that it runs the second training too
	train(t, a.url, "bob", "train/a.txt")
	first := listModels(t, a.url).Models[0].Latest

	held := svc.srv.Hold("svc/bob/")
	post(t, a.url+"/train", `{"files": ["train/b.txt"], "model": "bob"}`)
	select {
	case <-held:
	case <-time.After(60 * time.Second):
		t.Fatal("the second training never started uploading")
	}
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = a.cmd.Wait()
	svc.srv.Release()

	b := svc.replica(t)
	want := `"outputVector":[3]` // still the first version's mean
	if code, body := output(t, b.url, `{"files": ["query.txt"], "model": "bob"}`); code != 200 || !strings.Contains(body, want) {
		t.Fatalf("after kill -9 mid-upload, /output = %d %s, want %s", code, body, want)
	}
	l := listModels(t, b.url)
	if len(l.Models) != 1 || l.Models[0].Latest != first || len(l.Models[0].Versions) != 1 {
		t.Fatalf("GET /models = %+v, want only the first version %s", l, first)
	}
}

// fetchedBytes reads herd_fetch_bytes_total{scheme="s3"} from a replica.
func fetchedBytes(t *testing.T, base string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, `herd_fetch_bytes_total{scheme="s3"} `); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no herd_fetch_bytes_total{scheme=\"s3\"} in %s/metrics", base)
	return 0
}

// A broken AWS configuration stops herd serve only where S3 is configured;
// elsewhere it starts, and s3:// inputs fail with the reason.
func TestServeWithBrokenAWSConfig(t *testing.T) {
	t.Parallel()
	env := []string{"AWS_PROFILE=herd-no-such-profile", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null"}
	r := startReplica(t, env, "--worker", misbehaveWorker(t), "--files-root", filesRoot(t), "--data-dir", t.TempDir())
	code, body := output(t, r.url, `{"files": ["s3://bucket/key.csv"]}`)
	if code != 502 || !strings.Contains(body, "herd-no-such-profile") {
		t.Fatalf("/output with s3:// under a broken AWS config = %d %s, want 502 naming the profile", code, body)
	}

	cmd := exec.Command(herdBinary, "serve", "--addr", testenv.FreeAddr(t), "--worker", misbehaveWorker(t),
		"--data-dir", t.TempDir(), "--s3-bucket", "inputs")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "herd-no-such-profile") {
		t.Fatalf("with --s3-bucket and a broken AWS config herd serve should refuse to start naming the profile: %v\n%s", err, out)
	}
}
