package reconcile

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/voxbind/voxbind/spec"
)

// planRandomAccount is a small random account in which users are scarce,
// so that swaps, cycles, chains and displacements are common.
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
// targets (no user twice), naming things by id or by name at random.
func planRandomSpec(rng *rand.Rand, c *Current) (*spec.Spec, map[int64]*Target) {
	s := &spec.Spec{Version: 1, Prune: rng.IntN(3) == 0, Files: []string{"p.yaml"}}
	if rng.IntN(2) == 0 {
		s.AccountID = c.Account.ID
	}
	want := map[int64]*Target{}
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
	for _, reg := range c.Registrations {
		if _, rotated := rotate[reg.ID]; !rotated && rng.IntN(10) < 3 {
			continue
		}
		b := spec.Binding{Pos: spec.Pos{File: "p.yaml", Line: len(s.Bindings) + 3, Col: 5}}
		if rng.IntN(2) == 0 {
			b.RegistrationID = reg.ID
		} else {
			b.Registration = reg.SIPUsername + "@" + reg.Proxy
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
				b.Application = t.Application.Name
			case 2:
				b.Application = planShortAppName(t.Application.Name)
			}
			if t.Rule != nil {
				if rng.IntN(2) == 0 {
					b.RuleID = t.Rule.ID
				} else {
					b.Rule = t.Rule.Name
				}
			}
			if t.User != nil {
				if rng.IntN(2) == 0 {
					b.UserID = t.User.ID
				} else {
					b.User = t.User.Name
				}
			}
		}
		want[reg.ID] = t
		s.Bindings = append(s.Bindings, b)
	}
	return s, want
}

// TestPlanProperties plans random specs against random accounts and runs
// each plan against the fake, which follows the API's write rules: the
// account must end exactly in the desired state (what is blocked and what
// the spec does not manage aside), with one call per changed registration,
// never two registrations on one user, and exactly the listed side effects.
func TestPlanProperties(t *testing.T) {
	const runs = 2000
	rng := rand.New(rand.NewPCG(2026, 11))
	var cycles, displaced, blocked, steps int
	for run := range runs {
		current := planRandomAccount(rng)
		desired, want := planRandomSpec(rng, &current)
		f := newFakeAccount(current)
		observed, err := Observe(context.Background(), f, desired)
		if err != nil {
			t.Fatalf("run %d: observe: %v", run, err)
		}
		p, err := Diff(desired, observed, Options{})
		if err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		ok := t.Run(fmt.Sprint(run), func(t *testing.T) {
			planCheckInvariants(t, observed, p)
			planCheckDeterministic(t, desired, observed, Options{}, p)

			// Which registrations change: listed ones whose target differs,
			// and with prune the bound unlisted ones, unless frozen or blocked.
			isBlocked := map[int64]bool{}
			for _, b := range p.Blocked {
				isBlocked[b.Registration.ID] = true
			}
			anyFrozen := false
			wantSteps := map[int64]bool{}
			for _, reg := range current.Registrations {
				anyFrozen = anyFrozen || reg.Deactivated
				w, listed := want[reg.ID]
				switch {
				case listed && !reg.Target.Equal(w) && !reg.Deactivated && !isBlocked[reg.ID]:
					wantSteps[reg.ID] = true
				case listed && !reg.Target.Equal(w) && reg.Deactivated && !isBlocked[reg.ID]:
					t.Errorf("frozen registration %d with a change is not blocked", reg.ID)
				case !listed && desired.Prune && reg.Target != nil && !reg.Deactivated:
					wantSteps[reg.ID] = true
				}
			}
			if len(p.Blocked) > 0 && !anyFrozen {
				t.Errorf("blocked changes in an account without frozen registrations")
			}
			gotSteps := map[int64]bool{}
			for _, s := range p.Changes {
				gotSteps[s.Registration.ID] = true
			}
			if fmt.Sprint(gotSteps) != fmt.Sprint(wantSteps) {
				t.Errorf("steps for registrations %v, want %v", gotSteps, wantSteps)
			}

			planExecute(t, f, p)

			victims := map[int64]bool{}
			for _, e := range p.SideEffects {
				victims[e.Registration.ID] = true
			}
			for i, reg := range f.current.Registrations {
				before := current.Registrations[i]
				w, listed := want[reg.ID]
				var end *Target
				switch {
				case listed && !isBlocked[reg.ID]:
					end = w
				case !listed && desired.Prune && before.Target != nil && !before.Deactivated:
					end = nil
				case !listed && victims[reg.ID]:
					end = nil
				default:
					end = before.Target
				}
				if !reg.Target.Equal(end) {
					t.Errorf("registration %d ends on %+v, want %+v", reg.ID, reg.Target, end)
				}
			}
			planAgainstItself(t, desired, f, Options{}, p)
		})
		if !ok {
			t.Fatalf("run %d failed; plan:\n%s", run, planFmt(p))
		}
		steps += len(p.Changes)
		blocked += len(p.Blocked)
		displaced += len(p.SideEffects)
		for _, s := range p.Changes {
			if len(s.DependsOn) == 0 && s.Precondition.UserHolder != nil {
				for _, other := range p.Changes {
					if other.Registration == *s.Precondition.UserHolder {
						cycles++ // the holder has a step, yet this one goes first: a broken cycle
					}
				}
			}
		}
	}
	t.Logf("%d runs: %d steps, %d side effects (%d from cycles), %d blocked", runs, steps, displaced, cycles, blocked)
	// The generator must exercise what the properties are about.
	if cycles < 50 || displaced-cycles < 50 || blocked < 50 {
		t.Errorf("too few cycles (%d), unmanaged displacements (%d) or blocked changes (%d): fix the generator", cycles, displaced-cycles, blocked)
	}
}
