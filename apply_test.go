package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/voxbind/voxbind/internal/leakcheck"
	"github.com/voxbind/voxbind/reconcile"
	"github.com/voxbind/voxbind/sandbox"
	"github.com/voxbind/voxbind/voximplant"
)

// applyRun runs voxbind in-process with stdin and returns its exit status
// and output.
func applyRun(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(args, &Stdio{In: strings.NewReader(stdin), Out: &out, Err: &errOut})
	return code, out.String(), errOut.String()
}

// applyFakeTerminal replaces the terminal checks for one test.
func applyFakeTerminal(t *testing.T, stdin, stderr bool) {
	t.Helper()
	oldIn, oldErr := applyStdinIsTerminal, applyStderrIsTerminal
	applyStdinIsTerminal = func(io.Reader) bool { return stdin }
	applyStderrIsTerminal = func(io.Writer) bool { return stderr }
	t.Cleanup(func() { applyStdinIsTerminal, applyStderrIsTerminal = oldIn, oldErr })
}

func applyWrite(t *testing.T, path, text string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func applyRead(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// applyMoveSpec moves user alice from alice@ to lobby@ (after alice@ takes
// carol) and unbinds conf@: three steps, one of them waiting for another.
const applyMoveSpec = `version: 1
bindings:
  - registration: alice@pbx.example.com
    application: support
    user: carol
  - registration: lobby@pbx.example.com
    application: support
    user: alice
  - registration: conf@pbx.example.com
    unbound: true
`

func TestApplyFlags(t *testing.T) {
	dir := t.TempDir()
	spec := applyWrite(t, filepath.Join(dir, "voxbind.yaml"), applyMoveSpec)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"apply", "-f", spec, "--plan", "plan.json"}, "can't be used together"},
		{[]string{"apply", "-f", spec, "--max-unbind", "3", "--force"}, "can't be used together"},
		{[]string{"apply", "-f", spec, "--parallelism", "0"}, "--parallelism 0: give at least 1"},
		{[]string{"apply", "-f", spec, "--max-unbind=-1"}, "--max-unbind -1: give 0 or more"},
		{[]string{"apply", "-f", spec, "--rate=-2"}, "--rate -2: give a number of requests per second, at least 0.01"},
	}
	for _, tt := range tests {
		code, stdout, stderr := applyRun(t, "", tt.args...)
		if code != 1 || !strings.Contains(stderr, tt.want) || stdout != "" {
			t.Errorf("%v: exit %d, stderr %q, stdout %q; want 1 and %q", tt.args, code, stderr, stdout, tt.want)
		}
	}
}

// TestApplyConfirmation drives the prompt with the terminal check faked:
// without a terminal apply refuses, anything but "yes" cancels, "yes"
// applies, and then there is nothing left to do.
func TestApplyConfirmation(t *testing.T) {
	dir := initSandbox(t)
	state := filepath.Join(dir, sandbox.StateFile)
	spec := applyWrite(t, filepath.Join(t.TempDir(), "voxbind.yaml"), applyMoveSpec)
	before := applyRead(t, state)

	applyFakeTerminal(t, false, false)
	code, stdout, stderr := applyRun(t, "yes\n", "--sandbox", state, "apply", "-f", spec)
	if code != 1 || !strings.Contains(stderr, "stdin is not a terminal") || !strings.Contains(stderr, "--auto-approve") {
		t.Errorf("no terminal: exit %d, stderr %q; want 1 and a refusal naming --auto-approve", code, stderr)
	}
	if !strings.Contains(stdout, "Plan: 1 to bind, 1 to rebind, 1 to unbind, 0 unchanged.") {
		t.Errorf("the plan was not printed before refusing:\n%s", stdout)
	}

	applyFakeTerminal(t, true, false)
	for _, answer := range []string{"no\n", "y\n", "YES\n", "", "yes please\n"} {
		code, _, stderr = applyRun(t, answer, "--sandbox", state, "apply", "-f", spec)
		if code != 1 || !strings.Contains(stderr, "Type 'yes' to apply 3 changes to account 1000001: ") ||
			!strings.Contains(stderr, "apply cancelled; nothing was changed") {
			t.Errorf("answer %q: exit %d, stderr %q; want 1, the prompt and a cancellation", answer, code, stderr)
		}
	}
	if applyRead(t, state) != before {
		t.Fatal("the state changed although apply was refused")
	}

	code, _, stderr = applyRun(t, "yes\n", "--sandbox", state, "apply", "-f", spec, "--parallelism", "2")
	if code != 0 {
		t.Fatalf("yes: exit %d:\n%s", code, stderr)
	}
	for _, want := range []string{
		"Applying 3 changes to account 1000001, 2 at a time.\n",
		"rebind alice@pbx.example.com (3001): applied\n",
		"bind lobby@pbx.example.com (3010): applied\n",
		"unbind conf@pbx.example.com (3011): applied\n",
		"Apply: 3 applied, 0 failed, 0 skipped, 0 not started, 0 unknown; 3 verified.\n",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr after yes does not say %q:\n%s", want, stderr)
		}
	}
	code, stdout, _ = applyRun(t, "", "--sandbox", state, "apply", "-f", spec)
	if code != 0 || !strings.Contains(stdout, "No changes.") {
		t.Errorf("apply again: exit %d, stdout %q; want 0 and No changes. without a prompt", code, stdout)
	}
}

func TestApplyProgressLineOnTerminal(t *testing.T) {
	dir := initSandbox(t)
	state := filepath.Join(dir, sandbox.StateFile)
	spec := applyWrite(t, filepath.Join(t.TempDir(), "voxbind.yaml"), applyMoveSpec)
	applyFakeTerminal(t, false, true)
	code, _, stderr := applyRun(t, "", "--sandbox", state, "apply", "-f", spec, "--auto-approve")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "[1/3] applied 1, failed 0, skipped 0\r\x1b[K[2/3] applied 2, failed 0, skipped 0\r\x1b[K[3/3] applied 3, failed 0, skipped 0\n") {
		t.Errorf("no rewritten progress line on a terminal:\n%q", stderr)
	}
	if strings.Contains(stderr, "step 1:") {
		t.Errorf("plain step lines on a terminal:\n%q", stderr)
	}
}

// applySavePlan runs plan --out and returns the saved plan's path.
func applySavePlan(t *testing.T, state, spec string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "plan.json")
	if code, _, stderr := applyRun(t, "", "--sandbox", state, "plan", "-f", spec, "--out", out); code != 0 {
		t.Fatalf("plan --out: exit %d:\n%s", code, stderr)
	}
	return out
}

// applyBind changes the sandbox account behind voxbind's back, through the
// client.
func applyBind(t *testing.T, state string, reg int64, target *reconcile.Target) {
	t.Helper()
	running, err := sandbox.Start(state, sandbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer running.Close()
	c, err := voximplant.New(voximplant.Options{Endpoint: running.Endpoint, Credentials: running.Credentials})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Bind(context.Background(), reg, target); err != nil {
		t.Fatal(err)
	}
}

// TestApplyStalePlan saves a plan, changes the account, and applies the
// plan: refused, naming the stale steps and what changed, nothing written.
func TestApplyStalePlan(t *testing.T) {
	dir := initSandbox(t)
	state := filepath.Join(dir, sandbox.StateFile)
	spec := applyWrite(t, filepath.Join(t.TempDir(), "voxbind.yaml"), applyMoveSpec)
	planFile := applySavePlan(t, state, spec)

	// Someone binds conf@ to the fax application, and takes carol for bob@.
	applyBind(t, state, 3011, &reconcile.Target{Application: reconcile.Ref{ID: 12}})
	applyBind(t, state, 3002, &reconcile.Target{Application: reconcile.Ref{ID: 10}, User: &reconcile.Ref{ID: 202}})
	before := applyRead(t, state)

	code, _, stderr := applyRun(t, "", "--sandbox", state, "apply", "--plan", planFile)
	if code != 1 {
		t.Fatalf("stale plan: exit %d; want 1:\n%s", code, stderr)
	}
	for _, want := range []string{
		"is stale or was edited: 2 records no longer match the account (it changed since the plan was made, or the file was changed by hand); nothing was changed",
		"(alice@pbx.example.com (3001)): user carol was free when planned, now registration bob@pbx.example.com (3002) holds it",
		"(conf@pbx.example.com (3011)): its target changed: support when planned, now fax",
		"voxbind plan --out",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not say %q:\n%s", want, stderr)
		}
	}
	if applyRead(t, state) != before {
		t.Error("a stale plan changed the state")
	}
}

// applySetBulk binds the bulk registrations i of applyBigSandbox's state
// for which bind returns true: to their user (as the plan does) when user
// is set, else to the application alone (a change the plan does not make).
func applySetBulk(t *testing.T, state string, bind func(i int) (ok, user bool)) {
	t.Helper()
	st, err := sandbox.Load(state)
	if err != nil {
		t.Fatal(err)
	}
	for k := range st.Registrations {
		r := &st.Registrations[k]
		if r.ID < 500000 {
			continue
		}
		i := int(r.ID - 500000)
		if ok, user := bind(i); ok {
			r.ApplicationID, r.UserID = 50, 0
			if user {
				r.UserID = int64(50000 + i)
			}
		}
	}
	data, err := st.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	applyWrite(t, state, string(data))
}

// TestApplyPlanPartlyMade: a saved plan whose first changes are made, as
// an earlier apply of it that was stopped leaves it, is refused in one
// line that counts them and says to plan the rest; records that changed
// otherwise are listed, the first ten and how many more; a plan made in
// whole says so. Nothing is written.
func TestApplyPlanPartlyMade(t *testing.T) {
	const n = 30
	_, state, spec := applyBigSandbox(t, n)
	planFile := applySavePlan(t, state, spec)
	refused := func(t *testing.T) string {
		t.Helper()
		before := applyRead(t, state)
		code, _, stderr := applyRun(t, "", "--sandbox", state, "apply", "--plan", planFile)
		if code != 1 {
			t.Fatalf("exit %d; want 1:\n%s", code, stderr)
		}
		if applyRead(t, state) != before {
			t.Error("the refused plan changed the state")
		}
		return stderr
	}

	t.Run("stopped after 13", func(t *testing.T) {
		applySetBulk(t, state, func(i int) (bool, bool) { return i < 13, true })
		stderr := refused(t)
		want := "voxbind: plan " + planFile + " is stale: 13 of the plan's 30 changes to the account are already made (an earlier apply of this plan was stopped?); " +
			"a saved plan is applied whole or not at all, so nothing was changed; make a new plan for the rest with voxbind plan --out FILE, check it, and apply that\n"
		if stderr != want {
			t.Errorf("stderr:\n%s\nwant:\n%s", stderr, want)
		}
	})
	t.Run("and 12 changed otherwise", func(t *testing.T) {
		applySetBulk(t, state, func(i int) (bool, bool) { return i >= 13 && i < 25, false })
		stderr := refused(t)
		for _, want := range []string{
			"plan " + planFile + " is stale or was edited: 13 of the plan's 30 changes to the account are already made (an earlier apply of this plan was stopped?), and 12 other records no longer match it",
			"  step 14 (ext0013@bulk.example.com (500013)): its target changed: (unbound) when planned, now bulk\n",
			"\n  … and 2 more\n",
			"make a new plan for the rest with voxbind plan --out FILE",
		} {
			if !strings.Contains(stderr, want) {
				t.Errorf("stderr does not say %q:\n%s", want, stderr)
			}
		}
		if got := strings.Count(stderr, "\n  step "); got != 10 {
			t.Errorf("%d records listed; want 10:\n%s", got, stderr)
		}
	})
	t.Run("all made", func(t *testing.T) {
		applySetBulk(t, state, func(int) (bool, bool) { return true, true })
		stderr := refused(t)
		want := "voxbind: plan " + planFile + " was applied already: all 30 of its changes to the account are made, so nothing was changed; nothing is left to apply (voxbind plan shows what differs now)\n"
		if stderr != want {
			t.Errorf("stderr:\n%s\nwant:\n%s", stderr, want)
		}
	})
}

// TestApplyTamperedPlan edits a saved plan the ways a reviewer would not
// notice: the registration shown is another one's name, the before target
// is not the account's, a target name is changed. apply --plan refuses,
// naming the step and what does not match, and writes nothing.
func TestApplyTamperedPlan(t *testing.T) {
	dir := initSandbox(t)
	state := filepath.Join(dir, sandbox.StateFile)
	spec := applyWrite(t, filepath.Join(t.TempDir(), "voxbind.yaml"), applyMoveSpec)
	planFile := applySavePlan(t, state, spec)
	before := applyRead(t, state)
	for _, tc := range []struct {
		name string
		edit func(s *reconcile.Step)
		want string
	}{
		{"registration name", func(s *reconcile.Step) { s.Registration.SIPUsername = "carol" },
			"(carol@pbx.example.com (3001)): the plan names it carol@pbx.example.com, but registration 3001 is alice@pbx.example.com in the account"},
		{"before ids", func(s *reconcile.Step) { s.Before = nil; s.Action = reconcile.ActionBind },
			"(alice@pbx.example.com (3001)): the plan shows it before as (unbound), but its precondition records support / user alice: the plan was edited"},
		{"before names", func(s *reconcile.Step) { s.Before.User.Name = "dave"; s.Precondition.Target.User.Name = "dave" },
			"(alice@pbx.example.com (3001)): the plan shows it before as support / user dave, but the account names that target support / user alice"},
		{"after user name", func(s *reconcile.Step) { s.After.User.Name = "dave" },
			"(alice@pbx.example.com (3001)): the plan names user 202 dave, but the account names it carol"},
		{"after application name", func(s *reconcile.Step) { s.After.Application.Name = "sales.acme.voximplant.com" },
			"the plan names application 10 sales.acme.voximplant.com, but the account names it support."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := reconcile.ReadPlan([]byte(applyRead(t, planFile)))
			if err != nil {
				t.Fatal(err)
			}
			step := 0
			for i := range p.Changes {
				if s := &p.Changes[i]; s.Registration.ID == 3001 {
					tc.edit(s)
					step = s.Step
				}
			}
			// An edit that keeps the summary true to the steps, so that
			// only the check against the account can catch it.
			p.Summary.Bind, p.Summary.Rebind, p.Summary.Unbind = 0, 0, 0
			for _, s := range p.Changes {
				switch s.Action {
				case reconcile.ActionBind:
					p.Summary.Bind++
				case reconcile.ActionRebind:
					p.Summary.Rebind++
				case reconcile.ActionUnbind:
					p.Summary.Unbind++
				}
			}
			var buf bytes.Buffer
			if err := reconcile.RenderJSON(&buf, p, true); err != nil {
				t.Fatal(err)
			}
			edited := applyWrite(t, filepath.Join(t.TempDir(), "plan.json"), buf.String())
			code, _, stderr := applyRun(t, "", "--sandbox", state, "apply", "--plan", edited)
			if code != 1 {
				t.Fatalf("exit %d; want 1:\n%s", code, stderr)
			}
			for _, want := range []string{"is stale or was edited", fmt.Sprintf("step %d ", step), tc.want, "nothing was changed"} {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr does not say %q:\n%s", want, stderr)
				}
			}
			if applyRead(t, state) != before {
				t.Error("a tampered plan changed the state")
			}
		})
	}
}

// TestApplySavedPlanWithAFailingStep applies a saved plan against a
// server that refuses one step (the user was deleted just then): that step
// fails with the API's code and message, the step waiting for it is
// skipped, the independent one is applied and verified, and apply exits 1.
func TestApplySavedPlanWithAFailingStep(t *testing.T) {
	dir := initSandbox(t)
	state := filepath.Join(dir, sandbox.StateFile)
	spec := applyWrite(t, filepath.Join(t.TempDir(), "voxbind.yaml"), applyMoveSpec)
	planFile := applySavePlan(t, state, spec)
	p, err := reconcile.ReadPlan([]byte(applyRead(t, planFile)))
	if err != nil {
		t.Fatal(err)
	}
	failing := 0
	for _, s := range p.Changes {
		if s.Registration.ID == 3001 {
			failing = s.Step
		}
	}
	srv, err := sandbox.Open(state, sandbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		if strings.HasSuffix(r.URL.Path, "/BindSipRegistration") && r.Form.Get("sip_registration_id") == "3001" {
			w.Write([]byte(`{"error":{"code":117,"msg":"Invalid user_id"}}`))
			return
		}
		srv.ServeHTTP(w, r)
	}))
	defer ts.Close()

	code, _, stderr := applyRun(t, "", "--credentials", filepath.Join(dir, sandbox.CredentialsFile), "--endpoint", ts.URL+"/platform_api/",
		"apply", "--plan", planFile, "--parallelism", "1")
	if code != 1 {
		t.Fatalf("exit %d; want 1:\n%s", code, stderr)
	}
	srv.Close()
	for _, want := range []string{
		fmt.Sprintf("step %d: rebind alice@pbx.example.com (3001): failed: BindSipRegistration: api error 117: ", failing),
		fmt.Sprintf("bind lobby@pbx.example.com (3010): skipped because step %d failed", failing),
		"unbind conf@pbx.example.com (3011): applied",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not say %q:\n%s", want, stderr)
		}
	}
	if want := "\nApply: 1 applied, 1 failed, 1 skipped, 0 not started, 0 unknown; 1 verified.\n"; !strings.HasSuffix(stderr, want) {
		t.Errorf("stderr does not end with the summary line %q:\n%s", want, stderr)
	}
	st, err := sandbox.Load(state)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range st.Registrations {
		switch r.ID {
		case 3001:
			if r.UserID != 200 {
				t.Errorf("alice@ changed although its step failed: %+v", r)
			}
		case 3010:
			if r.ApplicationID != 0 {
				t.Errorf("lobby@ changed although its step was skipped: %+v", r)
			}
		case 3011:
			if r.ApplicationID != 0 {
				t.Errorf("conf@ was not unbound: %+v", r)
			}
		}
	}
}

// applyBinary is the voxbind command for the tests that run it as a real
// process (signals, terminals, a server killed under it): TestMain puts a
// copy of this test binary on PATH as "voxbind", which runs exactly what
// main does.
func applyBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: runs voxbind as a process")
	}
	bin, err := exec.LookPath("voxbind")
	if err != nil {
		t.Fatalf("voxbind is not on PATH (TestMain puts it there): %v", err)
	}
	return bin
}

// TestApplyPromptOnPseudoTerminal answers the real prompt on a
// pseudo-terminal: "no" cancels with nothing written, Ctrl-C at the prompt
// exits 130 with nothing written, "yes" applies.
func TestApplyPromptOnPseudoTerminal(t *testing.T) {
	bin := applyBinary(t)
	dir := initSandbox(t)
	state := filepath.Join(dir, sandbox.StateFile)
	spec := applyWrite(t, filepath.Join(t.TempDir(), "voxbind.yaml"), applyMoveSpec)
	before := applyRead(t, state)
	const prompt = "Type 'yes' to apply 3 changes to account 1000001: "

	// answer runs apply on a pseudo-terminal, waits for the prompt, and
	// then types line, or sends SIGINT when line is "^C".
	answer := func(line string) (int, string) {
		ptmx, tty, err := pty.Open()
		if err != nil {
			t.Skipf("no pseudo-terminal: %v", err)
		}
		defer ptmx.Close()
		cmd := exec.Command(bin, "--sandbox", state, "apply", "-f", spec)
		stderrPipe, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdin, cmd.Stdout = tty, io.Discard
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		tty.Close()
		// A voxbind that hangs (no prompt, or no end after the answer) is
		// killed after a minute, which ends the reads below: the test
		// fails instead of hanging.
		var hung atomic.Bool
		deadline := time.AfterFunc(time.Minute, func() { hung.Store(true); cmd.Process.Kill() })
		defer deadline.Stop()
		go io.Copy(io.Discard, ptmx) // the terminal's echo
		var stderr bytes.Buffer
		buf := make([]byte, 4096)
		for !strings.Contains(stderr.String(), prompt) {
			n, err := stderrPipe.Read(buf)
			stderr.Write(buf[:n])
			if err != nil {
				cmd.Wait()
				t.Fatalf("no prompt (killed after a minute: %v): %v:\n%s", hung.Load(), err, stderr.String())
			}
		}
		if line == "^C" {
			cmd.Process.Signal(syscall.SIGINT)
		} else if _, err := ptmx.Write([]byte(line + "\n")); err != nil {
			t.Fatal(err)
		}
		io.Copy(&stderr, stderrPipe)
		err = cmd.Wait()
		if hung.Load() {
			t.Fatalf("answer %q: voxbind did not end within a minute:\n%s", line, stderr.String())
		}
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return code, stderr.String()
	}

	code, stderr := answer("no")
	if code != 1 || !strings.Contains(stderr, "apply cancelled; nothing was changed") {
		t.Errorf("no: exit %d, stderr %q; want 1 and a cancellation", code, stderr)
	}
	code, stderr = answer("^C")
	if code != 130 || strings.Contains(stderr, "Applying") {
		t.Errorf("Ctrl-C at the prompt: exit %d, stderr %q; want 130 and nothing applied", code, stderr)
	}
	if applyRead(t, state) != before {
		t.Fatal("the state changed although the answer was no, or an interrupt")
	}
	code, stderr = answer("yes")
	if code != 0 || !strings.Contains(stderr, "Apply: 3 applied, 0 failed, 0 skipped, 0 not started, 0 unknown; 3 verified.") {
		t.Errorf("yes: exit %d, stderr %q; want 0 and 3 applied", code, stderr)
	}
	if applyRead(t, state) == before {
		t.Error("the state did not change after yes")
	}
}

// applyBigSandbox writes a sandbox state of the demo account plus n
// unbound registrations and n users of one application, and a spec that
// binds each registration to its user: n independent changes.
func applyBigSandbox(t *testing.T, n int) (dir, state, spec string) {
	t.Helper()
	dir = initSandbox(t)
	state = filepath.Join(dir, sandbox.StateFile)
	st, err := sandbox.Load(state)
	if err != nil {
		t.Fatal(err)
	}
	st.Applications = append(st.Applications, sandbox.ApplicationRecord{ID: 50, Name: "bulk"})
	var b strings.Builder
	b.WriteString("version: 1\nbindings:\n")
	for i := range n {
		st.Users = append(st.Users, sandbox.UserRecord{ID: int64(50000 + i), ApplicationID: 50, Name: fmt.Sprintf("agent%04d", i)})
		st.Registrations = append(st.Registrations, sandbox.Registration{ID: int64(500000 + i), SIPUsername: fmt.Sprintf("ext%04d", i), Proxy: "bulk.example.com", Successful: true})
		fmt.Fprintf(&b, "  - registration: ext%04d@bulk.example.com\n    application: bulk\n    user: agent%04d\n", i, i)
	}
	data, err := st.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	applyWrite(t, state, string(data))
	spec = applyWrite(t, filepath.Join(dir, "voxbind.yaml"), b.String())
	return dir, state, spec
}

// applyBulkBound loads the state that applyBigSandbox wrote, which
// validates it (one registration per user, among others), and counts its
// bulk registrations bound.
func applyBulkBound(t *testing.T, state string) int {
	t.Helper()
	st, err := sandbox.Load(state)
	if err != nil {
		t.Fatalf("state after the apply: %v", err)
	}
	bound := 0
	for _, r := range st.Registrations {
		if r.ID >= 500000 && r.UserID != 0 {
			bound++
		}
	}
	return bound
}

// applyServe runs `voxbind sandbox serve` on a free loopback port with
// latency and returns its endpoint and a func that stops it (SIGINT, as a
// user would) and waits; the test's cleanup kills it if still running.
func applyServe(t *testing.T, bin, state, latency string) (endpoint string, stop func()) {
	t.Helper()
	endpoint, _, stop = applyServeProcess(t, bin, state, latency)
	return endpoint, stop
}

// applyServeProcess is applyServe that also returns the server's process,
// for a test to kill.
func applyServeProcess(t *testing.T, bin, state, latency string) (endpoint string, serve *exec.Cmd, stop func()) {
	t.Helper()
	return serveProcess(t, bin, "--state", state, "--addr", "127.0.0.1:0", "--latency", latency)
}

// serveProcess runs `voxbind sandbox serve` with args and returns its
// endpoint (http or, with --tls, https), its process and a func that
// stops it, as applyServeProcess does.
func serveProcess(t *testing.T, bin string, args ...string) (endpoint string, serve *exec.Cmd, stop func()) {
	t.Helper()
	serve = exec.Command(bin, append([]string{"sandbox", "serve"}, args...)...)
	serveErr, err := serve.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var once sync.Once
	stop = func() {
		once.Do(func() {
			serve.Process.Signal(os.Interrupt)
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				serve.Process.Kill()
				<-done
			}
		})
	}
	serving := bufio.NewScanner(serveErr)
	for endpoint == "" && serving.Scan() {
		if m := regexp.MustCompile(`at (https?://\S+/platform_api/)`).FindStringSubmatch(serving.Text()); m != nil {
			endpoint = m[1]
		}
	}
	go func() {
		io.Copy(io.Discard, serveErr)
		serve.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		once.Do(func() { serve.Process.Kill(); <-done })
	})
	if endpoint == "" {
		stop()
		t.Fatal("sandbox serve did not say where it serves")
	}
	return endpoint, serve, stop
}

// applyStart starts `voxbind apply` against endpoint with the sandbox's
// key, and returns a channel of its stderr lines (closed when it ends),
// all of its stderr once it has ended, and its exit status.
func applyStart(t *testing.T, bin, dir, endpoint string, args ...string) (cmd *exec.Cmd, lines <-chan string, wait func() (int, string)) {
	t.Helper()
	return applyStartCmd(t, bin, append([]string{"--credentials", filepath.Join(dir, sandbox.CredentialsFile), "--endpoint", endpoint, "apply"}, args...)...)
}

// applyStartCmd starts voxbind with args, as applyStart does.
func applyStartCmd(t *testing.T, bin string, args ...string) (cmd *exec.Cmd, lines <-chan string, wait func() (int, string)) {
	t.Helper()
	return applyStartOut(t, bin, io.Discard, args...)
}

// applyStartOut starts voxbind with args, as applyStart does, its stdout
// going to stdout.
func applyStartOut(t *testing.T, bin string, stdout io.Writer, args ...string) (cmd *exec.Cmd, lines <-chan string, wait func() (int, string)) {
	t.Helper()
	cmd = exec.Command(bin, args...)
	pr, pw := io.Pipe()
	var stderr bytes.Buffer
	cmd.Stderr = io.MultiWriter(&stderr, pw)
	cmd.Stdout = stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ch := make(chan string, 1000)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			select {
			case ch <- sc.Text():
			default: // nobody is listening any more
			}
		}
		close(ch)
	}()
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait(); pw.Close() }()
	wait = func() (int, string) {
		var err error
		select {
		case err = <-waited:
		case <-time.After(60 * time.Second):
			cmd.Process.Kill()
			<-waited
			t.Fatalf("apply did not end within a minute:\n%s", stderr.String())
		}
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), stderr.String()
		} else if err != nil {
			t.Fatal(err)
		}
		return 0, stderr.String()
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-waited
		}
	})
	return cmd, ch, wait
}

// applyWaitStep waits for the first "step N: ..." line apply prints.
func applyWaitStep(t *testing.T, lines <-chan string) {
	t.Helper()
	for line := range lines {
		if strings.HasPrefix(line, "step ") {
			return
		}
	}
	t.Fatal("apply ended without reporting a step")
}

// TestApplyInterrupt runs apply as a real process against `sandbox serve`
// with 200 ms of latency (200 steps, 2 at a time: 20 s, far more than the
// signal needs to arrive), sends SIGINT once the first step is reported,
// and checks that apply stops: exit 130, a summary on stderr, and a state
// file that is valid, has no user on two registrations, and holds exactly
// the steps the summary counts as applied.
func TestApplyInterrupt(t *testing.T) {
	bin := applyBinary(t)
	const n = 200
	dir, state, spec := applyBigSandbox(t, n)
	endpoint, stopServe := applyServe(t, bin, state, "200ms")

	apply, lines, wait := applyStart(t, bin, dir, endpoint, "-f", spec, "--auto-approve", "--parallelism", "2", "--debug")
	applyWaitStep(t, lines)
	if err := apply.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	code, stderr := wait()
	if code != 130 {
		t.Fatalf("apply after SIGINT: exit %d; want 130:\n%s", code, stderr)
	}
	creds, err := voximplant.LoadCredentials(filepath.Join(dir, sandbox.CredentialsFile), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stderr, "method=BindSipRegistration") {
		t.Errorf("--debug traced no write:\n%s", stderr)
	}
	assertNoLeaks(t, "apply --debug", stderr, leakcheck.Secrets{Keys: []*rsa.PrivateKey{creds.PrivateKey}})
	m := regexp.MustCompile(`Apply interrupted: (\d+) applied, 0 failed, 0 skipped, (\d+) not started, 0 unknown; not verified\.\n`).FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("no interrupted summary on stderr:\n%s", stderr)
	}
	applied, _ := strconv.Atoi(m[1])
	notStarted, _ := strconv.Atoi(m[2])
	if applied+notStarted != n || notStarted == 0 {
		t.Errorf("summary: %d applied + %d not started; want %d in all, some not started", applied, notStarted, n)
	}

	stopServe()
	if bound := applyBulkBound(t, state); bound != applied {
		t.Errorf("%d registrations bound in the state, but the summary says %d applied", bound, applied)
	}
}

// TestGuardAccountFromKey: "the account" is the key's account (or
// --account-id, or the spec's account_id), not whatever GetAccountInfo
// answers. A server that answers for another account is refused by plan
// and apply, nothing written.
func TestGuardAccountFromKey(t *testing.T) {
	dir := initSandbox(t)
	state := filepath.Join(dir, sandbox.StateFile)
	srv, err := sandbox.Open(state, sandbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/GetAccountInfo") {
			w.Write([]byte(`{"result":{"account_id":424242,"account_name":"other"}}`))
			return
		}
		srv.ServeHTTP(w, r)
	}))
	defer ts.Close()
	spec := applyWrite(t, filepath.Join(t.TempDir(), "voxbind.yaml"), "version: 1\nbindings:\n  - registration: lobby@pbx.example.com\n    application: support\n")
	before := applyRead(t, state)
	creds := filepath.Join(dir, sandbox.CredentialsFile)
	for _, cmd := range [][]string{{"plan", "-f", spec}, {"apply", "-f", spec, "--auto-approve"}} {
		args := append([]string{"--credentials", creds, "--endpoint", ts.URL + "/platform_api/"}, cmd...)
		code, stdout, stderr := applyRun(t, "", args...)
		if code != 1 {
			t.Fatalf("%s: exit %d, want 1:\n%s", cmd[0], code, stderr)
		}
		want := fmt.Sprintf("voxbind acts on account %d (the key file's account_id), but the API answered for account 424242; nothing was changed", sandbox.DemoAccountID)
		if !strings.Contains(stderr, want) || stdout != "" {
			t.Errorf("%s: stderr does not say %q (stdout %q):\n%s", cmd[0], want, stdout, stderr)
		}
	}
	srv.Close()
	if applyRead(t, state) != before {
		t.Error("the account changed")
	}
}

// TestApplyFailedFix: the fix of an apply that did not apply every step
// points to what goes on from there: apply and plan after an apply, the
// undo again (its journal quoted for a shell) after an undo, whatever
// stopped it.
func TestApplyFailedFix(t *testing.T) {
	busy := &reconcile.BusyError{Code: 416, Wait: time.Hour, Budget: 2 * time.Minute}
	apply, undo := &reconcile.Plan{}, &reconcile.Plan{Journal: "my j.jsonl"}
	for _, tc := range []struct {
		p       *reconcile.Plan
		stopped error
		want    string
	}{
		{apply, busy, "run apply again later: the API asks voxbind to wait; voxbind plan shows what is left to do"},
		{apply, nil, "see the steps not applied above; voxbind plan shows what is left to do"},
		{undo, busy, "run voxbind undo 'my j.jsonl' again later: the API asks voxbind to wait; the undo restores only what is left"},
		{undo, nil, "see the steps not applied above; voxbind undo 'my j.jsonl' again restores only what is left"},
	} {
		if got := applyFailedFix(tc.p, tc.stopped); got != tc.want {
			t.Errorf("journal %q, stopped %v:\n got %q\nwant %q", tc.p.Journal, tc.stopped, got, tc.want)
		}
	}

	// Whatever stopped it, the fix is the summary's way-on line in the
	// same words; a second Ctrl-C (ErrQuit), like the first, has none.
	stops := []error{
		busy,
		&reconcile.KeyStopError{Code: 433, Fix: "the key_id is unknown: the key was deleted"},
		&reconcile.KeyStopError{Code: 454, Fix: "the token lifetime exceeds one hour: this is a voxbind bug, please report it", Bug: true},
		&reconcile.UnreachableError{Since: time.Date(2026, 11, 28, 3, 12, 9, 0, time.UTC), Period: 30 * time.Second},
		fmt.Errorf("before the call of step 3: %w", &reconcile.JournalWriteError{Path: "j.jsonl", Op: "write", Err: errors.New("file too large")}),
		fmt.Errorf("the --timeout of 1s has passed: %w", context.DeadlineExceeded),
		reconcile.ErrQuit,
	}
	for _, p := range []*reconcile.Plan{apply, undo} {
		for _, stopped := range stops {
			var summary strings.Builder
			res := reconcile.ApplyResult{Stopped: stopped, NotStarted: 1}
			if err := reconcile.RenderApplySummary(&summary, p, &res, &reconcile.Plan{}, nil, false, ""); err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(summary.String()), "\n")
			line := ""
			if len(lines) >= 2 && !strings.HasPrefix(lines[len(lines)-2], "  ") {
				line = lines[len(lines)-2]
			}
			fix := applyFailedFix(p, stopped)
			switch {
			case stopped == reconcile.ErrQuit:
				if line != "" || !strings.HasPrefix(fix, "see the steps not applied above; ") {
					t.Errorf("journal %q, quit: line %q, fix %q; want no line and the steps not applied", p.Journal, line, fix)
				}
			case line == "" || wayOnWords(line+"\n") != fix:
				t.Errorf("journal %q, stopped %v:\nline %q\nfix  %q\nwant the same words", p.Journal, stopped, line, fix)
			}
		}
	}
}

// TestFleetFailedFix: after a fleet undo that refused an account for its
// blocked restores, the way on says what that account needs first; the
// undo again alone would meet the same refusal.
func TestFleetFailedFix(t *testing.T) {
	child := reconcile.AccountInfo{ID: 1000002, Name: "demo-child1"}
	f := &reconcile.FleetPlan{Accounts: []reconcile.FleetAccount{
		{Account: child, Plan: &reconcile.Plan{Journal: "j2.jsonl"}},
		{Account: reconcile.AccountInfo{ID: 1000003}, Plan: &reconcile.Plan{Journal: "j3.jsonl"}},
	}}
	if got, want := fleetFailedFix(f, nil), "see each account's summary above; run voxbind undo j2.jsonl j3.jsonl again: the undo restores only what is left"; got != want {
		t.Errorf("no refusal: %q, want %q", got, want)
	}
	refused := []fleetRefusal{{account: child, why: "1 change blocked (see the plan)", fix: "leave it out with --except id=103003"}}
	if got, want := fleetFailedFix(f, refused), "see each account's summary above; first, for account 1000002 (demo-child1): leave it out with --except id=103003; then run voxbind undo j2.jsonl j3.jsonl again (with those --except flags, to leave them out): the undo restores only what is left"; got != want {
		t.Errorf("a blocked refusal: %q, want %q", got, want)
	}
}

// TestRemakeCommandQuotesJournals: the undo that makes a stale undo plan
// again names its journals quoted for a shell, so that it works when
// pasted.
func TestRemakeCommandQuotesJournals(t *testing.T) {
	kind, cmd := remakeCommand([]*reconcile.Plan{{Journal: "my j.jsonl"}, {Journal: "k.jsonl"}})
	if kind != "undo plan" || cmd != "voxbind undo 'my j.jsonl' k.jsonl" {
		t.Errorf("remakeCommand = %q, %q; want undo plan, voxbind undo 'my j.jsonl' k.jsonl", kind, cmd)
	}
	// With the account flags and the selection the plans were made with.
	sel := &reconcile.PlanSelection{Except: []string{"id=3021"}}
	_, cmd = remakeCommand([]*reconcile.Plan{{Journal: "j.jsonl", Flags: " --sandbox=sb/account.json", Selection: sel}, {Journal: "k.jsonl", Flags: " --sandbox=sb/account.json", Selection: sel}})
	if want := "voxbind undo j.jsonl k.jsonl --sandbox=sb/account.json --except 'id=3021'"; cmd != want {
		t.Errorf("remakeCommand = %q, want %q", cmd, want)
	}
}
