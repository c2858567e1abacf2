package main

import (
	"context"
	"fmt"
	"time"

	"github.com/alecthomas/kong"

	"github.com/voxbind/voxbind/internal/english"
	"github.com/voxbind/voxbind/reconcile"
)

// UndoCmd gives back what an apply changed, from the journal that apply
// wrote: it plans a restore of every registration the apply touched,
// shows it, asks, and applies it like apply does (or, with --out, only
// saves it for apply --plan).
type UndoCmd struct {
	From        string        `arg:"" name:"JOURNAL" predictor:"file" help:"The journal of the apply to take back: the file apply named on its Journal: line."`
	Out         string        `placeholder:"FILE" predictor:"file" help:"Only save the undo plan, with each step's precondition, for 'voxbind apply --plan FILE'; nothing is written to the account. Not written when a restore is blocked."`
	AutoApprove bool          `name:"auto-approve" help:"Undo without asking (needed when stdin is not a terminal)."`
	Parallelism int           `default:"4" env:"VOXBIND_PARALLELISM" placeholder:"N" help:"Run at most N steps at once (at least 1)."`
	MaxUnbind   *int          `name:"max-unbind" env:"VOXBIND_MAX_UNBIND" placeholder:"N" help:"Refuse an undo that unbinds more than N registrations (default: 10, or 25% of the bound registrations, whichever is larger)."`
	Force       bool          `help:"Undo however many registrations it unbinds (not with --max-unbind; wins over VOXBIND_MAX_UNBIND)."`
	Full        bool          `help:"List every change of the undo plan before asking; a plan of more than 100 changes is otherwise grouped by application and action."`
	Rate        float64       `env:"VOXBIND_RATE" placeholder:"N" help:"Never send more than N requests per second (0: no ceiling)."`
	Timeout     time.Duration `env:"VOXBIND_TIMEOUT" placeholder:"DUR" help:"Give the whole run at most DUR (e.g. 10m): then no new step starts, calls in flight get up to 10s, the summary is printed, exit 1 (0: no limit)."`
	Output      string        `short:"o" enum:"text,json" default:"text" placeholder:"FORMAT" help:"Output on stdout: text (the undo plan), or json (JSON Lines as apply -o json writes them)."`
	Scope       scopeFlags    `embed:""`
	Journal     journalFlags  `embed:""`

	AccountFlags
	LogFlags
	ColorFlags
}

// Help is the examples under undo's --help.
func (UndoCmd) Help() string {
	return `Examples:

    voxbind undo .voxbind/journal/1234567-20261128T061500Z.jsonl
    voxbind undo journal.jsonl --out undo-plan.json     # review it, then: voxbind apply --plan undo-plan.json`
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
	if err := checkWriteFlags(c.Parallelism, c.Rate, c.MaxUnbind); err != nil {
		return err
	}
	sel, err := c.Scope.selection()
	if err != nil {
		return failure(codeUsage, err.Error(), "")
	}
	ctx, cancel, err := withTimeout(ctx, c.Timeout)
	if err != nil {
		return failure(codeUsage, err.Error(), "")
	}
	defer cancel()
	data, err := readBounded(c.From, "journal", reconcile.MaxJournalSize, "give the file that apply named on its Journal: line")
	if err != nil {
		return err
	}
	j, err := reconcile.ReadJournal(data)
	if err != nil {
		return &codedError{code: codeJournal, msg: fmt.Sprintf("journal %s: %v; nothing was changed", c.From, err),
			fix: "give the file that apply named on its Journal: line", err: err}
	}
	reads := append(c.reads(), readFile{c.From, "the journal"})
	if err := checkOut(c.Out, reads); err != nil {
		return err
	}
	acct, closeAccount, err := c.openAccount(ctx, s, c.Rate, events.onRetry())
	if err != nil {
		return err
	}
	defer closeWarn(s, closeAccount)
	current, err := func() (*reconcile.Current, error) {
		defer s.phase(fmt.Sprintf("Reading account %d", acct.AccountID()))()
		return reconcile.ObserveUndo(ctx, acct, j)
	}()
	if err != nil {
		return err
	}
	p, err := reconcile.Undo(j, c.From, current, reconcile.Options{Selection: sel})
	if err != nil {
		return fmt.Errorf("%w; nothing was changed", err)
	}
	undoDescribe(s, c.From, j)
	if events != nil {
		events.plan(p, s.diag.diagnostics())
	} else if err := planRenderText(s.stdio.Out, p, c.color(s.stdio.Out), c.Full); err != nil {
		return fmt.Errorf("write the plan: %w", err)
	}
	if n := len(p.Blocked); n > 0 {
		msg := fmt.Sprintf("%s blocked (see the plan): undo changes nothing until %s resolved; nothing was changed",
			english.Plural(n, "restore"), english.Choose(n, "it is", "they are"))
		if c.Out != "" {
			msg += "; " + c.Out + " was not written"
		}
		return exitCode(1, failure(codeBlocked, msg,
			"a registration changed since the apply is left to you: leave it out with --except id=N (with the restores that wait for it), or put it back as the apply left it and run undo again"))
	}
	if c.Out != "" {
		if err := planSave(c.Out, p, reads); err != nil {
			return err
		}
		fmt.Fprintf(s.stdio.Err, "Saved the undo plan to %s; apply exactly it with: voxbind apply --plan %s\n", c.Out, c.Out)
		if events != nil {
			events.summary(&reconcile.ApplyResult{}, p, nil, false, "", 0, s.diag.diagnostics())
			s.diag.written = true
		}
		return nil
	}
	if p.Empty() {
		if events != nil {
			events.summary(&reconcile.ApplyResult{}, p, nil, false, "", 0, s.diag.diagnostics())
			s.diag.written = true
		}
		return nil // the plan said "No changes."
	}
	if err := reconcile.CheckUnbind(p, current, maxUnbindOrDefault(c.MaxUnbind, c.Force), c.Force); err != nil {
		return err
	}
	if !c.AutoApprove {
		if err := applyConfirm(ctx, s.stdio, p); err != nil {
			return err
		}
	}
	return executePlan(ctx, s, intr, acct, current, p, execution{parallelism: c.Parallelism, journal: c.Journal, events: events})
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
//	  11 calls recorded: 9 applied, 1 failed, 0 unknown, 1 without a result; it did not end (voxbind was killed or crashed).
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
		english.Plural(n.Intents, "call"), n.Applied, n.Failed, n.Unknown, n.NoResult, end)
}
