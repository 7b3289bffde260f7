// Command eval measures the face worker on the ORL / AT&T faces through
// herd's API: for each of 10 random splits, 5 images of each of the 40
// people train one model (POST /train with the 200 image files) and the
// other 5 are identified (one POST /output with the 200 files).
//
//	go run ./examples/face/eval [-data ../shared/data/att_faces]
//
// The images reach herd from their own directory, given to herd as its
// --files-root: nothing is copied.
package main

import (
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/herd-ml/herd/examples/internal/evalserve"
)

func main() {
	data := flag.String("data", "../shared/data/att_faces", "the ORL faces: s1..s40, 1.pgm..10.pgm each")
	herd := flag.String("herd", "", "herd binary (default: build ./cmd/herd)")
	python := flag.String("python", "/usr/bin/python3", "Python with numpy for the worker")
	splits := flag.Int("splits", 10, "random 5/5 splits")
	flag.Parse()
	log.SetFlags(0)
	if err := run(*data, *herd, *python, *splits); err != nil {
		log.Fatal(err)
	}
}

func run(data, herd, python string, splits int) error {
	start := time.Now()
	people, err := People(data)
	if err != nil {
		return err
	}
	tmp, herd, err := evalserve.Scratch("herd-face-", herd)
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	worker, err := filepath.Abs("examples/face/worker.py")
	if err != nil {
		return err
	}
	res, err := Evaluate(data, people, 10, splits, Setup{Herd: herd, Worker: python + " " + worker, Dir: tmp})
	if err != nil {
		return err
	}
	fmt.Printf("ORL faces: %d people x %d images; %d random splits, 5 training and 5 test images per person\n\n", len(people), 10, splits)
	fmt.Println("| split (seed) | accuracy |")
	fmt.Println("|---|---|")
	for i, a := range res.Accuracy {
		fmt.Printf("| %d | %.3f |\n", i, a)
	}
	fmt.Printf("\nmean accuracy %.4f (sd %.4f, min %.3f, max %.3f); error %.2f%% (Lawrence et al. 1997, CNN: 3.8%%)\n",
		res.Mean, res.SD, slices.Min(res.Accuracy), slices.Max(res.Accuracy), 100*(1-res.Mean))
	fmt.Printf("%d train jobs (200 images each) in %.1f s (%.2f jobs/s); /output p50 %s for 200 images; %s in all\n",
		splits, res.TrainTime.Seconds(), float64(splits)/res.TrainTime.Seconds(), res.OutputP50.Round(time.Millisecond), time.Since(start).Round(time.Second))
	return nil
}

// People lists the subject directories (s1, s2, ...) of the data set.
func People(data string) ([]string, error) {
	entries, err := os.ReadDir(data)
	if err != nil {
		return nil, fmt.Errorf("%w (pass -data, the ORL faces directory)", err)
	}
	var people []string
	for _, e := range entries {
		if e.IsDir() {
			people = append(people, e.Name())
		}
	}
	if len(people) < 2 {
		return nil, fmt.Errorf("%s: expected one directory per person (s1, s2, ...)", data)
	}
	slices.SortFunc(people, compareNatural)
	return people, nil
}

// compareNatural orders s2 before s10.
func compareNatural(a, b string) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Split is one random division of each person's images.
type Split struct{ Train, Test []string } // file names relative to the data directory

// MakeSplit draws, for each person in order, a permutation of their images
// 1..perPerson from a PCG seeded (seed, 1997); the first half trains.
func MakeSplit(people []string, perPerson int, seed uint64) Split {
	rng := rand.New(rand.NewPCG(seed, 1997))
	var s Split
	for _, p := range people {
		perm := rng.Perm(perPerson)
		for k, i := range perm {
			name := fmt.Sprintf("%s/%d.pgm", p, i+1)
			if k < perPerson/2 {
				s.Train = append(s.Train, name)
			} else {
				s.Test = append(s.Test, name)
			}
		}
	}
	return s
}

// Setup says how to run herd serve with the worker.
type Setup struct {
	Herd, Worker string
	Dir          string
}

// Result is the accuracy of each split.
type Result struct {
	Accuracy  []float64
	Mean, SD  float64
	TrainTime time.Duration
	OutputP50 time.Duration
}

// Evaluate trains one model per split through herd and identifies its test
// images.
func Evaluate(data string, people []string, perPerson, splits int, s Setup) (*Result, error) {
	srv, err := evalserve.Start(s.Herd, "--worker", s.Worker, "--files-root", data,
		"--data-dir", filepath.Join(s.Dir, "data"), "--workers", "2", "--poll-interval", "10ms")
	if err != nil {
		return nil, err
	}
	defer srv.Stop()
	sets := make([]Split, splits)
	train := map[string][]string{}
	for i := range splits {
		sets[i] = MakeSplit(people, perPerson, uint64(i))
		train[fmt.Sprintf("split%d", i)] = sets[i].Train
	}
	t0 := time.Now()
	trained, err := srv.TrainAll(train)
	if err != nil {
		return nil, err
	}
	known := make([][]string, splits) // per split: the people, as the worker indexes them
	for i := range splits {
		if known[i], err = evalserve.Labels(trained[fmt.Sprintf("split%d", i)], "people"); err != nil {
			return nil, fmt.Errorf("split %d: %w", i, err)
		}
	}
	res := &Result{TrainTime: time.Since(t0)}
	var lat []time.Duration
	for i, set := range sets {
		pred, took, err := srv.Output(fmt.Sprintf("split%d", i), set.Test...)
		if err != nil {
			return nil, err
		}
		if len(pred) != len(set.Test) {
			return nil, fmt.Errorf("split %d: %d answers for %d images", i, len(pred), len(set.Test))
		}
		lat = append(lat, took)
		correct := 0
		for k, p := range pred {
			if int(p) >= 0 && int(p) < len(known[i]) && known[i][int(p)] == filepath.Dir(set.Test[k]) {
				correct++
			}
		}
		res.Accuracy = append(res.Accuracy, float64(correct)/float64(len(set.Test)))
	}
	res.Mean, res.SD = evalserve.MeanSD(res.Accuracy)
	res.OutputP50 = evalserve.Median(lat)
	return res, nil
}
