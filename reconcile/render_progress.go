package reconcile

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// ProgressWriter shows an apply's progress on stderr: on a terminal one
// line rewritten in place, "[ 37/120] applied 35, failed 1, skipped 1",
// with each failure printed above it as it happens; elsewhere (CI logs,
// files) one plain line per step that ends,
// "step 3: rebind trunk1@sip.carrier.example (3008): applied".
// Its Step method is an ApplyOptions.Progress.
type ProgressWriter struct {
	w        io.Writer
	terminal bool
	drawn    bool // a progress line is on the screen, without its newline
}

// NewProgressWriter returns a ProgressWriter to w; terminal says whether w
// is a terminal (the caller decides, the core never asks).
func NewProgressWriter(w io.Writer, terminal bool) *ProgressWriter {
	return &ProgressWriter{w: w, terminal: terminal}
}

// Step reports one step that ended.
func (p *ProgressWriter) Step(ev StepEvent) {
	if !p.terminal {
		fmt.Fprintln(p.w, progressLine(&ev.Step, ev.Outcome))
		return
	}
	var b strings.Builder
	if p.drawn {
		b.WriteString("\r\x1b[K")
	}
	if ev.Outcome.Status == StepFailed {
		b.WriteString(progressLine(&ev.Step, ev.Outcome))
		b.WriteByte('\n')
	}
	width := len(strconv.Itoa(ev.Total))
	fmt.Fprintf(&b, "[%*d/%d] applied %d, failed %d, skipped %d", width, ev.Done, ev.Total, ev.Applied, ev.Failed, ev.Skipped)
	io.WriteString(p.w, b.String())
	p.drawn = true
}

// Finish ends the progress line on a terminal, so that what follows starts
// on a line of its own. Call it once Apply has returned.
func (p *ProgressWriter) Finish() {
	if p.terminal && p.drawn {
		io.WriteString(p.w, "\n")
		p.drawn = false
	}
}

// progressLine is "step 3: rebind trunk1@sip.carrier.example (3008): applied",
// with the error of a failed step and the reason of a skipped one.
func progressLine(s *Step, o StepOutcome) string {
	line := "step " + strconv.Itoa(s.Step) + ": " + string(s.Action) + " " + renderReg(&s.Registration) + ": " + string(o.Status)
	switch o.Status {
	case StepFailed:
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

// RenderApplySummary writes the end of an apply:
//
//	Apply: 118 applied, 1 failed, 1 skipped, 118 verified.
//
// then each failed and skipped step and each verification mismatch. When
// the apply was interrupted it also counts the steps that did not start,
// and when verification was not done (mismatches is nil and verified is
// false) it says so instead of counting verified steps. applied is the
// plan that was verified (ApplyResult.AppliedPlan).
func RenderApplySummary(w io.Writer, p *Plan, res *ApplyResult, applied *Plan, mismatches []Mismatch, verified bool) error {
	var b strings.Builder
	b.WriteString("Apply")
	if res.Interrupted {
		b.WriteString(" interrupted")
	}
	fmt.Fprintf(&b, ": %d applied, %d failed, %d skipped", res.Applied, res.Failed, res.Skipped)
	if res.NotStarted > 0 {
		fmt.Fprintf(&b, ", %d not started", res.NotStarted)
	}
	if verified {
		fmt.Fprintf(&b, ", %d verified.\n", VerifiedSteps(applied, mismatches))
	} else {
		b.WriteString("; not verified.\n")
	}
	for i, o := range res.Outcomes {
		if o.Status == StepFailed || o.Status == StepSkipped {
			fmt.Fprintf(&b, "  %s\n", progressLine(&p.Changes[i], o))
		}
	}
	if res.NotStarted > 0 {
		var steps []int
		for _, o := range res.Outcomes {
			if o.Status == StepNotStarted {
				steps = append(steps, o.Step)
			}
		}
		fmt.Fprintf(&b, "  not started (interrupted): %s %s\n", guardPlural(len(steps), "step", "steps"), progressStepList(steps))
	}
	if len(mismatches) > 0 {
		fmt.Fprintf(&b, "Verification found %d %s:\n", len(mismatches), guardPlural(len(mismatches), "difference", "differences"))
		for _, m := range mismatches {
			fmt.Fprintf(&b, "  %s\n", m)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
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
