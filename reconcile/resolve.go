package reconcile

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/voxbind/voxbind/internal/english"
	"github.com/voxbind/voxbind/spec"
)

// resolvedBinding is what one spec entry asks of one registration, once its
// names are resolved against the observed account.
type resolvedBinding struct {
	entry  *spec.Binding // nil: the registration is not listed
	target *Target       // desired target; nil = unbound
}

// specResolver turns spec references into registrations and targets. Its
// indexes are built once per Diff, keyed by id and by lower-cased name, so
// that resolution costs one map lookup per reference.
type specResolver struct {
	current *Current

	regByID   map[int64]int32
	regByName map[resolveRegKey]int32 // -1: several registrations share the name

	appByID   map[int64]int32
	appByName map[string]int32 // lower-cased full and short names; -1: ambiguous

	rules, users *resolveMembers

	errs       spec.Errors
	regMissing int // entries whose registration the account does not have
}

type resolveRegKey struct{ username, proxy string }

func newSpecResolver(current *Current) *specResolver {
	r := &specResolver{
		current:   current,
		regByID:   make(map[int64]int32, len(current.Registrations)),
		regByName: make(map[resolveRegKey]int32, len(current.Registrations)),
		appByID:   make(map[int64]int32, len(current.Applications)),
		appByName: make(map[string]int32, 2*len(current.Applications)),
		rules:     newResolveMembers("rule", spec.CodeUnknownRule, spec.CodeAmbiguousRule, current.Rules),
		users:     newResolveMembers("user", spec.CodeUnknownUser, spec.CodeAmbiguousUser, current.Users),
	}
	for i := range current.Registrations {
		reg := &current.Registrations[i]
		r.regByID[reg.ID] = int32(i)
		k := resolveRegKey{resolveFoldASCII(reg.SIPUsername), resolveFoldASCII(reg.Proxy)}
		if _, dup := r.regByName[k]; dup {
			r.regByName[k] = -1
		} else {
			r.regByName[k] = int32(i)
		}
	}
	for i, app := range current.Applications {
		r.appByID[app.ID] = int32(i)
		full := resolveFoldASCII(app.Name)
		r.addAppName(full, int32(i))
		if short := planShortAppName(full); short != full {
			r.addAppName(short, int32(i))
		}
	}
	return r
}

func (r *specResolver) addAppName(name string, i int32) {
	if j, dup := r.appByName[name]; dup && j != i {
		r.appByName[name] = -1
		return
	}
	r.appByName[name] = i
}

// resolve checks the account_id guard and resolves every entry of desired.
// The result has one element per observed registration, in the order of
// current.Registrations. All problems come back together as spec.Errors.
func resolve(desired *spec.Spec, current *Current) ([]resolvedBinding, error) {
	r := newSpecResolver(current)
	if desired.AccountID != 0 && desired.AccountID != current.Account.ID {
		r.errorf(desired.AccountIDPos, spec.CodeAccountMismatch,
			fmt.Sprintf("pass --account-id %d to act on that child account, use that account's key file, or change account_id in the spec", desired.AccountID),
			"account_id %d does not match account %d, the one the credentials act on", desired.AccountID, current.Account.ID)
	}
	out := make([]resolvedBinding, len(current.Registrations))
	userOwner := make(map[int64]*spec.Binding, len(desired.Bindings))
	for i := range desired.Bindings {
		b := &desired.Bindings[i]
		reg, regOK := r.registration(b)
		var target *Target
		targetOK := true
		if !b.Unbound {
			target, targetOK = r.target(b)
		}
		if !regOK || !targetOK {
			continue
		}
		if prev := out[reg].entry; prev != nil {
			ref := &current.Registrations[reg].RegistrationRef
			r.errorf(b.Pos, spec.CodeDuplicateEntry, "list each registration once",
				"registration %d (%s) is already listed at %s", ref.ID, regName(ref), prev.Pos.Short())
			continue
		}
		if target != nil && target.User != nil {
			if prev, dup := userOwner[target.User.ID]; dup {
				r.errorf(b.Pos, spec.CodeDuplicateUser, "a user holds one registration at a time: bind one of the two elsewhere",
					"user %s (%d) of application %s is also the target of the entry at %s",
					Printable(target.User.Name), target.User.ID, Printable(target.Application.Name), prev.Pos.Short())
				continue
			}
			userOwner[target.User.ID] = b
		}
		out[reg] = resolvedBinding{entry: b, target: target}
	}
	if n := len(desired.Bindings); n > 1 && r.regMissing == n {
		// A spec for another account: one line that says so, first, above
		// a "not found" for every entry. It is placed at the line of the
		// first entry, without a column, so that it sorts before every
		// problem of that entry.
		at := slices.MinFunc(desired.Bindings, func(a, b spec.Binding) int { return a.Pos.Compare(b.Pos) }).Pos
		at.Col = 0
		r.errorf(at, spec.CodeUnknownRegistration,
			"check that the spec is for this account (the credentials, --sandbox or --account-id choose it); voxbind export lists its registrations",
			"none of the spec's %d registrations is in account %d%s", n, current.Account.ID, resolveAccountName(current))
	}
	if len(r.errs) > 0 {
		return nil, r.errs.Err()
	}
	return out, nil
}

// resolveAccountName is " (NAME)" for a message, or "" when the account's
// name is not known.
func resolveAccountName(current *Current) string {
	if current.Account.Name == "" {
		return ""
	}
	return " (" + Printable(current.Account.Name) + ")"
}

// errorf records a problem at pos: its code, what to do, and what is
// wrong (format and args).
func (r *specResolver) errorf(pos spec.Pos, code spec.Code, fix, format string, args ...any) {
	r.errs = append(r.errs, spec.NewError(pos, code, fmt.Sprintf(format, args...), fix))
}

// keyPos is where key was written in b, or the entry itself.
func keyPos(b *spec.Binding, key string) spec.Pos {
	if p, ok := b.KeyPos[key]; ok {
		return p
	}
	return b.Pos
}

func (r *specResolver) registration(b *spec.Binding) (int32, bool) {
	if b.RegistrationID != 0 {
		i, ok := r.regByID[b.RegistrationID]
		if !ok {
			r.errorf(keyPos(b, "registration_id"), spec.CodeUnknownRegistration, "check the id: voxbind export lists the registrations",
				"registration_id %d not found in account %d", b.RegistrationID, r.current.Account.ID)
			r.regMissing++
		}
		return i, ok
	}
	k := resolveRegKey{resolveFoldASCII(b.SIPUsername()), resolveFoldASCII(b.Proxy())}
	i, ok := r.regByName[k]
	switch {
	case !ok:
		r.errorf(keyPos(b, "registration"), spec.CodeUnknownRegistration, "check the spelling: voxbind export lists the registrations",
			"registration %q not found in account %d: no registration has that sip_username and proxy", b.Registration, r.current.Account.ID)
		r.regMissing++
		return 0, false
	case i < 0:
		var ids []int64 // in id order: the message must not depend on the order the account was read in
		for _, reg := range r.current.Registrations {
			if resolveFoldASCII(reg.SIPUsername) == k.username && resolveFoldASCII(reg.Proxy) == k.proxy {
				ids = append(ids, reg.ID)
			}
		}
		slices.Sort(ids)
		names := make([]string, len(ids))
		for j, id := range ids {
			names[j] = strconv.FormatInt(id, 10)
		}
		r.errorf(keyPos(b, "registration"), spec.CodeAmbiguousRegistration, "use registration_id instead",
			"registration %q is ambiguous: registrations %s share that sip_username and proxy", b.Registration, strings.Join(names, ", "))
		return 0, false
	}
	return i, true
}

// target resolves the application, rule and user of b. The names in the
// result are spelled as the account spells them, the application's full.
func (r *specResolver) target(b *spec.Binding) (*Target, bool) {
	app, ok := r.application(b)
	if !ok {
		return nil, false
	}
	t := &Target{Application: Ref{ID: app.ID, Name: app.Name}}
	switch {
	case b.Rule != "" || b.RuleID != 0:
		rule, ok := r.member(b, app, r.rules, b.RuleID, b.Rule)
		if !ok {
			return nil, false
		}
		t.Rule = &rule
	case b.User != "" || b.UserID != 0:
		user, ok := r.member(b, app, r.users, b.UserID, b.User)
		if !ok {
			return nil, false
		}
		t.User = &user
	}
	return t, true
}

func (r *specResolver) application(b *spec.Binding) (*Application, bool) {
	if b.ApplicationID != 0 {
		i, ok := r.appByID[b.ApplicationID]
		if !ok {
			r.errorf(keyPos(b, "application_id"), spec.CodeUnknownApplication, "check the id, or name the application with application",
				"application_id %d not found in account %d%s", b.ApplicationID, r.current.Account.ID, r.knownApplications())
			return nil, false
		}
		return &r.current.Applications[i], true
	}
	i, ok := r.appByName[resolveFoldASCII(b.Application)]
	switch {
	case !ok:
		r.errorf(keyPos(b, "application"), spec.CodeUnknownApplication, "check the spelling: the short name or the full name of an application of the account",
			"application %q not found in account %d%s", b.Application, r.current.Account.ID, r.knownApplications())
		return nil, false
	case i < 0:
		var apps []*Application // in id order, whatever the order they were read in
		name := resolveFoldASCII(b.Application)
		for j := range r.current.Applications {
			app := &r.current.Applications[j]
			full := resolveFoldASCII(app.Name)
			if full == name || planShortAppName(full) == name {
				apps = append(apps, app)
			}
		}
		slices.SortFunc(apps, func(a, b *Application) int { return cmp.Compare(a.ID, b.ID) })
		ids := make([]string, len(apps))
		for j, app := range apps {
			ids[j] = fmt.Sprintf("%d (%s)", app.ID, Printable(app.Name))
		}
		r.errorf(keyPos(b, "application"), spec.CodeAmbiguousApplication, "use application_id or the full name",
			"application %q is ambiguous: it names applications %s", b.Application, strings.Join(ids, ", "))
		return nil, false
	}
	return &r.current.Applications[i], true
}

// knownApplications lists the account's applications for an error message
// when there are few enough to read.
func (r *specResolver) knownApplications() string {
	return resolveKnownApplications(r.current.Applications)
}

func resolveKnownApplications(apps []Application) string {
	if len(apps) == 0 {
		return " (the account has no applications)"
	}
	if len(apps) > 10 {
		return ""
	}
	names := make([]string, len(apps))
	for i, a := range apps {
		names[i] = Printable(planShortAppName(a.Name))
	}
	slices.Sort(names)
	return " (it has: " + strings.Join(names, ", ") + ")"
}

// resolveMember is a rule or a user: both are named members of one
// application, resolved the same way.
type resolveMember struct {
	ID            int64
	ApplicationID int64
	Name          string
}

// resolveMembers indexes the rules, or the users, that were read.
type resolveMembers struct {
	kind      string                    // "rule" or "user": the spec's key
	code      spec.Code                 // the code of an unknown one
	ambiguous spec.Code                 // the code of a name several share
	read      map[int64][]resolveMember // by application id; absent: not read
	byID      map[int64]*resolveMember
	names     map[int64]map[string]*resolveMember // by application id, built on demand; nil: several share the name
}

func newResolveMembers[T Rule | User](kind string, code, ambiguous spec.Code, read map[int64][]T) *resolveMembers {
	m := &resolveMembers{
		kind:      kind,
		code:      code,
		ambiguous: ambiguous,
		read:      make(map[int64][]resolveMember, len(read)),
		byID:      make(map[int64]*resolveMember),
		names:     make(map[int64]map[string]*resolveMember),
	}
	for app, list := range read {
		members := make([]resolveMember, len(list))
		for i, x := range list {
			members[i] = resolveMember(x)
			m.byID[members[i].ID] = &members[i]
		}
		m.read[app] = members
	}
	return m
}

// member resolves the rule or user that b names by id or by name within
// app, and records an error saying where it is when it is not there.
func (r *specResolver) member(b *spec.Binding, app *Application, m *resolveMembers, id int64, name string) (Ref, bool) {
	idKey, nameKey := m.kind+"_id", m.kind
	if _, read := m.read[app.ID]; !read {
		r.errorf(keyPos(b, resolveWhich(name != "", nameKey, idKey)), m.code, "run the plan again; if this persists, report it as a bug",
			"%ss of application %s were not read from the account", m.kind, appLabel(app))
		return Ref{}, false
	}
	if id != 0 {
		x, ok := m.byID[id]
		if ok && x.ApplicationID == app.ID {
			return Ref{ID: x.ID, Name: x.Name}, true
		}
		if ok {
			r.errorf(keyPos(b, idKey), spec.CodeWrongApplication, "name the application it belongs to, or pick a "+m.kind+" of this one",
				"%s %d (%s) belongs to application %s, not %s", idKey, id, Printable(x.Name), r.appLabelByID(x.ApplicationID), appLabel(app))
		} else {
			r.errorf(keyPos(b, idKey), m.code, "check the id", "%s %d not found in application %s", idKey, id, appLabel(app))
		}
		return Ref{}, false
	}
	names, ok := m.names[app.ID]
	if !ok {
		members := m.read[app.ID]
		names = make(map[string]*resolveMember, len(members))
		for i := range members {
			k := resolveFoldASCII(members[i].Name)
			if _, dup := names[k]; dup {
				names[k] = nil // ambiguous
			} else {
				names[k] = &members[i]
			}
		}
		m.names[app.ID] = names
	}
	folded := resolveFoldASCII(name)
	switch x, ok := names[folded]; {
	case ok && x != nil:
		return Ref{ID: x.ID, Name: x.Name}, true
	case ok:
		r.ambiguousMember(b, app, m, name)
		return Ref{}, false
	}
	for other, members := range resolveSortedByApp(m.read) {
		if other == app.ID {
			continue
		}
		for _, x := range members {
			if resolveFoldASCII(x.Name) == folded {
				r.errorf(keyPos(b, nameKey), spec.CodeWrongApplication, "name the application it belongs to, or pick a "+m.kind+" of this one",
					"%s %q belongs to application %s, not %s", m.kind, name, r.appLabelByID(other), appLabel(app))
				return Ref{}, false
			}
		}
	}
	r.errorf(keyPos(b, nameKey), m.code, "check the spelling", "%s %q not found in application %s", m.kind, name, appLabel(app))
	return Ref{}, false
}

// ambiguousMember records that name is the name of several rules (users)
// of app, ASCII case-insensitively, as names match: whichever one it
// picked, voxbind would guess, so it asks for the id. An exact-case match
// does not win: two entries naming "alice" and "ALICE" are the same user
// to validate, and export writes the id in this case too.
func (r *specResolver) ambiguousMember(b *spec.Binding, app *Application, m *resolveMembers, name string) {
	folded := resolveFoldASCII(name)
	var same []resolveMember // in id order, whatever the order they were read in
	for _, x := range m.read[app.ID] {
		if resolveFoldASCII(x.Name) == folded {
			same = append(same, x)
		}
	}
	slices.SortFunc(same, func(a, b resolveMember) int { return cmp.Compare(a.ID, b.ID) })
	ids := make([]string, len(same))
	for i, x := range same {
		ids[i] = fmt.Sprintf("%d (%s)", x.ID, Printable(x.Name))
	}
	r.errorf(keyPos(b, m.kind), m.ambiguous, "use "+m.kind+"_id instead",
		"%s %q is ambiguous: application %s has %ss %s, and names match ignoring case", m.kind, name, appLabel(app), m.kind, english.And(ids))
}

func resolveWhich(first bool, a, b string) string {
	if first {
		return a
	}
	return b
}

// resolveSortedByApp iterates a per-application map in application id order, so
// that error messages do not depend on map order.
func resolveSortedByApp[T any](m map[int64][]T) func(yield func(int64, []T) bool) {
	return func(yield func(int64, []T) bool) {
		ids := make([]int64, 0, len(m))
		for id := range m {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids {
			if !yield(id, m[id]) {
				return
			}
		}
	}
}

func (r *specResolver) appLabelByID(id int64) string {
	if i, ok := r.appByID[id]; ok {
		return appLabel(&r.current.Applications[i])
	}
	return strconv.FormatInt(id, 10)
}

// appLabel names an application the way messages do: "support
// (support.acme.voximplant.com)", or just the name when it has no dot.
func appLabel(app *Application) string {
	if short := planShortAppName(app.Name); short != app.Name {
		return Printable(short + " (" + app.Name + ")")
	}
	return Printable(app.Name)
}

// planShortAppName is the part of a full application name before its
// first dot, the name people use.
func planShortAppName(full string) string {
	if i := strings.IndexByte(full, '.'); i >= 0 {
		return full[:i]
	}
	return full
}

// regName is "sip_username@proxy", as messages name a registration.
func regName(r *RegistrationRef) string { return Printable(r.SIPUsername + "@" + r.Proxy) }

// resolveFoldASCII lower-cases ASCII letters only (names match
// ASCII case-insensitively) and returns s itself when it has none to fold.
func resolveFoldASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; 'A' <= c && c <= 'Z' {
					b[j] = c + 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}
