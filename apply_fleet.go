package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/voxbind/voxbind/internal/english"
	"github.com/voxbind/voxbind/reconcile"
	"github.com/voxbind/voxbind/spec"
)

// fleetRefusal is an account of a fleet apply that voxbind will not write
// to, and why.
type fleetRefusal struct {
	account reconcile.AccountInfo
	why     string
}

// fleetChecks refuses what a fleet apply cannot do, before anything is
// read: one --journal FILE for several accounts, and -o json.
func (c *ApplyCmd) fleetChecks(events *applyEvents) error {
	if events != nil {
		return failure(codeUsage, "-o json gives the events of one account's apply, and these are several accounts",
			"apply the fleet with text output (voxbind plan -f … -o json gives the fleet's plan as JSON), or apply one account with --account-id ID -o json")
	}
	if c.Journal.Journal != "" {
		return failure(codeUsage, fmt.Sprintf("--journal %s names one file, but a fleet run writes a journal for each account; nothing was changed", c.Journal.Journal),
			fmt.Sprintf("leave it out (they go to $%s, else %s, each named by its account and the time), or give --no-journal", journalDirEnv, journalDefaultDir))
	}
	return nil
}

// runFleetSpec applies the spec files of a fleet run: it plans every
// account, prints the fleet plan, and applies it (applyFleetPlan).
func (c *ApplyCmd) runFleetSpec(ctx context.Context, s *session, intr *interrupts, events *applyEvents, specs []*spec.Spec, opts reconcile.Options) error {
	if err := c.fleetChecks(events); err != nil {
		return err
	}
	fc, err := c.openFleetClients(ctx, s, c.Rate, nil, c.AccountsParallelism)
	if err != nil {
		return err
	}
	defer fc.close(s)
	f, err := planFleet(ctx, s, fc, specs, opts, c.AccountsParallelism)
	if err != nil {
		return err
	}
	if err := reconcile.RenderFleetText(s.stdio.Out, f, c.color(s.stdio.Out), c.Full); err != nil {
		return fmt.Errorf("write the plan: %w", err)
	}
	return c.applyFleetPlan(ctx, s, intr, fc, f)
}

// applyFleetPlan carries out a fleet plan just made (by apply or undo)
// and printed: it leaves out the accounts it must refuse (not planned,
// blocked changes, too many unbinds) and names them, asks once for the
// others (unless --auto-approve), and applies them.
func (c *ApplyCmd) applyFleetPlan(ctx context.Context, s *session, intr *interrupts, fc *fleetClients, f *reconcile.FleetPlan) error {
	var refused []fleetRefusal
	var todo []int // the accounts to apply, indexes into f.Accounts
	for i, a := range f.Accounts {
		switch {
		case a.Plan == nil:
			refused = append(refused, fleetRefusal{a.Account, "not planned (its section of the plan says why)"})
		case len(a.Plan.Blocked) > 0:
			refused = append(refused, fleetRefusal{a.Account, english.Plural(len(a.Plan.Blocked), "change") + " blocked (see the plan)"})
		case a.Plan.Empty():
		default:
			if err := reconcile.CheckUnbindBound(a.Plan, a.Bound, c.maxUnbind(), c.Force); err != nil {
				refused = append(refused, fleetRefusal{a.Account, err.Error()})
				continue
			}
			todo = append(todo, i)
		}
	}
	fleetDiagnostics(s, f)
	for _, r := range refused {
		fmt.Fprintf(s.stdio.Err, "voxbind: %s: refused, nothing is changed in it: %s\n", fleetAccountLabel(r.account), r.why)
	}
	if len(todo) == 0 {
		if len(refused) > 0 {
			return exitCode(1, failure(codeFleetFailed, fmt.Sprintf("%d of %s refused, and no other account has changes; nothing was changed",
				len(refused), english.Plural(len(f.Accounts), "account")), ""))
		}
		return nil // every section says "No changes."
	}
	if !c.AutoApprove {
		changes := 0
		for _, i := range todo {
			changes += len(f.Accounts[i].Plan.Changes)
		}
		if err := applyConfirm(ctx, s.stdio, applyQuestion(changes, english.Plural(len(todo), "account"))); err != nil {
			return err
		}
	}
	return c.executeFleet(ctx, s, intr, fc, f, todo, refused)
}

// runFleetSaved applies a fleet plan saved by plan --out. It reads every
// account first and refuses the whole plan, naming each account and what
// changed, when any account is stale, cannot be read, or unbinds too
// many: nothing is written to any account then. Otherwise it applies
// exactly the saved steps, without asking. (With --account-id, runSaved
// applies that account's part as the plan of one account.)
func (c *ApplyCmd) runFleetSaved(ctx context.Context, s *session, intr *interrupts, events *applyEvents, f *reconcile.FleetPlan) error {
	if err := c.fleetChecks(events); err != nil {
		return err
	}
	var blocked []int64
	for _, a := range f.Accounts {
		if len(a.Plan.Blocked) > 0 {
			blocked = append(blocked, a.Account.ID)
		}
	}
	if len(blocked) > 0 {
		return exitCode(1, failure(codeBlocked, fmt.Sprintf("plan %s: %s blocked changes: apply refuses this plan until they are resolved; nothing was changed", c.Plan, spec.AccountList(blocked)), ""))
	}
	fc, err := c.openFleetClients(ctx, s, c.Rate, nil, c.AccountsParallelism)
	if err != nil {
		return err
	}
	defer fc.close(s)

	refusals := make([]error, len(f.Accounts))
	done := s.phase(fmt.Sprintf("Reading %s to check the plan, %d at a time", english.Plural(len(f.Accounts), "account"), min(c.AccountsParallelism, len(f.Accounts))))
	reconcile.ForEachAccount(len(f.Accounts), c.AccountsParallelism, func(i int) {
		refusals[i] = c.checkSaved(ctx, fc, &f.Accounts[i])
	})
	done()
	if err := ctx.Err(); err != nil {
		return context.Cause(ctx)
	}
	if err := reconcile.RenderFleetText(s.stdio.Out, f, c.color(s.stdio.Out), c.Full); err != nil {
		return fmt.Errorf("write the plan: %w", err)
	}
	if err := c.savedRefusal(s, f, refusals); err != nil {
		return err
	}
	var todo []int
	for i, a := range f.Accounts {
		if !a.Plan.Empty() {
			todo = append(todo, i)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	return c.executeFleet(ctx, s, intr, fc, f, todo, nil)
}

// accountOfFleetPlan is the part of the saved fleet plan f for the
// account --account-id names.
func (c *ApplyCmd) accountOfFleetPlan(f *reconcile.FleetPlan) (*reconcile.Plan, error) {
	ids := make([]int64, len(f.Accounts))
	for i, a := range f.Accounts {
		if a.Account.ID == c.AccountID {
			return a.Plan, nil
		}
		ids[i] = a.Account.ID
	}
	return nil, failure(string(spec.CodeAccountMismatch), fmt.Sprintf("--account-id %d: plan %s has no plan for account %d; it is for %s; nothing was changed", c.AccountID, c.Plan, c.AccountID, spec.AccountList(ids)),
		"give one of those accounts, or leave out --account-id to apply them all")
}

// savedRefusal names each account of the saved fleet plan f that
// checkSaved refused (refusals, by account), and returns the refusal of
// the whole plan, nil when none was refused. When every account was
// refused for unbinding too many, the fix is --max-unbind or --force: a
// new plan would unbind as many.
func (c *ApplyCmd) savedRefusal(s *session, f *reconcile.FleetPlan, refusals []error) error {
	var refused []int64
	tooMany, most := 0, 0 // accounts refused by the guard, the most one of them unbinds
	for i, err := range refusals {
		if err == nil {
			continue
		}
		refused = append(refused, f.Accounts[i].Account.ID)
		fmt.Fprintf(s.stdio.Err, "voxbind: %s: %v\n", fleetAccountLabel(f.Accounts[i].Account), err)
		if errors.Is(err, reconcile.ErrTooManyUnbinds) {
			steps, displaced := reconcile.Unbinds(f.Accounts[i].Plan)
			tooMany, most = tooMany+1, max(most, steps+displaced)
		}
	}
	if len(refused) == 0 {
		return nil
	}
	code, fix := codeStalePlan, "make a new plan with voxbind plan --out FILE, check it, and apply that"
	switch {
	case tooMany == len(refused):
		code, fix = codeMaxUnbind, fmt.Sprintf("if those unbinds are what you want, check the plan, then run again with --max-unbind %d or --force", most)
	case tooMany > 0:
		fix += fmt.Sprintf(" (with --max-unbind N or --force if its unbinds are what you want: this one unbinds up to %d in an account)", most)
	}
	return exitCode(1, failure(code, fmt.Sprintf("plan %s is refused for %s (above); nothing was changed in any account", c.Plan, spec.AccountList(refused)), fix))
}

// checkSaved reads one account of a saved fleet plan and says why its
// part of the plan must be refused, nil when it may be applied; a
// refusal by the mass-unbind guard wraps reconcile.ErrTooManyUnbinds.
func (c *ApplyCmd) checkSaved(ctx context.Context, fc *fleetClients, a *reconcile.FleetAccount) error {
	acct, err := fc.client(a.Plan.AccountID, "the plan "+c.Plan)
	if err != nil {
		return err
	}
	current, err := reconcile.ObservePlan(ctx, acct, a.Plan)
	if err != nil {
		return fmt.Errorf("cannot read the account: %w", cannotActMessage(err))
	}
	a.Account, a.Displaced = current.Account, reconcile.DisplacedOf(a.Plan, current)
	if stale := reconcile.Stale(a.Plan, current); len(stale) > 0 {
		return errors.New(applyStaleMessage(c.Plan, "this account", stale))
	}
	return reconcile.CheckUnbind(a.Plan, current, c.maxUnbind(), c.Force)
}

// executeFleet applies the plans of the accounts todo (indexes into
// f.Accounts, in account-id order) --accounts-parallelism at a time, each
// as one account is applied (with its own journal, steps and
// verification), then prints each account's summary and the fleet's
// line (fleetSummary). refused are the accounts left out. When one
// account's apply finds the API unreachable (the breaker), the accounts
// not yet started are not started either.
func (c *ApplyCmd) executeFleet(ctx context.Context, s *session, intr *interrupts, fc *fleetClients, f *reconcile.FleetPlan, todo []int, refused []fleetRefusal) error {
	changes := 0
	for _, i := range todo {
		changes += len(f.Accounts[i].Plan.Changes)
	}
	fmt.Fprintf(s.stdio.Err, "Applying %s to %s, %s at a time and at most %s at a time in each.\n",
		english.Plural(changes, "change"), english.Plural(len(todo), "account"),
		english.Plural(min(c.AccountsParallelism, len(todo)), "account"), english.Plural(c.Parallelism, "step"))
	progress := s.progressLine()
	progress.StartFleet(len(todo), changes)
	stopTicking := s.ticking()
	fleetCtx, stopFleet := context.WithCancelCause(ctx)
	defer stopFleet(nil)
	var stopping sync.Once
	results := make([]*appliedAccount, len(todo))
	reconcile.ForEachAccount(len(todo), c.AccountsParallelism, func(k int) {
		a := &f.Accounts[todo[k]]
		acct, err := fc.client(a.Account.ID, "")
		if err != nil { // opened while planning: cannot fail now
			results[k] = &appliedAccount{readErr: err}
			return
		}
		e := execution{parallelism: c.Parallelism, journal: c.Journal}
		if fleetCtx.Err() != nil {
			e.journal.NoJournal = true // stopped before it starts: nothing to journal
		}
		r := applyAccount(fleetCtx, s, intr, acct, a.Displaced, a.Plan, accountRun{
			execution: e,
			progress:  progress.Account(a.Account),
			stopping: func(cause error, inFlight int) {
				stopping.Do(func() { progress.Note(stoppingLine(cause, 0)) })
			},
			started: func(journal string) {
				if journal != "" {
					progress.Note(fleetAccountLabel(a.Account) + ": Journal: " + journal)
				}
			},
		})
		var unreachable *reconcile.UnreachableError
		if errors.As(r.res.Stopped, &unreachable) {
			stopFleet(r.res.Stopped) // the breaker: the API is gone for every account
		}
		progress.AccountDone()
		results[k] = r
	})
	stopTicking()
	progress.Finish()
	return fleetSummary(s, f, todo, results, refused)
}

// fleetSummary prints how the apply of each account of todo ended, in
// account-id order (the accounts none of whose steps started in one
// line), the refused accounts, and the fleet's line, always last; and
// returns the exit status: 130 interrupted, 1 unless every account was
// applied and verified or had no changes.
func fleetSummary(s *session, f *reconcile.FleetPlan, todo []int, results []*appliedAccount, refused []fleetRefusal) error {
	stderr := s.stdio.Err
	var counts fleetApplyCounts
	counts.refused = len(refused)
	counts.unchanged = len(f.Accounts) - len(todo) - len(refused)
	var stopped error      // why accounts stopped early, when some did
	var notStarted []int64 // accounts none of whose steps started
	for k, i := range todo {
		a, r := &f.Accounts[i], results[k]
		if r.res.Stopped != nil {
			stopped = r.res.Stopped
		}
		if r.res.Stopped != nil && r.res.NotStarted == len(a.Plan.Changes) && r.readErr == nil {
			notStarted = append(notStarted, a.Account.ID) // listed in one line below
			continue
		}
		fmt.Fprintf(stderr, "%s:\n", fleetAccountLabel(a.Account))
		var b bytes.Buffer
		switch {
		case r.journalErr != nil:
			fmt.Fprintf(&b, "voxbind: %v\n", r.journalErr)
		case r.readErr != nil && r.res.Outcomes == nil:
			fmt.Fprintf(&b, "voxbind: %v\n", r.readErr)
		default:
			if st := r.stats; st.Retries > 0 {
				fmt.Fprintf(&b, "The API was slow, busy or unreachable: %d of %d requests were repeats (%d rate-limit answers).\n", st.Retries, st.Requests, st.RateLimited)
			}
			if err := reconcile.RenderApplySummary(&b, a.Plan, &r.res, r.applied, r.mismatches, r.verified, r.journal); err != nil {
				return err
			}
			if r.readErr != nil {
				fmt.Fprintf(&b, "voxbind: verify: read the account back: %v\n", r.readErr)
			}
		}
		io.WriteString(stderr, indent(b.String(), "  "))
		switch {
		case r.res.Stopped != nil:
			counts.stopped++
		case r.ok():
			counts.applied++
		default:
			counts.failed++
		}
	}
	if len(notStarted) > 0 {
		counts.notStarted = len(notStarted)
		fmt.Fprintf(stderr, "Not started (%s): %s (%s)\n", reconcile.StopReason(stopped), english.Plural(len(notStarted), "account"), accountIDs(notStarted))
	}
	for _, r := range refused {
		fmt.Fprintf(stderr, "%s: refused: %s\n", fleetAccountLabel(r.account), firstLine(r.why))
	}
	line := counts.line(len(f.Accounts), stopped)
	fmt.Fprintln(stderr, line)
	switch {
	case errors.Is(stopped, errInterrupted):
		return exitCode(130, nil)
	case counts.applied+counts.unchanged < len(f.Accounts):
		s.diag.add(Diagnostic{Severity: "error", Code: codeFleetFailed, Message: line,
			Fix: "see each account's summary above; voxbind plan shows what is left to do"})
		return exitCode(1, nil) // the last line says what
	}
	return nil
}

// fleetApplyCounts counts the accounts of a fleet apply by how they ended.
type fleetApplyCounts struct {
	applied    int // every step applied and verified
	unchanged  int // no changes
	failed     int // a step not applied, a difference, or the account not read back
	stopped    int // stopped part-way (interrupt, --timeout, the breaker)
	refused    int // not planned, blocked, or too many unbinds
	notStarted int // stopped before any of its steps started
}

// line is the last line of a fleet apply, for scripts to grep:
//
//	Fleet apply: 4 accounts: 2 applied, 1 without changes, 1 failed, 0 stopped, 0 refused, 0 not started.
//	Fleet apply interrupted: 6 accounts: 0 applied, 0 without changes, 0 failed, 2 stopped, 0 refused, 4 not started.
func (n fleetApplyCounts) line(accounts int, stopped error) string {
	head := "Fleet apply"
	switch {
	case stopped == nil:
	case errors.Is(stopped, context.Canceled):
		head += " interrupted"
	default:
		head += " stopped (" + stopped.Error() + ")"
	}
	return fmt.Sprintf("%s: %s: %d applied, %d without changes, %d failed, %d stopped, %d refused, %d not started.",
		head, english.Plural(accounts, "account"), n.applied, n.unchanged, n.failed, n.stopped, n.refused, n.notStarted)
}

// indent puts prefix before every line of s.
func indent(s, prefix string) string {
	if s == "" {
		return s
	}
	lines := strings.SplitAfter(s, "\n")
	var b strings.Builder
	for _, l := range lines {
		if l != "" {
			b.WriteString(prefix + l)
		}
	}
	return b.String()
}

// firstLine is s up to its first newline.
func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
