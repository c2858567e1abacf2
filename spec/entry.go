package spec

import (
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/voxbind/voxbind/internal/english"
)

var entryKeys = []string{
	"registration", "registration_id",
	"application", "application_id",
	"rule", "rule_id", "user", "user_id",
	"unbound",
}

// keySet holds the entry keys written, as bits indexed like entryKeys.
type keySet uint16

func keyIndex(key string) int {
	for i, k := range entryKeys {
		if k == key {
			return i
		}
	}
	panic("spec: not an entry key: " + key)
}

// entry reads one item of `bindings` and checks it alone and against the
// entries read before it.
func (w *walker) entry(item *yaml.Node) {
	e := deref(item)
	if e.Kind != yaml.MappingNode {
		w.errorf(item, CodeWrongType, "a binding entry is a mapping, not "+describe(e), "write it as {registration: alice@pbx.example.com, application: support}")
		return
	}
	before := len(w.l.errs)
	w.entryBuf = w.fields(e, w.entryBuf, 0)
	b := Binding{Pos: w.pos(item), KeyPos: make(map[string]Pos, len(w.entryBuf))}
	ok := true       // every value of the entry read without error
	regGood := false // its registration (or registration_id) read without error
	var present keySet
	for _, p := range w.entryBuf {
		k, v := p.key, deref(p.val)
		var good bool
		switch k.Value {
		case "registration":
			if b.Registration, good = w.nameValue("registration", v); good {
				if e := registrationProblem(v.Value); e != nil {
					w.errorf(v, e.Code, e.Msg, e.Fix)
					good = false
				}
			}
			regGood = good
		case "registration_id":
			b.RegistrationID, good = w.intValue("registration_id", v)
			regGood = good
		case "application":
			b.Application, good = w.nameValue("application", v)
		case "application_id":
			b.ApplicationID, good = w.intValue("application_id", v)
		case "rule":
			b.Rule, good = w.nameValue("rule", v)
		case "rule_id":
			b.RuleID, good = w.intValue("rule_id", v)
		case "user":
			b.User, good = w.nameValue("user", v)
		case "user_id":
			b.UserID, good = w.intValue("user_id", v)
		case "unbound":
			// unbound: false is the same as no unbound key.
			b.Unbound, good = w.boolValue("unbound", v)
		default:
			if strings.HasPrefix(k.Value, "x-") {
				continue
			}
			w.unknownKey(k, entryKeys, topKeys, "in a binding entry", "is a top-level key", "move it out of \"bindings:\" to the top of the file")
			ok = false
			continue
		}
		b.KeyPos[k.Value] = w.pos(k)
		present |= 1 << keyIndex(k.Value)
		ok = ok && good
	}
	// A missing key is often one that was misspelled or mistyped above:
	// "entry has no ..." only when the entry has no other problem.
	ok = w.l.checkPairs(&b, present, yamlWords, len(w.l.errs) == before) && ok
	flags := registrationFlag(present, regGood)
	if ok {
		flags = entryChecked
	}
	if item.Kind == yaml.AliasNode {
		flags |= entryAlias
	}
	w.l.bindings = append(w.l.bindings, b)
	w.l.flags = append(w.l.flags, flags)
}

// registrationProblem checks the sip_username@proxy form, split at the
// last '@', and says what is wrong (nil when nothing is; the caller places
// it).
func registrationProblem(reg string) *Error {
	user, proxy := splitRegistration(reg)
	if len(user) == len(reg) {
		return &Error{Code: CodeInvalidValue, Msg: "registration " + strconv.Quote(reg) + " has no '@'", Fix: "write sip_username@proxy, or give registration_id"}
	}
	if user == "" || proxy == "" {
		return &Error{Code: CodeInvalidValue, Msg: "registration " + strconv.Quote(reg) + " needs both parts of sip_username@proxy (split at the last '@')",
			Fix: "write both, or give registration_id"}
	}
	return nil
}

// entryWords are the messages about a missing key, which a YAML entry and
// a CSV row put differently: what is missing, and what to do.
type entryWords struct {
	noRegistration, noRegistrationFix string
	noTarget, noTargetFix             string
	unboundWith                       string // followed by the targets written
	removeUnbound                     string
}

var yamlWords = entryWords{
	noRegistration:    "entry has no registration",
	noRegistrationFix: "add registration: sip_username@proxy, or registration_id: ID",
	noTarget:          "entry has no target",
	noTargetFix:       "add application (or application_id), or unbound: true",
	unboundWith:       "unbound: true together with ",
	removeUnbound:     "remove unbound, or remove ",
}

// checkPairs enforces the spec's one-of rules for one entry.
// Missing keys are reported only when reportMissing is set.
func (l *loader) checkPairs(b *Binding, present keySet, words entryWords, reportMissing bool) bool {
	ok := true
	has := func(k string) bool { return present&(1<<keyIndex(k)) != 0 }
	later := func(a, c string) (string, string) {
		pa, pc := b.KeyPos[a], b.KeyPos[c]
		if pa.Line > pc.Line || (pa.Line == pc.Line && pa.Col > pc.Col) {
			return a, c
		}
		return c, a
	}
	both := func(a, c string) {
		second, first := later(a, c)
		l.report(b.KeyPos[second], CodeConflictingKeys, second+" and "+first+" are both set (also at "+b.KeyPos[first].String()+")", "keep one of the two")
		ok = false
	}

	switch {
	case has("registration") && has("registration_id"):
		both("registration", "registration_id")
	case !has("registration") && !has("registration_id"):
		if reportMissing {
			l.report(b.Pos, CodeMissingKey, words.noRegistration, words.noRegistrationFix)
		}
		ok = false
	}

	var targets []string
	for _, k := range entryKeys[2:8] {
		if has(k) {
			targets = append(targets, k)
		}
	}
	if b.Unbound {
		if len(targets) > 0 {
			l.report(b.KeyPos["unbound"], CodeConflictingKeys, words.unboundWith+english.And(targets)+": an unbound registration has no target", words.removeUnbound+english.And(targets))
			ok = false
		}
		return ok
	}

	var sub []string // rule, rule_id, user, user_id as written
	for _, k := range entryKeys[4:8] {
		if has(k) {
			sub = append(sub, k)
		}
	}
	switch {
	case has("application") && has("application_id"):
		both("application", "application_id")
	case !has("application") && !has("application_id"):
		switch {
		case !reportMissing:
		case len(sub) > 0:
			l.report(b.KeyPos[sub[0]], CodeMissingKey, sub[0]+" needs the application it belongs to", "add application (or application_id)")
		default:
			l.report(b.Pos, CodeMissingKey, words.noTarget, words.noTargetFix)
		}
		ok = false
	}

	switch len(sub) {
	case 0, 1:
	case 2:
		second, first := later(sub[0], sub[1])
		msg := second + " and " + first + " are both set (also at " + b.KeyPos[first].String() + ")"
		fix := "keep one of the two"
		if strings.TrimSuffix(sub[0], "_id") != strings.TrimSuffix(sub[1], "_id") {
			msg += ": a registration goes to a rule or to a user, not both"
			fix = "keep one"
		}
		l.report(b.KeyPos[second], CodeConflictingKeys, msg, fix)
		ok = false
	default:
		l.report(b.Pos, CodeConflictingKeys, english.And(sub)+" are all set: a registration goes to one rule or one user", "keep one")
		ok = false
	}
	return ok
}

// duplicates finds entries of one account that list a registration, or
// target a user, that an earlier entry (in this or an earlier file of the
// account) already does.
type duplicates struct {
	l      *loader
	regs   map[string]Pos // "sip_username@proxy" (proxy lower-cased) → where first listed
	regIDs map[int64]Pos
	users  map[userKey]Pos
}

// userKey identifies a user target as written: application and user each by
// lower-cased name or by id. Names and ids cannot be compared offline.
type userKey struct {
	app    string
	appID  int64
	user   string
	userID int64
}

func newDuplicates(l *loader, entries int) *duplicates {
	return &duplicates{
		l:      l,
		regs:   make(map[string]Pos, entries),
		regIDs: make(map[int64]Pos),
		users:  make(map[userKey]Pos),
	}
}

// check reports b when it lists a registration, or targets a user, that
// an entry checked before did. Registrations compare by sip_username and
// proxy ASCII case-insensitively, as plan matches them against the
// account; users by application and user name ASCII case-insensitively,
// or by the same ids. A name and an id
// cannot be compared offline: the planner checks those against the
// account. An entry written as an alias (atEntry) is reported where the
// alias stands, not where its anchor does.
func (d *duplicates) check(b *Binding, atEntry bool) {
	d.checkRegistration(b, atEntry)
	if b.Unbound || (b.User == "" && b.UserID == 0) {
		return
	}
	l, at := d.l, dupPos(b, atEntry)
	k := userKey{app: lowerASCII(b.Application), appID: b.ApplicationID, user: lowerASCII(b.User), userID: b.UserID}
	userField := "user"
	who := b.User
	if b.User == "" {
		userField, who = "user_id", strconv.FormatInt(b.UserID, 10)
	}
	app := "application " + b.Application
	if b.Application == "" {
		app = "application_id " + strconv.FormatInt(b.ApplicationID, 10)
	}
	pos := at(userField)
	if first, dup := d.users[k]; dup {
		l.report(pos, CodeDuplicateUser, userField+" "+who+" of "+app+" is the target of another entry too (at "+first.String()+"): a user holds one registration", "remove one of the two entries or pick another user")
	} else {
		d.users[k] = pos
	}
}

// checkRegistration reports b when it lists a registration that an entry
// checked before did (see check).
func (d *duplicates) checkRegistration(b *Binding, atEntry bool) {
	l, at := d.l, dupPos(b, atEntry)
	if b.Registration != "" {
		key := registrationKey(b.Registration)
		pos := at("registration")
		if first, dup := d.regs[key]; dup {
			l.report(pos, CodeDuplicateEntry, "registration "+b.Registration+" is listed twice (first at "+first.String()+")", "remove one of the two entries")
		} else {
			d.regs[key] = pos
		}
	} else {
		pos := at("registration_id")
		if first, dup := d.regIDs[b.RegistrationID]; dup {
			l.report(pos, CodeDuplicateEntry, "registration_id "+strconv.FormatInt(b.RegistrationID, 10)+" is listed twice (first at "+first.String()+")", "remove one of the two entries")
		} else {
			d.regIDs[b.RegistrationID] = pos
		}
	}
}

// dupPos places a duplicate: at the key given (an entry written as an
// alias, atEntry, where the alias stands).
func dupPos(b *Binding, atEntry bool) func(key string) Pos {
	return func(key string) Pos {
		if atEntry {
			return b.Pos
		}
		return b.KeyPos[key]
	}
}

// registrationKey is the form two `registration` values are compared in:
// lower-cased (ASCII), SIP username and proxy alike, because plan matches
// both parts against the account ASCII case-insensitively
// (ALICE@pbx.example.com and alice@PBX.example.com name one registration).
func registrationKey(reg string) string { return lowerASCII(reg) }

func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}
