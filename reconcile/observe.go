package reconcile

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/voxbind/voxbind/internal/english"
	"github.com/voxbind/voxbind/spec"
)

// observeParallel bounds the concurrent reads of rules and users.
const observeParallel = 4

// Observe reads what Diff needs from the account: its info, every
// registration, every application, and the rules and users of each
// application that desired names together with a rule or a user. When a
// named rule or user is missing from its application, Observe also reads
// the other applications' rules or users, so that Diff can say where it
// belongs. With a nil desired it reads no rules and no users (apply --plan
// and export need none).
func Observe(ctx context.Context, acct Account, desired *spec.Spec) (*Current, error) {
	c := &Current{Rules: map[int64][]Rule{}, Users: map[int64][]User{}}
	// These three are read one after the other: the registrations are
	// paged and dominate, and the others are one request each.
	var err error
	if c.Account, err = acct.Info(ctx); err != nil {
		return nil, fmt.Errorf("read account info: %w", err)
	}
	if c.Applications, err = acct.Applications(ctx); err != nil {
		return nil, fmt.Errorf("read applications: %w", err)
	}
	if c.Registrations, err = acct.Registrations(ctx); err != nil {
		return nil, fmt.Errorf("read sip registrations: %w", err)
	}
	if err := CheckRegistrations(c.Registrations); err != nil {
		return nil, err
	}
	if desired == nil {
		return c, nil
	}

	apps := observeAppIndex(c.Applications)
	var needRules, needUsers []int64
	for i := range desired.Bindings {
		b := &desired.Bindings[i]
		if b.Rule != "" || b.RuleID != 0 {
			needRules = append(needRules, apps.lookup(b)...)
		}
		if b.User != "" || b.UserID != 0 {
			needUsers = append(needUsers, apps.lookup(b)...)
		}
	}
	if err := observeFetch(ctx, acct, c, needRules, needUsers); err != nil {
		return nil, err
	}

	// A rule or user not found where the spec says: read the others too.
	// Each application's members are indexed once, so that this costs one
	// lookup per binding, not a scan of the application's users.
	rules, users := observeMembers(c.Rules), observeMembers(c.Users)
	var missingRule, missingUser bool
	for i := range desired.Bindings {
		b := &desired.Bindings[i]
		for _, app := range apps.lookup(b) {
			if (b.Rule != "" || b.RuleID != 0) && !rules.has(app, b.RuleID, b.Rule) {
				missingRule = true
			}
			if (b.User != "" || b.UserID != 0) && !users.has(app, b.UserID, b.User) {
				missingUser = true
			}
		}
	}
	if !missingRule && !missingUser {
		return c, nil
	}
	needRules, needUsers = nil, nil
	for _, app := range c.Applications {
		if _, read := c.Rules[app.ID]; missingRule && !read {
			needRules = append(needRules, app.ID)
		}
		if _, read := c.Users[app.ID]; missingUser && !read {
			needUsers = append(needUsers, app.ID)
		}
	}
	if err := observeFetch(ctx, acct, c, needRules, needUsers); err != nil {
		return nil, err
	}
	return c, nil
}

// InconsistentError is the error of a read whose answers break a rule the
// API keeps, such as a user bound to two registrations at once: nothing
// can be planned, applied, verified or exported from it.
type InconsistentError struct {
	Problems []string // what is inconsistent, one item each
}

func (e *InconsistentError) Error() string { return e.Message() + ": " + e.Fix() }

// Message says what is inconsistent, without what to do.
func (e *InconsistentError) Message() string {
	return "the API's answer is inconsistent: " + strings.Join(e.Problems, "; ") +
		"; a user holds one registration at a time, so voxbind cannot plan, apply or export safely from this answer"
}

// Fix says what to do.
func (e *InconsistentError) Fix() string {
	return "run again in a minute (the account may have been changing while it was read); if it persists, unbind all but one of them in the Voximplant control panel, or report it to Voximplant support"
}

// CheckRegistrations refuses registrations as read that bind one user to
// several registrations at once (an *InconsistentError). The API keeps a
// user on one registration at a time, and everything after the read
// relies on it: binding such a user anywhere unbinds every holder, while
// the plan, the verification and the journal would know of one. Observe
// checks every read with it.
func CheckRegistrations(regs []Registration) error {
	holders := make(map[int64][]int, len(regs))
	var shared []int64 // users with more than one holder
	for i := range regs {
		t := regs[i].Target
		if t == nil || t.User == nil {
			continue
		}
		u := t.User.ID
		if holders[u] = append(holders[u], i); len(holders[u]) == 2 {
			shared = append(shared, u)
		}
	}
	if len(shared) == 0 {
		return nil
	}
	slices.Sort(shared)
	e := &InconsistentError{Problems: make([]string, len(shared))}
	for k, u := range shared {
		at := holders[u]
		slices.SortFunc(at, func(a, b int) int { return cmp.Compare(regs[a].ID, regs[b].ID) })
		names := make([]string, len(at))
		for j, i := range at {
			names[j] = fmt.Sprintf("%d (%s)", regs[i].ID, regName(&regs[i].RegistrationRef))
		}
		t := regs[at[0]].Target
		e.Problems[k] = fmt.Sprintf("user %s (%d) of application %s is bound to registrations %s at once",
			Printable(t.User.Name), u, Printable(planShortAppName(t.Application.Name)), english.And(names))
	}
	return e
}

// ObserveBound reads the account as Observe does with no spec, plus the
// rules (users) of every application that some registration is bound to
// with a rule (user): what export needs to tell names from ids.
func ObserveBound(ctx context.Context, acct Account) (*Current, error) {
	c, err := Observe(ctx, acct, nil)
	if err != nil {
		return nil, err
	}
	var needRules, needUsers []int64
	for _, r := range c.Registrations {
		switch t := r.Target; {
		case t == nil:
		case t.Rule != nil:
			needRules = append(needRules, t.Application.ID)
		case t.User != nil:
			needUsers = append(needUsers, t.Application.ID)
		}
	}
	if err := observeFetch(ctx, acct, c, needRules, needUsers); err != nil {
		return nil, err
	}
	return c, nil
}

// observeMemberIndex tells whether an application has a rule (or user)
// with an id or a name (ASCII case-insensitively); each application's
// index is built on first use.
type observeMemberIndex[T Rule | User] struct {
	read  map[int64][]T
	ids   map[int64]map[int64]bool
	names map[int64]map[string]bool
}

func observeMembers[T Rule | User](read map[int64][]T) *observeMemberIndex[T] {
	return &observeMemberIndex[T]{read: read, ids: map[int64]map[int64]bool{}, names: map[int64]map[string]bool{}}
}

func (x *observeMemberIndex[T]) has(app, id int64, name string) bool {
	ids, ok := x.ids[app]
	if !ok {
		list := x.read[app]
		ids, x.names[app] = make(map[int64]bool, len(list)), make(map[string]bool, len(list))
		for _, m := range list {
			r := resolveMember(m)
			ids[r.ID] = true
			x.names[app][resolveFoldASCII(r.Name)] = true
		}
		x.ids[app] = ids
	}
	if id != 0 {
		return ids[id]
	}
	return x.names[app][resolveFoldASCII(name)]
}

// observeApps finds the applications a spec entry names, the way resolve
// does (id, or full or short name ASCII case-insensitively).
type observeApps struct {
	byID   map[int64]bool
	byName map[string][]int64
}

func observeAppIndex(apps []Application) observeApps {
	x := observeApps{byID: make(map[int64]bool, len(apps)), byName: make(map[string][]int64, 2*len(apps))}
	for _, a := range apps {
		x.byID[a.ID] = true
		full := resolveFoldASCII(a.Name)
		x.byName[full] = append(x.byName[full], a.ID)
		if short := planShortAppName(full); short != full {
			x.byName[short] = append(x.byName[short], a.ID)
		}
	}
	return x
}

func (x observeApps) lookup(b *spec.Binding) []int64 {
	if b.ApplicationID != 0 {
		if x.byID[b.ApplicationID] {
			return []int64{b.ApplicationID}
		}
		return nil
	}
	if b.Application == "" {
		return nil
	}
	return x.byName[resolveFoldASCII(b.Application)]
}

// ObserveMembers reads the rules and users of every application of c that
// were not read yet ('voxbind doctor' counts them).
func ObserveMembers(ctx context.Context, acct Account, c *Current) error {
	apps := make([]int64, len(c.Applications))
	for i, a := range c.Applications {
		apps[i] = a.ID
	}
	return observeFetch(ctx, acct, c, apps, apps)
}

// observeFetch reads the rules of the applications in rules and the users
// of those in users, at most observeParallel at a time, into c. The first
// error to happen wins and cancels the rest.
func observeFetch(ctx context.Context, acct Account, c *Current, rules, users []int64) error {
	type job struct {
		app   int64
		users bool
	}
	var jobs []job
	for _, app := range observeUnique(rules) {
		if _, read := c.Rules[app]; !read {
			jobs = append(jobs, job{app, false})
		}
	}
	for _, app := range observeUnique(users) {
		if _, read := c.Users[app]; !read {
			jobs = append(jobs, job{app, true})
		}
	}
	if len(jobs) == 0 {
		return nil
	}
	names := make(map[int64]string, len(c.Applications)) // for errors: escaped
	for _, a := range c.Applications {
		names[a.ID] = Printable(a.Name)
	}
	gotRules := make([][]Rule, len(jobs))
	gotUsers := make([][]User, len(jobs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(observeParallel)
	for i, j := range jobs {
		if gctx.Err() != nil {
			break // a read failed, or ctx ended: start no more
		}
		g.Go(func() error {
			var err error
			if j.users {
				if gotUsers[i], err = acct.Users(gctx, j.app); err != nil {
					return fmt.Errorf("read users of application %d (%s): %w", j.app, names[j.app], err)
				}
			} else if gotRules[i], err = acct.Rules(gctx, j.app); err != nil {
				return fmt.Errorf("read rules of application %d (%s): %w", j.app, names[j.app], err)
			}
			return nil
		})
	}
	// The first error cancels the others; theirs are cancellations.
	if err := g.Wait(); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	for i, j := range jobs {
		if j.users {
			c.Users[j.app] = observeNonNil(gotUsers[i])
		} else {
			c.Rules[j.app] = observeNonNil(gotRules[i])
		}
	}
	return nil
}

func observeUnique(ids []int64) []int64 {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	return slices.Compact(ids)
}

// observeNonNil keeps "read, and empty" apart from "not read" in the maps.
func observeNonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
