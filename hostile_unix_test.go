//go:build unix

package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/voxbind/voxbind/sandbox"
)

// TestSavedFileNotADevice: a plan or a journal that is a device
// (/dev/zero) is refused before anything is read from it, by apply --plan,
// undo and show; the message says what the file is (were it read, the
// refusal would name the size limit instead). A pipe is read while what
// arrives can be a plan: one that sends zeros is refused after its first
// chunk (the writer is cut off after a few MiB, not 256), and one that
// sends a plan is applied. The sandbox's state file is refused when it is
// not a regular file.
func TestSavedFileNotADevice(t *testing.T) {
	state := filepath.Join(initSandbox(t), sandbox.StateFile)
	for _, args := range [][]string{
		{"apply", "--plan", "/dev/zero"},
		{"undo", "/dev/zero"},
		{"show", "/dev/zero"},
	} {
		code, _, stderr := applyRun(t, "", append([]string{"--sandbox", state}, args...)...)
		if code != 1 || !strings.Contains(stderr, "/dev/zero is a character device, not a file voxbind writes") {
			t.Errorf("%v: exit %d; want 1 and /dev/zero refused as a device:\n%s", args, code, stderr)
		}
	}
	// The sandbox's state file too: reading /dev/zero never ended, and
	// ran out of memory.
	code, _, stderr := applyRun(t, "", "--sandbox", "/dev/zero", "export")
	if code != 1 || !strings.Contains(stderr, "sandbox state /dev/zero is not a regular file") {
		t.Errorf("--sandbox /dev/zero: exit %d; want 1 and the state refused:\n%s", code, stderr)
	}

	fifo := filepath.Join(t.TempDir(), "plan.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	written := make(chan int64, 1)
	go func() {
		f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err != nil {
			written <- -1
			return
		}
		defer f.Close()
		var n int64
		zeros := make([]byte, 64<<10)
		for n < 1<<30 {
			k, err := f.Write(zeros)
			n += int64(k)
			if err != nil {
				break // the reader went away
			}
		}
		written <- n
	}()
	code, _, stderr = applyRun(t, "", "--sandbox", state, "apply", "--plan", fifo)
	if code != 1 || !strings.Contains(stderr, "is not JSON text, so not a plan voxbind wrote") {
		t.Errorf("apply --plan FIFO of zeros: exit %d; want 1 and the pipe refused:\n%s", code, stderr)
	}
	if n := <-written; n < 0 || n > 8<<20 {
		t.Errorf("the pipe took %d bytes of zeros before apply refused it; want at most 8 MiB", n)
	}

	spec := applyWrite(t, filepath.Join(t.TempDir(), "voxbind.yaml"), applyMoveSpec)
	plan := filepath.Join(t.TempDir(), "plan.json")
	if code, _, stderr := applyRun(t, "", "--sandbox", state, "plan", "-f", spec, "--out", plan); code != 0 {
		t.Fatalf("plan --out: exit %d:\n%s", code, stderr)
	}
	sent := make(chan error, 1)
	go func() {
		f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err != nil {
			sent <- err
			return
		}
		data, err := os.ReadFile(plan)
		if err == nil {
			_, err = f.Write(data)
		}
		sent <- errors.Join(err, f.Close())
	}()
	code, _, stderr = applyRun(t, "", "--sandbox", state, "apply", "--plan", fifo, "--no-journal")
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if code != 0 {
		t.Errorf("apply --plan FIFO of a saved plan: exit %d; want 0:\n%s", code, stderr)
	}
}
