package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/voxbind/voxbind/sandbox"
)

func TestBuildStamp(t *testing.T) {
	unset := stamp{Version: "dev", Go: "go1.0"}
	vcs := func(rev, at string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev}, {Key: "vcs.time", Value: at}, {Key: "vcs.modified", Value: "false"}}
	}
	const rev = "0123456789abcdef0123456789abcdef01234567"
	tests := []struct {
		name  string
		bi    *debug.BuildInfo
		flags stamp // what -ldflags -X set
		want  stamp
	}{
		{"no build information", nil, unset, unset},
		{"go build without version control information",
			&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}},
			unset, stamp{Version: "dev", Go: "go1.26.8"}},
		{"go install ...@v1.2.3",
			&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.3"}},
			unset, stamp{Version: "v1.2.3", Go: "go1.26.8"}},
		{"go install ...@COMMIT: a pseudo-version holds the commit and its time",
			&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.0.0-20261128061500-abcdef123456"}},
			unset, stamp{Version: "v0.0.0-20261128061500-abcdef123456", Commit: "abcdef123456", Date: "2026-11-28T06:15:00Z", Go: "go1.26.8"}},
		{"a pseudo-version after a tag",
			&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.4-0.20261128061500-abcdef123456"}},
			unset, stamp{Version: "v1.2.4-0.20261128061500-abcdef123456", Commit: "abcdef123456", Date: "2026-11-28T06:15:00Z", Go: "go1.26.8"}},
		{"a pre-release pseudo-version",
			&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.3.0-rc.1.0.20261128061500-abcdef123456"}},
			unset, stamp{Version: "v1.3.0-rc.1.0.20261128061500-abcdef123456", Commit: "abcdef123456", Date: "2026-11-28T06:15:00Z", Go: "go1.26.8"}},
		{"a tag is not a pseudo-version",
			&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.3-20261128061500"}},
			unset, stamp{Version: "v1.2.3-20261128061500", Go: "go1.26.8"}},
		{"go build in a git checkout: the full commit and its time",
			&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.4-0.20261128061500-0123456789ab+dirty"}, Settings: vcs(rev, "2026-11-28T06:15:00Z")},
			unset, stamp{Version: "v1.2.4-0.20261128061500-0123456789ab+dirty", Commit: rev, Date: "2026-11-28T06:15:00Z", Go: "go1.26.8"}},
		{"-ldflags -X wins over everything",
			&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.3"}, Settings: vcs(rev, "2026-11-28T06:15:00Z")},
			stamp{Version: "v9.9.9", Commit: "cafe", Date: "2027-01-01T00:00:00Z", Go: "go1.0"},
			stamp{Version: "v9.9.9", Commit: "cafe", Date: "2027-01-01T00:00:00Z", Go: "go1.26.8"}},
		{"-ldflags -X main.date=$(git log -1 --format=%cI): an offset is given in UTC",
			nil, stamp{Version: "v1.2.3", Date: "2026-11-28T08:15:00+02:00", Go: "go1.0"},
			stamp{Version: "v1.2.3", Date: "2026-11-28T06:15:00Z", Go: "go1.0"}},
		{"-ldflags -X main.date=2026-11-28T09:15:00-03:30",
			&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}},
			stamp{Version: "v1.2.3", Date: "2026-11-28T09:15:00-03:30", Go: "go1.0"},
			stamp{Version: "v1.2.3", Date: "2026-11-28T12:45:00Z", Go: "go1.26.8"}},
		{"-ldflags -X main.date that is not RFC 3339 is shown as given",
			nil, stamp{Version: "v1.2.3", Date: "Sat Nov 28 2026", Go: "go1.0"},
			stamp{Version: "v1.2.3", Date: "Sat Nov 28 2026", Go: "go1.0"}},
		{"-ldflags -X for the version only",
			&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: vcs(rev, "2026-11-28T06:15:00Z")},
			stamp{Version: "v9.9.9", Go: "go1.0"},
			stamp{Version: "v9.9.9", Commit: rev, Date: "2026-11-28T06:15:00Z", Go: "go1.26.8"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, buildStamp(tt.bi, tt.flags)); diff != "" {
				t.Errorf("buildStamp (-want +got):\n%s", diff)
			}
		})
	}
}

// TestUserAgentCarriesVersion: the API sees the version 'voxbind version'
// prints.
func TestUserAgentCarriesVersion(t *testing.T) {
	defer func(v string) { version = v }(version)
	version = "v1.2.3-test"

	var mu sync.Mutex
	var agents []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		agents = append(agents, r.UserAgent())
		mu.Unlock()
		io.WriteString(w, `{"result": {"account_id": 1000001, "account_name": "demo"}}`)
	}))
	defer srv.Close()
	dir := t.TempDir()
	if err := sandbox.Init(dir, 0); err != nil {
		t.Fatal(err)
	}
	g := &AccountFlags{Credentials: filepath.Join(dir, sandbox.CredentialsFile), Endpoint: srv.URL + "/platform_api/"}
	acct, closeAccount, err := g.openAccount(context.Background(), testSession(&Stdio{Err: io.Discard}), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer closeAccount()
	if _, err := acct.Info(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff([]string{"voxbind/v1.2.3-test"}, agents); diff != "" {
		t.Errorf("User-Agent (-want +got):\n%s", diff)
	}
}

// TestVersionFromBuildInfo builds voxbind as a user would, from a git
// repository holding a copy of this module with one tagged commit, and
// checks what 'voxbind version -o json' says: with version control
// information (-buildvcs=true, whatever GOFLAGS says), without it, and with
// -ldflags -X overriding it.
func TestVersionFromBuildInfo(t *testing.T) {
	if testing.Short() {
		t.Skip("builds voxbind three times")
	}
	t.Parallel()
	gitPath, err := exec.LookPath("git")
	if err != nil {
		t.Skip("git is not installed")
	}
	if err := exec.Command(gitPath, "rev-parse", "--is-inside-work-tree").Run(); err != nil {
		t.Skip("not in a git work tree: the module's files are not known")
	}
	goPath := filepath.Join(runtime.GOROOT(), "bin", "go")
	repo := t.TempDir()
	copyModule(t, gitPath, repo)
	const when = "2026-01-02T03:04:05Z"
	runIn(t, repo, nil, gitPath, "init", "--quiet")
	runIn(t, repo, nil, gitPath, "add", ".")
	runIn(t, repo, []string{"GIT_AUTHOR_DATE=" + when, "GIT_COMMITTER_DATE=" + when},
		gitPath, "-c", "user.name=voxbind test", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false", "commit", "--quiet", "-m", "release")
	runIn(t, repo, nil, gitPath, "-c", "tag.gpgsign=false", "tag", "v1.2.3")
	head := strings.TrimSpace(runIn(t, repo, nil, gitPath, "rev-parse", "HEAD"))

	tests := []struct {
		name  string
		flags []string
		want  stamp
	}{
		{"with version control information", []string{"-buildvcs=true"},
			stamp{Version: "v1.2.3", Commit: head, Date: when, Go: runtime.Version()}},
		{"without version control information", []string{"-buildvcs=false"},
			stamp{Version: "dev", Go: runtime.Version()}},
		{"-ldflags -X overrides", []string{"-buildvcs=true", "-ldflags=-X main.version=v9.9.9 -X main.commit=cafe -X main.date=2027-01-01T00:00:00Z"},
			stamp{Version: "v9.9.9", Commit: "cafe", Date: "2027-01-01T00:00:00Z", Go: runtime.Version()}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel() // three links at once: the slowest part of the suite
			bin := filepath.Join(t.TempDir(), "voxbind")
			args := append([]string{"build", "-o", bin}, tt.flags...)
			runIn(t, repo, []string{"GOFLAGS=-buildvcs=false"}, goPath, append(args, ".")...)
			var got stamp
			if err := json.Unmarshal([]byte(runIn(t, repo, nil, bin, "version", "-o", "json")), &got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("build %d: version -o json (-want +got):\n%s", i+1, diff)
			}
		})
	}
}

// copyModule copies the module's files that git tracks or would track (so
// not dist/ or a sandbox directory), without tests and testdata, from the
// work tree to dst.
func copyModule(t *testing.T, gitPath, dst string) {
	t.Helper()
	list := runIn(t, ".", nil, gitPath, "ls-files", "--cached", "--others", "--exclude-standard", "-z")
	for _, path := range strings.Split(strings.TrimSuffix(list, "\x00"), "\x00") {
		if strings.HasSuffix(path, "_test.go") || strings.HasPrefix(path, "testdata/") || strings.Contains(path, "/testdata/") {
			continue
		}
		data, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted in the work tree, not yet in the index
		}
		if err != nil {
			t.Fatal(err)
		}
		target := filepath.Join(dst, filepath.FromSlash(path))
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(target, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// runIn runs a command in dir with extra environment variables and returns
// its stdout; a failure ends the test with the command's stderr.
func runIn(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}
