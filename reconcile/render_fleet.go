package reconcile

import (
	"bufio"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
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
			fmt.Fprintf(&b, "\n…and %d more accounts (`voxbind plan -o json` lists them all)\n", len(f.Accounts)-i)
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
		fmt.Fprintf(&b, "\n…and the plans of %d more %s (`voxbind plan -o json` shows them all)\n", left, english.Choose(left, "account", "accounts"))
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

// IsFleetPlan reports whether data is fleet plan JSON ("kind": "fleet"),
// as opposed to the plan of one account. It reads only the top level.
func IsFleetPlan(data []byte) bool {
	var probe struct {
		Kind json.RawMessage `json:"kind"`
	}
	if json.Unmarshal(data, &probe) != nil {
		return false
	}
	return probe.Kind != nil
}

// unknownKind says what is wrong with a saved plan's "kind" (kind "" is
// no "kind" at all) where a fleet plan was expected, or a kind voxbind
// never writes.
func unknownKind(kind string) string {
	if kind == "" {
		return fmt.Sprintf("not a fleet plan: it has no \"kind\" (a fleet plan has \"kind\": %q)", fleetKind)
	}
	return fmt.Sprintf("\"kind\": %s is not a kind of plan voxbind writes (a fleet plan has \"kind\": %q; the plan of one account has no \"kind\")", planQuote(kind), fleetKind)
}

// ReadFleetPlan decodes a fleet plan saved by plan --out and checks that
// apply can execute it: kind "fleet", format_version 1, each account at
// most once, no account that failed to plan, and every account's plan as
// ReadPlan checks it. Every problem found is reported, one per line,
// naming its account. The accounts are returned in account-id order,
// whatever their order in the file (a plan edited by hand), since that
// is the order a fleet is shown and applied in.
func ReadFleetPlan(data []byte) (*FleetPlan, error) { return readFleetPlan(data, true) }

// ReviewFleetPlan is ReviewPlan for a fleet plan: what ReadFleetPlan
// reads, and also what plan -o json printed for a fleet, whose steps have
// no precondition and whose accounts that could not be planned are listed
// as failed (they come back with their error).
func ReviewFleetPlan(data []byte) (*FleetPlan, error) { return readFleetPlan(data, false) }

// readFleetPlan is ReadFleetPlan, or ReviewFleetPlan when forApply is
// false. Either takes the diagnostics that plan -o json adds, and drops
// them. Every problem of the file is reported, not only the first.
func readFleetPlan(data []byte, forApply bool) (*FleetPlan, error) {
	in, hasSummary, err := decodeFleetPlan(data)
	if err != nil {
		return nil, err
	}
	var errs []error
	if in.Summary == nil {
		errs = append(errs, errNoSummary)
	}
	f := &FleetPlan{Accounts: make([]FleetAccount, 0, len(in.Accounts)+len(in.Failed))}
	if forApply && len(in.Failed) > 0 {
		ids := make([]int64, len(in.Failed))
		for i, x := range in.Failed {
			ids[i] = x.AccountID
		}
		errs = append(errs, fmt.Errorf("%s could not be planned: apply --plan needs a plan of every account; fix them and make the plan again", spec.AccountList(ids)))
	} else {
		f.Accounts = append(f.Accounts, failedFleetAccounts(in.Failed)...)
	}
	planned, perrs := plannedFleetAccounts(in, hasSummary, f.Accounts, forApply)
	f.Accounts = append(f.Accounts, planned...)
	errs = append(errs, perrs...)
	if len(in.Accounts) == 0 && len(in.Failed) == 0 {
		errs = append(errs, errors.New("the plan has no account"))
	}
	errs = append(errs, fleetSummaryErrors(in)...)
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w:\n%w", ErrPlanFormat, errors.Join(errs...))
	}
	slices.SortStableFunc(f.Accounts, func(a, b FleetAccount) int { return cmp.Compare(a.Account.ID, b.Account.ID) })
	return f, nil
}

// decodeFleetPlan decodes a fleet plan file strictly, and tells for each
// of its accounts whether it has a summary: a missing one and "summary":
// null both decode to zero counts. hasSummary is nil when that cannot be
// told; then no account is taken to lack one.
func decodeFleetPlan(data []byte) (in *FleetJSON, hasSummary []bool, err error) {
	kind, err := planProbe(data)
	if err != nil {
		return nil, nil, err
	}
	if kind != fleetKind {
		return nil, nil, fmt.Errorf("%w: %s", ErrPlanFormat, unknownKind(kind))
	}
	in = new(FleetJSON)
	doc := struct {
		*FleetJSON
		Diagnostics json.RawMessage `json:"diagnostics"`
	}{FleetJSON: in}
	if err := decodeStrict(data, &doc); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrPlanFormat, err)
	}
	var present struct {
		Accounts []struct {
			Summary *Summary `json:"summary"`
		} `json:"accounts"`
	}
	if json.Unmarshal(data, &present) == nil && len(present.Accounts) == len(in.Accounts) {
		hasSummary = make([]bool, len(present.Accounts))
		for i, a := range present.Accounts {
			hasSummary[i] = a.Summary != nil
		}
	}
	return in, hasSummary, nil
}

// failedFleetAccounts are the accounts a fleet plan lists as not planned,
// each with its error (and its spec's errors) as the plan says them.
func failedFleetAccounts(failed []fleetFailureJSON) []FleetAccount {
	out := make([]FleetAccount, 0, len(failed))
	for _, x := range failed {
		msg := x.Error
		if len(x.SpecErrors) > 0 {
			msg += ":\n" + strings.Join(x.SpecErrors, "\n")
		}
		out = append(out, FleetAccount{Account: AccountInfo{ID: x.AccountID, Name: x.AccountName}, Err: errors.New(msg)})
	}
	return out
}

// plannedFleetAccounts checks the plan of each planned account of in (its
// format, that no account comes twice, after those in before, its steps,
// its summary), and returns them with every problem, each naming its
// account.
func plannedFleetAccounts(in *FleetJSON, hasSummary []bool, before []FleetAccount, forApply bool) ([]FleetAccount, []error) {
	var errs []error
	seen := make(map[int64]bool, len(before)+len(in.Accounts))
	for _, a := range before {
		seen[a.Account.ID] = true
	}
	out := make([]FleetAccount, 0, len(in.Accounts))
	for i := range in.Accounts {
		a := &in.Accounts[i]
		p := &a.Plan
		at := "account " + strconv.FormatInt(p.AccountID, 10)
		if p.FormatVersion != FormatVersion {
			errs = append(errs, fmt.Errorf("%s: format_version %d: this voxbind reads %d", at, p.FormatVersion, FormatVersion))
		}
		if seen[p.AccountID] {
			errs = append(errs, fmt.Errorf("%s: the plan has it twice", at))
		}
		seen[p.AccountID] = true
		for _, e := range checkPlan(p, forApply) {
			errs = append(errs, fmt.Errorf("%s: %w", at, e))
		}
		if hasSummary != nil && !hasSummary[i] {
			errs = append(errs, fmt.Errorf("%s: %w", at, errNoSummary))
		}
		planNonNil(p)
		out = append(out, FleetAccount{Account: AccountInfo{ID: p.AccountID, Name: a.AccountName}, Plan: p})
	}
	return out, errs
}

// fleetSummaryErrors compares the fleet's summary with the sum of its
// accounts' summaries: an edited count is an edited plan.
func fleetSummaryErrors(in *FleetJSON) []error {
	if in.Summary == nil {
		return nil
	}
	var steps Summary
	for _, a := range in.Accounts {
		steps.Bind += a.Summary.Bind
		steps.Rebind += a.Summary.Rebind
		steps.Unbind += a.Summary.Unbind
	}
	fleet := Summary{Bind: in.Summary.Bind, Rebind: in.Summary.Rebind, Unbind: in.Summary.Unbind}
	var errs []error
	for _, m := range summaryMismatches(fleet, steps, "the fleet's summary", "its accounts' plans have") {
		errs = append(errs, errors.New(m))
	}
	return errs
}
