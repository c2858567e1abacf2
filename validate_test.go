package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// runCLI runs voxbind with args and returns its exit status and output.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(args, &Stdio{In: strings.NewReader(""), Out: &out, Err: &errOut})
	return code, out.String(), errOut.String()
}

func TestValidate(t *testing.T) {
	// validate must need neither credentials nor an endpoint.
	t.Setenv("VOXIMPLANT_CREDENTIALS", filepath.Join(t.TempDir(), "missing.json"))
	t.Setenv("VOXIMPLANT_ENDPOINT", "http://192.0.2.1:1/platform_api/")
	tests := []struct {
		name       string
		args       []string
		code       int
		stdout     string
		stderrHave []string
	}{
		{
			name:   "quickstart",
			args:   []string{"validate", "-f", "examples/quickstart.yaml"},
			stdout: "examples/quickstart.yaml: 8 bindings OK\n",
		},
		{
			name:   "global flags it does not use, before it: ignored; long flag",
			args:   []string{"--credentials", "/nonexistent/key.json", "--no-color", "validate", "--file", "examples/bulk.yaml"},
			stdout: "examples/bulk.yaml: 520 bindings OK\n",
		},
		{
			name:   "global flags it does not use, after it: ignored too",
			args:   []string{"validate", "--file", "examples/bulk.yaml", "--credentials", "/nonexistent/key.json", "--debug", "--no-color"},
			stdout: "examples/bulk.yaml: 520 bindings OK\n",
		},
		{
			name:       "another command's own flag: refused, saying who takes it",
			args:       []string{"validate", "--file", "examples/bulk.yaml", "--out", "plan.json"},
			code:       1,
			stderrHave: []string{"voxbind: voxbind validate does not take --out; it is a flag of plan, undo and export (see voxbind help validate)"},
		},
		{
			name:   "directory and file",
			args:   []string{"validate", "-f", "testdata/spec/good/multi", "-f", "testdata/spec/good/numeric_names.yaml"},
			stdout: "4 files: 7 bindings OK, account_id 1234567, prune: true\n",
		},
		{
			name: "every problem, one per line",
			args: []string{"validate", "-f", "testdata/spec/bad/rule_and_user.yaml", "-f", "testdata/spec/bad/registration_pair.yaml"},
			code: 1,
			stderrHave: []string{
				"testdata/spec/bad/registration_pair.yaml:4:5: registration_id and registration are both set",
				"testdata/spec/bad/registration_pair.yaml:6:5: entry has no registration",
				"testdata/spec/bad/rule_and_user.yaml:6:5: user and rule are both set",
				"testdata/spec/bad/rule_and_user.yaml:10:5: rule_id and rule are both set",
				"testdata/spec/bad/rule_and_user.yaml:11:5: rule_id, user and user_id are all set",
				"voxbind: 5 problems in the spec",
			},
		},
		{
			name:       "missing file",
			args:       []string{"validate", "-f", "testdata/spec/nope.yaml"},
			code:       1,
			stderrHave: []string{"testdata/spec/nope.yaml: no such file or directory", "voxbind: 1 problem in the spec"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tt.args...)
			if code != tt.code {
				t.Errorf("exit status %d, want %d\nstderr:\n%s", code, tt.code, stderr)
			}
			if diff := cmp.Diff(tt.stdout, stdout); diff != "" {
				t.Errorf("stdout (-want +got):\n%s", diff)
			}
			if tt.stderrHave == nil && stderr != "" {
				t.Errorf("stderr = %q, want nothing", stderr)
			}
			lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
			if tt.stderrHave != nil && len(lines) != len(tt.stderrHave) {
				t.Errorf("stderr has %d lines, want %d:\n%s", len(lines), len(tt.stderrHave), stderr)
			}
			for i, want := range tt.stderrHave {
				if i >= len(lines) || !strings.HasPrefix(lines[i], want) {
					t.Errorf("stderr line %d does not start with %q:\n%s", i+1, want, stderr)
				}
			}
		})
	}
}

// TestValidateDefaultFile checks that -f defaults to voxbind.yaml in the
// current directory, and that a comma in a file name does not split it.
func TestValidateDefaultFile(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if code, _, stderr := runCLI(t, "validate"); code != 1 || !strings.HasPrefix(stderr, "voxbind.yaml: no such file") {
		t.Errorf("without voxbind.yaml: exit %d, stderr %q", code, stderr)
	}
	spec := []byte("version: 1\nbindings:\n  - registration: alice@pbx.example.com\n    unbound: true\n")
	for _, name := range []string{"voxbind.yaml", "a,b.yaml"} {
		if err := os.WriteFile(filepath.Join(dir, name), spec, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if code, stdout, stderr := runCLI(t, "validate"); code != 0 || stdout != "voxbind.yaml: 1 binding OK\n" {
		t.Errorf("with voxbind.yaml: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if code, stdout, stderr := runCLI(t, "validate", "-f", "a,b.yaml"); code != 0 || stdout != "a,b.yaml: 1 binding OK\n" {
		t.Errorf("a,b.yaml: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

// TestErrorsEscapeFileNames: a file name holding an escape sequence (a
// spec file that a pull request adds to a spec directory, a plan or
// journal given by name) is shown escaped in every error about it, in
// the spec's problems as in the error a run ends with: a name must not
// clear the screen or retitle the window in a CI log.
func TestErrorsEscapeFileNames(t *testing.T) {
	dir := t.TempDir()
	specs := filepath.Join(dir, "specs")
	if err := os.Mkdir(specs, 0o755); err != nil {
		t.Fatal(err)
	}
	odd := "a\x1b]0;pwned\x07\x1b[2J"
	if err := os.WriteFile(filepath.Join(specs, odd+".yaml"), []byte("version: 1\nbindings:\n  - registration: x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A spec problem is one line, whatever its file is named: a line break
	// in the name cannot forge a line of the log.
	forged := "b\nvoxbind: validated, no problems"
	if err := os.WriteFile(filepath.Join(specs, forged+".yaml"), []byte("version: 1\nbindings:\n  - registration: y\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, stderr := runCLI(t, "validate", "-f", specs); strings.Contains(stderr, "\nvoxbind: validated") || !strings.Contains(stderr, `b\nvoxbind: validated, no problems.yaml:3:`) {
		t.Errorf("a file name with a line break: stderr %q; want it escaped", stderr)
	}
	for _, args := range [][]string{
		{"validate", "-f", specs},
		{"show", filepath.Join(dir, odd+".json")},
		{"--sandbox", filepath.Join(dir, "none.json"), "undo", filepath.Join(dir, odd+".jsonl")},
	} {
		code, _, stderr := runCLI(t, args...)
		if code != 1 || strings.ContainsAny(stderr, "\x1b\x07") || !strings.Contains(stderr, `a\x1b]0;pwned\x07\x1b[2J`) {
			t.Errorf("%q: exit %d, stderr %q; want 1 and the name escaped", args, code, stderr)
		}
	}

	// A line break in a name given on the command line stays inside the
	// one line that names it, in the error a run ends with: a file that
	// cannot be read, written or used.
	state := filepath.Join(initSandbox(t), "account.json")
	newline := filepath.Join(dir, "x\nvoxbind: FORGED")
	journal := filepath.Join(dir, "j\nvoxbind: FORGED.jsonl")
	if err := os.WriteFile(journal, []byte(`{"kind":"start"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"show", newline},
		{"--sandbox", state, "undo", newline},
		{"--credentials", newline, "plan", "-f", filepath.Join("examples", "quickstart.yaml")},
		{"--sandbox", state, "export", "--out", filepath.Join(newline, "x.yaml")},
		{"--sandbox", state, "apply", "-f", filepath.Join("examples", "quickstart.yaml"), "--auto-approve", "--journal", journal},
		{"--sandbox", state, "apply", "--plan", journal},
		{newline},
		{"--sandbox", newline, "export"},
		{"--sandbox", state, "export", "--out", newline + ".csv"},
		{"--sandbox", state, "apply", "--plan", newline, "--only", "id=3003"},
	} {
		code, _, stderr := runCLI(t, args...)
		if code != 1 || strings.Contains(stderr, "\nvoxbind: FORGED") || !strings.Contains(stderr, `\nvoxbind: FORGED`) {
			t.Errorf("%q: exit %d, stderr %q; want 1 and the line break escaped", args, code, stderr)
		}
	}
	// A fleet whose journal directory, from the environment, cannot be
	// made.
	notDir := filepath.Join(dir, "f\nvoxbind: FORGED")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(journalDirEnv, filepath.Join(notDir, "journals"))
	fleet := fleetTestState(t, 2, nil)
	if code, _, stderr := runCLI(t, "--sandbox", fleet, "apply", "-f", fleetStopSpecs(t, 2), "--auto-approve"); code != 1 || strings.Contains(stderr, "\nvoxbind: FORGED") || !strings.Contains(stderr, `\nvoxbind: FORGED`) {
		t.Errorf("fleet apply with %s=%q: exit %d, stderr %q; want 1 and the line break escaped", journalDirEnv, notDir, code, stderr)
	}
	if code, stdout, _ := runCLI(t, "doctor", "--sandbox", newline); code != 1 || strings.Contains(stdout, "\nvoxbind: FORGED") || !strings.Contains(stdout, `\nvoxbind: FORGED`) {
		t.Errorf("doctor --sandbox %q: exit %d, stdout %q; want 1 and the line break escaped", newline, code, stdout)
	}
}

// TestEscapeNames: the names escapeNames escapes are the command line's
// words that hold a control character, with the value of --flag=value
// and of a short flag's attached value (-fFILE); a form of control
// characters alone (the directory of "\n/account.json") is left, as it
// would take the message's own line breaks.
func TestEscapeNames(t *testing.T) {
	names := controlNames([]string{"plan", "-fs1/x\ny.yaml", "--out=o\nu.json", "--sandbox", "\n/account.json", "--only", "id=1"})
	for text, want := range map[string]string{
		"--out s1/link.yaml is the spec file (s1/x\ny.yaml), which this command reads": `--out s1/link.yaml is the spec file (s1/x\ny.yaml), which this command reads`,
		"write o\nu.json: no space":                                        `write o\nu.json: no space`,
		"sandbox state \n/account.json does not exist":                     `sandbox state \n/account.json does not exist`,
		"2 selectors match no registration:\n  --only id=1\n  --only id=2": "2 selectors match no registration:\n  --only id=1\n  --only id=2",
	} {
		if got := escapeNames(text, names); got != want {
			t.Errorf("escapeNames(%q) = %q, want %q", text, got, want)
		}
	}
}
