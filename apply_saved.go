package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/voxbind/voxbind/internal/english"
	"github.com/voxbind/voxbind/reconcile"
	"github.com/voxbind/voxbind/spec"
)

// runSaved applies a plan saved by plan --out, if the account still is
// what the plan was made from.
func (c *ApplyCmd) runSaved(ctx context.Context, s *session, intr *interrupts, events *applyEvents) error {
	data, err := readBounded(c.Plan, "plan", reconcile.MaxPlanSize, "give the file written by voxbind plan --out")
	if err != nil {
		return err
	}
	switch path := pasted(c.Plan); {
	case isJournal(data):
		return failure(codePlanFile, "plan "+reconcile.Printable(c.Plan)+" is the journal of an apply (what it did), not a saved plan",
			"to take that apply back, run: voxbind undo "+path+reconcile.Printable(c.connectionArgs(s.given))+"; to see what it did: voxbind show "+path)
	case isJSONLines(data):
		return failure(codePlanFile, "plan "+reconcile.Printable(c.Plan)+" is JSON Lines (apply -o json events?), not a saved plan", "give the file written by voxbind plan --out, unchanged")
	}
	if reconcile.IsFleetPlan(data) {
		f, err := reconcile.ReadFleetPlan(data)
		if err != nil {
			return &codedError{code: codePlanFile, msg: fmt.Sprintf("plan %s: %v", reconcile.Printable(c.Plan), err),
				fix: reconcile.PlanFileFix(err, "give the file written by voxbind plan --out, unchanged"), err: err}
		}
		savedIn(f, c.Plan, c.connectionArgs(s.given))
		if c.AccountID == 0 {
			return c.runFleetSaved(ctx, s, intr, events, f)
		}
		// --account-id applies that account's part of the plan, as the
		// saved plan of one account.
		p, err := c.accountOfFleetPlan(f)
		if err != nil {
			return err
		}
		return c.applySaved(ctx, s, intr, events, p)
	}
	p, err := reconcile.ReadPlan(data)
	if err != nil {
		return &codedError{code: codePlanFile, msg: fmt.Sprintf("plan %s: %v", reconcile.Printable(c.Plan), err),
			fix: reconcile.PlanFileFix(err, "give the file written by voxbind plan --out, unchanged"), err: err}
	}
	p.File, p.Flags = c.Plan, c.connectionArgs(s.given)
	return c.applySaved(ctx, s, intr, events, p)
}

// applySaved applies p, the saved plan of one account, if the account
// still is what the plan was made from.
func (c *ApplyCmd) applySaved(ctx context.Context, s *session, intr *interrupts, events *applyEvents, p *reconcile.Plan) error {
	if err := applyRefuseBlocked(p); err != nil {
		return fmt.Errorf("plan %s: %w", reconcile.Printable(c.Plan), err)
	}
	// The plan's account is the one acted on, unless --account-id names
	// another: then the plan is refused.
	conn, err := c.connect(ctx, s, c.Rate, events.onRetry(), 1)
	if err != nil {
		return err
	}
	defer closeWarn(s, conn.close)
	id, source := c.AccountID, ""
	if id == 0 {
		id, source = p.AccountID, "the plan "+c.Plan
	}
	acct, err := conn.client(id, source)
	if err != nil {
		return err
	}
	current, err := func() (*reconcile.Current, error) {
		defer s.phase(fmt.Sprintf("Reading account %d", acct.AccountID()))()
		current, err := reconcile.ObservePlan(ctx, acct, p)
		return current, timedOutWhile(err, fmt.Sprintf("reading account %d", acct.AccountID()))
	}()
	if err != nil {
		return cannotActMessage(err)
	}
	if p.AccountID != current.Account.ID {
		return failure(string(spec.CodeAccountMismatch),
			fmt.Sprintf("plan %s was made for account %d, but voxbind acts on account %d (--account-id); nothing was changed", c.Plan, p.AccountID, current.Account.ID),
			fmt.Sprintf("leave out --account-id: a saved plan acts on the account it was made for (%d)", p.AccountID))
	}
	// A plan saved before its account was frozen (or deactivated) is
	// judged by the account as it is now: its steps not made yet are
	// blocked, and none is left to be stale.
	stale := reconcile.SavedStale(p, current)
	if err := c.showPlan(s, p, events); err != nil {
		return err
	}
	if len(stale) > 0 {
		fix := remakeFix(reconcile.MadeSteps(stale) > 0, p)
		if appliedAlready(p, stale) {
			fix = doneFix(p)
		}
		return exitCode(1, failure(codeStalePlan, applyStaleMessage(c.Plan, "the account", p, stale), fix))
	}
	if err := applyRefuseBlocked(p); err != nil {
		return fmt.Errorf("plan %s: %w", reconcile.Printable(c.Plan), err)
	}
	if p.Empty() {
		return c.nothingToDo(s, p, events)
	}
	if err := reconcile.CheckSavedUnbind(p, current, c.maxUnbind(s.given), c.Force, c.applyPlanCommand(s.given, c.Plan)); err != nil {
		return err
	}
	journal, err := askWithJournal(ctx, s, &c.Journal, p.AccountID, true, "", applyAsker)
	if err != nil {
		return err
	}
	return executePlan(ctx, s, intr, acct, current, p, execution{parallelism: c.Parallelism, journal: journal, events: events})
}

// remakeFix is what to do about saved plans refused as stale: make them
// again with the command that made them, undo for an undo plan (it
// records its journal), else plan. rest is set when some of their changes
// are made already: the new plan has the rest.
func remakeFix(rest bool, plans ...*reconcile.Plan) string {
	kind, command := remakeCommand(plans)
	if rest {
		kind += " for the rest"
	}
	return "make a new " + kind + " with " + command + " --out FILE, check it, and apply that"
}

// doneFix is what to do about saved plans refused because every one of
// their changes is made already: nothing, but the command that made them
// shows what is left.
func doneFix(plans ...*reconcile.Plan) string {
	_, command := remakeCommand(plans)
	return "nothing is left to apply (" + command + " shows what differs now)"
}

// remakeCommand is the command that makes plans again: undo with their
// journals for undo plans (reconcile.UndoCommand), else plan; kind names
// what it makes.
func remakeCommand(plans []*reconcile.Plan) (kind, command string) {
	if command := reconcile.UndoCommand(plans...); command != "" {
		return "undo plan", command
	}
	return "plan", "voxbind plan"
}

// appliedAlready reports whether stale says that every change of the
// saved plan p is made already, and nothing else.
func appliedAlready(p *reconcile.Plan, stale []reconcile.StaleStep) bool {
	made := reconcile.MadeSteps(stale)
	return made == len(stale) && made == len(p.Changes)
}

// showPlan prints the plan on stdout: as text, or as the first JSON line.
func (c *ApplyCmd) showPlan(s *session, p *reconcile.Plan, events *applyEvents) error {
	if events != nil {
		events.plan(p, s.diag.diagnostics())
		return nil
	}
	if err := planRenderText(s.stdio.Out, p, c.color(s.stdio.Out), c.Full); err != nil {
		return fmt.Errorf("write the plan: %w", err)
	}
	return nil
}

// nothingToDo ends an apply whose plan has no changes; -o json still
// ends with a summary.
func (c *ApplyCmd) nothingToDo(s *session, p *reconcile.Plan, events *applyEvents) error {
	if events != nil {
		events.summary(&reconcile.ApplyResult{}, p, nil, false, "", 0, s.diag.diagnostics())
		s.diag.written = true
	}
	return nil
}

// applyStaleMessage says why saved plan p (file plan) is refused for
// account (what): how many of its changes are made already, in one line,
// and which other records no longer match, one per line (the first ten).
// A saved plan is applied whole or not at all, so a plan whose first steps
// an earlier apply made is refused too.
func applyStaleMessage(plan, account string, p *reconcile.Plan, stale []reconcile.StaleStep) string {
	made := reconcile.MadeSteps(stale)
	others := len(stale) - made
	var b strings.Builder
	switch {
	case appliedAlready(p, stale):
		fmt.Fprintf(&b, "plan %s was applied already: %s %s to %s %s made, so nothing was changed",
			plan, english.Choose(made, "its one", "all "+strconv.Itoa(made)+" of its"), english.Choose(made, "change", "changes"), account, english.Choose(made, "is", "are"))
	case others == 0:
		fmt.Fprintf(&b, "plan %s is stale: %d of the plan's %s to %s %s already made (an earlier apply of this plan was stopped?); a saved plan is applied whole or not at all, so nothing was changed",
			plan, made, english.Plural(len(p.Changes), "change"), account, english.Choose(made, "is", "are"))
	case made == 0:
		fmt.Fprintf(&b, "plan %s is stale or was edited: %s no longer %s %s (it changed since the plan was made, or the file was changed by hand); nothing was changed:",
			plan, english.Plural(others, "record"), english.Choose(others, "matches", "match"), account)
	default:
		fmt.Fprintf(&b, "plan %s is stale or was edited: %d of the plan's %s to %s %s already made (an earlier apply of this plan was stopped?), and %s no longer %s it (it changed since the plan was made, or the file was changed by hand); nothing was changed:",
			plan, made, english.Plural(len(p.Changes), "change"), account, english.Choose(made, "is", "are"),
			english.Plural(others, "other record"), english.Choose(others, "matches", "match"))
	}
	reconcile.WriteStaleList(&b, stale)
	return b.String()
}
