package reconcile

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// ErrJournalAccount is wrapped by Undo's refusal of a journal that records
// an apply to another account.
var ErrJournalAccount = errors.New("the journal records an apply to another account")

// ObserveUndo reads what Undo needs: the account as Observe reads it with
// no spec, plus the rules and users of every application that a target in
// the journal names with a rule or a user, so that Undo can check that
// each target to give back still exists.
func ObserveUndo(ctx context.Context, acct Account, j *JournalRecords) (*Current, error) {
	var targets []*Target
	for _, in := range j.Intents {
		targets = append(targets, in.Before, in.After)
		if in.Displaces != nil {
			targets = append(targets, in.Displaces.Before)
		}
	}
	return observeTargets(ctx, acct, targets)
}

// undoTouch is a registration that an apply touched, by its own step or
// by a step that took its user.
type undoTouch struct {
	ref    RegistrationRef // as the journal names it
	before *Target         // its target before the apply: the earliest journalled
	source string          // "journal:line" of the record that gave before
	left   []*Target       // what the apply may have left it with
	// end is what the apply left it with as the journal's results tell:
	// after a call that was applied, only what that call left; a call
	// that failed left it as it was; one without a known result, either.
	// The blocked reason shows it.
	end []*Target
}

// Undo plans what gives back the changes of the apply that j records,
// against the account as it is now (current, read with ObserveUndo).
// journal names the journal in the plan (Plan.Journal, each step's
// Source as "journal:line").
//
// Every registration that the apply touched, by a step that has an
// intent (whatever its result, or none) or by being displaced, goes back
// to its target before the apply: the earliest before the journal
// records for it. It needs no step when it is there already. It gets one
// when it is still what the apply may have left it with: its step's
// after, or, when it was displaced, unbound or its before without the
// user. Anything else means someone changed it since: its restore is
// blocked ("changed since the apply: now X"), as is one whose registration
// is gone or frozen or whose target no longer exists. The steps are
// ordered by the planner's own ordering (the one-registration-per-user
// rule, as for plan): a restore that needs a user back waits for the
// registration that holds it, a cycle is broken with one displacement
// shown as a side effect, and a restore that waits for a blocked one is
// blocked too. When the account is frozen or inactive every restore is
// blocked (blockAccount).
//
// opts.Selection limits the undo to some registrations, as it limits a
// plan (app= matches the application a registration is bound to now or
// goes back to): a restore outside it is left out, unless one inside
// waits for it, and then it is included (or, when it is blocked, shown
// with the restore that waits for it). opts.Today plays no part.
//
// Undo is pure, like Diff. A journal of another account is refused with
// ErrJournalAccount; a selector that matches no registration, with an
// error wrapping ErrSelectsNothing.
func Undo(j *JournalRecords, journal string, current *Current, opts Options) (*Plan, error) {
	if j == nil || current == nil {
		return nil, errors.New("undo: no journal or no observed account")
	}
	if j.Start.AccountID != current.Account.ID {
		return nil, fmt.Errorf("%w: journal %s records an apply to account %d, but voxbind acts on account %d (--account-id)",
			ErrJournalAccount, journal, j.Start.AccountID, current.Account.ID)
	}
	p := newPlan(current.Account.ID, opts.Selection)
	p.Journal = journal
	u := &undoPlanner{p: p, current: current, names: newSavedIndex(current), touches: undoTouches(j, journal)}
	if err := u.scope(opts.Selection); err != nil {
		var unmatched *SelectionError
		if !opts.Fleet || !errors.As(err, &unmatched) {
			return nil, err
		}
		p.Unmatched = unmatched.Selectors // FleetPlan.SelectsNothing judges it
	}
	p.NothingInScope = nothingInScope(u.scoped.outside)
	u.classify(opts.Selection)
	// Blocked restores outside the selection go in too: a restore inside
	// that needs a user one of them holds must be blocked, not take it.
	orderPlan(p, current, u.drafts, u.blocked, u.scoped)
	u.dropOutside()
	if len(u.gone) > 0 {
		p.Blocked = append(p.Blocked, u.gone...)
		slices.SortFunc(p.Blocked, func(a, b Blocked) int { return planCompareRegs(&a.Registration, &b.Registration) })
	}
	blockAccount(p, current.Account)
	return p, nil
}

// undoPlanner is the state of one Undo.
type undoPlanner struct {
	p       *Plan
	current *Current
	names   *savedIndex // the account's objects by id
	touches []*undoTouch
	at      map[int64]int32 // registration id → index in current
	restore []*Target       // by index: the target to go back to
	touched []bool          // by index
	scoped  *planScope

	drafts  []planDraft
	blocked []planBlocked
	gone    []Blocked // restores of registrations no longer in the account
}

// scope indexes the touched registrations and finds those outside the
// selection.
func (u *undoPlanner) scope(sel Selection) error {
	regs := u.current.Registrations
	u.at = make(map[int64]int32, len(regs))
	for i := range regs {
		u.at[regs[i].ID] = int32(i)
	}
	u.restore, u.touched = make([]*Target, len(regs)), make([]bool, len(regs))
	for _, t := range u.touches {
		if i, ok := u.at[t.ref.ID]; ok {
			u.restore[i], u.touched[i] = t.before, true
		}
	}
	outside, err := sel.outside(u.current, func(i int) *Target { return u.restore[i] })
	u.scoped = &planScope{outside: outside}
	return err
}

// classify sorts each touched registration into a draft, a blocked
// restore, or one with nothing to do, and counts the plan.
func (u *undoPlanner) classify(sel Selection) {
	p := u.p
	for _, t := range u.touches {
		i, ok := u.at[t.ref.ID]
		if !ok {
			if sel.undoSelects(t.ref, t.before) {
				u.gone = append(u.gone, Blocked{Registration: t.ref, Reason: "the registration no longer exists", Source: t.source, Cause: BlockGone})
			} else if p.Selection != nil {
				p.Selection.Outside++
			}
			continue
		}
		reg := &u.current.Registrations[i]
		out := u.scoped.outsideAt(i)
		block := func(cause BlockCause, reason string) {
			u.blocked = append(u.blocked, planBlocked{reg: i, source: t.source, reason: reason, cause: cause})
		}
		switch after, missing := undoTarget(u.names, t.before); {
		case reg.Target.Equal(t.before):
			if !out {
				p.Summary.Unchanged++
			}
		case !slices.ContainsFunc(t.left, reg.Target.Equal):
			block(BlockChanged, "changed since the apply: now "+renderTarget(reg.Target)+"; the apply left it "+renderTargets(t.end)+"; before the apply it was "+renderTarget(t.before))
		case reg.Deactivated:
			block(BlockFrozen, BlockedFrozen)
		case missing != "":
			block(BlockGone, "its target before the apply, "+renderTarget(t.before)+", cannot be given back: "+missing)
		default:
			u.drafts = append(u.drafts, planDraft{reg: i, after: after, reason: ReasonUndo, source: t.source, outside: out})
		}
	}
	for i := range u.current.Registrations {
		if !u.touched[i] && !u.scoped.outsideAt(int32(i)) {
			p.Summary.Unmanaged++ // less those displaced
		}
	}
}

// dropOutside removes from p.Blocked the blocked restores outside the
// selection that no blocked restore in p waits for (counting them in
// p.Selection.Outside), and says of the others which one waits for them.
// A restore outside the selection that was a draft is in p.Blocked only
// when orderPlan included it, saying why, so it stays.
func (u *undoPlanner) dropOutside() {
	if u.scoped.outside == nil {
		return
	}
	p, regs := u.p, u.current.Registrations
	drafted := make(map[int32]bool, len(u.drafts))
	for _, d := range u.drafts {
		drafted[d.reg] = true
	}
	holder := make(map[int64]int32)
	for i := range regs {
		if t := regs[i].Target; t != nil && t.User != nil {
			holder[t.User.ID] = int32(i)
		}
	}
	// Follow, from each blocked restore kept, the user it needs back to
	// the registration that holds it: that one is kept too.
	kept := map[int32]bool{}
	waitedBy := map[int32]int32{}
	var queue []int32
	for _, b := range p.Blocked {
		if i := u.at[b.Registration.ID]; !u.scoped.outsideAt(i) || drafted[i] {
			kept[i] = true
			queue = append(queue, i)
		}
	}
	for len(queue) > 0 {
		i := queue[0]
		queue = queue[1:]
		t := u.restore[i]
		if t == nil || t.User == nil {
			continue
		}
		if h, ok := holder[t.User.ID]; ok && h != i && !kept[h] {
			kept[h], waitedBy[h] = true, i
			queue = append(queue, h)
		}
	}
	out := p.Blocked[:0]
	for _, b := range p.Blocked {
		i := u.at[b.Registration.ID]
		switch w, waited := waitedBy[i]; {
		case !kept[i]:
			p.Selection.Outside++
			continue
		case waited && u.scoped.outsideAt(i):
			h := &regs[w].RegistrationRef
			b.Reason += fmt.Sprintf("; it is outside the selection, included because registration %d (%s) waits for it", h.ID, regName(h))
		}
		out = append(out, b)
	}
	p.Blocked = out
}

// undoSelects reports whether the selection takes in a registration that
// is gone from the account, by what the journal knows of it.
func (s Selection) undoSelects(ref RegistrationRef, before *Target) bool {
	reg := &Registration{RegistrationRef: ref}
	in := len(s.Only) == 0
	for k := range s.Only {
		in = in || s.Only[k].matches(reg, before)
	}
	for k := range s.Except {
		in = in && !s.Except[k].matches(reg, before)
	}
	return in
}

// undoTouches lists the registrations the journal's intents touch, in the
// order the journal first names them, each with its earliest before and
// every target the apply may have left it with.
func undoTouches(j *JournalRecords, journal string) []*undoTouch {
	var out []*undoTouch
	byID := map[int64]*undoTouch{}
	touch := func(ref RegistrationRef, before *Target, line int, outcome StepStatus, left ...*Target) {
		t, ok := byID[ref.ID]
		if !ok {
			t = &undoTouch{ref: ref, before: before, source: journal + ":" + strconv.Itoa(line), end: []*Target{before}}
			byID[ref.ID] = t
			out = append(out, t)
		}
		t.left = append(t.left, left...)
		switch outcome {
		case StepApplied:
			t.end = slices.Clone(left)
		case StepFailed:
		default:
			t.end = append(t.end, left...)
		}
	}
	for _, in := range j.Intents {
		outcome := j.Results[in.Step].Outcome
		touch(in.Registration, in.Before, in.Line, outcome, in.After)
		if d := in.Displaces; d != nil {
			// The API unbinds a displaced registration (docs/management-api.md);
			// one that only loses the user keeps the rest of its target.
			touch(d.Registration, d.Before, in.Line, outcome, nil, undoWithoutUser(d.Before))
		}
	}
	return out
}

// renderTargets is the targets, each once, in the order given, joined by
// "or": what the apply may have left a registration with.
func renderTargets(targets []*Target) string {
	var seen []*Target
	var parts []string
	for _, t := range targets {
		if !slices.ContainsFunc(seen, t.Equal) {
			seen = append(seen, t)
			parts = append(parts, renderTarget(t))
		}
	}
	return strings.Join(parts, " or ")
}

func undoWithoutUser(t *Target) *Target {
	if t == nil {
		return nil
	}
	return &Target{Application: t.Application, Rule: t.Rule}
}

// undoTarget returns t with the names the account gives its ids now, or
// says what of it the account no longer has. A rule or user of an
// application whose members were not read keeps the journal's name.
func undoTarget(x *savedIndex, t *Target) (*Target, string) {
	if t == nil {
		return nil, ""
	}
	app, ok := x.apps[t.Application.ID]
	if !ok {
		return nil, "application " + strconv.FormatInt(t.Application.ID, 10) + " is no longer in the account"
	}
	out := &Target{Application: Ref{ID: app.ID, Name: app.Name}}
	var missing string
	if t.Rule != nil {
		_, read := x.current.Rules[app.ID]
		out.Rule, missing = undoMember("rule", t.Rule, app, ruleOf(x.rules[t.Rule.ID]), read)
	}
	if t.User != nil {
		_, read := x.current.Users[app.ID]
		out.User, missing = undoMember("user", t.User, app, userOf(x.users[t.User.ID]), read)
	}
	if missing != "" {
		return nil, missing
	}
	return out, ""
}

// undoMember is the rule or user ref of app with the account's name (m),
// or says that app no longer has it; read says whether app's members were
// read at all.
func undoMember(kind string, ref *Ref, app *Application, m savedMember, read bool) (*Ref, string) {
	switch {
	case !read:
		return &Ref{ID: ref.ID, Name: ref.Name}, ""
	case !m.found || m.app != app.ID:
		return nil, fmt.Sprintf("%s %d (%s) is no longer in application %s", kind, ref.ID, Printable(ref.Name), appLabel(app))
	}
	return &Ref{ID: ref.ID, Name: m.name}, ""
}

// JournalCounts is what a journal shows of its apply's calls.
type JournalCounts struct {
	Intents int // steps whose call was about to be sent
	// Of those: how the call ended, or no result (the call was never
	// sent, or the process died before its result was written).
	Applied, Failed, Unknown, NoResult int
}

// Counts counts the journal's intents by their result.
func (j *JournalRecords) Counts() JournalCounts {
	c := JournalCounts{Intents: len(j.Intents)}
	for _, in := range j.Intents {
		r, ok := j.Results[in.Step]
		switch {
		case !ok:
			c.NoResult++
		case r.Outcome == StepApplied:
			c.Applied++
		case r.Outcome == StepFailed:
			c.Failed++
		default:
			c.Unknown++
		}
	}
	return c
}
