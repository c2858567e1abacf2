package reconcile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/voxbind/voxbind/spec"
)

// planRandomSelectors picks up to two --only and one --except selectors of
// every kind from what the account and the spec hold, so that most match
// something; now and then one matches nothing.
func planRandomSelectors(rng *rand.Rand, c *Current, want map[int64]*Target) (only, except []string) {
	// Registrations whose wanted user another one holds: selecting one
	// of them alone makes the planner include the holder.
	holders := map[int64]bool{}
	for _, r := range c.Registrations {
		if r.Target != nil && r.Target.User != nil {
			holders[r.Target.User.ID] = true
		}
	}
	var movers []int64
	for id, w := range want {
		if w != nil && w.User != nil && holders[w.User.ID] {
			movers = append(movers, id)
		}
	}
	slices.Sort(movers)
	pick := func() string {
		r := c.Registrations[rng.IntN(len(c.Registrations))]
		if len(movers) > 0 && rng.IntN(3) == 0 {
			return "id=" + strconv.FormatInt(movers[rng.IntN(len(movers))], 10)
		}
		switch rng.IntN(20) {
		case 0, 1, 2, 3:
			return "id=" + strconv.FormatInt(r.ID, 10)
		case 4, 5, 6:
			return "reg=" + r.SIPUsername + "@" + r.Proxy
		case 7, 8, 9:
			return "reg=r" + strconv.Itoa(rng.IntN(10)) + "*@" + r.Proxy
		case 10, 11:
			return "reg=r?@PBX." + string(rune('a'+rng.IntN(2)))
		case 12:
			return "reg=*@*"
		case 13, 14, 15, 16, 17, 18:
			t := r.Target
			if w := want[r.ID]; w != nil && (t == nil || rng.IntN(2) == 0) {
				t = w
			}
			if t == nil {
				return "id=" + strconv.FormatInt(r.ID, 10)
			}
			if rng.IntN(2) == 0 {
				return "app=" + planShortAppName(t.Application.Name)
			}
			return "app=" + t.Application.Name
		}
		return "id=" + strconv.Itoa(90+rng.IntN(30)) // often no such registration
	}
	if rng.IntN(4) == 0 {
		return nil, nil
	}
	for range rng.IntN(3) {
		only = append(only, pick())
	}
	for range rng.IntN(2) {
		except = append(except, pick())
	}
	return only, except
}

// planRandomIgnores writes up to three ignore entries, by id or by
// pattern, some ended before today.
func planRandomIgnores(rng *rand.Rand, c *Current, today time.Time) []spec.Ignore {
	var out []spec.Ignore
	for k := range rng.IntN(4) {
		r := c.Registrations[rng.IntN(len(c.Registrations))]
		ig := spec.Ignore{
			Pos:    spec.Pos{File: "p.yaml", Line: 200 + 4*k, Col: 5},
			Reason: "reason " + strconv.Itoa(k),
			Until:  today.AddDate(0, 0, rng.IntN(40)-8),
		}
		if rng.IntN(3) == 0 {
			ig.Owner = "owner" + strconv.Itoa(k)
		}
		switch rng.IntN(4) {
		case 0:
			ig.RegistrationID = r.ID
		case 1:
			ig.Registration = r.SIPUsername + "@" + r.Proxy
		case 2:
			ig.Registration = "r" + strconv.Itoa(rng.IntN(10)) + "*@*"
		case 3:
			ig.Registration = "r?@" + r.Proxy
		}
		out = append(out, ig)
	}
	return out
}

// planNeedsChange reports whether the spec asks a change of r (what a plan
// without selection or exceptions would step, block or prune).
func planNeedsChange(desired *spec.Spec, want map[int64]*Target, r *Registration) bool {
	w, listed := want[r.ID]
	if listed {
		return !r.Target.Equal(w)
	}
	return desired.Prune && r.Target != nil && !r.Deactivated
}

// TestPlanScopeProperties plans random specs with random selections and
// exceptions against random accounts, and checks what no selection or
// exception may break: no step touches a registration outside the
// selection unless it is marked included (and a step in the selection
// waits for it), none touches a registration an exception holds or takes
// its user, every change the selection asks for is planned or blocked, the
// changes left out are counted, the plan does not depend on the order of
// its inputs, and executing it and planning again in the same scope leaves
// nothing to do.
func TestPlanScopeProperties(t *testing.T) {
	const runs = 3000
	rng := rand.New(rand.NewPCG(2026, 16))
	today := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	var included, halfCycles, ignoredBlocks, ignoredDrift, outside, nothing, steps int
	for run := range runs {
		current := planRandomAccount(rng)
		desired, want, _ := planRandomSpec(rng, &current)
		desired.Ignores = planRandomIgnores(rng, &current, today)
		only, except := planRandomSelectors(rng, &current, want)
		opts := Options{Today: today}
		for _, s := range only {
			x, err := ParseSelector(s)
			if err != nil {
				t.Fatalf("run %d: %v", run, err)
			}
			opts.Selection.Only = append(opts.Selection.Only, x)
		}
		for _, s := range except {
			x, err := ParseSelector(s)
			if err != nil {
				t.Fatalf("run %d: %v", run, err)
			}
			opts.Selection.Except = append(opts.Selection.Except, x)
		}
		wantApp := map[int64]string{}
		for id, w := range want {
			if w != nil {
				wantApp[id] = w.Application.Name
			}
		}
		oracle := planOracle{only: only, except: except, today: today}
		sc := oracle.scopeWith(&current, desired.Ignores, wantApp)

		f := newFakeAccount(current)
		observed, err := Observe(context.Background(), f, desired)
		if err != nil {
			t.Fatalf("run %d: observe: %v", run, err)
		}
		p, err := Diff(desired, observed, opts)
		dead := oracle.matchesNothing(&current, wantApp)
		if len(dead) == 0 && sc.selected && len(current.Registrations) > 0 && !slices.Contains(slices.Collect(maps.Values(sc.outside)), false) {
			dead = []string{"the selection as a whole"} // --except takes out all that --only picks
		}
		if len(dead) > 0 {
			if !errors.Is(err, ErrSelectsNothing) {
				t.Fatalf("run %d: selectors %v match nothing, but Diff says %v", run, dead, err)
			}
			nothing++
			continue
		}
		if err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		ok := t.Run(fmt.Sprint(run), func(t *testing.T) {
			// What plan --out writes, apply --plan reads: included steps,
			// selection and summary agree.
			var saved bytes.Buffer
			if err := RenderJSON(&saved, p, true); err != nil {
				t.Fatal(err)
			}
			if _, err := ReadPlan(saved.Bytes()); err != nil {
				t.Fatalf("the plan as saved is refused: %v", err)
			}
			planCheckInvariants(t, observed, p)
			planCheckScope(t, observed, p, sc)
			planCheckOrderFree(t, desired, observed, opts, p)

			regs := map[int64]*Registration{}
			for i := range current.Registrations {
				regs[current.Registrations[i].ID] = &current.Registrations[i]
			}
			for _, x := range p.Ignored {
				if got := planNeedsChange(desired, want, regs[x.Registration.ID]); x.Drift != got {
					t.Errorf("ignored registration %d: drift %v, want %v", x.Registration.ID, x.Drift, got)
				}
			}
			touched := map[int64]bool{}
			for _, s := range p.Changes {
				touched[s.Registration.ID] = true
			}
			for _, b := range p.Blocked {
				touched[b.Registration.ID] = true
			}
			left := 0
			for _, r := range current.Registrations {
				needs := planNeedsChange(desired, want, &r) && sc.ignored[r.ID] == nil
				switch {
				case touched[r.ID] && !needs:
					t.Errorf("registration %d has a step or a blocked change, but the spec asks none of it (or an exception holds it)", r.ID)
				case !touched[r.ID] && needs && !sc.outside[r.ID]:
					t.Errorf("registration %d is in the selection and needs a change, but has no step and is not blocked", r.ID)
				case !touched[r.ID] && needs:
					left++
				}
			}
			if p.Selection != nil && p.Selection.Outside != left {
				t.Errorf("plan says %d changes outside the selection, want %d", p.Selection.Outside, left)
			}

			planExecute(t, f, p)
			victims := map[int64]bool{}
			for _, e := range p.SideEffects {
				victims[e.Registration.ID] = true
			}
			for i, r := range f.current.Registrations {
				before := &current.Registrations[i]
				end := before.Target
				switch w, listed := want[r.ID]; {
				case slices.ContainsFunc(p.Changes, func(s Step) bool { return s.Registration.ID == r.ID }) && listed:
					end = w
				case slices.ContainsFunc(p.Changes, func(s Step) bool { return s.Registration.ID == r.ID }):
					end = nil // pruned
				case victims[r.ID]:
					end = nil
				}
				if !r.Target.Equal(end) {
					t.Errorf("registration %d ends on %+v, want %+v", r.ID, r.Target, end)
				}
			}
			// Planning again in the same scope: the registrations that were
			// in it, by id (app= may no longer match what the plan moved).
			again := Options{Today: today}
			if p.Selection != nil {
				for _, r := range current.Registrations {
					if !sc.outside[r.ID] {
						x, _ := ParseSelector("id=" + strconv.FormatInt(r.ID, 10))
						again.Selection.Only = append(again.Selection.Only, x)
					}
				}
				if len(again.Selection.Only) == 0 {
					return // nothing was in the selection
				}
			}
			planAgainstItself(t, desired, f, again, p)
		})
		if !ok {
			t.Fatalf("run %d failed (--only %v --except %v, ignore %+v); plan:\n%s", run, only, except, desired.Ignores, planFmt(p))
		}
		steps += len(p.Changes)
		if p.Selection != nil {
			outside += p.Selection.Outside
		}
		for _, s := range p.Changes {
			if s.IncludedFor == 0 {
				continue
			}
			included++
			for _, e := range p.SideEffects {
				if e.Registration.ID == s.Registration.ID && e.CausedByStep == s.IncludedFor {
					halfCycles++ // the step that needs it displaces it first: a cycle half in the selection
				}
			}
		}
		for _, b := range p.Blocked {
			if bytes.Contains([]byte(b.Reason), []byte("which the ignore entry at")) {
				ignoredBlocks++
			}
		}
		for _, x := range p.Ignored {
			if x.Drift {
				ignoredDrift++
			}
		}
	}
	t.Logf("%d runs: %d steps, %d included (%d in half cycles), %d changes left outside, %d blocked by exceptions, %d drifts ignored, %d selections matching nothing",
		runs, steps, included, halfCycles, outside, ignoredBlocks, ignoredDrift, nothing)
	// The generator must exercise what the properties are about.
	if included < 50 || halfCycles < 10 || outside < 200 || ignoredBlocks < 20 || ignoredDrift < 200 || nothing < 20 {
		t.Errorf("the generator exercises too little: fix it")
	}
}

// matchesNothing lists the selectors that match no registration of c.
func (o planOracle) matchesNothing(c *Current, wantApp map[int64]string) []string {
	var dead []string
	for _, s := range append(slices.Clone(o.only), o.except...) {
		hit := false
		for i := range c.Registrations {
			hit = hit || o.selects(s, &c.Registrations[i], wantApp[c.Registrations[i].ID])
		}
		if !hit {
			dead = append(dead, s)
		}
	}
	return dead
}

// planCheckOrderFree plans again with the registrations, the spec's
// entries and the selectors each in reverse order: the plan must be the
// same, the selection as given aside.
func planCheckOrderFree(t *testing.T, desired *spec.Spec, current *Current, opts Options, p *Plan) {
	t.Helper()
	c := *current
	c.Registrations = slices.Clone(current.Registrations)
	slices.Reverse(c.Registrations)
	d := *desired
	d.Bindings = slices.Clone(desired.Bindings)
	slices.Reverse(d.Bindings)
	o := opts
	o.Selection.Only = slices.Clone(opts.Selection.Only)
	o.Selection.Except = slices.Clone(opts.Selection.Except)
	slices.Reverse(o.Selection.Only)
	slices.Reverse(o.Selection.Except)
	again, err := Diff(&d, &c, o)
	if err != nil {
		t.Fatalf("Diff with its inputs reversed: %v", err)
	}
	if again.Selection != nil {
		again.Selection.Only, again.Selection.Except = p.Selection.Only, p.Selection.Except
	}
	var a, b bytes.Buffer
	if err := RenderJSON(&a, p, true); err != nil {
		t.Fatal(err)
	}
	if err := RenderJSON(&b, again, true); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Errorf("plan depends on the order of its inputs:\n%s\nvs\n%s", a.Bytes(), b.Bytes())
	}
}
