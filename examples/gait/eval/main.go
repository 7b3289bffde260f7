// Command eval measures the gait worker on WISDM v1.1 (Kwapisz, Weiss and
// Moore 2010) through herd's API: 10-fold cross-validation of activity
// recognition (6 activities) and of gait identification (which of the 36
// users is walking), one /train per fold and one /output per test fold.
//
//	go run ./examples/gait/eval [-data ../shared/data/wisdm/WISDM_ar_v1.1_transformed.arff]
//
// Folds: the windows (for gait, the walking windows) shuffled with a fixed
// seed and dealt round-robin into 10 folds; each fold is tested once with a
// forest trained on the other nine. The data reach herd as CSV files under
// a --files-root, like any upload.
package main

import (
	"bufio"
	"encoding/csv"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/herd-ml/herd/examples/internal/evalserve"
)

func main() {
	data := flag.String("data", "../shared/data/wisdm/WISDM_ar_v1.1_transformed.arff", "WISDM v1.1 transformed ARFF")
	herd := flag.String("herd", "", "herd binary (default: build ./cmd/herd)")
	lua := flag.String("lua", "luajit", "Lua for the worker (luajit or lua5.1)")
	trees := flag.Int("trees", 100, "trees per forest")
	flag.Parse()
	log.SetFlags(0)
	if err := run(*data, *herd, *lua, *trees); err != nil {
		log.Fatal(err)
	}
}

func run(dataPath, herd, lua string, trees int) error {
	start := time.Now()
	ds, err := ReadARFF(dataPath)
	if err != nil {
		return err
	}
	tmp, herd, err := evalserve.Scratch("herd-gait-", herd)
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	tasks := []Task{ActivityTask(ds), GaitTask(ds)}
	results, err := Evaluate(tasks, 10, Setup{Herd: herd, Worker: lua + " " + mustAbs("examples/gait/worker.lua") + fmt.Sprintf(" --trees %d", trees), Dir: tmp})
	if err != nil {
		return err
	}
	fmt.Printf("WISDM v1.1 transformed: %d windows, %d users; 10-fold cross-validation, random forest of %d trees (Lua, through herd)\n\n", len(ds.Rows), len(ds.users()), trees)
	fmt.Println("| task | windows | classes | majority class | accuracy (10-fold) | published |")
	fmt.Println("|---|---|---|---|---|---|")
	for _, r := range results {
		fmt.Printf("| %s | %d | %d | %.3f | **%.3f** | %s |\n", r.Task.Name, len(r.Task.Rows), r.Classes, r.Majority, r.Accuracy, r.Task.Published)
	}
	fmt.Printf("\n")
	for _, r := range results {
		fmt.Printf("%s: 10 train jobs in %.1f s (%.2f jobs/s, 2 job workers); /output p50 %s per test fold (~%d windows)\n",
			r.Task.Name, r.TrainTime.Seconds(), 10/r.TrainTime.Seconds(), r.OutputP50.Round(time.Millisecond), len(r.Task.Rows)/10)
	}
	fmt.Printf("%s in all\n", time.Since(start).Round(time.Second))
	return nil
}

func mustAbs(p string) string {
	abs, err := filepath.Abs(p)
	if err != nil {
		panic(err)
	}
	return abs
}

// Dataset is the ARFF's rows: features as written ("?" for missing), the
// user and the activity.
type Dataset struct {
	Features []string
	Rows     []Row
}

// Row is one 10-second window.
type Row struct {
	User, Activity string
	Values         []string
}

func (d *Dataset) users() map[string]bool {
	u := map[string]bool{}
	for _, r := range d.Rows {
		u[r.User] = true
	}
	return u
}

// ReadARFF reads WISDM's transformed ARFF: UNIQUE_ID, user, 43 features,
// class.
func ReadARFF(path string) (*Dataset, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w (pass -data, the WISDM v1.1 transformed ARFF)", err)
	}
	defer f.Close()
	ds := &Dataset{}
	var attrs []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	inData := false
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "%"):
		case strings.HasPrefix(strings.ToLower(line), "@attribute"):
			name := strings.Fields(line)[1]
			attrs = append(attrs, strings.Trim(name, `"'`))
		case strings.HasPrefix(strings.ToLower(line), "@data"):
			inData = true
		case inData:
			fields := strings.Split(line, ",")
			if len(fields) != len(attrs) || len(attrs) < 4 {
				return nil, fmt.Errorf("%s: a row has %d fields for %d attributes", path, len(fields), len(attrs))
			}
			ds.Rows = append(ds.Rows, Row{User: fields[1], Activity: fields[len(fields)-1], Values: fields[2 : len(fields)-1]})
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(ds.Rows) == 0 || attrs[1] != "user" {
		return nil, fmt.Errorf("%s: not WISDM's transformed ARFF (UNIQUE_ID, user, features..., class)", path)
	}
	ds.Features = attrs[2 : len(attrs)-1]
	return ds, nil
}

// Task is one classification problem: rows and their labels.
type Task struct {
	Name, Published string
	Features        []string
	Rows            [][]string
	Labels          []string
}

// ActivityTask: which of the 6 activities a window shows.
func ActivityTask(ds *Dataset) Task {
	t := Task{Name: "activity recognition", Published: "J48 0.85, multilayer perceptron 0.92 (Kwapisz et al. 2010, 10-fold)", Features: ds.Features}
	for _, r := range ds.Rows {
		t.Rows, t.Labels = append(t.Rows, r.Values), append(t.Labels, r.Activity)
	}
	return t
}

// GaitTask: which user is walking, from the walking windows.
func GaitTask(ds *Dataset) Task {
	t := Task{Name: "gait identification (walking windows)", Published: "— (floor here: standardized 1-NN 0.603)", Features: ds.Features}
	for _, r := range ds.Rows {
		if r.Activity == "Walking" {
			t.Rows, t.Labels = append(t.Rows, r.Values), append(t.Labels, r.User)
		}
	}
	return t
}

// Setup says how to run herd serve with the worker.
type Setup struct {
	Herd, Worker string
	Dir          string
}

// Result is one task's cross-validation.
type Result struct {
	Task      Task
	Classes   int
	Majority  float64
	Accuracy  float64
	TrainTime time.Duration
	OutputP50 time.Duration
}

// Evaluate cross-validates each task with k folds through one herd serve.
func Evaluate(tasks []Task, k int, s Setup) ([]Result, error) {
	root := filepath.Join(s.Dir, "files")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	srv, err := evalserve.Start(s.Herd, "--worker", s.Worker, "--files-root", root,
		"--data-dir", filepath.Join(s.Dir, "data"), "--workers", "2", "--poll-interval", "10ms", "--job-timeout", "30m")
	if err != nil {
		return nil, err
	}
	defer srv.Stop()
	var results []Result
	for ti, task := range tasks {
		folds := Folds(len(task.Rows), k, uint64(ti+1))
		prefix := fmt.Sprintf("task%d", ti)
		train := map[string][]string{}
		for f := range k {
			var trainIdx, testIdx []int
			for i, fold := range folds {
				if fold == f {
					testIdx = append(testIdx, i)
				} else {
					trainIdx = append(trainIdx, i)
				}
			}
			model := fmt.Sprintf("%s-fold%d", prefix, f)
			if err := writeCSV(filepath.Join(root, model+"-train.csv"), task, trainIdx, true); err != nil {
				return nil, err
			}
			if err := writeCSV(filepath.Join(root, model+"-test.csv"), task, testIdx, false); err != nil {
				return nil, err
			}
			train[model] = []string{model + "-train.csv"}
		}
		t0 := time.Now()
		trained, err := srv.TrainAll(train)
		if err != nil {
			return nil, err
		}
		classes := map[string][]string{}
		for model, res := range trained {
			if classes[model], err = evalserve.Labels(res, "classes"); err != nil {
				return nil, fmt.Errorf("%s: %w", model, err)
			}
		}
		r := Result{Task: task, TrainTime: time.Since(t0)}
		var correct int
		var lat []time.Duration
		for f := range k {
			model := fmt.Sprintf("%s-fold%d", prefix, f)
			pred, took, err := srv.Output(model, model+"-test.csv")
			if err != nil {
				return nil, err
			}
			lat = append(lat, took)
			var want []string
			for i, fold := range folds {
				if fold == f {
					want = append(want, task.Labels[i])
				}
			}
			if len(pred) != len(want) {
				return nil, fmt.Errorf("%s: %d predictions for %d windows", model, len(pred), len(want))
			}
			for i, p := range pred {
				c := classes[model]
				if int(p) >= 0 && int(p) < len(c) && c[int(p)] == want[i] {
					correct++
				}
			}
		}
		r.Accuracy = float64(correct) / float64(len(task.Rows))
		r.Classes, r.Majority = majority(task.Labels)
		r.OutputP50 = evalserve.Median(lat)
		results = append(results, r)
	}
	return results, nil
}

// Folds deals n items into k folds after a seeded shuffle.
func Folds(n, k int, seed uint64) []int {
	perm := rand.New(rand.NewPCG(seed, 2010)).Perm(n)
	folds := make([]int, n)
	for pos, i := range perm {
		folds[i] = pos % k
	}
	return folds
}

func writeCSV(path string, t Task, idx []int, withLabel bool) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	header := t.Features
	if withLabel {
		header = append([]string{"class"}, t.Features...)
	}
	_ = w.Write(header)
	for _, i := range idx {
		row := t.Rows[i]
		if withLabel {
			row = append([]string{t.Labels[i]}, row...)
		}
		_ = w.Write(row)
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func majority(labels []string) (classes int, share float64) {
	counts := map[string]int{}
	best := 0
	for _, l := range labels {
		counts[l]++
		best = max(best, counts[l])
	}
	return len(counts), float64(best) / float64(len(labels))
}
