// Package reconcile turns a desired spec and the observed account into a
// plan of BindSipRegistration calls, renders it, and applies it.
//
// Around that core it holds what an apply needs before and after: the
// unbind guard, the check of a saved plan against the account as it is
// now (Stale), the apply journal and the undo plan made from one (Undo),
// the read-back that verifies an apply (Verify, OutsidePlan), the fleet
// of accounts planned together (PlanFleet), and export, which writes an
// account as a spec.
//
// The planner is pure: it takes values and returns a Plan. Reading the
// account and writing to it go through the Account interface, which the
// Voximplant client implements.
package reconcile

import (
	"context"
	"errors"
)

// Account is the part of a Voximplant account that voxbind reads and writes.
// The Voximplant HTTP client implements it; tests use an in-memory fake.
type Account interface {
	// Info returns the id and name of the account acted on.
	Info(ctx context.Context) (AccountInfo, error)
	// Registrations returns every SIP registration of the account.
	Registrations(ctx context.Context) ([]Registration, error)
	// Applications returns every application of the account, full names.
	Applications(ctx context.Context) ([]Application, error)
	// Rules returns every rule of one application.
	Rules(ctx context.Context, applicationID int64) ([]Rule, error)
	// Users returns every user of one application.
	Users(ctx context.Context, applicationID int64) ([]User, error)
	// Bind makes one BindSipRegistration call: with a target it sends
	// bind=true and the target's ids; with nil it sends bind=false.
	// Cancelling ctx stops retries, but a request already sent may run to
	// its answer: a write is not abandoned half-way (Apply bounds that
	// wait). An error that matches ErrOutcomeUnknown says that the call
	// may have taken effect although no answer said so; one that matches
	// ErrNotSent, that ctx ended before anything was sent. Just before its
	// first request leaves (after any wait of its own for its turn, such
	// as a rate limit), Bind calls Sending(ctx).
	Bind(ctx context.Context, registrationID int64, target *Target) error
}

// sendingKey is the context key of the function Sending calls.
type sendingKey struct{}

// withSending returns ctx carrying f, for Bind to call through Sending.
func withSending(ctx context.Context, f func()) context.Context {
	return context.WithValue(ctx, sendingKey{}, f)
}

// Sending tells Apply that a Bind's call is about to be sent, when ctx is
// the one Apply gave Bind (ApplyOptions.Sending); otherwise it does
// nothing. An Account calls it at most once per Bind, after any wait for
// its turn: a call that never leaves is never told of.
func Sending(ctx context.Context) {
	if f, ok := ctx.Value(sendingKey{}).(func()); ok {
		f()
	}
}

// ErrOutcomeUnknown is matched (errors.Is) by a Bind error when the request
// may have reached the account but its answer was lost and no retry
// settled it: the step is neither applied nor failed, and the next plan
// shows which.
var ErrOutcomeUnknown = errors.New("the outcome is unknown: the answer was lost")

// ErrNotSent is matched by a Bind error when ctx ended before the call's
// first request was sent: nothing reached the account, so the step was
// not started rather than failed.
var ErrNotSent = errors.New("the call was not sent")

// AccountInfo identifies the account acted on.
type AccountInfo struct {
	ID   int64
	Name string // account_name; full application names end in .<Name>.voximplant.com
	// State is "" for an account voxbind may write to, else AccountFrozen
	// or AccountInactive: a plan of it blocks every change (blockAccount).
	State string
}

// The states of an account that voxbind never writes to, as
// AccountInfo.State and Plan.AccountState give them.
const (
	AccountFrozen   = "frozen"   // frozen in the control panel (unpaid, or by Voximplant)
	AccountInactive = "inactive" // deactivated
)

// Ref names one object (application, rule or user) by id and name.
type Ref struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

// Target is what a registration is bound to. A nil *Target means unbound.
type Target struct {
	Application Ref  `json:"application"`
	Rule        *Ref `json:"rule"`
	User        *Ref `json:"user"`
}

// Equal reports whether two targets (either may be nil) are the same binding.
// Only ids are compared: names are for people.
func (t *Target) Equal(o *Target) bool {
	if t == nil || o == nil {
		return t == nil && o == nil
	}
	return t.Application.ID == o.Application.ID && refID(t.Rule) == refID(o.Rule) && refID(t.User) == refID(o.User)
}

func refID(r *Ref) int64 {
	if r == nil {
		return 0
	}
	return r.ID
}

// RegistrationRef identifies a SIP registration in plans and messages.
type RegistrationRef struct {
	ID          int64  `json:"id"`
	SIPUsername string `json:"sip_username"`
	Proxy       string `json:"proxy"`
}

// Registration is one SIP registration as observed.
type Registration struct {
	RegistrationRef
	Deactivated bool    // frozen: voxbind never writes it
	Target      *Target // nil when unbound
}

// Application is an application of the account; Name is the full name.
type Application struct {
	ID   int64
	Name string
}

// Rule is a rule of one application.
type Rule struct {
	ID            int64
	ApplicationID int64
	Name          string
}

// User is a user of one application.
type User struct {
	ID            int64
	ApplicationID int64
	Name          string
}

// Current is the observed account that the planner diffs the spec against.
type Current struct {
	Account       AccountInfo
	Registrations []Registration
	Applications  []Application
	// Rules and Users of the applications that were read, by application
	// id. An application missing from the map was not read.
	Rules map[int64][]Rule
	Users map[int64][]User
}
