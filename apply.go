package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/alecthomas/kong"
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
	Files               []string      `name:"file" short:"f" sep:"none" xor:"source" placeholder:"PATH" predictor:"file" help:"Spec file, or a directory of *.yaml, *.yml and *.csv files; repeat for several (default: voxbind.yaml)."`
	Plan                string        `name:"plan" xor:"source" placeholder:"FILE" predictor:"file" help:"Apply exactly this plan, saved by 'voxbind plan --out FILE', without asking; refused if the account changed since."`
	AutoApprove         bool          `name:"auto-approve" help:"Apply without asking (needed when stdin is not a terminal)."`
	Parallelism         int           `default:"4" env:"VOXBIND_PARALLELISM" placeholder:"N" help:"Run at most N steps at once (at least 1); in a fleet run, in each account."`
	AccountsParallelism int           `name:"accounts-parallelism" default:"4" env:"VOXBIND_ACCOUNTS_PARALLELISM" placeholder:"N" help:"In a fleet run (spec files or a saved plan for several accounts), handle at most N accounts at once."`
	MaxUnbind           *int          `name:"max-unbind" env:"VOXBIND_MAX_UNBIND" placeholder:"N" help:"Refuse a plan that unbinds more than N registrations (default: 10, or 25% of the bound registrations, whichever is larger)."`
	Force               bool          `help:"Apply however many registrations the plan unbinds (not with --max-unbind; wins over VOXBIND_MAX_UNBIND)."`
	Rate                float64       `env:"VOXBIND_RATE" placeholder:"N" help:"Never send more than N requests per second (0: no ceiling); in a fleet run, to each account."`
	Timeout             time.Duration `env:"VOXBIND_TIMEOUT" placeholder:"DUR" help:"Give the whole run at most DUR (e.g. 10m): then no new step starts, calls in flight get up to 10s, the summary is printed, exit 1 (0: no limit)."`
	Output              string        `short:"o" enum:"text,json" default:"text" placeholder:"FORMAT" help:"Output on stdout: text (the plan), or json (JSON Lines: the plan, each step's start and result, retries and rate-limit waits, the summary)."`
	Full                bool          `help:"List every change of the plan before asking; a plan of more than 100 changes is otherwise grouped by application and action."`
	Scope               scopeFlags    `embed:""`
	Journal             journalFlags  `embed:""`

	AccountFlags
	LogFlags
	ColorFlags

	undoing bool // undo runs a fleet's undo plans through apply's code
}

// asker is the command that asks: apply, or undo running a fleet's undo
// plans through apply's code.
func (c *ApplyCmd) asker() asker {
	if c.undoing {
		return undoAsker
	}
	return applyAsker
}

// Help is the examples under apply's --help.
func (ApplyCmd) Help() string {
	return `Examples:

    voxbind apply                                  # plan, ask, apply, verify
    voxbind plan --out plan.json && voxbind apply --plan plan.json -o json > events.jsonl`
}

// Validate refuses --max-unbind together with --force on the command
// line (forceWithMaxUnbind).
func (c *ApplyCmd) Validate(kctx *kong.Context) error { return forceWithMaxUnbind(kctx, c.Force) }

// applyStdinIsTerminal reports whether the confirmation can be asked on r;
// tests replace it.
var applyStdinIsTerminal = func(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// applyStderrIsTerminal decides between the status line and plain
// lines; tests replace it.
var applyStderrIsTerminal = planIsTerminal

// applyBreakerPeriod is how long every call to an account may fail at
// transport level before its apply stops (the breaker); tests shorten it.
var applyBreakerPeriod = reconcile.DefaultBreakerPeriod

// Run plans (or reads --plan), refuses what must be refused, asks, applies,
// verifies and prints the summary. Interrupted, it exits 130.
func (c *ApplyCmd) Run(ctx context.Context, s *session, intr *interrupts) error {
	var events *applyEvents
	if c.Output == "json" {
		s.diag.json, s.diag.kind = true, "diagnostics"
		events = newApplyEvents(s.stdio.Out)
	}
	if err := checkWriteFlags(c.Parallelism, c.Rate, c.MaxUnbind); err != nil {
		return err
	}
	if err := checkAccountsParallelism(c.AccountsParallelism); err != nil {
		return err
	}
	if err := c.Journal.check(); err != nil {
		return err
	}
	if c.Plan != "" && c.Scope.given() {
		return failure(codeUsage, fmt.Sprintf("--only and --except choose what a new plan covers, but --plan %s applies exactly the steps saved in it (with the selection it was made with)", c.Plan),
			"leave them out, or make the plan again with them")
	}
	ctx, cancel, err := withTimeout(ctx, c.Timeout)
	if err != nil {
		return failure(codeUsage, err.Error(), "")
	}
	defer cancel()
	if c.Plan != "" {
		return c.runSaved(ctx, s, intr, events)
	}
	return c.runSpec(ctx, s, intr, events)
}

// checkWriteFlags checks the flags that apply and undo share, before
// anything is read.
func checkWriteFlags(parallelism int, rate float64, maxUnbind *int) error {
	if err := checkRate(rate); err != nil {
		return failure(codeUsage, err.Error(), "")
	}
	switch {
	case parallelism < 1:
		return failure(codeUsage, fmt.Sprintf("--parallelism %d: give at least 1 (the number of steps run at once)", parallelism), "")
	case maxUnbind != nil && *maxUnbind < 0:
		return failure(codeUsage, fmt.Sprintf("--max-unbind %d: give 0 or more registrations", *maxUnbind), "")
	}
	return nil
}

// maxUnbind is the limit --max-unbind or VOXBIND_MAX_UNBIND sets (N
// -1: the default limit); given, the session's, tells them apart.
func (c *ApplyCmd) maxUnbind(given map[string]bool) reconcile.MaxUnbind {
	return maxUnbindOrDefault(c.MaxUnbind, c.Force, given)
}

// maxUnbindOrDefault is the limit a --max-unbind value n sets, or N -1
// for the default limit; --force wins over a limit set by
// VOXBIND_MAX_UNBIND. A value not on the command line (given, by flag
// name) came from VOXBIND_MAX_UNBIND, and the refusal names the variable.
func maxUnbindOrDefault(n *int, force bool, given map[string]bool) reconcile.MaxUnbind {
	if n == nil || force {
		return reconcile.MaxUnbind{N: -1}
	}
	m := reconcile.MaxUnbind{N: *n}
	if !given["max-unbind"] {
		m.Env = "VOXBIND_MAX_UNBIND"
	}
	return m
}

// forceWithMaxUnbind refuses --max-unbind together with --force on the
// command line (kong's xor would count VOXBIND_MAX_UNBIND as the flag). A
// limit from the variable gives way to --force: a pipeline sets the
// variable, a person who means --force says so.
func forceWithMaxUnbind(kctx *kong.Context, force bool) error {
	if !force {
		return nil
	}
	for _, p := range kctx.Path {
		if p.Flag != nil && p.Flag.Name == "max-unbind" {
			return errors.New("--max-unbind and --force can't be used together")
		}
	}
	return nil
}

// onRetry is what hears of the client's retries besides the notices.
func (e *applyEvents) onRetry() retryHook {
	if e == nil {
		return nil
	}
	return e.retry
}

// runSpec applies the plan made from the spec files.
func (c *ApplyCmd) runSpec(ctx context.Context, s *session, intr *interrupts, events *applyEvents) error {
	files := c.Files
	if len(files) == 0 {
		files = []string{"voxbind.yaml"}
	}
	sel, err := c.Scope.selection()
	if err != nil {
		return failure(codeUsage, err.Error(), "")
	}
	today := runDay()
	fleet, err := loadSpec(ctx, s, files, today)
	if err != nil {
		return s.specErrors(err)
	}
	specs, err := c.selectAccounts(fleet)
	if err != nil {
		return s.specErrors(err)
	}
	opts := reconcile.Options{Selection: sel, Today: today}
	if len(specs) > 1 { // --account-id narrows a fleet to the run of one account
		return c.runFleetSpec(ctx, s, intr, events, specs, opts)
	}
	desired := specs[0]
	conn, err := c.connect(ctx, s, c.Rate, events.onRetry(), 1)
	if err != nil {
		return err
	}
	defer closeWarn(s, conn.close)
	acct, err := conn.client(c.actingOn(desired))
	if err != nil {
		return err
	}
	current, err := observe(ctx, s, acct, desired)
	if err != nil {
		return cannotActAt(err, desired)
	}
	p, err := reconcile.Diff(desired, current, opts)
	if err != nil {
		return s.specErrors(err)
	}
	warnUnmatchedIgnores(s, p)
	if err := c.showPlan(s, p, events); err != nil {
		return err
	}
	if err := applyRefuseBlocked(p); err != nil {
		return err
	}
	if p.Empty() {
		return c.nothingToDo(s, p, events) // the plan said "No changes."
	}
	if err := reconcile.CheckUnbind(p, current, c.maxUnbind(s.given), c.Force); err != nil {
		return err
	}
	journal, err := askWithJournal(ctx, s, &c.Journal, p.AccountID, c.AutoApprove, applyQuestion(len(p.Changes), fmt.Sprintf("account %d", p.AccountID)), applyAsker)
	if err != nil {
		return err
	}
	return executePlan(ctx, s, intr, acct, current, p, execution{parallelism: c.Parallelism, journal: journal, events: events})
}

// applyObservers is every party that hears of an apply's steps, composed
// in one place: the status line, the log, the JSON events. Apply calls
// each in the order added.
type applyObservers struct {
	beforeCall []func(reconcile.Step) error
	sending    []func(reconcile.Step)
	progress   []func(reconcile.StepEvent)
}

// options sets o's hooks on opts.
func (o *applyObservers) options(opts *reconcile.ApplyOptions) {
	opts.BeforeCall = func(st reconcile.Step) error {
		for _, f := range o.beforeCall {
			if err := f(st); err != nil {
				return err
			}
		}
		return nil
	}
	if len(o.sending) > 0 {
		opts.Sending = func(st reconcile.Step) {
			for _, f := range o.sending {
				f(st)
			}
		}
	}
	opts.Progress = func(ev reconcile.StepEvent) {
		for _, f := range o.progress {
			f(ev)
		}
	}
}

// logStep logs a step's end at info level (a failure at warn).
func logStep(log *slog.Logger) func(reconcile.StepEvent) {
	return func(ev reconcile.StepEvent) {
		level := slog.LevelInfo
		attrs := []slog.Attr{slog.Int("step", ev.Step.Step), slog.String("action", string(ev.Step.Action)),
			slog.Int64("registration_id", ev.Step.Registration.ID), slog.String("outcome", string(ev.Outcome.Status))}
		if ev.Outcome.Err != nil {
			level = slog.LevelWarn
			attrs = append(attrs, slog.String("error", stepErrorOf(ev.Outcome.Err).Message))
		}
		log.LogAttrs(context.Background(), level, "step", attrs...)
	}
}

// execution is what apply and undo need, once a plan is accepted, to
// carry it out.
type execution struct {
	parallelism int
	journal     *reconcile.Journal // created before the question (askWithJournal); nil with --no-journal
	events      *applyEvents       // -o json; nil for text
}

// executePlan runs the accepted plan p, made from current, with its
// journal (unless --no-journal), verifies it and prints the summary,
// whose last line counts every outcome; the line before it names the
// journal. A journal whose start cannot be written stops it before any
// call. It
// exits 0 when every step was applied and verified, 130 when
// interrupted, and 1 otherwise: a failed, skipped or unknown step, a
// difference, or a stop by --timeout, the breaker or the journal.
func executePlan(ctx context.Context, s *session, intr *interrupts, acct *voximplant.Client, current *reconcile.Current, p *reconcile.Plan, e execution) error {
	progress := s.progressLine()
	var stopTicking func()
	a := applyAccount(ctx, s, intr, acct, current, reconcile.BeforeOf(current, true), p, accountRun{
		execution: e,
		progress:  progress.Step,
		stopping:  func(cause error, inFlight int) { progress.Note(stoppingLine(cause, inFlight)) },
		started: func(journal string) {
			if journal != "" {
				fmt.Fprintf(s.stdio.Err, "Journal: %s\n", reconcile.Printable(journal))
			}
			fmt.Fprintln(s.stdio.Err, applyingLine(len(p.Changes), p.AccountID, e.parallelism))
			progress.StartApply()
			stopTicking = s.ticking()
		},
		stepsDone: func() {
			stopTicking()
			progress.Finish()
		},
		phases: true,
	})
	if a.journalErr != nil {
		return a.journalErr
	}
	if st := a.stats; st.Retries > 0 {
		fmt.Fprintln(s.stdio.Err, repeatsLine(st))
	}
	var summary bytes.Buffer
	if err := reconcile.RenderApplySummary(&summary, p, &a.res, a.applied, a.mismatches, a.verified, a.journal); err != nil {
		return err
	}
	s.stdio.Err.Write(summary.Bytes())

	var err error
	switch {
	case errors.Is(a.res.Stopped, errInterrupted):
		err = exitCode(130, nil)
	case a.readErr != nil:
		err = fmt.Errorf("verify: read the account back: %w", a.readErr)
	case !a.ok():
		lines := strings.Split(strings.TrimSpace(summary.String()), "\n")
		s.diag.add(Diagnostic{Severity: "error", Code: codeApplyFailed, Message: lines[len(lines)-1], Fix: applyFailedFix(p, a.res.Stopped)})
		// The summary's last line says what. Stopped by the breaker,
		// --timeout or the journal, apply ended for that reason, even if
		// a Ctrl-C then cut short its wait for the calls in flight.
		err = &exitError{code: 1, endedFirst: a.res.Stopped != nil}
	}
	if e.events != nil {
		diags := s.diag.diagnostics()
		if a.readErr != nil {
			diags = append(diags, diagnosticOf(err))
		}
		e.events.summary(&a.res, a.applied, a.mismatches, a.verified, a.journal, exitStatus(err), diags)
		s.diag.written = true
	}
	return err
}

// applyFailedFix is what to do after an apply of p that did not apply
// every step, stopped early for the reason stopped (nil: it ran to the
// end): the summary's way on (reconcile.WayOn), in the same words, or
// when it has none, where to look. After an undo (p has a Journal) the
// way on is that undo again, which restores only what is left, not
// apply or plan.
func applyFailedFix(p *reconcile.Plan, stopped error) string {
	if fix := reconcile.WayOn(p, stopped); fix != "" {
		return fix
	}
	if p.Journal != "" {
		return "see the steps not applied above; " + reconcile.UndoCommand(p) + " again restores only what is left"
	}
	return "see the steps not applied above; voxbind plan shows what is left to do"
}

// accountRun is how one account's accepted plan is carried out: the
// run's execution, and who hears of it.
type accountRun struct {
	execution
	progress  func(reconcile.StepEvent)       // the status line (or plain lines) hears of each step
	stopping  func(cause error, inFlight int) // told when the apply stops starting steps early
	calling   func(reconcile.Step)            // told as a step starts, before its journal intent and its turn under the rate limit, as a single apply counts its calls in flight (nil: not told)
	started   func(journal string)            // told just before the first call, once the journal (its path; "" without one) is on disk
	stepsDone func()                          // told when the steps are over, before the account is read back
	phases    bool                            // show reading the account back on the status line
}

// appliedAccount is what applying one account's plan did.
type appliedAccount struct {
	res        reconcile.ApplyResult
	applied    *reconcile.Plan // the steps that were applied (ApplyResult.AppliedPlan)
	mismatches []reconcile.Mismatch
	verified   bool
	readErr    error // verification could not read the account
	stats      voximplant.Stats
	journal    string // the journal's path, "" without one
	// journalErr says why the journal could not be started: nothing was
	// applied.
	journalErr error
}

// ok reports whether every step was applied and verified.
func (a *appliedAccount) ok() bool {
	return a.journalErr == nil && a.res.OK() && a.readErr == nil && len(a.mismatches) == 0
}

// applyAccount runs the accepted plan p, made from current, on acct with
// its journal (unless --no-journal) and, unless it stopped early, reads
// the account back and verifies it: p's applied steps, and every other
// registration against before (the account as read before the apply). Everything that hears of the steps
// is composed here: the journal first (its intent is durable before the
// call is sent), then the status line, the log and the JSON events. A
// journal whose start cannot be written stops it before any call.
func applyAccount(ctx context.Context, s *session, intr *interrupts, acct *voximplant.Client, current *reconcile.Current, before *reconcile.Before, p *reconcile.Plan, r accountRun) *appliedAccount {
	a := &appliedAccount{}
	journal := r.journal
	if journal != nil {
		a.journal = journal.Path()
		if err := journal.Start(p, current, version, time.Now()); err != nil {
			journal.Close()
			a.journalErr = &codedError{code: codeJournal, msg: err.Error() + "; nothing was changed", err: err}
			return a
		}
	}
	opts := reconcile.ApplyOptions{
		Parallelism:   r.parallelism,
		Stopping:      r.stopping,
		Unreachable:   acct.Unreachable,
		BreakerPeriod: applyBreakerPeriod,
		Quit:          intr.quit,
	}
	var observers applyObservers
	if r.calling != nil {
		observers.beforeCall = append(observers.beforeCall, func(st reconcile.Step) error { r.calling(st); return nil })
	}
	if journal != nil {
		observers.beforeCall = append(observers.beforeCall, journal.Intent)
		observers.progress = append(observers.progress, journal.Result)
	}
	observers.progress = append(observers.progress, r.progress, logStep(s.log))
	if r.events != nil {
		observers.sending = append(observers.sending, r.events.stepStart(p.AccountID))
		observers.progress = append(observers.progress, r.events.stepResult(p.AccountID))
	}
	observers.options(&opts)
	if journal != nil {
		opts.Upcoming = journal.Upcoming // its intents go to disk ahead of the calls
	}
	r.started(a.journal)
	a.res = reconcile.Apply(ctx, acct, p, opts)
	if r.stepsDone != nil {
		r.stepsDone()
	}

	// An apply that stopped is not verified: the API is gone, time is
	// up, or the user wants out; the next plan shows what is left.
	a.applied = a.res.AppliedPlan(p)
	if a.res.Stopped == nil {
		current, err := func() (*reconcile.Current, error) {
			if r.phases {
				defer s.phase(fmt.Sprintf("Verifying: reading account %d back", p.AccountID))()
			}
			return reconcile.Observe(ctx, acct, nil)
		}()
		if err == nil {
			a.mismatches = append(reconcile.Verify(a.applied, current), reconcile.OutsidePlan(p, before, current)...)
			a.verified = true
			s.log.Info("verified", slog.Int64("account_id", p.AccountID), slog.Int("verified", reconcile.VerifiedSteps(a.applied, a.mismatches)), slog.Int("differences", len(a.mismatches)))
		} else if ctx.Err() == nil {
			a.readErr = err
		}
	}
	if a.res.Stopped == nil && ctx.Err() != nil {
		a.res.Stopped = context.Cause(ctx) // during verification
	}
	if journal != nil {
		var ok *bool
		if a.verified {
			ok = new(bool)
			*ok = len(a.mismatches) == 0
		}
		journal.End(&a.res, ok, time.Now())
		if err := journal.Close(); err != nil && !errors.Is(a.res.Stopped, err) {
			s.warn(codeJournal, err.Error(), "")
		}
	}
	a.stats = acct.Stats()
	return a
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
	return exitCode(1, failure(codeBlocked,
		fmt.Sprintf("%s: apply refuses this plan until %s resolved; nothing was changed",
			blockedCount(p), english.Choose(n, "it is", "they are")),
		blockedFix(p.Blocked)))
}

// blockedCount says how many changes of p are blocked, and how many
// others are made already (a saved plan applied to an account frozen
// since an earlier apply of it made them): "2 changes blocked (see the
// plan; 1 other change of the plan is made already)".
func blockedCount(p *reconcile.Plan) string {
	blocked := english.Plural(len(p.Blocked), "change") + " blocked (see the plan"
	if n := p.MadeAlready; n > 0 {
		blocked += fmt.Sprintf("; %d other %s of the plan %s made already", n, english.Choose(n, "change", "changes"), english.Choose(n, "is", "are"))
	}
	return blocked + ")"
}

// applyQuestion is the prompt: "Type 'yes' to apply 12 changes to account
// 1234567: ", or "… to 3 accounts: " for a fleet.
func applyQuestion(changes int, what string) string {
	return fmt.Sprintf("Type 'yes' to apply %s to %s: ", english.Plural(changes, "change"), what)
}

// asker is the command that asks before it writes: its name, which a
// "no" cancels, and what a script does instead of answering.
type asker struct{ command, unattended string }

var (
	applyAsker = asker{"apply", "check the plan above and run again with --auto-approve, or save it with 'voxbind plan --out FILE' and run 'voxbind apply --plan FILE'"}
	undoAsker  = asker{"undo", "check the plan above and run again with --auto-approve, or save it with 'voxbind undo JOURNAL --out FILE' and run 'voxbind apply --plan FILE'"}
)

// applyConfirm asks on the terminal; anything but "yes" cancels. Without a
// terminal on stdin it refuses: a script must say --auto-approve. who is
// the command asking (applyAsker or undoAsker).
func applyConfirm(ctx context.Context, stdio *Stdio, question string, who asker) error {
	if !applyStdinIsTerminal(stdio.In) {
		return exitCode(1, failure(codeNotConfirmed, "stdin is not a terminal, so voxbind cannot ask for confirmation; nothing was changed", who.unattended))
	}
	io.WriteString(stdio.Err, question)
	answer := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdio.In).ReadString('\n')
		answer <- strings.TrimSpace(line)
	}()
	select {
	case <-ctx.Done():
		fmt.Fprintln(stdio.Err)
		return context.Cause(ctx)
	case a := <-answer:
		if a != "yes" {
			return exitCode(1, failure(codeNotConfirmed, who.command+" cancelled; nothing was changed", ""))
		}
	}
	return nil
}

// repeatsLine says, before the summary, how many of an account's
// requests were repeats of one the API failed or refused for now.
func repeatsLine(st voximplant.Stats) string {
	return fmt.Sprintf("The API was slow, busy or unreachable: %d of %s %s (%s).",
		st.Retries, english.Plural(int(st.Requests), "request"), english.Choose(int(st.Retries), "was a repeat", "were repeats"),
		english.Plural(int(st.RateLimited), "rate-limit answer"))
}
