package reconcile

import (
	"context"
	"fmt"

	"golang.org/x/sync/errgroup"

	"github.com/voxbind/voxbind/internal/english"
	"github.com/voxbind/voxbind/spec"
)

// DefaultAccountsParallelism is how many accounts a fleet run handles at
// once (the default of --accounts-parallelism).
const DefaultAccountsParallelism = 4

// FleetAccount is one account of a fleet run: its plan, or why it has none.
type FleetAccount struct {
	// Account is the account's id, and its name once it was read.
	Account AccountInfo
	// Plan is nil when Err is set.
	Plan *Plan
	// Bound counts the registrations bound when the account was read: the
	// base of the unbind guard's default limit (see CheckUnbindBound).
	Bound int
	// Displaced is what an apply journal needs of the account as read:
	// the registrations that the plan's side effects take a user from,
	// with their whole targets (see DisplacedOf).
	Displaced *Current
	// Before is what verification compares the account read back with:
	// every registration's target as read, by ids (see BeforeOf).
	Before *Before
	// Err says why the account could not be read or planned; a
	// spec.Errors when its spec does not resolve against it.
	Err error
}

// FleetPlan is the plan of every account of a fleet run, in account-id
// order. It is what a fleet plan renders, plan --out saves and apply
// executes account by account.
type FleetPlan struct {
	Accounts []FleetAccount
}

// FleetOpener gives the Account of one account of a fleet: the spec says
// which (its AccountID; 0 for the account the credentials act on).
type FleetOpener func(ctx context.Context, desired *spec.Spec) (Account, error)

// PlanFleet plans every account of desired (one spec each, as
// spec.LoadFleet groups them) with opts, parallelism accounts at a time (0 means
// DefaultAccountsParallelism): for each, open gives the account, Observe
// reads it and Diff plans it, and only the plan is kept, so that a fleet of
// a thousand large accounts never holds more than parallelism of them in
// memory. An account that cannot be opened, read or planned fails on its
// own (FleetAccount.Err) and the others go on. planned, when set, hears of
// each account as it is done, from the goroutine that planned it.
func PlanFleet(ctx context.Context, desired []*spec.Spec, open FleetOpener, opts Options, parallelism int, planned func(*FleetAccount)) *FleetPlan {
	f := &FleetPlan{Accounts: make([]FleetAccount, len(desired))}
	fleetOpts := opts
	fleetOpts.Fleet = true
	ForEachAccount(len(desired), parallelism, func(i int) {
		a := &f.Accounts[i]
		a.Account.ID = desired[i].AccountID
		a.Plan, a.Bound, a.Displaced, a.Before, a.Err = planAccount(ctx, desired[i], open, fleetOpts, &a.Account)
		if planned != nil {
			planned(a)
		}
	})
	return f
}

// planAccount opens, reads and plans one account; info gets its id and
// name as soon as they are read.
func planAccount(ctx context.Context, desired *spec.Spec, open FleetOpener, opts Options, info *AccountInfo) (*Plan, int, *Current, *Before, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, nil, nil, context.Cause(ctx)
	}
	acct, err := open(ctx, desired)
	if err != nil {
		return nil, 0, nil, nil, err
	}
	current, err := Observe(ctx, acct, desired)
	if err != nil {
		return nil, 0, nil, nil, err
	}
	*info = current.Account
	p, err := Diff(desired, current, opts)
	if err != nil {
		return nil, 0, nil, nil, err
	}
	return p, BoundCount(current), DisplacedOf(p, current), BeforeOf(current, false), nil
}

// DisplacedOf is the part of current that an apply journal of p reads
// (Journal.Start): the account, and the registrations that p's side
// effects take a user from. A fleet keeps it instead of the whole
// account.
func DisplacedOf(p *Plan, current *Current) *Current {
	out := &Current{Account: current.Account}
	if len(p.SideEffects) == 0 {
		return out
	}
	displaced := make(map[int64]bool, len(p.SideEffects))
	for _, e := range p.SideEffects {
		displaced[e.Registration.ID] = true
	}
	for _, r := range current.Registrations {
		if displaced[r.ID] {
			out.Registrations = append(out.Registrations, r)
		}
	}
	return out
}

// ForEachAccount calls do(i) for every i below n, at most parallelism at
// once (0 means DefaultAccountsParallelism), and returns when all are
// done: the one bounded fan-out of a fleet run. do handles its own
// errors: one account's failure must not stop the others.
func ForEachAccount(n, parallelism int, do func(i int)) {
	if parallelism <= 0 {
		parallelism = DefaultAccountsParallelism
	}
	var g errgroup.Group
	g.SetLimit(parallelism)
	for i := range n {
		g.Go(func() error { do(i); return nil })
	}
	g.Wait()
}

// FleetSummary counts a fleet plan: its accounts, and the changes of those
// that were planned.
type FleetSummary struct {
	Accounts    int `json:"accounts"`
	WithChanges int `json:"with_changes"`
	Failed      int `json:"failed"`  // accounts that could not be read or planned
	Blocked     int `json:"blocked"` // blocked changes, every account's
	Bind        int `json:"bind"`
	Rebind      int `json:"rebind"`
	Unbind      int `json:"unbind"`
	Unchanged   int `json:"unchanged"`
	Unmanaged   int `json:"unmanaged"`
}

// Summary totals the fleet.
func (f *FleetPlan) Summary() FleetSummary {
	s := FleetSummary{Accounts: len(f.Accounts)}
	for _, a := range f.Accounts {
		if a.Plan == nil {
			s.Failed++
			continue
		}
		p := a.Plan
		if !p.Empty() {
			s.WithChanges++
		}
		s.Blocked += len(p.Blocked)
		s.Bind += p.Summary.Bind
		s.Rebind += p.Summary.Rebind
		s.Unbind += p.Summary.Unbind
		s.Unchanged += p.Summary.Unchanged
		s.Unmanaged += p.Summary.Unmanaged
	}
	return s
}

// Blocked lists the blocked changes of every planned account.
func (f *FleetPlan) Blocked() []Blocked {
	var out []Blocked
	for _, a := range f.Accounts {
		if a.Plan != nil {
			out = append(out, a.Plan.Blocked...)
		}
	}
	return out
}

// Changes counts the steps of every planned account.
func (f *FleetPlan) Changes() int {
	n := 0
	for _, a := range f.Accounts {
		if a.Plan != nil {
			n += len(a.Plan.Changes)
		}
	}
	return n
}

// Line is the fleet's summary line: "Fleet: 3 accounts, 1 with changes,
// 1 failed."
func (s FleetSummary) Line() string {
	return fmt.Sprintf("Fleet: %s, %d with changes, %d failed.", english.Plural(s.Accounts, "account"), s.WithChanges, s.Failed)
}

// SelectsNothing names every selector (--only, --except) that matches no
// registration of any account that was planned, and, when each matches
// somewhere, a selection that leaves no registration in scope in any
// planned account: a typo must not silently select nothing. A selector
// that matches in some accounts only is fine, and so is a selection that
// leaves some account's registrations in scope. It returns nil when there
// is no such problem, or no account was planned.
func (f *FleetPlan) SelectsNothing() error {
	planned, empty := 0, 0
	unmatched := map[string]int{}
	var order []string
	var selection *PlanSelection
	for _, a := range f.Accounts {
		if a.Plan == nil {
			continue
		}
		planned++
		selection = a.Plan.Selection
		if a.Plan.NothingInScope {
			empty++
		}
		for _, sel := range a.Plan.Unmatched {
			if unmatched[sel] == 0 {
				order = append(order, sel)
			}
			unmatched[sel]++
		}
	}
	accounts := fmt.Sprintf("of the %d %s planned", planned, english.Choose(planned, "account", "accounts"))
	var e SelectionError
	for _, sel := range order {
		if unmatched[sel] == planned {
			e.add(sel, "matches no registration of any "+accounts+"; check it against the accounts: voxbind export lists every registration")
		}
	}
	if len(e.Problems) == 0 && planned > 0 && empty == planned && selection != nil {
		e.addSelection(selection.flags(), "leaves no registration in scope in any "+accounts+"; check the selectors against the accounts: voxbind export lists every registration")
	}
	if len(e.Problems) == 0 {
		return nil
	}
	return &e
}

// FleetDriftLine is DriftLine for a fleet: the changes of every planned
// account, those blocked, the drift that exceptions hide in them, and
// when the soonest of those exceptions ends.
func FleetDriftLine(f *FleetPlan) string {
	all := &Plan{Blocked: f.Blocked()}
	for _, a := range f.Accounts {
		if a.Plan != nil {
			all.Changes = append(all.Changes, a.Plan.Changes...)
			all.Ignored = append(all.Ignored, a.Plan.Ignored...)
		}
	}
	return DriftLine(all)
}

// fleetLabel is "account 1000002 (demo-child1)", or without the name when
// it was not read.
func fleetLabel(a AccountInfo) string {
	s := fmt.Sprintf("account %d", a.ID)
	if a.Name != "" {
		s += " (" + Printable(a.Name) + ")"
	}
	return s
}
