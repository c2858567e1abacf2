package reconcile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/voxbind/voxbind/internal/english"
)

// ProgressWriter shows an apply's progress on stderr: on a terminal one
// line rewritten in place, "[ 37/120] applied 35, failed 1, skipped 1",
// with each failure printed above it as it happens; elsewhere (CI logs,
// files) one plain line per step that ends,
// "step 3: rebind trunk1@sip.carrier.example (3008): applied".
// Its Step method is an ApplyOptions.Progress.
// It is safe for concurrent use, so that notices from other goroutines
// (Note) do not tear the progress line.
type ProgressWriter struct {
	w        io.Writer
	terminal bool

	mu    sync.Mutex
	drawn bool // a progress line is on the screen, without its newline
}

// NewProgressWriter returns a ProgressWriter to w; terminal says whether w
// is a terminal (the caller decides, the core never asks).
func NewProgressWriter(w io.Writer, terminal bool) *ProgressWriter {
	return &ProgressWriter{w: w, terminal: terminal}
}

// Step reports one step that ended. Steps that did not start are left to
// the summary, which lists them in one line.
func (p *ProgressWriter) Step(ev StepEvent) {
	if ev.Outcome.Status == StepNotStarted {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.terminal {
		fmt.Fprintln(p.w, progressLine(&ev.Step, ev.Outcome))
		return
	}
	var b strings.Builder
	if p.drawn {
		b.WriteString("\r\x1b[K")
	}
	if ev.Outcome.Status == StepFailed || ev.Outcome.Status == StepUnknown {
		b.WriteString(progressLine(&ev.Step, ev.Outcome))
		b.WriteByte('\n')
	}
	width := len(strconv.Itoa(ev.Total))
	fmt.Fprintf(&b, "[%*d/%d] applied %d, failed %d, skipped %d", width, ev.Done, ev.Total, ev.Applied, ev.Failed, ev.Skipped)
	if ev.Unknown > 0 {
		fmt.Fprintf(&b, ", unknown %d", ev.Unknown)
	}
	io.WriteString(p.w, b.String())
	p.drawn = true
}

// Finish ends the progress line on a terminal, so that what follows starts
// on a line of its own. Call it once Apply has returned.
func (p *ProgressWriter) Finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.terminal && p.drawn {
		io.WriteString(p.w, "\n")
		p.drawn = false
	}
}

// Note writes one line of its own (a notice, a warning) above the
// progress line, which the next step draws again.
func (p *ProgressWriter) Note(line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		line = "\r\x1b[K" + line
		p.drawn = false
	}
	io.WriteString(p.w, line+"\n")
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
	if journal != "" {
		b.WriteString("Journal: " + Printable(journal) + "\n")
	}
	b.WriteString("Apply")
	switch {
	case res.Stopped == nil:
	case errors.Is(res.Stopped, context.Canceled):
		b.WriteString(" interrupted")
	default:
		b.WriteString(" stopped (" + res.Stopped.Error() + ")")
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
