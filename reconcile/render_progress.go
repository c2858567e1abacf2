package reconcile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/voxbind/voxbind/internal/english"
)

// ProgressWriter shows what a run is doing on stderr. On a terminal it
// keeps one status line, rewritten in place: the phase ("Reading account
// 1234567… 2s", "Verifying… 1s"), a retry's wait ("Waiting 1.6s before
// retrying GetUsers (attempt 2): …"), or an apply's progress with its
// elapsed time, rate and ETA:
//
//	[ 37/120] applied 35, failed 1, skipped 1 · 12s · 3.1 steps/s · about 27s left
//
// Each failure, and each Note, is printed above the line as it happens.
// Elsewhere (CI logs, files) there is no status line: one plain line per
// step that ends, "step 3: rebind trunk1@sip.carrier.example (3008):
// applied", and the notes. Its Step method is an ApplyOptions.Progress.
// It is safe for concurrent use, so that notices from other goroutines
// do not tear the line.
type ProgressWriter struct {
	w        io.Writer
	terminal bool
	now      func() time.Time

	mu         sync.Mutex
	drawn      bool // a status line is on the screen, without its newline
	phase      string
	phaseStart time.Time
	wait       string
	waitUntil  time.Time
	counts     *StepEvent // the apply's latest counts, once a step ended
	applyStart time.Time
	fleet      *progressFleet // a fleet apply's counts; nil for one account
}

// progressFleet counts the steps of every account of a fleet apply, for
// the one status line.
type progressFleet struct {
	accounts, accountsDone int
	counts                 StepEvent // Done, Total and the outcomes of all accounts
}

// NewProgressWriter returns a ProgressWriter to w; terminal says whether w
// is a terminal (the caller decides, the core never asks).
func NewProgressWriter(w io.Writer, terminal bool) *ProgressWriter {
	return &ProgressWriter{w: w, terminal: terminal, now: time.Now}
}

// StartFleet starts the apply of a fleet, steps steps in accounts
// accounts: each account reports through its own Account func; plain
// lines name the account, and the status line counts the whole fleet,
// "[ 370/10000] applied 368, failed 1, skipped 1 · … · 7 of 200 accounts
// done".
func (p *ProgressWriter) StartFleet(accounts, steps int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fleet = &progressFleet{accounts: accounts, counts: StepEvent{Total: steps}}
	p.applyStart, p.phase, p.counts = p.now(), "", nil
}

// Account returns the ApplyOptions.Progress of one account of a fleet
// apply: its lines name the account.
func (p *ProgressWriter) Account(a AccountInfo) func(StepEvent) {
	prefix := fleetLabel(a) + ": "
	return func(ev StepEvent) { p.step(ev, prefix) }
}

// AccountDone counts one account of a fleet apply as done.
func (p *ProgressWriter) AccountDone() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fleet != nil {
		p.fleet.accountsDone++
		p.draw()
	}
}

// Terminal reports whether the writer keeps a status line.
func (p *ProgressWriter) Terminal() bool { return p.terminal }

// Phase shows, on a terminal, what the run is doing now with the time it
// has taken so far: "Reading account 1234567", "Verifying". "" clears it.
func (p *ProgressWriter) Phase(text string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.phase, p.phaseStart = text, p.now()
	p.draw()
}

// Wait shows, on a terminal, that a call waits d before it is retried;
// once d has passed the line shows the phase or progress again.
func (p *ProgressWriter) Wait(text string, d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.wait, p.waitUntil = text, p.now().Add(d)
	p.draw()
}

// StartApply starts the clock of the apply's rate and ETA.
func (p *ProgressWriter) StartApply() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.applyStart, p.phase = p.now(), ""
}

// Refresh draws the status line again with the time now; call it every
// second or so while the run works.
func (p *ProgressWriter) Refresh() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.draw()
}

// Step reports one step that ended. Steps that did not start are left to
// the summary, which lists them in one line.
func (p *ProgressWriter) Step(ev StepEvent) { p.step(ev, "") }

// step reports one step that ended, its lines starting with prefix.
func (p *ProgressWriter) step(ev StepEvent, prefix string) {
	if ev.Outcome.Status == StepNotStarted {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if f := p.fleet; f != nil {
		ev = f.add(ev)
	}
	if !p.terminal {
		fmt.Fprintln(p.w, prefix+progressLine(&ev.Step, ev.Outcome))
		return
	}
	if ev.Outcome.Status == StepFailed || ev.Outcome.Status == StepUnknown {
		p.above(prefix + progressLine(&ev.Step, ev.Outcome))
	}
	if p.applyStart.IsZero() {
		p.applyStart = p.now()
	}
	p.counts, p.wait = &ev, ""
	p.draw()
}

// Finish ends the status line on a terminal: an apply's last progress
// stays, with its newline; a phase is cleared. What follows starts on a
// line of its own. Call it once the run's work is done.
func (p *ProgressWriter) Finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.phase, p.wait = "", ""
	if !p.terminal || !p.drawn {
		return
	}
	if p.counts != nil {
		io.WriteString(p.w, "\n")
	} else {
		io.WriteString(p.w, "\r\x1b[K")
	}
	p.drawn, p.counts = false, nil
}

// Note writes one line of its own (a notice, a warning) above the
// status line, which is drawn again under it.
func (p *ProgressWriter) Note(line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.above(line)
	p.draw()
}

// above writes line above the status line.
func (p *ProgressWriter) above(line string) {
	if p.drawn {
		line = "\r\x1b[K" + line
		p.drawn = false
	}
	io.WriteString(p.w, line+"\n")
}

// draw writes the status line for now, on a terminal.
func (p *ProgressWriter) draw() {
	if !p.terminal {
		return
	}
	now := p.now()
	var line string
	switch {
	case p.wait != "" && now.Before(p.waitUntil):
		line = p.wait
	case p.counts != nil:
		line = progressCounts(p.counts, now.Sub(p.applyStart))
		if f := p.fleet; f != nil {
			line += fmt.Sprintf(" · %d of %s done", f.accountsDone, english.Plural(f.accounts, "account"))
		}
	case p.phase != "":
		line = p.phase + "… " + progressDuration(now.Sub(p.phaseStart))
	}
	if line == "" && !p.drawn {
		return
	}
	var b strings.Builder
	if p.drawn {
		b.WriteString("\r\x1b[K")
	}
	b.WriteString(line)
	io.WriteString(p.w, b.String())
	p.drawn = line != ""
}

// add counts the step ev of one account into the fleet's, and returns ev
// with the fleet's counts.
func (f *progressFleet) add(ev StepEvent) StepEvent {
	c := &f.counts
	c.Done++
	switch ev.Outcome.Status {
	case StepApplied:
		c.Applied++
	case StepFailed:
		c.Failed++
	case StepSkipped:
		c.Skipped++
	case StepUnknown:
		c.Unknown++
	}
	ev.Done, ev.Total, ev.Applied, ev.Failed, ev.Skipped, ev.Unknown = c.Done, c.Total, c.Applied, c.Failed, c.Skipped, c.Unknown
	return ev
}

// progressCounts is the apply's status line: the counts, then the elapsed
// time, the rate and the time left at that rate once they mean something.
func progressCounts(ev *StepEvent, elapsed time.Duration) string {
	width := len(strconv.Itoa(ev.Total))
	line := fmt.Sprintf("[%*d/%d] applied %d, failed %d, skipped %d", width, ev.Done, ev.Total, ev.Applied, ev.Failed, ev.Skipped)
	if ev.Unknown > 0 {
		line += fmt.Sprintf(", unknown %d", ev.Unknown)
	}
	if elapsed < time.Second {
		return line
	}
	rate := float64(ev.Done) / elapsed.Seconds()
	digits := 1
	if rate < 1 {
		digits = 2
	}
	line += " · " + progressDuration(elapsed) + " · " + strconv.FormatFloat(rate, 'f', digits, 64) + " steps/s"
	if left := ev.Total - ev.Done; left > 0 && rate > 0 {
		line += " · about " + progressDuration(time.Duration(float64(left)/rate*float64(time.Second))) + " left"
	}
	return line
}

// progressDuration is a duration in whole seconds for a person: "7s",
// "1m05s", "2h03m".
func progressDuration(d time.Duration) string {
	s := int(d.Round(time.Second) / time.Second)
	switch {
	case s < 60:
		return strconv.Itoa(s) + "s"
	case s < 3600:
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	}
	return fmt.Sprintf("%dh%02dm", s/3600, s%3600/60)
}

// progressLine is "step 3: rebind trunk1@sip.carrier.example (3008): applied",
// with the error of a failed step and the reason of a skipped one.
func progressLine(s *Step, o StepOutcome) string {
	line := "step " + strconv.Itoa(s.Step) + ": " + string(s.Action) + " " + renderReg(&s.Registration) + ": " + string(o.Status)
	switch o.Status {
	case StepFailed, StepUnknown:
		line += ": " + progressErr(o.Err)
	case StepSkipped:
		line += " because " + o.Why
	}
	return line
}

// progressErr is the error of a failed step without the step and
// registration, which the line already shows.
func progressErr(err error) string {
	var se *StepError
	switch {
	case err == nil:
		return "unknown error"
	case errors.As(err, &se):
		return se.Err.Error()
	}
	return err.Error()
}

// RenderApplySummary writes the end of an apply: each step that was not
// applied and each verification difference, then one line that counts
// every outcome, always last so that scripts can grep it:
//
//	Apply: 118 applied, 1 failed, 1 skipped, 0 not started, 0 unknown; 118 verified.
//	Apply interrupted: 35 applied, 0 failed, 0 skipped, 85 not started, 0 unknown; not verified.
//	Apply stopped (the API is unreachable since 03:12:09): 35 applied, 0 failed, 0 skipped, 83 not started, 2 unknown; not verified.
//	Apply stopped (the API is unreachable since 03:12:09; the wait for calls in flight was cut short by an interrupt): …
//
// When verification was not done (mismatches is nil and verified is
// false) the line says "not verified"; with differences it counts them
// ("116 verified, 2 differ"). applied is the plan that was verified
// (ApplyResult.AppliedPlan). journal, when not "", is the apply journal,
// named on the line before the last: "Journal: PATH".
func RenderApplySummary(w io.Writer, p *Plan, res *ApplyResult, applied *Plan, mismatches []Mismatch, verified bool, journal string) error {
	var b strings.Builder
	var notStarted []int
	for i, o := range res.Outcomes {
		switch o.Status {
		case StepFailed, StepUnknown, StepSkipped:
			if b.Len() == 0 {
				b.WriteString("Not applied:\n")
			}
			fmt.Fprintf(&b, "  %s\n", progressLine(&p.Changes[i], o))
		case StepNotStarted:
			notStarted = append(notStarted, o.Step)
		}
	}
	if len(notStarted) > 0 {
		if b.Len() == 0 {
			b.WriteString("Not applied:\n")
		}
		fmt.Fprintf(&b, "  not started (%s): %s %s\n", StopReason(res.Stopped), english.Choose(len(notStarted), "step", "steps"), progressStepList(notStarted))
	}
	if len(mismatches) > 0 {
		fmt.Fprintf(&b, "Verification found %s:\n", english.Plural(len(mismatches), "difference"))
		for _, m := range mismatches {
			fmt.Fprintf(&b, "  %s\n", m)
		}
	}
	if line := WayOn(p, res.Stopped); line != "" {
		b.WriteString(sentence(line) + "\n")
	}
	if journal != "" {
		b.WriteString("Journal: " + Printable(journal) + "\n")
	}
	b.WriteString("Apply")
	switch {
	case res.Stopped == nil:
	case errors.Is(res.Stopped, context.Canceled):
		b.WriteString(" interrupted")
	default:
		b.WriteString(" stopped (" + res.Stopped.Error() + waitCut(res.WaitCut) + ")")
	}
	fmt.Fprintf(&b, ": %d applied, %d failed, %d skipped, %d not started, %d unknown; ", res.Applied, res.Failed, res.Skipped, res.NotStarted, res.Unknown)
	switch {
	case !verified:
		b.WriteString("not verified.\n")
	case len(mismatches) > 0:
		fmt.Fprintf(&b, "%d verified, %s.\n", VerifiedSteps(applied, mismatches), english.Plural(len(mismatches), "differs", "differ"))
	default:
		fmt.Fprintf(&b, "%d verified.\n", VerifiedSteps(applied, mismatches))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WayOn says how to go on after an apply of p that stopped early for
// the reason stopped: what to fix first, if anything, and what to run
// again; "" after one that ran to the end or was interrupted (the user
// stopped it). It is the one wording of both the summary's line (as a
// sentence: capitalised, with a period) and -o json's fix. After an undo
// (p has a Journal) the way on is that undo again, which restores only
// what is left, not apply or plan, which take a spec. A key the API
// refuses, or a journal that could not be written, is fixed first; a
// token the API refuses because of voxbind is a bug to report.
func WayOn(p *Plan, stopped error) string {
	again, left := "apply", "voxbind plan shows what is left to do"
	if p.Journal != "" {
		again, left = UndoCommand(p), "the undo restores only what is left"
	}
	var busy *BusyError
	var key *KeyStopError
	var unreachable *UnreachableError
	var journal *JournalWriteError
	switch {
	case stopped == nil, errors.Is(stopped, context.Canceled), errors.Is(stopped, ErrQuit):
		return ""
	case errors.As(stopped, &busy):
		return "run " + again + " again later: the API asks voxbind to wait; " + left
	case errors.As(stopped, &key) && key.Bug:
		return "the API refuses the token voxbind made: " + key.Fix + ", with the command you ran; running " + again + " again meets the same refusal"
	case errors.As(stopped, &key):
		fix := "the API refuses the key"
		if key.Fix != "" {
			fix += ": " + key.Fix
		}
		return fix + ". Fix that first, then run " + again + " again; " + left
	case errors.As(stopped, &journal):
		return "free space for the journal (or write it elsewhere: --journal FILE, or " + JournalDirEnv + " for a fleet), then run " + again + " again; " + left
	case errors.As(stopped, &unreachable):
		return "run " + again + " again once the API answers: " + left
	}
	return "run " + again + " again to finish: " + left
}

// sentence is s as a sentence of its own: capitalised, with a period.
func sentence(s string) string {
	if s == "" {
		return ""
	}
	return strings.ToUpper(s[:1]) + s[1:] + "."
}

// UndoCommand is the command that makes the undo plans again, as the
// user pastes it: "voxbind undo JOURNAL…" with the journal of each plan
// that has one (as PathArg writes it), and the flags that chose the
// account (Plan.Flags) and the registrations (the selection), which a
// run's plans share. Run again, it restores only what is not restored
// yet. "" when no plan is an undo plan.
func UndoCommand(plans ...*Plan) string {
	var journals []string
	var last *Plan
	for _, p := range plans {
		if p != nil && p.Journal != "" {
			journals = append(journals, PathArg(p.Journal))
			last = p
		}
	}
	if last == nil {
		return ""
	}
	return "voxbind undo " + Printable(strings.Join(journals, " ")+last.Flags) + SelectionArgs(last.Selection)
}

// SelectionArgs is the --only and --except flags of sel, each after a
// blank and quoted for a shell, to repeat in a command to paste ("" for
// none).
func SelectionArgs(sel *PlanSelection) string {
	if sel == nil {
		return ""
	}
	var b strings.Builder
	for _, s := range sel.Only {
		b.WriteString(" --only " + ShellQuote(s))
	}
	for _, s := range sel.Except {
		b.WriteString(" --except " + ShellQuote(s))
	}
	return Printable(b.String())
}

// waitCut says what ended the wait for the calls in flight after
// something else stopped an apply ("" if nothing did): "; the wait for
// calls in flight was cut short by an interrupt".
func waitCut(cut error) string {
	switch {
	case cut == nil:
		return ""
	case errors.Is(cut, context.Canceled) || errors.Is(cut, ErrQuit):
		return "; the wait for calls in flight was cut short by an interrupt"
	}
	return "; the wait for calls in flight was cut short: " + cut.Error()
}

// StopReason says in a few words why an apply stopped early:
// "interrupted" for a cancelled context, else "stopped: " and the cause.
func StopReason(stopped error) string {
	switch {
	case stopped == nil:
		return "not stopped"
	case errors.Is(stopped, context.Canceled):
		return "interrupted"
	}
	return "stopped: " + stopped.Error()
}

// progressStepList is "3, 5, 9" for a few steps and "3, 5, 9, … (120 in
// all)" for many.
func progressStepList(steps []int) string {
	const show = 20
	if len(steps) <= show {
		return renderSteps(steps)
	}
	return renderSteps(steps[:show]) + ", … (" + strconv.Itoa(len(steps)) + " in all)"
}
