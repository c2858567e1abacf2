//go:build unix

package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/voxbind/voxbind/sandbox"
	"github.com/voxbind/voxbind/voximplant"
)

// TestCredentialsFIFOYieldsToCtrlC: a credentials path that blocks (a
// FIFO nobody writes to) does not keep Ctrl-C from ending the run.
func TestCredentialsFIFOYieldsToCtrlC(t *testing.T) {
	bin := applyBinary(t)
	t.Parallel()
	fifo := filepath.Join(t.TempDir(), "credentials.json")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("no FIFO: %v", err)
	}
	spec := applyWrite(t, filepath.Join(t.TempDir(), "voxbind.yaml"), applyMoveSpec)
	// Opening the FIFO blocks until a writer comes: the signal goes once
	// voxbind is stuck there.
	code, stderr := interruptWhen(t, openingFIFO(fifo), bin, "--credentials", fifo, "plan", "-f", spec)
	if code != 130 || stderr != "Interrupted.\n" {
		t.Errorf("exit %d, stderr %q; want 130 and Interrupted.", code, stderr)
	}
}

// TestSpecFIFOYieldsToCtrlC: a -f spec path that blocks (a FIFO nobody
// writes to, as a stalled <(cmd) is) yields to Ctrl-C in validate, plan
// and apply: "Interrupted.", exit 130.
func TestSpecFIFOYieldsToCtrlC(t *testing.T) {
	bin := applyBinary(t)
	t.Parallel()
	state := filepath.Join(initSandbox(t), sandbox.StateFile)
	for _, args := range [][]string{
		{"validate"},
		{"--sandbox", state, "plan"},
		{"--sandbox", state, "apply", "--auto-approve"},
	} {
		fifo := filepath.Join(t.TempDir(), "voxbind.yaml")
		if err := syscall.Mkfifo(fifo, 0o600); err != nil {
			t.Skipf("no FIFO: %v", err)
		}
		code, stderr := interruptWhen(t, openingFIFO(fifo), bin, append(args, "-f", fifo)...)
		if code != 130 || stderr != "Interrupted.\n" {
			t.Errorf("%v: exit %d, stderr %q; want 130 and Interrupted.", args, code, stderr)
		}
	}
}

// openingFIFO returns a channel that gets a value once a process whose
// command line names fifo is blocked opening it, waiting for a writer
// (its /proc/PID/task/TID/wchan says wait_for_partner, on Linux): it is
// then past its start, its signals handled, and stuck where the test
// wants it. A fixed wait instead would let a loaded machine signal a
// voxbind still starting. Where /proc does not say, or has not said
// within 10 s, the channel gets its value after half a second.
func openingFIFO(fifo string) <-chan struct{} {
	ready := make(chan struct{}, 1)
	go func() {
		defer func() { ready <- struct{}{} }()
		if _, err := os.Stat("/proc/self/task"); err != nil {
			time.Sleep(500 * time.Millisecond)
			return
		}
		for start := time.Now(); time.Since(start) < 10*time.Second; time.Sleep(10 * time.Millisecond) {
			if blockedOpening(fifo) {
				return
			}
		}
	}()
	return ready
}

// blockedOpening reports whether a thread of a process whose command
// line names path waits in the kernel for a FIFO's other end.
func blockedOpening(path string) bool {
	cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, cmdline := range cmdlines {
		args, err := os.ReadFile(cmdline)
		if err != nil || !slices.Contains(strings.Split(string(args), "\x00"), path) {
			continue
		}
		wchans, _ := filepath.Glob(filepath.Join(filepath.Dir(cmdline), "task", "*", "wchan"))
		for _, wchan := range wchans {
			if w, err := os.ReadFile(wchan); err == nil && string(w) == "wait_for_partner" {
				return true
			}
		}
	}
	return false
}

// TestDoctorKeyFIFO: doctor reads the key file as the other commands do,
// so a FIFO nobody writes to ends the check when its time is up instead
// of blocking doctor for good.
func TestDoctorKeyFIFO(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "credentials.json")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("no FIFO: %v", err)
	}
	d := &doctor{f: &AccountFlags{Credentials: fifo}, s: testSession(&Stdio{Err: io.Discard})}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	done := make(chan *voximplant.Credentials, 1)
	go func() {
		creds, _, _ := d.checkKey(ctx)
		done <- creds
	}()
	select {
	case creds := <-done:
		if creds != nil || len(d.checks) != 1 || d.checks[0].Status != "fail" || !strings.Contains(d.checks[0].Detail, "still reading") {
			t.Errorf("checks %+v", d.checks)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("doctor is still reading the FIFO")
	}
}

// hangServerUnderApply starts applying n independent changes through
// `sandbox serve` and stops the server (SIGSTOP) once a step has ended:
// it keeps its connections and answers nothing. hung is when.
func hangServerUnderApply(t *testing.T, n int) (apply *exec.Cmd, lines <-chan string, wait func() (int, string), hung time.Time) {
	t.Helper()
	bin := applyBinary(t)
	t.Parallel()
	dir, state, spec := applyBigSandbox(t, n)
	endpoint, serve, _ := applyServeProcess(t, bin, state, "20ms")
	t.Cleanup(func() { serve.Process.Signal(syscall.SIGCONT) }) // before the server is stopped for good
	apply, lines, wait = applyStart(t, bin, dir, endpoint, "-f", spec, "--auto-approve")
	applyWaitStep(t, lines)
	if err := serve.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	return apply, lines, wait, time.Now()
}

// TestApplyServerHangs stops `sandbox serve` under a running apply, so
// every call waits out its 30 s attempt timeout. The API has been
// unreachable since the server stopped, and that is what apply says; the
// breaker trips once the first unanswered attempts time out (30 s after
// the hang, the breaker period), and the attempts sent by then get the
// 10 s grace.
func TestApplyServerHangs(t *testing.T) {
	_, _, wait, hung := hangServerUnderApply(t, 300)
	code, stderr := wait()
	took := time.Since(hung)
	if code != 1 {
		t.Fatalf("exit %d; want 1:\n%s", code, stderr)
	}
	// The breaker period (30 s) from the hang, then the grace (10 s);
	// before, the breaker's clock started 30 s late and apply took some
	// 70 s.
	if took > 50*time.Second {
		t.Errorf("apply took %v after the server hung; want the breaker period (30s) plus at most the grace (10s)", took)
	}
	m := regexp.MustCompile(`(?m)^voxbind: stopped: the API is unreachable since (\d\d:\d\d:\d\d); no more steps start`).FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("no line saying apply stopped because the API is unreachable:\n%s", stderr)
	}
	t.Logf("the server hung at %s; apply said unreachable since %s and ended %v later", hung.Format("15:04:05.000"), m[1], took.Round(100*time.Millisecond))
	near := false
	for d := -2 * time.Second; d <= 2*time.Second; d += time.Second {
		near = near || hung.Add(d).Format("15:04:05") == m[1]
	}
	if !near {
		t.Errorf("unreachable since %s; the server hung at %s", m[1], hung.Format("15:04:05.000"))
	}
	if !regexp.MustCompile(`^Apply stopped \(the API is unreachable since \d\d:\d\d:\d\d\): \d+ applied, 0 failed, 0 skipped, \d+ not started, \d+ unknown; not verified\.$`).MatchString(lastLine(stderr)) {
		t.Errorf("the last line is not the stopped summary:\n%s", stderr)
	}
}

// TestApplyInterruptAfterBreaker presses Ctrl-C while apply, stopped by
// the breaker, waits for its calls in flight: the wait ends at once, but
// the run ended because the API is unreachable, so the exit status (1),
// the summary's reason and the journal's end all say the breaker; the
// summary says that Ctrl-C cut the wait short.
func TestApplyInterruptAfterBreaker(t *testing.T) {
	apply, lines, wait, _ := hangServerUnderApply(t, 300)
	waitLine(t, lines, "voxbind: stopped: the API is unreachable since ")
	if err := apply.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	code, stderr := wait()
	if took := time.Since(sent); took > 8*time.Second {
		t.Errorf("apply took %v after Ctrl-C; want at once", took)
	}
	if code != 1 {
		t.Errorf("exit %d; want 1 (the breaker stopped apply before Ctrl-C):\n%s", code, stderr)
	}
	if !regexp.MustCompile(`^Apply stopped \(the API is unreachable since \d\d:\d\d:\d\d; the wait for calls in flight was cut short by an interrupt\): \d+ applied, 0 failed, 0 skipped, \d+ not started, [1-9]\d* unknown; not verified\.$`).MatchString(lastLine(stderr)) {
		t.Errorf("the last line does not say the breaker stopped apply and Ctrl-C cut the wait:\n%s", stderr)
	}
	if strings.Contains(stderr, "\nInterrupted") {
		t.Errorf("voxbind says it was interrupted:\n%s", stderr)
	}
	journal := regexp.MustCompile(`(?m)^Journal: (.*)$`).FindStringSubmatch(stderr)
	if journal == nil {
		t.Fatalf("no journal named:\n%s", stderr)
	}
	data, err := os.ReadFile(journal[1])
	if err != nil {
		t.Fatal(err)
	}
	var end struct {
		Kind        string
		Interrupted bool
		Stopped     string
	}
	if err := json.Unmarshal([]byte(lastLine(string(data))), &end); err != nil {
		t.Fatal(err)
	}
	if end.Kind != "end" || !strings.HasPrefix(end.Stopped, "stopped: the API is unreachable since ") {
		t.Errorf("the journal's end line is %+v; want it to say the API is unreachable", end)
	}
}
