package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/voxbind/voxbind/sandbox"
	"github.com/voxbind/voxbind/spec"
	"github.com/voxbind/voxbind/voximplant"
)

// fleetTestState makes a sandbox of the demo account with children child
// accounts and returns its state file; edit, when set, changes the state
// first.
func fleetTestState(t *testing.T, children int, edit func(*sandbox.State)) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "sb")
	if err := sandbox.Init(dir, children); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, sandbox.StateFile)
	if edit != nil {
		st, err := sandbox.Load(state)
		if err != nil {
			t.Fatal(err)
		}
		edit(st)
		data, err := json.MarshalIndent(st, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		applyWrite(t, state, string(data))
	}
	return state
}

// TestFleetApplyGuardPerAccount: the mass-unbind guard holds for each
// account of a fleet: the account whose plan unbinds too many is refused
// and named, the others are applied, and the run exits 1.
func TestFleetApplyGuardPerAccount(t *testing.T) {
	state := fleetTestState(t, 2, nil)
	dir := t.TempDir()
	// Child 1: prune with no bindings unbinds its 7 bound registrations.
	applyWrite(t, filepath.Join(dir, "a.yaml"), "version: 1\naccount_id: 1000002\nprune: true\nbindings: []\n")
	applyWrite(t, filepath.Join(dir, "b.yaml"), "version: 1\naccount_id: 1000003\nbindings:\n  - registration: lobby@pbx.example.com\n    application: support\n")
	code, stdout, stderr := applyRun(t, "", "--sandbox", state, "apply", "-f", dir, "--auto-approve", "--max-unbind", "3")
	if code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", code, stderr)
	}
	if !strings.Contains(stdout, "Fleet: 2 accounts, 2 with changes, 0 failed.") {
		t.Errorf("stdout:\n%s", stdout)
	}
	for _, want := range []string{
		"voxbind: account 1000002 (demo-child1): refused, nothing is changed in it: too many unbinds: the plan unbinds 7 registrations, more than the limit set by --max-unbind 3",
		"Applying 1 change to 1 account,",
		"account 1000003 (demo-child2):\n  Journal: ",
		".jsonl\n  Apply: 1 applied, 0 failed, 0 skipped, 0 not started, 0 unknown; 1 verified.\n",
		"Fleet apply: 2 accounts: 1 applied, 0 without changes, 0 failed, 0 stopped, 1 refused, 0 not started.\n",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not say %q:\n%s", want, stderr)
		}
	}
	code, stdout, _ = applyRun(t, "", "--sandbox", state, "plan", "-f", dir)
	if code != 0 || !strings.Contains(stdout, "Plan: 0 to bind, 0 to rebind, 7 to unbind, 0 unchanged.") || !strings.Contains(stdout, "No changes.") {
		t.Errorf("after the apply: exit %d, plan:\n%s", code, stdout)
	}
}

// TestFleetApplyGuardNamesTheVariable: an account of a fleet refused by a
// limit from VOXBIND_MAX_UNBIND is refused naming the variable, not a
// --max-unbind that is not on the command line.
func TestFleetApplyGuardNamesTheVariable(t *testing.T) {
	state := fleetTestState(t, 2, nil)
	dir := t.TempDir()
	applyWrite(t, filepath.Join(dir, "a.yaml"), "version: 1\naccount_id: 1000002\nprune: true\nbindings: []\n")
	applyWrite(t, filepath.Join(dir, "b.yaml"), "version: 1\naccount_id: 1000003\nbindings:\n  - registration: lobby@pbx.example.com\n    application: support\n")
	saved := filepath.Join(t.TempDir(), "fleet.json")
	if code, _, stderr := applyRun(t, "", "--sandbox", state, "plan", "-f", dir, "--out", saved); code != 0 {
		t.Fatalf("plan --out: exit %d:\n%s", code, stderr)
	}
	t.Setenv("VOXBIND_MAX_UNBIND", "3")
	code, _, stderr := applyRun(t, "", "--sandbox", state, "apply", "--plan", saved)
	want := "voxbind: account 1000002 (demo-child1): too many unbinds: the plan unbinds 7 registrations, more than the limit set by VOXBIND_MAX_UNBIND=3;"
	if code != 1 || !strings.Contains(stderr, want) || strings.Contains(stderr, "set by --max-unbind") {
		t.Errorf("apply --plan: exit %d; stderr does not say %q:\n%s", code, want, stderr)
	}
	code, _, stderr = applyRun(t, "", "--sandbox", state, "apply", "-f", dir, "--auto-approve")
	want = "voxbind: account 1000002 (demo-child1): refused, nothing is changed in it: too many unbinds: the plan unbinds 7 registrations, more than the limit set by VOXBIND_MAX_UNBIND=3;"
	if code != 1 || !strings.Contains(stderr, want) || strings.Contains(stderr, "set by --max-unbind") {
		t.Errorf("apply -f: exit %d; stderr does not say %q:\n%s", code, want, stderr)
	}
}

// TestFleetApplyConfirmOnce: one question for the whole fleet, naming the
// changes and the accounts; an answer other than yes writes nothing.
func TestFleetApplyConfirmOnce(t *testing.T) {
	applyFakeTerminal(t, true, false)
	state := fleetTestState(t, 2, nil)
	dir := t.TempDir()
	applyWrite(t, filepath.Join(dir, "a.yaml"), "version: 1\naccount_id: 1000002\nbindings:\n  - registration: lobby@pbx.example.com\n    application: support\n")
	applyWrite(t, filepath.Join(dir, "b.yaml"), "version: 1\naccount_id: 1000003\nbindings:\n  - registration: lobby@pbx.example.com\n    application: fax\n  - registration: conf@pbx.example.com\n    unbound: true\n")
	before := applyRead(t, state)
	code, _, stderr := applyRun(t, "no\n", "--sandbox", state, "apply", "-f", dir)
	if code != 1 || strings.Count(stderr, "Type 'yes'") != 1 || !strings.Contains(stderr, "Type 'yes' to apply 3 changes to 2 accounts: ") ||
		!strings.Contains(stderr, "apply cancelled; nothing was changed") {
		t.Errorf("exit %d:\n%s", code, stderr)
	}
	if applyRead(t, state) != before {
		t.Error("the state changed after a no")
	}
	code, _, stderr = applyRun(t, "yes\n", "--sandbox", state, "apply", "-f", dir)
	if code != 0 || !strings.HasSuffix(stderr, "Fleet apply: 2 accounts: 2 applied, 0 without changes, 0 failed, 0 stopped, 0 refused, 0 not started.\n") {
		t.Errorf("exit %d:\n%s", code, stderr)
	}
}

// TestExportChildren: export --children skips frozen and inactive
// children with a note (an earlier file of a skipped child is left as it
// is), writes one file per other child, and leaves other files in the
// directory alone.
func TestExportChildren(t *testing.T) {
	state := fleetTestState(t, 3, func(st *sandbox.State) {
		inactive := false
		st.Children[1].Account.Frozen = true
		st.Children[2].Account.Active = &inactive
	})
	out := filepath.Join(t.TempDir(), "fleet")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	notes := applyWrite(t, filepath.Join(out, "README.txt"), "mine\n")
	old := applyWrite(t, filepath.Join(out, "1000003.yaml"), "version: 1\naccount_id: 1000003\nbindings: []\n")
	code, stdout, stderr := applyRun(t, "", "--sandbox", state, "export", "--children", "--out-dir", out)
	if code != 0 || stdout != "" {
		t.Fatalf("exit %d, stdout %q:\n%s", code, stdout, stderr)
	}
	for _, want := range []string{
		"account 1000003 (demo-child2) is frozen: skipped; " + old + " from an earlier export is left as it is\n",
		"account 1000004 (demo-child3) is inactive: skipped\n",
		"Exporting 1 child account of account 1000001 to " + out + ", 1 at a time.\n",
		"Exported 1 of 3 child accounts to " + out + ".\n",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not say %q:\n%s", want, stderr)
		}
	}
	if applyRead(t, notes) != "mine\n" || applyRead(t, old) != "version: 1\naccount_id: 1000003\nbindings: []\n" {
		t.Error("export --children changed a file it did not export")
	}
	if _, err := os.Stat(filepath.Join(out, "1000004.yaml")); err == nil {
		t.Error("an inactive child was exported")
	}
	if !strings.Contains(applyRead(t, filepath.Join(out, "1000002.yaml")), "\naccount_id: 1000002 ") {
		t.Error("the child's file does not name its account_id")
	}
}

// TestExportChildrenFlags: --children and --out-dir go together, and
// neither with --out or --account-id; nothing is read or written.
func TestExportChildrenFlags(t *testing.T) {
	state := fleetTestState(t, 1, nil)
	before := applyRead(t, state)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"export", "--children"}, "--children needs --out-dir DIR"},
		{[]string{"export", "--out-dir", "x"}, "--out-dir DIR is for --children"},
		{[]string{"export", "--children", "--out-dir", "x", "--out", "y"}, "give one of the two"},
		{[]string{"--account-id", "1000002", "export", "--children", "--out-dir", "x"}, "not of --account-id 1000002; leave out --account-id"},
		{[]string{"export", "--children", "--out-dir", "x", "--accounts-parallelism", "0"}, "--accounts-parallelism 0: give at least 1"},
	} {
		code, _, stderr := applyRun(t, "", append([]string{"--sandbox", state}, tt.args...)...)
		if code != 1 || !strings.Contains(stderr, tt.want) {
			t.Errorf("%v: exit %d, stderr %q, want %q", tt.args, code, stderr, tt.want)
		}
	}
	if _, err := os.Stat("x"); err == nil {
		t.Error("a refused export created its directory")
	}
	if applyRead(t, state) != before {
		t.Error("the state changed")
	}
}

// TestFleetAccountOfOne: a spec whose account_id is a child acts on that
// child with the parent's key, no --account-id needed; one that names an
// account the key may not act on is refused at the spec's line, and a
// saved plan acts on the account it was made for.
func TestFleetAccountOfOne(t *testing.T) {
	state := fleetTestState(t, 1, nil)
	dir := t.TempDir()
	child := applyWrite(t, filepath.Join(dir, "child.yaml"), "version: 1\naccount_id: 1000002\nbindings:\n  - registration: lobby@pbx.example.com\n    application: fax\n")
	code, stdout, stderr := applyRun(t, "", "--sandbox", state, "plan", "-f", child, "--out", filepath.Join(dir, "plan.json"))
	if code != 0 || !strings.HasPrefix(stdout, "voxbind plan for account 1000002\n") || !strings.Contains(stdout, "(103010)") {
		t.Fatalf("exit %d, stdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	code, _, stderr = applyRun(t, "", "--sandbox", state, "apply", "--plan", filepath.Join(dir, "plan.json"))
	if code != 0 || !strings.Contains(stderr, "Applying 1 change to account 1000002") {
		t.Errorf("apply --plan: exit %d:\n%s", code, stderr)
	}
	// --account-id naming another account than the plan's is refused.
	code, _, stderr = applyRun(t, "", "--sandbox", state, "--account-id", "1000001", "apply", "--plan", filepath.Join(dir, "plan.json"))
	if code != 1 || !strings.Contains(stderr, "plan "+filepath.Join(dir, "plan.json")+" was made for account 1000002, but voxbind acts on account 1000001") {
		t.Errorf("apply --plan with another --account-id: exit %d:\n%s", code, stderr)
	}
}

// TestFleetApplyInterrupt: Ctrl-C during a fleet apply stops every
// account: no new step starts anywhere, the accounts not reached are not
// started, each account's summary counts what it did, and voxbind exits
// 130; the state holds exactly the steps the summaries count as applied.
func TestFleetApplyInterrupt(t *testing.T) {
	bin := applyBinary(t)
	const children = 6
	dir := filepath.Join(t.TempDir(), "sb")
	if err := sandbox.Init(dir, children); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, sandbox.StateFile)
	specs := t.TempDir()
	for k := 1; k <= children; k++ {
		applyWrite(t, filepath.Join(specs, fmt.Sprintf("c%d.yaml", k)), fmt.Sprintf(`version: 1
account_id: %d
bindings:
  - {registration: carol@pbx.example.com, application: support, user: carol}
  - {registration: erin@pbx.example.com, application: sales, user: erin}
  - {registration: lobby@pbx.example.com, application: fax}
  - {registration: trunk2@sip.carrier.example, application: sales}
`, sandbox.DemoAccountID+k))
	}
	endpoint, stopServe := applyServe(t, bin, state, "100ms")
	apply, lines, wait := applyStart(t, bin, dir, endpoint, "-f", specs, "--auto-approve", "--parallelism", "1", "--accounts-parallelism", "2")
	for line := range lines {
		if strings.HasPrefix(line, "account ") && strings.Contains(line, ": step ") {
			break
		}
	}
	if err := apply.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	code, stderr := wait()
	if code != 130 {
		t.Fatalf("exit %d, want 130:\n%s", code, stderr)
	}
	m := regexp.MustCompile(`(?m)^Fleet apply interrupted: 6 accounts: (\d+) applied, 0 without changes, 0 failed, (\d+) stopped, 0 refused, (\d+) not started\.$`).FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("no interrupted fleet line:\n%s", stderr)
	}
	done, _ := strconv.Atoi(m[1])
	stopped, _ := strconv.Atoi(m[2])
	notStarted, _ := strconv.Atoi(m[3])
	if done+stopped+notStarted != children || notStarted == 0 {
		t.Errorf("%d applied, %d stopped and %d not started: want %d in all, some not started:\n%s", done, stopped, notStarted, children, stderr)
	}
	if want := fmt.Sprintf("Not started (interrupted): %d accounts (", notStarted); notStarted > 1 && !strings.Contains(stderr, want) {
		t.Errorf("stderr does not say %q:\n%s", want, stderr)
	}
	applied := 0
	for _, m := range regexp.MustCompile(`(?m)^  Apply(?: interrupted)?: (\d+) applied,`).FindAllStringSubmatch(stderr, -1) {
		n, _ := strconv.Atoi(m[1])
		applied += n
	}
	stopServe()
	st, err := sandbox.Load(state)
	if err != nil {
		t.Fatal(err)
	}
	bound := 0
	for _, child := range st.Children {
		for _, r := range child.Registrations {
			switch r.SIPUsername {
			case "carol", "erin", "lobby", "trunk2":
				if r.ApplicationID != 0 {
					bound++
				}
			}
		}
	}
	if bound != applied {
		t.Errorf("%d registrations bound in the state, but the summaries say %d applied:\n%s", bound, applied, stderr)
	}
}

// TestFleetCannotActDiagnostic: an account of a fleet that the key may
// not act on fails with the diagnostic a run of that account alone gives:
// code credentials, the fix that says what to do, and the spec's line.
func TestFleetCannotActDiagnostic(t *testing.T) {
	state := fleetTestState(t, 1, nil)
	dir := t.TempDir()
	applyWrite(t, filepath.Join(dir, "a.yaml"), "version: 1\naccount_id: 1000002\nbindings: []\n")
	other := applyWrite(t, filepath.Join(dir, "other.yaml"), "version: 1\naccount_id: 424242\nbindings: []\n")
	diagnostics := func(args ...string) []Diagnostic {
		t.Helper()
		code, stdout, stderr := applyRun(t, "", append([]string{"--sandbox", state, "plan", "-o", "json"}, args...)...)
		var doc struct{ Diagnostics []Diagnostic }
		if err := json.Unmarshal([]byte(stdout), &doc); code != 1 || err != nil {
			t.Fatalf("plan %v: exit %d, %v:\n%s%s", args, code, err, stdout, stderr)
		}
		return doc.Diagnostics
	}
	alone := diagnostics("-f", other)
	if len(alone) != 1 || alone[0].Code != codeCredentials {
		t.Fatalf("one account: diagnostics %+v, want one with code %s", alone, codeCredentials)
	}
	var inFleet *Diagnostic
	for _, d := range diagnostics("-f", dir) {
		if strings.Contains(d.Message, "424242") && d.Code != codeFleetFailed {
			inFleet = &d
		}
	}
	if inFleet == nil {
		t.Fatal("the fleet's diagnostics do not name account 424242")
	}
	want := alone[0]
	want.Message = "account 424242: " + want.Message
	want.File, want.Line, want.Col = other, 2, 13
	if diff := cmp.Diff(want, *inFleet); diff != "" {
		t.Errorf("the fleet's diagnostic (-want +got):\n%s", diff)
	}
	if alone[0].File != other || alone[0].Line != 2 {
		t.Errorf("one account: the diagnostic is at %s:%d, want %s:2", alone[0].File, alone[0].Line, other)
	}
}

// TestFleetSavedPlanGuard: the mass-unbind guard holds for each account
// of a saved fleet plan: one account that unbinds more than the limit
// refuses the whole plan, nothing is written to any account, and the
// refusal points to --max-unbind N or --force, which then apply it.
func TestFleetSavedPlanGuard(t *testing.T) {
	state := fleetTestState(t, 2, nil)
	dir := t.TempDir()
	// Child 1: prune with no bindings unbinds its 7 bound registrations.
	applyWrite(t, filepath.Join(dir, "a.yaml"), "version: 1\naccount_id: 1000002\nprune: true\nbindings: []\n")
	applyWrite(t, filepath.Join(dir, "b.yaml"), "version: 1\naccount_id: 1000003\nbindings:\n  - registration: lobby@pbx.example.com\n    application: support\n")
	saved := filepath.Join(t.TempDir(), "plan.json")
	if code, _, stderr := applyRun(t, "", "--sandbox", state, "plan", "-f", dir, "--out", saved); code != 0 {
		t.Fatalf("plan --out: exit %d:\n%s", code, stderr)
	}
	before := applyRead(t, state)
	code, _, stderr := applyRun(t, "", "--sandbox", state, "apply", "--plan", saved, "--max-unbind", "3")
	if code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", code, stderr)
	}
	for _, want := range []string{
		"voxbind: account 1000002 (demo-child1): too many unbinds: the plan unbinds 7 registrations, more than the limit set by --max-unbind 3",
		"voxbind: plan " + saved + " is refused for 1 account (1000002) (above); nothing was changed in any account; if those unbinds are what you want, check the plan, then run again with --max-unbind 7 or --force\n",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not say %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, "make a new plan") {
		t.Errorf("the refusal sends the user to make a new plan, which the guard would refuse as well:\n%s", stderr)
	}
	if applyRead(t, state) != before {
		t.Error("the state changed although the plan was refused")
	}
	code, _, stderr = applyRun(t, "", "--sandbox", state, "apply", "--plan", saved, "--max-unbind", "7")
	if code != 0 || !strings.Contains(stderr, "Fleet apply: 2 accounts: 2 applied,") {
		t.Errorf("with --max-unbind 7: exit %d:\n%s", code, stderr)
	}
}

// fleetStopServer serves the sandbox state through a handler that lets
// bind do what it likes with each BindSipRegistration (nil: pass it on)
// and returns the flags that reach it.
func fleetStopServer(t *testing.T, state string, bind func(w http.ResponseWriter, r *http.Request) bool) []string {
	t.Helper()
	srv, err := sandbox.Open(state, sandbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/BindSipRegistration") && bind(w, r) {
			return
		}
		srv.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		ts.CloseClientConnections()
		ts.Close()
		srv.Close()
	})
	return []string{"--credentials", filepath.Join(filepath.Dir(state), sandbox.CredentialsFile), "--endpoint", ts.URL + "/platform_api/"}
}

// TestFleetApplySecondSignal holds every write of a fleet apply
// unanswered: the first Ctrl-C says, as for one account, how many calls
// are in flight, counted across the accounts (two accounts, two steps at
// a time in each), and the second ends the wait at once with exit 130.
func TestFleetApplySecondSignal(t *testing.T) {
	bin := applyBinary(t)
	t.Parallel()
	state := fleetTestState(t, 2, nil)
	srv := newSandboxHTTP(t, state, sandbox.Options{})
	srv.hold.Store(true)
	apply, lines, wait := applyStart(t, bin, filepath.Dir(state), srv.endpoint(), "-f", fleetStopSpecs(t, 2), "--auto-approve",
		"--parallelism", "2", "--accounts-parallelism", "2")
	waitWrites(t, srv, 4)
	if err := apply.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if line := waitLine(t, lines, "Interrupted"); line != "Interrupted: waiting for 4 calls in flight (at most 10s); press Ctrl-C again to quit now" {
		t.Errorf("first signal: %q", line)
	}
	apply.Process.Signal(syscall.SIGINT)
	code, stderr := wait()
	if code != 130 {
		t.Errorf("exit %d after two signals; want 130:\n%s", code, stderr)
	}
	if got := len(regexp.MustCompile(`(?m)^account \d+ \(demo-child\d\): step \d: .*: unknown: still in flight when voxbind quit`).FindAllString(stderr, -1)); got != 4 {
		t.Errorf("%d calls reported unknown as still in flight; want 4:\n%s", got, stderr)
	}
}

// fleetStopSpecs writes a spec file per child of fleetTestState that
// binds four registrations of the child.
func fleetStopSpecs(t *testing.T, children int) string {
	t.Helper()
	dir := t.TempDir()
	for k := 1; k <= children; k++ {
		applyWrite(t, filepath.Join(dir, fmt.Sprintf("c%d.yaml", k)), fmt.Sprintf(`version: 1
account_id: %d
bindings:
  - {registration: carol@pbx.example.com, application: support, user: carol}
  - {registration: erin@pbx.example.com, application: sales, user: erin}
  - {registration: lobby@pbx.example.com, application: fax}
  - {registration: trunk2@sip.carrier.example, application: sales}
`, sandbox.DemoAccountID+k))
	}
	return dir
}

// TestFleetApplyBreaker: when one account's apply finds the API
// unreachable for the breaker period, the whole fleet stops: the
// accounts not yet started are not started (they share the API), and
// the fleet's line says why.
func TestFleetApplyBreaker(t *testing.T) {
	old := applyBreakerPeriod
	applyBreakerPeriod = 300 * time.Millisecond
	t.Cleanup(func() { applyBreakerPeriod = old })
	state := fleetTestState(t, 3, nil)
	flags := fleetStopServer(t, state, func(w http.ResponseWriter, r *http.Request) bool {
		http.Error(w, "upstream unavailable", http.StatusServiceUnavailable)
		return true
	})
	start := time.Now()
	code, _, stderr := applyRun(t, "", append(flags, "apply", "-f", fleetStopSpecs(t, 3), "--auto-approve", "--accounts-parallelism", "1")...)
	if took := time.Since(start); took > 40*time.Second {
		t.Errorf("the fleet apply took %v; the breaker should stop it in seconds", took)
	}
	if code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", code, stderr)
	}
	for _, re := range []string{
		// As for one account: the calls retrying are in flight.
		`(?m)^voxbind: stopped: the API is unreachable since \d\d:\d\d:\d\d; no more steps start; waiting for [1-4] calls? in flight \(at most 10s\)$`,
		`(?m)^Not started \(stopped: the API is unreachable since \d\d:\d\d:\d\d\): 2 accounts \(1000003, 1000004\)$`,
		`(?m)^Fleet apply stopped \(the API is unreachable since \d\d:\d\d:\d\d\): 3 accounts: 0 applied, 0 without changes, 0 failed, 1 stopped, 0 refused, 2 not started\.$`,
	} {
		if !regexp.MustCompile(re).MatchString(stderr) {
			t.Errorf("stderr does not match %s:\n%s", re, stderr)
		}
	}
}

// TestFleetApplyTimeout: --timeout during a fleet apply stops the whole
// fleet: no new step starts in the account being applied, the accounts
// not reached are not started, the fleet's line says why, and voxbind
// exits 1 (not 130: nobody interrupted it).
func TestFleetApplyTimeout(t *testing.T) {
	t.Parallel()
	state := fleetTestState(t, 3, nil)
	// Each account takes 4 × 1.5 s; the timeout ends the run in the first.
	flags := fleetStopServer(t, state, func(w http.ResponseWriter, r *http.Request) bool {
		select {
		case <-time.After(1500 * time.Millisecond):
		case <-r.Context().Done():
		}
		return false
	})
	start := time.Now()
	code, _, stderr := applyRun(t, "", append(flags, "apply", "-f", fleetStopSpecs(t, 3), "--auto-approve",
		"--parallelism", "1", "--accounts-parallelism", "1", "--timeout", "4s")...)
	if took := time.Since(start); took > 30*time.Second {
		t.Errorf("apply --timeout 4s took %v", took)
	}
	if code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", code, stderr)
	}
	for _, re := range []string{
		`(?m)^voxbind: stopped: the --timeout of 4s has passed; no more steps start`,
		`(?m)^account 1000002 \(demo-child1\):\n(?:  .*\n)*  Apply stopped \(the --timeout of 4s has passed\): [1-3] applied, 0 failed, 0 skipped, [1-3] not started, 0 unknown; not verified\.$`,
		`(?m)^Not started \(stopped: the --timeout of 4s has passed\): 2 accounts \(1000003, 1000004\)$`,
		`(?m)^Fleet apply stopped \(the --timeout of 4s has passed\): 3 accounts: 0 applied, 0 without changes, 0 failed, 1 stopped, 0 refused, 2 not started\.$`,
	} {
		if !regexp.MustCompile(re).MatchString(stderr) {
			t.Errorf("stderr does not match %s:\n%s", re, stderr)
		}
	}
}

// TestFleetRatePerAccount: --rate N in a fleet run is each account's own
// ceiling, not one shared by all. At --rate 0.01 a client sends its first
// request at once and its next one 100 s later, so the two accounts'
// first calls both answering at once shows they do not share a limiter,
// and a second call of one account being held shows that each is limited.
func TestFleetRatePerAccount(t *testing.T) {
	state := fleetTestState(t, 2, nil)
	var stderr bytes.Buffer
	s := &session{stdio: &Stdio{In: strings.NewReader(""), Out: io.Discard, Err: &stderr}, log: slog.New(slog.DiscardHandler), start: time.Now()}
	flags := &AccountFlags{Sandbox: state}
	const rate = 0.01
	fc, err := flags.openFleetClients(context.Background(), s, rate, nil, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer fc.close(s)

	var clients []*voximplant.Client
	for _, id := range []int64{1000002, 1000003} {
		account, err := fc.open(context.Background(), &spec.Spec{AccountID: id})
		if err != nil {
			t.Fatal(err)
		}
		c := account.(*voximplant.Client)
		// Far below the 100 s a shared limiter would hold the second
		// account's first request for, and generous for a loaded machine.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		info, err := c.Info(ctx)
		cancel()
		if err != nil || info.ID != id {
			t.Fatalf("account %d: first call: %+v, %v; want an answer at once (its own limiter's first request)", id, info, err)
		}
		if got := c.Stats().Rate; got != rate {
			t.Errorf("account %d: the client's rate is %g, want --rate's %g", id, got, rate)
		}
		clients = append(clients, c)
	}
	if clients[0] == clients[1] {
		t.Fatal("both accounts got the same client")
	}
	for i, c := range clients {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		_, err := c.Info(ctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("account %d: a second call within 300ms at --rate %g: %v; want it held by the rate until the deadline", 1000002+i, rate, err)
		}
		if st := c.Stats(); st.Requests != 1 {
			t.Errorf("account %d: %d requests sent, want 1 (the second held back)", 1000002+i, st.Requests)
		}
	}
}

// tokenIssuer is the account a request's bearer token is issued for
// (its iss claim), 0 when it has none.
func tokenIssuer(r *http.Request) int64 {
	parts := strings.Split(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "), ".")
	if len(parts) != 3 {
		return 0
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return 0
	}
	var claims struct {
		Iss json.Number `json:"iss"`
	}
	if json.Unmarshal(payload, &claims) != nil {
		return 0
	}
	id, _ := claims.Iss.Int64()
	return id
}

// tryLaterFor answers every BindSipRegistration of account id "try
// later" for longer than any retry budget, and passes the other accounts'
// on (a fleetStopServer handler).
func tryLaterFor(id int64) func(w http.ResponseWriter, r *http.Request) bool {
	return func(w http.ResponseWriter, r *http.Request) bool {
		if tokenIssuer(r) != id {
			return false
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"error":{"code":416,"msg":"repeat after 9999 seconds"}}`)
		return true
	}
}

// TestFleetApplyTryLaterStopsOneAccount: an account the API keeps
// answering "try later" stops on its own, in a line that names it; the
// other accounts go on and are applied, and the fleet did not stop: its
// last line and fleet_summary carry no stop reason (the account's summary
// does), and voxbind exits 1 for that account. The account is the last
// one, whose summary the fleet's line follows.
func TestFleetApplyTryLaterStopsOneAccount(t *testing.T) {
	state := fleetTestState(t, 3, nil)
	flags := fleetStopServer(t, state, tryLaterFor(1000004))
	code, stdout, stderr := applyRun(t, "", append(flags, "apply", "-f", fleetStopSpecs(t, 3), "--auto-approve",
		"--parallelism", "1", "-o", "json")...)
	if code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", code, stderr)
	}
	stop := `the API answered "try later" (code 416) and asks to wait past the retry budget of 2m0s`
	for _, want := range []string{
		"account 1000004 (demo-child3): stopped: " + stop + "; no more of its steps start (the other accounts go on)\n",
		"account 1000004 (demo-child3):\n",
		"  Apply stopped (" + stop + "): 0 applied, 1 failed, 0 skipped, 3 not started, 0 unknown; not verified.\n",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not say %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, "voxbind: stopped:") {
		t.Errorf("one account's stop is said for the whole fleet:\n%s", stderr)
	}
	if got, want := lastLine(stderr), "Fleet apply: 3 accounts: 2 applied, 0 without changes, 0 failed, 1 stopped, 0 refused, 0 not started."; got != want {
		t.Errorf("last line %q, want %q", got, want)
	}
	var summary struct {
		Kind      string  `json:"kind"`
		StoppedBy *string `json:"stopped_by"`
		ExitCode  int     `json:"exit_code"`
	}
	if err := json.Unmarshal([]byte(lastLine(stdout)), &summary); err != nil || summary.Kind != "fleet_summary" {
		t.Fatalf("last stdout line is not the fleet_summary (%v):\n%s", err, stdout)
	}
	if summary.StoppedBy != nil {
		t.Errorf("fleet_summary stopped_by %q; want null", *summary.StoppedBy)
	}
	if summary.ExitCode != 1 {
		t.Errorf("fleet_summary exit_code %d; want 1", summary.ExitCode)
	}
}

// TestFleetApplyTryLaterThenInterrupt: after one account stopped on
// "try later", a Ctrl-C still stops the fleet as Ctrl-C does: the line
// that counts the calls in flight in the other accounts, then the
// summaries, the fleet's line says interrupted, and voxbind exits 130.
func TestFleetApplyTryLaterThenInterrupt(t *testing.T) {
	bin := applyBinary(t)
	t.Parallel()
	state := fleetTestState(t, 3, nil)
	tryLater := tryLaterFor(1000004)
	held, release := make(chan struct{}, 10), make(chan struct{})
	flags := fleetStopServer(t, state, func(w http.ResponseWriter, r *http.Request) bool {
		if tryLater(w, r) {
			return true
		}
		held <- struct{}{}
		<-release
		return false
	})
	var stdout bytes.Buffer
	apply, lines, wait := applyStartOut(t, bin, &stdout, append(flags, "apply", "-f", fleetStopSpecs(t, 3), "--auto-approve",
		"--parallelism", "1", "--accounts-parallelism", "3", "-o", "json")...)
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	waitLine(t, lines, "account 1000004 (demo-child3): step 1: ")
	for range 2 {
		select {
		case <-held:
		case <-time.After(30 * time.Second):
			t.Fatal("the other accounts' first calls did not reach the server")
		}
	}
	if err := apply.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if line := waitLine(t, lines, "Interrupted"); line != "Interrupted: waiting for 2 calls in flight (at most 10s); press Ctrl-C again to quit now" {
		t.Errorf("after the signal: %q", line)
	}
	close(release)
	code, stderr := wait()
	if code != 130 {
		t.Errorf("exit %d, want 130:\n%s", code, stderr)
	}
	if got, want := lastLine(stderr), "Fleet apply interrupted: 3 accounts: 0 applied, 0 without changes, 0 failed, 3 stopped, 0 refused, 0 not started."; got != want {
		t.Errorf("last line %q, want %q\n%s", got, want, stderr)
	}
	if !strings.Contains(lastLine(stdout.String()), `"stopped_by":"interrupted"`) {
		t.Errorf("fleet_summary does not say interrupted:\n%s", lastLine(stdout.String()))
	}
}
