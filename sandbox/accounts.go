package sandbox

import (
	"cmp"
	"crypto/rsa"
	"math"
	"slices"
	"strings"

	"golang.org/x/time/rate"

	"github.com/voxbind/voxbind/voximplant"
)

// account is one account of the state tree as the API methods see it: the
// top account or a child. It embeds the Server for what all accounts
// share (the lock, the clock, the state file, the counters); its own
// state and index shadow the Server's, so a method reads s.state as the
// account it acts on.
type account struct {
	*Server
	state  *State // this account's node of the tree
	index  index
	parent *account      // nil for the top account
	limit  *rate.Limiter // this account's request rate; nil = none
	rate   float64       // requests per second limit holds to; 0 = none
}

// keyInfo is a key the server accepts: whose it is and what it may do.
type keyInfo struct {
	pub   *rsa.PublicKey
	owner int64    // the account the key belongs to
	roles []string // nil = every role
}

// buildAccounts indexes every account of the state tree and records the
// keys found in it. Each account gets its own rate limiter, so that one
// account's traffic never uses up another's.
func (s *Server) buildAccounts() {
	s.accounts = map[int64]*account{}
	var walk func(st *State, parent *account) *account
	walk = func(st *State, parent *account) *account {
		perSecond := s.opts.Rate
		if r, ok := s.opts.AccountRate[st.Account.ID]; ok {
			perSecond = r
		}
		a := &account{Server: s, state: st, index: buildIndex(st), parent: parent, limit: newLimiter(perSecond), rate: perSecond}
		s.accounts[st.Account.ID] = a
		for _, k := range st.Keys {
			pub, _ := ParsePublicKey(k.PublicKey) // validated before
			s.keys[k.KeyID] = keyInfo{pub: pub, owner: st.Account.ID, roles: k.Roles}
		}
		for i := range st.Children {
			walk(&st.Children[i], a)
		}
		return a
	}
	s.top = walk(s.state, nil)
}

// newLimiter is a token bucket of perSecond requests per second holding
// one second's worth (at least 1, at most 10); 0 is no limit.
func newLimiter(perSecond float64) *rate.Limiter {
	if perSecond <= 0 {
		return nil
	}
	burst := max(1, min(int(math.Ceil(perSecond)), 10))
	return rate.NewLimiter(rate.Limit(perSecond), burst)
}

// actingOn returns the account a key of owner may act on as iss: the
// owner itself or one of its direct children (a child of a child is not
// reachable with its grandparent's key). The accounts never change after
// the server is made, so no lock is needed.
func (s *Server) actingOn(owner, iss int64) (*account, bool) {
	a, ok := s.accounts[iss]
	if !ok {
		return nil, false
	}
	if iss == owner || (a.parent != nil && a.parent.state.Account.ID == owner) {
		return a, true
	}
	return nil, false
}

// allowed answers 104 unless a key with roles (nil: every role) may call
// method. The roles each method needs are voxbind's (voximplant.MethodRoles);
// GetAccountInfo is open to every key.
func allowed(method string, roles []string) *apiError {
	need, limited := voximplant.MethodRoles[method]
	if roles == nil || !limited || slices.ContainsFunc(roles, func(r string) bool { return slices.Contains(need, r) }) {
		return nil
	}
	return errorf(104, "forbidden: %s needs one of the roles %s; the key has %s", method, strings.Join(need, ", "), strings.Join(roles, ", "))
}

// accountInfoType is an account as GetAccountInfo and GetChildrenAccounts
// show it.
type accountInfoType struct {
	ID     int64  `json:"account_id"`
	Name   string `json:"account_name,omitempty"`
	Email  string `json:"account_email,omitempty"`
	Active *bool  `json:"active,omitempty"`
	Frozen *bool  `json:"frozen,omitempty"`
}

func showAccount(a AccountRecord) accountInfoType {
	active, frozen := a.active(), a.Frozen
	return accountInfoType{ID: a.ID, Name: a.Name, Email: a.Email, Active: &active, Frozen: &frozen}
}

// getChildrenAccounts lists the account's direct children. It needs one of
// child_account_id (a ';' list of ids, or any), child_account_name or
// child_account_email (485 without); the names match fragments, ASCII
// case-insensitively. An id that is not a child is refused (496) unless
// ignore_invalid_accounts. active and frozen filter; brief_output shows
// ids only and medium_output ids, names and emails; order_by sorts by
// child_account_id (the default), child_account_name or
// child_account_email.
func (s *account) getChildrenAccounts(p params) (any, *apiError) {
	offset, count, e := p.page()
	if e != nil {
		return nil, e
	}
	q, e := parseChildrenQuery(p)
	if e != nil {
		return nil, e
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.checkChildIDs(q); e != nil {
		return nil, e
	}
	rows := s.matchingChildren(q)
	total := len(rows)
	out := []accountInfoType{}
	for _, a := range pageOf(rows, offset, count) {
		out = append(out, q.show(a))
	}
	return list{Result: out, TotalCount: &total, Count: len(out)}, nil
}

// childrenQuery is every parameter GetChildrenAccounts takes but the page.
type childrenQuery struct {
	ids            []int64
	anyID, hasIDs  bool
	name, email    string
	active, frozen boolFilter
	ignoreInvalid  bool
	brief, medium  bool
	sortKey        func(AccountRecord) string // nil: by id only
}

// parseChildrenQuery reads a GetChildrenAccounts call, refusing one that
// selects nothing (485) or sorts by an unknown key (496) before the lock.
func parseChildrenQuery(p params) (childrenQuery, *apiError) {
	var q childrenQuery
	var e *apiError
	if q.ids, q.anyID, q.hasIDs, e = p.idList("child_account_id"); e != nil {
		return q, e
	}
	q.name, q.email = p.get("child_account_name"), p.get("child_account_email")
	if !q.hasIDs && q.name == "" && q.email == "" {
		return q, errorf(485, "specify the 'child_account_id', 'child_account_name' or 'child_account_email' parameter (child_account_id=any lists every child account)")
	}
	if q.active.want, q.active.set, e = p.boolean("active", false); e != nil {
		return q, e
	}
	if q.frozen.want, q.frozen.set, e = p.boolean("frozen", false); e != nil {
		return q, e
	}
	if q.ignoreInvalid, _, e = p.boolean("ignore_invalid_accounts", false); e != nil {
		return q, e
	}
	if q.brief, _, e = p.boolean("brief_output", false); e != nil {
		return q, e
	}
	if q.medium, _, e = p.boolean("medium_output", false); e != nil {
		return q, e
	}
	order := p.get("order_by")
	sortKey, ok := map[string]func(AccountRecord) string{
		"":                    nil,
		"child_account_id":    nil,
		"child_account_name":  func(a AccountRecord) string { return strings.ToLower(a.Name) },
		"child_account_email": func(a AccountRecord) string { return strings.ToLower(a.Email) },
	}[order]
	if !ok {
		return q, errorf(496, "the 'order_by' parameter is invalid: %q; use child_account_id, child_account_name or child_account_email", order)
	}
	q.sortKey = sortKey
	return q, nil
}

// checkChildIDs answers 496 for a listed id that is not a child, unless
// the query ignores invalid accounts. The caller holds s.mu.
func (s *account) checkChildIDs(q childrenQuery) *apiError {
	if !q.hasIDs || q.anyID || q.ignoreInvalid {
		return nil
	}
	children := map[int64]AccountRecord{}
	for _, c := range s.state.Children {
		children[c.Account.ID] = c.Account
	}
	for _, id := range q.ids {
		if _, ok := children[id]; !ok {
			return errorf(496, "the 'child_account_id' parameter is invalid: account %d is not a child of account %d (ignore_invalid_accounts=true skips such ids)", id, s.state.Account.ID)
		}
	}
	return nil
}

// matchingChildren is the children that pass every filter of q, in q's
// order (ties by id). The caller holds s.mu.
func (s *account) matchingChildren(q childrenQuery) []AccountRecord {
	var rows []AccountRecord
	for _, c := range s.state.Children {
		a := c.Account
		switch {
		case q.hasIDs && !q.anyID && !slices.Contains(q.ids, a.ID),
			q.name != "" && !fragment(a.Name, q.name),
			q.email != "" && !fragment(a.Email, q.email),
			!q.active.pass(a.active()),
			!q.frozen.pass(a.Frozen):
			continue
		}
		rows = append(rows, a)
	}
	slices.SortStableFunc(rows, func(x, y AccountRecord) int {
		if q.sortKey != nil {
			if c := strings.Compare(q.sortKey(x), q.sortKey(y)); c != 0 {
				return c
			}
		}
		return cmp.Compare(x.ID, y.ID)
	})
	return rows
}

// show is a child as the query asks to see it: ids only (brief_output),
// ids, names and emails (medium_output), or in full.
func (q childrenQuery) show(a AccountRecord) accountInfoType {
	switch {
	case q.brief:
		return accountInfoType{ID: a.ID}
	case q.medium:
		return accountInfoType{ID: a.ID, Name: a.Name, Email: a.Email}
	}
	return showAccount(a)
}
