package reconcile

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/voxbind/voxbind/internal/english"
)

// ANSI colours for RenderText; the caller decides whether to use them.
const (
	renderGreen  = "\x1b[32m"
	renderYellow = "\x1b[33m"
	renderRed    = "\x1b[31m"
	renderBold   = "\x1b[1m"
	renderReset  = "\x1b[0m"
)

// LargePlan is the number of changes past which RenderText groups them
// rather than listing each one: a long list scrolls past the summary and
// the prompt that follow it.
const LargePlan = 100

// RenderText writes the plan for a person at a terminal: one
// block per change marked + bind, ~ rebind, - unbind, then side effects,
// blocked changes, notes and the summary line. color adds ANSI colours; the
// caller decides (a terminal, and no --no-color or NO_COLOR).
//
// A plan of more than LargePlan changes is shown grouped: per application
// and action a count and the first changes (and every step included from
// outside the selection), the first side effects, blocked changes and
// ignored registrations, and a pointer to the full list. The selection,
// the notes, the summary and the sentence about changes outside the
// selection are as in a plan listed in full. RenderTextFull always shows
// everything.
func RenderText(w io.Writer, p *Plan, color bool) error {
	return renderText(w, p, color, len(p.Changes) <= LargePlan)
}

// RenderTextFull is RenderText listing every change, however many.
func RenderTextFull(w io.Writer, p *Plan, color bool) error {
	return renderText(w, p, color, true)
}

// renderListed is how many side effects, blocked changes and ignored
// registrations a grouped plan lists before it only counts the rest.
const renderListed = 10

func renderText(w io.Writer, p *Plan, color, full bool) error {
	bw := bufio.NewWriter(w)
	renderPlanText(bw, p, color, full, "account "+strconv.FormatInt(p.AccountID, 10))
	return bw.Flush()
}

// renderPaint is a function that colours s with an ANSI code, or not.
func renderPaint(color bool) func(code, s string) string {
	return func(code, s string) string {
		if !color {
			return s
		}
		return code + s + renderReset
	}
}

// renderPlanText writes one account's plan under its title (renderTitle
// of which); full lists every change, else they are grouped.
func renderPlanText(bw *bufio.Writer, p *Plan, color, full bool, which string) {
	paint := renderPaint(color)
	fmt.Fprintf(bw, "%s\n", paint(renderBold, renderTitle(p, which)))
	if sel := renderSelection(p); sel != "" {
		fmt.Fprintf(bw, "Selection: %s\n", sel)
	}
	if len(p.Changes) > 0 {
		bw.WriteString("\n")
	}
	if full {
		for i := range p.Changes {
			renderStep(bw, &p.Changes[i], paint)
		}
	} else {
		renderGroups(bw, p, paint)
	}
	renderTextSideEffects(bw, p, paint, renderShown(len(p.SideEffects), full))
	renderTextBlocked(bw, p, paint, renderShown(len(p.Blocked), full))
	renderTextIgnored(bw, p, renderShown(len(p.Ignored), full))
	bw.WriteString("\n")
	renderTextNotes(bw, p, paint, full)
	fmt.Fprintf(bw, "%s\n", paint(renderBold, renderSummary(p)))
	if line := renderOutside(p); line != "" {
		fmt.Fprintf(bw, "%s\n", line)
	}
}

// renderShown is how many of n side effects, blocked changes or ignored
// registrations a plan lists: all in full, at most renderListed grouped.
func renderShown(n int, full bool) int {
	if !full {
		return min(n, renderListed)
	}
	return n
}

// renderTextSideEffects lists the first listed side effects and counts
// the rest.
func renderTextSideEffects(bw *bufio.Writer, p *Plan, paint func(code, s string) string, listed int) {
	if len(p.SideEffects) == 0 {
		return
	}
	fmt.Fprintf(bw, "\nSide effects (binding a user takes it from the registration that holds it):\n")
	later := renderLaterSteps(p)
	for _, e := range p.SideEffects[:listed] {
		fmt.Fprintf(bw, "  %s %s loses user %s — caused by step %d%s\n",
			paint(renderYellow, "!"), renderReg(&e.Registration), renderName(e.LosesUser), e.CausedByStep, later[e.Registration.ID])
	}
	if n := len(p.SideEffects) - listed; n > 0 {
		fmt.Fprintf(bw, "  … and %d more\n", n)
	}
}

// renderTextBlocked lists the first listed blocked changes, each with
// where the spec asks for it, and counts the rest.
func renderTextBlocked(bw *bufio.Writer, p *Plan, paint func(code, s string) string, listed int) {
	if len(p.Blocked) == 0 {
		return
	}
	fmt.Fprintf(bw, "\nBlocked (%s refuses this plan until %s resolved):\n", renderRefuser(p), english.Choose(len(p.Blocked), "it is", "they are"))
	for _, b := range p.Blocked[:listed] {
		where := ""
		if b.Source != "" {
			where = " at " + Printable(b.Source)
		}
		fmt.Fprintf(bw, "  %s %s%s: %s\n", paint(renderRed, "x"), renderReg(&b.Registration), where, renderBlockedReason(&b))
	}
	if n := len(p.Blocked) - listed; n > 0 {
		fmt.Fprintf(bw, "  … and %d more\n", n)
	}
}

// renderTextIgnored lists the first listed ignored registrations and
// counts the rest, saying how many of those hide drift.
func renderTextIgnored(bw *bufio.Writer, p *Plan, listed int) {
	if len(p.Ignored) == 0 {
		return
	}
	fmt.Fprintf(bw, "\nIgnored (exceptions in the spec: no step until they end):\n")
	for _, x := range p.Ignored[:listed] {
		fmt.Fprintf(bw, "  = %s %s\n", renderReg(&x.Registration), renderIgnored(&x))
	}
	if rest := p.Ignored[listed:]; len(rest) > 0 {
		hidden := 0
		for _, x := range rest {
			if x.Drift {
				hidden++
			}
		}
		fmt.Fprintf(bw, "  … and %d more, %d of them with drift hidden\n", len(rest), hidden)
	}
}

// renderTextNotes writes the notes that go just above the summary line,
// where a reader looks last, and a blank line after them if there are any.
func renderTextNotes(bw *bufio.Writer, p *Plan, paint func(code, s string) string, full bool) {
	notes := false
	if note := renderAccountNote(p); note != "" {
		fmt.Fprintf(bw, "%s\n", paint(renderRed, note))
		notes = true
	}
	if n := p.FrozenLeftByPrune; n > 0 {
		fmt.Fprintf(bw, "prune leaves %s alone.\n", english.Plural(n, "frozen registration"))
		notes = true
	}
	if n := p.Summary.Unmanaged; n > 0 {
		fmt.Fprintf(bw, "%s\n", renderUnmanaged(p))
		notes = true
	}
	if n := len(p.Blocked); n > 0 {
		fmt.Fprintf(bw, "%s\n", paint(renderRed, english.Plural(n, "change is", "changes are")+" blocked: "+renderRefuser(p)+" refuses this plan."))
		notes = true
	}
	if n := p.MadeAlready; n > 0 {
		fmt.Fprintf(bw, "%s of the saved plan %s made already: not blocked, nothing to make.\n", english.Plural(n, "other change"), english.Choose(n, "is", "are"))
		notes = true
	}
	if !full {
		data := "-o json gives them as data"
		switch {
		case p.File != "":
			data = "voxbind show " + Printable(PathArg(p.File)) + " -o json gives them as data"
		case p.Journal != "":
			data = UndoCommand(p) + " --out FILE saves them, then voxbind show FILE -o json gives them as data"
		}
		fmt.Fprintf(bw, "%d changes, grouped: --full lists every one (%s).\n", len(p.Changes), data)
		notes = true
	}
	if notes {
		bw.WriteString("\n")
	}
}

// renderSelection is the selection a plan was made with, as flags
// ("--only reg=lab-*@pbx.example.com --except id=3005"), or "".
func renderSelection(p *Plan) string {
	if p.Selection == nil {
		return ""
	}
	var parts []string
	for _, s := range p.Selection.Only {
		parts = append(parts, "--only "+Printable(s))
	}
	for _, s := range p.Selection.Except {
		parts = append(parts, "--except "+Printable(s))
	}
	return strings.Join(parts, " ")
}

// renderOutside is the sentence about the changes a selection left out,
// or "" when it left out none.
func renderOutside(p *Plan) string {
	if p.Selection == nil || p.Selection.Outside == 0 {
		return ""
	}
	n := p.Selection.Outside
	return english.Plural(n, "change outside the selection is", "changes outside the selection are") + " not planned."
}

// renderStepNotes says what a step waits for and why a step outside the
// selection is in the plan: "after step 2; included: step 3 needs it".
func renderStepNotes(s *Step) string {
	var notes []string
	if len(s.DependsOn) > 0 {
		notes = append(notes, "after step "+renderSteps(s.DependsOn))
	}
	if s.IncludedFor > 0 {
		notes = append(notes, "included: step "+strconv.Itoa(s.IncludedFor)+" needs it")
	}
	return strings.Join(notes, "; ")
}

// renderIgnored describes an ignored registration after its name:
// "until 2026-12-31, drift hidden: REASON (owner OWNER; spec.yaml:14)".
func renderIgnored(x *Ignored) string {
	drift := "no drift"
	if x.Drift {
		drift = "drift hidden"
	}
	where := Printable(x.Source)
	if x.Owner != "" {
		where = "owner " + Printable(x.Owner) + "; " + where
	}
	return "until " + Printable(x.Until) + ", " + drift + ": " + Printable(x.Reason) + " (" + where + ")"
}

// DriftLine is the line a scheduled drift check reads (plan
// --detailed-exitcode ends text and markdown with it): the changes
// planned, the changes blocked (when there are any: drift that apply
// cannot fix), the drift that exceptions hide, and when the soonest of
// those exceptions ends, e.g. "Drift: 3 to change, 1 blocked, 12 ignored
// (soonest exception ends 2026-12-31)."
func DriftLine(p *Plan) string {
	ignored, soonest := 0, ""
	for _, x := range p.Ignored {
		if !x.Drift {
			continue
		}
		ignored++
		if soonest == "" || x.Until < soonest {
			soonest = x.Until
		}
	}
	line := fmt.Sprintf("Drift: %d to change, ", len(p.Changes))
	if n := len(p.Blocked); n > 0 {
		line += fmt.Sprintf("%d blocked, ", n)
	}
	line += fmt.Sprintf("%d ignored", ignored)
	if ignored > 0 {
		line += " (soonest exception ends " + Printable(soonest) + ")"
	}
	return line + "."
}

// renderStep writes one change's block.
func renderStep(bw *bufio.Writer, s *Step, paint func(code, s string) string) {
	mark, code := renderMark(s.Action)
	fmt.Fprintf(bw, "  %s %s\n", paint(code, mark+" ["+strconv.Itoa(s.Step)+"]"),
		paint(code, renderReg(&s.Registration)))
	fmt.Fprintf(bw, "        %s -> %s\n", renderTarget(s.Before), renderTarget(s.After))
	where := Printable(s.Source)
	switch s.Reason {
	case ReasonPrune:
		where = "prune: not in the spec"
	case ReasonUndo:
		where = "undo: back to before the apply (" + where + ")"
	}
	if notes := renderStepNotes(s); notes != "" {
		where += " (" + notes + ")"
	}
	fmt.Fprintf(bw, "        %s\n", where)
}

// renderGroup is the changes of one action to one application: the
// application a bind or rebind goes to, the one an unbind leaves.
type renderGroup struct {
	app    string // as renderTarget names it
	action Action
	steps  []*Step
}

// renderGroups writes a large plan's changes grouped by application and
// action (applications by name, then bind, rebind, unbind), each group with
// its count and its first changes: three each while there are at most ten
// groups, fewer past that, and always at least one. Steps included from
// outside the selection are all shown, with their marks.
func renderGroups(bw *bufio.Writer, p *Plan, paint func(code, s string) string) {
	type key struct {
		app    int64
		action Action
	}
	index := map[key]*renderGroup{}
	var groups []*renderGroup
	for i := range p.Changes {
		s := &p.Changes[i]
		t := s.After
		if s.Action == ActionUnbind {
			t = s.Before
		}
		var k key
		name := "(no application)"
		if t != nil {
			k = key{t.Application.ID, s.Action}
			name = renderTarget(&Target{Application: t.Application})
		} else {
			k = key{0, s.Action}
		}
		g := index[k]
		if g == nil {
			g = &renderGroup{app: name, action: s.Action}
			index[k] = g
			groups = append(groups, g)
		}
		g.steps = append(g.steps, s)
	}
	order := map[Action]int{ActionBind: 0, ActionRebind: 1, ActionUnbind: 2}
	slices.SortStableFunc(groups, func(a, b *renderGroup) int {
		return cmp.Or(
			cmp.Compare(strings.ToLower(a.app), strings.ToLower(b.app)),
			cmp.Compare(a.app, b.app),
			cmp.Compare(order[a.action], order[b.action]),
		)
	})
	sample := max(1, min(3, 30/max(1, len(groups))))
	also := ""
	if slices.ContainsFunc(p.Changes, func(s Step) bool { return s.IncludedFor > 0 }) {
		also = ", and every step included from outside the selection"
	}
	fmt.Fprintf(bw, "%d changes, grouped by application and action (the first %d of each group shown%s):\n", len(p.Changes), sample, also)
	for _, g := range groups {
		mark, _ := renderMark(g.action)
		fmt.Fprintf(bw, "\n%s\n", paint(renderBold, fmt.Sprintf("%s: %s %d to %s", g.app, mark, len(g.steps), g.action)))
		shown := 0
		for i, s := range g.steps {
			// A step included from outside the selection is one nobody
			// selected: it is always shown, whatever its place.
			if i < sample || s.IncludedFor > 0 {
				renderStep(bw, s, paint)
				shown++
			}
		}
		if n := len(g.steps) - shown; n > 0 {
			fmt.Fprintf(bw, "  … and %d more to %s in %s\n", n, g.action, g.app)
		}
	}
}

// renderTitle is the first line of a plan: for which account, and for an
// undo plan, from which journal.
func renderTitle(p *Plan, which string) string {
	if p.Journal != "" {
		return "voxbind undo plan for " + which + " (journal " + Printable(p.Journal) + ")"
	}
	return "voxbind plan for " + which
}

// renderRefuser is the command that refuses a plan with blocked changes.
func renderRefuser(p *Plan) string {
	if p.Journal != "" {
		return "undo"
	}
	return "apply"
}

// renderUnmanaged is the note that counts the registrations a plan leaves
// alone.
func renderUnmanaged(p *Plan) string {
	n := p.Summary.Unmanaged
	if p.Journal != "" {
		return english.Plural(n, "registration that the apply did not touch is", "registrations that the apply did not touch are") + " left alone."
	}
	return english.Plural(n, "registration not in the spec is", "registrations not in the spec are") + " left alone."
}

// renderLaterSteps says, for each displaced registration that has a step
// of its own (a broken cycle), which step then gives it its target.
func renderLaterSteps(p *Plan) map[int64]string {
	later := map[int64]string{}
	if len(p.SideEffects) == 0 {
		return later
	}
	victims := map[int64]bool{}
	for _, e := range p.SideEffects {
		victims[e.Registration.ID] = true
	}
	for _, s := range p.Changes {
		if victims[s.Registration.ID] {
			later[s.Registration.ID] = fmt.Sprintf("; step %d then binds it to %s", s.Step, renderTarget(s.After))
		}
	}
	return later
}

// renderSummary is the summary line of a plan, always in one of the two
// shapes scripts match: "Plan: N to bind, N to rebind, N to unbind, N
// unchanged." or "No changes.".
//
// A plan with blocked changes is never "No changes.", so that the last
// line does not read as if nothing were wrong; the blocked changes are
// counted on the line just above it.
func renderSummary(p *Plan) string {
	if p.Empty() && len(p.Blocked) == 0 {
		return "No changes."
	}
	s := p.Summary
	return fmt.Sprintf("Plan: %d to bind, %d to rebind, %d to unbind, %d unchanged.", s.Bind, s.Rebind, s.Unbind, s.Unchanged)
}

func renderMark(a Action) (mark, color string) {
	switch a {
	case ActionBind:
		return "+", renderGreen
	case ActionUnbind:
		return "-", renderRed
	}
	return "~", renderYellow
}

// renderReg is "sip_username@proxy (id)".
func renderReg(r *RegistrationRef) string {
	return regName(r) + " (" + strconv.FormatInt(r.ID, 10) + ")"
}

// renderTarget names a target the short way people say it:
// "support / user alice", "(unbound)".
func renderTarget(t *Target) string {
	if t == nil {
		return "(unbound)"
	}
	s := Printable(planShortAppName(t.Application.Name))
	if s == "" {
		s = "application " + strconv.FormatInt(t.Application.ID, 10)
	}
	switch {
	case t.Rule != nil:
		s += " / rule " + renderName(*t.Rule)
	case t.User != nil:
		s += " / user " + renderName(*t.User)
	}
	return s
}

func renderName(r Ref) string {
	if r.Name == "" {
		return strconv.FormatInt(r.ID, 10)
	}
	return Printable(r.Name)
}

func renderSteps(steps []int) string {
	parts := make([]string, len(steps))
	for i, s := range steps {
		parts[i] = strconv.Itoa(s)
	}
	return strings.Join(parts, ", ")
}

// renderBlockedReason says why b is blocked; a change blocked with its
// account says what the change is too.
func renderBlockedReason(b *Blocked) string {
	switch {
	case b.Reason == BlockedFrozen:
		return "frozen (deactivated: its subscription lapsed); voxbind never writes it"
	case b.Cause == BlockAccountState || b.Action != "":
		state, _ := strings.CutPrefix(b.Reason, "account_")
		return fmt.Sprintf("%s %s -> %s, not made: the account is %s", b.Action, renderTarget(b.Before), renderTarget(b.After), Printable(state))
	}
	return b.Reason
}

// renderAccountNote is the note on the plan of a frozen or inactive
// account, "" for another: what it is, that voxbind will not change it,
// and what to do.
func renderAccountNote(p *Plan) string {
	if p.AccountState == "" {
		return ""
	}
	do := "unfreeze it in the Voximplant control panel"
	if p.AccountState == AccountInactive {
		do = "activate it in the Voximplant control panel"
	}
	out := "leave its spec out of the run"
	if p.Journal != "" {
		out = "leave its journal out of the run"
	}
	return fmt.Sprintf("%s is %s: voxbind will not change it; %s, or %s.",
		fleetLabel(AccountInfo{ID: p.AccountID, Name: p.AccountName}), Printable(p.AccountState), do, out)
}
