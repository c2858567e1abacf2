//go:build unix

package main

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestOutRefusesANamedPipe: --out naming a named pipe is refused at once,
// without opening it (which would wait for a reader for ever).
func TestOutRefusesANamedPipe(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "out.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- checkOut(fifo, nil) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "--out "+fifo+" is a named pipe") {
			t.Errorf("checkOut: %v, want it refused as a named pipe", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("checkOut is still waiting on the named pipe after a minute")
	}
}
