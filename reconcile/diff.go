package reconcile

import (
	"errors"
	"strconv"

	"github.com/voxbind/voxbind/spec"
)

// Diff is the planner: it compares the desired spec with the observed
// account and returns the calls that make the account equal the spec, in an
// order that respects the one-registration-per-user rule.
//
// Diff is pure: no I/O, no clock, and the same inputs give the same plan
// whatever the order of current.Registrations. Spec references that do not
// resolve against current come back all at once as spec.Errors, each with
// its location. current must hold the rules and users of every application
// that the spec names together with a rule or user (Observe reads them).
func Diff(desired *spec.Spec, current *Current) (*Plan, error) {
	if desired == nil || current == nil {
		return nil, errors.New("diff: no spec or no observed account")
	}
	want, err := resolve(desired, current)
	if err != nil {
		return nil, err
	}
	p := &Plan{
		FormatVersion: FormatVersion,
		AccountID:     current.Account.ID,
		Changes:       []Step{},
		SideEffects:   []SideEffect{},
		Blocked:       []Blocked{},
	}
	var drafts []planDraft
	var blocked []planBlocked
	for i := range current.Registrations {
		reg := &current.Registrations[i]
		w := want[i]
		switch {
		case w.entry != nil:
			if reg.Target.Equal(w.target) {
				p.Summary.Unchanged++
				continue
			}
			if reg.Deactivated {
				blocked = append(blocked, planBlocked{reg: int32(i), reason: BlockedFrozen, entry: w.entry})
				continue
			}
			drafts = append(drafts, planDraft{reg: int32(i), after: w.target, reason: ReasonSpec, entry: w.entry})
		case desired.Prune && reg.Target != nil && !reg.Deactivated:
			drafts = append(drafts, planDraft{reg: int32(i), reason: ReasonPrune})
		default:
			p.Summary.Unmanaged++ // less those that orderPlan finds displaced
			if desired.Prune && reg.Target != nil {
				p.FrozenLeftByPrune++
			}
		}
	}
	orderPlan(p, current, drafts, blocked)
	return p, nil
}

// BlockedFrozen is the reason of a change asked of a frozen registration.
const BlockedFrozen = "frozen"

// planDraft is a step before ordering and numbering.
type planDraft struct {
	reg    int32 // index into current.Registrations
	after  *Target
	reason Reason
	entry  *spec.Binding // nil for prune

	dep       int32  // the draft that must run first, -1 for none
	dependent int32  // the draft that waits for this one, -1 for none
	displaces int32  // registration this draft takes a user from, -1 for none
	blocked   string // non-empty: not a step but a blocked change
	number    int    // step number, once numbered
}

// planBlocked is a blocked change before it is sorted into the plan.
type planBlocked struct {
	reg    int32
	reason string
	entry  *spec.Binding
}

// planSource is the "file:line" of an entry, "" for none.
func planSource(b *spec.Binding) string {
	if b == nil {
		return ""
	}
	return b.Pos.File + ":" + strconv.Itoa(b.Pos.Line)
}

// planAction names the call that turns before into after.
func planAction(before, after *Target) Action {
	switch {
	case before == nil:
		return ActionBind
	case after == nil:
		return ActionUnbind
	}
	return ActionRebind
}
