package reconcile

import (
	"context"
	"strconv"
)

// MaxPlanSize is the largest plan file apply --plan reads: a plan of
// 100,000 steps that bind users, with preconditions, is about 90 MB.
const MaxPlanSize = 256 << 20

// maxPlanSize is what ReadPlan enforces; tests lower it.
var maxPlanSize = MaxPlanSize

// ObservePlan reads the account as Observe does with no spec, plus the
// rules and users of every application that a step of p names together
// with a rule or a user, so that Stale can check the names p records.
func ObservePlan(ctx context.Context, acct Account, p *Plan) (*Current, error) {
	targets := make([]*Target, 0, 2*len(p.Changes))
	for _, s := range p.Changes {
		targets = append(targets, s.Before, s.After)
	}
	return observeTargets(ctx, acct, targets)
}

// observeTargets reads the account as Observe does with no spec, plus the
// rules of every application that one of targets names with a rule, and
// the users of every one named with a user: what it takes to check those
// targets' names against the account.
func observeTargets(ctx context.Context, acct Account, targets []*Target) (*Current, error) {
	c, err := Observe(ctx, acct, nil)
	if err != nil {
		return nil, err
	}
	var needRules, needUsers []int64
	for _, t := range targets {
		switch {
		case t == nil:
		case t.Rule != nil:
			needRules = append(needRules, t.Application.ID)
		case t.User != nil:
			needUsers = append(needUsers, t.Application.ID)
		}
	}
	// Only applications that exist: a target naming another one is
	// reported by the caller, not as a failed read.
	exists := make(map[int64]bool, len(c.Applications))
	for _, a := range c.Applications {
		exists[a.ID] = true
	}
	keep := func(ids []int64) []int64 {
		out := ids[:0]
		for _, id := range ids {
			if exists[id] {
				out = append(out, id)
			}
		}
		return out
	}
	if err := observeFetch(ctx, acct, c, keep(needRules), keep(needUsers)); err != nil {
		return nil, err
	}
	return c, nil
}

// savedIndex finds what a saved plan names in the account read now.
type savedIndex struct {
	current *Current
	regs    map[int64]*Registration
	apps    map[int64]*Application
	rules   map[int64]*Rule // by id, of the applications read
	users   map[int64]*User
}

func newSavedIndex(current *Current) *savedIndex {
	x := &savedIndex{
		current: current,
		regs:    registrationsByID(current),
		apps:    make(map[int64]*Application, len(current.Applications)),
		rules:   make(map[int64]*Rule),
		users:   make(map[int64]*User),
	}
	for i := range current.Applications {
		x.apps[current.Applications[i].ID] = &current.Applications[i]
	}
	for _, list := range current.Rules {
		for i := range list {
			x.rules[list[i].ID] = &list[i]
		}
	}
	for _, list := range current.Users {
		for i := range list {
			x.users[list[i].ID] = &list[i]
		}
	}
	return x
}

// recorded checks what a saved step shows a person against the account:
// the registration's name, the before target (its ids must be those of
// the precondition, its names those the account shows now) and the names
// of the after target. A plan edited by hand, to show "carol" while
// writing registration 3005, fails here. stale receives each problem.
func (x *savedIndex) recorded(s *Step, r *Registration, stale func(format string, args ...any)) {
	if s.Registration.SIPUsername != r.SIPUsername || s.Registration.Proxy != r.Proxy {
		stale("the plan names it %s, but registration %d is %s in the account", regName(planReg(&s.Registration)), r.ID, regName(&r.RegistrationRef))
	}
	pre := s.Precondition
	switch {
	case !s.Before.Equal(pre.Target):
		stale("the plan shows it before as %s, but its precondition records %s: the plan was edited", renderTarget(planTarget(s.Before)), renderTarget(planTarget(pre.Target)))
	case s.Before.Equal(r.Target) && !savedSameNames(s.Before, r.Target):
		stale("the plan shows it before as %s, but the account names that target %s", renderTarget(planTarget(s.Before)), renderTarget(r.Target))
	}
	if t := s.After; t != nil {
		app, ok := x.apps[t.Application.ID]
		switch {
		case !ok:
			stale("application %d of its target is not in the account", t.Application.ID)
			return
		case app.Name != t.Application.Name:
			stale("the plan names application %d %s, but the account names it %s", app.ID, Printable(planRef(t.Application).Name), Printable(app.Name))
		}
		if t.Rule != nil {
			x.member("rule", t.Rule, app, ruleOf(x.rules[t.Rule.ID]), stale)
		}
		if t.User != nil {
			x.member("user", t.User, app, userOf(x.users[t.User.ID]), stale)
		}
	}
	if h := pre.UserHolder; h != nil {
		if now, ok := x.regs[h.ID]; ok && (now.SIPUsername != h.SIPUsername || now.Proxy != h.Proxy) {
			stale("the plan names the user's holder %s, but registration %d is %s in the account", regName(planReg(h)), h.ID, regName(&now.RegistrationRef))
		}
	}
}

// savedMember is a rule or a user found by id, with its application.
type savedMember struct {
	found bool
	app   int64
	name  string
}

func ruleOf(r *Rule) savedMember {
	if r == nil {
		return savedMember{}
	}
	return savedMember{true, r.ApplicationID, r.Name}
}

func userOf(u *User) savedMember {
	if u == nil {
		return savedMember{}
	}
	return savedMember{true, u.ApplicationID, u.Name}
}

func (x *savedIndex) member(kind string, ref *Ref, app *Application, m savedMember, stale func(format string, args ...any)) {
	switch {
	case !m.found:
		stale("%s %d of its target is not in application %s", kind, ref.ID, appLabel(app))
	case m.app != app.ID:
		stale("%s %d (%s) belongs to application %d, not to %s as the plan says", kind, ref.ID, Printable(m.name), m.app, appLabel(app))
	case m.name != ref.Name:
		stale("the plan names %s %d %s, but the account names it %s", kind, ref.ID, Printable(planRef(*ref).Name), Printable(m.name))
	}
}

// savedSameNames reports whether two targets with the same ids also carry
// the same names.
func savedSameNames(a, b *Target) bool {
	if a == nil || b == nil {
		return a == b
	}
	name := func(r *Ref) string {
		if r == nil {
			return ""
		}
		return r.Name
	}
	return a.Application.Name == b.Application.Name && name(a.Rule) == name(b.Rule) && name(a.User) == name(b.User)
}

// sideEffects checks that every side effect of a saved plan names its
// registration as the account does. (Whether it still holds the user is
// the causing step's precondition; ReadPlan checks that the two agree.)
func (x *savedIndex) sideEffects(p *Plan) []StaleStep {
	var out []StaleStep
	for _, e := range p.SideEffects {
		if r, ok := x.regs[e.Registration.ID]; ok && (r.SIPUsername != e.Registration.SIPUsername || r.Proxy != e.Registration.Proxy) {
			out = append(out, StaleStep{Step: e.CausedByStep, Registration: e.Registration, Changed: "side effect: the plan names it " + regName(planReg(&e.Registration)) +
				", but registration " + strconv.FormatInt(r.ID, 10) + " is " + regName(&r.RegistrationRef) + " in the account"})
		}
	}
	return out
}
