package reconcile

import (
	"fmt"
	"strconv"
	"strings"
)

// Mismatch is a registration that does not hold what an applied plan said
// it would.
type Mismatch struct {
	// Step is the step that set the registration's target; 0 when the
	// registration has no step and only had to lose a user (a side effect).
	Step         int             `json:"step"`
	Registration RegistrationRef `json:"registration"`
	Problem      string          `json:"problem"` // what is wrong, in words
	// OutsidePlan is true for a registration that no step and no side
	// effect is for, which changed during the apply (see OutsidePlan);
	// its Step is 0.
	OutsidePlan bool `json:"outside_plan"`
}

func (m Mismatch) String() string {
	if m.OutsidePlan {
		s := "registration " + strconv.FormatInt(m.Registration.ID, 10)
		if m.Registration.SIPUsername != "" || m.Registration.Proxy != "" {
			s += " (" + regName(&m.Registration) + ")"
		}
		return s + " " + m.Problem
	}
	if m.Step == 0 {
		return renderReg(&m.Registration) + ": " + m.Problem
	}
	return "step " + strconv.Itoa(m.Step) + ": " + renderReg(&m.Registration) + ": " + m.Problem
}

// Verify compares the account read after an apply with the plan that was
// applied: every registration a step touched must have exactly that step's
// After target, and every registration a side effect named must no longer
// hold the user it lost. It returns each difference, in step order, side
// effects last. After a partial apply, pass ApplyResult.AppliedPlan.
func Verify(p *Plan, current *Current) []Mismatch {
	regs := registrationsByID(current)
	var out []Mismatch
	stepOf := make(map[int64]bool, len(p.Changes))
	for _, s := range p.Changes {
		stepOf[s.Registration.ID] = true
		r, ok := regs[s.Registration.ID]
		switch {
		case !ok:
			out = append(out, Mismatch{Step: s.Step, Registration: s.Registration, Problem: "the registration no longer exists"})
		case !r.Target.Equal(s.After):
			out = append(out, Mismatch{Step: s.Step, Registration: s.Registration,
				Problem: "want " + renderTarget(s.After) + ", found " + renderTarget(r.Target)})
		}
	}
	for _, e := range p.SideEffects {
		r, ok := regs[e.Registration.ID]
		if !ok || r.Target == nil || r.Target.User == nil || r.Target.User.ID != e.LosesUser.ID {
			continue // gone, or it lost the user as planned
		}
		if stepOf[e.Registration.ID] {
			continue // its own step says where it ends up; checked above
		}
		out = append(out, Mismatch{Registration: e.Registration, Problem: fmt.Sprintf("still holds user %s, which step %d should have taken from it",
			renderName(e.LosesUser), e.CausedByStep)})
	}
	return out
}

// VerifiedSteps counts the steps of p whose registration matched: the
// steps that no mismatch names.
func VerifiedSteps(p *Plan, mismatches []Mismatch) int {
	bad := make(map[int]bool, len(mismatches))
	for _, m := range mismatches {
		if m.Step != 0 {
			bad[m.Step] = true
		}
	}
	n := 0
	for _, s := range p.Changes {
		if !bad[s.Step] {
			n++
		}
	}
	return n
}

// StaleStep is a step of a saved plan whose precondition no longer holds.
type StaleStep struct {
	Step         int
	Registration RegistrationRef
	Changed      string // what changed since the plan was made, in words
	// Made is set when the change is already made: the registration has
	// the step's after target, most likely because an earlier apply of
	// this plan was stopped. Such steps are counted, not listed.
	Made bool
}

func (s StaleStep) String() string {
	return "step " + strconv.Itoa(s.Step) + " (" + renderReg(planReg(&s.Registration)) + "): " + s.Changed
}

// MadeSteps counts the steps of stale that are already made (Made).
func MadeSteps(stale []StaleStep) int {
	n := 0
	for _, s := range stale {
		if s.Made {
			n++
		}
	}
	return n
}

// WriteStaleList writes the stale records that are not already made, one
// per line, each on a new line indented by two spaces: the first as many
// as a plan lists of its blocked changes, then how many more.
func WriteStaleList(b *strings.Builder, stale []StaleStep) {
	listed := 0
	for _, st := range stale {
		if st.Made {
			continue
		}
		if listed == renderListed {
			fmt.Fprintf(b, "\n  … and %d more", len(stale)-MadeSteps(stale)-listed)
			return
		}
		b.WriteString("\n  ")
		b.WriteString(st.String())
		listed++
	}
}

// Stale checks every step of a saved plan against the account as it is now
// and returns the steps whose precondition no longer holds, in step order:
// the registration is gone or frozen, its target is no longer the one the
// plan was computed from, or the user the step binds is now held by a
// registration other than the one recorded (or by none, or by one when it
// was free). It also returns the steps whose recorded names or before
// target do not match the account (an edited plan), and side effects that
// no longer hold; read current with ObservePlan so that rule and user
// names can be checked. A step may be named more than once, once per
// problem.
//
// A step whose registration already has the step's after target is
// returned once, as Made, instead of as changed: the change is made, most
// likely by an earlier apply of this plan that was stopped. What such
// steps did is then expected of the others: a registration that lost its
// user to a side effect of one is unbound, and a user that one took from
// its registration (or that a side effect took) is no longer held there.
func Stale(p *Plan, current *Current) []StaleStep {
	x := newSavedIndex(current)
	regs := x.regs
	holder := make(map[int64]*Registration)
	for i := range current.Registrations {
		r := &current.Registrations[i]
		if r.Target != nil && r.Target.User != nil {
			holder[r.Target.User.ID] = r
		}
	}
	made := stepsMade(p, regs)
	var out []StaleStep
	for _, s := range p.Changes {
		stale := func(format string, args ...any) {
			out = append(out, StaleStep{Step: s.Step, Registration: s.Registration, Changed: fmt.Sprintf(format, args...)})
		}
		pre := s.Precondition
		if pre == nil {
			stale("the plan records no precondition for it; write plans for apply --plan with voxbind plan --out")
			continue
		}
		r, ok := regs[s.Registration.ID]
		if !ok {
			stale("the registration no longer exists")
			continue
		}
		if r.Deactivated {
			stale("the registration is now frozen (deactivated: its subscription lapsed); voxbind never writes it")
		}
		x.recorded(&s, r, stale)
		if made.steps[s.Step] {
			out = append(out, StaleStep{Step: s.Step, Registration: s.Registration, Changed: "already made: its target is now " + renderTarget(r.Target), Made: true})
			continue
		}
		if !r.Target.Equal(pre.Target) && !(r.Target == nil && made.lost(r.ID, pre.Target)) {
			stale("its target changed: %s when planned, now %s", renderTarget(pre.Target), renderTarget(r.Target))
		}
		if s.After == nil || s.After.User == nil {
			continue
		}
		u := s.After.User
		var was, now *RegistrationRef
		if pre.UserHolder != nil && pre.UserHolder.ID != s.Registration.ID {
			was = pre.UserHolder
		}
		if h := holder[u.ID]; h != nil && h.ID != s.Registration.ID {
			now = &h.RegistrationRef
		}
		switch {
		case was == nil && now != nil:
			stale("user %s was free when planned, now registration %s holds it", renderName(*u), renderReg(now))
		case was != nil && now == nil:
			if !made.released(was.ID, u.ID) {
				stale("user %s was held by registration %s when planned, now no other registration holds it", renderName(*u), renderReg(was))
			}
		case was != nil && was.ID != now.ID:
			stale("user %s was held by registration %s when planned, now by %s", renderName(*u), renderReg(was), renderReg(now))
		}
	}
	return append(out, x.sideEffects(p)...)
}

// SavedStale is what apply --plan checks of a saved plan p against the
// account as it is now: its stale steps (Stale), or none when the account
// is frozen or inactive since, whose steps not made yet blockSavedAccount
// blocks instead (p changes then).
func SavedStale(p *Plan, current *Current) []StaleStep {
	stale := Stale(p, current) // before p's made steps are left out
	if blockSavedAccount(p, current) {
		return nil
	}
	return stale
}

// madeChanges are the steps of a saved plan that are already made, and
// what they did to registrations other than their own.
type madeChanges struct {
	steps map[int]bool
	// left maps a registration to the user it no longer holds because of
	// a made step: its own, or a side effect of one.
	left map[int64]int64
}

// stepsMade finds the steps of p whose registration has the step's after
// target now, while its precondition recorded another.
func stepsMade(p *Plan, regs map[int64]*Registration) madeChanges {
	m := madeChanges{steps: make(map[int]bool), left: make(map[int64]int64)}
	for _, s := range p.Changes {
		r, ok := regs[s.Registration.ID]
		if !ok || s.Precondition == nil || s.Precondition.Target.Equal(s.After) || !r.Target.Equal(s.After) {
			continue
		}
		m.steps[s.Step] = true
		if t := s.Precondition.Target; t != nil && t.User != nil && (s.After == nil || s.After.User == nil || s.After.User.ID != t.User.ID) {
			m.left[s.Registration.ID] = t.User.ID
		}
	}
	for _, e := range p.SideEffects {
		if m.steps[e.CausedByStep] {
			m.left[e.Registration.ID] = e.LosesUser.ID
		}
	}
	return m
}

// lost reports whether registration id, planned with target planned, lost
// that target's user to a side effect of a made step (the API leaves such
// a registration unbound).
func (m madeChanges) lost(id int64, planned *Target) bool {
	if planned == nil || planned.User == nil {
		return false
	}
	user, ok := m.left[id]
	return ok && user == planned.User.ID
}

// released reports whether registration id let user go in a made step or
// lost it to the side effect of one.
func (m madeChanges) released(id, user int64) bool {
	u, ok := m.left[id]
	return ok && u == user
}

// registrationsByID indexes the registrations of current by id, for
// verification, the checks of a saved plan and the journal.
func registrationsByID(current *Current) map[int64]*Registration {
	m := make(map[int64]*Registration, len(current.Registrations))
	for i := range current.Registrations {
		m[current.Registrations[i].ID] = &current.Registrations[i]
	}
	return m
}
