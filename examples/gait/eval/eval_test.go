package main

import (
	"fmt"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/herd-ml/herd/examples/internal/evalserve"
	"github.com/herd-ml/herd/internal/testenv"
)

func TestFolds(t *testing.T) {
	t.Parallel()
	folds := Folds(103, 10, 1)
	sizes := map[int]int{}
	for _, f := range folds {
		sizes[f]++
	}
	for f := range 10 {
		if sizes[f] < 10 || sizes[f] > 11 {
			t.Fatalf("fold %d has %d of 103 items, want 10 or 11", f, sizes[f])
		}
	}
	if again := Folds(103, 10, 1); fmt.Sprint(again) != fmt.Sprint(folds) {
		t.Fatal("the same seed dealt different folds")
	}
}

// TestCrossValidationThroughHerd cross-validates the Lua forest through herd
// serve on synthetic windows: three activities with distinct means, a
// missing value here and there, and a user label for the gait task.
func TestCrossValidationThroughHerd(t *testing.T) {
	lua := testenv.Command(t, "lua5.1") // the plain interpreter: the worker must not need LuaJIT
	if err := exec.Command(lua, "-e", `require "cjson"`).Run(); err != nil {
		testenv.Missing(t, "lua-cjson for lua5.1: %v", err)
	}
	dir := t.TempDir()
	herd, err := evalserve.Build("../../..", dir)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	ds := &Dataset{Features: []string{"XAVG", "YAVG", "ZAVG", "RESULTANT"}}
	activities := []string{"Jogging", "Sitting", "Walking"}
	for i := range 150 {
		a := i % 3
		user := strconv.Itoa(1 + i%5)
		row := make([]string, 4)
		for j := range row {
			row[j] = strconv.FormatFloat(float64(a*3+j)+rng.NormFloat64()*0.5, 'f', 2, 64)
		}
		if a == 2 { // walking: the user shows in the last feature
			row[3] = strconv.FormatFloat(float64(10*(i%5))+rng.NormFloat64(), 'f', 2, 64)
		}
		if i%17 == 0 {
			row[1] = "?"
		}
		ds.Rows = append(ds.Rows, Row{User: user, Activity: activities[a], Values: row})
	}
	worker, _ := filepath.Abs("../worker.lua")
	results, err := Evaluate([]Task{ActivityTask(ds), GaitTask(ds)}, 5, Setup{Herd: herd, Worker: lua + " " + worker + " --trees 15", Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if r := results[0]; r.Classes != 3 || r.Accuracy < 0.9 {
		t.Errorf("activity: %d classes, accuracy %.3f; want 3 and at least 0.9", r.Classes, r.Accuracy)
	}
	if r := results[1]; len(r.Task.Rows) != 50 || r.Classes != 5 || r.Accuracy < 0.8 {
		t.Errorf("gait: %d walking windows, %d users, accuracy %.3f; want 50, 5 and at least 0.8", len(r.Task.Rows), r.Classes, r.Accuracy)
	}
}
