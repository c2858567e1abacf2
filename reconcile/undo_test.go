package reconcile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rogpeppe/go-internal/txtar"

	"github.com/voxbind/voxbind/spec"
)

// TestUndoCases runs every undo case of testdata/undo: the account as it
// is now (current.json), the journal of an apply (journal.jsonl, plus
// cut.txt appended without its newline: a partial last line), perhaps a
// selection (selection.txt: "--only id=N" and "--except id=N" lines), and
// the expected undo plan (plan.json; go test ./reconcile -run
// TestUndoCases -update-plans writes it) or error (errors.txt). The plan
// must also follow the plan invariants, not depend on the order of the
// registrations, and, executed against the fake, put every touched
// registration that is not blocked back on the target the journal says it
// had before the apply; undoing again then has nothing to do.
func TestUndoCases(t *testing.T) {
	paths, err := filepath.Glob("../testdata/undo/*.txtar")
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) < 8 {
		t.Fatalf("%d undo cases in testdata/undo, want at least 8", len(paths))
	}
	for _, path := range paths {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txtar"), func(t *testing.T) {
			ar, err := txtar.ParseFile(path)
			if err != nil {
				t.Fatal(err)
			}
			current, _ := planCaseSection(ar, "current.json")
			journal, _ := planCaseSection(ar, "journal.jsonl")
			cut, isCut := planCaseSection(ar, "cut.txt")
			journal = append(slices.Clone(journal), bytes.TrimSuffix(cut, []byte("\n"))...)
			records, err := ReadJournal(journal)
			if err != nil {
				t.Fatalf("ReadJournal: %v", err)
			}
			if records.CutShort != isCut {
				t.Errorf("CutShort = %v, want %v", records.CutShort, isCut)
			}
			opts, selected := undoCaseSelection(t, ar)
			fake := newFakeAccount(planCaseCurrent(t, current))
			observed, err := ObserveUndo(context.Background(), fake, records)
			if err != nil {
				t.Fatalf("ObserveUndo: %v", err)
			}
			p, err := Undo(records, "journal.jsonl", observed, opts)

			want, expectErrors := planCaseSection(ar, "errors.txt")
			var got []byte
			switch {
			case expectErrors && err == nil:
				t.Fatalf("Undo succeeded, want errors:\n%s", want)
			case expectErrors:
				got = []byte(err.Error() + "\n")
			case err != nil:
				t.Fatalf("Undo: %v", err)
			default:
				var buf bytes.Buffer
				if err := RenderJSON(&buf, p, false); err != nil {
					t.Fatal(err)
				}
				got = buf.Bytes()
				want, _ = planCaseSection(ar, "plan.json")
			}
			if *updatePlans {
				section := map[bool]string{true: "errors.txt", false: "plan.json"}[expectErrors]
				goldenRewrite(t, filepath.Base(path)+" "+section, want, got, func() error {
					planCaseSetSection(ar, section, got)
					return os.WriteFile(path, txtar.Format(ar), 0o644)
				})
				want = got
			}
			if expectErrors {
				if diff := cmp.Diff(string(want), string(got)); diff != "" {
					t.Fatalf("error (-want +got):\n%s", diff)
				}
				return
			}
			planCaseCompareJSON(t, want, got)
			undoCheckInvariants(t, observed, p)
			undoCheckDeterministic(t, records, observed, p, opts)
			planExecute(t, fake, p)
			undoCheckRestored(t, records, observed, fake, p, opts, selected)
		})
	}
}

// undoCaseSelection reads a case's selection.txt, if any: its options, and
// whether a registration id is in the selection (by the case's own
// reading of the id= selectors, not the planner's).
func undoCaseSelection(t *testing.T, ar *txtar.Archive) (Options, func(int64) bool) {
	t.Helper()
	text, ok := planCaseSection(ar, "selection.txt")
	if !ok {
		return Options{}, func(int64) bool { return true }
	}
	var opts Options
	only, except := map[int64]bool{}, map[int64]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(text)), "\n") {
		flag, arg, _ := strings.Cut(line, " ")
		sel, err := ParseSelector(arg)
		if err != nil {
			t.Fatal(err)
		}
		var id int64
		if _, err := fmt.Sscanf(arg, "id=%d", &id); err != nil {
			t.Fatalf("selection.txt: %q: the cases use id= selectors only", line)
		}
		switch flag {
		case "--only":
			opts.Selection.Only = append(opts.Selection.Only, sel)
			only[id] = true
		case "--except":
			opts.Selection.Except = append(opts.Selection.Except, sel)
			except[id] = true
		default:
			t.Fatalf("selection.txt: %q", line)
		}
	}
	return opts, func(id int64) bool { return (len(only) == 0 || only[id]) && !except[id] }
}

// undoCheckInvariants checks the plan invariants, with the blocked
// restores of registrations that are gone from the account left out
// (the invariants count only registrations the account has).
func undoCheckInvariants(t *testing.T, current *Current, p *Plan) {
	t.Helper()
	view := *p
	view.Blocked = slices.DeleteFunc(slices.Clone(p.Blocked), func(b Blocked) bool {
		return !slices.ContainsFunc(current.Registrations, func(r Registration) bool { return r.ID == b.Registration.ID })
	})
	planCheckInvariants(t, current, &view)
	for _, s := range p.Changes {
		if s.Reason != ReasonUndo || !strings.HasPrefix(s.Source, p.Journal+":") {
			t.Errorf("step %d: reason %q, source %q; want undo and %s:LINE", s.Step, s.Reason, s.Source, p.Journal)
		}
	}
}

// undoCheckDeterministic plans again from the registrations in reverse
// order and wants the same bytes.
func undoCheckDeterministic(t *testing.T, j *JournalRecords, current *Current, p *Plan, opts Options) {
	t.Helper()
	shuffled := *current
	shuffled.Registrations = slices.Clone(current.Registrations)
	slices.Reverse(shuffled.Registrations)
	again, err := Undo(j, p.Journal, &shuffled, opts)
	if err != nil {
		t.Fatal(err)
	}
	var a, b bytes.Buffer
	RenderJSON(&a, p, true)
	RenderJSON(&b, again, true)
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Errorf("the undo plan depends on the order of the registrations:\n%s\nvs\n%s", a.Bytes(), b.Bytes())
	}
}

// undoCheckRestored checks the fake after the undo plan ran: every
// registration the journal names (as a step's or as displaced) that is
// selected (or has a step: included) and is not blocked holds the
// earliest before the journal records for it; the plan's side effects are
// unbound; everything else is as it was. Then undoing again plans
// nothing, and blocks the same registrations.
func undoCheckRestored(t *testing.T, j *JournalRecords, before *Current, f *fakeAccount, p *Plan, opts Options, selected func(int64) bool) {
	t.Helper()
	restore := map[int64]*Target{}
	for _, in := range j.Intents {
		if _, ok := restore[in.Registration.ID]; !ok {
			restore[in.Registration.ID] = in.Before
		}
		if d := in.Displaces; d != nil {
			if _, ok := restore[d.Registration.ID]; !ok {
				restore[d.Registration.ID] = d.Before
			}
		}
	}
	blocked := map[int64]bool{}
	for _, b := range p.Blocked {
		blocked[b.Registration.ID] = true
	}
	displaced := map[int64]bool{}
	for _, e := range p.SideEffects {
		displaced[e.Registration.ID] = true
	}
	stepped := map[int64]bool{}
	for _, s := range p.Changes {
		stepped[s.Registration.ID] = true
	}
	for i, r := range f.current.Registrations {
		want := before.Registrations[i].Target
		if b, touched := restore[r.ID]; touched && !blocked[r.ID] && (selected(r.ID) || stepped[r.ID]) {
			want = b
		} else if displaced[r.ID] {
			want = nil
		}
		if !r.Target.Equal(want) {
			t.Errorf("registration %d ends on %s, want %s", r.ID, renderTarget(r.Target), renderTarget(want))
		}
	}
	observed, err := ObserveUndo(context.Background(), f, j)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Undo(j, p.Journal, observed, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Changes) != 0 {
		t.Errorf("undoing again plans %d changes:\n%s", len(again.Changes), planFmt(again))
	}
	var wantBlocked, gotBlocked []int64
	for _, b := range p.Blocked {
		wantBlocked = append(wantBlocked, b.Registration.ID)
	}
	for _, b := range again.Blocked {
		gotBlocked = append(gotBlocked, b.Registration.ID)
	}
	if diff := cmp.Diff(wantBlocked, gotBlocked); diff != "" {
		t.Errorf("blocked when undoing again (-first +again):\n%s", diff)
	}
}

// TestUndoEarliestBeforeWins: a registration the journal names twice (here
// displaced by step 1, then rebound by its own step 2, whose before was
// recorded from another reading) goes back to the before of the earlier
// record.
func TestUndoEarliestBeforeWins(t *testing.T) {
	c := applyTestCurrent(3)
	c.Registrations[0].Target = applyUserTarget(1002) // r000: where step 2 left it
	c.Registrations[1].Target = applyUserTarget(1001) // r001: where step 1 left it
	j := &JournalRecords{Start: JournalStart{AccountID: 42}, Intents: []JournalIntent{
		{Step: 1, Line: 2, Registration: c.Registrations[1].RegistrationRef, Before: nil, After: applyUserTarget(1001),
			Displaces: &JournalDisplaced{Registration: c.Registrations[0].RegistrationRef, Before: applyUserTarget(1001)}},
		{Step: 2, Line: 3, Registration: c.Registrations[0].RegistrationRef, Before: applyUserTarget(1003), After: applyUserTarget(1002)},
	}}
	p, err := Undo(j, "j.jsonl", &c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[int64]string{}
	for _, s := range p.Changes {
		got[s.Registration.ID] = renderTarget(s.After) + " " + s.Source
	}
	want := map[int64]string{
		101: "support / user u000 j.jsonl:2", // the displaced before of line 2, not line 3's u002
		102: "(unbound) j.jsonl:2",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("restores (-want +got):\n%s\n%s", diff, planFmt(p))
	}
}

// TestUndoRefusesAnotherAccount: the error wraps ErrJournalAccount and
// names both accounts.
func TestUndoRefusesAnotherAccount(t *testing.T) {
	c := applyTestCurrent(1)
	_, err := Undo(&JournalRecords{Start: JournalStart{AccountID: 7}}, "j.jsonl", &c, Options{})
	if !errors.Is(err, ErrJournalAccount) || !strings.Contains(err.Error(), "account 7") || !strings.Contains(err.Error(), "account 42") {
		t.Errorf("Undo = %v, want ErrJournalAccount naming accounts 7 and 42", err)
	}
}

// undoKillAccount is the account of an apply killed while its first call
// is in flight: that call waits until the intent of the next step is in
// the journal (written ahead, its call not sent), then the journal file
// is taken as a kill -9 would leave it, the call reaches the account or
// not (applied), and the apply stops: no other call is sent.
type undoKillAccount struct {
	*fakeAccount
	t       *testing.T
	journal string
	next    []byte // the start of the next step's intent line
	applied bool
	kill    context.CancelFunc

	sent []int64
	left []byte // the journal after the kill
}

func (a *undoKillAccount) Bind(ctx context.Context, id int64, target *Target) error {
	a.sent = append(a.sent, id) // Parallelism 1: one call at a time
	if len(a.sent) > 1 {
		return errors.New("sent after the kill")
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Millisecond) {
		data, err := os.ReadFile(a.journal)
		if err != nil {
			a.t.Fatal(err)
		}
		if bytes.Contains(data, a.next) {
			a.left = data
			break
		}
		if time.Now().After(deadline) {
			a.t.Fatalf("after 30 s the journal holds no intent of the next step:\n%s", data)
		}
	}
	a.kill()
	if !a.applied {
		return fmt.Errorf("connection reset: %w", ErrOutcomeUnknown)
	}
	return a.fakeAccount.Bind(ctx, id, target)
}

// TestUndoAfterKillWithIntentsWrittenAhead: an apply whose journal holds
// the intent of a step whose call was never sent (written ahead, with the
// user it would take from an unmanaged registration) is killed; undo from
// what the kill left gives back only what was changed: the one call sent,
// if it reached the account, and nothing for the step never sent nor for
// the registration it would have displaced, which are still at their
// befores.
func TestUndoAfterKillWithIntentsWrittenAhead(t *testing.T) {
	for _, applied := range []bool{true, false} {
		t.Run(fmt.Sprint("first call applied=", applied), func(t *testing.T) {
			current := applyTestCurrent(4)
			current.Registrations[3].Target = applyUserTarget(1004) // r003 holds u003, unmanaged
			desired := &spec.Spec{Version: 1, Bindings: []spec.Binding{
				{RegistrationID: 101, ApplicationID: 1, UserID: 1001}, // step 1: sent
				{RegistrationID: 102, ApplicationID: 1, UserID: 1004}, // step 2: takes u003 from r003; never sent
			}}
			p, err := Diff(desired, &current, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Changes) != 2 || p.Changes[0].Registration.ID != 101 || len(p.SideEffects) != 1 || p.SideEffects[0].CausedByStep != 2 {
				t.Fatalf("the test wants step 1 on r000, step 2 displacing r003:\n%s", planFmt(p))
			}
			path := filepath.Join(t.TempDir(), "j.jsonl")
			j, err := CreateJournal(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := j.Start(p, &current, "v", time.Now()); err != nil {
				t.Fatal(err)
			}
			ctx, kill := context.WithCancel(context.Background())
			defer kill()
			acct := &undoKillAccount{fakeAccount: newFakeAccount(current), t: t, journal: path,
				next: []byte(`{"kind":"intent","step":2,`), applied: applied, kill: kill}
			opts := ApplyOptions{Parallelism: 1}
			j.Hook(&opts)
			Apply(ctx, acct, p, opts)
			j.Close()
			if len(acct.sent) != 1 {
				t.Fatalf("calls sent: %v; want only r000's", acct.sent)
			}

			records, err := ReadJournal(acct.left)
			if err != nil {
				t.Fatal(err)
			}
			i := slices.IndexFunc(records.Intents, func(in JournalIntent) bool { return in.Step == 2 })
			if c := records.Counts(); c != (JournalCounts{Intents: 2, NoResult: 2}) || records.End != nil || i < 0 || records.Intents[i].Displaces == nil {
				t.Fatalf("the kill left %+v, end %v; want the intents of both steps, the second with its displacement:\n%s", c, records.End, acct.left)
			}
			now := acct.fakeAccount.current
			u, err := Undo(records, "j.jsonl", &now, Options{})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range u.Changes {
				got = append(got, fmt.Sprintf("%d -> %s", s.Registration.ID, renderTarget(s.After)))
			}
			var want []string
			if applied {
				want = []string{"101 -> (unbound)"}
			}
			if !slices.Equal(got, want) || len(u.Blocked) > 0 || len(u.SideEffects) > 0 || u.Summary.Unchanged != 3-len(want) {
				t.Errorf("undo: %q, %d unchanged; want %q and the rest unchanged, nothing blocked:\n%s", got, u.Summary.Unchanged, want, planFmt(u))
			}
			res := Apply(context.Background(), acct.fakeAccount, u, ApplyOptions{Parallelism: 1})
			if !res.OK() {
				t.Fatalf("applying the undo: %+v", res)
			}
			for i, r := range acct.fakeAccount.current.Registrations {
				if !r.Target.Equal(current.Registrations[i].Target) {
					t.Errorf("after undo %s is %s; before the apply it was %s", r.SIPUsername, renderTarget(r.Target), renderTarget(current.Registrations[i].Target))
				}
			}
		})
	}
}

// TestRenderTargets: what the apply may have left a registration with,
// each target once, in order: a displaced registration may be unbound
// or keep its application without the user.
func TestRenderTargets(t *testing.T) {
	support := &Target{Application: Ref{ID: 7, Name: "support.acme.voximplant.com"}}
	carol := &Target{Application: support.Application, User: &Ref{ID: 3, Name: "carol"}}
	for _, tc := range []struct {
		targets []*Target
		want    string
	}{
		{[]*Target{carol}, "support / user carol"},
		{[]*Target{nil, support}, "(unbound) or support"},
		{[]*Target{carol, nil, carol, support, nil}, "support / user carol or (unbound) or support"},
	} {
		if got := renderTargets(tc.targets); got != tc.want {
			t.Errorf("renderTargets = %q, want %q", got, tc.want)
		}
	}
}

// TestUndoTouchesEnd: what a blocked restore says the apply left a
// registration with follows the journal's results. In a swap, bob@ is
// displaced by step 1 and bound again by step 2: applied, step 2 alone
// left it; failed, the displacement did; without a result, either.
func TestUndoTouchesEnd(t *testing.T) {
	support := Ref{ID: 7, Name: "support"}
	bobUser, aliceUser := &Ref{ID: 2, Name: "bob"}, &Ref{ID: 1, Name: "alice"}
	aliceReg, bobReg := RegistrationRef{ID: 3001, SIPUsername: "alice"}, RegistrationRef{ID: 3002, SIPUsername: "bob"}
	bobBefore := &Target{Application: support, User: bobUser}
	for outcome, want := range map[StepStatus]string{
		StepApplied: "support / user alice",
		StepFailed:  "(unbound) or support",
		StepUnknown: "(unbound) or support or support / user alice",
	} {
		j := &JournalRecords{
			Intents: []JournalIntent{
				{Step: 1, Registration: aliceReg, Before: &Target{Application: support, User: aliceUser}, After: &Target{Application: support, User: bobUser},
					Displaces: &JournalDisplaced{Registration: bobReg, Before: bobBefore}, Line: 2},
				{Step: 2, Registration: bobReg, Before: nil, After: &Target{Application: support, User: aliceUser}, Line: 4},
			},
			Results: map[int]JournalResult{1: {Step: 1, Outcome: StepApplied}, 2: {Step: 2, Outcome: outcome}},
		}
		for _, touch := range undoTouches(j, "j.jsonl") {
			if touch.ref.ID == bobReg.ID {
				if got := renderTargets(touch.end); got != want {
					t.Errorf("step 2 %s: the apply left bob@ %q, want %q", outcome, got, want)
				}
			}
		}
	}
}
