package spec

import (
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

var ignoreKeys = []string{"registration", "registration_id", "reason", "owner", "until"}

// ignore reads one item of `ignore`: an exception with a reason and an
// end date. A missing key is reported only when the entry has no unknown
// key, which is most often the missing one misspelled.
func (w *walker) ignore(item *yaml.Node) {
	e := deref(item)
	if e.Kind != yaml.MappingNode {
		w.errorf(item, CodeWrongType, "an ignore entry is a mapping, not "+describe(e), "write it as {registration: lab-*@pbx.example.com, reason: ..., until: 2026-12-31}")
		return
	}
	ig := Ignore{Pos: w.pos(item), KeyPos: map[string]Pos{}}
	ok, unknown := true, false
	for _, p := range w.fields(e, nil, 0) {
		k, v := p.key, deref(p.val)
		var good bool
		switch k.Value {
		case "registration":
			if ig.Registration, good = w.nameValue("registration", v); good {
				good = w.checkPattern(v)
			}
		case "registration_id":
			ig.RegistrationID, good = w.intValue("registration_id", v)
		case "reason":
			ig.Reason, good = w.textValue("reason", v, "say why voxbind must leave these registrations alone")
		case "owner":
			ig.Owner, good = w.textValue("owner", v, "name who to ask about the exception, or remove the key")
		case "until":
			ig.UntilPos = w.pos(v)
			if ig.Until, good = w.dayValue("until", v); good {
				good = w.checkUntil(v, ig.Until)
			}
		default:
			if strings.HasPrefix(k.Value, "x-") {
				continue
			}
			w.unknownKey(k, ignoreKeys, entryKeys, "in an ignore entry",
				"belongs in a binding entry under \"bindings:\"", "an ignore entry has registration (or registration_id), reason, owner and until")
			ok, unknown = false, true
			continue
		}
		ig.KeyPos[k.Value] = w.pos(k)
		ok = ok && good
	}
	_, hasReg := ig.KeyPos["registration"]
	_, hasID := ig.KeyPos["registration_id"]
	switch {
	case hasReg && hasID:
		second, first := "registration", "registration_id"
		if posBefore(ig.KeyPos[second], ig.KeyPos[first]) {
			second, first = first, second
		}
		w.l.report(ig.KeyPos[second], CodeConflictingKeys, second+" and "+first+" are both set (also at "+ig.KeyPos[first].String()+"): an ignore entry names a pattern or one id", "keep one of the two")
		ok = false
	case !hasReg && !hasID && !unknown:
		w.l.report(ig.Pos, CodeMissingKey, "ignore entry has no registration", "add registration: PATTERN (sip_username@proxy with * and ?), or registration_id: ID")
		ok = false
	}
	if _, has := ig.KeyPos["reason"]; !has && !unknown {
		w.l.report(ig.Pos, CodeMissingKey, "ignore entry has no reason", "add reason: why voxbind must leave these registrations alone, for whoever reads the plan")
		ok = false
	}
	if _, has := ig.KeyPos["until"]; !has && !unknown {
		w.l.report(ig.Pos, CodeMissingKey, "ignore entry has no until", "add until: YYYY-MM-DD, the last day (UTC) the exception holds, at most "+strconv.Itoa(MaxIgnoreDays)+" days ahead")
		ok = false
	}
	if ok {
		w.l.ignores = append(w.l.ignores, ig)
	}
}

// textValue reads free text; numbers and booleans count as their literal
// text, as names do.
func (w *walker) textValue(key string, v *yaml.Node, hint string) (string, bool) {
	if v.Kind != yaml.ScalarNode {
		w.errorf(v, CodeWrongType, key+" must be text, not "+describe(v), "write the text on the same line: "+key+": TEXT")
		return "", false
	}
	if strings.TrimSpace(v.Value) == "" || (v.ShortTag() == "!!null" && v.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) == 0) {
		w.errorf(v, CodeInvalidValue, key+" has no text", hint)
		return "", false
	}
	return v.Value, true
}

func posBefore(a, b Pos) bool { return a.Line < b.Line || a.Line == b.Line && a.Col < b.Col }

// checkPattern checks a registration pattern: sip_username@proxy, split at
// the last '@', both parts non-empty; * and ? are wildcards.
func (w *walker) checkPattern(v *yaml.Node) bool {
	user, proxy := splitRegistration(v.Value)
	switch {
	case len(user) == len(v.Value):
		w.errorf(v, CodeInvalidValue, "registration "+strconv.Quote(v.Value)+" has no '@'", "write a pattern of sip_username@proxy such as lab-*@pbx.example.com (* matches any characters, ? one), or give registration_id")
		return false
	case user == "" || proxy == "":
		w.errorf(v, CodeInvalidValue, "registration "+strconv.Quote(v.Value)+" needs both parts of sip_username@proxy (split at the last '@')", "write * for any, such as *@pbx.example.com")
		return false
	}
	return true
}

// datePattern is what a date looks like to a person, valid or not.
var (
	datePattern = regexp.MustCompile(`^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}$`)
	datePrefix  = regexp.MustCompile(`^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}`)
)

// dayValue reads a YAML date (2026-12-31, unquoted). A quoted date, a day
// that does not exist and a time of day are errors that say so.
func (w *walker) dayValue(key string, v *yaml.Node) (time.Time, bool) {
	const want = "a date such as 2026-12-31 (YYYY-MM-DD, unquoted)"
	if v.Kind != yaml.ScalarNode {
		w.errorf(v, CodeInvalidDate, key+" must be a date, not "+describe(v), "write "+want)
		return time.Time{}, false
	}
	d, err := parseDay(v.Value)
	switch tag := v.ShortTag(); {
	case tag == "!!timestamp" && err == nil:
		return d, true
	case tag == "!!timestamp":
		w.errorf(v, CodeInvalidDate, key+" "+v.Value+" has a time of day: an exception holds through whole days (UTC)", "write the day only, "+datePrefix.FindString(v.Value))
	case tag == "!!str" && err == nil:
		w.errorf(v, CodeInvalidDate, key+" must be a date, not the string "+strconv.Quote(v.Value), "write "+v.Value+" without quotes")
	case tag == "!!str" && datePattern.MatchString(v.Value):
		w.errorf(v, CodeInvalidDate, key+" "+v.Value+" is not a date: no such day in the calendar", "write "+want)
	default:
		w.errorf(v, CodeInvalidDate, key+" must be a date, not "+describe(v), "write "+want)
	}
	return time.Time{}, false
}

// parseDay reads the day forms YAML's timestamp allows without a time.
func parseDay(s string) (time.Time, error) {
	d, err := time.Parse("2006-1-2", s)
	if err != nil {
		return time.Time{}, err
	}
	return d.UTC(), nil
}

// checkUntil applies the rules that depend on the day the spec is loaded:
// at most MaxIgnoreDays ahead, and with Strict, not yet past.
func (w *walker) checkUntil(v *yaml.Node, until time.Time) bool {
	today := w.l.opts.Today
	if today.IsZero() {
		return true
	}
	if last := today.AddDate(0, 0, MaxIgnoreDays); until.After(last) {
		w.errorf(v, CodeUntilTooFar, "until "+DayString(until)+" is more than "+strconv.Itoa(MaxIgnoreDays)+" days after today ("+DayString(today)+
			"): exceptions are temporary", "give "+DayString(last)+" or earlier, and renew the entry if it is still needed then")
		return false
	}
	if w.l.opts.Strict && today.After(until) {
		w.errorf(v, CodeIgnoreEnded, "this exception ended with "+DayString(until)+" (its until) and no longer applies", "remove the entry, or give a later until if it is still needed")
		return false
	}
	return true
}
