package reconcile

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// JournalStep is one step of an apply as its journal records it: the
// intent written before the call, and the result written after it (none
// when the call was never sent, or the process died before its answer).
type JournalStep struct {
	Step         int               `json:"step"`
	Action       Action            `json:"action"`
	Registration RegistrationRef   `json:"registration"`
	Before       *Target           `json:"before"`
	After        *Target           `json:"after"`
	Displaces    *JournalDisplaced `json:"displaces"`
	Outcome      string            `json:"outcome"` // applied, failed, unknown, or "no result"
	Error        *JournalError     `json:"error"`
	// Sent is the order of its intent among the apply's intents, 1 for
	// the first: about the order the calls went out in (steps run several
	// at a time, so this is not always step order, and an intent is
	// written a little ahead of its call); 0 for a call never sent (no
	// result in a journal that ended).
	Sent int `json:"sent"`
}

// journalDocument is a journal as one JSON document, for voxbind show
// -o json: its start, its steps in step order, and its end (null when the
// apply did not get that far).
type journalDocument struct {
	Kind     string        `json:"kind"` // "journal"
	Start    JournalStart  `json:"start"`
	Steps    []JournalStep `json:"steps"`
	End      *JournalEnd   `json:"end"`
	CutShort bool          `json:"cut_short"` // the last line was partial and left out
}

// journalNoResult is the outcome of a step whose intent has no result:
// its call was never sent (intents are written ahead of the calls, and
// the apply stopped first), or the process died before its answer.
const journalNoResult = "no result"

// JournalSteps pairs each intent of j with its result, in step order (as
// the plan listed them), each with the order of its intent.
func JournalSteps(j *JournalRecords) []JournalStep {
	out := make([]JournalStep, 0, len(j.Intents))
	for i, in := range j.Intents {
		s := JournalStep{Step: in.Step, Action: planAction(in.Before, in.After), Registration: in.Registration,
			Before: in.Before, After: in.After, Displaces: in.Displaces, Outcome: journalNoResult, Sent: i + 1}
		if r, ok := j.Results[in.Step]; ok {
			s.Outcome, s.Error = string(r.Outcome), r.Error
		} else if j.End != nil {
			s.Sent = 0 // written ahead, and the apply stopped before its call
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b JournalStep) int { return cmp.Compare(a.Step, b.Step) })
	return out
}

// RenderJournalJSON writes j as one journalDocument, indented.
func RenderJournalJSON(w io.Writer, j *JournalRecords) error {
	enc := NewJSONEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(journalDocument{Kind: "journal", Start: j.Start, Steps: JournalSteps(j), End: j.End, CutShort: j.CutShort})
}

// RenderJournalText writes what an apply did, as its journal records it,
// for a person: each step with an intent, with its targets and outcome,
// and how the apply ended:
//
//	~ [3] carol@pbx.example.com (103)
//	      support / user carol -> sales / user dave
//	      applied
func RenderJournalText(w io.Writer, j *JournalRecords) error {
	bw := bufio.NewWriter(w)
	for _, s := range JournalSteps(j) {
		mark, _ := renderMark(s.Action)
		fmt.Fprintf(bw, "  %s [%d] %s\n", mark, s.Step, renderReg(&s.Registration))
		fmt.Fprintf(bw, "        %s -> %s\n", renderTarget(s.Before), renderTarget(s.After))
		if d := s.Displaces; d != nil {
			fmt.Fprintf(bw, "        takes the user of %s (%s)\n", renderReg(&d.Registration), renderTarget(d.Before))
		}
		fmt.Fprintf(bw, "        %s\n", journalOutcome(&s, j.End != nil))
	}
	fmt.Fprintf(bw, "\n%s\n", journalEnd(j))
	return bw.Flush()
}

// RenderJournalMarkdown writes the same as RenderJournalText, as a table
// for a pull-request comment or an incident note.
func RenderJournalMarkdown(w io.Writer, j *JournalRecords) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "#### voxbind apply journal for account %d\n\n**%s**\n\n", j.Start.AccountID, markdownEscape(journalEnd(j)))
	fmt.Fprintf(bw, "| step | registration | before | after | outcome |\n|---|---|---|---|---|\n")
	for _, s := range JournalSteps(j) {
		fmt.Fprintf(bw, "| %d | %s | %s | %s | %s |\n", s.Step, markdownReg(&s.Registration),
			markdownEscape(renderTarget(s.Before)), markdownEscape(renderTarget(s.After)), markdownEscape(journalOutcome(&s, j.End != nil)))
	}
	return bw.Flush()
}

// journalOutcome says how a step's call ended; ended: the journal has its
// end line, so a call sent has its result.
func journalOutcome(s *JournalStep, ended bool) string {
	out := s.Outcome
	switch {
	case s.Outcome != journalNoResult:
	case ended:
		out = "not sent (the apply stopped before this call)"
	default:
		out = "no result recorded (voxbind died before the answer, or before sending the call)"
	}
	if e := s.Error; e != nil {
		out += ": " + Printable(e.Message)
		if e.Code != 0 && !strings.Contains(e.Message, "api error "+strconv.Itoa(e.Code)) {
			out += " (api error " + strconv.Itoa(e.Code) + ")"
		}
	}
	return out
}

// journalEnd says how the apply ended, as its end line records it.
func journalEnd(j *JournalRecords) string {
	e := j.End
	if e == nil {
		return "The apply did not end: voxbind was killed or crashed after the last line above."
	}
	how, why := "Apply", ""
	switch {
	case e.Stopped == "interrupted":
		how = "Apply interrupted"
	case strings.HasPrefix(e.Stopped, "stopped: "):
		how, why = "Apply stopped", Printable(strings.TrimPrefix(e.Stopped, "stopped: "))+"; "
	case e.Interrupted: // a journal written before the end line said why
		how = "Apply stopped early"
	}
	verified := "not verified"
	switch {
	case e.Verified == nil:
	case *e.Verified:
		verified = "verified"
	default:
		verified = "verification found differences"
	}
	s := e.Summary
	return fmt.Sprintf("%s (%sfinished %s): %d applied, %d failed, %d skipped, %d not started, %d unknown; %s.",
		how, why, Printable(e.Finished), s.Applied, s.Failed, s.Skipped, s.NotStarted, s.Unknown, verified)
}
