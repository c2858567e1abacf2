package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/google/go-cmp/cmp"

	"github.com/voxbind/voxbind/reconcile"
	"github.com/voxbind/voxbind/sandbox"
)

// planTestSandbox makes a fresh sandbox account and a spec file in a
// temporary directory and returns the state file and the spec's path.
func planTestSandbox(t *testing.T, specText string) (state, specFile string) {
	t.Helper()
	dir := t.TempDir()
	if err := sandbox.Init(filepath.Join(dir, "sb"), 0); err != nil {
		t.Fatal(err)
	}
	specFile = filepath.Join(dir, "voxbind.yaml")
	if err := os.WriteFile(specFile, []byte(specText), 0o644); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "sb", sandbox.StateFile), specFile
}

const planTestSwap = `version: 1
bindings:
  - registration: bob@pbx.example.com
    application: support
    user: alice
  - registration: alice@pbx.example.com
    application: support
    user: bob
`

const planTestFrozen = `version: 1
bindings:
  - registration: old@pbx.example.com
    unbound: true
  - registration: lobby@pbx.example.com
    application: support
`

// TestPlanCmdOut: --out saves the plan with preconditions atomically over
// an existing file, keeping that file's mode (a private 0600 file stays
// private); --detailed-exitcode gives 2.
func TestPlanCmdOut(t *testing.T) {
	state, specFile := planTestSandbox(t, planTestSwap)
	out := filepath.Join(filepath.Dir(specFile), "plan.json")
	if err := os.WriteFile(out, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCLI(t, "--sandbox", state, "plan", "-f", specFile, "--out", out, "--detailed-exitcode")
	if code != 2 {
		t.Fatalf("exit %d, want 2; stderr:\n%s", code, stderr)
	}
	if !strings.Contains(stdout, "Plan: 0 to bind, 2 to rebind, 0 to unbind, 0 unchanged.") ||
		!strings.Contains(stdout, "loses user bob — caused by step 1") {
		t.Errorf("stdout:\n%s", stdout)
	}
	fi, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %#o, want its own 0600 kept", out, fi.Mode().Perm())
	}
	data, _ := os.ReadFile(out)
	var p reconcile.Plan
	if err := json.Unmarshal(data, &p); err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	if p.FormatVersion != 1 || len(p.Changes) != 2 || len(p.SideEffects) != 1 {
		t.Fatalf("saved plan: %s", data)
	}
	for _, s := range p.Changes {
		if s.Precondition == nil || s.Precondition.Target == nil || s.Precondition.UserHolder == nil {
			t.Errorf("step %d: precondition %+v, want the observed target and the user's holder", s.Step, s.Precondition)
		}
	}
	entries, _ := os.ReadDir(filepath.Dir(out))
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

// TestSavedPlanHintWorksWhenPasted: the command that 'plan --out' says
// applies the saved plan works when pasted into a shell: it repeats
// --sandbox (a path with a space and a quote in it, quoted), and not the
// account id or endpoint set in the environment, which the shell has too;
// and a plan file whose name begins with '-' is not taken for a flag.
func TestSavedPlanHintWorksWhenPasted(t *testing.T) {
	bin := applyBinary(t)
	for _, out := range []string{"plan 1.json", "-p.json"} {
		t.Run(out, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "it's here")
			if err := sandbox.Init(filepath.Join(dir, "sb"), 0); err != nil {
				t.Fatal(err)
			}
			state := filepath.Join(dir, "sb", sandbox.StateFile)
			specFile := filepath.Join(dir, "voxbind.yaml")
			if err := os.WriteFile(specFile, []byte(planTestSwap), 0o644); err != nil {
				t.Fatal(err)
			}
			env := append(os.Environ(), "VOXIMPLANT_ACCOUNT_ID=1000001", "VOXIMPLANT_ENDPOINT=https://env.example.com/platform_api/")
			cmd := exec.Command(bin, "--sandbox", state, "plan", "-f", specFile, "--out="+out)
			cmd.Dir, cmd.Env = dir, env
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("plan --out: %v\n%s", err, stderr.String())
			}
			_, hint, ok := strings.Cut(strings.TrimSpace(stderr.String()), "; apply exactly it with: ")
			if !ok {
				t.Fatalf("no hint after plan --out:\n%s", stderr.String())
			}
			if strings.Contains(hint, "--account-id") || strings.Contains(hint, "--endpoint") {
				t.Errorf("the hint repeats a flag set only in the environment: %s", hint)
			}
			pasted := exec.Command("sh", "-c", hint)
			pasted.Dir = dir
			pasted.Env = append(env, "PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"))
			got, err := pasted.CombinedOutput()
			if err != nil || !strings.Contains(string(got), "Apply: 2 applied, 0 failed") {
				t.Errorf("the hint, pasted: %s: %v\n%s", hint, err, got)
			}
		})
	}
}

// TestSavedUndoGuardHintWorksWhenPasted: a saved undo plan that unbinds
// too many is refused with the command that applies it anyway, and that
// command works when pasted into a shell: the plan file and the sandbox
// have spaces in their names (quoted), and --sandbox is repeated.
func TestSavedUndoGuardHintWorksWhenPasted(t *testing.T) {
	bin := applyBinary(t)
	dir := t.TempDir()
	if err := sandbox.Init(filepath.Join(dir, "g b"), 0); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "all.yaml"), []byte(planTestBindFour), 0o644); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"))
	run := func(args ...string) (string, error) {
		cmd := exec.Command(bin, append([]string{"--sandbox", "g b/account.json"}, args...)...)
		cmd.Dir, cmd.Env = dir, env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run("apply", "-f", "all.yaml", "--auto-approve", "--journal", "jg.jsonl"); err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	if out, err := run("undo", "jg.jsonl", "--out", "my undo.json"); err != nil {
		t.Fatalf("undo --out: %v\n%s", err, out)
	}
	out, err := run("apply", "--plan", "my undo.json", "--max-unbind", "2")
	if err == nil {
		t.Fatalf("apply --plan of an undo plan that unbinds 4 with --max-unbind 2: exit 0\n%s", out)
	}
	_, hint, ok := strings.Cut(out, "If that is what you want, run ")
	hint, _, ok2 := strings.Cut(hint, " (or --force)")
	if !ok || !ok2 {
		t.Fatalf("no command in the refusal:\n%s", out)
	}
	if want := "voxbind apply --plan='my undo.json' --sandbox='g b/account.json' --max-unbind 4"; hint != want {
		t.Errorf("the command in the refusal:\n got %s\nwant %s", hint, want)
	}
	pasted := exec.Command("sh", "-c", hint)
	pasted.Dir, pasted.Env = dir, env
	got, err := pasted.CombinedOutput()
	if err != nil || !strings.Contains(string(got), "Apply: 4 applied, 0 failed") {
		t.Errorf("the command, pasted: %s: %v\n%s", hint, err, got)
	}
}

// planTestBindFour binds four registrations of the sandbox that are
// unbound in it: an undo of its apply unbinds four.
const planTestBindFour = `version: 1
bindings:
  - registration: carol@pbx.example.com
    application: support
    user: carol
  - registration: erin@pbx.example.com
    application: sales
    user: erin
  - registration: trunk2@sip.carrier.example
    application: fax
  - registration: lobby@pbx.example.com
    application: support
    rule: after-hours
`

// TestApplyPlanCommand: the hint repeats each account flag given on the
// command line, quoted for a shell, and never an endpoint's password.
func TestApplyPlanCommand(t *testing.T) {
	f := AccountFlags{Sandbox: "my sb/account.json", Credentials: "/keys/it's.json", Endpoint: "https://api.example.com/platform_api/", AccountID: 42}
	all := map[string]bool{"sandbox": true, "credentials": true, "endpoint": true, "account-id": true}
	for _, tt := range []struct {
		given map[string]bool
		f     AccountFlags
		want  string
	}{
		{nil, f, "voxbind apply --plan='plan 1.json'"},
		{map[string]bool{"sandbox": true}, f, "voxbind apply --plan='plan 1.json' --sandbox='my sb/account.json'"},
		{all, f, `voxbind apply --plan='plan 1.json' --sandbox='my sb/account.json' --credentials='/keys/it'\''s.json' --endpoint='https://api.example.com/platform_api/' --account-id=42`},
		{map[string]bool{"endpoint": true}, AccountFlags{Endpoint: "https://me:secret@api.example.com/"}, "voxbind apply --plan='plan 1.json' --endpoint=URL"},
	} {
		if got := tt.f.applyPlanCommand(tt.given, "plan 1.json"); got != tt.want {
			t.Errorf("given %v:\n got %s\nwant %s", tt.given, got, tt.want)
		}
	}
}

// TestPlanCmdBlocked: a blocked change exits 1 after printing the plan;
// -o json still prints exactly one document, and --out writes nothing.
func TestPlanCmdBlocked(t *testing.T) {
	state, specFile := planTestSandbox(t, planTestFrozen)
	out := filepath.Join(filepath.Dir(specFile), "plan.json")
	code, stdout, stderr := runCLI(t, "--sandbox", state, "plan", "-f", specFile, "-o", "json", "--out", out, "--detailed-exitcode")
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, stderr)
	}
	dec := json.NewDecoder(strings.NewReader(stdout))
	var p reconcile.Plan
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("stdout is not a plan: %v\n%s", err, stdout)
	}
	if _, err := dec.Token(); err != io.EOF {
		t.Errorf("more than one JSON document on stdout:\n%s", stdout)
	}
	if len(p.Blocked) != 1 || p.Blocked[0].Reason != "frozen" || len(p.Changes) != 1 {
		t.Errorf("plan: %+v", p)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("--out was written for a plan with blocked changes (%v)", err)
	}
	if !strings.Contains(stderr, "blocked") || !strings.Contains(stderr, "was not written") {
		t.Errorf("stderr:\n%s", stderr)
	}
}

// TestPlanCmdBlockedFix: what a blocked plan says to do follows from why
// its changes are blocked (a frozen registration, a user an ignore entry
// holds, a change that waits for a blocked one), on stderr and in the JSON
// diagnostic alike; it never blames a frozen registration that is not
// there.
func TestPlanCmdBlockedFix(t *testing.T) {
	until := time.Now().UTC().AddDate(0, 0, 7).Format(time.DateOnly)
	const (
		frozen  = "a frozen registration"
		ignored = "a registration that an ignore entry holds keeps its user"
		waits   = "a change that waits for a blocked one is blocked with it"
	)
	for name, tt := range map[string]struct {
		spec     string
		want     []string
		wantNone []string
	}{
		"frozen": {spec: planTestFrozen, want: []string{frozen}, wantNone: []string{ignored, waits}},
		"ignored holder and a change waiting for it": {
			spec: `version: 1
bindings:
  - registration: carol@pbx.example.com
    application: support
    user: bob
  - registration: bob@pbx.example.com
    application: support
    user: alice
ignore:
  - registration: alice@pbx.example.com
    reason: alice's phone is being replaced
    until: ` + until + "\n",
			want:     []string{ignored, waits},
			wantNone: []string{frozen},
		},
	} {
		t.Run(name, func(t *testing.T) {
			state, specFile := planTestSandbox(t, tt.spec)
			code, _, stderr := runCLI(t, "--sandbox", state, "plan", "-f", specFile)
			code2, stdout, _ := runCLI(t, "--sandbox", state, "plan", "-f", specFile, "-o", "json")
			if code != 1 || code2 != 1 {
				t.Fatalf("exit %d and %d with -o json, want 1; stderr:\n%s", code, code2, stderr)
			}
			var doc struct{ Diagnostics []Diagnostic }
			if err := json.Unmarshal([]byte(stdout), &doc); err != nil || len(doc.Diagnostics) != 1 {
				t.Fatalf("-o json: %v, diagnostics %+v", err, doc.Diagnostics)
			}
			fix := doc.Diagnostics[0].Fix
			for _, w := range tt.want {
				if !strings.Contains(fix, w) || !strings.Contains(stderr, w) {
					t.Errorf("the fix does not say %q:\nfix: %s\nstderr: %s", w, fix, stderr)
				}
			}
			for _, w := range tt.wantNone {
				if strings.Contains(fix, w) || strings.Contains(stderr, w) {
					t.Errorf("the fix says %q, which is not why the plan is blocked:\nfix: %s\nstderr: %s", w, fix, stderr)
				}
			}
		})
	}
}

// TestBlockedFix: every kind of blocked change has its own clause, each
// said once, in the order the kinds first appear; a plan read from a file
// (no kind recorded) points at the plan.
func TestBlockedFix(t *testing.T) {
	causes := []reconcile.BlockCause{reconcile.BlockFrozen, reconcile.BlockFrozenHolder, reconcile.BlockIgnoredHolder,
		reconcile.BlockWaits, reconcile.BlockChanged, reconcile.BlockGone}
	seen := map[string]bool{}
	for _, c := range causes {
		fix := blockedFix([]reconcile.Blocked{{Cause: c}, {Cause: c}})
		if fix == "" || strings.Contains(fix, "; ") || seen[fix] {
			t.Errorf("cause %d: fix %q: want one clause of its own", c, fix)
		}
		seen[fix] = true
	}
	both := blockedFix([]reconcile.Blocked{{Cause: reconcile.BlockWaits}, {Cause: reconcile.BlockChanged}, {Cause: reconcile.BlockWaits}})
	if want := blockedClause[reconcile.BlockWaits] + "; " + blockedClause[reconcile.BlockChanged]; both != want {
		t.Errorf("blockedFix = %q, want %q", both, want)
	}
	// A clause that says to leave registrations out names them.
	changed := func(id int64) reconcile.Blocked {
		return reconcile.Blocked{Cause: reconcile.BlockChanged, Registration: reconcile.RegistrationRef{ID: id}}
	}
	if got := blockedFix([]reconcile.Blocked{changed(3011), changed(3002), changed(3011)}); !strings.Contains(got, "registrations changed since the apply are left to you: leave them out with --except id=3011 --except id=3002 (with the restores that wait for them), or put them back") {
		t.Errorf("blockedFix of two changed registrations = %q; want their ids", got)
	}
	if got := blockedFix([]reconcile.Blocked{changed(1), changed(2), changed(3), changed(4), changed(5), changed(6)}); !strings.Contains(got, "registrations changed since the apply are left to you: leave them out with --except id=N (") {
		t.Errorf("blockedFix of six changed registrations = %q; want the form, in the plural", got)
	}
	if got := blockedFix([]reconcile.Blocked{{Reason: "frozen"}}); !strings.Contains(got, "see the blocked changes") {
		t.Errorf("blockedFix of a plan read from a file = %q", got)
	}
}

// TestPlanCmdSpecErrors: spec problems are all printed, with locations, and
// nothing is contacted (the state file does not even exist).
func TestPlanCmdSpecErrors(t *testing.T) {
	dir := t.TempDir()
	specFile := filepath.Join(dir, "bad.yaml")
	os.WriteFile(specFile, []byte("version: 1\nbindings:\n  - registration: a@b\n    aplication: x\n  - registration_id: 1\n"), 0o644)
	code, stdout, stderr := runCLI(t, "--sandbox", filepath.Join(dir, "missing.json"), "plan", "-f", specFile)
	if code != 1 || stdout != "" {
		t.Fatalf("exit %d, stdout %q; want 1 and nothing", code, stdout)
	}
	if strings.Count(stderr, "bad.yaml:") < 2 || strings.Contains(stderr, "missing.json") {
		t.Errorf("stderr:\n%s", stderr)
	}
}

// TestPlanCmdResolutionErrors: names unknown to the account are all
// reported with their locations, and the plan is not printed; with -o json
// stdout holds them as diagnostics.
func TestPlanCmdResolutionErrors(t *testing.T) {
	state, specFile := planTestSandbox(t, `version: 1
bindings:
  - registration: nobody@pbx.example.com
    application: support
  - registration: bob@pbx.example.com
    application: nosuchapp
`)
	code, stdout, stderr := runCLI(t, "--sandbox", state, "plan", "-f", specFile, "-o", "json")
	if code != 1 {
		t.Fatalf("exit %d, stdout %q", code, stdout)
	}
	// stdout holds no plan: only the diagnostics document.
	var doc struct {
		FormatVersion int          `json:"format_version"`
		Changes       any          `json:"changes"`
		Diagnostics   []Diagnostic `json:"diagnostics"`
	}
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil || oneJSONDocument(stdout) != nil {
		t.Fatalf("stdout is not one JSON document (%v):\n%s", err, stdout)
	}
	want := []Diagnostic{
		{Severity: "error", File: specFile, Line: 3, Col: 5, Code: "unknown-registration",
			Message: `registration "nobody@pbx.example.com" not found in account 1000001: no registration has that sip_username and proxy`,
			Fix:     "check the spelling: voxbind export lists the registrations"},
		{Severity: "error", File: specFile, Line: 6, Col: 5, Code: "unknown-application",
			Message: `application "nosuchapp" not found in account 1000001 (it has: fax, sales, support)`,
			Fix:     "check the spelling: the short name or the full name of an application of the account"},
	}
	if diff := cmp.Diff(want, doc.Diagnostics); diff != "" || doc.FormatVersion != 1 || doc.Changes != nil {
		t.Errorf("document: format_version %d, changes %v, diagnostics (-want +got):\n%s", doc.FormatVersion, doc.Changes, diff)
	}
	for _, want := range []string{"voxbind.yaml:3:5: registration \"nobody@pbx.example.com\" not found", "voxbind.yaml:6:5: application \"nosuchapp\" not found", "voxbind: 2 problems in the spec"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
}

// TestPlanCmdColor: colour on a terminal only, and never with --no-color
// or NO_COLOR.
func TestPlanCmdColor(t *testing.T) {
	state, specFile := planTestSandbox(t, planTestSwap)
	plan := func(env string, args ...string) string {
		t.Helper()
		t.Setenv("NO_COLOR", env) // restored after the test
		if env == "" {
			os.Unsetenv("NO_COLOR")
		}
		ptmx, tty, err := pty.Open()
		if err != nil {
			t.Skipf("no pty: %v", err)
		}
		defer ptmx.Close()
		var out bytes.Buffer
		done := make(chan struct{})
		go func() { io.Copy(&out, ptmx); close(done) }()
		var errOut bytes.Buffer
		code := run(append([]string{"--sandbox", state, "plan", "-f", specFile}, args...), &Stdio{In: strings.NewReader(""), Out: tty, Err: &errOut})
		tty.Close()
		<-done
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut.String())
		}
		return out.String()
	}
	if got := plan(""); !strings.Contains(got, "\x1b[") {
		t.Errorf("no colour on a terminal:\n%q", got)
	}
	if got := plan("", "--no-color"); strings.Contains(got, "\x1b[") {
		t.Errorf("colour with --no-color:\n%q", got)
	}
	if got := plan("1"); strings.Contains(got, "\x1b[") {
		t.Errorf("colour with NO_COLOR:\n%q", got)
	}
	if got := plan("", "-o", "markdown"); strings.Contains(got, "\x1b[") {
		t.Errorf("colour in markdown:\n%q", got)
	}
}

// TestSavedLinesEscapeTheFileName: the lines that say where a plan or an
// export was written, and the command to paste after them, show a file
// name holding an escape sequence escaped, as do show's and apply
// --plan's refusals of a file of events: a name must not put an escape on
// the terminal.
func TestSavedLinesEscapeTheFileName(t *testing.T) {
	state, specFile := planTestSandbox(t, planTestSwap)
	dir := filepath.Dir(specFile)
	// apply -o json events, given where a plan belongs: refused, naming
	// the file.
	events := filepath.Join(dir, "ev\x1b[31m.jsonl")
	if err := os.WriteFile(events, []byte("{\"kind\":\"plan\"}\n{\"kind\":\"summary\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"--sandbox", state, "plan", "-f", specFile, "--out", filepath.Join(dir, "p\x1b[31m.json")}, 0},
		{[]string{"--sandbox", state, "export", "--out", filepath.Join(dir, "e\x1b[31m.yaml")}, 0},
		{[]string{"show", events}, 1},
		{[]string{"--sandbox", state, "apply", "--plan", events}, 1},
		{[]string{"--sandbox", state, "apply", "-f", specFile, "--auto-approve", "--journal", filepath.Join(dir, "j\x1b[31m.jsonl")}, 0},
		{[]string{"sandbox", "init", filepath.Join(dir, "s\x1b[31m.d")}, 0},
		{[]string{"plan", "\x1b[31m."}, 1}, // a usage error
	} {
		code, _, stderr := runCLI(t, tc.args...)
		if code != tc.code || strings.Contains(stderr, "\x1b") || !strings.Contains(stderr, `\x1b[31m.`) {
			t.Errorf("%q: exit %d, stderr %q, want %d and the name escaped", tc.args, code, stderr, tc.code)
		}
	}
}
