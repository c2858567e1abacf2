// Package atomicfile replaces files so that a reader, a crash or a full
// disk leaves either the whole old file or the whole new one, never a part.
// Every file voxbind replaces goes through it: a plan, an undo plan or an
// export it saves (--out, export --children's files), the sandbox's state
// and its TLS certificate. Files voxbind only ever creates new (an apply
// journal, sandbox init's files) are opened exclusively instead, since an
// existing one must never be replaced.
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// ErrReadOnly is wrapped by the error for a target that has no write
// permission bit set: replacing it would bypass the permission its owner
// gave it (a rename needs only the directory to be writable).
var ErrReadOnly = errors.New("the file is read-only")

// Options tune Write.
type Options struct {
	// Perm is the mode of a new file; a file that is replaced keeps its mode.
	Perm fs.FileMode
	// Adopt, when set, is called with the synced temporary file just
	// before it is renamed into place; an error abandons the write. After
	// a successful write the file is left open and handed to Adopt's
	// owner, who closes it (the sandbox keeps its lock on it).
	Adopt func(tmp *os.File) error
}

// WriteFile replaces the file at path with data (see Write).
func WriteFile(path string, data []byte, perm fs.FileMode) error {
	_, err := Write(path, data, Options{Perm: perm})
	return err
}

// Write replaces the file at path with data: it writes a temporary file in
// the target's directory, syncs it, renames it over the target and syncs
// the directory. A symbolic link at path is written through: the file it
// points to is replaced and the link stays. A target without any write
// permission bit is refused with ErrReadOnly. With Options.Adopt the
// renamed file is returned open; otherwise the result is nil.
func Write(path string, data []byte, o Options) (kept *os.File, err error) {
	target, err := resolve(path)
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	mode := o.Perm
	if mode == 0 {
		mode = 0o644
	}
	switch fi, err := os.Stat(target); {
	case err == nil && !fi.Mode().IsRegular():
		return nil, fmt.Errorf("write %s: not a regular file (%s); give a path to a file", path, fi.Mode().Type())
	case err == nil && fi.Mode().Perm()&0o222 == 0:
		return nil, fmt.Errorf("write %s: %w (mode %04o): make it writable (chmod u+w) if it may be replaced, or write elsewhere", path, ErrReadOnly, fi.Mode().Perm())
	case err == nil:
		mode = fi.Mode().Perm()
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	dir, base := filepath.Split(target)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		// Name the directory, not the temporary file the reader never
		// asked for.
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("write %s: cannot create a file in the directory %s: %w", path, filepath.Clean(dir), err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(mode); err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	if o.Adopt != nil {
		if err := o.Adopt(tmp); err != nil {
			return nil, fmt.Errorf("write %s: %w", path, err)
		}
	}
	if err := os.Rename(tmp.Name(), target); err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync() // best effort: some file systems cannot sync a directory
		d.Close()
	}
	if o.Adopt != nil {
		return tmp, nil
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	return nil, nil
}

// resolve follows symbolic links at path to the file they finally name,
// which need not exist yet (a dangling link is written through to create
// its target). A path that is not a link is returned as it is.
func resolve(path string) (string, error) {
	for range 40 {
		fi, err := os.Lstat(path)
		if errors.Is(err, fs.ErrNotExist) {
			return path, nil
		}
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			return path, nil
		}
		link, err := os.Readlink(path)
		if err != nil {
			return "", err
		}
		if !filepath.IsAbs(link) {
			link = filepath.Join(filepath.Dir(path), link)
		}
		path = link
	}
	return "", errors.New("too many levels of symbolic links")
}
