package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/term"

	"github.com/voxbind/voxbind/internal/english"
	"github.com/voxbind/voxbind/reconcile"
	"github.com/voxbind/voxbind/spec"
)

// PlanCmd shows the BindSipRegistration calls that would make the account
// equal the spec, and writes nothing to the account.
type PlanCmd struct {
	Files            []string      `name:"file" short:"f" sep:"none" default:"voxbind.yaml" placeholder:"PATH" help:"Spec file, or a directory of *.yaml, *.yml and *.csv files; repeat for several."`
	Out              string        `placeholder:"FILE" help:"Also save the plan as JSON with each step's precondition, for 'apply --plan FILE'. Not written when a change is blocked."`
	DetailedExitcode bool          `name:"detailed-exitcode" help:"Exit 2 when there are changes (0: none, 1: error); text and markdown end with a Drift: line."`
	Output           string        `short:"o" enum:"text,json,markdown" default:"text" placeholder:"FORMAT" help:"Output format: text, json or markdown."`
	Rate             float64       `placeholder:"N" help:"Never send more than N requests per second (default: no ceiling)."`
	Timeout          time.Duration `env:"VOXBIND_TIMEOUT" placeholder:"DUR" help:"Give the whole run at most DUR (e.g. 5m), then stop with exit 1 (default: no limit)."`
	Full             bool          `help:"List every change in the text plan; a plan of more than 100 changes is otherwise grouped by application and action."`
	Scope            scopeFlags    `embed:""`
}

// Run plans and prints the plan on stdout. Spec and resolution problems go
// to stderr, all at once, and exit 1; so do blocked changes, after the
// plan is printed (with -o json stdout still holds the one plan document).
func (c *PlanCmd) Run(ctx context.Context, stdio *Stdio, g *Globals) error {
	if err := checkRate(c.Rate); err != nil {
		return err
	}
	ctx, cancel, err := withTimeout(ctx, c.Timeout)
	if err != nil {
		return err
	}
	defer cancel()
	sel, err := c.Scope.selection()
	if err != nil {
		return err
	}
	today := runDay()
	desired, err := loadSpec(c.Files, today, stdio.Err)
	if err != nil {
		return planPrintSpecErrors(stdio.Err, err)
	}
	reads := g.reads(desired.Files...)
	if err := checkOut(c.Out, reads); err != nil {
		return err
	}
	p, err := makePlan(ctx, g, desired, reconcile.Options{Selection: sel, Today: today}, c.Rate, stdio.Err)
	if err != nil {
		return err
	}
	if err := planRender(stdio.Out, p, c.Output, !g.NoColor && planIsTerminal(stdio.Out), c.Full); err != nil {
		return fmt.Errorf("write the plan: %w", err)
	}
	if c.DetailedExitcode && c.Output != "json" {
		if err := planDriftLine(stdio.Out, p, c.Output == "markdown"); err != nil {
			return fmt.Errorf("write the plan: %w", err)
		}
	}
	if n := len(p.Blocked); n > 0 {
		msg := fmt.Sprintf("%s blocked: apply refuses this plan until %s resolved", english.Plural(n, "change is", "changes are"), english.Choose(n, "it is", "they are"))
		if c.Out != "" {
			msg += "; " + c.Out + " was not written"
		}
		return exitCode(1, errors.New(msg))
	}
	if c.Out != "" {
		if err := planSave(c.Out, p, reads); err != nil {
			return err
		}
		fmt.Fprintf(stdio.Err, "Saved the plan to %s; apply exactly it with: voxbind apply --plan %s\n", c.Out, c.Out)
	}
	if c.DetailedExitcode && !p.Empty() {
		return exitCode(2, nil)
	}
	return nil
}

// makePlan reads the account and plans. Resolution problems are printed
// on stderr and return an exit-1 error.
func makePlan(ctx context.Context, g *Globals, desired *spec.Spec, opts reconcile.Options, rate float64, stderr io.Writer) (*reconcile.Plan, error) {
	acct, closeAccount, err := g.openAccount(ctx, rate, stderr)
	if err != nil {
		return nil, err
	}
	// plan writes nothing, so a failure to close (the sandbox saving its
	// state, say) cannot spoil the plan: a warning, not an error.
	defer func() {
		if cerr := closeAccount(); cerr != nil {
			fmt.Fprintf(stderr, "voxbind: warning: close the account: %v\n", cerr)
		}
	}()
	current, err := reconcile.Observe(ctx, acct, desired)
	if err != nil {
		return nil, err
	}
	p, err := reconcile.Diff(desired, current, opts)
	if err != nil {
		return nil, planPrintSpecErrors(stderr, err)
	}
	return p, nil
}

// planDriftLine ends a text or markdown plan with the line a scheduled
// drift check reads (plan --detailed-exitcode).
func planDriftLine(w io.Writer, p *reconcile.Plan, markdown bool) error {
	lead := ""
	if markdown {
		lead = "\n"
	}
	_, err := fmt.Fprintf(w, "%s%s\n", lead, reconcile.DriftLine(p))
	return err
}

// planPrintSpecErrors prints spec.Errors one per line (file:line:col: message)
// and returns the error that makes the command exit 1; other errors are
// returned as they are.
func planPrintSpecErrors(stderr io.Writer, err error) error {
	var errs spec.Errors
	if !errors.As(err, &errs) {
		return err
	}
	for _, e := range errs {
		fmt.Fprintln(stderr, e.Error())
	}
	return exitCode(1, fmt.Errorf("%s in the spec", english.Plural(len(errs), "problem")))
}

// planRender writes p in the format -o asks for; full lists every change
// of a large text plan.
func planRender(w io.Writer, p *reconcile.Plan, format string, color, full bool) error {
	switch format {
	case "json":
		return reconcile.RenderJSON(w, p, false)
	case "markdown":
		return reconcile.RenderMarkdown(w, p)
	}
	return planRenderText(w, p, color, full)
}

// planRenderText writes the text plan, grouped when large unless full.
func planRenderText(w io.Writer, p *reconcile.Plan, color, full bool) error {
	if full {
		return reconcile.RenderTextFull(w, p, color)
	}
	return reconcile.RenderText(w, p, color)
}

// planIsTerminal reports whether w is a terminal (colour and progress
// lines are for people, never for pipes and files).
func planIsTerminal(w io.Writer) bool {
	if l, ok := w.(*lockedWriter); ok {
		w = l.w
	}
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// planSave writes the plan with preconditions to path atomically.
func planSave(path string, p *reconcile.Plan, reads []readFile) error {
	var buf bytes.Buffer
	if err := reconcile.RenderJSON(&buf, p, true); err != nil {
		return fmt.Errorf("save the plan to %s: %w", path, err)
	}
	return writeOut(path, buf.Bytes(), reads)
}
