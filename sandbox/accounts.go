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
	ids, anyID, hasIDs, e := p.idList("child_account_id", true)
	if e != nil {
		return nil, e
	}
	name, email := p.get("child_account_name"), p.get("child_account_email")
	if !hasIDs && name == "" && email == "" {
		return nil, errorf(485, "specify the 'child_account_id', 'child_account_name' or 'child_account_email' parameter (child_account_id=any lists every child account)")
	}
	active, hasActive, e := p.boolean("active", false)
	if e != nil {
		return nil, e
	}
	frozen, hasFrozen, e := p.boolean("frozen", false)
	if e != nil {
		return nil, e
	}
	ignoreInvalid, _, e := p.boolean("ignore_invalid_accounts", false)
	if e != nil {
		return nil, e
	}
	brief, _, e := p.boolean("brief_output", false)
	if e != nil {
		return nil, e
	}
	medium, _, e := p.boolean("medium_output", false)
	if e != nil {
		return nil, e
	}
	order := p.get("order_by")
	sortKey, ok := map[string]func(AccountRecord) string{
		"":                    nil,
		"child_account_id":    nil,
		"child_account_name":  func(a AccountRecord) string { return strings.ToLower(a.Name) },
		"child_account_email": func(a AccountRecord) string { return strings.ToLower(a.Email) },
	}[order]
	if !ok {
		return nil, errorf(496, "the 'order_by' parameter is invalid: %q; use child_account_id, child_account_name or child_account_email", order)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	children := map[int64]AccountRecord{}
	for _, c := range s.state.Children {
		children[c.Account.ID] = c.Account
	}
	if hasIDs && !anyID && !ignoreInvalid {
		for _, id := range ids {
			if _, ok := children[id]; !ok {
				return nil, errorf(496, "the 'child_account_id' parameter is invalid: account %d is not a child of account %d (ignore_invalid_accounts=true skips such ids)", id, s.state.Account.ID)
			}
		}
	}
	var rows []AccountRecord
	for _, c := range s.state.Children {
		a := c.Account
		switch {
		case hasIDs && !anyID && !slices.Contains(ids, a.ID),
			name != "" && !fragment(a.Name, name),
			email != "" && !fragment(a.Email, email),
			hasActive && a.active() != active,
			hasFrozen && a.Frozen != frozen:
			continue
		}
		rows = append(rows, a)
	}
	slices.SortStableFunc(rows, func(x, y AccountRecord) int {
		if sortKey != nil {
			if c := strings.Compare(sortKey(x), sortKey(y)); c != 0 {
				return c
			}
		}
		return cmp.Compare(x.ID, y.ID)
	})
	total := len(rows)
	out := []accountInfoType{}
	for _, a := range pageOf(rows, offset, count) {
		switch row := showAccount(a); {
		case brief:
			out = append(out, accountInfoType{ID: a.ID})
		case medium:
			out = append(out, accountInfoType{ID: a.ID, Name: a.Name, Email: a.Email})
		default:
			out = append(out, row)
		}
	}
	return list{Result: out, TotalCount: &total, Count: len(out)}, nil
}
