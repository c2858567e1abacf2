package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestMutateNeedsExactlyOneOccurrence(t *testing.T) {
	src := []byte("if a > b {\n\treturn a\n}\n")
	got, err := mutate(src, Mutant{From: "a > b", To: "a >= b"})
	if err != nil || string(got) != "if a >= b {\n\treturn a\n}\n" {
		t.Errorf("mutate = %q, %v", got, err)
	}
	if _, err := mutate(src, Mutant{From: "a < b", To: "x"}); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("missing text: %v, want not found", err)
	}
	if _, err := mutate(src, Mutant{From: "a", To: "x"}); err == nil || !strings.Contains(err.Error(), "found 2 times") {
		t.Errorf("repeated text: %v, want found 2 times", err)
	}
}

// TestListIsWellFormed: ids are unique, every mutant changes something,
// the list is long enough, and the mutants named in issue 19 are in it.
func TestListIsWellFormed(t *testing.T) {
	if len(mutants) < 40 {
		t.Errorf("%d mutants, want at least 40", len(mutants))
	}
	seen := map[string]bool{}
	for _, m := range mutants {
		if seen[m.ID] || m.ID == "" {
			t.Errorf("mutant id %q is empty or used twice", m.ID)
		}
		seen[m.ID] = true
		if m.From == m.To || m.From == "" || m.File == "" || m.Why == "" {
			t.Errorf("%s: incomplete or changes nothing: %+v", m.ID, m)
		}
	}
}

// TestRunReportsStaleWithoutRunning: a mutant whose text is gone is
// reported as stale, and the tree it was asked about is left as it was.
func TestRunReportsStaleWithoutRunning(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "x.go")
	if err := os.WriteFile(file, []byte("package x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runMutant(context.Background(), dir, nil, Mutant{ID: "T1", File: "x.go", From: "func gone()", To: "func other()", Why: "test"}, false, 0)
	if r.Status != Stale || !strings.Contains(r.Line(), "STALE") || !strings.Contains(r.Line(), "not found") {
		t.Errorf("result %+v, line %q; want STALE, not found", r, r.Line())
	}
	r = runMutant(context.Background(), dir, nil, Mutant{ID: "T2", File: "missing.go", From: "a", To: "b", Why: "test"}, false, 0)
	if r.Status != Stale {
		t.Errorf("a missing file: %+v, want STALE", r)
	}
	var tally Tally
	tally.Add(Result{Status: Killed})
	tally.Add(Result{Status: Survived, Mutant: Mutant{Pending: "issue 10"}})
	tally.Add(Result{Status: Stale})
	if got := tally.String(); got != "1 killed, 1 survived (1 waiting for another issue's fix), 1 stale; score 50.0 %" {
		t.Errorf("tally %q", got)
	}
}

func TestAffectedFollowsImportsAndTestImports(t *testing.T) {
	mod := &struct{ Path, Dir string }{"example.com/m", "/m"}
	pkgs := []Package{
		{ImportPath: "example.com/m", Dir: "/m", Deps: []string{"example.com/m/a", "example.com/m/b"}, Module: mod},
		{ImportPath: "example.com/m/a", Dir: "/m/a", Deps: []string{"example.com/m/b"}, Module: mod},
		{ImportPath: "example.com/m/b", Dir: "/m/b", Module: mod},
		{ImportPath: "example.com/m/c", Dir: "/m/c", XTestImports: []string{"example.com/m/a"}, Module: mod},
		{ImportPath: "example.com/m/d", Dir: "/m/d", Module: mod},
	}
	got := affected(pkgs, "b")
	want := []string{".", "./a", "./b", "./c"}
	if !slices.Equal(got, want) {
		t.Errorf("affected(b) = %v, want %v", got, want)
	}
}
