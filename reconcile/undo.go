package reconcile

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
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
// blocked too.
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
		return nil, fmt.Errorf("%w: journal %s records an apply to account %d, but voxbind acts on account %d (--account-id, or the key file's account_id)",
			ErrJournalAccount, journal, j.Start.AccountID, current.Account.ID)
	}
	p := &Plan{
		FormatVersion: FormatVersion,
		AccountID:     current.Account.ID,
		Changes:       []Step{},
		SideEffects:   []SideEffect{},
		Blocked:       []Blocked{},
		Selection:     opts.Selection.summary(),
		Journal:       journal,
	}
	index := make(map[int64]int32, len(current.Registrations))
	for i := range current.Registrations {
		index[current.Registrations[i].ID] = int32(i)
	}
	touches := undoTouches(j, journal)
	restore := make([]*Target, len(current.Registrations))
	touched := make([]bool, len(current.Registrations))
	for _, t := range touches {
		if i, ok := index[t.ref.ID]; ok {
			restore[i], touched[i] = t.before, true
		}
	}
	outside, err := opts.Selection.outside(current, func(i int) *Target { return restore[i] })
	if err != nil {
		return nil, err
	}
	scope := &planScope{outside: outside}

	x := newUndoNames(current)
	var drafts []planDraft
	var blocked []planBlocked
	var gone []Blocked
	for _, t := range touches {
		i, ok := index[t.ref.ID]
		if !ok {
			if opts.Selection.undoSelects(t.ref, t.before) {
				gone = append(gone, Blocked{Registration: t.ref, Reason: "the registration no longer exists", Source: t.source})
			} else if p.Selection != nil {
				p.Selection.Outside++
			}
			continue
		}
		reg := &current.Registrations[i]
		out := scope.outsideAt(i)
		block := func(reason string) {
			blocked = append(blocked, planBlocked{reg: i, source: t.source, reason: reason})
		}
		switch after, missing := x.target(t.before); {
		case reg.Target.Equal(t.before):
			if !out {
				p.Summary.Unchanged++
			}
		case !slices.ContainsFunc(t.left, reg.Target.Equal):
			block("changed since the apply: now " + renderTarget(reg.Target) + "; before the apply it was " + renderTarget(t.before))
		case reg.Deactivated:
			block(BlockedFrozen)
		case missing != "":
			block("its target before the apply, " + renderTarget(t.before) + ", cannot be given back: " + missing)
		default:
			drafts = append(drafts, planDraft{reg: i, after: after, reason: ReasonUndo, source: t.source, outside: out})
		}
	}
	for i := range current.Registrations {
		if !touched[i] && !scope.outsideAt(int32(i)) {
			p.Summary.Unmanaged++ // less those displaced
		}
	}
	// Blocked restores outside the selection go in too: a restore inside
	// that needs a user one of them holds must be blocked, not take it.
	orderPlan(p, current, drafts, blocked, scope)
	drafted := make(map[int32]bool, len(drafts))
	for _, d := range drafts {
		drafted[d.reg] = true
	}
	undoDropOutside(p, current, scope, restore, drafted)
	if len(gone) > 0 {
		p.Blocked = append(p.Blocked, gone...)
		slices.SortFunc(p.Blocked, func(a, b Blocked) int { return planCompareRegs(&a.Registration, &b.Registration) })
	}
	return p, nil
}

// undoDropOutside removes from p.Blocked the blocked restores outside the
// selection that no blocked restore in p waits for (counting them in
// p.Selection.Outside), and says of the others which one waits for them.
// restore is what each registration goes back to; drafted marks the
// registrations whose restore was a draft for orderPlan, which drops
// those outside the selection or includes them, saying why.
func undoDropOutside(p *Plan, current *Current, scope *planScope, restore []*Target, drafted map[int32]bool) {
	if scope.outside == nil {
		return
	}
	at := make(map[int64]int32, len(current.Registrations))
	holder := make(map[int64]int32)
	for i := range current.Registrations {
		r := &current.Registrations[i]
		at[r.ID] = int32(i)
		if r.Target != nil && r.Target.User != nil {
			holder[r.Target.User.ID] = int32(i)
		}
	}
	// waitedBy[h]: the registration in p.Blocked (kept so far) that needs
	// a user h holds, found along the chains of blocked restores.
	kept := map[int32]bool{}
	waitedBy := map[int32]int32{}
	var queue []int32
	for _, b := range p.Blocked {
		if i := at[b.Registration.ID]; !scope.outsideAt(i) || drafted[i] {
			kept[i] = true
			queue = append(queue, i)
		}
	}
	for len(queue) > 0 {
		i := queue[0]
		queue = queue[1:]
		t := restore[i]
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
		i := at[b.Registration.ID]
		switch w, waited := waitedBy[i]; {
		case !kept[i]:
			p.Selection.Outside++
			continue
		case waited && scope.outsideAt(i):
			h := &current.Registrations[w].RegistrationRef
			b.Reason += fmt.Sprintf("; it is outside the selection, included because registration %d (%s) waits for it", h.ID, planRegName(h))
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
	touch := func(ref RegistrationRef, before *Target, line int, left ...*Target) {
		t, ok := byID[ref.ID]
		if !ok {
			t = &undoTouch{ref: ref, before: before, source: journal + ":" + strconv.Itoa(line)}
			byID[ref.ID] = t
			out = append(out, t)
		}
		t.left = append(t.left, left...)
	}
	for _, in := range j.Intents {
		touch(in.Registration, in.Before, in.Line, in.After)
		if d := in.Displaces; d != nil {
			// The API unbinds a displaced registration (docs/voximplant-api.md);
			// one that only loses the user keeps the rest of its target.
			touch(d.Registration, d.Before, in.Line, nil, undoWithoutUser(d.Before))
		}
	}
	return out
}

func undoWithoutUser(t *Target) *Target {
	if t == nil {
		return nil
	}
	return &Target{Application: t.Application, Rule: t.Rule}
}

// undoNames finds what a journalled target names in the account now, by
// id, so that a restore shows today's names.
type undoNames struct {
	current *Current
	apps    map[int64]string
	rules   map[int64]Rule
	users   map[int64]User
}

func newUndoNames(current *Current) *undoNames {
	x := &undoNames{current: current, apps: map[int64]string{}, rules: map[int64]Rule{}, users: map[int64]User{}}
	for _, a := range current.Applications {
		x.apps[a.ID] = a.Name
	}
	for _, list := range current.Rules {
		for _, r := range list {
			x.rules[r.ID] = r
		}
	}
	for _, list := range current.Users {
		for _, u := range list {
			x.users[u.ID] = u
		}
	}
	return x
}

// target returns t with the account's names, or what is missing from the
// account. A rule or user of an application whose members were not read
// keeps the journal's name.
func (x *undoNames) target(t *Target) (*Target, string) {
	if t == nil {
		return nil, ""
	}
	app, ok := x.apps[t.Application.ID]
	if !ok {
		return nil, "application " + strconv.FormatInt(t.Application.ID, 10) + " is no longer in the account"
	}
	out := &Target{Application: Ref{ID: t.Application.ID, Name: app}}
	appLabel := Printable(planShortAppName(app))
	if t.Rule != nil {
		out.Rule = &Ref{ID: t.Rule.ID, Name: t.Rule.Name}
		if _, read := x.current.Rules[t.Application.ID]; read {
			r, ok := x.rules[t.Rule.ID]
			if !ok || r.ApplicationID != t.Application.ID {
				return nil, fmt.Sprintf("rule %d (%s) is no longer in application %s", t.Rule.ID, Printable(t.Rule.Name), appLabel)
			}
			out.Rule.Name = r.Name
		}
	}
	if t.User != nil {
		out.User = &Ref{ID: t.User.ID, Name: t.User.Name}
		if _, read := x.current.Users[t.Application.ID]; read {
			u, ok := x.users[t.User.ID]
			if !ok || u.ApplicationID != t.Application.ID {
				return nil, fmt.Sprintf("user %d (%s) is no longer in application %s", t.User.ID, Printable(t.User.Name), appLabel)
			}
			out.User.Name = u.Name
		}
	}
	return out, ""
}

// JournalCounts is what a journal shows of its apply's calls.
type JournalCounts struct {
	Intents int // steps whose call was about to be sent
	// Of those: how the call ended, or no result (the process died
	// during the call, or before it wrote the result).
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
