package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
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

// TestNoMutantIsStale: every mutant's original text is in its file of
// this module exactly once, so that a refactor that moves the code fails
// here, in go test, instead of dropping the mutant from the next run.
func TestNoMutantIsStale(t *testing.T) {
	for _, m := range mutants {
		src, err := os.ReadFile(filepath.Join("..", "..", m.File))
		if err != nil {
			t.Errorf("%s: %v", m.ID, err)
			continue
		}
		if _, err := mutate(src, m); err != nil {
			t.Errorf("%s (%s) is stale: %v; point From at the code as it is now", m.ID, m.File, err)
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

// TestReadEvents: go test -json's events give back the text go test
// prints and the tests that failed: the innermost first, then their
// top-level tests; a test still running when its binary timed out counts.
func TestReadEvents(t *testing.T) {
	lines := []string{
		`{"Action":"start","Package":"m/a"}`,
		`{"Action":"run","Package":"m/a","Test":"TestA"}`,
		`{"Action":"run","Package":"m/a","Test":"TestA/one"}`,
		`{"Action":"output","Package":"m/a","Test":"TestA/one","Output":"    a_test.go:9: wrong\n"}`,
		`{"Action":"fail","Package":"m/a","Test":"TestA/one"}`,
		`{"Action":"fail","Package":"m/a","Test":"TestA"}`,
		`{"Action":"run","Package":"m/a","Test":"TestB"}`,
		`{"Action":"pass","Package":"m/a","Test":"TestB"}`,
		`{"Action":"fail","Package":"m/a"}`,
		`# m/c`,
		`{"Action":"run","Package":"m/b","Test":"TestHang"}`,
		`{"Action":"run","Package":"m/b","Test":"TestHang/deep"}`,
		`{"Action":"output","Package":"m/b","Output":"panic: test timed out after 1s\n"}`,
		`{"Action":"fail","Package":"m/b"}`,
	}
	text, failed := readEvents([]byte(strings.Join(lines, "\n") + "\n"))
	want := []failedTest{{"m/a", "TestA/one"}, {"m/b", "TestHang/deep"}, {"m/a", "TestA"}, {"m/b", "TestHang"}}
	if !slices.Equal(failed, want) {
		t.Errorf("failed = %v, want %v", failed, want)
	}
	if text != "    a_test.go:9: wrong\n# m/c\npanic: test timed out after 1s\n" {
		t.Errorf("text = %q", text)
	}
	if got := runPattern("TestA/one two.(x)"); got != `^TestA$/^one two\.\(x\)$` {
		t.Errorf("runPattern = %q", got)
	}
}

// flakyModule writes a small module of its own for the runner: V, which
// TestV checks, and TestOnceFlaky, which fails the first time it runs and
// never again, before TestV when flakyFirst (where -failfast stops). It
// returns the module's directory and x.go as written.
func flakyModule(t *testing.T, flakyFirst bool) (dir, xgo string) {
	t.Helper()
	dir = t.TempDir()
	marker := filepath.Join(t.TempDir(), "ran-once")
	testV := `
func TestV(t *testing.T) {
	if V() != 1 {
		t.Fatal("V() != 1")
	}
}
`
	flaky := `
// TestOnceFlaky fails the first time it runs, never again.
func TestOnceFlaky(t *testing.T) {
	if _, err := os.Stat(` + "`" + marker + "`" + `); err == nil {
		return
	}
	os.WriteFile(` + "`" + marker + "`" + `, nil, 0o644)
	t.Fatal("failed by chance")
}
`
	tests := testV + flaky
	if flakyFirst {
		tests = flaky + testV
	}
	xgo = "package x\n\n// V is one.\nfunc V() int { return 1 }\n"
	for name, text := range map[string]string{
		"go.mod":    "module example.com/m\n\ngo 1.22\n",
		"x.go":      xgo,
		"x_test.go": "package x\n\nimport (\n\t\"os\"\n\t\"testing\"\n)\n" + tests,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir, xgo
}

// TestKillFoundPastAFlakyFirstFailure: when the first test to fail
// against a mutant (where -failfast stops) does not fail again alone, the
// tests are run on past it, and a test that fails every time confirms
// the kill: the mutant is not called flaky for a test that happened to
// fail first.
func TestKillFoundPastAFlakyFirstFailure(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go test on a module of its own")
	}
	dir, _ := flakyModule(t, true)
	r := runMutant(context.Background(), dir, []string{"."}, Mutant{ID: "K2", File: "x.go", From: "return 1", To: "return 2", Why: "V is two"}, false, time.Minute)
	if r.Status != Killed || r.By != "TestV" {
		t.Errorf("a mutant TestV catches after a flaky first failure: %s, want KILLED by TestV\n%s", r.Line(), r.Output)
	}
}

// TestKillsAreConfirmed runs the runner on a small module of its own: a
// mutant that a test catches is KILLED by that test, confirmed alone; a
// mutant that changes nothing, run while a test fails once by chance, is
// FLAKY, not killed, and the total counts it as not killed.
func TestKillsAreConfirmed(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go test on a module of its own")
	}
	dir, xgo := flakyModule(t, false)
	ctx := context.Background()
	flaky := runMutant(ctx, dir, []string{"."}, Mutant{ID: "F1", File: "x.go", From: "// V is one.", To: "// V is 1.", Why: "changes a comment"}, false, time.Minute)
	if flaky.Status != Flaky || !strings.Contains(flaky.Detail, "TestOnceFlaky passes alone") {
		t.Errorf("a mutant whose only failure does not reproduce: %s, want FLAKY\n%s", flaky.Line(), flaky.Output)
	}
	killed := runMutant(ctx, dir, []string{"."}, Mutant{ID: "K1", File: "x.go", From: "return 1", To: "return 2", Why: "V is two"}, false, time.Minute)
	if killed.Status != Killed || killed.By != "TestV" {
		t.Errorf("a mutant TestV catches: %s, want KILLED by TestV\n%s", killed.Line(), killed.Output)
	}
	if src, err := os.ReadFile(filepath.Join(dir, "x.go")); err != nil || string(src) != xgo {
		t.Errorf("x.go after the runs: %q, %v; want it as it was", src, err)
	}
	var tally Tally
	tally.Add(killed)
	if !tally.AllKilled() {
		t.Errorf("a run whose only mutant was killed fails")
	}
	tally.Add(flaky)
	if tally.AllKilled() {
		t.Errorf("a run with a flaky mutant passes; a flaky mutant is not killed")
	}
	if got := tally.String(); got != "1 killed, 0 survived, 1 flaky, 0 stale; score 50.0 %" {
		t.Errorf("tally %q", got)
	}
}
