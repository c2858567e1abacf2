package sandbox

import (
	"slices"
	"strconv"
	"strings"
)

// boolFilter is an optional true/false filter.
type boolFilter struct{ want, set bool }

func (b boolFilter) pass(v bool) bool { return !b.set || v == b.want }

// refFilter selects registrations by what they are bound to: ids, names
// or any (bound to some object of the kind at all).
type refFilter struct {
	ids   []int64
	names []string // lower case
	any   bool
}

func (f refFilter) set() bool { return f.any || len(f.ids) > 0 || len(f.names) > 0 }

// pass reports whether an object bound by id (0 = none) and name passes.
func (f refFilter) pass(id int64, name string) bool {
	switch {
	case !f.set():
		return true
	case id == 0:
		return false
	case f.any:
		return true
	}
	return slices.Contains(f.ids, id) || slices.Contains(f.names, strings.ToLower(name))
}

// registrationFilter is every filter GetSipRegistrations takes.
type registrationFilter struct {
	id                                              int64
	username                                        string
	proxies                                         []string
	deactivated, successful, persistent, inProgress boolFilter
	bound                                           boolFilter
	application, rule, user                         refFilter
	statusCodes                                     [][2]int // inclusive ranges
}

// parseRegistrationFilter reads GetSipRegistrations' filters.
func parseRegistrationFilter(p params) (registrationFilter, *apiError) {
	var f registrationFilter
	var e *apiError
	if f.id, _, e = p.id("sip_registration_id"); e != nil {
		return f, e
	}
	f.username = p.get("sip_username")
	f.proxies = p.names("proxy")
	// Slices, not maps: with two bad parameters, the same one is refused
	// on every run.
	for _, b := range []struct {
		name string
		dst  *boolFilter
	}{
		{"deactivated", &f.deactivated}, {"successful", &f.successful}, {"is_persistent", &f.persistent},
		{"in_progress", &f.inProgress}, {"is_bound_to_application", &f.bound},
	} {
		if b.dst.want, b.dst.set, e = p.boolean(b.name, false); e != nil {
			return f, e
		}
	}
	for _, r := range []struct {
		kind string
		dst  *refFilter
	}{{"application", &f.application}, {"rule", &f.rule}, {"user", &f.user}} {
		kind, dst := r.kind, r.dst
		ids, isAny, hasIDs, e := p.idList(kind + "_id")
		if e != nil {
			return f, e
		}
		names := p.names(kind + "_name")
		if hasIDs && len(names) > 0 {
			return f, errorf(458, "specify only one of '%s_id' and '%s_name'", kind, kind)
		}
		for i := range names {
			names[i] = strings.ToLower(names[i])
		}
		*dst = refFilter{ids: ids, names: names, any: isAny}
	}
	if f.statusCodes, e = parseStatusCodes(p.get("status_code")); e != nil {
		return f, e
	}
	return f, nil
}

// parseStatusCodes reads a status_code filter: codes and code:code ranges
// separated by ';', such as 200;400:499.
func parseStatusCodes(s string) ([][2]int, *apiError) {
	if s == "" {
		return nil, nil
	}
	var out [][2]int
	for item := range strings.SplitSeq(s, ";") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(item), ":")
		a, err1 := strconv.Atoi(strings.TrimSpace(lo))
		b, err2 := a, error(nil)
		if isRange {
			b, err2 = strconv.Atoi(strings.TrimSpace(hi))
		}
		if err1 != nil || err2 != nil || a < 0 || b < a {
			return nil, errorf(101, "invalid arguments: the 'status_code' parameter must be SIP codes and code:code ranges separated by ';' (such as 200;400:499), not %q", s)
		}
		out = append(out, [2]int{a, b})
	}
	return out, nil
}

// matches reports whether registration r passes every filter of f. The
// caller holds s.mu.
func (s *account) matches(r *Registration, f *registrationFilter) bool {
	if !f.deactivated.pass(r.Deactivated) || !f.successful.pass(r.Successful) ||
		!f.persistent.pass(r.IsPersistent) || !f.inProgress.pass(r.InProgress) || !f.bound.pass(r.bound()) {
		return false
	}
	if f.username != "" && !fragment(r.SIPUsername, f.username) {
		return false
	}
	if len(f.proxies) > 0 && !anyFragment(r.Proxy, f.proxies) {
		return false
	}
	if len(f.statusCodes) > 0 && !slices.ContainsFunc(f.statusCodes, func(rg [2]int) bool {
		return r.StatusCode >= rg[0] && r.StatusCode <= rg[1]
	}) {
		return false
	}
	appOK := !f.application.set()
	if r.ApplicationID != 0 && !appOK {
		a := s.state.Applications[s.index.apps[r.ApplicationID]]
		appOK = f.application.pass(r.ApplicationID, a.Name) || f.application.pass(r.ApplicationID, s.fullName(a))
	}
	var rule, user string
	if r.RuleID != 0 && len(f.rule.names) > 0 {
		rule = s.state.Rules[s.index.rules[r.RuleID]].Name
	}
	if r.UserID != 0 && len(f.user.names) > 0 {
		user = s.state.Users[s.index.users[r.UserID]].Name
	}
	return appOK && f.rule.pass(r.RuleID, rule) && f.user.pass(r.UserID, user)
}
