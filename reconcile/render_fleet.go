package reconcile

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/voxbind/voxbind/internal/english"
	"github.com/voxbind/voxbind/spec"
)

// RenderFleetText writes a fleet plan for a person: one section per
// account, in account-id order, headed by the account's id and name (the
// plan as RenderText shows it, or RenderTextFull with full; or why the
// account has none), then the fleet's summary line.
func RenderFleetText(w io.Writer, f *FleetPlan, color, full bool) error {
	bw := bufio.NewWriter(w)
	paint := renderPaint(color)
	for i, a := range f.Accounts {
		if i > 0 {
			bw.WriteString("\n")
		}
		if a.Plan != nil {
			renderPlanText(bw, a.Plan, color, full || len(a.Plan.Changes) <= LargePlan, fleetLabel(a.Account))
			continue
		}
		fmt.Fprintf(bw, "%s\n\n", paint(renderBold, "voxbind plan for "+fleetLabel(a.Account)))
		lines := fleetErrLines(a.Err)
		fmt.Fprintf(bw, "%s\n", paint(renderRed, "Not planned: "+lines[0]))
		for _, l := range lines[1:] {
			fmt.Fprintf(bw, "  %s\n", l)
		}
	}
	bw.WriteString("\n")
	if blocked := fleetBlocked(f); blocked != "" {
		fmt.Fprintf(bw, "%s\n", paint(renderRed, blocked))
	}
	fmt.Fprintf(bw, "%s\n", paint(renderBold, f.Summary().Line()))
	return bw.Flush()
}

// fleetBlocked says which accounts have blocked changes, and which
// command refuses their plans (undo for the plans of an undo, else
// apply), "" for none.
func fleetBlocked(f *FleetPlan) string {
	var ids []int64
	refuser := ""
	for _, a := range f.Accounts {
		if a.Plan != nil && len(a.Plan.Blocked) > 0 {
			ids = append(ids, a.Account.ID)
			refuser = renderRefuser(a.Plan)
		}
	}
	if len(ids) == 0 {
		return ""
	}
	return "Blocked changes in " + spec.AccountList(ids) + ": " + refuser + " refuses " + english.Choose(len(ids), "its plan", "their plans") + "."
}

// fleetErrLines is why an account has no plan, one line each: "3 problems
// in the spec:" and the problems for spec errors, the error's lines
// otherwise. Names from the account are shown escaped.
func fleetErrLines(err error) []string {
	if err == nil {
		return []string{"no plan"}
	}
	var errs spec.Errors
	if errors.As(err, &errs) {
		lines := []string{english.Plural(len(errs), "problem") + " in the spec:"}
		for _, e := range errs {
			lines = append(lines, Printable(e.Error()))
		}
		return lines
	}
	var lines []string
	for _, l := range strings.Split(err.Error(), "\n") {
		lines = append(lines, Printable(l))
	}
	return lines
}

// markdownFleetErrLines bounds the lines of one account's failure in a
// markdown plan.
const markdownFleetErrLines = 10

// RenderFleetMarkdown writes a fleet plan for a pull-request comment: the
// fleet's summary line and a table of every account with its own summary
// first, then each account's plan as RenderMarkdown shows it, as long as
// the 65,000 characters allow; the accounts left out are counted.
func RenderFleetMarkdown(w io.Writer, f *FleetPlan) error {
	var b strings.Builder
	sum := f.Summary()
	fmt.Fprintf(&b, "#### voxbind plan for %s\n\n**%s**\n", english.Plural(sum.Accounts, "account"), sum.Line())
	if blocked := fleetBlocked(f); blocked != "" {
		fmt.Fprintf(&b, "\n**%s**\n", blocked)
	}
	const tableEnd = markdownCap / 3
	b.WriteString("\n| account | name | plan |\n|---:|---|---|\n")
	for i, a := range f.Accounts {
		what := ""
		if a.Plan != nil {
			what = renderSummary(a.Plan)
			if n := len(a.Plan.Blocked); n > 0 {
				what += fmt.Sprintf(" %d blocked.", n)
			}
		} else {
			what = "not planned: " + strings.TrimSuffix(fleetErrLines(a.Err)[0], ":")
		}
		row := fmt.Sprintf("| %d | %s | %s |\n", a.Account.ID, markdownEscape(a.Account.Name), markdownEscape(what))
		if b.Len()+len(row) > tableEnd {
			fmt.Fprintf(&b, "\n…and %d more accounts (`-o json` lists them all)\n", len(f.Accounts)-i)
			break
		}
		b.WriteString(row)
	}
	left := 0
	for _, a := range f.Accounts {
		if a.Plan != nil && a.Plan.Empty() && len(a.Plan.Blocked) == 0 {
			continue // the table says "No changes."
		}
		remaining := markdownCap - 200 - b.Len()
		if left > 0 || remaining < 2000 {
			left++
			continue
		}
		b.WriteString("\n")
		if a.Plan != nil {
			renderMarkdown(&b, a.Plan, fleetLabel(a.Account), remaining)
			continue
		}
		fmt.Fprintf(&b, "#### voxbind plan for %s\n\n", markdownEscape(fleetLabel(a.Account)))
		lines := fleetErrLines(a.Err)
		fmt.Fprintf(&b, "**Not planned: %s**\n", markdownEscape(lines[0]))
		for i, l := range lines[1:] {
			if i == markdownFleetErrLines {
				fmt.Fprintf(&b, "- …and %d more\n", len(lines)-1-i)
				break
			}
			fmt.Fprintf(&b, "- %s\n", markdownEscape(l))
		}
	}
	if left > 0 {
		fmt.Fprintf(&b, "\n…and the plans of %d more %s (`-o json` shows them all)\n", left, english.Choose(left, "account", "accounts"))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// fleetKind is the "kind" of fleet plan JSON.
const fleetKind = "fleet"

// FleetJSON is the fleet plan JSON document (docs/fleets.md); a caller
// that adds fields to the document embeds it.
type FleetJSON struct {
	FormatVersion int                `json:"format_version"`
	Kind          string             `json:"kind"`
	Accounts      []fleetAccountJSON `json:"accounts"`
	Failed        []fleetFailureJSON `json:"failed"`
	Summary       *FleetSummary      `json:"summary"`
}

// fleetAccountJSON is one account's plan object with the account's name.
type fleetAccountJSON struct {
	Plan
	AccountName string `json:"account_name"`
}

// fleetFailureJSON is an account that could not be read or planned.
type fleetFailureJSON struct {
	AccountID   int64    `json:"account_id"`
	AccountName string   `json:"account_name"`
	Error       string   `json:"error"`
	SpecErrors  []string `json:"spec_errors,omitempty"`
}

// RenderFleetJSON writes the fleet plan as one JSON document:
// {"format_version":1,"kind":"fleet","accounts":[…],"failed":[…],"summary":{…}},
// each element of accounts a plan object as RenderJSON writes it, with
// the account's name. withPreconditions adds each step's precondition,
// for apply --plan.
func RenderFleetJSON(w io.Writer, f *FleetPlan, withPreconditions bool) error {
	enc := NewJSONEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(NewFleetJSON(f, withPreconditions))
}

// NewFleetJSON is the document RenderFleetJSON encodes.
func NewFleetJSON(f *FleetPlan, withPreconditions bool) *FleetJSON {
	sum := f.Summary()
	out := FleetJSON{FormatVersion: FormatVersion, Kind: fleetKind, Accounts: []fleetAccountJSON{}, Failed: []fleetFailureJSON{}, Summary: &sum}
	for _, a := range f.Accounts {
		if a.Plan == nil {
			fail := fleetFailureJSON{AccountID: a.Account.ID, AccountName: a.Account.Name, Error: "no plan"}
			if a.Err != nil {
				fail.Error = a.Err.Error()
			}
			var errs spec.Errors
			if errors.As(a.Err, &errs) {
				fail.Error = english.Plural(len(errs), "problem") + " in the spec"
				for _, e := range errs {
					fail.SpecErrors = append(fail.SpecErrors, e.Error())
				}
			}
			out.Failed = append(out.Failed, fail)
			continue
		}
		out.Accounts = append(out.Accounts, fleetAccountJSON{Plan: *JSONPlan(a.Plan, withPreconditions), AccountName: a.Account.Name})
	}
	return &out
}
