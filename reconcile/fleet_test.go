package reconcile

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/voxbind/voxbind/spec"
)

// fleetAccount is a small account with one application (10, support),
// users alice (200) and bob (201), and registrations 3001 (alice, bound
// to user alice) and 3002 (bob, unbound).
func fleetTestAccount(id int64, name string) Current {
	return Current{
		Account:      AccountInfo{ID: id, Name: name},
		Applications: []Application{{ID: 10, Name: "support." + name + ".voximplant.com"}},
		Users:        map[int64][]User{10: {{ID: 200, ApplicationID: 10, Name: "alice"}, {ID: 201, ApplicationID: 10, Name: "bob"}}},
		Rules:        map[int64][]Rule{},
		Registrations: []Registration{
			{RegistrationRef: RegistrationRef{ID: 3001, SIPUsername: "alice", Proxy: "pbx"},
				Target: &Target{Application: Ref{10, "support." + name + ".voximplant.com"}, User: &Ref{200, "alice"}}},
			{RegistrationRef: RegistrationRef{ID: 3002, SIPUsername: "bob", Proxy: "pbx"}},
		},
	}
}

// fleetTestSpec asks account id to bind bob@pbx to user.
func fleetTestSpec(id int64, user string) *spec.Spec {
	return &spec.Spec{Version: 1, AccountID: id, Bindings: []spec.Binding{{
		Pos:          spec.Pos{File: "fleet.yaml", Line: int(id % 100), Col: 5},
		Registration: "bob@pbx", Application: "support", User: user,
	}}}
}

// TestPlanFleet plans three accounts: one binds, one has no changes, one
// names a user its account does not have and fails on its own; an account
// that cannot be opened fails too. The others are planned all the same,
// in account-id order.
func TestPlanFleet(t *testing.T) {
	accounts := map[int64]*fakeAccount{
		1: newFakeAccount(fleetTestAccount(1, "one")),
		2: newFakeAccount(fleetTestAccount(2, "two")),
		3: newFakeAccount(fleetTestAccount(3, "three")),
	}
	desired := []*spec.Spec{fleetTestSpec(1, "bob"), fleetTestSpec(2, "nobody"), fleetTestSpec(3, "bob"), fleetTestSpec(4, "bob")}
	desired[2].Bindings[0].Registration, desired[2].Bindings[0].User = "alice@pbx", "alice" // already so
	open := func(_ context.Context, s *spec.Spec) (Account, error) {
		if a, ok := accounts[s.AccountID]; ok {
			return a, nil
		}
		return nil, errors.New("no such account")
	}
	var mu sync.Mutex
	var heard []int64
	f := PlanFleet(context.Background(), desired, open, Options{}, 2, func(a *FleetAccount) {
		mu.Lock()
		defer mu.Unlock()
		heard = append(heard, a.Account.ID)
	})
	if len(heard) != 4 {
		t.Errorf("planned heard of %v, want all four accounts", heard)
	}
	var got []string
	for _, a := range f.Accounts {
		line := fleetLabel(a.Account) + ": "
		switch {
		case a.Err != nil:
			line += "error: " + a.Err.Error()
		default:
			line += renderSummary(a.Plan)
		}
		got = append(got, line)
	}
	want := []string{
		"account 1 (one): Plan: 1 to bind, 0 to rebind, 0 to unbind, 0 unchanged.",
		`account 2 (two): error: fleet.yaml:2:5: user "nobody" not found in application support (support.two.voximplant.com); check the spelling`,
		"account 3 (three): No changes.",
		"account 4: error: no such account",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("fleet (-want +got):\n%s", diff)
	}
	var errs spec.Errors
	if !errors.As(f.Accounts[1].Err, &errs) {
		t.Errorf("a resolution error is %T, want spec.Errors", f.Accounts[1].Err)
	}
	if f.Accounts[0].Bound != 1 || f.Accounts[0].Plan.AccountID != 1 {
		t.Errorf("account 1: bound %d, plan for account %d; want 1 and 1", f.Accounts[0].Bound, f.Accounts[0].Plan.AccountID)
	}
	wantSum := FleetSummary{Accounts: 4, WithChanges: 1, Failed: 2, Bind: 1, Unchanged: 1, Unmanaged: 2}
	if diff := cmp.Diff(wantSum, f.Summary()); diff != "" {
		t.Errorf("summary (-want +got):\n%s", diff)
	}
	if got := f.Summary().Line(); got != "Fleet: 4 accounts, 1 with changes, 2 failed." {
		t.Errorf("line %q", got)
	}
	if n := accounts[1].callCount(); n != 0 {
		t.Errorf("planning made %d Bind calls", n)
	}
}

// TestPlanFleetUnmatchedIgnores: in a fleet, each account's ignore
// entries are judged against that account alone. Both specs except
// bob@pbx; account 2 writes the username Bob, so its entry matches
// nothing there (and is named with its fix), while the same entry of
// account 1 holds its bob.
func TestPlanFleetUnmatchedIgnores(t *testing.T) {
	two := fleetTestAccount(2, "two")
	two.Registrations[1].SIPUsername = "Bob"
	accounts := map[int64]*fakeAccount{1: newFakeAccount(fleetTestAccount(1, "one")), 2: newFakeAccount(two)}
	desired := []*spec.Spec{fleetTestSpec(1, "bob"), fleetTestSpec(2, "bob")}
	desired[1].Bindings[0].Registration = "Bob@pbx"
	for _, d := range desired {
		d.Ignores = []spec.Ignore{{
			Pos: spec.Pos{File: "fleet.yaml", Line: 7, Col: 5}, KeyPos: map[string]spec.Pos{"registration": {File: "fleet.yaml", Line: 7, Col: 5}},
			Registration: "bob@pbx", Reason: "re-patched", Until: time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC),
		}}
	}
	open := func(_ context.Context, s *spec.Spec) (Account, error) { return accounts[s.AccountID], nil }
	f := PlanFleet(context.Background(), desired, open, Options{Today: planCaseToday}, 2, nil)
	for _, a := range f.Accounts {
		if a.Err != nil {
			t.Fatalf("account %d: %v", a.Account.ID, a.Err)
		}
	}
	if got := f.Accounts[0].Plan.UnmatchedIgnores; len(got) != 0 {
		t.Errorf("account 1, whose bob the entry holds: warnings %+v, want none", got)
	}
	if n := len(f.Accounts[0].Plan.Ignored); n != 1 {
		t.Errorf("account 1: %d ignored, want bob", n)
	}
	want := []UnmatchedIgnore{{
		Pos:     spec.Pos{File: "fleet.yaml", Line: 7, Col: 5},
		Message: "the ignore entry for bob@pbx matches no registration of account 2, so it excepts nothing: registration 3002 (Bob@pbx) differs from it only in the case of its username",
		Fix:     "usernames in ignore: are compared exactly; write it as Bob@pbx",
	}}
	if diff := cmp.Diff(want, f.Accounts[1].Plan.UnmatchedIgnores); diff != "" {
		t.Errorf("account 2 (-want +got):\n%s", diff)
	}
}

// TestForEachAccountBound: at most parallelism accounts at once, and
// that many when there is work for them.
func TestForEachAccountBound(t *testing.T) {
	const n, parallelism = 9, 3
	var mu sync.Mutex
	inFlight, most, started := 0, 0, 0
	release := make(chan struct{})
	ForEachAccount(n, parallelism, func(int) {
		mu.Lock()
		inFlight++
		started++
		most = max(most, inFlight)
		if started == parallelism {
			close(release) // the first wave is all in flight
		}
		mu.Unlock()
		<-release
		mu.Lock()
		inFlight--
		mu.Unlock()
	})
	if most != parallelism || started != n {
		t.Errorf("%d started, at most %d at once; want %d and %d", started, most, n, parallelism)
	}
}

// TestFleetPlanRoundTrip: the fleet JSON that plan --out writes is read
// back by ReadFleetPlan to the same plans; and what ReadFleetPlan refuses,
// it refuses naming the account.
func TestFleetPlanRoundTrip(t *testing.T) {
	desired := []*spec.Spec{fleetTestSpec(1, "bob"), fleetTestSpec(2, "alice")}
	open := func(_ context.Context, s *spec.Spec) (Account, error) {
		return newFakeAccount(fleetTestAccount(s.AccountID, "acct")), nil
	}
	f := PlanFleet(context.Background(), desired, open, Options{}, 0, nil)
	var buf bytes.Buffer
	if err := RenderFleetJSON(&buf, f, true); err != nil {
		t.Fatal(err)
	}
	if !IsFleetPlan(buf.Bytes()) {
		t.Fatalf("IsFleetPlan is false for fleet JSON:\n%s", buf.String())
	}
	back, err := ReadFleetPlan(buf.Bytes())
	if err != nil {
		t.Fatalf("ReadFleetPlan: %v\n%s", err, buf.String())
	}
	// Bound, Displaced and Before are read again from the account by
	// apply --plan, not saved.
	if diff := cmp.Diff(f.Accounts, back.Accounts, cmpopts.IgnoreFields(FleetAccount{}, "Bound", "Displaced", "Before")); diff != "" {
		t.Errorf("read back (-want +got):\n%s", diff)
	}
	if _, err := ReadPlan(buf.Bytes()); err == nil || !strings.Contains(err.Error(), "a fleet plan (of several accounts), not the plan of one account") ||
		strings.Contains(err.Error(), "ReadFleetPlan") {
		t.Errorf("ReadPlan of a fleet plan: %v, want a refusal saying, in words, that it is a fleet plan", err)
	}

	text := buf.String()
	const given = "the caller's fix"
	for _, tt := range []struct {
		name, from, to, want string
		fix                  string // PlanFileFix of the error
	}{
		{"twice", `"account_id": 2,`, `"account_id": 1,`, "account 1: the plan has it twice", given},
		{"bad step", `"action": "bind"`, `"action": "move"`, `account 2: step 1: action "move"`, given},
		{"no kind", `"kind": "fleet",`, ``, `not a fleet plan: it has no "kind"`, given},
		{"another kind", `"kind": "fleet",`, `"kind": "Fleet",`, `"kind": "Fleet" is not a kind of plan voxbind writes`, given},
		// One account's plan of another format_version is made again,
		// as the whole plan of another one is.
		{"inner version", `"format_version": 1,
      "account_id": 2`, `"format_version": 2,
      "account_id": 2`, "account 2: format_version 2, but this voxbind reads format_version 1", "make the plan again with this voxbind's plan --out"},
		{"outer version", `"format_version": 1,
  "kind": "fleet"`, `"format_version": 2,
  "kind": "fleet"`, "format_version 2, but this voxbind reads format_version 1", "make the plan again with this voxbind's plan --out"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			i := strings.LastIndex(text, tt.from)
			if i < 0 {
				t.Fatalf("%q is not in the plan:\n%s", tt.from, text)
			}
			edited := text[:i] + tt.to + text[i+len(tt.from):]
			_, err := ReadFleetPlan([]byte(edited))
			if err == nil || !errors.Is(err, ErrPlanFormat) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ReadFleetPlan = %v, want %q", err, tt.want)
			}
			if fix := PlanFileFix(err, given); fix != tt.fix {
				t.Errorf("PlanFileFix = %q, want %q", fix, tt.fix)
			}
		})
	}

	// A fleet plan with an account that failed is not one apply can run.
	desired = append(desired, fleetTestSpec(3, "nobody"))
	f = PlanFleet(context.Background(), desired, open, Options{}, 0, nil)
	buf.Reset()
	if err := RenderFleetJSON(&buf, f, true); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFleetPlan(buf.Bytes()); err == nil || !strings.Contains(err.Error(), "1 account (3) could not be planned") {
		t.Errorf("ReadFleetPlan with a failed account: %v", err)
	}
}

// TestReviewFleetPlan: voxbind show reads what plan -o json printed for a
// fleet (no preconditions, the run's diagnostics, an account that could
// not be planned); apply --plan refuses it.
func TestReviewFleetPlan(t *testing.T) {
	desired := []*spec.Spec{fleetTestSpec(1, "bob"), fleetTestSpec(2, "alice"), fleetTestSpec(3, "nobody")}
	open := func(_ context.Context, s *spec.Spec) (Account, error) {
		return newFakeAccount(fleetTestAccount(s.AccountID, "acct")), nil
	}
	f := PlanFleet(context.Background(), desired, open, Options{}, 0, nil)
	doc := struct {
		*FleetJSON
		Diagnostics []map[string]string `json:"diagnostics"`
	}{NewFleetJSON(f, false), []map[string]string{{"severity": "error", "code": "fleet-failed"}}}
	printed, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ReviewFleetPlan(printed)
	if err != nil {
		t.Fatalf("ReviewFleetPlan of plan -o json: %v\n%s", err, printed)
	}
	if len(back.Accounts) != 3 || back.Accounts[2].Plan != nil || back.Accounts[2].Err == nil ||
		!strings.Contains(back.Accounts[2].Err.Error(), fleetErrLines(f.Accounts[2].Err)[1]) {
		t.Fatalf("accounts read back: %+v", back.Accounts)
	}
	want := f.Accounts[:2]
	for _, a := range want {
		for i := range a.Plan.Changes {
			a.Plan.Changes[i].Precondition = nil
		}
	}
	if diff := cmp.Diff(want, back.Accounts[:2], cmpopts.IgnoreFields(FleetAccount{}, "Bound", "Displaced", "Before")); diff != "" {
		t.Errorf("read back (-want +got):\n%s", diff)
	}
	if _, err := ReadFleetPlan(printed); err == nil || !strings.Contains(err.Error(), "have no precondition") && !strings.Contains(err.Error(), "has no precondition") {
		t.Errorf("ReadFleetPlan of plan -o json: %v, want a refusal for the missing preconditions", err)
	}
}

// TestReadFleetPlanOrder: a saved fleet plan whose accounts were put in
// another order by hand is read in account-id order, the order a fleet
// is shown and applied in.
func TestReadFleetPlanOrder(t *testing.T) {
	desired := []*spec.Spec{fleetTestSpec(1, "bob"), fleetTestSpec(2, "alice"), fleetTestSpec(3, "bob")}
	open := func(_ context.Context, s *spec.Spec) (Account, error) {
		return newFakeAccount(fleetTestAccount(s.AccountID, "acct")), nil
	}
	doc := NewFleetJSON(PlanFleet(context.Background(), desired, open, Options{}, 0, nil), true)
	slices.Reverse(doc.Accounts)
	data, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	f, err := ReadFleetPlan(data)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, a := range f.Accounts {
		ids = append(ids, a.Account.ID)
	}
	if diff := cmp.Diff([]int64{1, 2, 3}, ids); diff != "" {
		t.Errorf("accounts read (-want +got):\n%s", diff)
	}
}

// TestPlanFleetSelection: in a fleet, a selector needs to match in some
// account only; one that matches in none is an error naming it.
func TestPlanFleetSelection(t *testing.T) {
	open := func(_ context.Context, s *spec.Spec) (Account, error) {
		c := fleetTestAccount(s.AccountID, "acct")
		if s.AccountID == 1 {
			c.Registrations = append(c.Registrations, Registration{RegistrationRef: RegistrationRef{ID: 3003, SIPUsername: "carol", Proxy: "pbx"}})
		}
		return newFakeAccount(c), nil
	}
	desired := []*spec.Spec{fleetTestSpec(1, "bob"), fleetTestSpec(2, "bob")}
	selection := func(texts ...string) Options {
		var sel Selection
		for _, text := range texts {
			s, err := ParseSelector(text)
			if err != nil {
				t.Fatal(err)
			}
			sel.Only = append(sel.Only, s)
		}
		return Options{Selection: sel}
	}
	f := PlanFleet(context.Background(), desired, open, selection("reg=carol@pbx"), 0, nil)
	if f.Accounts[0].Err != nil || f.Accounts[1].Err != nil {
		t.Fatalf("a selector that matches in one account fails the other: %v, %v", f.Accounts[0].Err, f.Accounts[1].Err)
	}
	if err := f.SelectsNothing(); err != nil {
		t.Errorf("SelectsNothing = %v for a selector that matches in account 1", err)
	}
	if diff := cmp.Diff([]string{"--only reg=carol@pbx"}, f.Accounts[1].Plan.Unmatched); diff != "" {
		t.Errorf("account 2's unmatched selectors (-want +got):\n%s", diff)
	}
	f = PlanFleet(context.Background(), desired, open, selection("reg=carol@pbx", "reg=zed@pbx"), 0, nil)
	err := f.SelectsNothing()
	if !errors.Is(err, ErrSelectsNothing) || !strings.Contains(err.Error(), "--only reg=zed@pbx matches no registration of any of the 2 accounts planned") ||
		strings.Contains(err.Error(), "carol") {
		t.Errorf("SelectsNothing = %v, want the one selector that matches nowhere", err)
	}
}

// TestPlanFleetSelectionLeavesNothing: a fleet selection whose selectors
// each match somewhere but that leaves no registration in scope in any
// account is an error that says so; Plan.Unmatched names only real
// selectors.
func TestPlanFleetSelectionLeavesNothing(t *testing.T) {
	open := func(_ context.Context, s *spec.Spec) (Account, error) {
		c := fleetTestAccount(s.AccountID, "acct")
		if s.AccountID == 1 {
			c.Registrations = append(c.Registrations, Registration{RegistrationRef: RegistrationRef{ID: 3003, SIPUsername: "carol", Proxy: "pbx"}})
		}
		return newFakeAccount(c), nil
	}
	desired := []*spec.Spec{fleetTestSpec(1, "bob"), fleetTestSpec(2, "bob")}
	selection := func(only, except []string) Options {
		var sel Selection
		for _, text := range only {
			s, err := ParseSelector(text)
			if err != nil {
				t.Fatal(err)
			}
			sel.Only = append(sel.Only, s)
		}
		for _, text := range except {
			s, err := ParseSelector(text)
			if err != nil {
				t.Fatal(err)
			}
			sel.Except = append(sel.Except, s)
		}
		return Options{Selection: sel}
	}
	for _, tc := range []struct {
		only, except []string
		want         string
	}{
		{[]string{"id=3003"}, []string{"id=3003"}, "--only id=3003 --except id=3003 leaves no registration in scope in any of the 2 accounts planned; check the selectors"},
		{nil, []string{"reg=*@*"}, "--except reg=*@* leaves no registration in scope in any of the 2 accounts planned; check the selectors"},
	} {
		f := PlanFleet(context.Background(), desired, open, selection(tc.only, tc.except), 0, nil)
		for _, a := range f.Accounts {
			if a.Err != nil {
				t.Fatalf("%v %v: account %d: %v", tc.only, tc.except, a.Account.ID, a.Err)
			}
			if !a.Plan.NothingInScope {
				t.Errorf("%v %v: account %d: NothingInScope is false", tc.only, tc.except, a.Account.ID)
			}
			for _, sel := range a.Plan.Unmatched {
				if !slices.Contains(append(prefixed("--only ", tc.only), prefixed("--except ", tc.except)...), sel) {
					t.Errorf("%v %v: account %d: Unmatched holds %q, not a selector", tc.only, tc.except, a.Account.ID, sel)
				}
			}
		}
		err := f.SelectsNothing()
		if !errors.Is(err, ErrSelectsNothing) || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "matches no registration") {
			t.Errorf("%v %v: SelectsNothing = %v, want %q", tc.only, tc.except, err, tc.want)
		}
	}
	// A selection that leaves something in scope in one account is fine.
	f := PlanFleet(context.Background(), desired, open, selection(nil, []string{"id=3003"}), 0, nil)
	if err := f.SelectsNothing(); err != nil {
		t.Errorf("SelectsNothing = %v for a selection that leaves registrations in scope", err)
	}
}

func prefixed(prefix string, texts []string) []string {
	out := make([]string, len(texts))
	for i, s := range texts {
		out[i] = prefix + s
	}
	return out
}
