package store

import (
	"slices"
	"testing"
	"time"
)

func TestExpendable(t *testing.T) {
	old := time.Now().Add(-time.Hour)
	var ids []string
	for i := range 6 {
		ids = append(ids, NewVersionID(old.Add(time.Duration(i)*time.Minute)))
	}
	recent := NewVersionID(time.Now())
	// Keep 3: the latest (ids[4]) and the two newest others (recent, ids[3]).
	got := Expendable(append([]string{ids[4], recent}, ids[:4]...), ids[4], 3, time.Minute)
	if want := ids[:3]; !slices.Equal(got, want) {
		t.Fatalf("Expendable = %v, want %v", got, want)
	}
	// A version saved a moment ago stays, even beyond the count.
	if got := Expendable([]string{recent, ids[5]}, ids[5], 1, time.Minute); len(got) != 0 {
		t.Fatalf("Expendable = %v, want nothing younger than a minute", got)
	}
}
