package sandbox

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/voxbind/voxbind/internal/atomicfile"
)

// methods are the API methods the sandbox answers. Each runs with the
// request authenticated and returns the whole answer body or an API error.
var methods = map[string]func(*account, params) (any, *apiError){
	"GetAccountInfo":      (*account).getAccountInfo,
	"GetSipRegistrations": (*account).getSipRegistrations,
	"GetApplications":     (*account).getApplications,
	"GetRules":            (*account).getRules,
	"GetUsers":            (*account).getUsers,
	"GetChildrenAccounts": (*account).getChildrenAccounts,
	"BindSipRegistration": (*account).bindSipRegistration,
}

// index finds records by id (positions in the state's slices) and which
// registration holds each user.
type index struct {
	regs, apps, rules, users map[int64]int
	appByName                map[string]int64 // lower-case short name → id
	holder                   map[int64]int    // user id → registration position
}

func buildIndex(st *State) index {
	ix := index{
		regs: map[int64]int{}, apps: map[int64]int{}, rules: map[int64]int{}, users: map[int64]int{},
		appByName: map[string]int64{}, holder: map[int64]int{},
	}
	for i, r := range st.Registrations {
		ix.regs[r.ID] = i
		if r.UserID != 0 {
			ix.holder[r.UserID] = i
		}
	}
	for i, a := range st.Applications {
		ix.apps[a.ID] = i
		ix.appByName[strings.ToLower(a.Name)] = a.ID
	}
	for i, r := range st.Rules {
		ix.rules[r.ID] = i
	}
	for i, u := range st.Users {
		ix.users[u.ID] = i
	}
	return ix
}

// fullName is an application's full name, as the API shows it.
func (s *account) fullName(a ApplicationRecord) string {
	return a.Name + "." + s.state.Account.Name + ".voximplant.com"
}

type list struct {
	Result     any  `json:"result"`
	TotalCount *int `json:"total_count,omitempty"`
	Count      int  `json:"count"`
}

func (s *account) getAccountInfo(params) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return map[string]any{"result": showAccount(s.state.Account)}, nil
}

// sipRegistrationType is a registration as GetSipRegistrations shows it.
type sipRegistrationType struct {
	ID                      int64  `json:"sip_registration_id"`
	SIPUsername             string `json:"sip_username"`
	Proxy                   string `json:"proxy"`
	LastUpdated             int64  `json:"last_updated"`
	AuthUser                string `json:"auth_user,omitempty"`
	OutboundProxy           string `json:"outbound_proxy,omitempty"`
	Successful              bool   `json:"successful"`
	StatusCode              int    `json:"status_code,omitempty"`
	ErrorMessage            string `json:"error_message,omitempty"`
	Deactivated             bool   `json:"deactivated"`
	NextSubscriptionRenewal string `json:"next_subscription_renewal,omitempty"`
	PurchaseDate            string `json:"purchase_date,omitempty"`
	SubscriptionPrice       string `json:"subscription_price,omitempty"`
	IsPersistent            bool   `json:"is_persistent"`
	ApplicationID           int64  `json:"application_id,omitempty"`
	ApplicationName         string `json:"application_name,omitempty"`
	RuleID                  int64  `json:"rule_id,omitempty"`
	RuleName                string `json:"rule_name,omitempty"`
	UserID                  int64  `json:"user_id,omitempty"`
	UserName                string `json:"user_name,omitempty"`
}

func (s *account) show(r Registration) sipRegistrationType {
	out := sipRegistrationType{
		ID: r.ID, SIPUsername: r.SIPUsername, Proxy: r.Proxy, LastUpdated: r.LastUpdated,
		AuthUser: r.AuthUser, OutboundProxy: r.OutboundProxy, Successful: r.Successful,
		StatusCode: r.StatusCode, ErrorMessage: r.ErrorMessage, Deactivated: r.Deactivated,
		NextSubscriptionRenewal: r.NextSubscriptionRenewal, PurchaseDate: r.PurchaseDate,
		SubscriptionPrice: r.SubscriptionPrice, IsPersistent: r.IsPersistent,
	}
	if r.ApplicationID != 0 {
		out.ApplicationID = r.ApplicationID
		out.ApplicationName = s.fullName(s.state.Applications[s.index.apps[r.ApplicationID]])
	}
	if r.RuleID != 0 {
		out.RuleID = r.RuleID
		out.RuleName = s.state.Rules[s.index.rules[r.RuleID]].Name
	}
	if r.UserID != 0 {
		out.UserID = r.UserID
		out.UserName = s.state.Users[s.index.users[r.UserID]].Name
	}
	return out
}

// getSipRegistrations answers with the registrations that pass every
// filter given: sip_registration_id (exact); sip_username (fragment);
// proxy (fragments, ';'-separated); deactivated, successful,
// is_persistent, in_progress and is_bound_to_application; application_id,
// rule_id and user_id (';'-separated ids, or any: bound to some
// application, rule or user); application_name (short or full), rule_name
// and user_name (';'-separated exact names, ASCII case-insensitive);
// status_code (';'-separated codes and code:code ranges). An id and a name
// of the same kind together: 458. The answer has no total_count; count is
// the number of rows in the page.
func (s *account) getSipRegistrations(p params) (any, *apiError) {
	offset, count, e := p.page()
	if e != nil {
		return nil, e
	}
	f, e := parseRegistrationFilter(p)
	if e != nil {
		return nil, e
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	regs := s.state.Registrations
	if f.id != 0 {
		// A lookup, not a scan: the client reads back single registrations.
		i, ok := s.index.regs[f.id]
		if !ok {
			return list{Result: []sipRegistrationType{}}, nil
		}
		regs = s.state.Registrations[i : i+1]
	}
	var matches []*Registration
	for i := range regs {
		if r := &regs[i]; s.matches(r, &f) {
			matches = append(matches, r)
		}
	}
	matches = pageOf(matches, offset, count)
	rows := make([]sipRegistrationType, len(matches))
	for i, r := range matches {
		rows[i] = s.show(*r)
	}
	return list{Result: rows, Count: len(rows)}, nil
}

func anyFragment(name string, filters []string) bool {
	for _, f := range filters {
		if fragment(name, f) {
			return true
		}
	}
	return false
}

type applicationInfoType struct {
	ID    int64          `json:"application_id"`
	Name  string         `json:"application_name"`
	Rules []ruleInfoType `json:"rules,omitempty"`
}

// getApplications filters by application_id and application_name (a
// fragment of the full name) and shows full names; with_rules adds each
// application's rules.
func (s *account) getApplications(p params) (any, *apiError) {
	offset, count, e := p.page()
	if e != nil {
		return nil, e
	}
	id, hasID, e := p.id("application_id")
	if e != nil {
		return nil, e
	}
	withRules, _, e := p.boolean("with_rules", false)
	if e != nil {
		return nil, e
	}
	name := p.get("application_name")

	s.mu.Lock()
	defer s.mu.Unlock()
	rows := []applicationInfoType{}
	for _, a := range s.state.Applications {
		full := s.fullName(a)
		if (hasID && a.ID != id) || (name != "" && !fragment(full, name)) {
			continue
		}
		rows = append(rows, applicationInfoType{ID: a.ID, Name: full})
	}
	total := len(rows)
	rows = pageOf(rows, offset, count)
	if withRules {
		for i := range rows {
			rows[i].Rules = s.rulesOf(rows[i].ID, boolFilter{})
		}
	}
	return list{Result: rows, TotalCount: &total, Count: len(rows)}, nil
}

type ruleInfoType struct {
	ID              int64  `json:"rule_id"`
	Name            string `json:"rule_name"`
	ApplicationID   int64  `json:"application_id"`
	RulePattern     string `json:"rule_pattern"`
	VideoConference bool   `json:"video_conference"`
}

// rulesOf shows the rules of one application; no sandbox rule is a video
// conference. The caller holds s.mu.
func (s *account) rulesOf(appID int64, video boolFilter) []ruleInfoType {
	out := []ruleInfoType{}
	for _, r := range s.state.Rules {
		if r.ApplicationID == appID && video.pass(false) {
			out = append(out, ruleInfoType{ID: r.ID, Name: r.Name, ApplicationID: r.ApplicationID, RulePattern: ".*"})
		}
	}
	return out
}

// getRules needs application_id or application_name (short or full, exact)
// and filters by rule_id, rule_name (fragment) and video_conference.
func (s *account) getRules(p params) (any, *apiError) {
	offset, count, e := p.page()
	if e != nil {
		return nil, e
	}
	id, hasID, e := p.id("rule_id")
	if e != nil {
		return nil, e
	}
	var video boolFilter
	if video.want, video.set, e = p.boolean("video_conference", false); e != nil {
		return nil, e
	}
	name := p.get("rule_name")

	s.mu.Lock()
	defer s.mu.Unlock()
	app, e := s.requireApplication(p)
	if e != nil {
		return nil, e
	}
	rows := []ruleInfoType{}
	for _, r := range s.rulesOf(app.ID, video) {
		if (hasID && r.ID != id) || (name != "" && !fragment(r.Name, name)) {
			continue
		}
		rows = append(rows, r)
	}
	total := len(rows)
	rows = pageOf(rows, offset, count)
	return list{Result: rows, TotalCount: &total, Count: len(rows)}, nil
}

type userInfoType struct {
	ID           int64                 `json:"user_id"`
	Name         string                `json:"user_name"`
	DisplayName  string                `json:"user_display_name"`
	Active       bool                  `json:"user_active"`
	Frozen       bool                  `json:"frozen"`
	Applications []applicationInfoType `json:"applications"`
}

// getUsers filters by application_id or application_name (short or full,
// exact; neither: the users of every application), user_id, user_name and
// user_display_name (fragments; a sandbox user's display name is its
// name) and user_active, and sorts by order_by: user_id (the default),
// user_name or user_display_name.
func (s *account) getUsers(p params) (any, *apiError) {
	offset, count, e := p.page()
	if e != nil {
		return nil, e
	}
	id, hasID, e := p.id("user_id")
	if e != nil {
		return nil, e
	}
	var active boolFilter
	if active.want, active.set, e = p.boolean("user_active", false); e != nil {
		return nil, e
	}
	name, display := p.get("user_name"), p.get("user_display_name")
	byName := false
	switch order := p.get("order_by"); order {
	case "", "user_id":
	case "user_name", "user_display_name":
		byName = true
	default:
		return nil, errorf(496, "the 'order_by' parameter is invalid: %q; use user_id, user_name or user_display_name", order)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	app, hasApp, e := s.application(p)
	if e != nil {
		return nil, e
	}
	var users []UserRecord
	for _, u := range s.state.Users {
		if (hasApp && u.ApplicationID != app.ID) || (hasID && u.ID != id) || !active.pass(u.active()) ||
			(name != "" && !fragment(u.Name, name)) || (display != "" && !fragment(u.Name, display)) {
			continue
		}
		users = append(users, u)
	}
	slices.SortStableFunc(users, func(x, y UserRecord) int {
		if byName {
			if c := strings.Compare(strings.ToLower(x.Name), strings.ToLower(y.Name)); c != 0 {
				return c
			}
		}
		return cmp.Compare(x.ID, y.ID)
	})
	total := len(users)
	rows := []userInfoType{}
	for _, u := range pageOf(users, offset, count) {
		a := s.state.Applications[s.index.apps[u.ApplicationID]]
		rows = append(rows, userInfoType{
			ID: u.ID, Name: u.Name, DisplayName: u.Name, Active: u.active(),
			Applications: []applicationInfoType{{ID: a.ID, Name: s.fullName(a)}},
		})
	}
	return list{Result: rows, TotalCount: &total, Count: len(rows)}, nil
}

// requireApplication resolves the application_id or application_name that
// GetRules and GetUsers need. The caller holds s.mu.
func (s *account) requireApplication(p params) (ApplicationRecord, *apiError) {
	app, has, e := s.application(p)
	if e != nil {
		return ApplicationRecord{}, e
	}
	if !has {
		return ApplicationRecord{}, errorf(485, "specify the 'application_id' or 'application_name' parameter")
	}
	return app, nil
}

// application resolves application_id (unknown: 116) or application_name,
// short or full, ASCII case-insensitive (unknown: 558); both: 458. The
// caller holds s.mu.
func (s *account) application(p params) (ApplicationRecord, bool, *apiError) {
	id, hasID, e := p.id("application_id")
	if e != nil {
		return ApplicationRecord{}, false, e
	}
	name := p.get("application_name")
	switch {
	case hasID && name != "":
		return ApplicationRecord{}, false, errorf(458, "specify only one of 'application_id' and 'application_name'")
	case hasID:
		i, ok := s.index.apps[id]
		if !ok {
			return ApplicationRecord{}, false, errorf(116, "invalid application_id: application %d does not exist", id)
		}
		return s.state.Applications[i], true, nil
	case name != "":
		short := strings.ToLower(name)
		short = strings.TrimSuffix(short, "."+strings.ToLower(s.state.Account.Name)+".voximplant.com")
		id, ok := s.index.appByName[short]
		if !ok {
			return ApplicationRecord{}, false, errorf(558, "application %q not found", name)
		}
		return s.state.Applications[s.index.apps[id]], true, nil
	}
	return ApplicationRecord{}, false, nil
}

// bindSipRegistration follows the rules in docs/management-api.md (binding,
// and the choices where Voximplant documents nothing).
//
// bind=true (the default) sets the registration's application, rule and
// user to exactly the values given and takes the user away from whichever
// other registration held it (choice 2; that one becomes fully unbound, even
// if it is frozen: the rule protects the registration named in the call).
//
// bind=false unbinds, by the first form that applies (choice 3): with
// sip_registration_id, that registration; with a user (user_id alone, or
// user_name with the application), the registration holding it (none: no
// change); with an application and a rule, the application's registrations
// bound to that rule; with only an application, all its registrations.
// The two last forms skip frozen registrations; the first two answer 496
// for one. Nothing to select by: 485.
func (s *account) bindSipRegistration(p params) (any, *apiError) {
	c, e := parseBindCall(p)
	if e != nil {
		return nil, e
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	reg, e := s.bindRegistration(c)
	if e != nil {
		return nil, e
	}
	app, _, e := s.application(p)
	if e != nil {
		return nil, e
	}
	rule, e := s.bindRule(c, app)
	if e != nil {
		return nil, e
	}
	user, e := s.bindUser(c, app)
	if e != nil {
		return nil, e
	}

	tx := s.begin()
	if c.bind {
		e = s.bindTo(tx, reg, app.ID, rule.ID, user.ID)
	} else {
		e = s.unbindBy(tx, c, reg, app.ID, rule.ID, user.ID)
	}
	if e != nil {
		return nil, e
	}
	if err := tx.commit(); err != nil {
		return nil, errorf(CodeStateNotSaved, "%v", err)
	}
	return map[string]int{"result": 1}, nil
}

// bindCall is a BindSipRegistration call as its parameters state it, read
// before the lock so that a malformed call costs no lookup.
type bindCall struct {
	bind                         bool
	regID, ruleID, userID        int64
	hasReg, hasRuleID, hasUserID bool
	ruleName, userName           string
	hasAppID, hasApp             bool // hasApp: by id or by name
}

// hasRule reports whether the call names a rule, by id or by name.
func (c bindCall) hasRule() bool { return c.hasRuleID || c.ruleName != "" }

// hasUser reports whether the call names a user, by id or by name.
func (c bindCall) hasUser() bool { return c.hasUserID || c.userName != "" }

// parseBindCall reads a BindSipRegistration call and refuses one whose
// form is wrong (101, 458, 485) before anything is looked up.
func parseBindCall(p params) (bindCall, *apiError) {
	var c bindCall
	var e *apiError
	if c.regID, c.hasReg, e = p.id("sip_registration_id"); e != nil {
		return c, e
	}
	if c.ruleID, c.hasRuleID, e = p.id("rule_id"); e != nil {
		return c, e
	}
	if c.userID, c.hasUserID, e = p.id("user_id"); e != nil {
		return c, e
	}
	if _, c.hasAppID, e = p.id("application_id"); e != nil {
		return c, e
	}
	if c.bind, _, e = p.boolean("bind", true); e != nil {
		return c, e
	}
	c.ruleName, c.userName = p.get("rule_name"), p.get("user_name")
	c.hasApp = c.hasAppID || p.has("application_name")
	return c, c.checkForm(p)
}

// checkForm answers 458 for a call that names one thing twice, or both a
// rule and a user, and 485 for one that lacks what its form needs. An id
// of 0 counts as absent here as everywhere (params.id).
func (c bindCall) checkForm(p params) *apiError {
	switch {
	case c.hasAppID && p.has("application_name"):
		return errorf(458, "specify only one of 'application_id' and 'application_name'")
	case c.hasRuleID && c.ruleName != "":
		return errorf(458, "specify only one of 'rule_id' and 'rule_name'")
	case c.hasUserID && c.userName != "":
		return errorf(458, "specify only one of 'user_id' and 'user_name'")
	case c.hasRule() && c.hasUser():
		return errorf(458, "specify only one of a rule ('rule_id', 'rule_name') and a user ('user_id', 'user_name'): a registration goes to a rule or to a user")
	case c.bind && !c.hasReg:
		return errorf(485, "specify the 'sip_registration_id' parameter")
	case c.bind && !c.hasApp:
		return errorf(485, "specify the 'application_id' or 'application_name' parameter")
	case c.hasRule() && !c.hasApp:
		return errorf(485, "specify the 'application_id' or 'application_name' parameter: a rule belongs to an application")
	case c.userName != "" && !c.hasApp:
		return errorf(485, "specify the 'application_id' or 'application_name' parameter: user names are unique only within an application")
	case !c.bind && !c.hasReg && !c.hasUser() && !c.hasApp:
		return errorf(485, "specify the 'sip_registration_id', a user or an application to unbind")
	}
	return nil
}

// bindRegistration is the position of the registration a call names, or -1
// for none; an unknown id answers 275. The caller holds s.mu.
func (s *account) bindRegistration(c bindCall) (int, *apiError) {
	if !c.hasReg {
		return -1, nil
	}
	i, ok := s.index.regs[c.regID]
	if !ok {
		return -1, errorf(275, "invalid sip_registration_id: SIP registration %d does not exist", c.regID)
	}
	return i, nil
}

// bindRule finds the rule a call names within its application (147, 156:
// none such); no rule named is the zero rule. The caller holds s.mu.
func (s *account) bindRule(c bindCall, app ApplicationRecord) (RuleRecord, *apiError) {
	switch {
	case c.hasRuleID:
		i, ok := s.index.rules[c.ruleID]
		if !ok || s.state.Rules[i].ApplicationID != app.ID {
			return RuleRecord{}, errorf(147, "invalid rule_id: application %d has no rule %d", app.ID, c.ruleID)
		}
		return s.state.Rules[i], nil
	case c.ruleName != "":
		i := indexOf(s.state.Rules, func(r RuleRecord) bool {
			return r.ApplicationID == app.ID && strings.EqualFold(r.Name, c.ruleName)
		})
		if i < 0 {
			return RuleRecord{}, errorf(156, "invalid rule_name: application %d has no rule %q", app.ID, c.ruleName)
		}
		return s.state.Rules[i], nil
	}
	return RuleRecord{}, nil
}

// bindUser finds the user a call names (117: none such; 393: it is another
// application's); no user named is the zero user. The caller holds s.mu.
func (s *account) bindUser(c bindCall, app ApplicationRecord) (UserRecord, *apiError) {
	switch {
	case c.hasUserID:
		i, ok := s.index.users[c.userID]
		if !ok {
			return UserRecord{}, errorf(117, "invalid user_id: user %d does not exist", c.userID)
		}
		user := s.state.Users[i]
		if c.hasApp && user.ApplicationID != app.ID {
			return UserRecord{}, errorf(393, "user %d is not bound to application %d", c.userID, app.ID)
		}
		return user, nil
	case c.userName != "":
		i := indexOf(s.state.Users, func(u UserRecord) bool {
			return u.ApplicationID == app.ID && strings.EqualFold(u.Name, c.userName)
		})
		if i < 0 {
			if indexOf(s.state.Users, func(u UserRecord) bool { return strings.EqualFold(u.Name, c.userName) }) >= 0 {
				return UserRecord{}, errorf(393, "user %q is not bound to application %d", c.userName, app.ID)
			}
			return UserRecord{}, errorf(117, "invalid user_name: application %d has no user %q", app.ID, c.userName)
		}
		return s.state.Users[i], nil
	}
	return UserRecord{}, nil
}

// bindTo sets registration reg to exactly app, rule and user, taking the
// user from its other holder (choice 2). The caller holds s.mu.
func (s *account) bindTo(t *tx, reg int, app, rule, user int64) *apiError {
	if e := s.writable(reg); e != nil {
		return e
	}
	if user != 0 {
		if h, held := s.index.holder[user]; held && h != reg {
			t.set(h, 0, 0, 0) // choice 2: the previous holder loses everything
		}
	}
	t.set(reg, app, rule, user)
	return nil
}

// unbindBy unbinds by the first form of the call that applies (choice 3).
// The caller holds s.mu.
func (s *account) unbindBy(t *tx, c bindCall, reg int, app, rule, user int64) *apiError {
	switch {
	case c.hasReg:
		if e := s.writable(reg); e != nil {
			return e
		}
		t.set(reg, 0, 0, 0)
	case c.hasUser():
		if h, held := s.index.holder[user]; held {
			if e := s.writable(h); e != nil {
				return e
			}
			t.set(h, 0, 0, 0)
		}
	default:
		for i, r := range s.state.Registrations {
			if r.ApplicationID == app && (!c.hasRule() || r.RuleID == rule) && !r.Deactivated {
				t.set(i, 0, 0, 0)
			}
		}
	}
	return nil
}

// writable answers 496 for a frozen registration. The caller holds s.mu.
func (s *account) writable(i int) *apiError {
	r := s.state.Registrations[i]
	if r.Deactivated {
		return errorf(496, "the 'sip_registration_id' parameter is invalid: SIP registration %d (%s@%s) is deactivated (its subscription lapsed)", r.ID, r.SIPUsername, r.Proxy)
	}
	return nil
}

func indexOf[T any](s []T, f func(T) bool) int {
	for i, v := range s {
		if f(v) {
			return i
		}
	}
	return -1
}

// tx is one BindSipRegistration's changes: applied at once in memory, saved
// on commit, undone if saving fails. The caller holds s.mu throughout.
type tx struct {
	s    *account
	undo map[int]Registration // position → the registration before
}

func (s *account) begin() *tx { return &tx{s: s, undo: map[int]Registration{}} }

// set binds registration i to app/rule/user (zeros: unbound), keeping the
// user index right.
func (t *tx) set(i int, app, rule, user int64) {
	s := t.s
	r := &s.state.Registrations[i]
	if r.ApplicationID == app && r.RuleID == rule && r.UserID == user {
		return // writes are idempotent: setting what is already there changes nothing
	}
	if _, seen := t.undo[i]; !seen {
		t.undo[i] = *r
	}
	if r.UserID != 0 {
		delete(s.index.holder, r.UserID)
	}
	r.ApplicationID, r.RuleID, r.UserID = app, rule, user
	r.LastUpdated = s.now().Unix()
	if user != 0 {
		s.index.holder[user] = i
	}
}

// commit saves a changed state; on failure it restores the state before.
func (t *tx) commit() error {
	s := t.s
	if len(t.undo) == 0 {
		return nil
	}
	if s.path != "" {
		if err := s.save(); err != nil {
			for i, r := range t.undo {
				s.state.Registrations[i] = r
			}
			s.index.holder = buildIndex(s.state).holder
			return fmt.Errorf("sandbox: cannot save the state, nothing changed (fix the cause, then run again): %w", err)
		}
	}
	s.stats.writes.Add(1)
	return nil
}

// save writes the state file atomically (through a symbolic link to the
// file it names). The new file is locked before it is renamed into place
// and becomes the lock, so that the state file is never unlocked while
// served. The caller holds s.mu.
func (s *Server) save() error {
	data, err := s.state.Marshal()
	if err != nil {
		return err
	}
	kept, err := atomicfile.Write(s.path, data, atomicfile.Options{Perm: 0o644, Adopt: s.lock.adopt})
	if err != nil {
		return err
	}
	s.lock.swap(kept)
	return nil
}
