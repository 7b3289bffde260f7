package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/herd-ml/herd/examples/internal/evalserve"
	"github.com/herd-ml/herd/internal/testenv"
)

func TestEER(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name          string
		genuine, imps []float64
		want          float64
	}{
		{"separated", []float64{1, 2, 3}, []float64{4, 5, 6}, 0},
		{"reversed", []float64{4, 5, 6}, []float64{1, 2, 3}, 1},
		{"one overlap each", []float64{1, 2, 3, 5}, []float64{4, 6, 7, 8}, 0.25},
	} {
		if got := EER(tc.genuine, tc.imps); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("%s: EER = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestProtocolThroughHerd runs the evaluation on synthetic typists (each a
// distinct rhythm plus noise) with every detector, through herd serve and
// the real worker: each must tell the typists apart far better than chance.
func TestProtocolThroughHerd(t *testing.T) {
	python := testenv.DebianPython(t, "numpy", "python3-numpy")
	dir := t.TempDir()
	herd, err := evalserve.Build("../../..", dir)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	ds := &Dataset{Header: []string{"H.a", "DD.a.b", "UD.a.b", "H.b"}, Reps: map[string][][]string{}}
	for s := range 4 {
		subject := fmt.Sprintf("s%03d", s)
		ds.Subjects = append(ds.Subjects, subject)
		rhythm := []float64{0.08 + 0.02*float64(s), 0.25 + 0.05*float64(s%2), 0, 0.1 + 0.015*float64(3-s)}
		for range 40 {
			row := make([]string, 4)
			h := rhythm[0] * math.Exp(0.05*rng.NormFloat64())
			dd := rhythm[1] * math.Exp(0.05*rng.NormFloat64())
			row[0], row[1], row[2] = ff(h), ff(dd), ff(dd-h)
			row[3] = ff(rhythm[3] * math.Exp(0.05*rng.NormFloat64()))
			ds.Reps[subject] = append(ds.Reps[subject], row)
		}
	}
	worker, _ := filepath.Abs("../worker.py")
	res, err := Evaluate(ds, Protocol{Train: 20, Genuine: 20, Impostor: 5},
		Setup{Herd: herd, Python: python, Worker: worker, Dir: dir}, detectors)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Detectors) != len(detectors) {
		t.Fatalf("%d detectors evaluated, want %d", len(res.Detectors), len(detectors))
	}
	for _, d := range res.Detectors {
		if len(d.EER) != 4 || d.Mean > 0.2 {
			t.Errorf("%s: EER per subject %v (mean %.3f), want all 4 subjects and a mean below 0.2", d.Name, d.EER, d.Mean)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "models", "s000")); err != nil {
		t.Errorf("the models were not saved in the shared store: %v", err)
	}
}

func ff(v float64) string { return strconv.FormatFloat(v, 'f', 4, 64) }
