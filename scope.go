package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/voxbind/voxbind/reconcile"
	"github.com/voxbind/voxbind/spec"
)

// scopeFlags are --only and --except, which plan, apply and export take:
// they limit a run to some registrations.
type scopeFlags struct {
	Only   []string `sep:"none" placeholder:"SELECTOR" help:"Limit the run to the registrations this selector matches: id=N, reg=PATTERN (sip_username@proxy with * and ?) or app=NAME; repeat for several."`
	Except []string `sep:"none" placeholder:"SELECTOR" help:"Leave out the registrations this selector matches (forms as --only); repeat for several."`
}

// selection parses the selectors; a bad one is an error naming the
// accepted forms, before anything is read.
func (f *scopeFlags) selection() (reconcile.Selection, error) {
	var sel reconcile.Selection
	for _, group := range []struct {
		flag string
		args []string
		into *[]reconcile.Selector
	}{{"--only", f.Only, &sel.Only}, {"--except", f.Except, &sel.Except}} {
		for _, a := range group.args {
			s, err := reconcile.ParseSelector(a)
			if err != nil {
				return sel, fmt.Errorf("%s: %w", group.flag, err)
			}
			*group.into = append(*group.into, s)
		}
	}
	return sel, nil
}

// given reports whether --only or --except was given.
func (f *scopeFlags) given() bool { return len(f.Only)+len(f.Except) > 0 }

// runDay is the day a command judges ignore entries on: the current UTC
// date, read once per run so that loading the spec and planning agree.
func runDay() time.Time { return spec.Day(time.Now()) }

// loadSpec loads the spec files as of today, grouped by account (a
// fleet of one when they name at most one account_id), and warns about
// each ignore entry that has ended: its drift is planned again. Spec
// problems come back as spec.Errors (see session.specErrors).
func loadSpec(ctx context.Context, s *session, files []string, today time.Time) (*spec.Fleet, error) {
	fleet, err := loadFleet(ctx, files, spec.Options{Today: today})
	if err != nil {
		return nil, err
	}
	for _, desired := range fleet.Specs {
		warnExpired(s, desired, today)
	}
	return fleet, nil
}

// loadFleet reads the spec files, giving up when ctx ends: a -f path
// that blocks (a FIFO nobody writes to, a stalled <(cmd)) must still
// yield to Ctrl-C. The read goes on in the background, and ends with the
// process.
func loadFleet(ctx context.Context, files []string, opts spec.Options) (*spec.Fleet, error) {
	type loaded struct {
		fleet *spec.Fleet
		err   error
	}
	what := "the spec file " + strings.Join(files, ", ")
	if len(files) > 1 {
		what = "the spec files " + strings.Join(files, ", ")
	} else if fi, err := os.Stat(files[0]); err == nil && fi.IsDir() { // a stat never blocks, even on a FIFO
		what = "the spec files in " + files[0]
	}
	if ctx.Err() != nil { // a --timeout that passed already: say so every time
		return nil, endedWhile(ctx, "reading "+what)
	}
	done := make(chan loaded, 1)
	go func() {
		f, err := spec.LoadFleetWith(files, opts)
		done <- loaded{f, err}
	}()
	select {
	case l := <-done:
		return l.fleet, l.err
	case <-ctx.Done():
		return nil, endedWhile(ctx, "still reading "+what)
	}
}

// warnExpired warns once per ignore entry that has ended, at its until
// (where validate --strict reports the same entry as an error).
func warnExpired(s *session, desired *spec.Spec, today time.Time) {
	for _, ig := range desired.Expired(today) {
		what := ig.Registration
		if what == "" {
			what = fmt.Sprintf("registration_id %d", ig.RegistrationID)
		}
		s.warnAt(ig.UntilPos, string(spec.CodeIgnoreEnded),
			fmt.Sprintf("the ignore entry for %s ended with %s (its until) and no longer applies: its drift is planned as usual",
				reconcile.Printable(what), spec.DayString(ig.Until)),
			"remove the entry, or give a later until")
	}
}

// warnUnmatchedIgnores warns once per ignore entry in force that matches
// no registration of the account p was planned for, at its registration
// line: it excepts nothing, and the drift it was meant to hide is
// planned.
func warnUnmatchedIgnores(s *session, p *reconcile.Plan) {
	for _, u := range p.UnmatchedIgnores {
		s.warnAt(u.Pos, string(spec.CodeIgnoreMatchesNothing), u.Message, u.Fix)
	}
}
