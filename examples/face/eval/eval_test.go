package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/herd-ml/herd/examples/internal/evalserve"
	"github.com/herd-ml/herd/internal/testenv"
)

func TestMakeSplit(t *testing.T) {
	t.Parallel()
	people := []string{"s1", "s2", "s10"}
	s := MakeSplit(people, 10, 3)
	if len(s.Train) != 15 || len(s.Test) != 15 {
		t.Fatalf("split sizes %d/%d, want 15/15", len(s.Train), len(s.Test))
	}
	seen := map[string]bool{}
	for _, f := range append(s.Train, s.Test...) {
		if seen[f] {
			t.Fatalf("%s is in the split twice", f)
		}
		seen[f] = true
	}
	if again := MakeSplit(people, 10, 3); fmt.Sprint(again) != fmt.Sprint(s) {
		t.Fatal("the same seed drew a different split")
	}
	if compareNatural("s2", "s10") >= 0 {
		t.Fatal("s2 should sort before s10")
	}
}

// TestIdentifyThroughHerd runs the evaluation on synthetic faces: each
// person stripes at their own angle, each image with its own noise and
// brightness.
func TestIdentifyThroughHerd(t *testing.T) {
	python := testenv.DebianPython(t, "numpy", "python3-numpy")
	dir := t.TempDir()
	data := filepath.Join(dir, "faces")
	rng := rand.New(rand.NewPCG(5, 6))
	people := []string{"s1", "s2", "s3", "s4"}
	for p, person := range people {
		if err := os.MkdirAll(filepath.Join(data, person), 0o755); err != nil {
			t.Fatal(err)
		}
		for i := 1; i <= 6; i++ {
			const w, h = 40, 48
			img := make([]byte, w*h)
			// Stripes at an angle of the person's own, in a brightness of
			// the image's own, with noise.
			brightness := 30 + rng.Float64()*40
			angle := float64(p) * math.Pi / float64(len(people))
			for y := range h {
				for x := range w {
					phase := (float64(x)*math.Cos(angle) + float64(y)*math.Sin(angle)) / 3
					v := brightness + 80*(1+math.Sin(phase)) + rng.NormFloat64()*2
					img[y*w+x] = byte(max(0, min(v, 255)))
				}
			}
			pgm := append([]byte(fmt.Sprintf("P5\n%d %d\n255\n", w, h)), img...)
			if err := os.WriteFile(filepath.Join(data, person, fmt.Sprintf("%d.pgm", i)), pgm, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	herd, err := evalserve.Build("../../..", dir)
	if err != nil {
		t.Fatal(err)
	}
	worker, _ := filepath.Abs("../worker.py")
	res, err := Evaluate(data, people, 6, 2, Setup{Herd: herd, Worker: python + " " + worker, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Accuracy) != 2 || res.Mean < 0.9 {
		t.Fatalf("accuracy per split %v, want 2 splits and a mean of at least 0.9", res.Accuracy)
	}
}
