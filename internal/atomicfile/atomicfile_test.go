package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// leftovers lists the temporary files a write left in dir.
func leftovers(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			out = append(out, e.Name())
		}
	}
	return out
}

func TestWriteFileNewAndReplace(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "plan.json")
	if err := WriteFile(path, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := read(t, path); got != "one" {
		t.Errorf("content = %q, want one", got)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode of a new file = %v, want 0600", fi.Mode().Perm())
	}
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, []byte("two"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := read(t, path); got != "two" {
		t.Errorf("content = %q, want two", got)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o640 {
		t.Errorf("a replaced file's mode = %v, want its own 0640 kept", fi.Mode().Perm())
	}
	if l := leftovers(t, dir); len(l) > 0 {
		t.Errorf("temporary files left behind: %v", l)
	}
}

func TestWriteFileThroughSymlink(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real", "state.json")
	if err := os.Mkdir(filepath.Dir(real), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(real, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.json")
	if err := os.Symlink(filepath.Join("real", "state.json"), link); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(link, []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(link)
	if err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the link was replaced by a regular file (%v, %v); want it kept and written through", fi, err)
	}
	if got := read(t, real); got != "new" {
		t.Errorf("the link's target holds %q, want new", got)
	}
	if l := leftovers(t, dir); len(l) > 0 {
		t.Errorf("temporary files beside the link: %v", l)
	}

	dangling := filepath.Join(dir, "dangling.json")
	if err := os.Symlink("made.json", dangling); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(dangling, []byte("made"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(dir, "made.json")); got != "made" {
		t.Errorf("a dangling link's target holds %q, want made", got)
	}

	loop := filepath.Join(dir, "loop.json")
	if err := os.Symlink("loop.json", loop); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(loop, []byte("x"), 0o644); err == nil || !strings.Contains(err.Error(), "symbolic links") {
		t.Errorf("write through a link loop = %v, want an error about the links", err)
	}
}

func TestWriteFileRefusesReadOnly(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "account.json")
	if err := os.WriteFile(path, []byte("keep"), 0o444); err != nil {
		t.Fatal(err)
	}
	err := WriteFile(path, []byte("lost"), 0o644)
	if !errors.Is(err, ErrReadOnly) || !strings.Contains(err.Error(), path) {
		t.Errorf("write over a 0444 file = %v, want ErrReadOnly naming the file", err)
	}
	if got := read(t, path); got != "keep" {
		t.Errorf("the read-only file now holds %q; it must not be replaced", got)
	}
}

func TestWriteFileRefusesNonRegular(t *testing.T) {
	dir := t.TempDir()
	if err := WriteFile(dir, []byte("x"), 0o644); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("write over a directory = %v, want 'not a regular file'", err)
	}
}

func TestWriteFailureLeavesOldFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	_, err := Write(path, []byte("new"), Options{Adopt: func(*os.File) error { return boom }})
	if !errors.Is(err, boom) {
		t.Errorf("Write with a failing Adopt = %v, want boom", err)
	}
	if got := read(t, path); got != "old" {
		t.Errorf("after a failed write the file holds %q, want old", got)
	}
	if l := leftovers(t, dir); len(l) > 0 {
		t.Errorf("temporary files left behind: %v", l)
	}
	if err := WriteFile(filepath.Join(dir, "no", "such", "x"), []byte("x"), 0o644); err == nil {
		t.Error("write into a missing directory succeeded")
	}
}

func TestWriteAdoptKeepsFileOpen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	var adopted *os.File
	kept, err := Write(path, []byte("new"), Options{Adopt: func(f *os.File) error { adopted = f; return nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer kept.Close()
	if kept != adopted {
		t.Fatal("Write did not return the adopted file")
	}
	a, _ := kept.Stat()
	b, _ := os.Stat(path)
	if !os.SameFile(a, b) {
		t.Error("the kept file is not the one now at the path")
	}
}

// TestWriteMissingDirectoryNamed: a target in a directory that does not
// exist is refused naming that directory, not the temporary file.
func TestWriteMissingDirectoryNamed(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "missing")
	err := WriteFile(filepath.Join(dir, "p.json"), []byte("x"), 0o644)
	if err == nil || !strings.Contains(err.Error(), "cannot create a file in the directory "+dir+": no such file or directory") || strings.Contains(err.Error(), ".tmp-") {
		t.Fatalf("error %v; want it to name the missing directory and not the temporary file", err)
	}
}
