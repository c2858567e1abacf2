package main

import (
	"bytes"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestCommittedBulkIsGenerated keeps examples/bulk.yaml equal to what the
// generator writes (run go generate ./examples/genbulk after changing it).
func TestCommittedBulkIsGenerated(t *testing.T) {
	var got bytes.Buffer
	if err := generate(&got, 520); err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("../bulk.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), got.String()); diff != "" {
		t.Errorf("examples/bulk.yaml is stale; run go generate ./examples/genbulk (-committed +generated):\n%s", diff)
	}
}

func TestRunRefusesNoEntries(t *testing.T) {
	if err := run(0, "-"); err == nil {
		t.Error("run(0) succeeded, want an error")
	}
}
