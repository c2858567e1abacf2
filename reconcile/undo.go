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
// Undo is pure, like Diff. A journal of another account is refused with
// ErrJournalAccount.
func Undo(j *JournalRecords, journal string, current *Current) (*Plan, error) {
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
		Journal:       journal,
	}
	index := make(map[int64]int32, len(current.Registrations))
	for i := range current.Registrations {
		index[current.Registrations[i].ID] = int32(i)
	}
	x := newUndoNames(current)
	var drafts []planDraft
	var blocked []planBlocked
	var gone []Blocked
	touches := undoTouches(j, journal)
	for _, t := range touches {
		i, ok := index[t.ref.ID]
		if !ok {
			gone = append(gone, Blocked{Registration: t.ref, Reason: "the registration no longer exists", Source: t.source})
			continue
		}
		reg := &current.Registrations[i]
		switch after, missing := x.target(t.before); {
		case reg.Target.Equal(t.before):
			p.Summary.Unchanged++
		case !slices.ContainsFunc(t.left, reg.Target.Equal):
			blocked = append(blocked, planBlocked{reg: i, source: t.source,
				reason: "changed since the apply: now " + renderTarget(reg.Target) + "; before the apply it was " + renderTarget(t.before)})
		case reg.Deactivated:
			blocked = append(blocked, planBlocked{reg: i, source: t.source, reason: BlockedFrozen})
		case missing != "":
			blocked = append(blocked, planBlocked{reg: i, source: t.source,
				reason: "its target before the apply, " + renderTarget(t.before) + ", cannot be given back: " + missing})
		default:
			drafts = append(drafts, planDraft{reg: i, after: after, reason: ReasonUndo, source: t.source})
		}
	}
	p.Summary.Unmanaged = len(current.Registrations) - (len(touches) - len(gone)) // less those displaced
	orderPlan(p, current, drafts, blocked, nil)
	if len(gone) > 0 {
		p.Blocked = append(p.Blocked, gone...)
		slices.SortFunc(p.Blocked, func(a, b Blocked) int { return planCompareRegs(&a.Registration, &b.Registration) })
	}
	return p, nil
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
