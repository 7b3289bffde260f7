// Command eval reproduces Killourhy & Maxion's keystroke-dynamics benchmark
// (DSN 2009) through herd's API: it starts `herd serve` with the keystroke
// worker, enrols every subject with POST /train, scores every test
// repetition with POST /output, and prints each detector's mean equal-error
// rate beside the published one.
//
//	go run ./examples/keystroke/eval [-data ../shared/data/cmu-keystroke/DSL-StrongPasswordData.csv]
//
// Protocol (the paper's): per subject, train on repetitions 1-200; genuine
// test = repetitions 201-400; impostor test = the first 5 repetitions of
// each of the other 50 subjects. The equal-error rate comes from each
// subject's ROC; the table gives its mean (sd) over subjects. The data reach
// herd as CSV files under a --files-root, like any upload.
package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// published is the paper's mean EER (sd) per detector (Table 2).
var published = map[string][2]float64{
	"manhattan-scaled": {0.096, 0.069},
	"nn-mahalanobis":   {0.100, 0.064},
	"zscore":           {0.102, 0.077},
	"mahalanobis":      {0.110, 0.065},
	"manhattan":        {0.153, 0.092},
	"euclidean":        {0.171, 0.095},
}

// detectors in the order of the table; knn-log is ours.
var detectors = []string{"manhattan-scaled", "nn-mahalanobis", "zscore", "mahalanobis", "manhattan", "euclidean", "knn-log"}

var paperNames = map[string]string{
	"manhattan-scaled": "Manhattan (scaled)", "nn-mahalanobis": "Nearest Neighbor (Mahalanobis)",
	"zscore": "Outlier count (z-score)", "mahalanobis": "Mahalanobis", "manhattan": "Manhattan",
	"euclidean": "Euclidean", "knn-log": "k-NN scaled Manhattan, log times (ours)",
}

func main() {
	data := flag.String("data", "../shared/data/cmu-keystroke/DSL-StrongPasswordData.csv", "the CMU benchmark CSV")
	herd := flag.String("herd", "", "herd binary (default: build ./cmd/herd)")
	python := flag.String("python", "/usr/bin/python3", "Python with numpy for the worker")
	only := flag.String("detectors", strings.Join(detectors, ","), "detectors to evaluate, comma-separated")
	flag.Parse()
	log.SetFlags(0)
	if err := run(*data, *herd, *python, strings.Split(*only, ",")); err != nil {
		log.Fatal(err)
	}
}

func run(dataPath, herd, python string, dets []string) error {
	start := time.Now()
	ds, err := readDataset(dataPath)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "herd-keystroke-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if herd == "" {
		herd = filepath.Join(tmp, "herd")
		if out, err := exec.Command("go", "build", "-o", herd, "./cmd/herd").CombinedOutput(); err != nil {
			return fmt.Errorf("build herd: %v\n%s", err, out)
		}
	}
	p := Protocol{Train: 200, Genuine: 200, Impostor: 5}
	res, err := Evaluate(ds, p, Setup{Herd: herd, Python: python, Worker: "examples/keystroke/worker.py", Dir: tmp}, dets)
	if err != nil {
		return err
	}
	fmt.Printf("%d subjects; train on repetitions 1-%d, genuine %d-%d, impostors the first %d of each other subject\n\n",
		len(ds.Subjects), p.Train, p.Train+1, p.Train+p.Genuine, p.Impostor)
	fmt.Println("| detector | published mean EER (sd) | through herd, mean EER (sd) | difference |")
	fmt.Println("|---|---|---|---|")
	for _, r := range res.Detectors {
		pub, diff := "—", "—"
		if v, ok := published[r.Name]; ok {
			pub = fmt.Sprintf("%.3f (%.3f)", v[0], v[1])
			diff = fmt.Sprintf("%+.4f", r.Mean-v[0])
		}
		fmt.Printf("| %s | %s | %.4f (%.4f) | %s |\n", paperNames[r.Name], pub, r.Mean, r.SD, diff)
	}
	fmt.Printf("\n%d train jobs in %.2f s (%.1f jobs/s, 2 job workers); /output p50 (one subject's %d test repetitions per call): %s; %s in all\n",
		len(ds.Subjects), res.TrainTime.Seconds(), float64(len(ds.Subjects))/res.TrainTime.Seconds(),
		p.Genuine+p.Impostor*(len(ds.Subjects)-1), res.OutputP50s(), time.Since(start).Round(time.Second))
	return nil
}

// Dataset is the benchmark: each subject's repetitions in order.
type Dataset struct {
	Header   []string // feature names
	Subjects []string
	Reps     map[string][][]string // subject -> repetitions -> feature values as written
}

func readDataset(path string) (*Dataset, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w (pass -data, the CMU keystroke CSV)", err)
	}
	defer f.Close()
	records, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return nil, err
	}
	if len(records) < 2 || len(records[0]) < 4 || records[0][0] != "subject" {
		return nil, fmt.Errorf("%s: not the CMU benchmark (subject,sessionIndex,rep,features...)", path)
	}
	ds := &Dataset{Header: records[0][3:], Reps: map[string][][]string{}}
	for _, r := range records[1:] {
		s := r[0]
		if _, ok := ds.Reps[s]; !ok {
			ds.Subjects = append(ds.Subjects, s)
		}
		ds.Reps[s] = append(ds.Reps[s], r[3:])
	}
	return ds, nil
}

// Protocol sizes the split of each subject's repetitions.
type Protocol struct{ Train, Genuine, Impostor int }

// Setup says how to run herd serve with the worker.
type Setup struct {
	Herd, Python, Worker string
	Dir                  string // scratch: files root, model store, data dirs
}

// DetectorResult is one detector's equal-error rates.
type DetectorResult struct {
	Name      string
	Mean, SD  float64
	EER       map[string]float64
	OutputP50 time.Duration
}

// Result is an evaluation.
type Result struct {
	Detectors []DetectorResult
	TrainTime time.Duration
}

// OutputP50s lists each detector's /output p50.
func (r *Result) OutputP50s() string {
	var parts []string
	for _, d := range r.Detectors {
		parts = append(parts, fmt.Sprintf("%s %s", d.Name, d.OutputP50.Round(100*time.Microsecond)))
	}
	return strings.Join(parts, ", ")
}

// Evaluate writes the protocol's files, trains every subject once through
// herd, then scores them with each detector: one herd serve per detector,
// all sharing one model store, so the models trained once serve them all.
func Evaluate(ds *Dataset, p Protocol, s Setup, dets []string) (*Result, error) {
	root := filepath.Join(s.Dir, "files")
	genuineRows, err := writeFiles(root, ds, p)
	if err != nil {
		return nil, err
	}
	store := filepath.Join(s.Dir, "models")
	res := &Result{}
	for i, det := range dets {
		url, stop, err := startServe(s, det, root, store, filepath.Join(s.Dir, "data-"+det))
		if err != nil {
			return nil, err
		}
		if i == 0 {
			t0 := time.Now()
			if err := trainAll(url, ds.Subjects); err != nil {
				stop()
				return nil, err
			}
			res.TrainTime = time.Since(t0)
		}
		d, err := scoreAll(url, det, ds.Subjects, genuineRows)
		stop()
		if err != nil {
			return nil, err
		}
		res.Detectors = append(res.Detectors, *d)
	}
	return res, nil
}

// writeFiles writes train/<subject>.csv and test/<subject>.csv (genuine
// repetitions, then impostors) and returns how many test rows are genuine.
func writeFiles(root string, ds *Dataset, p Protocol) (int, error) {
	for _, dir := range []string{"train", "test"} {
		if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
			return 0, err
		}
	}
	for _, s := range ds.Subjects {
		reps := ds.Reps[s]
		if len(reps) < p.Train+p.Genuine {
			return 0, fmt.Errorf("subject %s has %d repetitions, the protocol needs %d", s, len(reps), p.Train+p.Genuine)
		}
		test := slices.Clone(reps[p.Train : p.Train+p.Genuine])
		for _, o := range ds.Subjects {
			if o != s {
				test = append(test, ds.Reps[o][:p.Impostor]...)
			}
		}
		if err := writeCSV(filepath.Join(root, "train", s+".csv"), ds.Header, reps[:p.Train]); err != nil {
			return 0, err
		}
		if err := writeCSV(filepath.Join(root, "test", s+".csv"), ds.Header, test); err != nil {
			return 0, err
		}
	}
	return p.Genuine, nil
}

func writeCSV(path string, header []string, rows [][]string) error {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write(header)
	_ = w.WriteAll(rows)
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// startServe runs herd serve with the worker's detector on a free port.
func startServe(s Setup, det, root, store, dataDir string) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	worker, err := filepath.Abs(s.Worker)
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(s.Herd, "serve", "--addr", addr, "--worker", s.Python+" "+worker+" --detector "+det,
		"--files-root", root, "--model-store", store, "--data-dir", dataDir, "--workers", "2",
		"--poll-interval", "10ms", "--log-level", "warn")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}
	url := "http://" + addr
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get(url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return url, stop, nil
			}
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, fmt.Errorf("herd serve (%s) not ready in 60 s:\n%s", det, logs.String())
		}
	}
}

func postJSON(url, body string, out any) (int, error) {
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode >= 300 {
		return resp.StatusCode, fmt.Errorf("POST %s: %d %s", url, resp.StatusCode, raw)
	}
	return resp.StatusCode, json.Unmarshal(raw, out)
}

// trainAll enrols every subject (model = subject) and waits for the jobs.
func trainAll(url string, subjects []string) error {
	ids := make([]string, len(subjects))
	for i, s := range subjects {
		var job struct{ JobID string }
		if _, err := postJSON(url+"/train", fmt.Sprintf(`{"Files": ["train/%s.csv"], "model": %q}`, s, s), &job); err != nil {
			return err
		}
		ids[i] = job.JobID
	}
	for i, id := range ids {
		for {
			resp, err := http.Get(url + "/status?jobId=" + id)
			if err != nil {
				return err
			}
			var st struct{ State, Error string }
			err = json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
			if err != nil {
				return err
			}
			if st.State == "done" {
				break
			}
			if st.State == "error" || st.State == "cancelled" {
				return fmt.Errorf("training %s: %s %s", subjects[i], st.State, st.Error)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

// scoreAll scores every subject's test file with one /output call each, two
// at a time, and computes the equal-error rates.
func scoreAll(url, det string, subjects []string, genuine int) (*DetectorResult, error) {
	d := &DetectorResult{Name: det, EER: map[string]float64{}}
	var (
		mu       sync.Mutex
		wg       sync.WaitGroup
		firstErr error
		lat      []time.Duration
	)
	next := make(chan string)
	for range 2 {
		wg.Go(func() {
			for s := range next {
				var out struct{ OutputVector []float64 }
				t0 := time.Now()
				_, err := postJSON(url+"/output", fmt.Sprintf(`{"Files": ["test/%s.csv"], "model": %q}`, s, s), &out)
				took := time.Since(t0)
				mu.Lock()
				switch {
				case err != nil && firstErr == nil:
					firstErr = err
				case err == nil && len(out.OutputVector) <= genuine:
					firstErr = fmt.Errorf("%s: %d scores for a test file of more than %d rows", s, len(out.OutputVector), genuine)
				case err == nil:
					d.EER[s] = EER(out.OutputVector[:genuine], out.OutputVector[genuine:])
					lat = append(lat, took)
				}
				mu.Unlock()
			}
		})
	}
	for _, s := range subjects {
		next <- s
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if len(d.EER) == 0 {
		return nil, errors.New("no subject scored")
	}
	var sum float64
	for _, e := range d.EER {
		sum += e
	}
	d.Mean = sum / float64(len(d.EER))
	var ss float64
	for _, e := range d.EER {
		ss += (e - d.Mean) * (e - d.Mean)
	}
	if len(d.EER) > 1 {
		d.SD = math.Sqrt(ss / float64(len(d.EER)-1))
	}
	slices.Sort(lat)
	d.OutputP50 = lat[len(lat)/2]
	return d, nil
}

// EER is the equal-error rate of an anomaly detector from its scores for
// genuine and impostor samples (higher: more anomalous): over every
// threshold (a sample is rejected when its score is above it), the point
// where the miss rate and the false-alarm rate are closest, averaged.
func EER(genuine, impostor []float64) float64 {
	thresholds := append(append([]float64{math.Inf(-1)}, genuine...), impostor...)
	slices.Sort(thresholds)
	thresholds = slices.Compact(thresholds)
	g, imp := slices.Sorted(slices.Values(genuine)), slices.Sorted(slices.Values(impostor))
	best, eer := math.Inf(1), 1.0
	for _, t := range thresholds {
		// Rejected genuine (score > t) and accepted impostors (score <= t).
		frr := float64(len(g)-upperBound(g, t)) / float64(len(g))
		far := float64(upperBound(imp, t)) / float64(len(imp))
		if d := math.Abs(frr - far); d < best {
			best, eer = d, (frr+far)/2
		}
	}
	return eer
}

// upperBound is the number of values in sorted s that are <= t.
func upperBound(s []float64, t float64) int {
	i, _ := slices.BinarySearchFunc(s, t, func(v, t float64) int {
		if v <= t {
			return -1
		}
		return 1
	})
	return i
}
