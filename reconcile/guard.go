package reconcile

import (
	"errors"
	"fmt"

	"github.com/voxbind/voxbind/internal/english"
)

// The default unbind limit: 10, or 25 % of the registrations
// currently bound, whichever is larger. 25 % is rounded up, so that a
// quarter of 41 bound registrations allows 11.
const (
	guardMinUnbind     = 10
	guardPercentUnbind = 25
)

// ErrTooManyUnbinds is wrapped by CheckUnbind's refusal.
var ErrTooManyUnbinds = errors.New("too many unbinds")

// MaxUnbind is the mass-unbind limit the user set: N registrations
// (negative: none set, the default limit holds), and where it was set,
// for the refusal to name: Env is the environment variable it came from
// ("VOXBIND_MAX_UNBIND"), "" for the --max-unbind flag.
type MaxUnbind struct {
	N   int
	Env string
}

// setBy names where the limit was set, as the user set it:
// "--max-unbind 1", or "VOXBIND_MAX_UNBIND=1" from the environment.
func (m MaxUnbind) setBy() string {
	if m.Env != "" {
		return fmt.Sprintf("%s=%d", m.Env, m.N)
	}
	return fmt.Sprintf("--max-unbind %d", m.N)
}

// UnbindLimit is the most registrations a plan may unbind without --force:
// maxUnbind when it is 0 or more (--max-unbind N), else the default of
// max(10, ⌈25 % of the registrations bound now⌉).
func UnbindLimit(current *Current, maxUnbind int) int {
	return unbindLimit(BoundCount(current), maxUnbind)
}

func unbindLimit(bound, maxUnbind int) int {
	if maxUnbind >= 0 {
		return maxUnbind
	}
	return max(guardMinUnbind, (bound*guardPercentUnbind+99)/100)
}

// Unbinds counts the registrations p leaves without a target: its unbind
// steps, and the registrations that lose their user to a side effect and
// that no step of p binds again (the API unbinds a displaced registration
// completely).
func Unbinds(p *Plan) (steps, displaced int) {
	changed := make(map[int64]bool, len(p.Changes))
	for _, s := range p.Changes {
		changed[s.Registration.ID] = true
		if s.Action == ActionUnbind {
			steps++
		}
	}
	for _, e := range p.SideEffects {
		if !changed[e.Registration.ID] {
			displaced++
		}
	}
	return steps, displaced
}

// CheckUnbind is the mass-unbind guard: it refuses a plan
// that unbinds more registrations than the limit (see UnbindLimit; a
// negative maxUnbind.N means the default) unless force is set. The error
// says what tripped (naming the flag or the environment variable that set
// the limit), the numbers, and how to override; for an undo plan (one
// with a Journal), in undo's words.
func CheckUnbind(p *Plan, current *Current, maxUnbind MaxUnbind, force bool) error {
	return checkUnbind(p, BoundCount(current), maxUnbind, force, "")
}

// CheckSavedUnbind is CheckUnbind for a saved plan applied with apply
// --plan: the plan is reviewed already, so the way on for an undo plan is
// to apply it again with --max-unbind, not to make it again. apply is the
// command that applies it, as the user would paste it ("voxbind apply
// --plan='my undo.json' --sandbox=…", quoted for a shell); the refusal
// adds --max-unbind N to it.
func CheckSavedUnbind(p *Plan, current *Current, maxUnbind MaxUnbind, force bool, apply string) error {
	return checkUnbind(p, BoundCount(current), maxUnbind, force, apply)
}

// CheckUnbindBound is CheckUnbind given the number of registrations that
// were bound when the account was read (BoundCount): a fleet keeps that
// number, not the whole account.
func CheckUnbindBound(p *Plan, bound int, maxUnbind MaxUnbind, force bool) error {
	return checkUnbind(p, bound, maxUnbind, force, "")
}

// checkUnbind is the guard; apply is the command that applies a saved
// plan ("" for a plan just made).
func checkUnbind(p *Plan, bound int, maxUnbind MaxUnbind, force bool, apply string) error {
	if force {
		return nil
	}
	steps, displaced := Unbinds(p)
	n := steps + displaced
	limit := unbindLimit(bound, maxUnbind.N)
	if n <= limit {
		return nil
	}
	what := english.Plural(n, "registration")
	if displaced > 0 {
		what += fmt.Sprintf(" (%d by unbind steps, %d displaced by side effects)", steps, displaced)
	}
	var why string
	if maxUnbind.N >= 0 {
		why = "the limit set by " + maxUnbind.setBy()
	} else {
		why = fmt.Sprintf("the default limit of %d (10, or 25%% of the %s, whichever is larger)",
			limit, english.Plural(bound, "bound registration"))
	}
	switch {
	case p.Journal != "" && apply != "": // a saved undo plan, reviewed already
		return fmt.Errorf("%w: the undo unbinds %s that the apply bound, more than %s; nothing was changed. "+
			"If that is what you want, run %s --max-unbind %d (or --force)",
			ErrTooManyUnbinds, what, why, apply, n)
	case p.Journal != "": // an undo plan: its unbinds take back what the apply bound
		return fmt.Errorf("%w: the undo unbinds %s that the apply bound, more than %s; nothing was changed. "+
			"If that is what you want, review the undo (%s --out FILE, then voxbind show FILE), then run again with --max-unbind %d or --force",
			ErrTooManyUnbinds, what, why, UndoCommand(p), n)
	}
	return fmt.Errorf("%w: the plan unbinds %s, more than %s; nothing was changed. "+
		"If that is what you want (an emptied spec with prune: true unbinds everything), check the plan, then run again with --max-unbind %d or --force",
		ErrTooManyUnbinds, what, why, n)
}

// BoundCount counts the registrations of current that are bound.
func BoundCount(current *Current) int {
	n := 0
	for _, r := range current.Registrations {
		if r.Target != nil {
			n++
		}
	}
	return n
}
