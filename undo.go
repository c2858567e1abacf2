package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/voxbind/voxbind/internal/english"
	"github.com/voxbind/voxbind/reconcile"
)

// UndoCmd gives back what an apply changed, from the journal that apply
// wrote: it plans a restore of every registration the apply touched,
// shows it, asks, and applies it like apply does (or, with --out, only
// saves it for apply --plan).
type UndoCmd struct {
	From        string        `arg:"" name:"JOURNAL" help:"The journal of the apply to take back: the file apply named on its Journal: line."`
	Out         string        `placeholder:"FILE" help:"Only save the undo plan, with each step's precondition, for 'voxbind apply --plan FILE'; nothing is written to the account. Not written when a restore is blocked."`
	AutoApprove bool          `name:"auto-approve" help:"Undo without asking (needed when stdin is not a terminal)."`
	Parallelism int           `default:"4" placeholder:"N" help:"Run at most N steps at once (at least 1; default: 4)."`
	MaxUnbind   *int          `name:"max-unbind" xor:"unbind" placeholder:"N" help:"Refuse an undo that unbinds more than N registrations (default: 10, or 25% of the bound registrations, whichever is larger)."`
	Force       bool          `xor:"unbind" help:"Undo however many registrations it unbinds."`
	Full        bool          `help:"List every change of the undo plan before asking; a plan of more than 100 changes is otherwise grouped by application and action."`
	Rate        float64       `placeholder:"N" help:"Never send more than N requests per second (default: no ceiling)."`
	Timeout     time.Duration `env:"VOXBIND_TIMEOUT" placeholder:"DUR" help:"Give the whole run at most DUR (e.g. 10m): then no new step starts, calls in flight get up to 10s, the summary is printed, exit 1 (default: no limit)."`
	Scope       scopeFlags    `embed:""`
	Journal     journalFlags  `embed:""`
}

// Run reads the journal and the account, plans the undo, prints it, and
// refuses, saves, or asks and applies it. Interrupted, it exits 130.
func (c *UndoCmd) Run(ctx context.Context, stdio *Stdio, g *Globals, intr *interrupts) error {
	if err := checkWriteFlags(c.Parallelism, c.Rate, c.MaxUnbind); err != nil {
		return err
	}
	sel, err := c.Scope.selection()
	if err != nil {
		return err
	}
	ctx, cancel, err := withTimeout(ctx, c.Timeout)
	if err != nil {
		return err
	}
	defer cancel()
	data, err := readBounded(c.From, "journal", reconcile.MaxJournalSize, "give the file that apply named on its Journal: line")
	if err != nil {
		return err
	}
	j, err := reconcile.ReadJournal(data)
	if err != nil {
		return fmt.Errorf("journal %s: %w; nothing was changed", c.From, err)
	}
	reads := append(g.reads(), readFile{c.From, "the journal"})
	if err := checkOut(c.Out, reads); err != nil {
		return err
	}
	acct, closeAccount, err := g.openAccount(ctx, c.Rate, stdio.Err)
	if err != nil {
		return err
	}
	defer applyClose(closeAccount, stdio.Err)
	current, err := reconcile.ObserveUndo(ctx, acct, j)
	if err != nil {
		return err
	}
	p, err := reconcile.Undo(j, c.From, current, reconcile.Options{Selection: sel})
	if err != nil {
		return fmt.Errorf("%w; nothing was changed", err)
	}
	undoDescribe(stdio.Err, c.From, j)
	if err := planRenderText(stdio.Out, p, !g.NoColor && planIsTerminal(stdio.Out), c.Full); err != nil {
		return fmt.Errorf("write the plan: %w", err)
	}
	if n := len(p.Blocked); n > 0 {
		msg := fmt.Sprintf("%s blocked (see the plan): undo changes nothing until %s resolved; nothing was changed",
			english.Plural(n, "restore"), english.Choose(n, "it is", "they are"))
		if c.Out != "" {
			msg += "; " + c.Out + " was not written"
		}
		return exitCode(1, errors.New(msg+". A registration changed since the apply is left to you: leave it out with --except id=N (with the restores that wait for it), or put it back as the apply left it and run undo again"))
	}
	if c.Out != "" {
		if err := planSave(c.Out, p, reads); err != nil {
			return err
		}
		fmt.Fprintf(stdio.Err, "Saved the undo plan to %s; apply exactly it with: voxbind apply --plan %s\n", c.Out, c.Out)
		return nil
	}
	if p.Empty() {
		return nil // RenderText said "No changes."
	}
	if err := reconcile.CheckUnbind(p, current, maxUnbindOrDefault(c.MaxUnbind), c.Force); err != nil {
		return exitCode(1, err)
	}
	if !c.AutoApprove {
		if err := applyConfirm(ctx, stdio, p); err != nil {
			return err
		}
	}
	return executePlan(ctx, stdio, intr, acct, current, p, execution{parallelism: c.Parallelism, journal: c.Journal})
}

// undoDescribe says on stderr what the journal records of its apply:
//
//	j.jsonl records an apply of 12 steps to account 1000001, started 2026-11-28T06:15:00Z by voxbind v1.2.3;
//	  11 calls recorded: 9 applied, 1 failed, 0 unknown, 1 without a result; it did not end (voxbind was killed or crashed).
func undoDescribe(w io.Writer, path string, j *reconcile.JournalRecords) {
	s, n := j.Start, j.Counts()
	fmt.Fprintf(w, "%s records an apply of %s to account %d, started %s by voxbind %s;\n",
		reconcile.Printable(path), english.Plural(s.PlanSteps, "step"), s.AccountID, reconcile.Printable(s.Started), reconcile.Printable(s.VoxbindVersion))
	end := "it ran to its end"
	switch {
	case j.End == nil:
		end = "it did not end (voxbind was killed or crashed)"
	case j.End.Interrupted:
		end = "it was stopped early"
	}
	fmt.Fprintf(w, "  %s recorded: %d applied, %d failed, %d unknown, %d without a result; %s.\n",
		english.Plural(n.Intents, "call"), n.Applied, n.Failed, n.Unknown, n.NoResult, end)
	if j.CutShort {
		fmt.Fprintf(w, "voxbind: warning: journal %s ends in a partial line, written when voxbind died; it is read up to line %d, its last complete line\n",
			reconcile.Printable(path), j.Lines)
	}
}
