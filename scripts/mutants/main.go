// Command mutants measures what the test suite catches: it plants a fixed
// list of plausible one-line bugs (mutants) in the planner, rendering and
// export, the applier, verification, the Voximplant client, the spec
// loader, the sandbox and the command line, one at a time, runs the tests
// of the packages that can see the change, and counts the mutants some
// test kills.
//
//	go run ./scripts/mutants              # every mutant; prints "N killed, M survived, S stale"
//	go run ./scripts/mutants -only A3,C1  # some of them
//	go run ./scripts/mutants -list        # the list and which are stale; no test is run
//
// Each run works in a temporary copy of the module (the working tree is
// never changed). A mutant whose original text is no longer in its file,
// or is there more than once, is reported as STALE: the code moved on and
// the list needs updating. A mutant that does not compile is INVALID. A
// kill is confirmed before it is counted: the failing test is run again,
// alone, against the mutant (it must fail) and against the original code
// (it must pass); a mutant whose failures do not reproduce so is FLAKY,
// not killed. The exit status is 0 only when every mutant was killed.
//
// It is a program rather than a shell script because it must replace
// exact, multi-character text (quotes, backslashes, regexps) and find the
// packages that import the mutated one, which Go does without quoting
// trouble; it is not a test so that `go test ./...` never runs it.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Mutant is one planted bug: in File (slash-separated, relative to the
// module root), the one occurrence of From becomes To.
type Mutant struct {
	ID   string // short name, e.g. "P1"
	File string
	From string
	To   string
	Why  string // the bug, in words
	// Pending names the issue whose fix brings the test that kills this
	// mutant, when that fix is not on main yet; a survivor is then
	// reported as waiting for it.
	Pending string
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the command; it returns the exit status: 0 when every mutant
// was killed, 1 when one was not, 2 for a bad flag or a failed setup, 130
// when interrupted.
func run(args []string, stdout, stderr io.Writer) int {
	opts, err := parseFlags(args, stderr)
	if err != nil {
		return 2
	}
	selected, err := selectMutants(mutants, opts.only)
	if err != nil {
		fmt.Fprintln(stderr, "mutants:", err)
		return 2
	}
	root, err := filepath.Abs(opts.tree)
	if err != nil {
		fmt.Fprintln(stderr, "mutants:", err)
		return 2
	}
	if opts.list {
		return listMutants(stdout, root, selected)
	}
	work, err := os.MkdirTemp("", "voxbind-mutants-")
	if err != nil {
		fmt.Fprintln(stderr, "mutants:", err)
		return 2
	}
	defer os.RemoveAll(work)
	if err := copyTree(root, work); err != nil {
		fmt.Fprintln(stderr, "mutants: copy the module:", err)
		return 2
	}
	pkgs, err := listPackages(work)
	if err != nil {
		fmt.Fprintln(stderr, "mutants:", err)
		return 2
	}
	return runAll(stdout, work, pkgs, selected, opts)
}

// options are the flags of one run.
type options struct {
	tree, only, pkgs     string
	list, short, verbose bool
	timeout              time.Duration
}

// parseFlags reads the command line; the flag package has already told
// stderr what is wrong when it returns an error.
func parseFlags(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("mutants", flag.ContinueOnError)
	fs.SetOutput(stderr)
	tree := fs.String("tree", ".", "the module to mutate (a copy of it is made)")
	only := fs.String("only", "", "comma-separated mutant ids to run (default: all)")
	list := fs.Bool("list", false, "print the mutants and exit")
	short := fs.Bool("short", false, "run the tests with -short (skips those that build the binary)")
	timeout := fs.Duration("timeout", 5*time.Minute, "time limit of one mutant's tests")
	verbose := fs.Bool("v", false, "print the test output of every survivor")
	onlyPkgs := fs.String("pkgs", "", "comma-separated packages to test instead of those that can see the mutant (./reconcile), for a quick look")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	return options{tree: *tree, only: *only, pkgs: *onlyPkgs, list: *list, short: *short, verbose: *verbose, timeout: *timeout}, nil
}

// listMutants is -list: it prints the selected mutants of the module at
// root, each with whether its original text is still there, and runs no
// test.
func listMutants(stdout io.Writer, root string, selected []Mutant) int {
	stale := 0
	for _, m := range selected {
		state := "ok"
		src, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(m.File)))
		if err == nil {
			_, err = mutate(src, m)
		}
		if err != nil {
			state = "STALE (" + err.Error() + ")"
			stale++
		}
		fmt.Fprintf(stdout, "%-4s %-22s %s: %s\n", m.ID, m.File, m.Why, state)
	}
	fmt.Fprintf(stdout, "%d mutants, %d stale\n", len(selected), stale)
	return 0
}

// runAll runs the selected mutants one after another in the copy at work,
// printing a line per mutant and the tally, and returns the exit status.
func runAll(stdout io.Writer, work string, pkgs []Package, selected []Mutant, opts options) int {
	// Ctrl-C stops the run: the tests in progress are killed, the file
	// is put back and the copy removed.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var tally Tally
	start := time.Now()
	for _, m := range selected {
		if ctx.Err() != nil {
			fmt.Fprintf(stdout, "\ninterrupted: %s\n", tally)
			return 130
		}
		targets := affected(pkgs, path.Dir(m.File))
		if opts.pkgs != "" {
			targets = strings.Split(opts.pkgs, ",")
		}
		r := runMutant(ctx, work, targets, m, opts.short, opts.timeout)
		if ctx.Err() != nil {
			fmt.Fprintf(stdout, "\ninterrupted during %s: %s\n", m.ID, tally)
			return 130
		}
		tally.Add(r)
		fmt.Fprintln(stdout, r.Line())
		if opts.verbose && r.Status == Survived {
			fmt.Fprintf(stdout, "%s\n", indent(r.Output))
		}
	}
	fmt.Fprintf(stdout, "\n%s (%s)\n", tally, time.Since(start).Round(time.Second))
	if !tally.AllKilled() {
		return 1
	}
	return 0
}

func selectMutants(all []Mutant, only string) ([]Mutant, error) {
	if only == "" {
		return all, nil
	}
	var out []Mutant
	for id := range strings.SplitSeq(only, ",") {
		i := slices.IndexFunc(all, func(m Mutant) bool { return m.ID == strings.TrimSpace(id) })
		if i < 0 {
			return nil, fmt.Errorf("no mutant %q (go run ./scripts/mutants -list)", id)
		}
		out = append(out, all[i])
	}
	return out, nil
}

// Status is how a mutant's run ended.
type Status string

// The outcomes of a mutant.
const (
	Killed   Status = "KILLED"   // a test failed, and fails alone against the mutant only
	Survived Status = "SURVIVED" // every test passed
	Flaky    Status = "FLAKY"    // tests failed, but none fails alone against the mutant only
	Stale    Status = "STALE"    // the original text is not in the file exactly once
	Invalid  Status = "INVALID"  // the mutated code does not build
)

// Result is one mutant's outcome.
type Result struct {
	Mutant Mutant
	Status Status
	By     string // the test that killed the mutant, confirmed alone
	Detail string // why a mutant is stale, invalid or flaky
	Output string
	Took   time.Duration
}

// Line is the one-line report of r.
func (r Result) Line() string {
	s := fmt.Sprintf("%-8s %-4s %s: %s", r.Status, r.Mutant.ID, r.Mutant.File, r.Mutant.Why)
	switch r.Status {
	case Killed:
		s += " [" + r.By + ", " + r.Took.Round(time.Second).String() + "]"
	case Survived:
		if r.Mutant.Pending != "" {
			s += " [waits for " + r.Mutant.Pending + "]"
		}
	case Stale, Invalid, Flaky:
		s += " [" + r.Detail + "]"
	}
	return s
}

// Tally counts outcomes.
type Tally struct{ Killed, Survived, Flaky, Stale, Invalid, Pending int }

// Add counts r.
func (t *Tally) Add(r Result) {
	switch r.Status {
	case Killed:
		t.Killed++
	case Survived:
		t.Survived++
		if r.Mutant.Pending != "" {
			t.Pending++
		}
	case Flaky:
		t.Flaky++
	case Stale:
		t.Stale++
	case Invalid:
		t.Invalid++
	}
}

// AllKilled reports whether every mutant counted was killed: a survivor,
// a flaky, stale or invalid mutant makes the run fail.
func (t Tally) AllKilled() bool {
	return t.Survived+t.Flaky+t.Stale+t.Invalid == 0
}

// String is the total line. A flaky mutant counts as not killed.
func (t Tally) String() string {
	s := fmt.Sprintf("%d killed, %d survived", t.Killed, t.Survived)
	if t.Pending > 0 {
		s += fmt.Sprintf(" (%d waiting for another issue's fix)", t.Pending)
	}
	if t.Flaky > 0 {
		s += fmt.Sprintf(", %d flaky", t.Flaky)
	}
	s += fmt.Sprintf(", %d stale", t.Stale)
	if t.Invalid > 0 {
		s += fmt.Sprintf(", %d invalid", t.Invalid)
	}
	if n := t.Killed + t.Survived + t.Flaky; n > 0 {
		s += fmt.Sprintf("; score %.1f %%", 100*float64(t.Killed)/float64(n))
	}
	return s
}

// mutate returns src with m applied, or an error saying why m is stale.
func mutate(src []byte, m Mutant) ([]byte, error) {
	switch n := bytes.Count(src, []byte(m.From)); n {
	case 1:
		return bytes.Replace(src, []byte(m.From), []byte(m.To), 1), nil
	case 0:
		return nil, errors.New("original text not found")
	default:
		return nil, fmt.Errorf("original text found %d times", n)
	}
}

// runMutant plants m in the copy at work, runs the tests of targets
// (package patterns such as ./reconcile), and puts the file back.
func runMutant(ctx context.Context, work string, targets []string, m Mutant, short bool, timeout time.Duration) Result {
	r := Result{Mutant: m}
	file := filepath.Join(work, filepath.FromSlash(m.File))
	orig, err := os.ReadFile(file)
	if err != nil {
		r.Status, r.Detail = Stale, "file not found"
		return r
	}
	mutated, err := mutate(orig, m)
	if err != nil {
		r.Status, r.Detail = Stale, err.Error()
		return r
	}
	if err := os.WriteFile(file, mutated, 0o644); err != nil {
		r.Status, r.Detail = Invalid, err.Error()
		return r
	}
	defer os.WriteFile(file, orig, 0o644)

	// The mutated package's own tests first: they are quick and kill most
	// mutants; the others (the whole command's, which take a minute) only
	// for a mutant that survives them.
	own := "./" + path.Dir(m.File)
	if path.Dir(m.File) == "." {
		own = "."
	}
	var stages [][]string
	if slices.Contains(targets, own) && len(targets) > 1 {
		rest := slices.DeleteFunc(slices.Clone(targets), func(t string) bool { return t == own })
		stages = [][]string{{own}, rest}
	} else {
		stages = [][]string{targets}
	}
	start := time.Now()
	var run testRun
	var killers []string // the packages whose tests killed it
	for _, pkgs := range stages {
		run = goTest(ctx, work, pkgs, "", short, timeout)
		if run.status != Survived {
			killers = pkgs
			break
		}
	}
	r.Status, r.Detail, r.Output = run.status, run.detail, run.output
	if r.Status == Killed {
		r.By, r.Detail = confirmKill(ctx, work, file, orig, mutated, run.failed, short, timeout)
		if r.By == "" && ctx.Err() == nil {
			// -failfast stopped at the first test to fail, which may
			// fail against the mutant only now and then; the run
			// without it lists every test that fails, one of which may
			// fail every time.
			all := goTestAll(ctx, work, killers, short, timeout)
			tried := run.failed[:min(len(run.failed), maxConfirm)]
			others := slices.DeleteFunc(all.failed, func(f failedTest) bool { return slices.Contains(tried, f) })
			if len(others) > 0 {
				r.By, r.Detail = confirmKill(ctx, work, file, orig, mutated, others, short, timeout)
			}
		}
		if r.By == "" {
			r.Status = Flaky
		}
	}
	r.Took = time.Since(start)
	return r
}

// testRun is how one go test ended.
type testRun struct {
	status Status
	failed []failedTest // the tests that failed, leaves first
	detail string       // why a run is invalid
	output string       // the tests' output, as go test prints it
}

// failedTest is a test that failed: its package and its full name
// (TestX/sub).
type failedTest struct{ Pkg, Name string }

// maxConfirm is how many failing tests confirmKill tries at most.
const maxConfirm = 3

// confirmKill reruns the failing tests one at a time, alone: each must
// fail against the mutant (mutated is in file) and pass against the
// original code (orig), which rules out a test that failed by chance or
// fails without the mutant too. It returns the first test confirmed, or
// "" and what the tries found. file holds the mutant again when it
// returns.
func confirmKill(ctx context.Context, work, file string, orig, mutated []byte, failed []failedTest, short bool, timeout time.Duration) (by, detail string) {
	var tries []string
	for _, f := range failed[:min(len(failed), maxConfirm)] {
		if ctx.Err() != nil {
			return "", "interrupted"
		}
		again := goTest(ctx, work, []string{f.Pkg}, runPattern(f.Name), short, timeout)
		if again.status != Killed {
			tries = append(tries, f.Name+" passes alone")
			continue
		}
		if err := os.WriteFile(file, orig, 0o644); err != nil {
			return "", err.Error()
		}
		without := goTest(ctx, work, []string{f.Pkg}, runPattern(f.Name), short, timeout)
		if err := os.WriteFile(file, mutated, 0o644); err != nil {
			return "", err.Error()
		}
		if without.status != Survived {
			tries = append(tries, f.Name+" fails without the mutant too")
			continue
		}
		return f.Name, ""
	}
	if len(tries) == 0 {
		return "", "go test failed, but no test did"
	}
	return "", "failed in the run, but " + strings.Join(tries, "; ")
}

// runPattern is the -run pattern that selects exactly the test named
// (TestX/sub: its parent runs, only that subtest of it).
func runPattern(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	return strings.Join(parts, "/")
}

// goTest runs the tests of pkgs in work (only those -run pattern selects,
// when not "") with -failfast, and says how they ended.
func goTest(ctx context.Context, work string, pkgs []string, pattern string, short bool, timeout time.Duration) testRun {
	return runGoTest(ctx, work, pkgs, pattern, short, timeout, "-failfast")
}

// goTestAll runs every test of pkgs in work, on past the first failure,
// and says how they ended: which tests failed, all of them.
func goTestAll(ctx context.Context, work string, pkgs []string, short bool, timeout time.Duration) testRun {
	return runGoTest(ctx, work, pkgs, "", short, timeout)
}

// runGoTest is go test -json -count=1 on pkgs in work with the flags
// given.
func runGoTest(ctx context.Context, work string, pkgs []string, pattern string, short bool, timeout time.Duration, flags ...string) testRun {
	args := append([]string{"test", "-json", "-count=1", "-timeout", timeout.String()}, flags...)
	if short {
		args = append(args, "-short")
	}
	if pattern != "" {
		args = append(args, "-run", pattern)
	}
	args = append(args, pkgs...)
	ctx, cancel := context.WithTimeout(ctx, timeout+time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = work
	killGroupOnCancel(cmd) // go test and the test binaries it started
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	output, failed := readEvents(out)
	switch {
	case ctx.Err() != nil && err != nil:
		return testRun{status: Invalid, detail: "no result within " + (timeout + time.Minute).String(), output: output}
	case err == nil:
		return testRun{status: Survived, output: output}
	case buildFailed(output):
		return testRun{status: Invalid, detail: "does not build: " + firstLine(buildError.FindString(output)), output: output}
	}
	return testRun{status: Killed, failed: failed, output: output}
}

// testEvent is one line of go test -json.
type testEvent struct {
	Action, Package, Test, Output string
}

// readEvents turns go test -json's output back into the text go test
// prints, and lists the tests that failed: the innermost ones first, in
// the order they failed, then the top-level tests they belong to (a
// subtest may need its siblings to have run). A test that was running
// when the binary timed out or panicked counts as failed.
func readEvents(out []byte) (text string, failed []failedTest) {
	var b strings.Builder
	var leaves, tops []failedTest
	add := func(list *[]failedTest, f failedTest) {
		if !slices.Contains(*list, f) {
			*list = append(*list, f)
		}
	}
	running := map[string][]string{} // package → tests started and not ended
	for line := range bytes.Lines(out) {
		var ev testEvent
		if !bytes.HasPrefix(line, []byte("{")) || json.Unmarshal(line, &ev) != nil {
			b.Write(line) // go's own messages, on stderr
			continue
		}
		b.WriteString(ev.Output)
		switch {
		case ev.Test == "":
			if ev.Action == "fail" {
				// A timeout or a panic ends the binary with tests still
				// running; their own fail events may never come.
				for _, name := range running[ev.Package] {
					add(&leaves, failedTest{ev.Package, name})
				}
			}
		case ev.Action == "run":
			running[ev.Package] = append(running[ev.Package], ev.Test)
		case ev.Action == "pass" || ev.Action == "skip" || ev.Action == "fail":
			running[ev.Package] = slices.DeleteFunc(running[ev.Package], func(n string) bool { return n == ev.Test })
			if ev.Action == "fail" {
				add(&leaves, failedTest{ev.Package, ev.Test})
			}
		}
	}
	// A test fails when a subtest does: keep only the innermost.
	for _, f := range leaves {
		inner := slices.ContainsFunc(leaves, func(g failedTest) bool { return g.Pkg == f.Pkg && strings.HasPrefix(g.Name, f.Name+"/") })
		if !inner {
			failed = append(failed, f)
		}
		if top, _, sub := strings.Cut(f.Name, "/"); sub {
			add(&tops, failedTest{f.Pkg, top})
		}
	}
	return b.String(), append(failed, tops...)
}

var buildError = regexp.MustCompile(`(?m)^[^\s].*\.go:\d+:\d+: .*$`)

func buildFailed(out string) bool {
	return strings.Contains(out, "[build failed]") || strings.Contains(out, "[setup failed]")
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return s
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}

// Package is what `go list` says about one package of the module.
type Package struct {
	ImportPath   string
	Dir          string
	Deps         []string
	TestImports  []string
	XTestImports []string
	Module       *struct{ Path, Dir string }
}

// listPackages lists the module's packages in the copy.
func listPackages(work string) ([]Package, error) {
	cmd := exec.Command("go", "list", "-json=ImportPath,Dir,Deps,TestImports,XTestImports,Module", "./...")
	cmd.Dir = work
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list: %w", err)
	}
	var pkgs []Package
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p Package
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("go list: %w", err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs, nil
}

// affected lists, as ./relative patterns, the packages whose tests can see
// a change in the package at dir (slash-separated, relative to the module
// root): that package, every package that imports it, and every package
// whose tests import it, directly or not.
func affected(pkgs []Package, dir string) []string {
	if len(pkgs) == 0 {
		return []string{"./" + dir}
	}
	mod := pkgs[0].Module
	target := mod.Path
	if dir != "." {
		target += "/" + dir
	}
	deps := map[string][]string{}
	for _, p := range pkgs {
		deps[p.ImportPath] = p.Deps
	}
	sees := func(imp string) bool { return imp == target || slices.Contains(deps[imp], target) }
	var out []string
	for _, p := range pkgs {
		hit := sees(p.ImportPath)
		for _, imp := range slices.Concat(p.TestImports, p.XTestImports) {
			hit = hit || sees(imp)
		}
		if !hit {
			continue
		}
		rel, err := filepath.Rel(mod.Dir, p.Dir)
		if err != nil {
			rel = p.Dir
		}
		if rel == "." {
			out = append(out, ".")
		} else {
			out = append(out, "./"+filepath.ToSlash(rel))
		}
	}
	return out
}

// copyTree copies the module at src to dst, without version control
// directories.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		switch {
		case rel != "." && (d.Name() == ".git" || d.Name() == ".voxbind"):
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil // a worktree's .git file: the copy must not reach the repository
		case d.IsDir():
			return os.MkdirAll(to, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(link, to)
		case !d.Type().IsRegular():
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		return os.WriteFile(to, data, info.Mode().Perm())
	})
}
