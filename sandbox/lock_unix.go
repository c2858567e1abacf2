//go:build unix

package sandbox

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// fileLock is an exclusive advisory lock (flock) on STATEFILE.lock. The
// kernel releases it when the process ends, so a crash leaves no stale lock.
type fileLock struct{ f *os.File }

func lockState(statePath string) (*fileLock, error) {
	path := lockPath(statePath)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock sandbox state %s: %w", statePath, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("sandbox state %s is in use: another voxbind is serving it (lock %s); stop it or use another state file", statePath, path)
		}
		return nil, fmt.Errorf("lock sandbox state %s: %w", statePath, err)
	}
	return &fileLock{f: f}, nil
}

func (l *fileLock) release() error {
	// The lock file stays: removing it would race with a process that has
	// just opened it and is about to lock it.
	return l.f.Close()
}
