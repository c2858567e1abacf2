//go:build unix

package main

import (
	"path/filepath"
	"syscall"
	"testing"
	"time"
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
