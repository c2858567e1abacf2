package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/voxbind/voxbind/sandbox"
	"github.com/voxbind/voxbind/voximplant"
)

// TestApplyingLine: one change is "1 change", and "N at a time" appears
// only when more than one step can run at once.
func TestApplyingLine(t *testing.T) {
	for _, tc := range []struct {
		changes, parallelism int
		want                 string
	}{
		{1, 4, "Applying 1 change to account 7."},
		{2, 4, "Applying 2 changes to account 7, 2 at a time."},
		{12, 4, "Applying 12 changes to account 7, 4 at a time."},
		{12, 1, "Applying 12 changes to account 7."},
	} {
		if got := applyingLine(tc.changes, 7, tc.parallelism); got != tc.want {
			t.Errorf("applyingLine(%d, 7, %d) = %q, want %q", tc.changes, tc.parallelism, got, tc.want)
		}
	}
}

// TestApplyOneChangeWording asks to apply one change: the prompt and the
// start line say "1 change", not "1 changes" or "4 at a time".
func TestApplyOneChangeWording(t *testing.T) {
	dir := initSandbox(t)
	state := filepath.Join(dir, sandbox.StateFile)
	spec := applyWrite(t, filepath.Join(t.TempDir(), "voxbind.yaml"), `version: 1
bindings:
  - registration: conf@pbx.example.com
    unbound: true
`)
	applyFakeTerminal(t, true, false)
	code, _, stderr := applyRun(t, "yes\n", "--sandbox", state, "apply", "-f", spec)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	for _, want := range []string{
		"Type 'yes' to apply 1 change to account 1000001: ",
		"Applying 1 change to account 1000001.\n",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
}

// TestRateErrorsAgree: every command that takes --rate (sandbox serve's
// limit included) refuses a bad one with the same words, a ceiling below
// one request every 100 s among them: it would wait practically forever.
func TestRateErrorsAgree(t *testing.T) {
	dir := initSandbox(t)
	state := filepath.Join(dir, sandbox.StateFile)
	spec := applyWrite(t, filepath.Join(t.TempDir(), "voxbind.yaml"), "version: 1\nbindings: []\n")
	journal := filepath.Join(t.TempDir(), "missing.jsonl")
	for _, rate := range []string{"-2", "NaN", "+Inf", "1e-300", "0.009"} {
		want := "voxbind: --rate " + rate + ": give a number of requests per second, at least 0.01 (one request every 100 s), or 0 for no ceiling\n"
		for _, cmd := range [][]string{
			{"--sandbox", state, "plan", "-f", spec},
			{"--sandbox", state, "apply", "-f", spec, "--auto-approve"},
			{"--sandbox", state, "undo", journal, "--auto-approve"},
			{"--sandbox", state, "export"},
			{"sandbox", "serve", "--state", state, "--addr", "127.0.0.1:0"},
		} {
			args := append(cmd, "--rate="+rate)
			code, stdout, stderr := applyRun(t, "", args...)
			if code != 1 || stderr != want || stdout != "" {
				t.Errorf("%s --rate=%s: exit %d, stdout %q, stderr %q; want 1 and %q", strings.Join(cmd[:3], " "), rate, code, stdout, stderr, want)
			}
		}
	}
}

// TestStatusLines: on a terminal, apply shows reading the account and
// verifying on the status line, then clears it; elsewhere stderr holds
// plain lines only, without a carriage return.
func TestStatusLines(t *testing.T) {
	state := filepath.Join(initSandbox(t), sandbox.StateFile)
	spec := applyWrite(t, filepath.Join(t.TempDir(), "voxbind.yaml"), applyMoveSpec)

	applyFakeTerminal(t, false, true)
	code, _, stderr := applyRun(t, "", "--sandbox", state, "apply", "-f", spec, "--auto-approve")
	if code != 0 {
		t.Fatalf("exit %d:\n%q", code, stderr)
	}
	for _, want := range []string{
		"Reading account 1000001… 0s\r\x1b[K",
		"Verifying: reading account 1000001 back… 0s\r\x1b[K",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("terminal stderr lacks %q:\n%q", want, stderr)
		}
	}

	applyFakeTerminal(t, false, false)
	spec = applyWrite(t, spec, "version: 1\nbindings:\n  - registration: conf@pbx.example.com\n    application: support\n")
	code, _, stderr = applyRun(t, "", "--sandbox", state, "apply", "-f", spec, "--auto-approve")
	if code != 0 || strings.Contains(stderr, "\r") || strings.Contains(stderr, "\x1b") || strings.Contains(stderr, "Reading account") ||
		!strings.Contains(stderr, "\nstep 1: bind conf@pbx.example.com (3011): applied\n") {
		t.Errorf("not a terminal: exit %d, stderr %q; want the step's plain line", code, stderr)
	}
}

// TestRateBeyondTimeout: when the --rate ceiling would let the next
// request go only after --timeout, the run ends at the timeout with the
// timeout's own message and code, not the rate limiter's.
func TestRateBeyondTimeout(t *testing.T) {
	t.Parallel()
	state := filepath.Join(initSandbox(t), sandbox.StateFile)
	spec := applyWrite(t, filepath.Join(t.TempDir(), "voxbind.yaml"), "version: 1\nbindings: []\n")
	code, stdout, stderr := runCLI(t, "--sandbox", state, "plan", "-f", spec, "--rate", "0.01", "--timeout", "1s", "-o", "json")
	var doc struct{ Diagnostics []Diagnostic }
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil || len(doc.Diagnostics) != 1 {
		t.Fatalf("exit %d, stdout %q (%v), stderr %q", code, stdout, err, stderr)
	}
	d := doc.Diagnostics[0]
	if code != 1 || d.Code != codeTimeout || !strings.HasPrefix(d.Message, "the --timeout of 1s has passed while reading account ") || strings.Contains(stderr, "rate: Wait") {
		t.Errorf("exit %d, diagnostic %+v, stderr %q; want 1 and the timeout's message", code, d, stderr)
	}
}

// TestRepeatsLine: the line before the summary agrees with its numbers.
func TestRepeatsLine(t *testing.T) {
	for _, tc := range []struct {
		st   voximplant.Stats
		want string
	}{
		{voximplant.Stats{Requests: 15, Retries: 1, RateLimited: 1}, "The API was slow, busy or unreachable: 1 of 15 requests was a repeat (1 rate-limit answer)."},
		{voximplant.Stats{Requests: 80, Retries: 3}, "The API was slow, busy or unreachable: 3 of 80 requests were repeats (0 rate-limit answers)."},
	} {
		if got := repeatsLine(tc.st); got != tc.want {
			t.Errorf("repeatsLine(%+v) =\n%q, want\n%q", tc.st, got, tc.want)
		}
	}
}

// TestWaitText: a retry's wait never reads "0s" when there is one.
func TestWaitText(t *testing.T) {
	for d, want := range map[time.Duration]string{
		300 * time.Microsecond:  "less than 1ms",
		4 * time.Millisecond:    "4ms",
		1234 * time.Millisecond: "1.23s",
		2 * time.Minute:         "2m0s",
	} {
		if got := waitText(d); got != want {
			t.Errorf("waitText(%v) = %q, want %q", d, got, want)
		}
	}
}

// TestRetryFor: the first retry's notice gives the retry budget, or the
// rest of --timeout when that ends sooner.
func TestRetryFor(t *testing.T) {
	now := time.Date(2026, 11, 28, 3, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		deadline time.Time
		want     string
	}{
		{time.Time{}, "15s"},
		{now.Add(time.Hour), "15s"},
		{now.Add(1900 * time.Millisecond), "1.9s (the rest of --timeout)"},
		{now.Add(-time.Second), "less than 1ms (the rest of --timeout)"},
	} {
		e := voximplant.RetryEvent{Budget: 15 * time.Second, Deadline: tc.deadline}
		if got := retryFor(e, now); got != tc.want {
			t.Errorf("deadline %v: %q, want %q", tc.deadline, got, tc.want)
		}
	}
}
