package reconcile

import (
	"errors"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/voxbind/voxbind/spec"
)

// planOracle decides, independently of the planner's code, which
// registrations a selection and the spec's ignore entries leave out: the
// selectors as given, and the day.
type planOracle struct {
	only, except []string
	today        time.Time
}

// planOracleScope is the oracle's verdict, by registration id.
type planOracleScope struct {
	selected bool // a selection was given
	outside  map[int64]bool
	ignored  map[int64]*spec.Ignore // in force; the first entry that matches
}

// planOracleGlob turns a pattern with * and ? into a regular expression.
func planOracleGlob(pattern string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString(`\A`)
	for _, r := range pattern {
		switch r {
		case '*':
			b.WriteString(`(?s:.*)`)
		case '?':
			b.WriteString(`(?s:.)`)
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString(`\z`)
	return regexp.MustCompile(b.String())
}

// planOracleRegMatch matches sip_username@proxy against a pattern: the
// username exactly, the proxy in any case.
func planOracleRegMatch(pattern string, r *RegistrationRef) bool {
	at := strings.LastIndex(pattern, "@")
	return planOracleGlob(pattern[:at]).MatchString(r.SIPUsername) &&
		planOracleGlob(strings.ToLower(pattern[at+1:])).MatchString(strings.ToLower(r.Proxy))
}

// planOracleAppIs reports whether app (a full name) answers to name.
func planOracleAppIs(app, name string) bool {
	short, _, _ := strings.Cut(app, ".")
	return app != "" && (strings.EqualFold(app, name) || strings.EqualFold(short, name))
}

func (o planOracle) selects(sel string, r *Registration, wantApp string) bool {
	kind, value, _ := strings.Cut(sel, "=")
	switch kind {
	case "id":
		return strconv.FormatInt(r.ID, 10) == value
	case "reg":
		return planOracleRegMatch(value, &r.RegistrationRef)
	case "app":
		return r.Target != nil && planOracleAppIs(r.Target.Application.Name, value) || planOracleAppIs(wantApp, value)
	}
	panic("oracle: selector " + sel)
}

// scope judges every registration of current. The application the spec
// binds a registration to is read from the spec's entries directly (by
// registration id or name, application id or name), not through the
// planner's resolver.
func (o planOracle) scope(current *Current, desired *spec.Spec) planOracleScope {
	return o.scopeWith(current, desired.Ignores, planOracleSpecApps(current, desired))
}

func (o planOracle) scopeWith(current *Current, ignores []spec.Ignore, wantApp map[int64]string) planOracleScope {
	sc := planOracleScope{
		selected: len(o.only)+len(o.except) > 0,
		outside:  map[int64]bool{},
		ignored:  map[int64]*spec.Ignore{},
	}
	for i := range current.Registrations {
		r := &current.Registrations[i]
		in := len(o.only) == 0
		for _, s := range o.only {
			in = in || o.selects(s, r, wantApp[r.ID])
		}
		for _, s := range o.except {
			in = in && !o.selects(s, r, wantApp[r.ID])
		}
		sc.outside[r.ID] = !in
		for k := range ignores {
			ig := &ignores[k]
			if o.today.After(ig.Until) {
				continue
			}
			if ig.RegistrationID == r.ID || ig.Registration != "" && planOracleRegMatch(ig.Registration, &r.RegistrationRef) {
				sc.ignored[r.ID] = ig
				break
			}
		}
	}
	return sc
}

// planOracleSpecApps maps each registration the spec binds to an
// application to that application's full name.
func planOracleSpecApps(current *Current, desired *spec.Spec) map[int64]string {
	out := map[int64]string{}
	for _, b := range desired.Bindings {
		if b.Unbound {
			continue
		}
		app := ""
		for _, a := range current.Applications {
			if a.ID == b.ApplicationID || b.Application != "" && planOracleAppIs(a.Name, b.Application) {
				app = a.Name
			}
		}
		for _, r := range current.Registrations {
			if r.ID == b.RegistrationID || b.Registration != "" && strings.EqualFold(r.SIPUsername+"@"+r.Proxy, b.Registration) {
				out[r.ID] = app
			}
		}
	}
	return out
}

// planCheckScope checks a plan against the oracle's verdict: no step
// touches a registration outside the selection unless it is marked
// included (and the step it names waits for it), none touches an ignored
// one, the ignored ones in the selection are listed, and every
// registration is counted once.
func planCheckScope(t *testing.T, current *Current, p *Plan, sc planOracleScope) {
	t.Helper()
	if (p.Selection != nil) != sc.selected {
		t.Errorf("plan records selection %+v; a selection was given: %v", p.Selection, sc.selected)
	}
	byStep := map[int]*Step{}
	for i := range p.Changes {
		byStep[p.Changes[i].Step] = &p.Changes[i]
	}
	stepped, blocked := map[int64]bool{}, map[int64]bool{}
	for _, s := range p.Changes {
		id := s.Registration.ID
		stepped[id] = true
		if sc.ignored[id] != nil {
			t.Errorf("step %d touches registration %d, which an exception holds", s.Step, id)
		}
		switch {
		case sc.outside[id] && s.IncludedFor == 0:
			t.Errorf("step %d touches registration %d, outside the selection, without saying it is included", s.Step, id)
		case !sc.outside[id] && s.IncludedFor != 0:
			t.Errorf("step %d: registration %d is in the selection, yet marked included for step %d", s.Step, id, s.IncludedFor)
		case s.IncludedFor != 0:
			needs := byStep[s.IncludedFor]
			if needs == nil || needs.Precondition == nil || needs.Precondition.UserHolder == nil || needs.Precondition.UserHolder.ID != id {
				t.Errorf("step %d is included for step %d, which does not bind a user registration %d holds", s.Step, s.IncludedFor, id)
			}
		}
	}
	for _, b := range p.Blocked {
		blocked[b.Registration.ID] = true
		if sc.ignored[b.Registration.ID] != nil {
			t.Errorf("registration %d is both blocked and held by an exception", b.Registration.ID)
		}
		if sc.outside[b.Registration.ID] && !strings.Contains(b.Reason, "outside the selection, included because") {
			t.Errorf("blocked registration %d is outside the selection: %s", b.Registration.ID, b.Reason)
		}
	}
	listed := map[int64]bool{}
	for _, x := range p.Ignored {
		id := x.Registration.ID
		listed[id] = true
		ig := sc.ignored[id]
		switch {
		case ig == nil:
			t.Errorf("registration %d is listed as ignored, but no exception in force matches it", id)
		case sc.outside[id]:
			t.Errorf("registration %d is outside the selection, but listed as ignored", id)
		case x.Source != ig.Pos.Short() || x.Reason != ig.Reason || x.Owner != ig.Owner || x.Until != ig.Until.Format(time.DateOnly):
			t.Errorf("registration %d is listed as ignored by %+v, want the entry at %s", id, x, ig.Pos.Short())
		}
	}
	for id, ig := range sc.ignored {
		if !sc.outside[id] && !listed[id] {
			t.Errorf("registration %d is held by the exception at %s but not listed as ignored", id, ig.Pos.Short())
		}
	}
	for _, e := range p.SideEffects {
		if sc.ignored[e.Registration.ID] != nil {
			t.Errorf("step %d takes the user of registration %d, which an exception holds", e.CausedByStep, e.Registration.ID)
		}
	}
	rest := len(current.Registrations) - len(p.Changes) - len(p.Blocked) - len(p.Ignored)
	for _, r := range current.Registrations {
		if sc.outside[r.ID] && !stepped[r.ID] && !blocked[r.ID] {
			rest-- // outside, untouched or displaced: in no count
		}
	}
	for _, e := range p.SideEffects {
		if !stepped[e.Registration.ID] && !sc.outside[e.Registration.ID] {
			rest-- // taken from the unmanaged count
		}
	}
	if rest != p.Summary.Unchanged+p.Summary.Unmanaged {
		t.Errorf("unchanged %d + unmanaged %d, want the %d registrations in the selection that are not changed, blocked, ignored or displaced",
			p.Summary.Unchanged, p.Summary.Unmanaged, rest)
	}
}

func TestParseSelector(t *testing.T) {
	good := []string{"id=3321", "reg=lab-*@pbx.example.com", "reg=*@*", "reg=a@b@PBX.example.com", "app=support", "app=support.acme.voximplant.com", "app=a=b"}
	for _, s := range good {
		sel, err := ParseSelector(s)
		if err != nil {
			t.Errorf("ParseSelector(%q): %v", s, err)
		} else if sel.String() != s {
			t.Errorf("ParseSelector(%q).String() = %q", s, sel.String())
		}
	}
	bad := map[string]string{
		"lab":       `selector "lab" has no '=': write id=N (a registration id), reg=PATTERN (sip_username@proxy with * and ?, such as reg=lab-*@pbx.example.com) or app=NAME (an application's short or full name)`,
		"id=":       `selector "id=" has nothing after '=': write id=N`,
		"id=0":      `selector "id=0": id= takes a registration id, a positive decimal number such as id=3321`,
		"id=012":    `selector "id=012": id= takes`,
		"id=x":      `selector "id=x": id= takes`,
		"reg=lab-*": `selector "reg=lab-*": reg= takes a pattern of sip_username@proxy`,
		"reg=@pbx":  `selector "reg=@pbx": reg= takes`,
		"reg=a@":    `selector "reg=a@": reg= takes`,
		"user=bob":  `selector "user=bob": unknown kind "user": write id=N`,
		"ID=3":      `unknown kind "ID"`,
	}
	for s, want := range bad {
		_, err := ParseSelector(s)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseSelector(%q) = %v, want an error containing %q", s, err, want)
		}
	}
}

func TestScopeGlob(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"", "", true},
		{"", "a", false},
		{"*", "", true},
		{"*", "anything@at.all", true},
		{"lab-*", "lab-", true},
		{"lab-*", "lab-12", true},
		{"lab-*", "Lab-12", false},
		{"lab-?", "lab-1", true},
		{"lab-?", "lab-12", false},
		{"lab-?", "lab-é", true}, // ? is one character, not one byte
		{"?é", "éé", true},
		{"*?", "é", true},
		{"*é", "xxé", true},
		{"*é?", "éxé", false},
		{"é*", "e", false},
		{"*-12", "lab-12", true},
		{"a*b*c", "abc", true},
		{"a*b*c", "aXbYc", true},
		{"a*b*c", "aXbY", false},
		{"a*b", "abab", true},
		{"*a*a*a*a*b", strings.Repeat("a", 5000), false},
		{"[ab]", "[ab]", true}, // nothing but * and ? is special
		{`a\*`, `a\xyz`, true},
	}
	for _, tt := range tests {
		if got := scopeGlob(tt.pattern, tt.s); got != tt.want {
			t.Errorf("scopeGlob(%q, %q) = %v, want %v", tt.pattern, tt.s, got, tt.want)
		}
		if got := planOracleGlob(tt.pattern).MatchString(tt.s); got != tt.want {
			t.Errorf("the oracle disagrees on (%q, %q): %v", tt.pattern, tt.s, got)
		}
	}
}

// TestSelectionMatchesNothing: every selector that matches no registration
// is named at once, with what to do; an application that does not exist is
// told apart from one that nothing is bound to.
func TestSelectionMatchesNothing(t *testing.T) {
	c := &Current{
		Account:      AccountInfo{ID: 7, Name: "acme"},
		Applications: []Application{{ID: 77, Name: "support.acme.voximplant.com"}, {ID: 78, Name: "sales.acme.voximplant.com"}},
		Registrations: []Registration{
			{RegistrationRef: RegistrationRef{ID: 101, SIPUsername: "alice", Proxy: "pbx.example.com"}, Target: &Target{Application: Ref{77, "support.acme.voximplant.com"}}},
		},
	}
	var sel Selection
	for _, s := range []string{"reg=alice@PBX.example.com", "reg=bob@*", "app=sales", "app=nosuch"} {
		x, err := ParseSelector(s)
		if err != nil {
			t.Fatal(err)
		}
		sel.Only = append(sel.Only, x)
	}
	x, _ := ParseSelector("id=999")
	sel.Except = append(sel.Except, x)
	_, err := sel.outside(c, nil)
	if !errors.Is(err, ErrSelectsNothing) {
		t.Fatalf("error %v does not wrap ErrSelectsNothing", err)
	}
	want := `4 selectors match no registration:
  --only reg=bob@* matches no registration of account 7; check it against the account: voxbind export lists every registration
  --only app=sales matches no registration: neither the spec nor the account binds one to that application; check it against the account: voxbind export lists every registration
  --only app=nosuch matches no registration of account 7; the account has no application of that name (it has: sales, support)
  --except id=999 matches no registration of account 7; check it against the account: voxbind export lists every registration`
	if diff := cmp.Diff(want, err.Error()); diff != "" {
		t.Errorf("error (-want +got):\n%s", diff)
	}
	// What the spec binds counts for app=.
	outside, err := sel.outside(c, func(int) *Target { return &Target{Application: Ref{78, "sales.acme.voximplant.com"}} })
	if err == nil || strings.Contains(err.Error(), "app=sales") {
		t.Errorf("app=sales should match through the spec: %v, %v", outside, err)
	}
}

// TestSelectionLeavesNothing: selectors that each match, but together
// leave no registration in scope, are named as they were given on the
// command line.
func TestSelectionLeavesNothing(t *testing.T) {
	c := &Current{
		Account:      AccountInfo{ID: 7, Name: "acme"},
		Applications: []Application{{ID: 77, Name: "support.acme.voximplant.com"}},
		Registrations: []Registration{
			{RegistrationRef: RegistrationRef{ID: 101, SIPUsername: "alice", Proxy: "pbx.example.com"}, Target: &Target{Application: Ref{77, "support.acme.voximplant.com"}}},
		},
	}
	only, err := ParseSelector("app=support")
	if err != nil {
		t.Fatal(err)
	}
	except, err := ParseSelector("id=101")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Selection{Only: []Selector{only}, Except: []Selector{except}}.outside(c, nil)
	want := "--only app=support --except id=101 leaves no registration of account 7 in scope: --except takes out all that --only picks; check the selectors against the account: voxbind export lists every registration"
	if err == nil || err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}
