package reconcile

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/voxbind/voxbind/spec"
)

// planShortNames is the short name of every application the generator
// makes, written out: the generator must not share the planner's code for
// it, or a wrong short name would agree with itself.
var planShortNames = map[string]string{
	"app1.acct.voximplant.com": "app1",
	"app2.acct.voximplant.com": "app2",
	"app3.acct.voximplant.com": "app3",
}

// planRandomAccount is a small random account in which users are scarce,
// so that swaps, cycles, chains and displacements are common. Now and
// then two registrations share a sip_username@proxy.
func planRandomAccount(rng *rand.Rand) Current {
	c := Current{Account: AccountInfo{ID: 500, Name: "acct"}, Rules: map[int64][]Rule{}, Users: map[int64][]User{}}
	nextID := int64(1000)
	id := func() int64 { nextID++; return nextID }
	for a := range 1 + rng.IntN(3) {
		app := Application{ID: id(), Name: fmt.Sprintf("app%d.acct.voximplant.com", a+1)}
		c.Applications = append(c.Applications, app)
		c.Rules[app.ID] = []Rule{}
		c.Users[app.ID] = []User{}
		for r := range rng.IntN(3) {
			c.Rules[app.ID] = append(c.Rules[app.ID], Rule{ID: id(), ApplicationID: app.ID, Name: fmt.Sprintf("rule%d", r+1)})
		}
		for u := range rng.IntN(6) {
			c.Users[app.ID] = append(c.Users[app.ID], User{ID: id(), ApplicationID: app.ID, Name: fmt.Sprintf("user%d-%d", a+1, u+1)})
		}
	}
	held := map[int64]bool{}
	for i := range 1 + rng.IntN(10) {
		reg := Registration{RegistrationRef: RegistrationRef{ID: int64(100 + i), SIPUsername: fmt.Sprintf("r%d", i), Proxy: []string{"pbx.a", "pbx.b"}[rng.IntN(2)]}}
		if i > 0 && rng.IntN(15) == 0 {
			reg.SIPUsername, reg.Proxy = c.Registrations[0].SIPUsername, c.Registrations[0].Proxy // ambiguous by name
		}
		reg.Deactivated = rng.IntN(12) == 0
		if rng.IntN(4) != 0 {
			reg.Target = planRandomTarget(rng, &c, held)
		}
		c.Registrations = append(c.Registrations, reg)
	}
	return c
}

// planRandomTarget picks an application and maybe a rule or a user that is
// not in held, and marks the user held.
func planRandomTarget(rng *rand.Rand, c *Current, held map[int64]bool) *Target {
	app := c.Applications[rng.IntN(len(c.Applications))]
	t := &Target{Application: Ref{ID: app.ID, Name: app.Name}}
	switch rng.IntN(4) {
	case 0:
		if rules := c.Rules[app.ID]; len(rules) > 0 {
			r := rules[rng.IntN(len(rules))]
			t.Rule = &Ref{ID: r.ID, Name: r.Name}
		}
	case 1, 2:
		var free []User
		for _, u := range c.Users[app.ID] {
			if !held[u.ID] {
				free = append(free, u)
			}
		}
		if len(free) > 0 {
			u := free[rng.IntN(len(free))]
			held[u.ID] = true
			t.User = &Ref{ID: u.ID, Name: u.Name}
		}
	}
	return t
}

// planRandomSpec lists a random subset of the registrations with random
// targets (no user twice), naming things by id or by name at random. want
// holds the desired target of every listed registration, source the
// "file:line" of its entry.
func planRandomSpec(rng *rand.Rand, c *Current) (s *spec.Spec, want map[int64]*Target, source map[int64]string) {
	s = &spec.Spec{Version: 1, Prune: rng.IntN(3) == 0, Files: []string{"p.yaml"}}
	if rng.IntN(2) == 0 {
		s.AccountID = c.Account.ID
	}
	want, source = map[int64]*Target{}, map[int64]string{}
	held := map[int64]bool{}
	// Often rotate the users of some registrations among them: a cycle.
	rotate := map[int64]*Target{}
	if rng.IntN(3) == 0 {
		var onUsers []*Registration
		for i := range c.Registrations {
			if r := &c.Registrations[i]; r.Target != nil && r.Target.User != nil && rng.IntN(4) != 0 {
				onUsers = append(onUsers, r)
			}
		}
		if len(onUsers) >= 2 {
			rng.Shuffle(len(onUsers), func(i, j int) { onUsers[i], onUsers[j] = onUsers[j], onUsers[i] })
			onUsers = onUsers[:2+rng.IntN(len(onUsers)-1)]
			for i, r := range onUsers {
				next := onUsers[(i+1)%len(onUsers)]
				rotate[r.ID] = cloneTarget(next.Target)
				held[next.Target.User.ID] = true
			}
		}
	}
	names := map[string]int{}
	for _, reg := range c.Registrations {
		names[strings.ToLower(reg.SIPUsername+"@"+reg.Proxy)]++
	}
	for _, reg := range c.Registrations {
		if _, rotated := rotate[reg.ID]; !rotated && rng.IntN(10) < 3 {
			continue
		}
		line := len(s.Bindings) + 3
		b := spec.Binding{Pos: spec.Pos{File: "p.yaml", Line: line, Col: 5}}
		name := reg.SIPUsername + "@" + reg.Proxy
		if rng.IntN(2) == 0 || names[strings.ToLower(name)] > 1 {
			b.RegistrationID = reg.ID
		} else {
			b.Registration = planRandomCase(rng, name)
		}
		t, rotated := rotate[reg.ID]
		if rotated {
			// keep the rotated target
		} else if rng.IntN(5) == 0 {
			b.Unbound = true
		} else if rng.IntN(3) == 0 && reg.Target != nil && !(reg.Target.User != nil && held[reg.Target.User.ID]) {
			t = cloneTarget(reg.Target) // unchanged
			if t.User != nil {
				held[t.User.ID] = true
			}
		} else {
			t = planRandomTarget(rng, c, held)
		}
		if t != nil {
			switch rng.IntN(3) {
			case 0:
				b.ApplicationID = t.Application.ID
			case 1:
				b.Application = planRandomCase(rng, t.Application.Name)
			case 2:
				b.Application = planRandomCase(rng, planShortNames[t.Application.Name])
			}
			if t.Rule != nil {
				if rng.IntN(2) == 0 {
					b.RuleID = t.Rule.ID
				} else {
					b.Rule = planRandomCase(rng, t.Rule.Name)
				}
			}
			if t.User != nil {
				if rng.IntN(2) == 0 {
					b.UserID = t.User.ID
				} else {
					b.User = planRandomCase(rng, t.User.Name)
				}
			}
		}
		want[reg.ID] = t
		source[reg.ID] = fmt.Sprintf("p.yaml:%d", line)
		s.Bindings = append(s.Bindings, b)
	}
	return s, want, source
}

// planRandomCase upper-cases a name now and then: names match ASCII
// case-insensitively.
func planRandomCase(rng *rand.Rand, name string) string {
	if rng.IntN(4) == 0 {
		return strings.ToUpper(name)
	}
	return name
}

// planBreakSpec makes some entries of s wrong in ways only the account
// can tell: a rule or user of another application, an unknown application,
// registration or rule, an ambiguous registration. It reports whether it
// broke anything.
func planBreakSpec(rng *rand.Rand, c *Current, s *spec.Spec) bool {
	if len(s.Bindings) == 0 {
		return false
	}
	broken := false
	for range 1 + rng.IntN(3) {
		b := &s.Bindings[rng.IntN(len(s.Bindings))]
		app := c.Applications[rng.IntN(len(c.Applications))]
		switch rng.IntN(5) {
		case 0: // a rule of other applications only: "belongs to application ..."
			for _, other := range c.Applications {
				for _, r := range c.Rules[other.ID] {
					if !slices.ContainsFunc(c.Rules[app.ID], func(x Rule) bool { return x.Name == r.Name }) {
						*b = spec.Binding{Pos: b.Pos, RegistrationID: b.RegistrationID, Registration: b.Registration,
							Application: planShortNames[app.Name], Rule: r.Name}
						broken = true
					}
				}
			}
		case 1: // a user of another application
			for _, other := range c.Applications {
				if other.ID != app.ID && len(c.Users[other.ID]) > 0 {
					*b = spec.Binding{Pos: b.Pos, RegistrationID: b.RegistrationID, Registration: b.Registration,
						ApplicationID: app.ID, User: c.Users[other.ID][0].Name}
					broken = true
				}
			}
		case 2: // an unknown application: the error lists the known ones
			*b = spec.Binding{Pos: b.Pos, RegistrationID: b.RegistrationID, Registration: b.Registration, Application: "nosuch"}
			broken = true
		case 3: // an unknown registration
			b.RegistrationID, b.Registration = 0, "ghost@pbx.a"
			broken = true
		case 4: // a name two registrations share
			if r := c.Registrations[0]; slices.ContainsFunc(c.Registrations[1:], func(x Registration) bool {
				return x.SIPUsername == r.SIPUsername && x.Proxy == r.Proxy
			}) {
				b.RegistrationID, b.Registration = 0, r.SIPUsername+"@"+r.Proxy
				broken = true
			}
		}
	}
	return broken
}

// planModel is what a plan must be, worked out by the test from the
// account and the desired targets alone, from the rules the planner
// documents: a listed registration whose target differs changes, unless it
// is frozen (blocked); with prune every bound unlisted registration that
// is not frozen is unbound; a change that binds a user held by a frozen
// registration is blocked, and so is every change waiting for a blocked
// one; a change waits for the change of the registration that holds its
// user; each cycle of waits is broken by the registration that sorts first
// (proxy, sip_username, id) going first; a holder without a change is
// displaced.
type planModel struct {
	steps      map[int64]planModelStep
	blocked    map[int64]string   // registration → "frozen", "displaces H" or "waits for H"
	waitsFor   map[int64]int64    // registration → the registration whose step its step depends on
	displaced  map[int64][2]int64 // victim → {user, registration whose step displaces it}
	summary    Summary
	frozenLeft int
	end        map[int64]*Target // every registration's target once the plan ran
}

type planModelStep struct {
	Action        Action
	Before, After string
	Reason        Reason
	Source        string
}

func planModelOf(current *Current, desired *spec.Spec, want map[int64]*Target, source map[int64]string) planModel {
	m := planModel{steps: map[int64]planModelStep{}, blocked: map[int64]string{}, waitsFor: map[int64]int64{},
		displaced: map[int64][2]int64{}, end: map[int64]*Target{}}
	regs := map[int64]*Registration{}
	holder := map[int64]int64{} // user → registration
	after := map[int64]*Target{}
	for i := range current.Registrations {
		r := &current.Registrations[i]
		regs[r.ID] = r
		m.end[r.ID] = r.Target
		if r.Target != nil && r.Target.User != nil {
			holder[r.Target.User.ID] = r.ID
		}
		w, listed := want[r.ID]
		switch {
		case listed && planSameTarget(r.Target, w):
			m.summary.Unchanged++
		case listed && r.Deactivated:
			m.blocked[r.ID] = "frozen"
		case listed:
			after[r.ID] = w
		case desired.Prune && r.Target != nil && !r.Deactivated:
			after[r.ID] = nil
		default:
			m.summary.Unmanaged++
			if desired.Prune && r.Target != nil {
				m.frozenLeft++
			}
		}
	}
	// Who waits for whom, and what a frozen holder blocks.
	for id, a := range after {
		if a == nil || a.User == nil {
			continue
		}
		h, ok := holder[a.User.ID]
		switch {
		case !ok || h == id:
		case regs[h].Deactivated:
			m.blocked[id] = fmt.Sprintf("displaces frozen registration %d", h)
		default:
			if _, moves := after[h]; moves {
				m.waitsFor[id] = h
			}
		}
	}
	for changed := true; changed; {
		changed = false
		for id, h := range m.waitsFor {
			if _, b := m.blocked[h]; b {
				if _, already := m.blocked[id]; !already {
					m.blocked[id] = fmt.Sprintf("waits for registration %d", h)
					changed = true
				}
			}
		}
	}
	for id := range m.blocked {
		delete(after, id)
		delete(m.waitsFor, id)
	}
	// Break every cycle of waits at the registration that sorts first.
	less := func(a, b int64) bool {
		ra, rb := regs[a], regs[b]
		if ra.Proxy != rb.Proxy {
			return ra.Proxy < rb.Proxy
		}
		if ra.SIPUsername != rb.SIPUsername {
			return ra.SIPUsername < rb.SIPUsername
		}
		return a < b
	}
	for start := range after {
		first, k := start, start
		for n := 0; n <= len(after); n++ {
			h, ok := m.waitsFor[k]
			if !ok {
				break
			}
			k = h
			if less(k, first) {
				first = k
			}
			if k == start {
				h := m.waitsFor[first]
				m.displaced[h] = [2]int64{after[first].User.ID, first}
				delete(m.waitsFor, first)
				break
			}
		}
	}
	// A holder with no change of its own is displaced.
	for id, a := range after {
		if a == nil || a.User == nil {
			continue
		}
		if h, ok := holder[a.User.ID]; ok && h != id && !regs[h].Deactivated {
			if _, moves := after[h]; !moves {
				m.displaced[h] = [2]int64{a.User.ID, id}
				m.summary.Unmanaged--
				m.end[h] = nil
			}
		}
	}
	for id, a := range after {
		r := regs[id]
		s := planModelStep{Action: planExpectedAction(r.Target, a), Before: planTargetIDs(r.Target), After: planTargetIDs(a), Reason: ReasonSpec, Source: source[id]}
		if _, listed := want[id]; !listed {
			s.Reason, s.Source = ReasonPrune, ""
		}
		switch s.Action {
		case ActionBind:
			m.summary.Bind++
		case ActionRebind:
			m.summary.Rebind++
		case ActionUnbind:
			m.summary.Unbind++
		}
		m.steps[id] = s
		m.end[id] = a
	}
	return m
}

// planSameTarget compares two targets by ids, the test's own way.
func planSameTarget(a, b *Target) bool { return planTargetIDs(a) == planTargetIDs(b) }

// planTargetIDs writes a target as "app/rule/user" ids, "-" for unbound.
func planTargetIDs(t *Target) string {
	if t == nil {
		return "-"
	}
	id := func(r *Ref) int64 {
		if r == nil {
			return 0
		}
		return r.ID
	}
	return fmt.Sprintf("%d/%d/%d", t.Application.ID, id(t.Rule), id(t.User))
}

// planExpectedAction names the call from before to after, the test's own way.
func planExpectedAction(before, after *Target) Action {
	switch {
	case before == nil && after != nil:
		return ActionBind
	case before != nil && after == nil:
		return ActionUnbind
	case before != nil && after != nil:
		return ActionRebind
	}
	return "none"
}

// check compares p with the model.
func (m planModel) check(t *testing.T, p *Plan) {
	t.Helper()
	regOfStep := map[int]int64{}
	gotSteps := map[int64]planModelStep{}
	gotWaits := map[int64]int64{}
	for _, s := range p.Changes {
		regOfStep[s.Step] = s.Registration.ID
		gotSteps[s.Registration.ID] = planModelStep{s.Action, planTargetIDs(s.Before), planTargetIDs(s.After), s.Reason, s.Source}
	}
	for _, s := range p.Changes {
		for _, d := range s.DependsOn {
			gotWaits[s.Registration.ID] = regOfStep[d]
		}
	}
	if diff := cmp.Diff(m.steps, gotSteps); diff != "" {
		t.Errorf("steps by registration (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(m.waitsFor, gotWaits); diff != "" {
		t.Errorf("depends_on by registration (-want +got):\n%s", diff)
	}
	gotBlocked := map[int64]string{}
	for _, b := range p.Blocked {
		reason := b.Reason
		if i := strings.Index(reason, " ("); i >= 0 && reason != BlockedFrozen {
			reason = reason[:i] // drop the registration's name
		}
		gotBlocked[b.Registration.ID] = reason
	}
	if diff := cmp.Diff(m.blocked, gotBlocked); diff != "" {
		t.Errorf("blocked (-want +got):\n%s", diff)
	}
	gotDisplaced := map[int64][2]int64{}
	for _, e := range p.SideEffects {
		gotDisplaced[e.Registration.ID] = [2]int64{e.LosesUser.ID, regOfStep[e.CausedByStep]}
	}
	if diff := cmp.Diff(m.displaced, gotDisplaced); diff != "" {
		t.Errorf("side effects: victim → {user, displacing registration} (-want +got):\n%s", diff)
	}
	if m.summary != p.Summary || m.frozenLeft != p.FrozenLeftByPrune {
		t.Errorf("summary %+v with %d frozen left by prune, want %+v with %d", p.Summary, p.FrozenLeftByPrune, m.summary, m.frozenLeft)
	}
}

// TestPlanProperties plans random specs against random accounts. The plan
// must be the one the test works out itself from the account and the spec
// (planModel); executed against the fake, which follows the API's write
// rules, in several orders that respect depends_on (plan order, random,
// reverse among the ready steps, in parallel through Apply), it must reach
// the desired state with one call per step and exactly the listed side
// effects; planning again must find nothing to do; and the plan, or the
// errors, must not depend on the order of anything in the account or the
// spec.
func TestPlanProperties(t *testing.T) {
	const runs = 2000
	rng := rand.New(rand.NewPCG(2026, 11))
	var cycles, displaced, blocked, steps, errorRuns int
	for run := range runs {
		current := planRandomAccount(rng)
		desired, want, source := planRandomSpec(rng, &current)
		broken := rng.IntN(8) == 0 && planBreakSpec(rng, &current, desired)
		f := newFakeAccount(current)
		observed, err := Observe(context.Background(), f, desired)
		if err != nil {
			t.Fatalf("run %d: observe: %v", run, err)
		}
		p, err := Diff(desired, observed, Options{})
		if broken {
			var errs spec.Errors
			if !errors.As(err, &errs) {
				t.Fatalf("run %d: a broken spec planned: %v", run, err)
			}
			planCheckDeterministic(t, rng, desired, observed, Options{}, nil, err)
			errorRuns++
			continue
		}
		if err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		model := planModelOf(&current, desired, want, source)
		ok := t.Run(fmt.Sprint(run), func(t *testing.T) {
			model.check(t, p)
			planCheckInvariants(t, observed, p)
			planCheckDeterministic(t, rng, desired, observed, Options{}, p, nil)
			after := planExecuteOrders(t, rng, current, p)
			for _, reg := range after.current.Registrations {
				if !planSameTarget(reg.Target, model.end[reg.ID]) {
					t.Errorf("registration %d ends on %s, want %s", reg.ID, planTargetIDs(reg.Target), planTargetIDs(model.end[reg.ID]))
				}
			}
			planAgainstItself(t, desired, after, Options{}, p)
		})
		if !ok {
			t.Fatalf("run %d failed; plan:\n%s", run, planFmt(p))
		}
		steps += len(p.Changes)
		blocked += len(model.blocked)
		displaced += len(model.displaced)
		for victim := range model.displaced {
			if _, moves := model.steps[victim]; moves {
				cycles++ // the victim has a step of its own: a broken cycle
			}
		}
	}
	t.Logf("%d runs: %d steps, %d side effects (%d from cycles), %d blocked, %d specs with errors", runs, steps, displaced, cycles, blocked, errorRuns)
	// The generator must exercise what the properties are about.
	if cycles < 50 || displaced-cycles < 50 || blocked < 50 || errorRuns < 100 {
		t.Errorf("too few cycles (%d), unmanaged displacements (%d), blocked changes (%d) or specs with errors (%d): fix the generator",
			cycles, displaced-cycles, blocked, errorRuns)
	}
}

// planExecuteOrders runs p against fresh fakes of current in several orders
// that respect depends_on: plan order, reverse among the ready steps, two
// random orders, and in parallel through Apply. Each must make one call per
// step, displace exactly the side effects' registrations, and end in the
// same state. It returns the fake that ran p in plan order.
func planExecuteOrders(t *testing.T, rng *rand.Rand, current Current, p *Plan) *fakeAccount {
	t.Helper()
	type order struct {
		name string
		pick func(ready []int) int // index into ready
	}
	orders := []order{
		{"plan order", func([]int) int { return 0 }},
		{"reverse among ready steps", func(ready []int) int { return len(ready) - 1 }},
		{"random order", func(ready []int) int { return rng.IntN(len(ready)) }},
		{"another random order", func(ready []int) int { return rng.IntN(len(ready)) }},
	}
	first := newFakeAccount(current)
	planExecute(t, first, p)
	want, _ := first.Registrations(context.Background())
	for _, o := range orders[1:] {
		f := newFakeAccount(current)
		calls := planExecuteInOrder(t, f, p, o.pick)
		got, _ := f.Registrations(context.Background())
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s (steps %v) ends elsewhere than plan order (-plan order +%s):\n%s", o.name, calls, o.name, diff)
		}
		planCheckDisplacements(t, o.name, f, p)
	}
	f := newFakeAccount(current)
	res := Apply(context.Background(), f, p, ApplyOptions{Parallelism: 4})
	if !res.OK() || res.Applied != len(p.Changes) || len(f.calls) != len(p.Changes) {
		t.Errorf("Apply: %d applied of %d steps in %d calls: %v", res.Applied, len(p.Changes), len(f.calls), applyStatuses(res))
	}
	got, _ := f.Registrations(context.Background())
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Apply ends elsewhere than plan order (-plan order +Apply):\n%s", diff)
	}
	planCheckDisplacements(t, "Apply", f, p)
	return first
}

// planExecuteInOrder runs the steps of p one at a time, each chosen by pick
// among the steps whose dependencies have all run, and returns the order.
func planExecuteInOrder(t *testing.T, f *fakeAccount, p *Plan, pick func(ready []int) int) []int {
	t.Helper()
	done := map[int]bool{}
	var order []int
	for len(order) < len(p.Changes) {
		var ready []int
		for _, s := range p.Changes {
			if !done[s.Step] && !slices.ContainsFunc(s.DependsOn, func(d int) bool { return !done[d] }) {
				ready = append(ready, s.Step)
			}
		}
		if len(ready) == 0 {
			t.Fatalf("no step is ready after %v: the dependencies cannot be satisfied", order)
		}
		step := ready[pick(ready)]
		s := p.Changes[slices.IndexFunc(p.Changes, func(s Step) bool { return s.Step == step })]
		if err := f.Bind(context.Background(), s.Registration.ID, s.After); err != nil {
			t.Fatalf("step %d: %v", s.Step, err)
		}
		done[step] = true
		order = append(order, step)
	}
	return order
}

// planCheckDisplacements compares the registrations the fake saw lose a
// user, and to which registration's call, with p's side effects.
func planCheckDisplacements(t *testing.T, how string, f *fakeAccount, p *Plan) {
	t.Helper()
	stepOfReg := map[int64]int{}
	for _, s := range p.Changes {
		stepOfReg[s.Registration.ID] = s.Step
	}
	got := []planDisplacement{}
	for _, d := range f.displaced {
		got = append(got, planDisplacement{d.RegistrationID, d.User.ID, stepOfReg[f.calls[d.Call].RegistrationID]})
	}
	want := []planDisplacement{}
	for _, e := range p.SideEffects {
		want = append(want, planDisplacement{e.Registration.ID, e.LosesUser.ID, e.CausedByStep})
	}
	byReg := func(a, b planDisplacement) int { return int(a.Registration - b.Registration) }
	slices.SortFunc(got, byReg)
	slices.SortFunc(want, byReg)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s: displacements (-side effects +happened):\n%s", how, diff)
	}
}
