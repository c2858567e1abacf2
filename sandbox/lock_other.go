//go:build !unix

package sandbox

import (
	"errors"
	"fmt"
	"os"
)

// fileLock is, where flock does not exist, the existence of STATEFILE.lock,
// created exclusively and removed on release. A crash leaves it behind; the
// error says so.
type fileLock struct{ path string }

func lockState(statePath string) (*fileLock, error) {
	path := statePath + ".lock"
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("sandbox state %s is in use: another voxbind is serving it (lock %s; if no voxbind runs, delete the lock file)", statePath, path)
		}
		return nil, fmt.Errorf("lock sandbox state %s: %w", statePath, err)
	}
	f.Close()
	return &fileLock{path: path}, nil
}

func (l *fileLock) adopt(*os.File) error { return nil }

func (l *fileLock) swap(tmp *os.File) { tmp.Close() }

func (l *fileLock) release() error { return os.Remove(l.path) }
