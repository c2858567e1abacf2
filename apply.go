package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/voxbind/voxbind/internal/english"
	"github.com/voxbind/voxbind/reconcile"
	"github.com/voxbind/voxbind/voximplant"
)

// ApplyCmd makes the account equal the spec: it plans, shows
// the plan, asks, executes the steps in parallel, reads the account back
// and verifies. With --plan it executes a saved plan instead, after
// checking that the account still is what the plan was made from.
type ApplyCmd struct {
	Files       []string      `name:"file" short:"f" sep:"none" xor:"source" placeholder:"PATH" help:"Spec file, or a directory of *.yaml, *.yml and *.csv files; repeat for several (default: voxbind.yaml)."`
	Plan        string        `name:"plan" xor:"source" placeholder:"FILE" help:"Apply exactly this plan, saved by 'voxbind plan --out FILE', without asking; refused if the account changed since."`
	AutoApprove bool          `name:"auto-approve" help:"Apply without asking (needed when stdin is not a terminal)."`
	Parallelism int           `default:"4" placeholder:"N" help:"Run at most N steps at once (at least 1; default: 4)."`
	MaxUnbind   *int          `name:"max-unbind" xor:"unbind" placeholder:"N" help:"Refuse a plan that unbinds more than N registrations (default: 10, or 25% of the bound registrations, whichever is larger)."`
	Force       bool          `xor:"unbind" help:"Apply however many registrations the plan unbinds."`
	Rate        float64       `placeholder:"N" help:"Never send more than N requests per second (default: no ceiling)."`
	Timeout     time.Duration `env:"VOXBIND_TIMEOUT" placeholder:"DUR" help:"Give the whole run at most DUR (e.g. 10m): then no new step starts, calls in flight get up to 10s, the summary is printed, exit 1 (default: no limit)."`
	Full        bool          `help:"List every change of the plan before asking; a plan of more than 100 changes is otherwise grouped by application and action."`
	Scope       scopeFlags    `embed:""`
	Journal     journalFlags  `embed:""`
}

// applyStdinIsTerminal reports whether the confirmation can be asked on r;
// tests replace it.
var applyStdinIsTerminal = func(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// applyStderrIsTerminal decides between the progress line and plain
// lines; tests replace it.
var applyStderrIsTerminal = planIsTerminal

// Run plans (or reads --plan), refuses what must be refused, asks, applies,
// verifies and prints the summary. Interrupted, it exits 130.
func (c *ApplyCmd) Run(ctx context.Context, stdio *Stdio, g *Globals, intr *interrupts) error {
	if err := checkWriteFlags(c.Parallelism, c.Rate, c.MaxUnbind); err != nil {
		return err
	}
	if c.Plan != "" && c.Scope.given() {
		return fmt.Errorf("--only and --except choose what a new plan covers, but --plan %s applies exactly the steps saved in it (with the selection it was made with): leave them out, or make the plan again with them", c.Plan)
	}
	ctx, cancel, err := withTimeout(ctx, c.Timeout)
	if err != nil {
		return err
	}
	defer cancel()
	if c.Plan != "" {
		return c.runSaved(ctx, stdio, g, intr)
	}
	return c.runSpec(ctx, stdio, g, intr)
}

// checkWriteFlags checks the flags that apply and undo share, before
// anything is read.
func checkWriteFlags(parallelism int, rate float64, maxUnbind *int) error {
	if err := checkRate(rate); err != nil {
		return err
	}
	switch {
	case parallelism < 1:
		return fmt.Errorf("--parallelism %d: give at least 1 (the number of steps run at once)", parallelism)
	case maxUnbind != nil && *maxUnbind < 0:
		return fmt.Errorf("--max-unbind %d: give 0 or more registrations", *maxUnbind)
	}
	return nil
}

// maxUnbind is --max-unbind, or -1 for the default limit.
func (c *ApplyCmd) maxUnbind() int { return maxUnbindOrDefault(c.MaxUnbind) }

// maxUnbindOrDefault is a --max-unbind value, or -1 for the default limit.
func maxUnbindOrDefault(n *int) int {
	if n == nil {
		return -1
	}
	return *n
}

// runSpec applies the plan made from the spec files.
func (c *ApplyCmd) runSpec(ctx context.Context, stdio *Stdio, g *Globals, intr *interrupts) error {
	files := c.Files
	if len(files) == 0 {
		files = []string{"voxbind.yaml"}
	}
	sel, err := c.Scope.selection()
	if err != nil {
		return err
	}
	today := runDay()
	desired, err := loadSpec(files, today, stdio.Err)
	if err != nil {
		return planPrintSpecErrors(stdio.Err, err)
	}
	acct, closeAccount, err := g.openAccount(ctx, c.Rate, stdio.Err)
	if err != nil {
		return err
	}
	defer applyClose(closeAccount, stdio.Err)
	current, err := reconcile.Observe(ctx, acct, desired)
	if err != nil {
		return err
	}
	p, err := reconcile.Diff(desired, current, reconcile.Options{Selection: sel, Today: today})
	if err != nil {
		return planPrintSpecErrors(stdio.Err, err)
	}
	if err := planRenderText(stdio.Out, p, !g.NoColor && planIsTerminal(stdio.Out), c.Full); err != nil {
		return fmt.Errorf("write the plan: %w", err)
	}
	if err := applyRefuseBlocked(p); err != nil {
		return err
	}
	if p.Empty() {
		return nil // RenderText said "No changes."
	}
	if err := reconcile.CheckUnbind(p, current, c.maxUnbind(), c.Force); err != nil {
		return exitCode(1, err)
	}
	if !c.AutoApprove {
		if err := applyConfirm(ctx, stdio, p); err != nil {
			return err
		}
	}
	return executePlan(ctx, stdio, intr, acct, current, p, c.execution())
}

// execution is how apply carries out a plan it accepted.
func (c *ApplyCmd) execution() execution {
	return execution{parallelism: c.Parallelism, journal: c.Journal}
}

// runSaved applies a plan saved by plan --out, if the account still is
// what the plan was made from.
func (c *ApplyCmd) runSaved(ctx context.Context, stdio *Stdio, g *Globals, intr *interrupts) error {
	data, err := readBounded(c.Plan, "plan", reconcile.MaxPlanSize, "give the file written by voxbind plan --out")
	if err != nil {
		return err
	}
	p, err := reconcile.ReadPlan(data)
	if err != nil {
		return fmt.Errorf("plan %s: %w", c.Plan, err)
	}
	if err := applyRefuseBlocked(p); err != nil {
		return fmt.Errorf("plan %s: %w", c.Plan, err)
	}
	acct, closeAccount, err := g.openAccount(ctx, c.Rate, stdio.Err)
	if err != nil {
		return err
	}
	defer applyClose(closeAccount, stdio.Err)
	current, err := reconcile.ObservePlan(ctx, acct, p)
	if err != nil {
		return err
	}
	if p.AccountID != current.Account.ID {
		return fmt.Errorf("plan %s was made for account %d, but voxbind acts on account %d (--account-id, or the key file's account_id); nothing was changed",
			c.Plan, p.AccountID, current.Account.ID)
	}
	if err := planRenderText(stdio.Out, p, !g.NoColor && planIsTerminal(stdio.Out), c.Full); err != nil {
		return fmt.Errorf("write the plan: %w", err)
	}
	if stale := reconcile.Stale(p, current); len(stale) > 0 {
		var b strings.Builder
		fmt.Fprintf(&b, "plan %s is stale or was edited: %s no longer %s the account (it changed since the plan was made, or the file was changed by hand); nothing was changed:",
			c.Plan, english.Plural(len(stale), "record"), english.Choose(len(stale), "matches", "match"))
		for _, s := range stale {
			b.WriteString("\n  ")
			b.WriteString(s.String())
		}
		b.WriteString("\nmake a new plan with voxbind plan --out FILE, check it, and apply that")
		return exitCode(1, errors.New(b.String()))
	}
	if p.Empty() {
		return nil
	}
	if err := reconcile.CheckUnbind(p, current, c.maxUnbind(), c.Force); err != nil {
		return exitCode(1, err)
	}
	return executePlan(ctx, stdio, intr, acct, current, p, c.execution())
}

// readBounded reads a file that voxbind wrote earlier (a saved plan, a
// journal), refusing one larger than limit, more than voxbind ever
// writes, before reading it whole. what names the file in messages;
// hint says which file to give instead.
func readBounded(path, what string, limit int, hint string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read the %s: %w", what, err)
	}
	defer f.Close()
	tooLarge := false
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() > int64(limit) {
		tooLarge = true
	}
	var data []byte
	if !tooLarge {
		data, err = io.ReadAll(io.LimitReader(f, int64(limit)+1))
		if err != nil {
			return nil, fmt.Errorf("read the %s: %w", what, err)
		}
	}
	if tooLarge || len(data) > limit {
		return nil, fmt.Errorf("%s %s is larger than %d MiB, more than any %s voxbind writes: %s", what, path, limit>>20, what, hint)
	}
	return data, nil
}

// execution is what apply and undo need, once a plan is accepted, to
// carry it out.
type execution struct {
	parallelism int
	journal     journalFlags
}

// executePlan runs the accepted plan p, made from current, with its
// journal (unless --no-journal), verifies it and prints the summary,
// whose last line counts every outcome; the line before it names the
// journal. A journal that cannot be created stops it before any call. It
// exits 0 when every step was applied and verified, 130 when
// interrupted, and 1 otherwise: a failed, skipped or unknown step, a
// difference, or a stop by --timeout, the breaker or the journal.
func executePlan(ctx context.Context, stdio *Stdio, intr *interrupts, acct *voximplant.Client, current *reconcile.Current, p *reconcile.Plan, e execution) error {
	journal, err := e.journal.open(p.AccountID, time.Now())
	if err != nil {
		return fmt.Errorf("%w; nothing was changed (--no-journal applies without one)", err)
	}
	journalPath := ""
	if journal != nil {
		journalPath = journal.Path()
		fmt.Fprintf(stdio.Err, "Journal: %s\n", journalPath)
		if err := journal.Start(p, current, version, time.Now()); err != nil {
			journal.Close()
			return fmt.Errorf("%w; nothing was changed", err)
		}
	}
	fmt.Fprintln(stdio.Err, applyingLine(len(p.Changes), p.AccountID, e.parallelism))
	progress := reconcile.NewProgressWriter(stdio.Err, applyStderrIsTerminal(stdio.Err))
	opts := reconcile.ApplyOptions{
		Parallelism: e.parallelism,
		Progress:    progress.Step,
		Stopping:    func(cause error, inFlight int) { progress.Note(stoppingLine(cause, inFlight)) },
		Unreachable: acct.Unreachable,
		Quit:        intr.quit,
	}
	if journal != nil {
		opts.BeforeCall = journal.Intent
		opts.Progress = func(ev reconcile.StepEvent) {
			journal.Result(ev)
			progress.Step(ev)
		}
	}
	res := reconcile.Apply(ctx, acct, p, opts)
	progress.Finish()

	// An apply that stopped is not verified: the API is gone, time is
	// up, or the user wants out; the next plan shows what is left.
	applied := res.AppliedPlan(p)
	var mismatches []reconcile.Mismatch
	verified := false
	var readErr error
	if res.Stopped == nil {
		current, err := reconcile.Observe(ctx, acct, nil)
		if err == nil {
			mismatches = reconcile.Verify(applied, current)
			verified = true
		} else if ctx.Err() == nil {
			readErr = err
		}
	}
	if res.Stopped == nil && ctx.Err() != nil {
		res.Stopped = context.Cause(ctx) // during verification
	}
	if journal != nil {
		var ok *bool
		if verified {
			ok = new(bool)
			*ok = len(mismatches) == 0
		}
		journal.End(&res, ok, time.Now())
		if err := journal.Close(); err != nil && !errors.Is(res.Stopped, err) {
			fmt.Fprintf(stdio.Err, "voxbind: warning: %v\n", err)
		}
	}
	if s := acct.Stats(); s.Retries > 0 {
		fmt.Fprintf(stdio.Err, "The API was slow, busy or unreachable: %d of %d requests were repeats (%d rate-limit answers).\n", s.Retries, s.Requests, s.RateLimited)
	}
	if err := reconcile.RenderApplySummary(stdio.Err, p, &res, applied, mismatches, verified, journalPath); err != nil {
		return err
	}
	switch {
	case errors.Is(res.Stopped, errInterrupted):
		return exitCode(130, nil)
	case readErr != nil:
		return fmt.Errorf("verify: read the account back: %w", readErr)
	case !res.OK() || len(mismatches) > 0:
		return exitCode(1, nil) // the summary's last line says what
	}
	return nil
}

// applyingLine is what apply says as it starts the steps:
// "Applying 12 changes to account 1234567, 4 at a time." (one change, or
// one at a time, says no more than it means).
func applyingLine(changes int, account int64, parallelism int) string {
	line := fmt.Sprintf("Applying %s to account %d", english.Plural(changes, "change"), account)
	if n := min(changes, parallelism); n > 1 {
		line += fmt.Sprintf(", %d at a time", n)
	}
	return line + "."
}

// applyRefuseBlocked refuses a plan with blocked changes: apply never
// writes part of a plan that the spec cannot have in full.
func applyRefuseBlocked(p *reconcile.Plan) error {
	n := len(p.Blocked)
	if n == 0 {
		return nil
	}
	return exitCode(1, fmt.Errorf("%s blocked (see the plan): apply refuses this plan until %s resolved; nothing was changed",
		english.Plural(n, "change"), english.Choose(n, "it is", "they are")))
}

// applyConfirm asks on the terminal; anything but "yes" cancels. Without a
// terminal on stdin it refuses: a script must say --auto-approve.
func applyConfirm(ctx context.Context, stdio *Stdio, p *reconcile.Plan) error {
	if !applyStdinIsTerminal(stdio.In) {
		return exitCode(1, errors.New("stdin is not a terminal, so voxbind cannot ask for confirmation; nothing was changed. "+
			"Check the plan above and run again with --auto-approve, or save it with 'voxbind plan --out FILE' and run 'voxbind apply --plan FILE'"))
	}
	fmt.Fprintf(stdio.Err, "Type 'yes' to apply %s to account %d: ", english.Plural(len(p.Changes), "change"), p.AccountID)
	answer := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdio.In).ReadString('\n')
		answer <- strings.TrimSpace(line)
	}()
	select {
	case <-ctx.Done():
		fmt.Fprintln(stdio.Err)
		return ctx.Err()
	case a := <-answer:
		if a != "yes" {
			return exitCode(1, errors.New("apply cancelled; nothing was changed"))
		}
	}
	return nil
}

// applyClose closes the account. Every write is complete by then (the
// sandbox saves each change as it makes it), so a failure to close is a
// warning, as for plan.
func applyClose(closeAccount func() error, stderr io.Writer) {
	if err := closeAccount(); err != nil {
		fmt.Fprintf(stderr, "voxbind: warning: close the account: %v\n", err)
	}
}
