package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/voxbind/voxbind/internal/english"
	"github.com/voxbind/voxbind/reconcile"
	"github.com/voxbind/voxbind/spec"
)

// fleetRefusal is an account of a fleet apply that voxbind will not write
// to, and why.
type fleetRefusal struct {
	account reconcile.AccountInfo
	why     string
	diags   []Diagnostic // the account's own problems, named with it
	fix     string       // what to do, when why does not say it
}

// fleetChecks refuses what a fleet apply cannot do, before anything is
// read: one --journal FILE for several accounts.
func (c *ApplyCmd) fleetChecks() error {
	if c.Journal.Journal != "" {
		return failure(codeUsage, fmt.Sprintf("--journal %s names one file, but a fleet run writes a journal for each account; nothing was changed", c.Journal.Journal),
			fmt.Sprintf("leave it out (they go to $%s, else %s, each named by its account and the time), or give --no-journal", journalDirEnv, journalDefaultDir))
	}
	return nil
}

// runFleetSpec applies the spec files of a fleet run: it plans every
// account, prints the fleet plan, and applies it (applyFleetPlan).
func (c *ApplyCmd) runFleetSpec(ctx context.Context, s *session, intr *interrupts, events *applyEvents, specs []*spec.Spec, opts reconcile.Options) error {
	if err := c.fleetChecks(); err != nil {
		return err
	}
	fc, err := c.openFleetClients(ctx, s, c.Rate, events.onRetry(), c.AccountsParallelism)
	if err != nil {
		return err
	}
	defer fc.close(s)
	f, err := planFleet(ctx, s, fc, specs, opts, c.AccountsParallelism)
	if err != nil {
		return err
	}
	if err := c.showFleetPlan(s, f, events); err != nil {
		return err
	}
	return c.applyFleetPlan(ctx, s, intr, fc, f, events)
}

// showFleetPlan prints the fleet plan on stdout: as text, or (-o json)
// as the plan line of each account that was planned.
func (c *ApplyCmd) showFleetPlan(s *session, f *reconcile.FleetPlan, events *applyEvents) error {
	if events != nil {
		for i := range f.Accounts {
			if f.Accounts[i].Plan != nil {
				events.fleetPlan(&f.Accounts[i])
			}
		}
		return nil
	}
	if err := reconcile.RenderFleetText(s.stdio.Out, f, c.color(s.stdio.Out), c.Full); err != nil {
		return fmt.Errorf("write the plan: %w", err)
	}
	return nil
}

// applyFleetPlan carries out a fleet plan just made (by apply or undo)
// and printed: it leaves out the accounts it must refuse (not planned,
// blocked changes, too many unbinds) and names them, asks once for the
// others (unless --auto-approve), and applies them.
func (c *ApplyCmd) applyFleetPlan(ctx context.Context, s *session, intr *interrupts, fc *fleetClients, f *reconcile.FleetPlan, events *applyEvents) error {
	var refused []fleetRefusal
	var todo []int // the accounts to apply, indexes into f.Accounts
	for i, a := range f.Accounts {
		if a.Plan != nil && len(a.Plan.Blocked) == 0 && a.Plan.Empty() {
			continue
		}
		if r := c.fleetRefuse(&f.Accounts[i], c.maxUnbind(s.given)); r != nil {
			refused = append(refused, *r)
			continue
		}
		todo = append(todo, i)
	}
	c.reportRefused(s, refused, events)
	if len(todo) == 0 {
		return c.nothingLeft(s, f, refused, events)
	}
	journals, err := c.fleetJournals(s, f, todo)
	if err != nil {
		return err
	}
	if !c.AutoApprove {
		changes := 0
		for _, i := range todo {
			changes += len(f.Accounts[i].Plan.Changes)
		}
		if err := applyConfirm(ctx, s.stdio, applyQuestion(changes, english.Plural(len(todo), "account")), c.asker()); err != nil {
			fleetDiscardJournals(s, journals)
			return err
		}
	}
	return c.executeFleet(ctx, s, intr, fc, f, todo, refused, journals, events)
}

// reportRefused names each account of a fleet apply that is refused,
// with why, on stderr and in the diagnostics (and -o json events).
func (c *ApplyCmd) reportRefused(s *session, refused []fleetRefusal, events *applyEvents) {
	for _, r := range refused {
		why := r.why
		if r.fix != "" {
			why += "; " + r.fix
		}
		fmt.Fprintf(s.stdio.Err, "voxbind: %s: refused, nothing is changed in it: %s\n", fleetAccountLabel(r.account), s.shown(why))
		for _, d := range r.diags {
			s.diag.add(d)
		}
		if events != nil {
			events.refused(r.account, r.why, r.diags)
		}
	}
}

// nothingLeft ends a fleet apply that has no account left to apply:
// exit 1 when some were refused, else every section says "No changes.".
func (c *ApplyCmd) nothingLeft(s *session, f *reconcile.FleetPlan, refused []fleetRefusal, events *applyEvents) error {
	if len(refused) > 0 {
		return exitCode(1, failure(codeFleetFailed, fmt.Sprintf("%d of %s refused, and no other account has changes; nothing was changed",
			len(refused), english.Plural(len(f.Accounts), "account")), ""))
	}
	fleetNothingToDo(s, f, events)
	return nil
}

// fleetRefuse says why the account a of a fleet plan just made must be
// left out of the apply (not planned, blocked changes, too many
// unbinds than maxUnbind allows), with its diagnostics; nil when it may
// be applied.
func (c *ApplyCmd) fleetRefuse(a *reconcile.FleetAccount, maxUnbind reconcile.MaxUnbind) *fleetRefusal {
	named := func(d Diagnostic) Diagnostic {
		d.Message = fleetAccountLabel(a.Account) + ": " + d.Message
		return d
	}
	switch {
	case a.Plan == nil:
		return &fleetRefusal{a.Account, "not planned (its section of the plan says why)", accountDiagnostics(a), ""}
	case len(a.Plan.Blocked) > 0:
		return blockedRefusal(a)
	}
	if err := reconcile.CheckUnbindBound(a.Plan, a.Bound, maxUnbind, c.Force); err != nil {
		return &fleetRefusal{a.Account, err.Error(), []Diagnostic{named(diagnosticOf(err))}, ""}
	}
	return nil
}

// fleetFailedFix is the way on after a fleet apply that did not apply
// every account: what its refused accounts need first, then the undo
// again (of every account's journal) after an undo, or plan, which shows
// what is left.
func fleetFailedFix(f *reconcile.FleetPlan, refused []fleetRefusal) string {
	fix, then, except := "see each account's summary above; ", "", ""
	for _, r := range refused {
		if r.fix != "" {
			fix += "first, for " + fleetAccountLabel(r.account) + ": " + r.fix + "; "
			then = "then "
		}
		if strings.Contains(r.fix, "--except id=") && !strings.Contains(r.fix, "--except id=N") {
			except = " (with those --except flags, to leave them out)"
		}
	}
	plans := make([]*reconcile.Plan, len(f.Accounts))
	for i, a := range f.Accounts {
		plans[i] = a.Plan
	}
	if kind, command := remakeCommand(plans); kind == "undo plan" {
		return fix + then + "run " + command + " again" + except + ": the undo restores only what is left"
	}
	return fix + then + "voxbind plan shows what is left to do"
}

// blockedRefusal is the refusal of the account a of a fleet plan whose
// plan has blocked changes.
func blockedRefusal(a *reconcile.FleetAccount) *fleetRefusal {
	why := blockedCount(a.Plan)
	if st := a.Plan.AccountState; st != "" {
		why = "the account is " + st + ": " + why
	}
	fix := blockedFix(a.Plan.Blocked)
	return &fleetRefusal{a.Account, why, []Diagnostic{{Severity: "error", Code: codeBlocked,
		Message: fleetAccountLabel(a.Account) + ": " + why, Fix: fix}}, fix}
}

// fleetNothingToDo ends a fleet apply none of whose accounts has
// changes; -o json still ends with the fleet's summary.
func fleetNothingToDo(s *session, f *reconcile.FleetPlan, events *applyEvents) {
	if events != nil {
		events.fleetSummary(fleetApplyCounts{unchanged: len(f.Accounts)}, len(f.Accounts), nil, 0, s.diag.diagnostics())
		s.diag.written = true
	}
}

// fleetJournals creates the journals of the accounts todo (indexes into
// f.Accounts), one each, before the question: a journal that cannot be
// created refuses the whole run before anyone answers. The slice is
// parallel to todo; nil entries with --no-journal.
func (c *ApplyCmd) fleetJournals(s *session, f *reconcile.FleetPlan, todo []int) ([]*reconcile.Journal, error) {
	journals := make([]*reconcile.Journal, len(todo))
	now := time.Now()
	for k, i := range todo {
		j, err := c.Journal.create(f.Accounts[i].Plan.AccountID, now, true)
		if err != nil {
			fleetDiscardJournals(s, journals[:k])
			return nil, err
		}
		journals[k] = j
	}
	return journals, nil
}

// fleetDiscardJournals removes the journals of a fleet run that went no
// further, the last created first (so that a directory made for the
// first is empty by the time its turn comes).
func fleetDiscardJournals(s *session, journals []*reconcile.Journal) {
	for k := len(journals) - 1; k >= 0; k-- {
		journalDiscard(s, journals[k])
	}
}

// runFleetSaved applies a fleet plan saved by plan --out. It reads every
// account first and refuses the whole plan, naming each account and what
// changed, when any account is stale, cannot be read, or unbinds too
// many: nothing is written to any account then. Otherwise it applies
// exactly the saved steps, without asking. (With --account-id, runSaved
// applies that account's part as the plan of one account.)
func (c *ApplyCmd) runFleetSaved(ctx context.Context, s *session, intr *interrupts, events *applyEvents, f *reconcile.FleetPlan) error {
	if err := c.fleetChecks(); err != nil {
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
	fc, err := c.openFleetClients(ctx, s, c.Rate, events.onRetry(), c.AccountsParallelism)
	if err != nil {
		return err
	}
	defer fc.close(s)

	again := c.applyPlanCommand(s.given, c.Plan) // pasted, applies this plan again
	maxUnbind := c.maxUnbind(s.given)
	refusals := make([]error, len(f.Accounts))
	done := s.phase(fmt.Sprintf("Reading %s to check the plan, %d at a time", english.Plural(len(f.Accounts), "account"), min(c.AccountsParallelism, len(f.Accounts))))
	reconcile.ForEachAccount(len(f.Accounts), c.AccountsParallelism, func(i int) {
		refusals[i] = c.checkSaved(ctx, fc, &f.Accounts[i], maxUnbind, again)
	})
	done()
	if err := ctx.Err(); err != nil {
		return context.Cause(ctx)
	}
	if err := c.showFleetPlan(s, f, events); err != nil {
		return err
	}
	// An account frozen or deactivated since the plan was made (checkSaved
	// blocked its steps) is refused on its own, and named first, also when
	// the whole plan is refused below; the others go on.
	var todo []int
	var refused []fleetRefusal
	for i, a := range f.Accounts {
		switch {
		case len(a.Plan.Blocked) > 0:
			refused = append(refused, *blockedRefusal(&f.Accounts[i]))
		case !a.Plan.Empty():
			todo = append(todo, i)
		}
	}
	c.reportRefused(s, refused, events)
	if err := c.savedRefusal(s, f, refusals); err != nil {
		return err
	}
	if len(todo) == 0 {
		return c.nothingLeft(s, f, refused, events)
	}
	journals, err := c.fleetJournals(s, f, todo)
	if err != nil {
		return err
	}
	return c.executeFleet(ctx, s, intr, fc, f, todo, refused, journals, events)
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
// new plan would unbind as many. Only when every account with changes in
// the plan has them all made already is nothing left to apply; else a new
// plan has the rest.
func (c *ApplyCmd) savedRefusal(s *session, f *reconcile.FleetPlan, refusals []error) error {
	var refused []int64
	tooMany, most := 0, 0  // accounts refused by the guard, the most one of them unbinds
	made, done := false, 0 // some refused account has changes made already; accounts with all made
	left := 0              // accounts not refused whose changes are still to make (or blocked)
	for i, err := range refusals {
		if err == nil {
			if p := f.Accounts[i].Plan; len(p.Changes) > 0 || len(p.Blocked) > 0 {
				left++
			}
			continue
		}
		refused = append(refused, f.Accounts[i].Account.ID)
		fmt.Fprintf(s.stdio.Err, "voxbind: %s: %s\n", fleetAccountLabel(f.Accounts[i].Account), s.shown(err.Error()))
		var st *staleRefusal
		if errors.As(err, &st) {
			made = made || st.made
			if st.done {
				done++
			}
		}
		if errors.Is(err, reconcile.ErrTooManyUnbinds) {
			steps, displaced := reconcile.Unbinds(f.Accounts[i].Plan)
			tooMany, most = tooMany+1, max(most, steps+displaced)
		}
	}
	if len(refused) == 0 {
		return nil
	}
	plans := make([]*reconcile.Plan, len(f.Accounts))
	for i, a := range f.Accounts {
		plans[i] = a.Plan
	}
	code, fix := codeStalePlan, remakeFix(made, plans...)
	undo := slices.ContainsFunc(plans, func(p *reconcile.Plan) bool { return p != nil && p.Journal != "" })
	switch {
	case done == len(refused) && left == 0:
		fix = doneFix(plans...)
	case tooMany == len(refused) && undo: // an undo plan, reviewed already
		code, fix = codeMaxUnbind, fmt.Sprintf("if those unbinds are what you want, run %s --max-unbind %d (or --force)", c.applyPlanCommand(s.given, c.Plan), most)
	case tooMany == len(refused):
		code, fix = codeMaxUnbind, fmt.Sprintf("if those unbinds are what you want, check the plan, then run again with --max-unbind %d or --force", most)
	case tooMany > 0:
		fix += fmt.Sprintf(" (with --max-unbind N or --force if its unbinds are what you want: this one unbinds up to %d in an account)", most)
	}
	return exitCode(1, failure(code, fmt.Sprintf("plan %s is refused for %s (above); nothing was changed in any account", c.Plan, spec.AccountList(refused)), fix))
}

// checkSaved reads one account of a saved fleet plan and says why its
// part of the plan must be refused, nil when it may be applied; a
// refusal by the mass-unbind guard (its limit maxUnbind) wraps
// reconcile.ErrTooManyUnbinds and says to run again, the command that
// applies the plan, with --max-unbind.
func (c *ApplyCmd) checkSaved(ctx context.Context, fc *fleetClients, a *reconcile.FleetAccount, maxUnbind reconcile.MaxUnbind, again string) error {
	acct, err := fc.client(a.Plan.AccountID, "the plan "+c.Plan)
	if err != nil {
		return err
	}
	current, err := reconcile.ObservePlan(ctx, acct, a.Plan)
	if err != nil {
		return fmt.Errorf("cannot read the account: %w", cannotActMessage(err))
	}
	a.Account, a.Displaced, a.Before = current.Account, reconcile.DisplacedOf(a.Plan, current), reconcile.BeforeOf(current, false)
	// An account frozen or deactivated since the plan was made: its steps
	// not made yet are blocked, none is left to be stale, and
	// runFleetSaved refuses it alone.
	stale := reconcile.SavedStale(a.Plan, current)
	if len(stale) > 0 {
		return &staleRefusal{msg: applyStaleMessage(c.Plan, "this account", a.Plan, stale),
			made: reconcile.MadeSteps(stale) > 0, done: appliedAlready(a.Plan, stale)}
	}
	return reconcile.CheckSavedUnbind(a.Plan, current, maxUnbind, c.Force, again)
}

// staleRefusal refuses an account's part of a saved fleet plan as stale;
// made is set when some of its changes are made already, done when all
// are and nothing else changed.
type staleRefusal struct {
	msg        string
	made, done bool
}

func (e *staleRefusal) Error() string { return e.msg }

// executeFleet applies the plans of the accounts todo (indexes into
// f.Accounts, in account-id order) --accounts-parallelism at a time, each
// as one account is applied (with its own journal, from journals, which
// is parallel to todo; its steps and verification), then prints each
// account's summary and the fleet's line (fleetSummary). refused are the
// accounts left out. When one account's apply finds the API unreachable
// (the breaker), the accounts not yet started are not started either,
// and their journals are removed. With -o json (events), each account's
// summary line is written as it ends.
func (c *ApplyCmd) executeFleet(ctx context.Context, s *session, intr *interrupts, fc *fleetClients, f *reconcile.FleetPlan, todo []int, refused []fleetRefusal, journals []*reconcile.Journal, events *applyEvents) error {
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
	calls := fleetCalls{pending: make(map[fleetCall]bool)}
	results := make([]*appliedAccount, len(todo))
	unused := make([]*reconcile.Journal, len(todo)) // of the accounts stopped before they started
	reconcile.ForEachAccount(len(todo), c.AccountsParallelism, func(k int) {
		a := &f.Accounts[todo[k]]
		acct, err := fc.client(a.Account.ID, "")
		if err != nil { // opened while planning: cannot fail now
			results[k], unused[k] = &appliedAccount{readErr: err}, journals[k]
			return
		}
		e := execution{parallelism: c.Parallelism, journal: journals[k], events: events}
		if fleetCtx.Err() != nil {
			unused[k], e.journal = e.journal, nil // stopped before it starts: nothing to journal
		}
		accountProgress := progress.Account(a.Account)
		r := applyAccount(fleetCtx, s, intr, acct, a.Displaced, a.Before, a.Plan, accountRun{
			execution: e,
			progress: func(ev reconcile.StepEvent) {
				calls.ended(a.Account.ID, ev.Step)
				accountProgress(ev)
			},
			calling: func(st reconcile.Step) { calls.sending(a.Account.ID, st) },
			// The first account to stop for the whole fleet (Ctrl-C,
			// --timeout, the breaker) says so for the fleet, with the calls
			// in flight in every account: the others stop with it. A stop
			// of this account's own (the API answering it "try later", its
			// journal) is its own line: the others go on.
			stopping: func(cause error, inFlight int) {
				if !stopsTheFleet(cause) {
					progress.Note(accountStoppingLine(a.Account, cause, inFlight))
					return
				}
				stopping.Do(func() { progress.Note(stoppingLine(cause, calls.inFlight())) })
			},
			started: func(journal string) {
				if journal != "" {
					progress.Note(fleetAccountLabel(a.Account) + ": Journal: " + reconcile.Printable(journal))
				}
			},
		})
		var unreachable *reconcile.UnreachableError
		if errors.As(r.res.Stopped, &unreachable) {
			stopFleet(r.res.Stopped) // the breaker: the API is gone for every account
		}
		progress.AccountDone()
		results[k] = r
		if events != nil {
			accountSummaryEvent(events, a.Plan, r)
		}
	})
	stopTicking()
	progress.Finish()
	fleetDiscardJournals(s, unused)
	return fleetSummary(s, f, todo, results, refused, events)
}

// stopsTheFleet reports whether an account's apply stopped for a reason
// that stops every account of a fleet: an interrupt, --timeout, or the
// breaker (the API is gone for all). Any other stop (the API answering
// "try later" to the account, its journal) is the account's own.
func stopsTheFleet(cause error) bool {
	var unreachable *reconcile.UnreachableError
	return errors.Is(cause, context.Canceled) || errors.Is(cause, context.DeadlineExceeded) || errors.As(cause, &unreachable)
}

// accountStoppingLine is what a fleet apply says the moment one account
// stops starting steps for a reason of its own (stopsTheFleet is false),
// with that account's calls in flight; the other accounts go on.
func accountStoppingLine(account reconcile.AccountInfo, cause error, inFlight int) string {
	line := fleetAccountLabel(account) + ": stopped: " + cause.Error() + "; no more of its steps start (the other accounts go on)"
	if inFlight > 0 {
		line += fmt.Sprintf("; waiting for its %s in flight (at most %s)", english.Plural(inFlight, "call"), reconcile.DefaultGrace)
	}
	return line
}

// fleetCalls counts the calls in flight in all the accounts of a fleet
// apply: a step's call counts from just before it is sent until the step
// ends.
type fleetCalls struct {
	mu      sync.Mutex
	pending map[fleetCall]bool
}

// fleetCall is a step of an account of the fleet.
type fleetCall struct {
	account int64
	step    int
}

func (c *fleetCalls) sending(account int64, st reconcile.Step) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pending[fleetCall{account, st.Step}] = true
}

func (c *fleetCalls) ended(account int64, st reconcile.Step) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.pending, fleetCall{account, st.Step})
}

func (c *fleetCalls) inFlight() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending)
}

// accountSummaryEvent writes the summary line of one account of a fleet
// apply, p's: what its apply did, and the exit status and diagnostics
// that an apply of that account alone would have ended with.
func accountSummaryEvent(events *applyEvents, p *reconcile.Plan, r *appliedAccount) {
	applied := r.applied
	if applied == nil { // nothing was applied: no journal, or no client
		applied = &reconcile.Plan{AccountID: p.AccountID}
	}
	code, diags := 1, []Diagnostic{}
	switch {
	case r.journalErr != nil:
		diags = append(diags, diagnosticOf(r.journalErr))
	case errors.Is(r.res.Stopped, errInterrupted):
		code = 130
	case r.readErr != nil:
		diags = append(diags, diagnosticOf(fmt.Errorf("verify: read the account back: %w", r.readErr)))
	case !r.ok() || r.res.Stopped != nil:
		var b bytes.Buffer
		reconcile.RenderApplySummary(&b, p, &r.res, r.applied, r.mismatches, r.verified, r.journal)
		lines := strings.Split(strings.TrimSpace(b.String()), "\n")
		diags = append(diags, Diagnostic{Severity: "error", Code: codeApplyFailed, Message: lines[len(lines)-1], Fix: applyFailedFix(p, r.res.Stopped)})
	default:
		code = 0
	}
	events.summary(&r.res, applied, r.mismatches, r.verified, r.journal, code, diags)
}

// fleetSummary prints how the apply of each account of todo ended, in
// account-id order (the accounts none of whose steps started in one
// line), the refused accounts, and the fleet's line, always last; and
// returns the exit status: 130 interrupted, 1 unless every account was
// applied and verified or had no changes. With -o json (events), the
// fleet_summary line is the last on stdout.
func fleetSummary(s *session, f *reconcile.FleetPlan, todo []int, results []*appliedAccount, refused []fleetRefusal, events *applyEvents) error {
	stderr := s.stdio.Err
	var counts fleetApplyCounts
	counts.refused = len(refused)
	counts.unchanged = len(f.Accounts) - len(todo) - len(refused)
	var stopped error      // why the fleet stopped early (stopsTheFleet), when it did
	var notStarted []int64 // accounts none of whose steps started
	for k, i := range todo {
		a, r := &f.Accounts[i], results[k]
		fleetWide := r.res.Stopped != nil && stopsTheFleet(r.res.Stopped)
		if fleetWide {
			stopped = r.res.Stopped
		}
		if fleetWide && r.res.NotStarted == len(a.Plan.Changes) && r.readErr == nil {
			notStarted = append(notStarted, a.Account.ID) // listed in one line below
			continue
		}
		fmt.Fprintf(stderr, "%s:\n", fleetAccountLabel(a.Account))
		var b bytes.Buffer
		switch {
		case r.journalErr != nil:
			fmt.Fprintf(&b, "voxbind: %s\n", s.shown(r.journalErr.Error()))
		case r.readErr != nil && r.res.Outcomes == nil:
			fmt.Fprintf(&b, "voxbind: %s\n", s.shown(r.readErr.Error()))
		default:
			if st := r.stats; st.Retries > 0 {
				fmt.Fprintln(&b, repeatsLine(st))
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
	var err error
	switch {
	case errors.Is(stopped, errInterrupted):
		err = exitCode(130, nil)
	case counts.applied+counts.unchanged < len(f.Accounts):
		s.diag.add(Diagnostic{Severity: "error", Code: codeFleetFailed, Message: line, Fix: fleetFailedFix(f, refused)})
		// The last line says what; stopped by the breaker or --timeout,
		// the fleet ended for that reason, even if a Ctrl-C came after.
		err = &exitError{code: 1, endedFirst: stopped != nil}
	}
	if events != nil {
		events.fleetSummary(counts, len(f.Accounts), stopped, exitStatus(err), s.diag.diagnostics())
		s.diag.written = true
	}
	return err
}

// fleetApplyCounts counts the accounts of a fleet apply by how they ended.
type fleetApplyCounts struct {
	applied    int // every step applied and verified
	unchanged  int // no changes
	failed     int // a step not applied, a difference, or the account not read back
	stopped    int // stopped part-way (interrupt, --timeout, the breaker; or on its own: "try later", its journal)
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
