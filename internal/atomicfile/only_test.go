package atomicfile

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestNoOtherFileReplacer: voxbind's own code replaces files only through
// this package. A direct os.WriteFile, os.Create or os.Rename elsewhere
// could leave half a plan or state file after a crash; the files that are
// only ever created new (O_EXCL: the journal, the sandbox's key, its
// lock) open them themselves and are not matched. The developer tools
// under scripts/ and examples/ write scratch and generated files and are
// left out.
func TestNoOtherFileReplacer(t *testing.T) {
	root := filepath.Join("..", "..")
	direct := regexp.MustCompile(`\bos\.(WriteFile|Create|Rename)\(`)
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			switch rel {
			case ".git", "scripts", "examples", "testdata", filepath.Join("internal", "atomicfile"):
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(rel, ".go") || strings.HasSuffix(rel, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(src), "\n") {
			if direct.MatchString(line) {
				t.Errorf("%s:%d: %s: replace files with atomicfile.Write", rel, i+1, strings.TrimSpace(line))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
