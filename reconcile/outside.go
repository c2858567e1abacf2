package reconcile

import (
	"cmp"
	"slices"
)

// Before is what verification keeps of an account as read before its
// apply: every registration's target, by ids (32 bytes a registration,
// so that a fleet can keep it for every account), and, when kept, the
// read itself, for the names of the targets it reports.
type Before struct {
	regs    []beforeReg // by registration id
	current *Current    // nil when the names were not kept
}

// beforeReg is one registration's target by ids; app is 0 when it was
// unbound, rule and user are 0 when the target has none.
type beforeReg struct{ id, app, rule, user int64 }

// BeforeOf keeps what OutsidePlan needs of current, the account as read
// before an apply. With names, it keeps current itself, so that a
// change is reported with the target's names; without (a fleet, which
// must not hold every account's read at once), by ids and the names
// the account read back still has.
func BeforeOf(current *Current, names bool) *Before {
	b := &Before{regs: make([]beforeReg, len(current.Registrations))}
	for i, r := range current.Registrations {
		b.regs[i] = beforeReg{id: r.ID}
		if t := r.Target; t != nil {
			b.regs[i].app, b.regs[i].rule, b.regs[i].user = t.Application.ID, refID(t.Rule), refID(t.User)
		}
	}
	slices.SortFunc(b.regs, func(x, y beforeReg) int { return cmp.Compare(x.id, y.id) })
	if names {
		b.current = current
	}
	return b
}

// find returns the registration id's target before the apply, and
// whether the registration was read then.
func (b *Before) find(id int64) (beforeReg, bool) {
	i, ok := slices.BinarySearchFunc(b.regs, id, func(r beforeReg, id int64) int { return cmp.Compare(r.id, id) })
	if !ok {
		return beforeReg{}, false
	}
	return b.regs[i], true
}

func (r beforeReg) same(t *Target) bool {
	if t == nil {
		return r.app == 0
	}
	return r.app == t.Application.ID && r.rule == refID(t.Rule) && r.user == refID(t.User)
}

// outsidePlanProblem ends the problem of a registration changed outside
// the plan: voxbind cannot tell who changed it.
const outsidePlanProblem = " — by this apply or by someone else at the same time"

// OutsidePlan compares every registration of after, the account read
// back after applying p, with before, the account as read before: a
// registration that changed although no step of p (applied or not) is
// for it, no side effect of p names it, and no ignore entry holds it is
// a difference (Mismatch.OutsidePlan), because the API changed more than
// the plan asked or someone else changed the account during the apply.
// A registration that is gone is one too; one that is new is not (a
// BindSipRegistration call creates none). The differences are in
// registration-id order.
func OutsidePlan(p *Plan, before *Before, after *Current) []Mismatch {
	if before == nil {
		return nil
	}
	planned := make(map[int64]bool, len(p.Changes)+len(p.SideEffects)+len(p.Ignored)+len(p.IgnoredOutside))
	for _, s := range p.Changes {
		planned[s.Registration.ID] = true
	}
	for _, e := range p.SideEffects {
		planned[e.Registration.ID] = true
	}
	for _, ig := range p.Ignored {
		planned[ig.Registration.ID] = true
	}
	for _, id := range p.IgnoredOutside {
		planned[id] = true
	}
	var out []Mismatch
	names := outsideNames{before: before, after: after}
	seen := make(map[int64]bool, len(after.Registrations))
	for i := range after.Registrations {
		r := &after.Registrations[i]
		seen[r.ID] = true
		was, ok := before.find(r.ID)
		if !ok || planned[r.ID] || was.same(r.Target) {
			continue
		}
		out = append(out, Mismatch{Registration: r.RegistrationRef, OutsidePlan: true,
			Problem: "changed outside the plan: was " + renderTarget(names.target(was)) + ", now " + renderTarget(r.Target) + outsidePlanProblem})
	}
	for _, was := range before.regs {
		if seen[was.id] || planned[was.id] {
			continue
		}
		ref := RegistrationRef{ID: was.id}
		if r := names.registration(was.id); r != nil {
			ref = r.RegistrationRef
		}
		out = append(out, Mismatch{Registration: ref, OutsidePlan: true,
			Problem: "changed outside the plan: was " + renderTarget(names.target(was)) + ", now the registration no longer exists" + outsidePlanProblem})
	}
	slices.SortStableFunc(out, func(x, y Mismatch) int { return cmp.Compare(x.Registration.ID, y.Registration.ID) })
	return out
}

// outsideNames finds the names of a target OutsidePlan reports: in the
// account read before, when kept, else in what the account read back
// still names (its applications, the rules and users its registrations
// are bound to); ids where neither has them.
type outsideNames struct {
	before      *Before
	after       *Current
	regs        map[int64]*Registration // the read before, by id
	apps        map[int64]string
	rules, user map[int64]string
}

func (n *outsideNames) registration(id int64) *Registration {
	if n.before.current == nil {
		return nil
	}
	if n.regs == nil {
		n.regs = registrationsByID(n.before.current)
	}
	return n.regs[id]
}

func (n *outsideNames) target(was beforeReg) *Target {
	if was.app == 0 {
		return nil
	}
	if r := n.registration(was.id); r != nil && was.same(r.Target) {
		return r.Target
	}
	if n.apps == nil {
		n.apps, n.rules, n.user = map[int64]string{}, map[int64]string{}, map[int64]string{}
		for _, a := range n.after.Applications {
			n.apps[a.ID] = a.Name
		}
		for _, r := range n.after.Registrations {
			if t := r.Target; t != nil {
				if t.Rule != nil && t.Rule.Name != "" {
					n.rules[t.Rule.ID] = t.Rule.Name
				}
				if t.User != nil && t.User.Name != "" {
					n.user[t.User.ID] = t.User.Name
				}
			}
		}
	}
	t := &Target{Application: Ref{ID: was.app, Name: n.apps[was.app]}}
	if was.rule != 0 {
		t.Rule = &Ref{ID: was.rule, Name: n.rules[was.rule]}
	}
	if was.user != 0 {
		t.User = &Ref{ID: was.user, Name: n.user[was.user]}
	}
	return t
}
