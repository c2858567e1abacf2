//go:build unix

package sandbox

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// fileLock is an exclusive advisory lock (flock) on the state file itself,
// so that serving a file leaves nothing beside it. Every save replaces the
// file with a new one; the new file is locked before it is renamed into
// place (see adopt), so the lock moves with the name. The kernel releases
// it when the process ends: a crash leaves no stale lock.
type fileLock struct{ f *os.File }

func lockState(statePath string) (*fileLock, error) {
	for range 10 {
		f, err := os.Open(statePath)
		if err != nil {
			return nil, fmt.Errorf("read sandbox state: %w", err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, fmt.Errorf("sandbox state %s is in use: another voxbind is serving it; stop that one or use another state file", statePath)
			}
			return nil, fmt.Errorf("lock sandbox state %s: %w", statePath, err)
		}
		// The file may have been replaced between open and flock by the
		// server that held it: then the lock is on a file nobody reads.
		held, err1 := f.Stat()
		named, err2 := os.Stat(statePath)
		if err1 == nil && err2 == nil && os.SameFile(held, named) {
			return &fileLock{f: f}, nil
		}
		f.Close()
	}
	return nil, fmt.Errorf("sandbox state %s is in use: it keeps being replaced; is another voxbind serving it?", statePath)
}

// adopt locks tmp, the file about to replace the state file.
func (l *fileLock) adopt(tmp *os.File) error {
	return syscall.Flock(int(tmp.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
}

// swap makes tmp, now renamed over the state file, the held lock.
func (l *fileLock) swap(tmp *os.File) {
	l.f.Close()
	l.f = tmp
}

func (l *fileLock) release() error { return l.f.Close() }
