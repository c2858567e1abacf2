//go:build unix

package main

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/voxbind/voxbind/reconcile"
)

// TestZshCompletionInAStockZsh types "voxbind vali<TAB>--help" into an
// interactive zsh started with -f (no ~/.zshrc, so compinit has not run),
// after each of the two installations voxbind documents: sourcing the
// script, and saving it as _voxbind in a directory of $fpath before
// compinit. Both must complete "vali" to "validate ", so that the line runs
// 'voxbind validate --help'. Skipped where zsh is not installed.
func TestZshCompletionInAStockZsh(t *testing.T) {
	bin := applyBinary(t)
	zsh, err := exec.LookPath("zsh")
	if err != nil {
		t.Skip("zsh is not installed")
	}
	// The script names the binary that printed it: the voxbind on PATH, not
	// this test binary (runCLI), which would run the tests when completing.
	script, err := exec.Command(bin, "completion", "zsh").Output()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "_voxbind"), script, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ name, setup string }{
		{"sourced", "source <(voxbind completion zsh)"},
		{"fpath", "fpath=(" + reconcile.ShellQuote(dir) + " $fpath); autoload -U compinit && compinit"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ptmx, tty, err := pty.Open()
			if err != nil {
				t.Skipf("no pseudo-terminal: %v", err)
			}
			defer ptmx.Close()
			home := t.TempDir() // compinit writes its .zcompdump here
			cmd := exec.Command(zsh, "-f", "-i")
			cmd.Env = append(os.Environ(), "HOME="+home, "ZDOTDIR="+home, "PATH="+filepath.Dir(bin)+":"+os.Getenv("PATH"), "TERM=dumb")
			cmd.Dir = home // no file there that "vali" could complete to
			cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			tty.Close()
			deadline := time.AfterFunc(time.Minute, func() { cmd.Process.Kill() })
			defer deadline.Stop()
			var mu sync.Mutex
			var screen bytes.Buffer
			copied := make(chan struct{})
			go func() {
				defer close(copied)
				buf := make([]byte, 4096)
				for {
					n, err := ptmx.Read(buf)
					mu.Lock()
					screen.Write(buf[:n])
					mu.Unlock()
					if err != nil {
						return
					}
				}
			}()
			// Each line is typed once the shell has read the one before
			// (a line typed early reaches zsh before its line editor, and
			// then a TAB is not a completion); the lines print markers.
			waitFor := func(marker string) {
				t.Helper()
				for start := time.Now(); time.Since(start) < time.Minute; time.Sleep(20 * time.Millisecond) {
					mu.Lock()
					seen := strings.Contains(screen.String(), marker)
					mu.Unlock()
					if seen {
						return
					}
				}
				mu.Lock()
				defer mu.Unlock()
				t.Fatalf("zsh did not print %q within a minute:\n%s", marker, screen.String())
			}
			type_ := func(s string) {
				t.Helper()
				if _, err := io.WriteString(ptmx, s); err != nil {
					t.Fatal(err)
				}
			}
			type_("PS1='ready> '; print ST''ARTED\n")
			waitFor("STARTED")
			type_(tt.setup + "; print SET''UP $?\n")
			waitFor("SETUP ")
			type_("voxbind vali\t--help; print DO''NE\n")
			waitFor("DONE")
			type_("exit\n")
			cmd.Wait()
			ptmx.Close()
			<-copied
			out := screen.String()
			if !strings.Contains(out, "SETUP 0") {
				t.Errorf("%s failed in zsh -f:\n%s", tt.setup, out)
			}
			if !strings.Contains(out, "Usage: voxbind validate") {
				t.Errorf("'voxbind vali<TAB>' did not complete to 'voxbind validate ' after %s:\n%s", tt.setup, out)
			}
		})
	}
}

// TestManInstallExample runs the line that installs the man page, as
// docs/install.md, docs/cli.md and 'voxbind man --help' write it, in a
// fresh directory standing for /usr/local/share: it must make man1
// itself, and leave the page there.
func TestManInstallExample(t *testing.T) {
	bin := applyBinary(t)
	help, err := exec.Command(bin, "man", "--help").Output()
	if err != nil {
		t.Fatal(err)
	}
	install, _ := os.ReadFile("docs/install.md")
	cli, _ := os.ReadFile("docs/cli.md")
	for _, doc := range []struct{ name, text string }{{"docs/install.md", string(install)}, {"docs/cli.md", string(cli)}, {"voxbind man --help", string(help)}} {
		var line string
		for l := range strings.Lines(doc.text) {
			if strings.Contains(l, "> /usr/local/share/man/man1/voxbind.1") {
				line = strings.TrimSpace(l)
			}
		}
		if line == "" {
			t.Errorf("%s: no line that writes /usr/local/share/man/man1/voxbind.1", doc.name)
			continue
		}
		share := t.TempDir()
		cmd := exec.Command("sh", "-c", strings.ReplaceAll(line, "/usr/local/share", share))
		cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: %s: %v\n%s", doc.name, line, err, out)
			continue
		}
		if page, err := os.ReadFile(filepath.Join(share, "man", "man1", "voxbind.1")); err != nil || !bytes.HasPrefix(page, []byte(".")) {
			t.Errorf("%s: %s did not write the page (%v)", doc.name, line, err)
		}
	}
}
