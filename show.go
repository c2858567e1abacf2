package main

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/voxbind/voxbind/reconcile"
)

// ShowCmd renders a saved plan, or an apply journal, for a reviewer: it
// reads only the file, with no credentials and no network.
type ShowCmd struct {
	File   string `arg:"" name:"FILE" predictor:"file" help:"A plan saved by 'voxbind plan --out FILE' (or printed by 'plan -o json'), or the journal an apply wrote (its Journal: line)."`
	Output string `short:"o" enum:"text,markdown,json" default:"text" placeholder:"FORMAT" help:"Output format: text, markdown (for a pull-request comment) or json."`
	Full   bool   `help:"List every change of a saved plan in text; a plan of more than 100 changes is otherwise grouped by application and action."`

	ColorFlags
}

// Help is the examples under show's --help.
func (ShowCmd) Help() string {
	return `Examples:

    voxbind show plan.json -o markdown > comment.md     # a saved plan, for review
    voxbind show plan.json --full                       # every change, however many
    voxbind show .voxbind/journal/1234567-20261128T061500Z.jsonl   # what an apply did`
}

// Run reads the file and renders it on stdout: a saved plan (of one
// account or of a fleet) as plan printed it, a journal as the steps it records and how the apply ended.
func (c *ShowCmd) Run(s *session) error {
	const what = "give a plan (saved by voxbind plan --out, or printed by plan -o json), or a journal that apply wrote"
	s.diag.json = c.Output == "json"
	data, err := readBounded(c.File, "file", reconcile.MaxJournalSize, what)
	if err != nil {
		return err
	}
	if isJournal(data) {
		return c.journal(s, data)
	}
	if isJSONLines(data) {
		return failure(codePlanFile, reconcile.Printable(c.File)+" is JSON Lines (apply -o json events?), neither a saved plan nor an apply journal", what)
	}
	if reconcile.IsFleetPlan(data) {
		return c.fleet(s, data, what)
	}
	p, err := reconcile.ReviewPlan(data)
	if err != nil {
		return &codedError{code: codePlanFile, msg: fmt.Sprintf("plan %s: %v", reconcile.Printable(c.File), err), fix: reconcile.PlanFileFix(err, what), err: err}
	}
	p.File = c.File
	switch c.Output {
	case "json": // as plan -o json prints it
		err = writeJSON(s.stdio.Out, planJSON{reconcile.JSONPlan(p, false), s.diag.diagnostics()}, true)
	case "markdown":
		err = reconcile.RenderMarkdown(s.stdio.Out, p)
	default:
		err = planRenderText(s.stdio.Out, p, c.color(s.stdio.Out), c.Full)
	}
	if err != nil {
		return fmt.Errorf("write the plan: %w", err)
	}
	return nil
}

// isJournal reports whether data is an apply journal: its first line is
// the start record.
func isJournal(data []byte) bool {
	return bytes.HasPrefix(bytes.TrimSpace(data), []byte(`{"kind":"start"`))
}

// isPlan reports whether data is one JSON document with a
// format_version: a saved plan (of one account or a fleet), or plan -o
// json's output, rather than a journal.
func isPlan(data []byte) bool {
	var probe struct {
		FormatVersion json.RawMessage `json:"format_version"`
	}
	return json.Unmarshal(data, &probe) == nil && probe.FormatVersion != nil
}

// savedPlan reports whether data is a plan that apply --plan takes: one
// that plan --out or undo --out saved, with what apply checks before each
// step (plan -o json's output leaves that out).
func savedPlan(data []byte) bool {
	if reconcile.IsFleetPlan(data) {
		_, err := reconcile.ReadFleetPlan(data)
		return err == nil
	}
	_, err := reconcile.ReadPlan(data)
	return err == nil
}

// isJSONLines reports whether data looks like JSON Lines that voxbind
// writes (a journal, apply -o json events) rather than a plan, whose
// "kind" is never its first key.
func isJSONLines(data []byte) bool {
	return bytes.HasPrefix(bytes.TrimSpace(data), []byte(`{"kind":`))
}

// fleet renders a saved fleet plan as plan renders the plan of a fleet:
// one section per account, in account-id order, and the fleet's line.
func (c *ShowCmd) fleet(s *session, data []byte, what string) error {
	f, err := reconcile.ReviewFleetPlan(data)
	if err != nil {
		return &codedError{code: codePlanFile, msg: fmt.Sprintf("plan %s: %v", reconcile.Printable(c.File), err), fix: reconcile.PlanFileFix(err, what), err: err}
	}
	savedIn(f, c.File, "")
	if err := fleetRender(s, f, c.Output, c.color(s.stdio.Out), c.Full); err != nil {
		return fmt.Errorf("write the plan: %w", err)
	}
	return nil
}

// journal renders an apply journal: what it records of the apply, then
// each step with its outcome, then how the apply ended.
func (c *ShowCmd) journal(s *session, data []byte) error {
	j, err := reconcile.ReadJournal(data)
	if err != nil {
		return &codedError{code: codeJournal, msg: fmt.Sprintf("journal %s: %v", reconcile.Printable(c.File), err), fix: journalReadFix(err, "show it"), err: err}
	}
	switch c.Output {
	case "json":
		err = reconcile.RenderJournalJSON(s.stdio.Out, j)
	case "markdown":
		err = reconcile.RenderJournalMarkdown(s.stdio.Out, j)
	default:
		if _, err = fmt.Fprintf(s.stdio.Out, "%s\n", journalSummary(c.File, j)); err == nil {
			err = reconcile.RenderJournalText(s.stdio.Out, j)
		}
	}
	if err != nil {
		return fmt.Errorf("write the journal: %w", err)
	}
	if j.CutShort {
		s.warn(codeJournal, fmt.Sprintf("journal %s ends in a partial line, written when voxbind died; it is shown up to line %d, its last complete line",
			reconcile.Printable(c.File), j.Lines), "")
	}
	return nil
}
