package reconcile

import (
	"errors"
	"slices"
	"strconv"

	"github.com/voxbind/voxbind/spec"
)

// Diff is the planner: it compares the desired spec with the observed
// account and returns the calls that make the account equal the spec, in an
// order that respects the one-registration-per-user rule.
//
// opts limits the plan to a selection of registrations and gives the day
// that the spec's ignore entries are judged on. Registrations outside the
// selection get no step, unless a step in it must wait for one of them to
// leave a user (that step is then included, and says which step needs it);
// registrations that an ignore entry in force holds get no step at all,
// and a step that would take a user from one is blocked. When the account
// is frozen or inactive every change is blocked (blockAccount).
//
// Diff is pure: no I/O, no clock, and the same inputs give the same plan
// whatever the order of current.Registrations. Spec references that do not
// resolve against current come back all at once as spec.Errors, each with
// its location; a selector that matches no registration is an error
// wrapping ErrSelectsNothing. current must hold the rules and users of
// every application that the spec names together with a rule or user
// (Observe reads them).
func Diff(desired *spec.Spec, current *Current, opts Options) (*Plan, error) {
	if desired == nil || current == nil {
		return nil, errors.New("diff: no spec or no observed account")
	}
	if len(desired.Ignores) > 0 && opts.Today.IsZero() {
		return nil, errors.New("diff: the spec has ignore entries, but no day was given to judge them on")
	}
	want, err := resolve(desired, current)
	if err != nil {
		return nil, err
	}
	outside, err := opts.Selection.outside(current, func(i int) *Target { return want[i].target })
	var unmatched *SelectionError
	if err != nil && (!opts.Fleet || !errors.As(err, &unmatched)) {
		return nil, err
	}
	ignored := scopeIgnored(desired.Ignores, opts.Today, current.Registrations)
	scope := &planScope{outside: outside, ignored: ignored}
	p := newPlan(current.Account.ID, opts.Selection)
	if unmatched != nil {
		p.Unmatched = unmatched.Selectors
	}
	p.NothingInScope = nothingInScope(outside)
	p.UnmatchedIgnores = scopeUnmatched(desired.Ignores, opts.Today, current.Registrations, ignored, current.Account.ID)
	drafts, blocked := diffClassify(p, desired, current, want, scope)
	orderPlan(p, current, drafts, blocked, scope)
	blockAccount(p, current.Account)
	return p, nil
}

// diffClassify sorts every registration into one of: a draft (a step to
// order), a blocked change, unchanged, unmanaged, ignored, or outside the
// selection, and counts them in p. Drafts of registrations outside the
// selection are returned too, marked, for orderPlan to include or drop.
func diffClassify(p *Plan, desired *spec.Spec, current *Current, want []resolvedBinding, scope *planScope) ([]planDraft, []planBlocked) {
	var drafts []planDraft
	var blocked []planBlocked
	outside := 0
	for i := range current.Registrations {
		reg := &current.Registrations[i]
		w := want[i]
		out := scope.outsideAt(int32(i))
		pruned := desired.Prune && w.entry == nil && reg.Target != nil
		if ig := scope.ignoredAt(int32(i)); ig != nil {
			if !out {
				drift := w.entry != nil && !reg.Target.Equal(w.target) || pruned && !reg.Deactivated
				p.Ignored = append(p.Ignored, diffIgnored(reg, ig, drift))
			} else {
				p.IgnoredOutside = append(p.IgnoredOutside, reg.ID)
			}
			continue
		}
		switch {
		case w.entry != nil && reg.Target.Equal(w.target):
			if !out {
				p.Summary.Unchanged++
			}
		case w.entry != nil && reg.Deactivated:
			if out {
				outside++
			} else {
				blocked = append(blocked, planBlocked{reg: int32(i), reason: BlockedFrozen, cause: BlockFrozen, entry: w.entry})
			}
		case w.entry != nil:
			drafts = append(drafts, planDraft{reg: int32(i), after: w.target, reason: ReasonSpec, entry: w.entry, outside: out})
		case pruned && !reg.Deactivated:
			drafts = append(drafts, planDraft{reg: int32(i), reason: ReasonPrune, outside: out})
		case !out:
			p.Summary.Unmanaged++ // less those that orderPlan finds displaced
			if pruned {
				p.FrozenLeftByPrune++
			}
		}
	}
	if p.Selection != nil {
		p.Selection.Outside = outside // plus the drafts orderPlan drops
	}
	slices.SortFunc(p.Ignored, func(a, b Ignored) int { return planCompareRegs(&a.Registration, &b.Registration) })
	return drafts, blocked
}

// diffIgnored is the plan's record of a registration an exception holds.
func diffIgnored(reg *Registration, ig *spec.Ignore, drift bool) Ignored {
	return Ignored{
		Registration: reg.RegistrationRef,
		Reason:       ig.Reason,
		Owner:        ig.Owner,
		Until:        spec.DayString(ig.Until),
		Drift:        drift,
		Source:       ig.Pos.Short(),
	}
}

// BlockedFrozen is the reason of a change asked of a frozen registration.
const BlockedFrozen = "frozen"

// blockedAccount is the reason of a change blocked because its account
// is in state (AccountFrozen, AccountInactive): "account_frozen",
// "account_inactive".
func blockedAccount(state string) string { return "account_" + state }

// blockAccount lifts the rule for a frozen registration to the account:
// when account (as just read) is frozen or inactive, voxbind never writes
// to it, so every step of p, a plan of that account, becomes a blocked
// change (reason blockedAccount, with the step's action and targets, so
// that the plan still shows the drift), and p is left with no steps, no
// side effects and no bind, rebind or unbind to count. p records the
// account's state (AccountState) even when it has no step. Diff and Undo
// call it; for a saved plan, with the account as it is when the plan is
// applied, blockSavedAccount does (SavedStale, for apply --plan). For a
// usable account it only clears AccountState (a saved plan's, made while
// the account was frozen).
func blockAccount(p *Plan, account AccountInfo) {
	p.AccountState = account.State
	if account.State == "" {
		return
	}
	p.AccountName = account.Name
	for _, st := range p.Changes {
		p.Blocked = append(p.Blocked, Blocked{Registration: st.Registration, Reason: blockedAccount(account.State), Source: st.Source,
			Cause: BlockAccountState, Action: st.Action, Before: st.Before, After: st.After})
	}
	slices.SortStableFunc(p.Blocked, func(a, b Blocked) int { return planCompareRegs(&a.Registration, &b.Registration) })
	p.Changes, p.SideEffects = []Step{}, []SideEffect{}
	p.Summary.Bind, p.Summary.Rebind, p.Summary.Unbind = 0, 0, 0
}

// blockSavedAccount is blockAccount for a saved plan applied later, with
// current the account as read then, and reports whether it blocked p's
// steps (p has none left to apply or to find stale). When the account is
// frozen or inactive, a change of p that it has already (an earlier apply
// of the plan made it before the account was frozen) is not blocked,
// since nothing is left to make, but left out and counted in
// p.MadeAlready; the others are blocked as blockAccount blocks them. When
// every change of p is made, none is blocked: p only records the state,
// and the check for a stale plan says it was applied already, as for an
// account that is not frozen.
func blockSavedAccount(p *Plan, current *Current) (blocked bool) {
	account := current.Account
	if account.State == "" {
		blockAccount(p, account)
		return false
	}
	made := stepsMade(p, registrationsByID(current))
	if len(p.Changes) > 0 && len(made.steps) == len(p.Changes) {
		p.AccountState, p.AccountName = account.State, account.Name
		return false
	}
	p.Changes = slices.DeleteFunc(p.Changes, func(st Step) bool { return made.steps[st.Step] })
	p.MadeAlready = len(made.steps)
	blockAccount(p, account)
	return true
}

// planDraft is a step before ordering and numbering.
type planDraft struct {
	reg    int32 // index into current.Registrations
	after  *Target
	reason Reason
	entry  *spec.Binding // nil for prune and undo
	source string        // where an undo step comes from, "journal:line"

	outside bool // the registration is outside the selection

	dep         int32      // the draft that must run first, -1 for none
	dependent   int32      // the draft that waits for this one, -1 for none
	displaces   int32      // registration this draft takes a user from, -1 for none
	includedFor int32      // outside the selection, but this draft waits for it; -1 for none
	blocked     string     // non-empty: not a step but a blocked change
	cause       BlockCause // the kind of blocked
	number      int        // step number, once numbered
}

// planBlocked is a blocked change before it is sorted into the plan.
type planBlocked struct {
	reg    int32
	reason string
	cause  BlockCause
	entry  *spec.Binding
	source string // as planDraft's
}

// planSource is the "file:line" of an entry, else source; "" for neither.
func planSource(b *spec.Binding, source string) string {
	if b == nil {
		return source
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
