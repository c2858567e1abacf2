package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestCIExamplesInstallPinnedVersion runs the install script of each CI
// example against a fake release server: a release archive whose checksum
// matches is installed; a checksum that does not match, or an archive
// missing from checksums.txt, fails the job and installs nothing; a version
// with no release archive (a commit) is built with 'go install' at exactly
// that version.
func TestCIExamplesInstallPinnedVersion(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the CI examples run on Linux")
	}
	for _, tool := range []string{"bash", "curl", "tar", "sha256sum"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	archive := tarGz(t, "voxbind", "#!/bin/sh\necho \"voxbind from the release archive $*\"\n")
	sum := sha256.Sum256(archive)
	good := hex.EncodeToString(sum[:])
	bad := strings.Repeat("0", 64)
	checksums := func(version, hash string) string {
		var b strings.Builder
		for _, osArch := range []string{"linux_amd64", "linux_arm64", "darwin_amd64", "darwin_arm64"} {
			fmt.Fprintf(&b, "%s  voxbind_%s_%s.tar.gz\n", hash, version, osArch)
		}
		return b.String()
	}
	releases := map[string]string{ // version: its checksums.txt
		"v1.2.3": checksums("1.2.3", good),
		"v6.6.6": checksums("6.6.6", bad),
		"v7.7.7": "",
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		version, file, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		sums, ok := releases[version]
		switch {
		case version == "v5.0.0": // the release server is down
			http.Error(w, "bad gateway", http.StatusBadGateway)
		case !ok:
			http.NotFound(w, r)
		case file == "checksums.txt":
			w.Write([]byte(sums))
		case strings.HasPrefix(file, "voxbind_") && strings.HasSuffix(file, ".tar.gz"):
			w.Write(archive)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()

	fakeGo := t.TempDir()
	writeExecutable(t, filepath.Join(fakeGo, "go"), "#!/bin/sh\n"+
		"echo \"$@\" > \"$GO_ARGS\"\n"+
		"printf '#!/bin/sh\\necho \"voxbind from go install\"\\n' > \"$GOBIN/voxbind\"\n"+
		"chmod +x \"$GOBIN/voxbind\"\n")

	const commit = "0123456789abcdef0123456789abcdef01234567"
	tests := []struct {
		name, version string
		ok            bool
		want          string // what the installed voxbind says; "" = none installed
		goArgs        string // what 'go' was called with; "" = not called
	}{
		{"a release, verified", "v1.2.3", true, "voxbind from the release archive", ""},
		{"a release whose checksum does not match", "v6.6.6", false, "", ""},
		{"a release whose checksums.txt lacks the archive", "v7.7.7", false, "", ""},
		{"a commit: go install", commit, true, "voxbind from go install", "install github.com/voxbind/voxbind@" + commit},
		{"the release server failing: no go install", "v5.0.0", false, "", ""},
	}
	for _, file := range []string{"examples/ci/github-actions.yml", "examples/ci/gitlab-ci.yml"} {
		script := installScript(t, file)
		for _, tt := range tests {
			t.Run(filepath.Base(file)+"/"+tt.name, func(t *testing.T) {
				tmp := t.TempDir()
				bin := filepath.Join(tmp, "bin") // GitHub: $RUNNER_TEMP/bin
				if strings.Contains(file, "gitlab") {
					bin = filepath.Join(tmp, "voxbind-bin") // GitLab: $TMPDIR/voxbind-bin
				}
				goArgs := filepath.Join(tmp, "go-args")
				cmd := exec.Command("bash", "-e", "-c", script)
				cmd.Env = append(os.Environ(),
					"PATH="+fakeGo+string(os.PathListSeparator)+os.Getenv("PATH"),
					"VOXBIND_VERSION="+tt.version,
					"VOXBIND_RELEASES="+srv.URL,
					"RUNNER_TEMP="+tmp,
					"GITHUB_PATH="+filepath.Join(tmp, "github-path"),
					"TMPDIR="+tmp,
					"GO_ARGS="+goArgs,
				)
				out, err := cmd.CombinedOutput()
				if (err == nil) != tt.ok {
					t.Fatalf("install: %v, want success %v; output:\n%s", err, tt.ok, out)
				}
				said := ""
				if _, err := os.Stat(filepath.Join(bin, "voxbind")); err == nil {
					b, err := exec.Command(filepath.Join(bin, "voxbind"), "version").Output()
					if err != nil {
						t.Fatal(err)
					}
					said = strings.TrimSpace(string(b))
				}
				if !strings.HasPrefix(said, tt.want) || (tt.want == "") != (said == "") {
					t.Errorf("installed voxbind says %q, want %q; output:\n%s", said, tt.want, out)
				}
				called, _ := os.ReadFile(goArgs)
				if got := strings.TrimSpace(string(called)); got != tt.goArgs {
					t.Errorf("go was called with %q, want %q", got, tt.goArgs)
				}
			})
		}
	}
}

// installScript returns the shell script of a CI file that installs
// voxbind: the run:, script: or before_script: block that starts with the
// comment "# Install voxbind".
func installScript(t *testing.T, file string) string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	var found []string
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.ScalarNode && strings.HasPrefix(n.Value, "# Install voxbind $VOXBIND_VERSION") {
			found = append(found, n.Value)
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&doc)
	if len(found) != 1 {
		t.Fatalf("%s: %d install scripts (blocks starting with \"# Install voxbind $VOXBIND_VERSION\"), want 1", file, len(found))
	}
	return found[0]
}

// tarGz returns a .tar.gz holding one executable file.
func tarGz(t *testing.T, name, content string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(content))}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write([]byte(content)); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func writeExecutable(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
}
