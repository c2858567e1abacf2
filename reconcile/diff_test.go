package reconcile

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rogpeppe/go-internal/txtar"

	"github.com/voxbind/voxbind/internal/tbrecord"
	"github.com/voxbind/voxbind/spec"
)

// The expectations under testdata are refreshed with two flags, one per
// kind, so that a planner change cannot rewrite the render goldens behind
// the expected plans' back (or the reverse):
//
//	go test ./reconcile -run TestPlanCases -update-plans     # testdata/plan: plan.json, errors.txt
//	go test ./reconcile -run TestRenderGolden -update-render # testdata/render
//
// An update rewrites only what changed, shows each change, and fails the
// run: review the change with git diff, then run the tests again.
var (
	updatePlans  = flag.Bool("update-plans", false, "rewrite the expected plans and errors of testdata/plan that differ, show the change and fail")
	updateRender = flag.Bool("update-render", false, "rewrite the golden files of testdata/render that differ, show the change and fail")
)

// goldenRewrite is what an update flag does with one expectation: when got
// differs from want it calls write and fails the test with the change, so
// that an update is never silent and never passes.
func goldenRewrite(t testing.TB, name string, want, got []byte, write func() error) {
	t.Helper()
	if bytes.Equal(want, got) {
		return
	}
	if err := write(); err != nil {
		t.Fatal(err)
	}
	t.Errorf("updated %s (-old +new); review it with git diff and run the tests again:\n%s",
		name, cmp.Diff(strings.Split(string(want), "\n"), strings.Split(string(got), "\n")))
}

// TestGoldenRewrite: what -update-plans and -update-render do with an
// expectation that differs: rewrite it, fail, and show the change; one
// that is equal is left alone, and a rewrite that cannot be written
// fails.
func TestGoldenRewrite(t *testing.T) {
	var wrote int
	write := func() error { wrote++; return nil }

	same := tbrecord.Run(func(tb testing.TB) { goldenRewrite(tb, "same.golden", []byte("a\nb\n"), []byte("a\nb\n"), write) })
	if wrote != 0 || same.Failed() {
		t.Errorf("equal: %d writes, failures %q; want no write and no failure", wrote, same.Errors)
	}

	changed := tbrecord.Run(func(tb testing.TB) {
		goldenRewrite(tb, "case.golden", []byte("a\nold line\n"), []byte("a\nnew line\n"), write)
	})
	if wrote != 1 || !changed.Failed() || changed.Ended || len(changed.Errors) != 1 {
		t.Fatalf("changed: %d writes, ended %v, failures %q; want one write and one error", wrote, changed.Ended, changed.Errors)
	}
	msg := changed.Errors[0]
	removed := regexp.MustCompile(`(?m)^-[^\n]*old line`)
	added := regexp.MustCompile(`(?m)^\+[^\n]*new line`)
	if !strings.Contains(msg, "updated case.golden") || !removed.MatchString(msg) || !added.MatchString(msg) {
		t.Errorf("changed: the failure does not name the file and show the old line removed and the new one added:\n%s", msg)
	}

	unwritable := tbrecord.Run(func(tb testing.TB) {
		goldenRewrite(tb, "case.golden", []byte("old"), []byte("new"), func() error { return errors.New("disk full") })
	})
	if !unwritable.Ended || !strings.Contains(strings.Join(unwritable.Errors, "\n"), "disk full") {
		t.Errorf("unwritable: ended %v, failures %q; want a fatal failure naming the error", unwritable.Ended, unwritable.Errors)
	}
}

// planCaseAccount is the current.json of a planner case: the account with
// every application's rules and users, and registrations whose targets are
// given by ids (names are filled in from the lists).
type planCaseAccount struct {
	Account struct {
		ID    int64  `json:"id"`
		Name  string `json:"name"`
		State string `json:"state"` // "", "frozen" or "inactive"
	} `json:"account"`
	Applications []struct {
		ID   int64  `json:"id"`
		Name string `json:"name"`
	} `json:"applications"`
	Rules []struct {
		ID            int64  `json:"id"`
		ApplicationID int64  `json:"application_id"`
		Name          string `json:"name"`
	} `json:"rules"`
	Users []struct {
		ID            int64  `json:"id"`
		ApplicationID int64  `json:"application_id"`
		Name          string `json:"name"`
	} `json:"users"`
	Registrations []struct {
		ID          int64  `json:"id"`
		SIPUsername string `json:"sip_username"`
		Proxy       string `json:"proxy"`
		Deactivated bool   `json:"deactivated"`
		Target      *struct {
			Application int64 `json:"application"`
			Rule        int64 `json:"rule"`
			User        int64 `json:"user"`
		} `json:"target"`
	} `json:"registrations"`
}

func planCaseCurrent(t *testing.T, data []byte) Current {
	t.Helper()
	var a planCaseAccount
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		t.Fatalf("current.json: %v", err)
	}
	c := Current{
		Account: AccountInfo{ID: a.Account.ID, Name: a.Account.Name, State: a.Account.State},
		Rules:   map[int64][]Rule{},
		Users:   map[int64][]User{},
	}
	names := map[int64]string{}
	for _, app := range a.Applications {
		c.Applications = append(c.Applications, Application{ID: app.ID, Name: app.Name})
		c.Rules[app.ID] = []Rule{}
		c.Users[app.ID] = []User{}
	}
	for _, r := range a.Rules {
		c.Rules[r.ApplicationID] = append(c.Rules[r.ApplicationID], Rule{ID: r.ID, ApplicationID: r.ApplicationID, Name: r.Name})
		names[r.ID] = r.Name
	}
	for _, u := range a.Users {
		c.Users[u.ApplicationID] = append(c.Users[u.ApplicationID], User{ID: u.ID, ApplicationID: u.ApplicationID, Name: u.Name})
		names[u.ID] = u.Name
	}
	for _, app := range c.Applications {
		names[app.ID] = app.Name
	}
	for _, r := range a.Registrations {
		reg := Registration{RegistrationRef: RegistrationRef{ID: r.ID, SIPUsername: r.SIPUsername, Proxy: r.Proxy}, Deactivated: r.Deactivated}
		if r.Target != nil {
			reg.Target = &Target{Application: Ref{ID: r.Target.Application, Name: names[r.Target.Application]}}
			if r.Target.Rule != 0 {
				reg.Target.Rule = &Ref{ID: r.Target.Rule, Name: names[r.Target.Rule]}
			}
			if r.Target.User != 0 {
				reg.Target.User = &Ref{ID: r.Target.User, Name: names[r.Target.User]}
			}
		}
		c.Registrations = append(c.Registrations, reg)
	}
	return c
}

// planCase is one loaded testdata/plan case, planned.
type planCase struct {
	desired  *spec.Spec
	current  Current // the account of current.json
	fake     *fakeAccount
	observed *Current
	plan     *Plan
	err      error
	opts     Options
	oracle   planOracle
}

// planCaseToday is the day the planner cases judge ignore entries on,
// unless their options section says otherwise.
var planCaseToday = time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)

// loadPlanCase loads the spec of a case (from a temporary directory, so
// that locations read spec.yaml:LINE), builds the fake account, observes
// it and plans with the case's options.
func loadPlanCase(t *testing.T, ar *txtar.Archive) planCase {
	t.Helper()
	files := map[string][]byte{}
	for _, f := range ar.Files {
		files[f.Name] = f.Data
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "spec.yaml"), files["spec.yaml"], 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	var pc planCase
	pc.opts, pc.oracle = planCaseOptions(t, files["options"])
	desired, err := spec.LoadWith([]string{"spec.yaml"}, spec.Options{Today: pc.opts.Today})
	if err != nil {
		t.Fatalf("spec.yaml does not load: %v", err)
	}
	pc.desired = desired
	pc.current = planCaseCurrent(t, files["current.json"])
	pc.fake = newFakeAccount(pc.current)
	pc.observed, err = Observe(context.Background(), pc.fake, desired)
	if err != nil {
		t.Fatalf("observe: %v", err)
	}
	pc.plan, pc.err = Diff(desired, pc.observed, pc.opts)
	return pc
}

// planCaseOptions reads the options section of a case, one setting a
// line: "today YYYY-MM-DD", "only SELECTOR", "except SELECTOR".
func planCaseOptions(t *testing.T, data []byte) (Options, planOracle) {
	t.Helper()
	opts := Options{Today: planCaseToday}
	var oracle planOracle
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		key, value, _ := strings.Cut(strings.TrimSpace(line), " ")
		switch key {
		case "":
		case "today":
			d, err := time.Parse(time.DateOnly, value)
			if err != nil {
				t.Fatalf("options: %v", err)
			}
			opts.Today = d
		case "only", "except":
			sel, err := ParseSelector(value)
			if err != nil {
				t.Fatalf("options: %v", err)
			}
			if key == "only" {
				opts.Selection.Only = append(opts.Selection.Only, sel)
				oracle.only = append(oracle.only, value)
			} else {
				opts.Selection.Except = append(opts.Selection.Except, sel)
				oracle.except = append(oracle.except, value)
			}
		default:
			t.Fatalf("options: unknown setting %q", line)
		}
	}
	oracle.today = opts.Today
	return opts, oracle
}

// TestPlanCases runs every planner case of testdata/plan: the plan (or the
// errors) must be the expected one and follow the plan invariants; the plan
// or the errors must not depend on the order of anything in the account or
// the spec; executed against the fake in several orders that respect its
// dependencies, it must reach one end state with exactly the listed side
// effects; and planning again afterwards must give no changes. A case's
// warnings.txt lists the warnings plan and apply give about its ignore
// entries (none without one).
func TestPlanCases(t *testing.T) {
	paths, err := filepath.Glob("../testdata/plan/*.txtar")
	if err != nil {
		t.Fatal(err)
	}
	planCheckCommittedCases(t, paths)
	rng := rand.New(rand.NewPCG(19, 1))
	for _, path := range paths {
		path, err := filepath.Abs(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txtar"), func(t *testing.T) {
			ar, err := txtar.ParseFile(path)
			if err != nil {
				t.Fatal(err)
			}
			pc := loadPlanCase(t, ar)
			section := "plan.json"
			want, expectErrors := planCaseSection(ar, "errors.txt")
			if expectErrors {
				section = "errors.txt"
			} else {
				want, _ = planCaseSection(ar, "plan.json")
			}
			var got []byte
			if expectErrors {
				if pc.err == nil {
					t.Fatalf("Diff succeeded, want errors:\n%s", want)
				}
				var errs spec.Errors
				if !errors.As(pc.err, &errs) && !errors.Is(pc.err, ErrSelectsNothing) {
					t.Fatalf("Diff error %T is neither spec.Errors nor a selection error: %v", pc.err, pc.err)
				}
				// Spec errors: each line is the error as printed, then
				// its code. A selection error as printed.
				var b strings.Builder
				for _, e := range errs {
					if e.Code == "" || e.Fix == "" {
						t.Errorf("error without a code or a fix: %+v", e)
					}
					fmt.Fprintf(&b, "%s [%s]\n", e, e.Code)
				}
				if errs == nil {
					b.WriteString(pc.err.Error() + "\n")
				}
				got = []byte(b.String())
			} else {
				if pc.err != nil {
					t.Fatalf("Diff: %v", pc.err)
				}
				var buf bytes.Buffer
				if err := RenderJSON(&buf, pc.plan, false); err != nil {
					t.Fatal(err)
				}
				got = buf.Bytes()
			}
			if *updatePlans {
				goldenRewrite(t, filepath.Base(path)+" "+section, want, got, func() error {
					planCaseSetSection(ar, section, got)
					return os.WriteFile(path, txtar.Format(ar), 0o644)
				})
				want = got
			}
			if expectErrors {
				if diff := cmp.Diff(strings.Split(string(want), "\n"), strings.Split(string(got), "\n")); diff != "" {
					t.Fatalf("errors (-want +got):\n%s", diff)
				}
				planCheckDeterministic(t, rng, pc.desired, pc.observed, pc.opts, nil, pc.err)
				return
			}
			planCaseCompareJSON(t, want, got)
			planCaseCompareWarnings(t, path, ar, pc.plan)
			planCheckInvariants(t, pc.observed, pc.plan)
			planCheckScope(t, pc.observed, pc.plan, pc.oracle.scope(pc.observed, pc.desired))
			planCheckDeterministic(t, rng, pc.desired, pc.observed, pc.opts, pc.plan, nil)
			after := planExecuteOrders(t, rng, pc.current, pc.plan)
			planAgainstItself(t, pc.desired, after, pc.opts, pc.plan)
		})
	}
}

// planCaseCompareWarnings compares a case's warnings.txt (none when the
// case has no such section) with the warnings the plan asks plan and
// apply to give, one a line as they print them after "voxbind: warning: ".
func planCaseCompareWarnings(t *testing.T, path string, ar *txtar.Archive, p *Plan) {
	t.Helper()
	want, _ := planCaseSection(ar, "warnings.txt")
	var b strings.Builder
	for _, u := range p.UnmatchedIgnores {
		fmt.Fprintf(&b, "%s: %s; %s\n", u.Pos.Short(), u.Message, u.Fix)
	}
	got := []byte(b.String())
	if *updatePlans && (len(got) > 0 || want != nil) {
		goldenRewrite(t, filepath.Base(path)+" warnings.txt", want, got, func() error {
			planCaseSetSection(ar, "warnings.txt", got)
			return os.WriteFile(path, txtar.Format(ar), 0o644)
		})
		return
	}
	if diff := cmp.Diff(strings.Split(string(want), "\n"), strings.Split(string(got), "\n")); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
}

// planCaseCompareJSON compares a case's expected plan.json with the plan
// rendered now, as JSON values (key order and spacing aside).
func planCaseCompareJSON(t *testing.T, want, got []byte) {
	t.Helper()
	var wantV, gotV any
	if err := json.Unmarshal(want, &wantV); err != nil {
		t.Fatalf("plan.json: %v (write it with go test ./reconcile -run TestPlanCases -update-plans)", err)
	}
	if err := json.Unmarshal(got, &gotV); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantV, gotV); diff != "" {
		t.Errorf("plan (-want +got):\n%s", diff)
	}
}

// planCheckCommittedCases fails when a planner case that git tracks is not
// among the cases found: the floor is the committed count, whatever it
// is. Outside a git checkout (a copy of the tree) there is nothing to
// compare with.
func planCheckCommittedCases(t *testing.T, found []string) {
	t.Helper()
	out, err := exec.Command("git", "-C", "..", "ls-files", "--", "testdata/plan/*.txtar").Output()
	if err != nil {
		t.Logf("not a git checkout (%v): the committed planner cases are not counted", err)
		return
	}
	committed := strings.Fields(string(out))
	if len(committed) == 0 {
		t.Fatal("git tracks no planner case under testdata/plan")
	}
	have := map[string]bool{}
	for _, p := range found {
		have[filepath.Base(p)] = true
	}
	for _, c := range committed {
		if !have[filepath.Base(c)] {
			t.Errorf("committed planner case %s was not found by the test", c)
		}
	}
	if len(found) < len(committed) {
		t.Errorf("%d planner cases found, %d committed", len(found), len(committed))
	}
}

func planCaseSection(ar *txtar.Archive, name string) ([]byte, bool) {
	for _, f := range ar.Files {
		if f.Name == name {
			return f.Data, true
		}
	}
	return nil, false
}

func planCaseSetSection(ar *txtar.Archive, name string, data []byte) {
	for i := range ar.Files {
		if ar.Files[i].Name == name {
			ar.Files[i].Data = data
			return
		}
	}
	ar.Files = append(ar.Files, txtar.File{Name: name, Data: data})
}

// planCheckInvariants checks what every plan must satisfy whatever its
// inputs: numbering, dependencies, preconditions, actions and counts.
func planCheckInvariants(t *testing.T, current *Current, p *Plan) {
	t.Helper()
	if p.FormatVersion != FormatVersion || p.AccountID != current.Account.ID {
		t.Errorf("format_version %d, account_id %d; want %d, %d", p.FormatVersion, p.AccountID, FormatVersion, current.Account.ID)
	}
	regs := map[int64]*Registration{}
	holder := map[int64]int64{}
	for i := range current.Registrations {
		r := &current.Registrations[i]
		regs[r.ID] = r
		if r.Target != nil && r.Target.User != nil {
			holder[r.Target.User.ID] = r.ID
		}
	}
	var sum Summary
	seen := map[int64]bool{}
	for i, s := range p.Changes {
		if s.Step != i+1 {
			t.Errorf("change %d is numbered %d", i+1, s.Step)
		}
		if len(s.DependsOn) > 1 {
			t.Errorf("step %d depends on %v: at most one expected", s.Step, s.DependsOn)
		}
		for _, d := range s.DependsOn {
			if d < 1 || d >= s.Step {
				t.Errorf("step %d depends on step %d, which does not run before it", s.Step, d)
			}
		}
		reg, ok := regs[s.Registration.ID]
		if !ok || reg.RegistrationRef != s.Registration {
			t.Errorf("step %d: registration %+v is not the observed one", s.Step, s.Registration)
			continue
		}
		if seen[reg.ID] {
			t.Errorf("step %d: registration %d has two steps", s.Step, reg.ID)
		}
		seen[reg.ID] = true
		if reg.Deactivated {
			t.Errorf("step %d writes frozen registration %d", s.Step, reg.ID)
		}
		if !s.Before.Equal(reg.Target) || s.Precondition == nil || !s.Precondition.Target.Equal(reg.Target) {
			t.Errorf("step %d: before/precondition target differ from the observed one", s.Step)
		}
		if s.Before.Equal(s.After) {
			t.Errorf("step %d changes nothing", s.Step)
		}
		if want := planExpectedAction(s.Before, s.After); s.Action != want {
			t.Errorf("step %d: action %s, want %s", s.Step, s.Action, want)
		}
		var wantHolder *RegistrationRef
		if s.After != nil && s.After.User != nil {
			if h, ok := holder[s.After.User.ID]; ok && h != reg.ID {
				wantHolder = &regs[h].RegistrationRef
			}
		}
		if s.Precondition != nil {
			if diff := cmp.Diff(wantHolder, s.Precondition.UserHolder); diff != "" {
				t.Errorf("step %d: precondition user holder (-want +got):\n%s", s.Step, diff)
			}
		}
		if (s.Reason == ReasonPrune) != (s.Source == "") || s.Reason == ReasonPrune && s.After != nil {
			t.Errorf("step %d: reason %q with source %q and after %v", s.Step, s.Reason, s.Source, s.After)
		}
		switch s.Action {
		case ActionBind:
			sum.Bind++
		case ActionRebind:
			sum.Rebind++
		case ActionUnbind:
			sum.Unbind++
		}
	}
	for _, b := range p.Blocked {
		if seen[b.Registration.ID] {
			t.Errorf("registration %d is both blocked and a step", b.Registration.ID)
		}
	}
	sum.Unchanged, sum.Unmanaged = p.Summary.Unchanged, p.Summary.Unmanaged
	if sum != p.Summary {
		t.Errorf("summary %+v, steps count %+v", p.Summary, sum)
	}
	displacedUnmanaged := 0
	for _, e := range p.SideEffects {
		if !seen[e.Registration.ID] {
			displacedUnmanaged++
		}
	}
	// With a selection, the registrations outside it are in no count
	// (planCheckScope counts them).
	n := len(p.Changes) + len(p.Blocked) + p.Summary.Unchanged + p.Summary.Unmanaged + displacedUnmanaged + len(p.Ignored)
	if p.Selection == nil && n != len(current.Registrations) || n > len(current.Registrations) {
		t.Errorf("changes+blocked+unchanged+unmanaged+displaced+ignored = %d, want the %d registrations", n, len(current.Registrations))
	}
}

// planCheckDeterministic plans again from the account and the spec with
// their lists reversed and twice shuffled (applications, each
// application's rules and users, registrations, spec entries) and wants
// the same plan, byte for byte, or the same errors. Entries stay in order
// when a spec lists something twice: which of two entries is the second
// one is the spec's order by nature.
func planCheckDeterministic(t *testing.T, rng *rand.Rand, desired *spec.Spec, current *Current, opts Options, p *Plan, perr error) {
	t.Helper()
	want := planOutcome(t, p, perr)
	keepEntries := perr != nil && (strings.Contains(perr.Error(), "already listed at") || strings.Contains(perr.Error(), "also the target of the entry at"))
	for k := range 3 {
		d, c := planShuffled(rng, desired, current, k == 0, keepEntries)
		again, err := Diff(d, c, opts)
		if got := planOutcome(t, again, err); got != want {
			t.Errorf("the outcome depends on the order of the account's lists or the spec's entries:\n%s\nvs\n%s", want, got)
			return
		}
	}
}

// planOutcome is a plan as saved (with preconditions, and the frozen
// registrations prune leaves alone), or the errors.
func planOutcome(t *testing.T, p *Plan, err error) string {
	t.Helper()
	if err != nil {
		return "errors:\n" + err.Error()
	}
	var b bytes.Buffer
	if err := RenderJSON(&b, p, true); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&b, "frozen left by prune: %d\n", p.FrozenLeftByPrune)
	return b.String()
}

// planShuffled copies desired and current with every list reversed or
// shuffled; keepEntries leaves the spec's entries in order.
func planShuffled(rng *rand.Rand, desired *spec.Spec, current *Current, reverse, keepEntries bool) (*spec.Spec, *Current) {
	mix := func(n int, swap func(i, j int)) {
		if reverse {
			for i := 0; i < n/2; i++ {
				swap(i, n-1-i)
			}
			return
		}
		rng.Shuffle(n, swap)
	}
	d := *desired
	d.Bindings = slices.Clone(desired.Bindings)
	if !keepEntries {
		mix(len(d.Bindings), func(i, j int) { d.Bindings[i], d.Bindings[j] = d.Bindings[j], d.Bindings[i] })
	}
	c := *current
	c.Registrations = slices.Clone(current.Registrations)
	mix(len(c.Registrations), func(i, j int) { c.Registrations[i], c.Registrations[j] = c.Registrations[j], c.Registrations[i] })
	c.Applications = slices.Clone(current.Applications)
	mix(len(c.Applications), func(i, j int) { c.Applications[i], c.Applications[j] = c.Applications[j], c.Applications[i] })
	c.Rules = make(map[int64][]Rule, len(current.Rules))
	for app, rules := range current.Rules {
		rules = slices.Clone(rules)
		mix(len(rules), func(i, j int) { rules[i], rules[j] = rules[j], rules[i] })
		c.Rules[app] = rules
	}
	c.Users = make(map[int64][]User, len(current.Users))
	for app, users := range current.Users {
		users = slices.Clone(users)
		mix(len(users), func(i, j int) { users[i], users[j] = users[j], users[i] })
		c.Users[app] = users
	}
	return &d, &c
}

// planDisplacement is one registration losing a user, and the step whose
// call made it happen.
type planDisplacement struct {
	Registration int64
	User         int64
	Step         int
}

// planExecute runs the steps in order against the fake (the API's write
// rules, docs/management-api.md): one call per step, never two
// registrations on one user, and the displacements that happen are exactly
// the listed side effects.
func planExecute(t *testing.T, f *fakeAccount, p *Plan) {
	t.Helper()
	calls0, displaced0 := len(f.calls), len(f.displaced)
	for _, s := range p.Changes {
		if err := f.Bind(context.Background(), s.Registration.ID, s.After); err != nil {
			t.Fatalf("step %d: %v", s.Step, err)
		}
		users := map[int64]int64{}
		for _, r := range f.current.Registrations {
			if r.Target != nil && r.Target.User != nil {
				if other, dup := users[r.Target.User.ID]; dup {
					t.Fatalf("after step %d user %d is on registrations %d and %d", s.Step, r.Target.User.ID, other, r.ID)
				}
				users[r.Target.User.ID] = r.ID
			}
		}
	}
	if n := len(f.calls) - calls0; n != len(p.Changes) {
		t.Errorf("%d calls for %d steps", n, len(p.Changes))
	}
	got := []planDisplacement{}
	for _, d := range f.displaced[displaced0:] {
		got = append(got, planDisplacement{d.RegistrationID, d.User.ID, p.Changes[d.Call-calls0].Step})
	}
	want := []planDisplacement{}
	for _, e := range p.SideEffects {
		want = append(want, planDisplacement{e.Registration.ID, e.LosesUser.ID, e.CausedByStep})
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("displacements (-side effects +happened):\n%s", diff)
	}
}

// planAgainstItself re-observes the fake after the plan ran and plans the
// same spec again, with the same options: nothing may be left to do, and
// what was blocked stays blocked.
func planAgainstItself(t *testing.T, desired *spec.Spec, f *fakeAccount, opts Options, p *Plan) {
	t.Helper()
	observed, err := Observe(context.Background(), f, desired)
	if err != nil {
		t.Fatalf("observe after apply: %v", err)
	}
	again, err := Diff(desired, observed, opts)
	if err != nil {
		t.Fatalf("plan after apply: %v", err)
	}
	if len(again.Changes) != 0 || len(again.SideEffects) != 0 {
		var buf bytes.Buffer
		RenderText(&buf, again, false)
		t.Errorf("planning again after the plan ran is not empty:\n%s", buf.String())
	}
	var wantBlocked, gotBlocked []int64
	for _, b := range p.Blocked {
		wantBlocked = append(wantBlocked, b.Registration.ID)
	}
	for _, b := range again.Blocked {
		gotBlocked = append(gotBlocked, b.Registration.ID)
	}
	if diff := cmp.Diff(wantBlocked, gotBlocked); diff != "" {
		t.Errorf("blocked after the plan ran (-before +after):\n%s", diff)
	}
}

// planFmt is a short description of a plan for failure messages.
func planFmt(p *Plan) string {
	var buf bytes.Buffer
	RenderText(&buf, p, false)
	return fmt.Sprint(buf.String())
}
