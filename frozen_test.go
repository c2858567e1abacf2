package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/voxbind/voxbind/sandbox"
)

// frozenSpec binds lobby@ in one child account: one change.
func frozenSpec(account string) string {
	return "version: 1\naccount_id: " + account + "\nbindings:\n  - registration: lobby@pbx.example.com\n    application: support\n"
}

// frozenAccount is the JSON of one account of a sandbox state file
// (children[i]; -1 for the parent): what was written to it.
func frozenAccount(t *testing.T, state string, child int) string {
	t.Helper()
	st, err := sandbox.Load(state)
	if err != nil {
		t.Fatal(err)
	}
	if child >= 0 {
		st = &st.Children[child]
	}
	data, err := json.Marshal(st.Registrations)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// frozenEdit freezes child i of a state file (or deactivates it).
func frozenEdit(t *testing.T, state string, i int, inactive bool) {
	t.Helper()
	st, err := sandbox.Load(state)
	if err != nil {
		t.Fatal(err)
	}
	if inactive {
		off := false
		st.Children[i].Account.Active = &off
	} else {
		st.Children[i].Account.Frozen = true
	}
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	applyWrite(t, state, string(data))
}

func frozenSays(t *testing.T, what, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("%s does not say %q:\n%s", what, w, out)
		}
	}
}

// TestFrozenAccountPlan: plan on a frozen or inactive account still reads
// it and shows its changes, as blocked changes that name what they would
// do, under a note naming the account and its state; it exits 1 (blocked)
// even with --detailed-exitcode, and JSON says account_state and reason
// account_frozen. With no changes there is only the note, exit 0.
func TestFrozenAccountPlan(t *testing.T) {
	state := fleetTestState(t, 2, func(st *sandbox.State) {
		off := false
		st.Children[0].Account.Frozen = true
		st.Children[1].Account.Active = &off
	})
	dir := t.TempDir()
	spec := applyWrite(t, filepath.Join(dir, "c1.yaml"), frozenSpec("1000002"))
	code, stdout, stderr := applyRun(t, "", "--sandbox", state, "plan", "-f", spec, "--detailed-exitcode")
	if code != 1 {
		t.Errorf("exit %d, want 1:\n%s", code, stderr)
	}
	frozenSays(t, "plan", stdout,
		"account 1000002 (demo-child1) is frozen: voxbind will not change it; unfreeze it in the Voximplant control panel, or leave its spec out of the run.\n",
		"  x lobby@pbx.example.com (103010) at "+spec+":4: bind (unbound) -> support, not made: the account is frozen\n",
		"Plan: 0 to bind, 0 to rebind, 0 to unbind, 0 unchanged.",
		"Drift: 0 to change, 1 blocked, 0 ignored.")
	frozenSays(t, "stderr", stderr, "1 change is blocked: apply refuses this plan", "voxbind never writes to a frozen or inactive account")

	code, stdout, _ = applyRun(t, "", "--sandbox", state, "plan", "-f", spec, "-o", "json")
	var doc struct {
		AccountState string `json:"account_state"`
		Changes      []any  `json:"changes"`
		Blocked      []struct {
			Reason string          `json:"reason"`
			Action string          `json:"action"`
			After  json.RawMessage `json:"after"`
		} `json:"blocked"`
	}
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatal(err)
	}
	if code != 1 || doc.AccountState != "frozen" || len(doc.Changes) != 0 || len(doc.Blocked) != 1 ||
		doc.Blocked[0].Reason != "account_frozen" || doc.Blocked[0].Action != "bind" || !strings.Contains(string(doc.Blocked[0].After), `"support.demo-child1.voximplant.com"`) {
		t.Errorf("-o json: exit %d:\n%s", code, stdout)
	}

	// An inactive account with no changes: just the note.
	same := applyWrite(t, filepath.Join(dir, "c2.yaml"), "version: 1\naccount_id: 1000003\nbindings:\n  - registration: lobby@pbx.example.com\n    unbound: true\n")
	code, stdout, stderr = applyRun(t, "", "--sandbox", state, "plan", "-f", same, "--detailed-exitcode")
	if code != 0 {
		t.Errorf("no changes: exit %d, want 0:\n%s", code, stderr)
	}
	frozenSays(t, "plan", stdout, "account 1000003 (demo-child2) is inactive: voxbind will not change it; activate it in the Voximplant control panel", "No changes.")

	// Saved while inactive, applied once active again: the note is gone
	// (the state is the account's as it is now).
	saved := filepath.Join(dir, "same.json")
	if code, _, stderr := applyRun(t, "", "--sandbox", state, "plan", "-f", same, "--out", saved); code != 0 || !strings.Contains(applyRead(t, saved), `"account_state": "inactive"`) {
		t.Fatalf("plan --out: exit %d:\n%s", code, stderr)
	}
	st, err := sandbox.Load(state)
	if err != nil {
		t.Fatal(err)
	}
	st.Children[1].Account.Active = nil
	data, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	applyWrite(t, state, string(data))
	code, stdout, stderr = applyRun(t, "", "--sandbox", state, "apply", "--plan", saved)
	if code != 0 || strings.Contains(stdout, "inactive") || !strings.Contains(stdout, "No changes.") {
		t.Errorf("apply --plan once active: exit %d:\n%s%s", code, stdout, stderr)
	}
}

// TestFrozenAccountApply: apply -f refuses a frozen account's changes,
// nothing written: alone it exits 1; in a fleet the other accounts are
// applied, the frozen one is named as refused, and the run exits 1.
func TestFrozenAccountApply(t *testing.T) {
	state := fleetTestState(t, 2, func(st *sandbox.State) { st.Children[1].Account.Frozen = true })
	dir := t.TempDir()
	applyWrite(t, filepath.Join(dir, "c1.yaml"), frozenSpec("1000002"))
	frozen := applyWrite(t, filepath.Join(dir, "c2.yaml"), frozenSpec("1000003"))
	before := frozenAccount(t, state, 1)

	code, _, stderr := applyRun(t, "", "--sandbox", state, "apply", "-f", frozen, "--auto-approve")
	if code != 1 {
		t.Errorf("one account: exit %d, want 1:\n%s", code, stderr)
	}
	frozenSays(t, "stderr", stderr, "1 change blocked (see the plan): apply refuses this plan until it is resolved; nothing was changed")

	code, stdout, stderr := applyRun(t, "", "--sandbox", state, "apply", "-f", dir, "--auto-approve")
	if code != 1 {
		t.Errorf("fleet: exit %d, want 1:\n%s", code, stderr)
	}
	frozenSays(t, "stdout", stdout, "account 1000003 (demo-child2) is frozen: voxbind will not change it")
	frozenSays(t, "stderr", stderr,
		"voxbind: account 1000003 (demo-child2): refused, nothing is changed in it: the account is frozen: 1 change blocked (see the plan); voxbind never writes to a frozen or inactive account: unfreeze (or activate) it in the Voximplant control panel, or leave its spec (for undo, its journal) out of the run\n",
		"Fleet apply: 2 accounts: 1 applied, 0 without changes, 0 failed, 0 stopped, 1 refused, 0 not started.\n")
	if frozenAccount(t, state, 1) != before {
		t.Error("apply wrote to the frozen account")
	}
	if frozenAccount(t, state, 0) == before {
		t.Error("the other account was not applied")
	}
}

// TestFrozenAccountSavedPlan: a plan saved before its account was frozen
// is checked against the account when it is applied: alone it is refused
// (exit 1, nothing written); in a fleet plan the others are applied and
// the run exits 1.
func TestFrozenAccountSavedPlan(t *testing.T) {
	state := fleetTestState(t, 2, nil)
	dir := t.TempDir()
	applyWrite(t, filepath.Join(dir, "c1.yaml"), frozenSpec("1000002"))
	frozen := applyWrite(t, filepath.Join(dir, "c2.yaml"), frozenSpec("1000003"))
	one, fleet := filepath.Join(t.TempDir(), "one.json"), filepath.Join(t.TempDir(), "fleet.json")
	if code, _, stderr := applyRun(t, "", "--sandbox", state, "plan", "-f", frozen, "--out", one); code != 0 {
		t.Fatalf("plan --out: exit %d:\n%s", code, stderr)
	}
	if code, _, stderr := applyRun(t, "", "--sandbox", state, "plan", "-f", dir, "--out", fleet); code != 0 {
		t.Fatalf("plan --out: exit %d:\n%s", code, stderr)
	}
	frozenEdit(t, state, 1, false)
	before := frozenAccount(t, state, 1)

	code, stdout, stderr := applyRun(t, "", "--sandbox", state, "apply", "--plan", one)
	if code != 1 {
		t.Errorf("one account: exit %d, want 1:\n%s", code, stderr)
	}
	frozenSays(t, "stdout", stdout, "account 1000003 (demo-child2) is frozen: voxbind will not change it")
	frozenSays(t, "stderr", stderr, "plan "+one+": 1 change blocked (see the plan): apply refuses this plan until it is resolved; nothing was changed")

	code, _, stderr = applyRun(t, "", "--sandbox", state, "apply", "--plan", fleet)
	if code != 1 {
		t.Errorf("fleet: exit %d, want 1:\n%s", code, stderr)
	}
	frozenSays(t, "stderr", stderr,
		"account 1000003 (demo-child2): refused: the account is frozen: 1 change blocked (see the plan)\n",
		"Fleet apply: 2 accounts: 1 applied, 0 without changes, 0 failed, 0 stopped, 1 refused, 0 not started.\n")
	if frozenAccount(t, state, 1) != before {
		t.Error("apply --plan wrote to the frozen account")
	}
}

// TestFrozenAccountUndo: undo of an apply to an account frozen since
// writes nothing to it and exits 1; the restores are shown as blocked.
func TestFrozenAccountUndo(t *testing.T) {
	state := fleetTestState(t, 1, nil)
	dir := t.TempDir()
	spec := applyWrite(t, filepath.Join(dir, "c1.yaml"), frozenSpec("1000002"))
	journal := filepath.Join(dir, "j.jsonl")
	if code, _, stderr := applyRun(t, "", "--sandbox", state, "apply", "-f", spec, "--auto-approve", "--journal", journal); code != 0 {
		t.Fatalf("apply: exit %d:\n%s", code, stderr)
	}
	frozenEdit(t, state, 0, true)
	before := frozenAccount(t, state, 0)
	code, stdout, stderr := applyRun(t, "", "--sandbox", state, "undo", journal, "--auto-approve")
	if code != 1 {
		t.Errorf("exit %d, want 1:\n%s", code, stderr)
	}
	frozenSays(t, "stdout", stdout,
		"lobby@pbx.example.com (103010) at "+journal+":2: unbind support -> (unbound), not made: the account is inactive",
		"account 1000002 (demo-child1) is inactive: voxbind will not change it; activate it in the Voximplant control panel, or leave its journal out of the run.")
	frozenSays(t, "stderr", stderr, "1 restore blocked (see the plan): undo changes nothing until it is resolved; nothing was changed")
	if frozenAccount(t, state, 0) != before {
		t.Error("undo wrote to the inactive account")
	}
}

// TestFrozenAccountDoctor: doctor warns of a frozen account, alone and in
// a fleet, saying what to do; a warning does not fail the run.
func TestFrozenAccountDoctor(t *testing.T) {
	state := fleetTestState(t, 2, func(st *sandbox.State) { st.Children[1].Account.Frozen = true })
	dir := t.TempDir()
	applyWrite(t, filepath.Join(dir, "c1.yaml"), frozenSpec("1000002"))
	frozen := applyWrite(t, filepath.Join(dir, "c2.yaml"), frozenSpec("1000003"))
	const warn = "account 1000003 (demo-child2) is frozen: plan shows its drift as blocked changes, and apply and undo change nothing in it (a run with changes to it exits 1)"
	for _, args := range [][]string{
		{"doctor", "-f", frozen},
		{"--account-id", "1000003", "doctor"},
		{"doctor", "-f", dir},
	} {
		code, stdout, stderr := applyRun(t, "", append([]string{"--sandbox", state}, args...)...)
		if code != 0 {
			t.Errorf("%v: exit %d:\n%s%s", args, code, stdout, stderr)
		}
		frozenSays(t, strings.Join(args, " "), stdout, "warn  ", warn, "fix: unfreeze (or activate) it in the Voximplant control panel")
	}
	// The other account alone: no warning.
	code, stdout, _ := applyRun(t, "", "--sandbox", state, "doctor", "-f", filepath.Join(dir, "c1.yaml"))
	if code != 0 || strings.Contains(stdout, "warn  ") {
		t.Errorf("usable account: exit %d:\n%s", code, stdout)
	}
	if _, err := os.Stat(state); err != nil {
		t.Fatal(err)
	}
}
