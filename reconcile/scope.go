package reconcile

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/voxbind/voxbind/internal/english"
	"github.com/voxbind/voxbind/spec"
)

// Options are the inputs of a plan besides the spec and the account.
type Options struct {
	// Selection limits the plan to some registrations (--only, --except).
	Selection Selection
	// Today is the day (its UTC date counts) the spec's ignore entries are
	// judged on: an entry is in force through its until day. The planner
	// reads no clock; the command passes the current time. Required when
	// the spec has ignore entries.
	Today time.Time
	// Fleet plans one account of a fleet run: a selector that matches no
	// registration of this account, or a selection that leaves none in
	// scope, is no error here (Plan.Unmatched names the selector,
	// Plan.NothingInScope tells of the selection); FleetPlan.SelectsNothing
	// checks that each selector matches in some account of the fleet and
	// that the selection leaves some registration in scope.
	Fleet bool
}

// selectorForms names the accepted selector forms, for messages.
const selectorForms = "id=N (a registration id), reg=PATTERN (sip_username@proxy with * and ?, such as reg=lab-*@pbx.example.com) or app=NAME (an application's short or full name)"

// Selector picks registrations for --only and --except: by id, by a
// pattern of sip_username@proxy, or by the application the spec or the
// account binds them to. Make one with ParseSelector.
type Selector struct {
	text string // as given
	kind selectorKind
	id   int64
	pat  regPattern
	app  string // ASCII lower-cased
}

type selectorKind uint8

const (
	selectID selectorKind = iota + 1
	selectReg
	selectApp
)

// ParseSelector reads id=N, reg=PATTERN or app=NAME. The error names the
// accepted forms.
func ParseSelector(s string) (Selector, error) {
	key, value, ok := strings.Cut(s, "=")
	sel := Selector{text: s}
	switch {
	case !ok:
		return sel, fmt.Errorf("selector %q has no '=': write %s", s, selectorForms)
	case value == "":
		return sel, fmt.Errorf("selector %q has nothing after '=': write %s", s, selectorForms)
	}
	switch key {
	case "id":
		id, err := strconv.ParseInt(value, 10, 64)
		if err != nil || id <= 0 || strconv.FormatInt(id, 10) != value {
			return sel, fmt.Errorf("selector %q: id= takes a registration id, a positive decimal number such as id=3321", s)
		}
		sel.kind, sel.id = selectID, id
	case "reg":
		user, proxy := scopeSplit(value)
		if len(user) == len(value) || user == "" || proxy == "" {
			return sel, fmt.Errorf("selector %q: reg= takes a pattern of sip_username@proxy (split at the last '@', both parts non-empty; * matches any characters, ? one), such as reg=lab-*@pbx.example.com or reg=*@pbx.example.com", s)
		}
		sel.kind, sel.pat = selectReg, newRegPattern(value)
	case "app":
		sel.kind, sel.app = selectApp, resolveFoldASCII(value)
	default:
		return sel, fmt.Errorf("selector %q: unknown kind %q: write %s", s, key, selectorForms)
	}
	return sel, nil
}

// String is the selector as it was given.
func (s Selector) String() string { return s.text }

// matches reports whether s picks reg, which the spec binds to want (nil:
// not listed, or listed as unbound).
func (s *Selector) matches(reg *Registration, want *Target) bool {
	switch s.kind {
	case selectID:
		return reg.ID == s.id
	case selectReg:
		return s.pat.match(&reg.RegistrationRef)
	case selectApp:
		return scopeAppIs(reg.Target, s.app) || scopeAppIs(want, s.app)
	}
	return false
}

func scopeAppIs(t *Target, folded string) bool {
	if t == nil {
		return false
	}
	full := resolveFoldASCII(t.Application.Name)
	return full == folded || planShortAppName(full) == folded
}

// Selection is a plan's --only and --except selectors. A registration is
// in the selection when it matches some Only selector (or Only is empty)
// and no Except selector. The zero Selection selects everything.
type Selection struct {
	Only, Except []Selector
}

// Empty reports whether the selection selects everything.
func (s Selection) Empty() bool { return len(s.Only) == 0 && len(s.Except) == 0 }

// summary is the selection as plans record it; Outside is filled in later.
func (s Selection) summary() *PlanSelection {
	if s.Empty() {
		return nil
	}
	texts := func(sels []Selector) []string {
		out := make([]string, len(sels))
		for i, x := range sels {
			out[i] = x.text
		}
		return out
	}
	return &PlanSelection{Only: texts(s.Only), Except: texts(s.Except)}
}

// ErrSelectsNothing is wrapped by the error of a selector that matches no
// registration of the account: a typo must not silently select nothing.
var ErrSelectsNothing = errors.New("a selector matches no registration")

// outside decides, for every registration of current, whether it is
// outside the selection; want(i) is what the spec binds registration i to
// (nil when nothing). It returns nil when the selection is empty, and,
// with the decisions all the same, an error naming every selector that
// matches no registration at all.
func (s Selection) outside(current *Current, want func(i int) *Target) ([]bool, error) {
	if s.Empty() {
		return nil, nil
	}
	matchedOnly := make([]bool, len(s.Only))
	matchedExcept := make([]bool, len(s.Except))
	out := make([]bool, len(current.Registrations))
	for i := range current.Registrations {
		reg := &current.Registrations[i]
		var w *Target
		if want != nil {
			w = want(i)
		}
		in := len(s.Only) == 0
		for k := range s.Only {
			if s.Only[k].matches(reg, w) {
				in, matchedOnly[k] = true, true
			}
		}
		for k := range s.Except {
			if s.Except[k].matches(reg, w) {
				in, matchedExcept[k] = false, true
			}
		}
		out[i] = !in
	}
	var e SelectionError
	for k, ok := range matchedOnly {
		if !ok {
			e.add("--only "+s.Only[k].text, s.unmatched(&s.Only[k], current))
		}
	}
	for k, ok := range matchedExcept {
		if !ok {
			e.add("--except "+s.Except[k].text, s.unmatched(&s.Except[k], current))
		}
	}
	if len(e.Problems) == 0 && len(out) > 0 && nothingInScope(out) {
		e.addSelection(s.flags(), s.leavesNothing(current))
	}
	if len(e.Problems) > 0 {
		return out, &e
	}
	return out, nil
}

// nothingInScope reports whether a selection's decisions (as outside
// returns them) leave no registration in scope; false for the empty
// selection (nil).
func nothingInScope(outside []bool) bool {
	return outside != nil && !slices.Contains(outside, false)
}

// flags is the selection as it was given on the command line: "--only
// reg=lab-*@* --except id=3001".
func (s Selection) flags() string {
	if s.Empty() {
		return ""
	}
	return s.summary().flags()
}

// flags is the selection as it was given on the command line.
func (s *PlanSelection) flags() string {
	var b strings.Builder
	for _, sel := range s.Only {
		b.WriteString(" --only " + sel)
	}
	for _, sel := range s.Except {
		b.WriteString(" --except " + sel)
	}
	return strings.TrimPrefix(b.String(), " ")
}

// leavesNothing says why a selection whose selectors each match leaves no
// registration of current in scope, then "; " and what to do.
func (s Selection) leavesNothing(current *Current) string {
	account := strconv.FormatInt(current.Account.ID, 10)
	if len(s.Only) == 0 {
		return "takes every registration of account " + account + " out of scope; " + selectionFix
	}
	return "leaves no registration of account " + account + " in scope: --except takes out all that --only picks; " + selectionFix
}

// selectionFix is what to do about a selection that picks nothing.
const selectionFix = "check the selectors against the account: voxbind export lists every registration"

// SelectionError names every selector that matches no registration (or
// the selection whose selectors, together, leave none in scope), why, and
// what to do. It wraps ErrSelectsNothing.
type SelectionError struct {
	Problems []string // one per selector: "--only reg=... matches no registration of account 1"
	Fixes    []string // what to do, one per problem
	// Selectors lists the selectors that match nothing, as flags
	// ("--only reg=..."); never the selection as a whole, which
	// LeavesNothing tells of.
	Selectors []string
	// LeavesNothing is set when the selectors each match, but together
	// leave no registration in scope.
	LeavesNothing bool
}

// add records that selector (as flags) selects nothing: what says why,
// before "; " and the fix after it.
func (e *SelectionError) add(selector, what string) {
	e.addProblem(selector, what)
	e.Selectors = append(e.Selectors, selector)
}

// addSelection records that the selection (as flags) leaves nothing in
// scope, though each of its selectors matches: what says why, before "; "
// and the fix after it.
func (e *SelectionError) addSelection(flags, what string) {
	e.addProblem(flags, what)
	e.LeavesNothing = true
}

func (e *SelectionError) addProblem(subject, what string) {
	problem, fix, _ := strings.Cut(what, "; ")
	e.Problems = append(e.Problems, Printable(subject)+" "+problem)
	e.Fixes = append(e.Fixes, fix)
}

func (e *SelectionError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p + "; " + e.Fixes[i]
	}
	if len(lines) == 1 {
		return lines[0]
	}
	return fmt.Sprintf("%d selectors match no registration:\n  %s", len(lines), strings.Join(lines, "\n  "))
}

func (e *SelectionError) Unwrap() error { return ErrSelectsNothing }

// unmatched says why a selector picked nothing, then "; " and what to do.
func (s Selection) unmatched(sel *Selector, current *Current) string {
	what := "no registration of account " + strconv.FormatInt(current.Account.ID, 10)
	hint := "check it against the account: voxbind export lists every registration"
	if sel.kind == selectApp {
		known := false
		for _, a := range current.Applications {
			full := resolveFoldASCII(a.Name)
			known = known || full == sel.app || planShortAppName(full) == sel.app
		}
		if known {
			what = "no registration: neither the spec nor the account binds one to that application"
		} else {
			hint = "the account has no application of that name" + resolveKnownApplications(current.Applications)
		}
	}
	return "matches " + what + "; " + hint
}

// regPattern matches registrations by sip_username@proxy: * matches any
// run of characters and ? one character; the username part is compared
// exactly, the proxy part ASCII case-insensitively.
type regPattern struct {
	user, proxy string // the proxy part lower-cased
	literal     bool   // no wildcard: compare for equality
}

func newRegPattern(p string) regPattern {
	user, proxy := scopeSplit(p)
	return regPattern{user: user, proxy: resolveFoldASCII(proxy), literal: !strings.ContainsAny(p, "*?")}
}

func (p regPattern) match(r *RegistrationRef) bool {
	if p.literal {
		return r.SIPUsername == p.user && resolveFoldASCII(r.Proxy) == p.proxy
	}
	return scopeGlob(p.user, r.SIPUsername) && scopeGlob(p.proxy, resolveFoldASCII(r.Proxy))
}

// scopeSplit splits sip_username@proxy at the last '@'; without one, the
// whole string is the username.
func scopeSplit(s string) (user, proxy string) {
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		return s[:i], s[i+1:]
	}
	return s, ""
}

// scopeGlob reports whether s matches pattern, in which * matches any run
// of characters (none included) and ? exactly one character (one UTF-8
// rune); nothing else is special. It backtracks only to the last *, so it
// takes at most len(pattern)·len(s) steps, and it allocates nothing.
func scopeGlob(pattern, s string) bool {
	pi, si := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		if pi < len(pattern) {
			switch c := pattern[pi]; {
			case c == '*':
				star, mark = pi, si
				pi++
				continue
			case c == '?':
				_, n := utf8.DecodeRuneInString(s[si:])
				pi, si = pi+1, si+n
				continue
			case c == s[si]:
				pi, si = pi+1, si+1
				continue
			}
		}
		if star < 0 {
			return false
		}
		_, n := utf8.DecodeRuneInString(s[mark:])
		mark += n
		pi, si = star+1, mark
	}
	for pi < len(pattern) && pattern[pi] == '*' {
		pi++
	}
	return pi == len(pattern)
}

// planScope is what a selection and the spec's exceptions make of the
// account: for each registration (by index into current.Registrations),
// whether it is outside the selection and which exception in force holds
// it. A nil *planScope, or nil slices, mean "everything in, nothing
// ignored".
type planScope struct {
	outside []bool
	ignored []*spec.Ignore
}

func (s *planScope) outsideAt(i int32) bool {
	return s != nil && s.outside != nil && s.outside[i]
}

func (s *planScope) ignoredAt(i int32) *spec.Ignore {
	if s == nil || s.ignored == nil {
		return nil
	}
	return s.ignored[i]
}

// scopeIgnored finds, for every registration, the first ignore entry (in
// spec order) in force on today that matches it, or nil; it returns nil
// when no entry is in force. Entries by id and by a pattern without
// wildcards are looked up; only patterns with wildcards are tried one by
// one, so that many exact entries cost no more than one.
func scopeIgnored(ignores []spec.Ignore, today time.Time, regs []Registration) []*spec.Ignore {
	type exact struct{ user, proxy string }
	byID := map[int64]int{}
	byName := map[exact]int{}
	type glob struct {
		pat regPattern
		at  int
	}
	var globs []glob
	for k := range ignores {
		ig := &ignores[k]
		if !ig.InForce(today) {
			continue
		}
		if ig.RegistrationID != 0 {
			if _, dup := byID[ig.RegistrationID]; !dup {
				byID[ig.RegistrationID] = k
			}
			continue
		}
		pat := newRegPattern(ig.Registration)
		if !pat.literal {
			globs = append(globs, glob{pat, k})
			continue
		}
		if _, dup := byName[exact{pat.user, pat.proxy}]; !dup {
			byName[exact{pat.user, pat.proxy}] = k
		}
	}
	if len(byID)+len(byName)+len(globs) == 0 {
		return nil
	}
	out := make([]*spec.Ignore, len(regs))
	for i := range regs {
		reg := &regs[i].RegistrationRef
		first := len(ignores)
		if k, ok := byID[reg.ID]; ok {
			first = k
		}
		if k, ok := byName[exact{reg.SIPUsername, resolveFoldASCII(reg.Proxy)}]; ok {
			first = min(first, k)
		}
		for _, g := range globs {
			if g.at >= first {
				break
			}
			if g.pat.match(reg) {
				first = g.at
				break
			}
		}
		if first < len(ignores) {
			out[i] = &ignores[first]
		}
	}
	return out
}

// UnmatchedIgnore is an ignore entry in force that matches no
// registration of the account: it holds nothing, most often because of a
// typo (a username whose case differs from the account's), and the drift
// it was meant to hide is planned. plan and apply warn about each.
type UnmatchedIgnore struct {
	Pos     spec.Pos // the entry's registration (or registration_id) key
	Message string   // what is wrong, naming the pattern and the account
	Fix     string   // what to do
}

// scopeUnmatched lists, in spec order, the ignore entries in force on
// today that match no registration of regs; ignored is what scopeIgnored
// found (an entry that some registration holds is matched). The match is
// the planner's own: it only tells, and changes no decision. A pattern
// whose username differs only in ASCII case from a registration's names
// that registration.
func scopeUnmatched(ignores []spec.Ignore, today time.Time, regs []Registration, ignored []*spec.Ignore, account int64) []UnmatchedIgnore {
	held := map[*spec.Ignore]bool{}
	for _, ig := range ignored {
		if ig != nil {
			held[ig] = true
		}
	}
	var out []UnmatchedIgnore
	for k := range ignores {
		ig := &ignores[k]
		if !ig.InForce(today) || held[ig] || scopeMatchesAny(ig, regs) {
			continue
		}
		out = append(out, scopeUnmatchedEntry(ig, regs, account))
	}
	return out
}

// scopeMatchesAny reports whether ig matches some registration of regs,
// as scopeIgnored matches them.
func scopeMatchesAny(ig *spec.Ignore, regs []Registration) bool {
	if ig.RegistrationID != 0 {
		return slices.ContainsFunc(regs, func(r Registration) bool { return r.ID == ig.RegistrationID })
	}
	pat := newRegPattern(ig.Registration)
	for i := range regs {
		if pat.match(&regs[i].RegistrationRef) {
			return true
		}
	}
	return false
}

// scopeUnmatchedEntry says why ig, which matches nothing, holds nothing
// and what to do.
func scopeUnmatchedEntry(ig *spec.Ignore, regs []Registration, account int64) UnmatchedIgnore {
	u := UnmatchedIgnore{
		Pos:     ig.KeyPos["registration"],
		Message: fmt.Sprintf("the ignore entry for %s matches no registration of account %d, so it excepts nothing", Printable(ig.Registration), account),
		Fix:     "check it against the account (voxbind export lists every registration), or remove the entry",
	}
	if ig.RegistrationID != 0 {
		u.Pos = ig.KeyPos["registration_id"]
		u.Message = fmt.Sprintf("the ignore entry for registration_id %d matches no registration of account %d, so it excepts nothing", ig.RegistrationID, account)
		return u
	}
	// The same pattern with its username compared in any case.
	pat := newRegPattern(ig.Registration)
	user := resolveFoldASCII(pat.user)
	var near []RegistrationRef
	for i := range regs {
		r := &regs[i].RegistrationRef
		proxy := resolveFoldASCII(r.Proxy)
		if pat.literal && resolveFoldASCII(r.SIPUsername) == user && proxy == pat.proxy ||
			!pat.literal && scopeGlob(user, resolveFoldASCII(r.SIPUsername)) && scopeGlob(pat.proxy, proxy) {
			near = append(near, *r)
		}
	}
	if len(near) == 0 {
		return u
	}
	slices.SortFunc(near, func(a, b RegistrationRef) int { return planCompareRegs(&a, &b) })
	first := near[0]
	name := Printable(first.SIPUsername + "@" + first.Proxy)
	if len(near) == 1 {
		u.Message += fmt.Sprintf(": registration %d (%s) differs from it only in the case of its username", first.ID, name)
	} else {
		u.Message += fmt.Sprintf(": %s differ from it only in the case of their usernames, such as %d (%s)",
			english.Plural(len(near), "registration"), first.ID, name)
	}
	if !pat.literal {
		u.Fix = "usernames in ignore: are compared exactly; write the pattern's username in the case the account uses, as in " + name
		return u
	}
	_, proxy := scopeSplit(ig.Registration)
	var as []string
	for _, r := range near {
		if s := Printable(r.SIPUsername + "@" + proxy); !slices.Contains(as, s) {
			as = append(as, s)
		}
	}
	u.Fix = "usernames in ignore: are compared exactly; write it as " + strings.Join(as, " or ")
	return u
}
