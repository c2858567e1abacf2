package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/voxbind/voxbind/internal/english"
	"github.com/voxbind/voxbind/reconcile"
	"github.com/voxbind/voxbind/spec"
	"github.com/voxbind/voxbind/voximplant"
)

// A fleet run is a plan or apply whose spec files name several accounts
// (spec.Fleet): each account is read, planned and applied on its own, with
// its own client and rate limiter, --accounts-parallelism at a time, and
// one account's failure does not stop the others.

// selectAccounts applies --account-id to the accounts the spec files name.
// In a fleet run it selects that account only. Otherwise the spec's
// account_id, where set, must be that account (the guard), checked before
// anything is contacted.
func (f *AccountFlags) selectAccounts(fleet *spec.Fleet) ([]*spec.Spec, error) {
	if err := f.check(); err != nil {
		return nil, err
	}
	id := f.AccountID
	if !fleet.Several() {
		s := fleet.Specs[0]
		if id != 0 && s.AccountID != 0 && s.AccountID != id {
			return nil, spec.Errors{spec.NewError(s.AccountIDPos, spec.CodeAccountMismatch,
				fmt.Sprintf("account_id %d is not account %d, the one --account-id names", s.AccountID, id),
				fmt.Sprintf("remove --account-id to act on account %d, or correct account_id", s.AccountID))}
		}
		return fleet.Specs, nil
	}
	if id == 0 {
		return fleet.Specs, nil
	}
	if s := fleet.Spec(id); s != nil {
		return []*spec.Spec{s}, nil
	}
	return nil, failure(string(spec.CodeAccountMismatch), fmt.Sprintf("--account-id %d: no spec file names account_id %d; the files are for %s", id, id, spec.AccountList(fleet.AccountIDs())),
		"give one of those accounts, or leave out --account-id to plan them all")
}

// checkAccountsParallelism refuses an --accounts-parallelism below 1.
func checkAccountsParallelism(n int) error {
	if n < 1 {
		return failure(codeUsage, fmt.Sprintf("--accounts-parallelism %d: give at least 1 (the number of accounts handled at once)", n), "")
	}
	return nil
}

// fleetClients opens and keeps the client of every account of a fleet
// run: apply plans with a client and then applies and verifies with the
// same one, whose rate limiter has learnt the account's limit by then.
type fleetClients struct {
	flags *AccountFlags
	conn  *connection

	mu      sync.Mutex
	clients map[int64]*voximplant.Client
}

// openFleetClients connects for a fleet run of parallelism accounts at a
// time.
func (f *AccountFlags) openFleetClients(ctx context.Context, s *session, rate float64, onRetry retryHook, parallelism int) (*fleetClients, error) {
	conn, err := f.connect(ctx, s, rate, onRetry, parallelism)
	if err != nil {
		return nil, err
	}
	return &fleetClients{flags: f, conn: conn, clients: map[int64]*voximplant.Client{}}, nil
}

// open is a reconcile.FleetOpener: a client for the account desired is
// for (see actingOn).
func (fc *fleetClients) open(_ context.Context, desired *spec.Spec) (reconcile.Account, error) {
	id, source := fc.flags.actingOn(desired)
	return fc.client(id, source)
}

// client returns the client of account id (0: the key's own), opening it
// the first time.
func (fc *fleetClients) client(id int64, source string) (*voximplant.Client, error) {
	if id == 0 {
		id = fc.conn.keyAccount()
	}
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if c, ok := fc.clients[id]; ok {
		return c, nil
	}
	c, err := fc.conn.client(id, source)
	if err != nil {
		return nil, err
	}
	fc.clients[id] = c
	return c, nil
}

// close releases the connection; a failure is a warning, as for one
// account.
func (fc *fleetClients) close(s *session) { closeWarn(s, fc.conn.close) }

// planFleet plans every account of desired. Accounts that could not be
// planned are in the result with their error (fleetFailed reports them);
// the error is the run's: interrupted, or a selector that matches in no
// account.
func planFleet(ctx context.Context, s *session, fc *fleetClients, desired []*spec.Spec, opts reconcile.Options, parallelism int) (*reconcile.FleetPlan, error) {
	done := s.phase(fmt.Sprintf("Planning %s, %d at a time", english.Plural(len(desired), "account"), min(parallelism, len(desired))))
	f := reconcile.PlanFleet(ctx, desired, fc.open, opts, parallelism, nil)
	done()
	for i := range f.Accounts {
		a := &f.Accounts[i]
		if a.Err != nil {
			// The key's refusal as a run of this account alone gives it:
			// the whole message (without "read account info:"), its
			// code, its fix and the spec's line.
			a.Err = cannotActAt(a.Err, desired[i])
		}
		if a.Account.ID == 0 {
			a.Account.ID = fc.conn.keyAccount()
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, context.Cause(ctx)
	}
	if err := f.SelectsNothing(); err != nil {
		return nil, exitCode(1, err)
	}
	for i := range f.Accounts {
		if p := f.Accounts[i].Plan; p != nil {
			warnUnmatchedIgnores(s, p)
		}
	}
	return f, nil
}

// fleetDiagnostics records, for -o json, why each account that could not
// be planned failed (accountDiagnostics).
func fleetDiagnostics(s *session, f *reconcile.FleetPlan) {
	for i := range f.Accounts {
		for _, d := range accountDiagnostics(&f.Accounts[i]) {
			s.diag.add(d)
		}
	}
}

// accountDiagnostics is why the account a of a fleet could not be planned,
// named with the account: its spec problems, or the error; none when it
// was planned.
func accountDiagnostics(a *reconcile.FleetAccount) []Diagnostic {
	if a.Plan != nil || a.Err == nil {
		return nil
	}
	var out []Diagnostic
	var errs spec.Errors
	if errors.As(a.Err, &errs) {
		for _, e := range errs {
			out = append(out, specDiagnostic(e))
		}
	} else {
		out = append(out, diagnosticOf(a.Err))
	}
	for i := range out {
		out[i].Message = fleetAccountLabel(a.Account) + ": " + out[i].Message
	}
	return out
}

// fleetFailed is the error of a fleet run some of whose accounts could not
// be planned, nil when every account was.
func fleetFailed(f *reconcile.FleetPlan) error {
	var ids []int64
	for _, a := range f.Accounts {
		if a.Plan == nil {
			ids = append(ids, a.Account.ID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	return failure(codeFleetFailed, fmt.Sprintf("%d of %s could not be read or planned (%s): the plan says why", len(ids), english.Plural(len(f.Accounts), "account"), accountIDs(ids)), "")
}

// accountIDs lists ids for a message: "1000002, 1000004", at most ten and
// then how many in all.
func accountIDs(ids []int64) string {
	const show = 10
	s := ""
	for i, id := range ids {
		if i == show {
			return s + fmt.Sprintf(", … (%d in all)", len(ids))
		}
		if i > 0 {
			s += ", "
		}
		s += strconv.FormatInt(id, 10)
	}
	return s
}

// fleetPlanJSON is the fleet plan JSON document with the run's
// diagnostics.
type fleetPlanJSON struct {
	*reconcile.FleetJSON
	Diagnostics []Diagnostic `json:"diagnostics"`
}

// fleetRender writes the fleet plan in the format -o asks for on stdout;
// full lists every change of the text plan.
func fleetRender(s *session, f *reconcile.FleetPlan, format string, color, full bool) error {
	w := s.stdio.Out
	switch format {
	case "json":
		s.diag.written = true
		return writeJSON(w, fleetPlanJSON{reconcile.NewFleetJSON(f, false), s.diag.diagnostics()}, true)
	case "markdown":
		return reconcile.RenderFleetMarkdown(w, f)
	}
	return reconcile.RenderFleetText(w, f, color, full)
}

// savedIn records in each account's plan of f the file the fleet plan
// was read from and the flags that chose the account (reconcile.Plan.File
// and Flags).
func savedIn(f *reconcile.FleetPlan, path, flags string) {
	for _, a := range f.Accounts {
		if a.Plan != nil {
			a.Plan.File, a.Plan.Flags = path, flags
		}
	}
}

// fleetAccountLabel is "account 1000002 (demo-child1)".
func fleetAccountLabel(a reconcile.AccountInfo) string {
	s := fmt.Sprintf("account %d", a.ID)
	if a.Name != "" {
		s += " (" + reconcile.Printable(a.Name) + ")"
	}
	return s
}
