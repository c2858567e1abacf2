package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/voxbind/voxbind/spec"
)

// TestCommittedBulkIsGenerated keeps examples/bulk.yaml and bulk.csv equal
// to what the generator writes (run go generate ./examples/genbulk after
// changing it).
func TestCommittedBulkIsGenerated(t *testing.T) {
	for file, generate := range map[string]func(io.Writer, int) error{
		"../bulk.yaml": generateYAML,
		"../bulk.csv":  generateCSV,
	} {
		var got bytes.Buffer
		if err := generate(&got, 520); err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(string(want), got.String()); diff != "" {
			t.Errorf("%s is stale; run go generate ./examples/genbulk (-committed +generated):\n%s", file, diff)
		}
	}
}

func TestRunRefusesBadSizes(t *testing.T) {
	for _, n := range []int{0, 100_001} {
		if err := run(n, "-", false); err == nil {
			t.Errorf("run(%d) succeeded, want an error", n)
		}
	}
}

// TestGeneratedSpecsLoad: the YAML and the CSV of one size load to the same
// bindings, n of them, without a registration or user listed twice, also
// past 9,000 entries (where the extensions reach numbers that retired
// lines once had).
func TestGeneratedSpecsLoad(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []int{1, 26, 12000} {
		var loaded [2]*spec.Spec
		for i, f := range []struct {
			ext      string
			generate func(io.Writer, int) error
		}{{"yaml", generateYAML}, {"csv", generateCSV}} {
			var b bytes.Buffer
			if err := f.generate(&b, n); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, fmt.Sprintf("bulk%d.%s", n, f.ext))
			if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			s, err := spec.Load([]string{path})
			if err != nil {
				t.Fatalf("%s: %.500v", path, err)
			}
			if len(s.Bindings) != n {
				t.Errorf("%s: %d bindings, want %d", path, len(s.Bindings), n)
			}
			loaded[i] = s
		}
		ignorePos := cmpopts.IgnoreFields(spec.Binding{}, "Pos", "KeyPos")
		if diff := cmp.Diff(loaded[0].Bindings, loaded[1].Bindings, ignorePos); diff != "" {
			t.Errorf("n=%d: YAML and CSV differ (-yaml +csv):\n%s", n, diff)
		}
	}
}
