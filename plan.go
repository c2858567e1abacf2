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
	"github.com/voxbind/voxbind/voximplant"
)

// PlanCmd shows the BindSipRegistration calls that would make the account
// equal the spec, and writes nothing to the account.
type PlanCmd struct {
	Files               []string      `name:"file" short:"f" sep:"none" default:"voxbind.yaml" placeholder:"PATH" predictor:"file" help:"Spec file, or a directory of *.yaml, *.yml and *.csv files; repeat for several."`
	Out                 string        `placeholder:"FILE" predictor:"file" help:"Also save the plan as JSON with each step's precondition, for 'apply --plan FILE'. Not written when a change is blocked."`
	DetailedExitcode    bool          `name:"detailed-exitcode" help:"Exit 2 when there are changes (0: none, 1: error); text and markdown end with a Drift: line."`
	Output              string        `short:"o" enum:"text,json,markdown" default:"text" placeholder:"FORMAT" help:"Output format: text, json or markdown."`
	Rate                float64       `env:"VOXBIND_RATE" placeholder:"N" help:"Never send more than N requests per second (0: no ceiling); in a fleet run, to each account."`
	AccountsParallelism int           `name:"accounts-parallelism" default:"4" env:"VOXBIND_ACCOUNTS_PARALLELISM" placeholder:"N" help:"In a fleet run (spec files for several accounts), read and plan at most N accounts at once."`
	Timeout             time.Duration `env:"VOXBIND_TIMEOUT" placeholder:"DUR" help:"Give the whole run at most DUR (e.g. 5m), then stop with exit 1 (0: no limit)."`
	Full                bool          `help:"List every change in the text plan; a plan of more than 100 changes is otherwise grouped by application and action."`
	Scope               scopeFlags    `embed:""`

	AccountFlags
	LogFlags
	ColorFlags
}

// Help is the examples under plan's --help.
func (PlanCmd) Help() string {
	return `Examples:

    voxbind plan --detailed-exitcode               # exit 2 on drift, for a nightly check
    voxbind plan -o markdown --out plan.json > plan.md
    voxbind plan -f fleet/ --accounts-parallelism 16   # files for several child accounts: one run`
}

// Run plans and prints the plan on stdout. Spec and resolution problems go
// to stderr, all at once, and exit 1; so do blocked changes, after the
// plan is printed (with -o json stdout still holds the one plan document,
// its diagnostics included). Spec files for several accounts make a
// fleet run (runFleet).
func (c *PlanCmd) Run(ctx context.Context, s *session) error {
	s.diag.json = c.Output == "json"
	if err := dashOut(c.Out, "give the file to save the plan in, for apply --plan FILE (the plan is printed on stdout too)"); err != nil {
		return err
	}
	if err := checkRate(c.Rate); err != nil {
		return failure(codeUsage, err.Error(), "")
	}
	if err := checkAccountsParallelism(c.AccountsParallelism); err != nil {
		return err
	}
	ctx, cancel, err := withTimeout(ctx, c.Timeout)
	if err != nil {
		return failure(codeUsage, err.Error(), "")
	}
	defer cancel()
	sel, err := c.Scope.selection()
	if err != nil {
		return failure(codeUsage, err.Error(), "")
	}
	today := runDay()
	fleet, err := loadSpec(ctx, s, c.Files, today)
	if err != nil {
		return s.specErrors(err)
	}
	specs, err := c.selectAccounts(fleet)
	if err != nil {
		return s.specErrors(err)
	}
	reads := c.reads(fleet.Files...)
	if err := checkOut(c.Out, reads); err != nil {
		return err
	}
	opts := reconcile.Options{Selection: sel, Today: today}
	if len(specs) > 1 { // --account-id narrows a fleet to the run of one account
		return c.runFleet(ctx, s, specs, opts, reads)
	}
	p, err := makePlan(ctx, s, &c.AccountFlags, specs[0], opts, c.Rate)
	if err != nil {
		return err
	}
	var blocked error
	if n := len(p.Blocked); n > 0 {
		msg := fmt.Sprintf("%s blocked: apply refuses this plan until %s resolved", english.Plural(n, "change is", "changes are"), english.Choose(n, "it is", "they are"))
		if c.Out != "" {
			msg += "; " + c.Out + " was not written"
		}
		blocked = failure(codeBlocked, msg, blockedFix(p.Blocked))
		s.diag.add(diagnosticOf(blocked))
	}
	if err := planRender(s, p, c.Output, c.color(s.stdio.Out), c.Full); err != nil {
		return fmt.Errorf("write the plan: %w", err)
	}
	if c.DetailedExitcode && c.Output != "json" {
		if err := planDriftLine(s.stdio.Out, reconcile.DriftLine(p), c.Output == "markdown"); err != nil {
			return fmt.Errorf("write the plan: %w", err)
		}
	}
	if blocked != nil {
		return &exitError{code: 1, err: blocked, reported: true}
	}
	if c.Out != "" {
		if err := planSave(c.Out, p, reads); err != nil {
			return err
		}
		fmt.Fprintf(s.stdio.Err, "Saved the plan to %s; apply exactly it with: %s\n", reconcile.Printable(c.Out), c.applyPlanCommand(s.given, c.Out))
	}
	if c.DetailedExitcode && !p.Empty() {
		return exitCode(2, nil)
	}
	return nil
}

// runFleet plans every account of a fleet run and prints one section per
// account and the fleet's summary line. It exits 1 when an account could
// not be planned or has blocked changes (--out is then not written), and
// with --detailed-exitcode 2 when some account has changes.
func (c *PlanCmd) runFleet(ctx context.Context, s *session, specs []*spec.Spec, opts reconcile.Options, reads []readFile) error {
	fc, err := c.openFleetClients(ctx, s, c.Rate, nil, c.AccountsParallelism)
	if err != nil {
		return err
	}
	defer fc.close(s)
	f, err := planFleet(ctx, s, fc, specs, opts, c.AccountsParallelism)
	if err != nil {
		return err
	}
	notWritten := ""
	if c.Out != "" {
		notWritten = "; " + c.Out + " was not written"
	}
	var refusal error
	switch sum := f.Summary(); {
	case fleetFailed(f) != nil:
		fleetDiagnostics(s, f)
		var ce *codedError
		errors.As(fleetFailed(f), &ce)
		refusal = failure(ce.code, ce.msg+notWritten, ce.fix)
	case sum.Blocked > 0:
		refusal = failure(codeBlocked, fmt.Sprintf("%s blocked (see the plan): apply refuses the plans of those accounts until they are resolved%s",
			english.Plural(sum.Blocked, "change"), notWritten), blockedFix(f.Blocked()))
	}
	if refusal != nil {
		s.diag.add(diagnosticOf(refusal))
	}
	if err := fleetRender(s, f, c.Output, c.color(s.stdio.Out), c.Full); err != nil {
		return fmt.Errorf("write the plan: %w", err)
	}
	if c.DetailedExitcode && c.Output != "json" {
		if err := planDriftLine(s.stdio.Out, reconcile.FleetDriftLine(f), c.Output == "markdown"); err != nil {
			return fmt.Errorf("write the plan: %w", err)
		}
	}
	if refusal != nil {
		return &exitError{code: 1, err: refusal, reported: true}
	}
	if c.Out != "" {
		var buf bytes.Buffer
		if err := reconcile.RenderFleetJSON(&buf, f, true); err != nil {
			return fmt.Errorf("save the plan to %s: %w", c.Out, err)
		}
		if err := writeOut(c.Out, buf.Bytes(), reads); err != nil {
			return err
		}
		fmt.Fprintf(s.stdio.Err, "Saved the plan of %s to %s; apply exactly it with: %s\n", english.Plural(len(f.Accounts), "account"), reconcile.Printable(c.Out), c.applyPlanCommand(s.given, c.Out))
	}
	if c.DetailedExitcode && f.Changes() > 0 {
		return exitCode(2, nil)
	}
	return nil
}

// makePlan reads the account desired is for (see actingOn) and plans.
// Resolution problems are printed on stderr and return an exit-1 error.
func makePlan(ctx context.Context, s *session, f *AccountFlags, desired *spec.Spec, opts reconcile.Options, rate float64) (*reconcile.Plan, error) {
	conn, err := f.connect(ctx, s, rate, nil, 1)
	if err != nil {
		return nil, err
	}
	// plan writes nothing, so a failure to close (the sandbox saving its
	// state, say) cannot spoil the plan: a warning, not an error.
	defer closeWarn(s, conn.close)
	acct, err := conn.client(f.actingOn(desired))
	if err != nil {
		return nil, err
	}
	current, err := observe(ctx, s, acct, desired)
	if err != nil {
		return nil, cannotActAt(err, desired)
	}
	p, err := reconcile.Diff(desired, current, opts)
	if err != nil {
		return nil, s.specErrors(err)
	}
	warnUnmatchedIgnores(s, p)
	return p, nil
}

// planDriftLine ends a text or markdown plan with the line a scheduled
// drift check reads (plan --detailed-exitcode): reconcile.DriftLine or
// FleetDriftLine.
func planDriftLine(w io.Writer, line string, markdown bool) error {
	lead := ""
	if markdown {
		lead = "\n"
	}
	_, err := fmt.Fprintf(w, "%s%s\n", lead, line)
	return err
}

// cannotActMessage is err, or the key's refusal to act on the account
// alone when that is what err is (without "read account info: "), as a
// diagnostic with its code.
func cannotActMessage(err error) error {
	var cannot *voximplant.CannotActError
	if errors.As(err, &cannot) {
		return &codedError{code: codeCredentials, msg: cannot.Error(),
			fix: "act on the key's own account or one of its child accounts: check the account_id (or --account-id), or use that account's own key", err: cannot}
	}
	return err
}

// cannotActAt is cannotActMessage for a run of the spec desired: when
// the account the key may not act on is the spec's account_id, the
// diagnostic points at that line.
func cannotActAt(err error, desired *spec.Spec) error {
	err = cannotActMessage(err)
	var ce *codedError
	var cannot *voximplant.CannotActError
	if desired != nil && errors.As(err, &ce) && errors.As(err, &cannot) && cannot.Source == desired.AccountIDPos.Short() {
		ce.pos = desired.AccountIDPos
	}
	return err
}

// observe reads the account for desired (nil: everything) with the
// reading shown on the status line.
func observe(ctx context.Context, s *session, acct *voximplant.Client, desired *spec.Spec) (*reconcile.Current, error) {
	done := s.phase(fmt.Sprintf("Reading account %d", acct.AccountID()))
	defer done()
	start := time.Now()
	current, err := reconcile.Observe(ctx, acct, desired)
	err = timedOutWhile(err, fmt.Sprintf("reading account %d", acct.AccountID()))
	if err == nil {
		s.log.Info("read the account", "account_id", current.Account.ID, "registrations", len(current.Registrations),
			"applications", len(current.Applications), "duration", time.Since(start))
	}
	return current, err
}

// closeWarn closes the account; a failure is a warning: every write is
// complete by then (the sandbox saves each change as it makes it).
func closeWarn(s *session, closeAccount func() error) {
	if err := closeAccount(); err != nil {
		s.warn(codeCloseAccount, "close the account: "+err.Error(), "")
	}
}

// planJSON is the plan JSON document with the run's diagnostics.
type planJSON struct {
	*reconcile.Plan
	Diagnostics []Diagnostic `json:"diagnostics"`
}

// planRender writes p in the format -o asks for on stdout; full lists
// every change of a large text plan.
func planRender(s *session, p *reconcile.Plan, format string, color, full bool) error {
	w := s.stdio.Out
	switch format {
	case "json":
		s.diag.written = true
		return writeJSON(w, planJSON{reconcile.JSONPlan(p, false), s.diag.diagnostics()}, true)
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
