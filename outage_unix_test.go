//go:build unix

package main

import (
	"context"
	"io"
	"path/filepath"
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
	// Opening the FIFO blocks until a writer comes; give voxbind the time
	// to get there (it is stuck there for as long as the test lets it).
	ready := make(chan struct{})
	time.AfterFunc(500*time.Millisecond, func() { close(ready) })
	code, stderr := interruptWhen(t, ready, bin, "--credentials", fifo, "plan", "-f", spec)
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
		ready := make(chan struct{})
		time.AfterFunc(500*time.Millisecond, func() { close(ready) })
		code, stderr := interruptWhen(t, ready, bin, append(args, "-f", fifo)...)
		if code != 130 || stderr != "Interrupted.\n" {
			t.Errorf("%v: exit %d, stderr %q; want 130 and Interrupted.", args, code, stderr)
		}
	}
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
