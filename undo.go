package main

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/alecthomas/kong"

	"github.com/voxbind/voxbind/internal/english"
	"github.com/voxbind/voxbind/reconcile"
	"github.com/voxbind/voxbind/spec"
	"github.com/voxbind/voxbind/voximplant"
)

// UndoCmd gives back what an apply changed, from the journal that apply
// wrote: it plans a restore of every registration the apply touched,
// shows it, asks, and applies it like apply does (or, with --out, only
// saves it for apply --plan). Several journals, one per account (a fleet
// apply writes one for each), are undone in one fleet run.
type UndoCmd struct {
	From                []string      `arg:"" name:"JOURNAL" predictor:"file" help:"The journal of the apply to take back: the file apply named on its Journal: line; several for a fleet apply, one per account."`
	Out                 string        `placeholder:"FILE" predictor:"file" help:"Only save the undo plan, with each step's precondition, for 'voxbind apply --plan FILE'; nothing is written to the account. Not written when a restore is blocked."`
	AutoApprove         bool          `name:"auto-approve" help:"Undo without asking (needed when stdin is not a terminal)."`
	Parallelism         int           `default:"4" env:"VOXBIND_PARALLELISM" placeholder:"N" help:"Run at most N steps at once (at least 1); with several journals, in each account."`
	AccountsParallelism int           `name:"accounts-parallelism" default:"4" env:"VOXBIND_ACCOUNTS_PARALLELISM" placeholder:"N" help:"With several journals, handle at most N accounts at once."`
	MaxUnbind           *int          `name:"max-unbind" env:"VOXBIND_MAX_UNBIND" placeholder:"N" help:"Refuse an undo that unbinds more than N registrations (default: 10, or 25% of the bound registrations, whichever is larger)."`
	Force               bool          `help:"Undo however many registrations it unbinds (not with --max-unbind; wins over VOXBIND_MAX_UNBIND)."`
	Full                bool          `help:"List every change of the undo plan before asking; a plan of more than 100 changes is otherwise grouped by application and action."`
	Rate                float64       `env:"VOXBIND_RATE" placeholder:"N" help:"Never send more than N requests per second (0: no ceiling); with several journals, to each account."`
	Timeout             time.Duration `env:"VOXBIND_TIMEOUT" placeholder:"DUR" help:"Give the whole run at most DUR (e.g. 10m): then no new step starts, calls in flight get up to 10s, the summary is printed, exit 1 (0: no limit)."`
	Output              string        `short:"o" enum:"text,json" default:"text" placeholder:"FORMAT" help:"Output on stdout: text (the undo plan), or json (JSON Lines as apply -o json writes them)."`
	Scope               scopeFlags    `embed:""`
	Journal             journalFlags  `embed:""`

	AccountFlags
	LogFlags
	ColorFlags
}

// Help is the examples under undo's --help.
func (UndoCmd) Help() string {
	return `Examples:

    voxbind undo .voxbind/journal/1234567-20261128T061500Z.jsonl
    voxbind undo journal.jsonl --out undo-plan.json     # review it, then: voxbind apply --plan undo-plan.json
    voxbind undo .voxbind/journal/1000002-*.jsonl .voxbind/journal/1000003-*.jsonl   # a fleet apply: one per account`
}

// Validate refuses --max-unbind together with --force on the command
// line (forceWithMaxUnbind).
func (c *UndoCmd) Validate(kctx *kong.Context) error { return forceWithMaxUnbind(kctx, c.Force) }

// Run reads the journal and the account, plans the undo, prints it, and
// refuses, saves, or asks and applies it. Interrupted, it exits 130.
func (c *UndoCmd) Run(ctx context.Context, s *session, intr *interrupts) error {
	var events *applyEvents
	if c.Output == "json" {
		s.diag.json, s.diag.kind = true, "diagnostics"
		events = newApplyEvents(s.stdio.Out)
	}
	if err := dashOut(c.Out, "give the file to save the undo plan in, for apply --plan FILE"); err != nil {
		return err
	}
	sel, err := c.checkFlags()
	if err != nil {
		return err
	}
	ctx, cancel, err := withTimeout(ctx, c.Timeout)
	if err != nil {
		return failure(codeUsage, err.Error(), "")
	}
	defer cancel()
	journals, err := undoReadJournals(c.From, c.connectionArgs(s.given))
	if err != nil {
		return err
	}
	reads := c.reads()
	for _, path := range c.From {
		reads = append(reads, readFile{path, "the journal"})
	}
	if err := checkOut(c.Out, reads); err != nil {
		return err
	}
	journals, paths, err := c.chooseAccount(journals)
	if err != nil {
		return err
	}
	opts := reconcile.Options{Selection: sel}
	if len(journals) > 1 {
		return c.runFleet(ctx, s, intr, events, journals, paths, opts, reads)
	}
	return c.runAccount(ctx, s, intr, events, paths[0], journals[0], opts, reads)
}

// checkFlags refuses bad flags before any journal or account is read
// (--journal only when the undo may be applied, not with --out), and
// returns the selection of --only and --except.
func (c *UndoCmd) checkFlags() (reconcile.Selection, error) {
	if err := checkWriteFlags(c.Parallelism, c.Rate, c.MaxUnbind); err != nil {
		return reconcile.Selection{}, err
	}
	if err := checkAccountsParallelism(c.AccountsParallelism); err != nil {
		return reconcile.Selection{}, err
	}
	if c.Out == "" {
		if err := c.Journal.check(); err != nil {
			return reconcile.Selection{}, err
		}
	}
	sel, err := c.Scope.selection()
	if err != nil {
		return sel, failure(codeUsage, err.Error(), "")
	}
	return sel, nil
}

// chooseAccount narrows several journals to the one of --account-id, to
// undo as the undo of one account; it returns the journals to undo and
// their files, in the order given.
func (c *UndoCmd) chooseAccount(journals []*reconcile.JournalRecords) ([]*reconcile.JournalRecords, []string, error) {
	paths := c.From
	id := c.AccountID
	if id == 0 || len(journals) <= 1 {
		return journals, paths, nil
	}
	i := slices.IndexFunc(journals, func(j *reconcile.JournalRecords) bool { return j.Start.AccountID == id })
	if i < 0 {
		ids := make([]int64, len(journals))
		for k, j := range journals {
			ids[k] = j.Start.AccountID
		}
		return nil, nil, failure(codeJournal, fmt.Sprintf("--account-id %d: none of the journals is of account %d; they are of %s; nothing was changed", id, id, spec.AccountList(ids)),
			"give one of those accounts, or leave out --account-id to undo them all")
	}
	return journals[i : i+1], paths[i : i+1], nil
}

// runAccount undoes, on one account, the apply that the journal at path
// records: the plan is shown, then refused, saved (--out), or asked about
// and applied, as apply does with a spec.
func (c *UndoCmd) runAccount(ctx context.Context, s *session, intr *interrupts, events *applyEvents, path string, j *reconcile.JournalRecords, opts reconcile.Options, reads []readFile) error {
	conn, err := c.connect(ctx, s, c.Rate, events.onRetry(), 1)
	if err != nil {
		return err
	}
	defer closeWarn(s, conn.close)
	acct, current, err := c.readAccount(ctx, s, conn, path, j)
	if err != nil {
		return err
	}
	p, err := reconcile.Undo(j, path, current, opts)
	if err != nil {
		return fmt.Errorf("%w; nothing was changed", err)
	}
	p.Flags = c.connectionArgs(s.given)
	undoDescribe(s, path, j)
	apply := &ApplyCmd{Full: c.Full, ColorFlags: c.ColorFlags}
	if err := apply.showPlan(s, p, events); err != nil {
		return err
	}
	if err := c.refuseBlocked(p); err != nil {
		return err
	}
	if c.Out != "" {
		if err := planSave(c.Out, p, reads); err != nil {
			return err
		}
		fmt.Fprintf(s.stdio.Err, "Saved the undo plan to %s; apply exactly it with: %s\n", reconcile.Printable(c.Out), c.applyPlanCommand(s.given, c.Out))
		return apply.nothingToDo(s, p, events) // saved, not applied: the summary counts nothing
	}
	if p.Empty() {
		return apply.nothingToDo(s, p, events) // the plan said "No changes."
	}
	if err := reconcile.CheckUnbind(p, current, maxUnbindOrDefault(c.MaxUnbind, c.Force, s.given), c.Force); err != nil {
		return err
	}
	journal, err := askWithJournal(ctx, s, &c.Journal, p.AccountID, c.AutoApprove, applyQuestion(len(p.Changes), fmt.Sprintf("account %d", p.AccountID)), undoAsker)
	if err != nil {
		return err
	}
	return executePlan(ctx, s, intr, acct, current, p, execution{parallelism: c.Parallelism, journal: journal, events: events})
}

// readAccount opens the client of the account to undo on and reads what
// the journal's steps touched there. The journal's account is the one
// acted on, unless --account-id names another: then the journal is
// refused.
func (c *UndoCmd) readAccount(ctx context.Context, s *session, conn *connection, path string, j *reconcile.JournalRecords) (*voximplant.Client, *reconcile.Current, error) {
	id, source := c.AccountID, ""
	if id == 0 {
		id, source = j.Start.AccountID, "the journal "+path
	}
	acct, err := conn.client(id, source)
	if err != nil {
		return nil, nil, err
	}
	defer s.phase(fmt.Sprintf("Reading account %d", acct.AccountID()))()
	current, err := reconcile.ObserveUndo(ctx, acct, j)
	if err != nil {
		return nil, nil, cannotActMessage(timedOutWhile(err, fmt.Sprintf("reading account %d", acct.AccountID())))
	}
	return acct, current, nil
}

// refuseBlocked refuses an undo plan with a blocked restore, before it is
// saved or asked about: undo changes nothing until every restore can be
// made.
func (c *UndoCmd) refuseBlocked(p *reconcile.Plan) error {
	n := len(p.Blocked)
	if n == 0 {
		return nil
	}
	msg := fmt.Sprintf("%s blocked (see the plan): undo changes nothing until %s resolved; nothing was changed",
		english.Plural(n, "restore"), english.Choose(n, "it is", "they are"))
	if c.Out != "" {
		msg += "; " + c.Out + " was not written"
	}
	return exitCode(1, failure(codeBlocked, msg, blockedFix(p.Blocked)))
}

// undoReadJournals reads the journals given, in order, refusing two of one
// account: undo takes the applies of an account back one at a time, the
// latest first. A saved plan given instead is refused with the commands
// that apply it and show it (flags: the account flags given, to repeat).
func undoReadJournals(paths []string, flags string) ([]*reconcile.JournalRecords, error) {
	out := make([]*reconcile.JournalRecords, len(paths))
	of := map[int64]string{}
	for i, path := range paths {
		data, err := readBounded(path, "journal", reconcile.MaxJournalSize, "give the file that apply named on its Journal: line")
		if err != nil {
			return nil, err
		}
		if isPlan(data) {
			apply := "to apply a plan, save it with voxbind plan --out FILE, then run voxbind apply --plan FILE (plan -o json's output leaves out what apply --plan checks)"
			if savedPlan(data) {
				apply = "to apply this plan, run: voxbind apply --plan=" + pasted(path) + reconcile.Printable(flags)
			}
			return nil, failure(codeJournal, "journal "+reconcile.Printable(path)+" is a plan (what a plan would change), not the journal of an apply; nothing was changed",
				"undo takes the file that apply named on its Journal: line; "+apply+"; to read it: voxbind show "+pasted(path))
		}
		if out[i], err = reconcile.ReadJournal(data); err != nil {
			return nil, &codedError{code: codeJournal, msg: fmt.Sprintf("journal %s: %v; nothing was changed", reconcile.Printable(path), err),
				fix: journalReadFix(err, "undo it"), err: err}
		}
		id := out[i].Start.AccountID
		if first, dup := of[id]; dup {
			return nil, failure(codeJournal, fmt.Sprintf("journals %s and %s are both of account %d; nothing was changed", reconcile.Printable(first), reconcile.Printable(path), id),
				"give one journal per account: undo the later apply first, then run undo again with the earlier journal")
		}
		of[id] = path
	}
	return out, nil
}

// journalReadFix is the one hint for a journal that ReadJournal refused
// (do is what the command does with it: "undo it", "show it"): one of
// another journal_version needs the voxbind that wrote it; anything else
// is not the file that apply named.
func journalReadFix(err error, do string) string {
	if errors.Is(err, reconcile.ErrJournalVersion) {
		return do + " with the voxbind that wrote it"
	}
	return "give the file that apply named on its Journal: line"
}

// runFleet undoes several applies, one per account (the journals of a
// fleet apply), as a fleet run: each account is read and its undo planned
// on its own, the plans are shown account by account, and they are saved
// (--out) or applied after one question, as apply does for a fleet;
// paths are the journals' files.
func (c *UndoCmd) runFleet(ctx context.Context, s *session, intr *interrupts, events *applyEvents, journals []*reconcile.JournalRecords, paths []string, opts reconcile.Options, reads []readFile) error {
	apply := &ApplyCmd{AutoApprove: c.AutoApprove, Parallelism: c.Parallelism, AccountsParallelism: c.AccountsParallelism,
		MaxUnbind: c.MaxUnbind, Force: c.Force, Full: c.Full, Journal: c.Journal, ColorFlags: c.ColorFlags, undoing: true}
	if err := apply.fleetChecks(); err != nil {
		return err
	}
	fc, err := c.openFleetClients(ctx, s, c.Rate, events.onRetry(), c.AccountsParallelism)
	if err != nil {
		return err
	}
	defer fc.close(s)
	f := &reconcile.FleetPlan{Accounts: make([]reconcile.FleetAccount, len(journals))}
	opts.Fleet = true
	done := s.phase(fmt.Sprintf("Reading %s to plan the undo, %d at a time", english.Plural(len(journals), "account"), min(c.AccountsParallelism, len(journals))))
	reconcile.ForEachAccount(len(journals), c.AccountsParallelism, func(i int) {
		f.Accounts[i] = undoAccount(ctx, fc, paths[i], journals[i], opts)
		if f.Accounts[i].Plan != nil {
			f.Accounts[i].Plan.Flags = c.connectionArgs(s.given)
		}
	})
	done()
	if err := ctx.Err(); err != nil {
		return context.Cause(ctx)
	}
	if err := f.SelectsNothing(); err != nil {
		return exitCode(1, err)
	}
	for i, j := range journals {
		undoDescribe(s, paths[i], j)
	}
	slices.SortFunc(f.Accounts, func(a, b reconcile.FleetAccount) int { return cmp.Compare(a.Account.ID, b.Account.ID) })
	if err := apply.showFleetPlan(s, f, events); err != nil {
		return err
	}
	if c.Out != "" {
		if err := fleetFailed(f); err != nil {
			fleetDiagnostics(s, f)
			return exitCode(1, fmt.Errorf("%w; %s was not written", err, c.Out))
		}
		if sum := f.Summary(); sum.Blocked > 0 {
			return exitCode(1, failure(codeBlocked, fmt.Sprintf("%s blocked (see the plan); %s was not written", english.Plural(sum.Blocked, "restore"), c.Out), blockedFix(f.Blocked())))
		}
		var buf bytes.Buffer
		if err := reconcile.RenderFleetJSON(&buf, f, true); err != nil {
			return fmt.Errorf("save the plan to %s: %w", c.Out, err)
		}
		if err := writeOut(c.Out, buf.Bytes(), reads); err != nil {
			return err
		}
		fmt.Fprintf(s.stdio.Err, "Saved the undo plan of %s to %s; apply exactly it with: %s\n", english.Plural(len(f.Accounts), "account"), reconcile.Printable(c.Out), c.applyPlanCommand(s.given, c.Out))
		if events != nil { // saved, not applied: the summary counts nothing
			events.fleetSummary(fleetApplyCounts{}, len(f.Accounts), nil, 0, s.diag.diagnostics())
			s.diag.written = true
		}
		return nil
	}
	return apply.applyFleetPlan(ctx, s, intr, fc, f, events)
}

// undoAccount reads the account a journal is of (with the key's token
// naming it) and plans its undo.
func undoAccount(ctx context.Context, fc *fleetClients, path string, j *reconcile.JournalRecords, opts reconcile.Options) reconcile.FleetAccount {
	a := reconcile.FleetAccount{Account: reconcile.AccountInfo{ID: j.Start.AccountID}}
	acct, err := fc.client(j.Start.AccountID, "the journal "+path)
	if err != nil {
		a.Err = err
		return a
	}
	current, err := reconcile.ObserveUndo(ctx, acct, j)
	if err != nil {
		a.Err = cannotActMessage(err)
		return a
	}
	a.Account = current.Account
	if a.Plan, a.Err = reconcile.Undo(j, path, current, opts); a.Err == nil {
		a.Bound, a.Displaced = reconcile.BoundCount(current), reconcile.DisplacedOf(a.Plan, current)
	}
	return a
}

// undoDescribe says on stderr what the journal records of its apply
// (journalSummary), and warns when the journal was cut short.
func undoDescribe(s *session, path string, j *reconcile.JournalRecords) {
	fmt.Fprint(s.stdio.Err, journalSummary(path, j))
	if j.CutShort {
		s.warn(codeJournal, fmt.Sprintf("journal %s ends in a partial line, written when voxbind died; it is read up to line %d, its last complete line",
			reconcile.Printable(path), j.Lines), "")
	}
}

// journalSummary is what a journal records of its apply, in two lines:
//
//	j.jsonl records an apply of 12 steps to account 1000001, started 2026-11-28T06:15:00Z by voxbind v1.2.3;
//	  11 intents recorded: 9 applied, 1 failed, 0 unknown, 1 without a result; it did not end (voxbind was killed or crashed).
func journalSummary(path string, j *reconcile.JournalRecords) string {
	st, n := j.Start, j.Counts()
	end := "it ran to its end"
	switch {
	case j.End == nil:
		end = "it did not end (voxbind was killed or crashed)"
	case j.End.Interrupted:
		end = "it was stopped early"
	}
	return fmt.Sprintf("%s records an apply of %s to account %d, started %s by voxbind %s;\n  %s recorded: %d applied, %d failed, %d unknown, %d without a result; %s.\n",
		reconcile.Printable(path), english.Plural(st.PlanSteps, "step"), st.AccountID, reconcile.Printable(st.Started), reconcile.Printable(st.VoxbindVersion),
		english.Plural(n.Intents, "intent"), n.Applied, n.Failed, n.Unknown, n.NoResult, end)
}
