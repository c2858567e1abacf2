package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/voxbind/voxbind/sandbox"
)

// journalEntries lists what dir holds ("" when dir does not exist).
func journalEntries(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return strings.Join(names, " ")
}

// TestJournalBeforeTheQuestion: apply and undo create the journal before
// they ask, so a journal that cannot be created is refused before anyone
// types yes (an existing --journal FILE even before the account is
// read); an answer other than yes leaves no journal behind, nor the
// directories made for it. The same holds for a fleet's journals.
func TestJournalBeforeTheQuestion(t *testing.T) {
	applyFakeTerminal(t, true, false)
	dir := initSandbox(t)
	state := filepath.Join(dir, sandbox.StateFile)
	work := t.TempDir()
	spec := applyWrite(t, filepath.Join(work, "voxbind.yaml"), applyMoveSpec)
	existing := applyWrite(t, filepath.Join(work, "existing.jsonl"), "keep")
	before := applyRead(t, state)

	refusedBeforeAsking := func(t *testing.T, want string, args ...string) {
		t.Helper()
		code, _, stderr := applyRun(t, "yes\n", append([]string{"--sandbox", state}, args...)...)
		if code != 1 || strings.Contains(stderr, "Type 'yes'") || !strings.Contains(stderr, want) || !strings.Contains(stderr, "nothing was changed") {
			t.Errorf("%v: exit %d; want 1, no question, and %q:\n%s", args, code, want, stderr)
		}
		if applyRead(t, state) != before {
			t.Fatalf("%v: the account changed", args)
		}
		if applyRead(t, existing) != "keep" {
			t.Fatalf("%v: the existing file was changed", args)
		}
	}
	cancelled := func(t *testing.T, args ...string) {
		t.Helper()
		code, _, stderr := applyRun(t, "no\n", append([]string{"--sandbox", state}, args...)...)
		if code != 1 || !strings.Contains(stderr, "Type 'yes'") || !strings.Contains(stderr, "voxbind: "+args[0]+" cancelled; nothing was changed") {
			t.Errorf("%v: exit %d; want 1 after the question:\n%s", args, code, stderr)
		}
		if applyRead(t, state) != before {
			t.Fatalf("%v: the account changed", args)
		}
	}

	// apply: an existing --journal FILE, a default directory that cannot
	// be made (it would be under a file).
	refusedBeforeAsking(t, "--journal "+existing+" exists already", "apply", "-f", spec, "--journal", existing)
	t.Setenv(journalDirEnv, filepath.Join(existing, "journals"))
	refusedBeforeAsking(t, "create the journal directory", "apply", "-f", spec)

	// A no leaves neither the journal nor the directories made for it;
	// a --journal FILE given is removed again too.
	home := filepath.Join(work, "home")
	t.Setenv(journalDirEnv, filepath.Join(home, "a", "b"))
	cancelled(t, "apply", "-f", spec)
	if got := journalEntries(t, home); got != "" {
		t.Errorf("after a no, %s holds %q; want nothing", home, got)
	}
	cancelled(t, "apply", "-f", spec, "--journal", filepath.Join(work, "mine.jsonl"))
	if got := journalEntries(t, work); strings.Contains(got, "mine.jsonl") {
		t.Errorf("after a no, the journal given is still there: %s", got)
	}

	// undo: the same, before its question.
	applied := filepath.Join(work, "applied.jsonl")
	if code, _, stderr := applyRun(t, "", "--sandbox", state, "apply", "-f", spec, "--auto-approve", "--journal", applied); code != 0 {
		t.Fatalf("apply: exit %d:\n%s", code, stderr)
	}
	before = applyRead(t, state)
	refusedBeforeAsking(t, "--journal "+existing+" exists already", "undo", applied, "--journal", existing)
	refusedBeforeAsking(t, "--journal "+applied+" exists already", "undo", applied, "--journal", applied)
	t.Setenv(journalDirEnv, filepath.Join(existing, "journals"))
	refusedBeforeAsking(t, "create the journal directory", "undo", applied)
	t.Setenv(journalDirEnv, filepath.Join(home, "a", "b"))
	cancelled(t, "undo", applied)
	if got := journalEntries(t, home); got != "" {
		t.Errorf("after a no to undo, %s holds %q; want nothing", home, got)
	}

	// A fleet: one journal per account, all made before the one question.
	fleet := fleetTestState(t, 2, nil)
	fdir := t.TempDir()
	applyWrite(t, filepath.Join(fdir, "a.yaml"), "version: 1\naccount_id: 1000002\nbindings:\n  - registration: lobby@pbx.example.com\n    application: support\n")
	applyWrite(t, filepath.Join(fdir, "b.yaml"), "version: 1\naccount_id: 1000003\nbindings:\n  - registration: lobby@pbx.example.com\n    application: fax\n")
	state, before = fleet, applyRead(t, fleet)
	t.Setenv(journalDirEnv, filepath.Join(existing, "journals"))
	refusedBeforeAsking(t, "create the journal directory", "apply", "-f", fdir)
	t.Setenv(journalDirEnv, filepath.Join(home, "a", "b"))
	cancelled(t, "apply", "-f", fdir)
	if got := journalEntries(t, home); got != "" {
		t.Errorf("after a no to a fleet, %s holds %q; want nothing", home, got)
	}
	code, _, stderr := applyRun(t, "yes\n", "--sandbox", state, "apply", "-f", fdir)
	if code != 0 {
		t.Fatalf("fleet apply: exit %d:\n%s", code, stderr)
	}
	if got := journalEntries(t, filepath.Join(home, "a", "b")); strings.Count(got, ".jsonl") != 2 {
		t.Errorf("after a fleet apply, the journals are %q; want one per account", got)
	}
}

// TestJournalLinkToAFlagLikeName: the target offered for a dangling
// --journal link is a path to paste, after ./ when it starts with '-'
// ('--journal -t.jsonl', pasted, is taken for a short flag), and the
// link's own name is shown escaped.
func TestJournalLinkToAFlagLikeName(t *testing.T) {
	dir := initSandbox(t)
	state := filepath.Join(dir, sandbox.StateFile)
	work := t.TempDir()
	spec := applyWrite(t, filepath.Join(work, "voxbind.yaml"), applyMoveSpec)
	t.Chdir(work)
	link := "l\x1b[31m.jsonl"
	if err := os.Symlink("-t.jsonl", link); err != nil {
		t.Skipf("no symbolic links here: %v", err)
	}
	code, _, stderr := applyRun(t, "", "--sandbox", state, "apply", "-f", spec, "--auto-approve", "--journal", link)
	want := `voxbind: --journal l\x1b[31m.jsonl is a symbolic link (to -t.jsonl, which does not exist), and voxbind writes a journal only as a new file, never through a link; nothing was changed; give a new file name, or the link's target itself: --journal ./-t.jsonl` + "\n"
	if code != 1 || stderr != want {
		t.Errorf("exit %d, stderr:\n%s\nwant 1 and:\n%s", code, stderr, want)
	}
	// A journal that exists already, or in no directory, named escaped.
	applyWrite(t, "x\x1b[31m.jsonl", "")
	for _, journal := range []string{"x\x1b[31m.jsonl", "d\x1b[31m/j.jsonl"} {
		code, _, stderr = applyRun(t, "", "--sandbox", state, "apply", "-f", spec, "--auto-approve", "--journal", journal)
		if code != 1 || strings.Contains(stderr, "\x1b") || !strings.Contains(stderr, `\x1b[31m`) {
			t.Errorf("--journal %q: exit %d, stderr %q; want 1 and the name escaped", journal, code, stderr)
		}
	}
}

// TestJournalSymbolicLink: a --journal FILE that is a symbolic link is
// refused before anything is read or written, saying where it points;
// for a link to nothing (which the file system takes as existing, so it
// was said to "exist already"), with the target to give instead.
func TestJournalSymbolicLink(t *testing.T) {
	dir := initSandbox(t)
	state := filepath.Join(dir, sandbox.StateFile)
	work := t.TempDir()
	spec := applyWrite(t, filepath.Join(work, "voxbind.yaml"), applyMoveSpec)
	dangling, live := filepath.Join(work, "dj.jsonl"), filepath.Join(work, "live.jsonl")
	if err := os.Symlink("nowhere.jsonl", dangling); err != nil {
		t.Skipf("no symbolic links here: %v", err)
	}
	// A link to nothing in a directory that does not exist: its target
	// would be refused too, so it is not offered.
	noDir := filepath.Join(work, "nd.jsonl")
	if err := os.Symlink(filepath.Join(work, "missing", "x.jsonl"), noDir); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("voxbind.yaml", live); err != nil {
		t.Fatal(err)
	}
	before, entries := applyRead(t, state), journalEntries(t, work)
	for _, tc := range []struct{ journal, want string }{
		{dangling, "voxbind: --journal " + dangling + " is a symbolic link (to nowhere.jsonl, which does not exist), and voxbind writes a journal only as a new file, never through a link; nothing was changed; give a new file name, or the link's target itself: --journal " + filepath.Join(work, "nowhere.jsonl") + "\n"},
		{live, "voxbind: --journal " + live + " is a symbolic link (to voxbind.yaml), and voxbind writes a journal only as a new file, never through a link; nothing was changed; give a new file name\n"},
		{noDir, "voxbind: --journal " + noDir + " is a symbolic link (to " + filepath.Join(work, "missing", "x.jsonl") + ", which does not exist), and voxbind writes a journal only as a new file, never through a link; nothing was changed; give a new file name (the link's target is in no directory that exists)\n"},
	} {
		for _, cmd := range [][]string{{"apply", "-f", spec}, {"undo", filepath.Join(work, "any.jsonl")}} {
			code, _, stderr := applyRun(t, "", append([]string{"--sandbox", state}, append(cmd, "--auto-approve", "--journal", tc.journal)...)...)
			if code != 1 || stderr != tc.want {
				t.Errorf("%s --journal %s: exit %d, stderr:\n%s\nwant 1 and:\n%s", cmd[0], tc.journal, code, stderr, tc.want)
			}
		}
	}
	if applyRead(t, state) != before || journalEntries(t, work) != entries || applyRead(t, live) != applyMoveSpec {
		t.Errorf("something was written: %s holds %s", work, journalEntries(t, work))
	}
}
