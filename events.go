package main

import (
	"encoding/json"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/voxbind/voxbind/reconcile"
	"github.com/voxbind/voxbind/voximplant"
)

// applyEvents writes what apply -o json prints on stdout: JSON Lines, one
// object per line, each with its "kind": the plan, a step_start and a
// step_result per step, a retry or rate_limit line for each call the API
// client repeats, as they happen, and last the summary (or, when apply
// refuses or fails before it applies anything, the diagnostics). A fleet
// run writes a plan line per account, a refused line per account left
// out, the steps of every account as they happen, a summary per account
// as it ends, and last the fleet_summary. Every line about an account
// names it (account_id). People keep stderr. It is safe for concurrent
// use: retries come from the clients' goroutines, and the accounts of a
// fleet are applied at once.
type applyEvents struct {
	mu   sync.Mutex
	enc  *json.Encoder
	open bool // the plan line is out: events may follow
	now  func() time.Time
}

func newApplyEvents(w io.Writer) *applyEvents {
	return &applyEvents{enc: reconcile.NewJSONEncoder(w), now: time.Now}
}

// eventTime is when an event happened, in RFC 3339 with milliseconds, UTC.
type eventTime struct{ time.Time }

func (t eventTime) MarshalJSON() ([]byte, error) {
	return json.Marshal(t.UTC().Format("2006-01-02T15:04:05.000Z07:00"))
}

// applyPlanLine is the first line: the plan JSON document with its kind.
type applyPlanLine struct {
	Kind string `json:"kind"` // "plan"
	*reconcile.Plan
	Diagnostics []Diagnostic `json:"diagnostics"`
}

// applyFleetPlanLine is the plan line of one account of a fleet: the
// account's plan object, as the fleet plan JSON document has it.
type applyFleetPlanLine struct {
	Kind string `json:"kind"` // "plan"
	*reconcile.Plan
	AccountName string `json:"account_name"`
}

// applyRefused is written for each account of a fleet that apply leaves
// out: not planned, blocked changes, too many unbinds.
type applyRefused struct {
	Kind        string       `json:"kind"` // "refused"
	Time        eventTime    `json:"time"`
	AccountID   int64        `json:"account_id"`
	AccountName string       `json:"account_name"`
	Reason      string       `json:"reason"`
	Diagnostics []Diagnostic `json:"diagnostics"`
}

// applyStepStart is written just before a step's call is sent.
type applyStepStart struct {
	Kind         string                    `json:"kind"` // "step_start"
	Time         eventTime                 `json:"time"`
	AccountID    int64                     `json:"account_id"`
	Step         int                       `json:"step"`
	Action       reconcile.Action          `json:"action"`
	Registration reconcile.RegistrationRef `json:"registration"`
}

// applyStepResult is written when a step ends.
type applyStepResult struct {
	Kind      string     `json:"kind"` // "step_result"
	Time      eventTime  `json:"time"`
	AccountID int64      `json:"account_id"`
	Step      int        `json:"step"`
	Outcome   string     `json:"outcome"` // applied, failed, unknown, skipped
	Error     *stepError `json:"error"`   // failed or unknown: what the call answered
	Reason    string     `json:"reason,omitempty"`
	CausedBy  int        `json:"caused_by,omitempty"` // skipped: the step that made it impossible
	Done      int        `json:"done"`
	Total     int        `json:"total"`
}

// stepError is a step's failure: the API's error code (0 when the failure
// was not an API answer) and its message.
type stepError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// applyRetry is written when the client is about to repeat a call.
type applyRetry struct {
	Kind        string    `json:"kind"` // "retry", or "rate_limit" for a rate-limit answer
	Time        eventTime `json:"time"`
	AccountID   int64     `json:"account_id"`
	Method      string    `json:"method"`
	Cause       string    `json:"cause"`
	Detail      string    `json:"detail"`
	Attempt     int       `json:"attempt"`      // the attempt that failed
	WaitSeconds float64   `json:"wait_seconds"` // until the next one
}

// applySummary is the last line of an apply that got to its steps (in
// a fleet, the line of each account, as it ends).
type applySummary struct {
	Kind        string               `json:"kind"` // "summary"
	Time        eventTime            `json:"time"`
	AccountID   int64                `json:"account_id"`
	Applied     int                  `json:"applied"`
	Failed      int                  `json:"failed"`
	Skipped     int                  `json:"skipped"`
	NotStarted  int                  `json:"not_started"`
	Unknown     int                  `json:"unknown"`
	Verified    *int                 `json:"verified"` // null: not verified
	Differences []reconcile.Mismatch `json:"differences"`
	Stopped     *string              `json:"stopped"` // why apply stopped early; null: it ran to the end
	Journal     string               `json:"journal"` // the journal's path; "" without one
	ExitCode    int                  `json:"exit_code"`
	Diagnostics []Diagnostic         `json:"diagnostics"`
}

// applyFleetSummary is the last line of a fleet apply: how its accounts
// ended, counted as the text's last line counts them.
type applyFleetSummary struct {
	Kind           string       `json:"kind"` // "fleet_summary"
	Time           eventTime    `json:"time"`
	Accounts       int          `json:"accounts"`
	Applied        int          `json:"applied"`
	WithoutChanges int          `json:"without_changes"`
	Failed         int          `json:"failed"`
	Stopped        int          `json:"stopped"`
	Refused        int          `json:"refused"`
	NotStarted     int          `json:"not_started"`
	StoppedBy      *string      `json:"stopped_by"` // why the fleet stopped early; null: it ran to the end
	ExitCode       int          `json:"exit_code"`
	Diagnostics    []Diagnostic `json:"diagnostics"`
}

func (e *applyEvents) write(v any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.enc.Encode(v)
}

// plan writes the plan line; the events may follow it.
func (e *applyEvents) plan(p *reconcile.Plan, diags []Diagnostic) {
	e.write(applyPlanLine{"plan", reconcile.JSONPlan(p, false), diags})
	e.mu.Lock()
	e.open = true
	e.mu.Unlock()
}

// fleetPlan writes the plan line of one account of a fleet; the events
// may follow it.
func (e *applyEvents) fleetPlan(a *reconcile.FleetAccount) {
	e.write(applyFleetPlanLine{"plan", reconcile.JSONPlan(a.Plan, false), a.Account.Name})
	e.mu.Lock()
	e.open = true
	e.mu.Unlock()
}

// refused writes the line of an account of a fleet that apply leaves
// out, with its own diagnostics.
func (e *applyEvents) refused(a reconcile.AccountInfo, why string, diags []Diagnostic) {
	if diags == nil {
		diags = []Diagnostic{}
	}
	e.write(applyRefused{"refused", eventTime{e.now()}, a.ID, a.Name, why, diags})
}

// stepStart is the ApplyOptions.Sending observer of account's steps: a
// step_start is written only for a call that is sent, so every one is
// followed by its step_result.
func (e *applyEvents) stepStart(account int64) func(reconcile.Step) {
	return func(s reconcile.Step) {
		e.write(applyStepStart{"step_start", eventTime{e.now()}, account, s.Step, s.Action, s.Registration})
	}
}

// stepResult is the ApplyOptions.Progress observer of account's steps.
// Steps that never started are counted in the summary, not listed.
func (e *applyEvents) stepResult(account int64) func(reconcile.StepEvent) {
	return func(ev reconcile.StepEvent) {
		o := ev.Outcome
		if o.Status == reconcile.StepNotStarted {
			return
		}
		line := applyStepResult{Kind: "step_result", Time: eventTime{e.now()}, AccountID: account, Step: o.Step, Outcome: string(o.Status),
			Done: ev.Done, Total: ev.Total}
		switch o.Status {
		case reconcile.StepFailed, reconcile.StepUnknown:
			line.Error = stepErrorOf(o.Err)
		case reconcile.StepSkipped:
			line.Reason, line.CausedBy = o.Why, o.Cause
		}
		e.write(line)
	}
}

func stepErrorOf(err error) *stepError {
	if err == nil {
		return &stepError{Message: "unknown error"}
	}
	var se *reconcile.StepError
	if errors.As(err, &se) {
		err = se.Err
	}
	out := &stepError{Message: err.Error()}
	var ae *voximplant.APIError
	if errors.As(err, &ae) {
		out.Code = ae.Code
	}
	return out
}

// retry is a retryHook: retries before the plan line (while the account
// is read) are not events of the apply.
func (e *applyEvents) retry(account int64, r voximplant.RetryEvent) {
	e.mu.Lock()
	open := e.open
	e.mu.Unlock()
	if !open {
		return
	}
	kind := "retry"
	if r.Cause == voximplant.CauseRateLimited {
		kind = "rate_limit"
	}
	e.write(applyRetry{kind, eventTime{e.now()}, account, r.Method, string(r.Cause), r.Detail, r.Attempt, r.Wait.Seconds()})
}

// summary writes the summary line of the apply of applied.AccountID: the
// last line of the apply of one account.
func (e *applyEvents) summary(res *reconcile.ApplyResult, applied *reconcile.Plan, mismatches []reconcile.Mismatch, verified bool, journal string, code int, diags []Diagnostic) {
	line := applySummary{Kind: "summary", Time: eventTime{e.now()}, AccountID: applied.AccountID, Applied: res.Applied, Failed: res.Failed, Skipped: res.Skipped,
		NotStarted: res.NotStarted, Unknown: res.Unknown, Differences: mismatches, Journal: journal, ExitCode: code, Diagnostics: diags}
	if line.Differences == nil {
		line.Differences = []reconcile.Mismatch{}
	}
	if verified {
		n := reconcile.VerifiedSteps(applied, mismatches)
		line.Verified = &n
	}
	if res.Stopped != nil {
		why := reconcile.StopReason(res.Stopped)
		line.Stopped = &why
	}
	e.write(line)
}

// fleetSummary writes the last line of a fleet apply.
func (e *applyEvents) fleetSummary(n fleetApplyCounts, accounts int, stopped error, code int, diags []Diagnostic) {
	line := applyFleetSummary{Kind: "fleet_summary", Time: eventTime{e.now()}, Accounts: accounts, Applied: n.applied, WithoutChanges: n.unchanged,
		Failed: n.failed, Stopped: n.stopped, Refused: n.refused, NotStarted: n.notStarted, ExitCode: code, Diagnostics: diags}
	if stopped != nil {
		why := reconcile.StopReason(stopped)
		line.StoppedBy = &why
	}
	e.write(line)
}
