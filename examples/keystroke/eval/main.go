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
	"errors"
	"flag"
	"fmt"
	"log"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/herd-ml/herd/examples/internal/evalserve"
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
	tmp, herd, err := evalserve.Scratch("herd-keystroke-", herd)
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
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
	worker, err := filepath.Abs(s.Worker)
	if err != nil {
		return nil, err
	}
	res := &Result{}
	for i, det := range dets {
		srv, err := evalserve.Start(s.Herd, "--worker", s.Python+" "+worker+" --detector "+det,
			"--files-root", root, "--model-store", store, "--data-dir", filepath.Join(s.Dir, "data-"+det),
			"--workers", "2", "--poll-interval", "10ms")
		if err != nil {
			return nil, err
		}
		if i == 0 {
			t0 := time.Now()
			train := map[string][]string{}
			for _, subject := range ds.Subjects {
				train[subject] = []string{"train/" + subject + ".csv"}
			}
			if _, err := srv.TrainAll(train); err != nil {
				srv.Stop()
				return nil, err
			}
			res.TrainTime = time.Since(t0)
		}
		d, err := scoreAll(srv, det, ds.Subjects, genuineRows)
		srv.Stop()
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

// scoreAll scores every subject's test file with one /output call each, two
// at a time, and computes the equal-error rates.
func scoreAll(srv *evalserve.Server, det string, subjects []string, genuine int) (*DetectorResult, error) {
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
				scores, took, err := srv.Output(s, "test/"+s+".csv")
				mu.Lock()
				switch {
				case err != nil && firstErr == nil:
					firstErr = err
				case err == nil && len(scores) <= genuine:
					firstErr = fmt.Errorf("%s: %d scores for a test file of more than %d rows", s, len(scores), genuine)
				case err == nil:
					d.EER[s] = EER(scores[:genuine], scores[genuine:])
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
	d.Mean, d.SD = evalserve.MeanSD(slices.Collect(maps.Values(d.EER)))
	d.OutputP50 = evalserve.Median(lat)
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
