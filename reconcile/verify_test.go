package reconcile

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/voxbind/voxbind/spec"
)

// verifyCurrent is applyTestCurrent(4) with registration 101 on user 1001
// and 102 on user 1002.
func verifyCurrent() Current {
	c := applyTestCurrent(4)
	c.Registrations[0].Target = applyUserTarget(1001)
	c.Registrations[1].Target = applyUserTarget(1002)
	return c
}

func verifyRef(i int) RegistrationRef {
	return RegistrationRef{ID: int64(101 + i), SIPUsername: fmt.Sprintf("r%03d", i), Proxy: "pbx.example.com"}
}

// verifyPlan moves user 1001 from 101 to 103 (step 2 after step 1 unbinds
// 101) and binds 104 to user 1002, displacing 102 (a side effect).
func verifyPlan() *Plan {
	r0, r1 := verifyRef(0), verifyRef(1)
	return &Plan{
		FormatVersion: 1, AccountID: 42,
		Changes: []Step{
			{Step: 1, Action: ActionUnbind, Registration: verifyRef(0), Before: applyUserTarget(1001), After: nil, Reason: ReasonSpec,
				Precondition: &Precondition{Target: applyUserTarget(1001)}},
			{Step: 2, Action: ActionBind, Registration: verifyRef(2), After: applyUserTarget(1001), Reason: ReasonSpec, DependsOn: []int{1},
				Precondition: &Precondition{UserHolder: &r0}},
			{Step: 3, Action: ActionBind, Registration: verifyRef(3), After: applyUserTarget(1002), Reason: ReasonSpec,
				Precondition: &Precondition{UserHolder: &r1}},
		},
		SideEffects: []SideEffect{{Registration: r1, LosesUser: Ref{ID: 1002, Name: "u001"}, CausedByStep: 3}},
		Blocked:     []Blocked{},
		Ignored:     []Ignored{},
		Summary:     Summary{Bind: 2, Unbind: 1},
	}
}

func verifyStrings[T fmt.Stringer](list []T) []string {
	out := []string{}
	for _, x := range list {
		out = append(out, x.String())
	}
	return out
}

func TestStale(t *testing.T) {
	tests := []struct {
		name   string
		change func(c *Current)
		want   []string
	}{
		{"unchanged", func(*Current) {}, []string{}},
		{"registration gone", func(c *Current) { c.Registrations = c.Registrations[1:] }, []string{
			"step 1 (r000@pbx.example.com (101)): the registration no longer exists",
			"step 2 (r002@pbx.example.com (103)): user u000 was held by registration r000@pbx.example.com (101) when planned, now no other registration holds it",
		}},
		{"target changed", func(c *Current) { c.Registrations[2].Target = &Target{Application: applyTestApp} }, []string{
			"step 2 (r002@pbx.example.com (103)): its target changed: (unbound) when planned, now support",
		}},
		{"frozen", func(c *Current) { c.Registrations[3].Deactivated = true }, []string{
			"step 3 (r003@pbx.example.com (104)): the registration is now frozen (deactivated: its subscription lapsed); voxbind never writes it",
		}},
		{"bound and frozen", func(c *Current) { c.Registrations[0].Deactivated = true }, []string{
			"step 1 (r000@pbx.example.com (101)): the registration is now frozen (deactivated: its subscription lapsed); voxbind never writes it",
		}},
		{"user now held by another", func(c *Current) {
			c.Registrations[1].Target = nil
			c.Registrations[2].Target = applyUserTarget(1002)
		}, []string{
			"step 2 (r002@pbx.example.com (103)): its target changed: (unbound) when planned, now support / user u001",
			"step 3 (r003@pbx.example.com (104)): user u001 was held by registration r001@pbx.example.com (102) when planned, now by r002@pbx.example.com (103)",
		}},
		{"holders let go of the users", func(c *Current) {
			c.Registrations[0].Target = nil
			c.Registrations[1].Target = nil
		}, []string{
			// 101 unbound is what step 1 makes: step 2 may then find user u000 free.
			"step 1 (r000@pbx.example.com (101)): already made: its target is now (unbound)",
			"step 3 (r003@pbx.example.com (104)): user u001 was held by registration r001@pbx.example.com (102) when planned, now no other registration holds it",
		}},
		{"stopped after step 1", func(c *Current) { c.Registrations[0].Target = nil }, []string{
			"step 1 (r000@pbx.example.com (101)): already made: its target is now (unbound)",
		}},
		{"stopped after steps 1 and 3", func(c *Current) {
			c.Registrations[0].Target = nil
			c.Registrations[1].Target = nil // the side effect of step 3
			c.Registrations[3].Target = applyUserTarget(1002)
		}, []string{
			"step 1 (r000@pbx.example.com (101)): already made: its target is now (unbound)",
			"step 3 (r003@pbx.example.com (104)): already made: its target is now support / user u001",
		}},
		{"all made", func(c *Current) { *c = verifyApplied() }, []string{
			"step 1 (r000@pbx.example.com (101)): already made: its target is now (unbound)",
			"step 2 (r002@pbx.example.com (103)): already made: its target is now support / user u000",
			"step 3 (r003@pbx.example.com (104)): already made: its target is now support / user u001",
		}},
		{"made, and changed besides", func(c *Current) {
			c.Registrations[0].Target = nil
			c.Registrations[2].Target = &Target{Application: applyTestApp}
		}, []string{
			"step 1 (r000@pbx.example.com (101)): already made: its target is now (unbound)",
			"step 2 (r002@pbx.example.com (103)): its target changed: (unbound) when planned, now support",
		}},
		{"made, and the user taken by another", func(c *Current) {
			c.Registrations[0].Target = nil
			c.Registrations[1].Target = applyUserTarget(1001)
		}, []string{
			"step 1 (r000@pbx.example.com (101)): already made: its target is now (unbound)",
			"step 2 (r002@pbx.example.com (103)): user u000 was held by registration r000@pbx.example.com (101) when planned, now by r001@pbx.example.com (102)",
			"step 3 (r003@pbx.example.com (104)): user u001 was held by registration r001@pbx.example.com (102) when planned, now no other registration holds it",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := verifyCurrent()
			tt.change(&c)
			got := verifyStrings(Stale(verifyPlan(), &c))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("stale steps (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("user taken while free at planning", func(t *testing.T) {
		c := applyTestCurrent(3)
		p := &Plan{Changes: []Step{{Step: 1, Action: ActionBind, Registration: verifyRef(0), After: applyUserTarget(1002), Precondition: &Precondition{}}}}
		c.Registrations[2].Target = applyUserTarget(1002)
		want := []string{"step 1 (r000@pbx.example.com (101)): user u001 was free when planned, now registration r002@pbx.example.com (103) holds it"}
		if diff := cmp.Diff(want, verifyStrings(Stale(p, &c))); diff != "" {
			t.Errorf("stale steps (-want +got):\n%s", diff)
		}
		p.Changes[0].Precondition = nil
		if got := Stale(p, &c); len(got) != 1 || !strings.Contains(got[0].Changed, "plan --out") {
			t.Errorf("a step without precondition: %v; want it named, pointing at plan --out", got)
		}
	})
}

// TestStaleMadeSwap: in a swap, the first step takes the second's user
// (a side effect). Stopped after the first, the second finds its
// registration unbound and its user free, as the first step left them:
// only the first is named, as made.
func TestStaleMadeSwap(t *testing.T) {
	r0, r1 := verifyRef(0), verifyRef(1)
	p := &Plan{
		FormatVersion: 1, AccountID: 42,
		Changes: []Step{
			{Step: 1, Action: ActionRebind, Registration: r0, Before: applyUserTarget(1001), After: applyUserTarget(1002), Reason: ReasonSpec,
				Precondition: &Precondition{Target: applyUserTarget(1001), UserHolder: &r1}},
			{Step: 2, Action: ActionRebind, Registration: r1, Before: applyUserTarget(1002), After: applyUserTarget(1001), Reason: ReasonSpec, DependsOn: []int{1},
				Precondition: &Precondition{Target: applyUserTarget(1002), UserHolder: &r0}},
		},
		SideEffects: []SideEffect{{Registration: r1, LosesUser: Ref{ID: 1002, Name: "u001"}, CausedByStep: 1}},
		Summary:     Summary{Rebind: 2},
	}
	c := verifyCurrent()
	c.Registrations[0].Target = applyUserTarget(1002)
	c.Registrations[1].Target = nil
	want := []string{"step 1 (r000@pbx.example.com (101)): already made: its target is now support / user u001"}
	if diff := cmp.Diff(want, verifyStrings(Stale(p, &c))); diff != "" {
		t.Errorf("stale steps (-want +got):\n%s", diff)
	}
	if got := MadeSteps(Stale(p, &c)); got != 1 {
		t.Errorf("MadeSteps = %d, want 1", got)
	}
}

// TestWriteStaleList: the records not already made, the first ten, then
// how many more.
func TestWriteStaleList(t *testing.T) {
	var stale []StaleStep
	for i := 1; i <= 14; i++ {
		stale = append(stale, StaleStep{Step: i, Registration: verifyRef(0), Changed: "x", Made: i%5 == 0})
	}
	var b strings.Builder
	WriteStaleList(&b, stale)
	lines := strings.Split(b.String(), "\n")
	if len(lines) != 12 || lines[0] != "" || lines[1] != "  step 1 (r000@pbx.example.com (101)): x" || lines[11] != "  … and 2 more" {
		t.Errorf("WriteStaleList wrote %q; want a newline, ten records (made ones left out), and \"  … and 2 more\"", b.String())
	}
	for _, l := range lines {
		if strings.HasPrefix(l, "  step 5 ") || strings.HasPrefix(l, "  step 10 ") {
			t.Errorf("made step listed: %q", l)
		}
	}
}

// verifyApplied is verifyCurrent after verifyPlan ran as planned.
func verifyApplied() Current {
	c := verifyCurrent()
	c.Registrations[0].Target = nil
	c.Registrations[1].Target = nil
	c.Registrations[2].Target = applyUserTarget(1001)
	c.Registrations[3].Target = applyUserTarget(1002)
	return c
}

func TestVerify(t *testing.T) {
	tests := []struct {
		name     string
		change   func(c *Current)
		want     []string
		verified int
	}{
		{"as planned", func(*Current) {}, []string{}, 3},
		{"other target", func(c *Current) {
			c.Registrations[2].Target = &Target{Application: applyTestApp, Rule: &Ref{ID: 5, Name: "main"}}
		}, []string{
			"step 2: r002@pbx.example.com (103): want support / user u000, found support / rule main",
		}, 2},
		{"not unbound", func(c *Current) { c.Registrations[0].Target = &Target{Application: applyTestApp} }, []string{
			"step 1: r000@pbx.example.com (101): want (unbound), found support",
		}, 2},
		{"gone", func(c *Current) { c.Registrations = c.Registrations[:3] }, []string{
			"step 3: r003@pbx.example.com (104): the registration no longer exists",
		}, 2},
		{"side effect did not happen", func(c *Current) {
			c.Registrations[1].Target = applyUserTarget(1002)
			c.Registrations[3].Target = applyUserTarget(1002)
		}, []string{
			"r001@pbx.example.com (102): still holds user u001, which step 3 should have taken from it",
		}, 3},
		{"displaced registration kept its application", func(c *Current) {
			c.Registrations[1].Target = &Target{Application: applyTestApp}
		}, []string{}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := verifyApplied()
			tt.change(&c)
			p := verifyPlan()
			ms := Verify(p, &c)
			if diff := cmp.Diff(tt.want, verifyStrings(ms)); diff != "" {
				t.Errorf("mismatches (-want +got):\n%s", diff)
			}
			if n := VerifiedSteps(p, ms); n != tt.verified {
				t.Errorf("verified %d steps, want %d", n, tt.verified)
			}
		})
	}
}

func TestUnbindGuard(t *testing.T) {
	bound := func(n, unbound int) *Current {
		c := applyTestCurrent(n + unbound)
		for i := range n {
			c.Registrations[i].Target = applyUserTarget(int64(1001 + i))
		}
		return &c
	}
	unbinds := func(n int) *Plan {
		p := &Plan{}
		for i := range n {
			p.Changes = append(p.Changes, Step{Step: i + 1, Action: ActionUnbind, Registration: verifyRef(i)})
		}
		return p
	}
	limits := []struct{ bound, max, want int }{
		{0, -1, 10}, {20, -1, 10}, {40, -1, 10}, {41, -1, 11}, {44, -1, 11}, {45, -1, 12}, {400, -1, 100},
		{400, 0, 0}, {3, 7, 7},
	}
	for _, l := range limits {
		if got := UnbindLimit(bound(l.bound, 5), l.max); got != l.want {
			t.Errorf("UnbindLimit(%d bound, max-unbind %d) = %d, want %d", l.bound, l.max, got, l.want)
		}
	}

	c := bound(60, 0) // limit 15
	if err := CheckUnbind(unbinds(15), c, MaxUnbind{N: -1}, false); err != nil {
		t.Errorf("15 unbinds with a limit of 15: %v", err)
	}
	err := CheckUnbind(unbinds(16), c, MaxUnbind{N: -1}, false)
	if !errors.Is(err, ErrTooManyUnbinds) {
		t.Fatalf("16 unbinds with a limit of 15: %v; want ErrTooManyUnbinds", err)
	}
	for _, want := range []string{"unbinds 16 registrations", "default limit of 15", "25% of the 60 bound registrations", "--max-unbind 16", "--force", "nothing was changed"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("guard message %q does not say %q", err, want)
		}
	}
	// An undo plan's refusal is in undo's words: its unbinds take back
	// what the apply bound, and its review is undo --out then show.
	undo := unbinds(16)
	undo.Journal = "j.jsonl"
	err = CheckUnbind(undo, c, MaxUnbind{N: -1}, false)
	for _, want := range []string{"the undo unbinds 16 registrations that the apply bound", "default limit of 15", "voxbind undo j.jsonl --out FILE, then voxbind show FILE", "--max-unbind 16 or --force", "nothing was changed"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("undo's guard message %q does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "spec") || strings.Contains(err.Error(), "prune") {
		t.Errorf("undo's guard message %q speaks of a spec", err)
	}
	// A journal named with a space is quoted for a shell, so that the
	// command works when pasted.
	undo.Journal = "my j.jsonl"
	if err := CheckUnbind(undo, c, MaxUnbind{N: -1}, false); err == nil || !strings.Contains(err.Error(), "voxbind undo 'my j.jsonl' --out FILE") {
		t.Errorf("undo's guard message %v does not quote the journal 'my j.jsonl'", err)
	}
	if err := CheckUnbind(unbinds(16), c, MaxUnbind{N: -1}, true); err != nil {
		t.Errorf("--force: %v", err)
	}
	if err := CheckUnbind(unbinds(16), c, MaxUnbind{N: 16}, false); err != nil {
		t.Errorf("--max-unbind 16: %v", err)
	}
	err = CheckUnbind(unbinds(3), c, MaxUnbind{N: 2}, false)
	if err == nil || !strings.Contains(err.Error(), "the limit set by --max-unbind 2") || !strings.Contains(err.Error(), "--max-unbind 3") {
		t.Errorf("--max-unbind 2 with 3 unbinds: %v", err)
	}
	// A limit from the environment is named as the user set it: the
	// command line has no --max-unbind to look for.
	err = CheckUnbind(unbinds(3), c, MaxUnbind{N: 2, Env: "VOXBIND_MAX_UNBIND"}, false)
	if err == nil || !strings.Contains(err.Error(), "the limit set by VOXBIND_MAX_UNBIND=2;") || strings.Contains(err.Error(), "set by --max-unbind") {
		t.Errorf("VOXBIND_MAX_UNBIND=2 with 3 unbinds: %v", err)
	}

	// Side effects that leave a registration unbound count; a displaced
	// registration that the plan binds again does not.
	p := unbinds(10)
	p.SideEffects = []SideEffect{
		{Registration: verifyRef(20), LosesUser: Ref{ID: 1021}, CausedByStep: 1},
		{Registration: verifyRef(5), LosesUser: Ref{ID: 1006}, CausedByStep: 1},
		{Registration: verifyRef(21), LosesUser: Ref{ID: 1022}, CausedByStep: 2},
	}
	if s, d := Unbinds(p); s != 10 || d != 2 {
		t.Errorf("Unbinds = %d steps, %d displaced; want 10, 2", s, d)
	}
	err = CheckUnbind(p, bound(8, 0), MaxUnbind{N: -1}, false)
	if err == nil || !strings.Contains(err.Error(), "12 registrations (10 by unbind steps, 2 displaced by side effects)") {
		t.Errorf("with a side effect: %v", err)
	}
}

func TestReadPlan(t *testing.T) {
	var saved bytes.Buffer
	if err := RenderJSON(&saved, verifyPlan(), true); err != nil {
		t.Fatal(err)
	}
	p, err := ReadPlan(saved.Bytes())
	if err != nil {
		t.Fatalf("read a saved plan: %v", err)
	}
	if diff := cmp.Diff(verifyPlan(), p); diff != "" {
		t.Errorf("saved plan read back (-want +got):\n%s", diff)
	}

	// A plan made with a selection and exceptions records both, and reads
	// back the same.
	scoped := verifyPlan()
	scoped.Changes[0].IncludedFor = 2
	scoped.Selection = &PlanSelection{Only: []string{"id=103"}, Except: []string{}, Outside: 1}
	scoped.Ignored = []Ignored{{Registration: RegistrationRef{ID: 109, SIPUsername: "lab", Proxy: "pbx.example.com"},
		Reason: "re-patched", Owner: "noc", Until: "2026-12-31", Drift: true, Source: "voxbind.yaml:9"}}
	saved.Reset()
	if err := RenderJSON(&saved, scoped, true); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"included_for_step": 2`, `"selection": {`, `"only": [`, `"outside": 1`, `"ignored": [`, `"until": "2026-12-31"`} {
		if !strings.Contains(saved.String(), key) {
			t.Errorf("saved plan has no %s:\n%s", key, saved.String())
		}
	}
	p, err = ReadPlan(saved.Bytes())
	if err != nil {
		t.Fatalf("read a saved plan with a selection: %v", err)
	}
	if diff := cmp.Diff(scoped, p); diff != "" {
		t.Errorf("saved plan with a selection read back (-want +got):\n%s", diff)
	}

	var noPre bytes.Buffer
	if err := RenderJSON(&noPre, verifyPlan(), false); err != nil {
		t.Fatal(err)
	}
	edit := func(f func(p *Plan)) string {
		p := verifyPlan()
		f(p)
		var b bytes.Buffer
		RenderJSON(&b, p, true)
		return b.String()
	}
	bad := []struct{ name, data, want string }{
		{"not json", "Plan: 1 to bind", "invalid JSON"},
		{"yaml", "version: 1\n", "invalid JSON"},
		{"no version", `{"account_id": 42, "changes": []}`, "no format_version"},
		{"other version", `{"format_version": 2, "account_id": 42, "changes": []}`, "format_version 2, but this voxbind reads format_version 1"},
		{"unknown key", `{"format_version": 1, "account_id": 42, "changes": [], "extra": 1}`, `unknown key "extra"`},
		{"not an object", `[1]`, "the value is a list, but must be an object"},
		{"account id a list", `{"format_version": 1, "account_id": [42], "changes": []}`, `"account_id" is a list, but must be a whole number`},
		{"step a string", strings.Replace(edit(func(*Plan) {}), `"step": 1,`, `"step": "one",`, 1), `"changes.step" is a string, but must be a whole number`},
		{"after a string", strings.Replace(edit(func(p *Plan) { p.Changes[2].After = nil }), `"after": null`, `"after": "x"`, 1), `"changes.after" is a string, but must be an object`},
		{"plan -o json", noPre.String(), "3 of 3 steps have no precondition: apply --plan needs the file written by voxbind plan --out FILE"},
		{"no account", edit(func(p *Plan) { p.AccountID = 0 }), "account_id 0"},
		{"step twice", edit(func(p *Plan) { p.Changes[1].Step = 1; p.Changes[1].DependsOn = nil }), "step 1: the step number is used twice"},
		{"later dependency", edit(func(p *Plan) { p.Changes[0].DependsOn = []int{2} }), "step 1: depends on step 2, which is not an earlier step"},
		{"dependency on itself", edit(func(p *Plan) { p.Changes[1].DependsOn = []int{2} }), "step 2: depends on step 2, which is not an earlier step"},
		{"registration twice", edit(func(p *Plan) { p.Changes[2].Registration = verifyRef(2) }), "step 3: registration 103 is also changed by step 2"},
		{"bind without target", edit(func(p *Plan) { p.Changes[2].After = nil }), "step 3: a bind needs an after target"},
		{"unbind with target", edit(func(p *Plan) { p.Changes[0].After = applyUserTarget(1003) }), "step 1: an unbind must have after: null"},
		{"bad action", edit(func(p *Plan) { p.Changes[0].Action = "delete" }), `action "delete"`},
		{"side effect of no step", edit(func(p *Plan) { p.SideEffects[0].CausedByStep = 9 }), "caused_by_step 9 is not a step"},
		{"bind of a bound registration", edit(func(p *Plan) { p.Changes[2].Before = applyUserTarget(1003) }), "step 3: a bind with before support / user u002: the action does not match"},
		{"rebind of an unbound one", edit(func(p *Plan) { p.Changes[2].Action = ActionRebind }), "step 3: a rebind with before (unbound)"},
		{"side effect loses another user", edit(func(p *Plan) { p.SideEffects[0].LosesUser = Ref{ID: 1003, Name: "u002"} }),
			"side effect on registration 102: it loses user u002, but step 3 binds support / user u001"},
		{"side effect on another registration", edit(func(p *Plan) { p.SideEffects[0].Registration = verifyRef(0) }),
			"side effect on registration 101: step 3 records another holder of user u001"},
		{"included for itself", edit(func(p *Plan) { p.Changes[0].IncludedFor = 1 }), "step 1: included_for_step 1 is not another step of the plan"},
		{"included for no step", edit(func(p *Plan) { p.Changes[0].IncludedFor = 7 }), "step 1: included_for_step 7 is not another step"},
		{"negative outside", edit(func(p *Plan) { p.Selection = &PlanSelection{Outside: -1} }), "selection: outside -1"},
		{"key twice", `{"format_version": 1, "account_id": 42, "account_id": 43, "changes": []}`, `key "account_id" is written twice`},
		{"key in another case", `{"format_version": 1, "Account_ID": 42, "changes": []}`, `key "Account_ID": keys are lower case`},
		{"too large", `{"format_version": 1, "account_id": 42, "changes": [], "x": "` + strings.Repeat("a", 2<<20) + `"}`, "larger than 2 MiB"},
	}
	defer func(old int) { maxPlanSize = old }(maxPlanSize)
	maxPlanSize = 2 << 20
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadPlan([]byte(tt.data))
			if !errors.Is(err, ErrPlanFormat) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ReadPlan = %v; want ErrPlanFormat saying %q", err, tt.want)
			}
			// The file's words, not Go's.
			if err != nil && (strings.Contains(err.Error(), "json:") || strings.Contains(err.Error(), "Go ")) {
				t.Errorf("ReadPlan = %v; want no Go type or package named", err)
			}
		})
	}
}

// TestStaleEdited: a saved plan whose recorded names or before target do
// not match the account is refused step by step, as a stale one is.
func TestStaleEdited(t *testing.T) {
	tests := []struct {
		name string
		edit func(p *Plan)
		want []string
	}{
		{"registration name", func(p *Plan) { p.Changes[1].Registration.SIPUsername = "carol" }, []string{
			"step 2 (carol@pbx.example.com (103)): the plan names it carol@pbx.example.com, but registration 103 is r002@pbx.example.com in the account",
		}},
		{"before not the precondition", func(p *Plan) { p.Changes[0].Before = applyUserTarget(1003) }, []string{
			"step 1 (r000@pbx.example.com (101)): the plan shows it before as support / user u002, but its precondition records support / user u000: the plan was edited",
		}},
		{"before names", func(p *Plan) {
			p.Changes[0].Before.User.Name = "carol"
			p.Changes[0].Precondition.Target.User.Name = "carol"
		}, []string{
			"step 1 (r000@pbx.example.com (101)): the plan shows it before as support / user carol, but the account names that target support / user u000",
		}},
		{"after names", func(p *Plan) {
			p.Changes[1].After.User.Name = "carol"
			p.Changes[2].After.Application.Name = "sales.acme.voximplant.com"
		}, []string{
			"step 2 (r002@pbx.example.com (103)): the plan names user 1001 carol, but the account names it u000",
			"step 3 (r003@pbx.example.com (104)): the plan names application 1 sales.acme.voximplant.com, but the account names it support.acme.voximplant.com",
		}},
		{"after user of no application", func(p *Plan) { p.Changes[1].After.User.ID = 999 }, []string{
			"step 2 (r002@pbx.example.com (103)): user 999 of its target is not in application support (support.acme.voximplant.com)",
			"step 2 (r002@pbx.example.com (103)): user u000 was held by registration r000@pbx.example.com (101) when planned, now no other registration holds it",
		}},
		{"holder name", func(p *Plan) { p.Changes[2].Precondition.UserHolder.Proxy = "evil.example.com" }, []string{
			"step 3 (r003@pbx.example.com (104)): the plan names the user's holder r001@evil.example.com, but registration 102 is r001@pbx.example.com in the account",
		}},
		{"side effect name", func(p *Plan) { p.SideEffects[0].Registration.SIPUsername = "boss" }, []string{
			"step 3 (boss@pbx.example.com (102)): side effect: the plan names it boss@pbx.example.com, but registration 102 is r001@pbx.example.com in the account",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := verifyPlan()
			p.Changes[0].Precondition.Target = applyUserTarget(1001) // its own copy
			r1 := verifyRef(1)
			p.Changes[2].Precondition.UserHolder = &r1
			tt.edit(p)
			c := verifyCurrent()
			got := verifyStrings(Stale(p, &c))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("stale steps (-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzReadPlan feeds the saved-plan reader arbitrary bytes, starting from
// real saved plans: it never panics, and a plan it accepts is consistent
// (positive unique steps, dependencies on earlier steps, one step per
// registration, actions matching targets) and reads back the same after
// being written again. The seeds run in every go test.
func FuzzReadPlan(f *testing.F) {
	var saved bytes.Buffer
	RenderJSON(&saved, verifyPlan(), true)
	f.Add(saved.Bytes())
	for _, name := range []string{"mixed.out.json", "blocked-cascade.out.json", "noop-all-unchanged.out.json", "select-chain-both-ways.out.json", "ignore-prune.out.json"} {
		data, err := os.ReadFile(filepath.Join("../testdata/render", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"format_version":1,"account_id":1,"changes":[],"side_effects":[],"blocked":[],"summary":{}}`))
	f.Add([]byte(`{"format_version":1,"account_id":1,"changes":[{"step":1,"action":"bind","registration":{"id":1},"before":null,"after":{"application":{"id":1,"name":"a"},"rule":null,"user":{"id":2,"name":"u"}},"depends_on":[1],"precondition":{"target":null,"user_holder":null}}]}`))
	f.Add([]byte(`{"format_version":1e400}`))
	f.Add([]byte(`{"format_version":1,"changes":null,"side_effects":[{"caused_by_step":0}]}`))
	f.Add([]byte("\xff\xfe{"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ReadPlan(data)
		if err != nil {
			if !errors.Is(err, ErrPlanFormat) {
				t.Fatalf("error %v is not ErrPlanFormat", err)
			}
			return
		}
		steps := map[int]bool{}
		regs := map[int64]bool{}
		for _, s := range p.Changes {
			if s.Step <= 0 || steps[s.Step] || s.Registration.ID <= 0 || regs[s.Registration.ID] || s.Precondition == nil {
				t.Fatalf("accepted an inconsistent step: %+v", s)
			}
			for _, d := range s.DependsOn {
				if !steps[d] {
					t.Fatalf("step %d depends on %d, not an earlier step", s.Step, d)
				}
			}
			if planAction(s.Before, s.After) != s.Action {
				t.Fatalf("step %d: action %s with before %v after %v", s.Step, s.Action, s.Before, s.After)
			}
			steps[s.Step], regs[s.Registration.ID] = true, true
		}
		var again bytes.Buffer
		if err := RenderJSON(&again, p, true); err != nil {
			t.Fatal(err)
		}
		q, err := ReadPlan(again.Bytes())
		if err != nil {
			t.Fatalf("a plan read and written again is refused: %v\n%s", err, again.String())
		}
		if diff := cmp.Diff(p, q); diff != "" {
			t.Fatalf("plan changed when written and read again (-first +second):\n%s", diff)
		}
	})
}

func TestProgressWriter(t *testing.T) {
	p := applyHandPlan(applyHandStep{0, 0, nil}, applyHandStep{1, 1, []int{1}}, applyHandStep{2, 2, nil})
	fake := newFakeAccount(applyTestCurrent(3))
	fake.fail = func(id int64, _ *Target) error {
		if id == 101 {
			return errors.New("BindSipRegistration: api error 117: invalid user_id")
		}
		return nil
	}

	var plain bytes.Buffer
	pw := NewProgressWriter(&plain, false)
	res := Apply(t.Context(), fake, p, ApplyOptions{Parallelism: 1, Progress: pw.Step})
	pw.Finish()
	want := "step 1: bind r000@pbx.example.com (101): failed: BindSipRegistration: api error 117: invalid user_id\n" +
		"step 2: bind r001@pbx.example.com (102): skipped because step 1 failed\n" +
		"step 3: bind r002@pbx.example.com (103): applied\n"
	if diff := cmp.Diff(want, plain.String()); diff != "" {
		t.Errorf("plain progress (-want +got):\n%s", diff)
	}

	var tty bytes.Buffer
	fake = newFakeAccount(applyTestCurrent(3))
	fake.fail = func(id int64, _ *Target) error {
		if id == 101 {
			return errors.New("BindSipRegistration: api error 117: invalid user_id")
		}
		return nil
	}
	pw = NewProgressWriter(&tty, true)
	Apply(t.Context(), fake, p, ApplyOptions{Parallelism: 1, Progress: pw.Step})
	pw.Finish()
	want = "step 1: bind r000@pbx.example.com (101): failed: BindSipRegistration: api error 117: invalid user_id\n" +
		"[1/3] applied 0, failed 1, skipped 0" +
		"\r\x1b[K[2/3] applied 0, failed 1, skipped 1" +
		"\r\x1b[K[3/3] applied 1, failed 1, skipped 1\n"
	if diff := cmp.Diff(want, tty.String()); diff != "" {
		t.Errorf("terminal progress (-want +got):\n%s", diff)
	}

	var sum bytes.Buffer
	applied := res.AppliedPlan(p)
	if err := RenderApplySummary(&sum, p, &res, applied, nil, true, ""); err != nil {
		t.Fatal(err)
	}
	want = "Not applied:\n" +
		"  step 1: bind r000@pbx.example.com (101): failed: BindSipRegistration: api error 117: invalid user_id\n" +
		"  step 2: bind r001@pbx.example.com (102): skipped because step 1 failed\n" +
		"Apply: 1 applied, 1 failed, 1 skipped, 0 not started, 0 unknown; 1 verified.\n"
	if diff := cmp.Diff(want, sum.String()); diff != "" {
		t.Errorf("summary (-want +got):\n%s", diff)
	}

	interrupted := ApplyResult{Outcomes: []StepOutcome{{Step: 1, Status: StepApplied}, {Step: 2, Status: StepNotStarted}, {Step: 3, Status: StepNotStarted}},
		Applied: 1, NotStarted: 2, Stopped: context.Canceled}
	sum.Reset()
	RenderApplySummary(&sum, p, &interrupted, interrupted.AppliedPlan(p), nil, false, "")
	want = "Not applied:\n" +
		"  not started (interrupted): steps 2, 3\n" +
		"Apply interrupted: 1 applied, 0 failed, 0 skipped, 2 not started, 0 unknown; not verified.\n"
	if diff := cmp.Diff(want, sum.String()); diff != "" {
		t.Errorf("interrupted summary (-want +got):\n%s", diff)
	}

	sum.Reset()
	ms := []Mismatch{{Step: 3, Registration: verifyRef(2), Problem: "want support / user u002, found (unbound)"}}
	ok := ApplyResult{Outcomes: []StepOutcome{{Step: 1, Status: StepApplied}, {Step: 2, Status: StepApplied}, {Step: 3, Status: StepApplied}}, Applied: 3}
	RenderApplySummary(&sum, p, &ok, p, ms, true, "")
	want = "Verification found 1 difference:\n" +
		"  step 3: r002@pbx.example.com (103): want support / user u002, found (unbound)\n" +
		"Apply: 3 applied, 0 failed, 0 skipped, 0 not started, 0 unknown; 2 verified, 1 differs.\n"
	if diff := cmp.Diff(want, sum.String()); diff != "" {
		t.Errorf("summary with a mismatch (-want +got):\n%s", diff)
	}
}

// TestReviewPlan: voxbind show reads what plan -o json prints (steps
// without preconditions, the run's diagnostics); apply --plan refuses it,
// counting the steps in words that fit the number.
func TestReviewPlan(t *testing.T) {
	printed := func(p *Plan) []byte {
		var b bytes.Buffer
		if err := RenderJSON(&b, p, false); err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
			t.Fatal(err)
		}
		doc["diagnostics"] = []any{map[string]any{"severity": "warning", "code": "ignore-ended"}}
		data, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	want := verifyPlan()
	got, err := ReviewPlan(printed(want))
	if err != nil {
		t.Fatalf("ReviewPlan of plan -o json: %v", err)
	}
	for i := range want.Changes {
		want.Changes[i].Precondition = nil
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ReviewPlan (-want +got):\n%s", diff)
	}
	if _, err := ReviewPlan([]byte(`{"format_version": 1, "account_id": 42, "changes": [], "extra": 1}`)); err == nil {
		t.Error("ReviewPlan took an unknown key")
	}

	one := verifyPlan()
	one.Changes, one.SideEffects = one.Changes[:1], nil
	two := verifyPlan()
	two.Changes[0].Precondition, two.SideEffects = nil, nil
	var twoSaved bytes.Buffer
	if err := RenderJSON(&twoSaved, two, true); err != nil {
		t.Fatal(err)
	}
	for data, want := range map[string]string{
		string(printed(one)): "1 of 1 step has no precondition",
		twoSaved.String():    "1 of 3 steps has no precondition",
		string(printed(two)): "3 of 3 steps have no precondition",
	} {
		if _, err := ReadPlan([]byte(data)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ReadPlan = %v, want it to say %q", err, want)
		}
	}
}

// TestReadPlanQuotesLittle: a message about a plan file quotes at most 80
// characters of any value taken from it, escaped, with "…" and the
// value's length: a plan whose action, key, unknown key, kind, number or
// names are megabytes long gives an error of a line or two.
func TestReadPlanQuotesLittle(t *testing.T) {
	long := strings.Repeat("B", 1<<20)
	edit := func(f func(p *Plan)) string {
		p := verifyPlan()
		f(p)
		var b bytes.Buffer
		RenderJSON(&b, p, true)
		return b.String()
	}
	const head = `{"format_version": 1, "account_id": 42, "changes": [], `
	for _, tt := range []struct{ name, data, want string }{
		{"action", edit(func(p *Plan) { p.Changes[0].Action = Action(long) }), `action "` + long[:80] + `…" (1048576 characters)`},
		{"action in characters", edit(func(p *Plan) { p.Changes[0].Action = Action(strings.Repeat("é", 1000)) }), `action "` + strings.Repeat("é", 80) + `…" (1000 characters)`},
		{"action with escapes", edit(func(p *Plan) { p.Changes[0].Action = "\x1b[2J\nPlan: 0" }), `action "\x1b[2J\nPlan: 0"`},
		{"key in another case", head + `"` + long + `": 1}`, `key "` + long[:80] + `…" (1048576 characters): keys are lower case`},
		{"key twice", head + `"` + strings.ToLower(long) + `": 1, "` + strings.ToLower(long) + `": 2}`, `key "` + strings.ToLower(long[:80]) + `…" (1048576 characters) is written twice`},
		{"unknown key", head + `"` + strings.ToLower(long) + `": 1}`, `unknown key "` + strings.ToLower(long[:80]) + `…" (1048576 characters)`},
		{"kind", `{"format_version": 1, "kind": "` + long + `"}`, `"kind": "` + long[:80] + `…" (1048576 characters) is not a kind`},
		{"number", `{"format_version": 1, "account_id": 1` + strings.Repeat("0", 1<<20) + `}`, `number "1` + strings.Repeat("0", 79) + `…" (1048577 characters)`},
		{"number in the probe", `{"format_version": 1` + strings.Repeat("0", 1<<20) + `}`, `(1048577 characters)`},
		{"before names", edit(func(p *Plan) { p.Changes[2].Before = applyUserTarget(1003); p.Changes[2].Before.User.Name = long }), "user " + long[:80] + "…: the action does not match"},
		{"side effect names", edit(func(p *Plan) { p.SideEffects[0].LosesUser = Ref{ID: 1003, Name: long} }), "loses user " + long[:80] + "…, but step 3"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadPlan([]byte(tt.data))
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tt.want) || len(err.Error()) > 1000 {
				t.Errorf("ReadPlan = %.300q… (%d bytes); want an error of a line or two saying %.200q", err, len(err.Error()), tt.want)
			}
		})
	}
}

// TestReadPlanRefusesSecrets: a plan whose free text (a step's source,
// an ignore entry's owner, a selector…) holds what looks like a key or a
// token was edited: ReadPlan and ReviewPlan refuse it, naming the step
// and the field, never the value.
func TestReadPlanRefusesSecrets(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	block := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
	// One line of the key's base64, without its BEGIN line; a source is a
	// path, checked between its slashes, so the line's '/' become '+'.
	body := strings.ReplaceAll(strings.Split(block, "\n")[1], "/", "+")
	jwt := "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOjEwMDAwMDF9.c2lnbmF0dXJl"
	// A path that is a long run of base64 characters (letters, digits and
	// '/') mixing cases and digits, as go test's temporary directories
	// are, is no secret.
	fine := verifyPlan()
	fine.Changes[0].Source = "/tmp/TestApplyInterruptWaitsForCallsInFlight1389244001/002/Voxbind2026.yaml:5"
	fine.Journal = "/tmp/TestUndoJournalRun4012345678/001/.voxbind/journal/1000001-20261128T061500Z.jsonl"
	// A directory, or a file stem, of 64 or more letters and digits mixing
	// cases: a name people write, which a spec may sit under; only a PEM
	// block or a JWT in a path is refused.
	fine.Changes[1].Source = "/srv/SalesTeamBerlin2024MainOfficeVoximplantBindingsProductionEnvironmentConfigV2/spec.yaml:7"
	fine.Changes[2].Source = "specs/SalesTeamBerlin2024MainOfficeVoximplantBindingsProductionEnvironmentConfigV2.yaml:9"
	fine.Blocked = []Blocked{{Registration: verifyRef(8), Reason: "frozen", Source: "voxbind.yaml:" + body}}
	fine.Ignored = []Ignored{{Registration: verifyRef(9), Reason: "lab", Owner: "lab", Until: "2026-12-31", Source: "/tmp/" + body + "/voxbind.yaml:9"}}
	fine.Journal = "/var/SalesTeamBerlin2024MainOfficeVoximplantBindingsProductionEnvironmentConfigV2/.voxbind/journal/1000001-20261128T061500Z.jsonl"
	var saved bytes.Buffer
	if err := RenderJSON(&saved, fine, true); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadPlan(saved.Bytes()); err != nil {
		t.Errorf("a plan with long names in its paths: %v", err)
	}
	for _, tt := range []struct {
		name   string
		edit   func(p *Plan)
		want   string
		secret string
	}{
		{"PEM block in a source", func(p *Plan) { p.Changes[1].Source = block }, "step 2: its source looks like a PEM key or certificate (not shown)", "PRIVATE KEY"},
		{"JWT in a source", func(p *Plan) { p.Changes[0].Source = "/tmp/" + jwt + "/voxbind.yaml:3" }, "step 1: its source looks like a JWT", jwt[:20]},
		{"JWT in an owner", func(p *Plan) {
			p.Ignored = []Ignored{{Registration: verifyRef(8), Reason: "lab", Owner: jwt, Until: "2026-12-31", Source: "voxbind.yaml:9"}}
		}, "ignored registration 109: its owner looks like a JWT", jwt[:20]},
		{"JWT in a selector", func(p *Plan) { p.Selection = &PlanSelection{Only: []string{"app=" + jwt}, Except: []string{}} }, "selection: its only[0] looks like a JWT", jwt[:20]},
		{"JWT in an except selector", func(p *Plan) {
			p.Selection = &PlanSelection{Only: []string{}, Except: []string{"app=x", "user=" + jwt}}
		}, "selection: its except[1] looks like a JWT", jwt[:20]},
		{"JWT in a step's reason", func(p *Plan) { p.Changes[2].Reason = Reason(jwt) }, "step 3: its reason looks like a JWT", jwt[:20]},
		{"JWT in the journal", func(p *Plan) { p.Journal = "/tmp/x_" + jwt + ".jsonl" }, "the plan: its journal looks like a JWT", jwt[:20]},
		{"PEM block in the journal", func(p *Plan) { p.Journal = block }, "the plan: its journal looks like a PEM key or certificate", "PRIVATE KEY"},
		{"JWT in a blocked reason", func(p *Plan) {
			p.Blocked = []Blocked{{Registration: verifyRef(8), Reason: jwt, Source: "voxbind.yaml:9"}}
		}, "blocked registration 109: its reason looks like a JWT", jwt[:20]},
		{"key body in a blocked reason", func(p *Plan) {
			p.Blocked = []Blocked{{Registration: verifyRef(8), Reason: "frozen " + body, Source: "voxbind.yaml:9"}}
		}, "blocked registration 109: its reason looks like the base64 of a key or a token", body[:20]},
		{"JWT in a blocked source", func(p *Plan) {
			p.Blocked = []Blocked{{Registration: verifyRef(8), Reason: "frozen", Source: jwt + ".yaml:9"}}
		}, "blocked registration 109: its source looks like a JWT", jwt[:20]},
		{"JWT in an ignored reason", func(p *Plan) {
			p.Ignored = []Ignored{{Registration: verifyRef(8), Reason: jwt, Owner: "lab", Until: "2026-12-31", Source: "voxbind.yaml:9"}}
		}, "ignored registration 109: its reason looks like a JWT", jwt[:20]},
		{"JWT in an ignored until", func(p *Plan) {
			p.Ignored = []Ignored{{Registration: verifyRef(8), Reason: "lab", Owner: "lab", Until: jwt, Source: "voxbind.yaml:9"}}
		}, "ignored registration 109: its until looks like a JWT", jwt[:20]},
		{"PEM block in an ignored source", func(p *Plan) {
			p.Ignored = []Ignored{{Registration: verifyRef(8), Reason: "lab", Owner: "lab", Until: "2026-12-31", Source: block}}
		}, "ignored registration 109: its source looks like a PEM key or certificate", "PRIVATE KEY"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := verifyPlan()
			tt.edit(p)
			var b bytes.Buffer
			if err := RenderJSON(&b, p, true); err != nil {
				t.Fatal(err)
			}
			for name, read := range map[string]func([]byte) (*Plan, error){"ReadPlan": ReadPlan, "ReviewPlan": ReviewPlan} {
				_, err := read(b.Bytes())
				if !errors.Is(err, ErrPlanFormat) || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), tt.secret) {
					t.Errorf("%s = %v; want ErrPlanFormat saying %q, without the value", name, err, tt.want)
				}
			}
		})
	}
}

// TestReadPlanSummary: a plan whose summary is missing, null, or counts
// binds, rebinds or unbinds other than its steps was edited: show would
// print one plan and apply run another. ReadPlan, ReviewPlan and
// ReadFleetPlan refuse it.
func TestReadPlanSummary(t *testing.T) {
	var saved bytes.Buffer
	if err := RenderJSON(&saved, verifyPlan(), true); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(saved.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name    string
		summary any // nil: no summary key
		want    []string
	}{
		{"null", "null", []string{"no summary: every plan voxbind writes has one, so the plan was edited"}},
		{"missing", nil, []string{"no summary"}},
		{"zero", map[string]int{"bind": 0, "rebind": 0, "unbind": 0, "unchanged": 0, "unmanaged": 0}, []string{
			"the summary counts 0 to bind, but the plan has 2 bind steps: the plan was edited",
			"the summary counts 0 to unbind, but the plan has 1 unbind step: the plan was edited",
		}},
		{"rebind", map[string]int{"bind": 2, "rebind": 1, "unbind": 1, "unchanged": 0, "unmanaged": 0}, []string{
			"the summary counts 1 to rebind, but the plan has 0 rebind steps",
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			edited := maps.Clone(doc)
			switch tt.summary {
			case nil:
				delete(edited, "summary")
			case "null":
				edited["summary"] = nil
			default:
				edited["summary"] = tt.summary
			}
			data, err := json.Marshal(edited)
			if err != nil {
				t.Fatal(err)
			}
			for name, read := range map[string]func([]byte) (*Plan, error){"ReadPlan": ReadPlan, "ReviewPlan": ReviewPlan} {
				_, err := read(data)
				for _, want := range tt.want {
					if !errors.Is(err, ErrPlanFormat) || !strings.Contains(err.Error(), want) {
						t.Errorf("%s = %v; want ErrPlanFormat saying %q", name, err, want)
					}
				}
				// Without a summary there are no counts to compare.
				if tt.summary == nil || tt.summary == "null" {
					if err != nil && strings.Contains(err.Error(), "the summary counts") {
						t.Errorf("%s = %v; want no count compared with a summary the plan lacks", name, err)
					}
				}
			}
		})
	}

	// A fleet plan: an account's summary, and the fleet's.
	desired := []*spec.Spec{fleetTestSpec(1, "bob"), fleetTestSpec(2, "alice")}
	open := func(_ context.Context, s *spec.Spec) (Account, error) {
		return newFakeAccount(fleetTestAccount(s.AccountID, "acct")), nil
	}
	fleet := NewFleetJSON(PlanFleet(context.Background(), desired, open, Options{}, 0, nil), true)
	data, err := json.Marshal(fleet)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFleetPlan(data); err != nil {
		t.Fatalf("ReadFleetPlan of a fleet plan as saved: %v", err)
	}
	if fleet.Accounts[0].Summary.Bind+fleet.Accounts[1].Summary.Bind == 0 {
		t.Fatal("the fleet plans no bind")
	}
	for name, tc := range map[string]struct {
		edit func(doc map[string]any)
		want string
	}{
		"account summary null": {func(doc map[string]any) {
			doc["accounts"].([]any)[0].(map[string]any)["summary"] = nil
		}, "account 1: no summary"},
		"account summary zero": {func(doc map[string]any) {
			for _, a := range doc["accounts"].([]any) {
				a.(map[string]any)["summary"] = map[string]int{}
			}
			doc["summary"].(map[string]any)["bind"] = 0
		}, "account 1: the summary counts 0 to bind, but the plan has 1 bind step"},
		"fleet summary null": {func(doc map[string]any) { doc["summary"] = nil }, "no summary"},
		"fleet summary edited": {func(doc map[string]any) {
			doc["summary"].(map[string]any)["unbind"] = 3
		}, "the fleet's summary counts 3 to unbind, but its accounts' plans have 0 unbind steps"},
	} {
		var doc map[string]any
		if err := json.Unmarshal(data, &doc); err != nil {
			t.Fatal(err)
		}
		tc.edit(doc)
		edited, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		for read, fn := range map[string]func([]byte) (*FleetPlan, error){"ReadFleetPlan": ReadFleetPlan, "ReviewFleetPlan": ReviewFleetPlan} {
			_, err := fn(edited)
			if !errors.Is(err, ErrPlanFormat) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: %s = %v; want ErrPlanFormat saying %q", name, read, err, tc.want)
			}
			if name == "account summary null" && strings.Contains(err.Error(), "summary counts") {
				t.Errorf("%s: %s = %v; want no count compared with a summary the account lacks", name, read, err)
			}
		}
	}
}
