package reconcile

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/voxbind/voxbind/spec"
)

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
			// Another voxbind wrote it: made again, as a plan of another
			// format_version at the top level is (PlanFileFix).
			errs = append(errs, remakeError{fmt.Errorf("%s: format_version %d, but this voxbind reads format_version %d", at, p.FormatVersion, FormatVersion)})
		}
		if seen[p.AccountID] {
			errs = append(errs, fmt.Errorf("%s: the plan has it twice", at))
		}
		seen[p.AccountID] = true
		for _, e := range checkPlan(p, forApply, hasSummary == nil || hasSummary[i]) {
			errs = append(errs, fmt.Errorf("%s: %w", at, e))
		}
		planNonNil(p)
		out = append(out, FleetAccount{Account: AccountInfo{ID: p.AccountID, Name: a.AccountName}, Plan: p})
	}
	return out, errs
}

// fleetSummaryErrors compares the fleet's summary with the steps of its
// accounts' plans: an edited count is an edited plan.
func fleetSummaryErrors(in *FleetJSON) []error {
	if in.Summary == nil {
		return nil
	}
	var steps Summary
	for _, a := range in.Accounts {
		n := stepCounts(a.Changes)
		steps.Bind += n.Bind
		steps.Rebind += n.Rebind
		steps.Unbind += n.Unbind
	}
	fleet := Summary{Bind: in.Summary.Bind, Rebind: in.Summary.Rebind, Unbind: in.Summary.Unbind}
	var errs []error
	for _, m := range summaryMismatches(fleet, steps, "the fleet's summary", "its accounts' plans have") {
		errs = append(errs, errors.New(m))
	}
	return errs
}
