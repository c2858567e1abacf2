package reconcile

import (
	"context"
	"fmt"
	"slices"
	"sync"
)

// fakeAccount is an in-memory Account that follows the write rules of
// docs/management-api.md and logs every Bind call. Tests that need the
// HTTP path use the sandbox instead.
type fakeAccount struct {
	mu      sync.Mutex
	current Current
	calls   []fakeCall
	// displaced logs every registration that lost its user because another
	// was bound to it (docs/management-api.md, choice 2), in the order it happened.
	displaced []fakeDisplacement
	// fail, when set, is asked before each Bind; a non-nil error is returned
	// without changing anything.
	fail func(registrationID int64, target *Target) error
	// reads logs every read ("info", "registrations", "applications",
	// "rules 77", "users 77"); failRead, when set, is asked before each
	// and a non-nil error is returned instead of the data.
	reads    []string
	failRead func(read string) error
}

// read logs one read and asks failRead.
func (f *fakeAccount) read(what string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads = append(f.reads, what)
	if f.failRead != nil {
		return f.failRead(what)
	}
	return nil
}

// fakeDisplacement is one registration losing its user to a Bind call.
type fakeDisplacement struct {
	Call           int // index into calls
	RegistrationID int64
	User           Ref
}

// fakeCall is one Bind as the fake received it.
type fakeCall struct {
	RegistrationID int64
	Target         *Target
}

func newFakeAccount(c Current) *fakeAccount {
	c.Registrations = slices.Clone(c.Registrations)
	return &fakeAccount{current: c}
}

func (f *fakeAccount) Info(context.Context) (AccountInfo, error) {
	if err := f.read("info"); err != nil {
		return AccountInfo{}, err
	}
	return f.current.Account, nil
}

func (f *fakeAccount) Registrations(context.Context) ([]Registration, error) {
	if err := f.read("registrations"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Registration, len(f.current.Registrations))
	for i, r := range f.current.Registrations {
		out[i] = r
		out[i].Target = cloneTarget(r.Target)
	}
	return out, nil
}

func (f *fakeAccount) Applications(context.Context) ([]Application, error) {
	if err := f.read("applications"); err != nil {
		return nil, err
	}
	return slices.Clone(f.current.Applications), nil
}

func (f *fakeAccount) Rules(_ context.Context, app int64) ([]Rule, error) {
	if err := f.read(fmt.Sprintf("rules %d", app)); err != nil {
		return nil, err
	}
	return slices.Clone(f.current.Rules[app]), nil
}

func (f *fakeAccount) Users(_ context.Context, app int64) ([]User, error) {
	if err := f.read(fmt.Sprintf("users %d", app)); err != nil {
		return nil, err
	}
	return slices.Clone(f.current.Users[app]), nil
}

// Bind applies the choices of docs/management-api.md: an unknown
// registration, a target the sandbox would refuse (checkTarget, choice 4)
// or a frozen registration fails without a change; bind sets exactly the
// target (choice 1), binding to a user fully unbinds its previous holder
// (choice 2) and unbind clears everything (choice 3).
func (f *fakeAccount) Bind(_ context.Context, id int64, target *Target) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fakeCall{id, cloneTarget(target)})
	if f.fail != nil {
		if err := f.fail(id, target); err != nil {
			return err
		}
	}
	i := slices.IndexFunc(f.current.Registrations, func(r Registration) bool { return r.ID == id })
	if i < 0 {
		return fmt.Errorf("fake: api error 275: invalid sip_registration_id %d", id)
	}
	if err := f.checkTarget(target); err != nil {
		return err
	}
	if f.current.Registrations[i].Deactivated {
		return fmt.Errorf("fake: api error 496: registration %d is deactivated", id)
	}
	if target != nil && target.User != nil {
		for j := range f.current.Registrations {
			r := &f.current.Registrations[j]
			if j != i && r.Target != nil && r.Target.User != nil && r.Target.User.ID == target.User.ID {
				f.displaced = append(f.displaced, fakeDisplacement{len(f.calls) - 1, r.ID, *r.Target.User})
				r.Target = nil
			}
		}
	}
	f.current.Registrations[i].Target = cloneTarget(target)
	return nil
}

// checkTarget refuses a target as the sandbox does (docs/management-api.md,
// the emulator's choices): an unknown application 116, a rule that is not
// one of the application's 147, an unknown user 117, a user of another
// application 393, a rule and a user together 458. The caller holds f.mu.
func (f *fakeAccount) checkTarget(t *Target) error {
	if t == nil {
		return nil
	}
	if !slices.ContainsFunc(f.current.Applications, func(a Application) bool { return a.ID == t.Application.ID }) {
		return fmt.Errorf("fake: api error 116: invalid application_id %d", t.Application.ID)
	}
	if t.Rule != nil && t.User != nil {
		return fmt.Errorf("fake: api error 458: a rule and a user together")
	}
	if t.Rule != nil && !slices.ContainsFunc(f.current.Rules[t.Application.ID], func(r Rule) bool { return r.ID == t.Rule.ID }) {
		return fmt.Errorf("fake: api error 147: application %d has no rule %d", t.Application.ID, t.Rule.ID)
	}
	if t.User != nil {
		for app, users := range f.current.Users {
			if slices.ContainsFunc(users, func(u User) bool { return u.ID == t.User.ID }) {
				if app != t.Application.ID {
					return fmt.Errorf("fake: api error 393: user %d is not bound to application %d", t.User.ID, t.Application.ID)
				}
				return nil
			}
		}
		return fmt.Errorf("fake: api error 117: invalid user_id %d", t.User.ID)
	}
	return nil
}

func cloneTarget(t *Target) *Target {
	if t == nil {
		return nil
	}
	c := *t
	if t.Rule != nil {
		r := *t.Rule
		c.Rule = &r
	}
	if t.User != nil {
		u := *t.User
		c.User = &u
	}
	return &c
}

// callCount is the number of Bind calls so far.
func (f *fakeAccount) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}
