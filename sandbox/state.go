// Package sandbox emulates the part of the Voximplant Management API that
// voxbind uses, following docs/management-api.md: Voximplant's documented
// behaviour, and fixed choices where it documents nothing. It serves a JSON state
// file over HTTP, checks JWTs against the public keys recorded there,
// persists every change atomically and can inject latency, rate limiting
// and failures, so that first runs, examples, tests and CI exercise the
// real HTTP client with no account and no network.
package sandbox

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// State is the emulated account, as stored in a sandbox state file. The file
// is JSON with exactly these keys (unknown keys are refused):
//
//	{
//	  "account": {"id": 1000001, "name": "demo", "email": "demo@example.com"},
//	  "keys": [{"key_id": "…", "public_key": "-----BEGIN PUBLIC KEY-----\n…", "roles": ["Owner"]}],
//	  "applications": [{"id": 10, "name": "support"}],
//	  "rules": [{"id": 100, "application_id": 10, "name": "inbound-main"}],
//	  "users": [{"id": 200, "application_id": 10, "name": "alice"}],
//	  "registrations": [{
//	    "sip_registration_id": 3001, "sip_username": "alice", "proxy": "pbx.example.com",
//	    "auth_user": "alice", "outbound_proxy": "", "successful": true,
//	    "status_code": 200, "error_message": "", "deactivated": false,
//	    "last_updated": 1767225600, "next_subscription_renewal": "2027-01-01",
//	    "purchase_date": "2026-01-01 00:00:00", "subscription_price": "0.99",
//	    "is_persistent": true, "in_progress": false,
//	    "application_id": 10, "rule_id": 0, "user_id": 200}],
//	  "children": [{"account": {"id": 1000002, "name": "demo-child1", …}, "applications": […], …}]
//	}
//
// Applications are stored by their short name (no dots); the API shows the
// full name <name>.<account name>.voximplant.com. A registration's binding is
// stored as ids only (0 or absent = none) and the API adds the names. Public
// keys are PEM, either "PUBLIC KEY" (PKIX) or "RSA PUBLIC KEY" (PKCS #1);
// the key of a credentials file written by Init is recorded here. A key
// without "roles" has every role. An account or a user without "active" is
// active.
//
// Each entry of "children" is a child account with the same keys as the
// top level: the parent's keys may act on it (a JWT whose iss is the
// child's id), and a child's own keys act on it and on its own children.
// Account ids, account names and key ids are unique across the whole file;
// the ids of applications, rules, users and registrations only within
// their account.
//
// Load refuses duplicate ids, dangling references, a rule or user outside the
// registration's application, a registration bound to both a rule and a
// user, a user bound to two registrations, and unknown roles. Several
// registrations may share sip_username@proxy (the real API allows it).
type State struct {
	Account       AccountRecord       `json:"account"`
	Keys          []KeyRecord         `json:"keys"`
	Applications  []ApplicationRecord `json:"applications"`
	Rules         []RuleRecord        `json:"rules"`
	Users         []UserRecord        `json:"users"`
	Registrations []Registration      `json:"registrations"`
	Children      []State             `json:"children,omitempty"`
}

// AccountRecord is the emulated account.
type AccountRecord struct {
	ID     int64  `json:"id"`
	Name   string `json:"name"`
	Email  string `json:"email"`
	Active *bool  `json:"active,omitempty"` // nil = active
	Frozen bool   `json:"frozen,omitempty"`
}

// active reports whether the account is active (the default).
func (a AccountRecord) active() bool { return a.Active == nil || *a.Active }

// KeyRecord is a service-account key the sandbox accepts JWTs from.
type KeyRecord struct {
	KeyID     string   `json:"key_id"`
	PublicKey string   `json:"public_key"`
	Roles     []string `json:"roles,omitempty"` // none = every role
}

// ApplicationRecord is an application; Name is the short name.
type ApplicationRecord struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

// RuleRecord is a rule of one application.
type RuleRecord struct {
	ID            int64  `json:"id"`
	ApplicationID int64  `json:"application_id"`
	Name          string `json:"name"`
}

// UserRecord is a user of one application.
type UserRecord struct {
	ID            int64  `json:"id"`
	ApplicationID int64  `json:"application_id"`
	Name          string `json:"name"`
	Active        *bool  `json:"active,omitempty"` // nil = active
}

// active reports whether the user is active (the default): inactive users
// cannot log in to applications.
func (u UserRecord) active() bool { return u.Active == nil || *u.Active }

// Registration is a SIP registration with the SIPRegistrationType fields
// that matter; the binding is kept as ids (0 = none).
type Registration struct {
	ID                      int64  `json:"sip_registration_id"`
	SIPUsername             string `json:"sip_username"`
	Proxy                   string `json:"proxy"`
	AuthUser                string `json:"auth_user,omitempty"`
	OutboundProxy           string `json:"outbound_proxy,omitempty"`
	Successful              bool   `json:"successful"`
	StatusCode              int    `json:"status_code,omitempty"`
	ErrorMessage            string `json:"error_message,omitempty"`
	Deactivated             bool   `json:"deactivated"`
	LastUpdated             int64  `json:"last_updated,omitempty"`              // unix seconds
	NextSubscriptionRenewal string `json:"next_subscription_renewal,omitempty"` // YYYY-MM-DD
	PurchaseDate            string `json:"purchase_date,omitempty"`             // YYYY-MM-DD HH:mm:ss
	SubscriptionPrice       string `json:"subscription_price,omitempty"`
	IsPersistent            bool   `json:"is_persistent"`
	InProgress              bool   `json:"in_progress,omitempty"` // registering: no answer from the proxy yet
	ApplicationID           int64  `json:"application_id,omitempty"`
	RuleID                  int64  `json:"rule_id,omitempty"`
	UserID                  int64  `json:"user_id,omitempty"`
}

// bound reports whether the registration is bound to an application.
func (r *Registration) bound() bool { return r.ApplicationID != 0 }

// Load reads and validates a state file. It refuses anything but a
// regular file before reading it: a device such as /dev/zero never ends.
func Load(path string) (*State, error) {
	if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("sandbox state %s is not a regular file; give the %s that 'voxbind sandbox init DIR' wrote", path, StateFile)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read sandbox state: %w", err)
	}
	st, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("sandbox state %s: %w", path, err)
	}
	return st, nil
}

// Parse decodes and validates the JSON of a state file.
func Parse(data []byte) (*State, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var st State
	if err := dec.Decode(&st); err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if dec.More() {
		return nil, errors.New("invalid JSON: more than one value")
	}
	if err := st.Validate(); err != nil {
		return nil, err
	}
	return &st, nil
}

// Marshal encodes the state as an indented state file.
func (st *State) Marshal() ([]byte, error) {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

// Clone returns a deep copy of the state.
func (st *State) Clone() *State {
	c := *st
	c.Keys = slices.Clone(st.Keys)
	c.Applications = slices.Clone(st.Applications)
	c.Rules = slices.Clone(st.Rules)
	c.Users = slices.Clone(st.Users)
	c.Registrations = slices.Clone(st.Registrations)
	if st.Children != nil {
		c.Children = make([]State, len(st.Children))
		for i := range st.Children {
			c.Children[i] = *st.Children[i].Clone()
		}
	}
	return &c
}

// Validate checks the state's internal consistency, child accounts
// included, and reports every problem found, one per line.
func (st *State) Validate() error {
	var errs []error
	st.validate("", &treeNames{accounts: map[int64]string{}, names: map[string]string{}, keys: map[string]string{}}, &errs)
	return errors.Join(errs...)
}

// treeNames are what must be unique across the whole file: account ids,
// account names and key ids, each with where it was first seen.
type treeNames struct {
	accounts map[int64]string
	names    map[string]string
	keys     map[string]string
}

// roles are the service-account roles the sandbox knows (Voximplant's
// role names).
var roles = []string{"Owner", "Admin", "Developer", "Supervisor", "Accountant", "Support"}

// validate checks one account of the tree, at its path ("" for the top
// account, "children[0]." for its first child), and then its children.
func (st *State) validate(at string, tree *treeNames, errs *[]error) {
	bad := func(format string, args ...any) { *errs = append(*errs, fmt.Errorf(at+format, args...)) }
	st.checkAccount(at, tree, bad)
	st.checkKeys(at, tree, bad)
	apps := checkApplications(st.Applications, bad)
	rules := checkMembers("rule", st.Rules, apps, bad)
	users := checkMembers("user", st.Users, apps, bad)
	checkRegistrations(st.Registrations, apps, rules, users, bad)
	for i := range st.Children {
		st.Children[i].validate(fmt.Sprintf("%schildren[%d].", at, i), tree, errs)
	}
}

// checkAccount checks the account record and claims its id and name in
// the tree, where both must be unique.
func (st *State) checkAccount(at string, tree *treeNames, bad func(format string, args ...any)) {
	if st.Account.ID <= 0 {
		bad("account: id must be a positive number")
	}
	if st.Account.Name == "" || strings.ContainsAny(st.Account.Name, ". \t") {
		bad("account: name %q must be non-empty, without dots or spaces", st.Account.Name)
	}
	if other, dup := tree.accounts[st.Account.ID]; dup && st.Account.ID > 0 {
		bad("account: duplicate account id %d (also %s)", st.Account.ID, other)
	}
	tree.accounts[st.Account.ID] = at + "account"
	if other, dup := tree.names[strings.ToLower(st.Account.Name)]; dup && st.Account.Name != "" {
		bad("account: duplicate account name %q (also %s)", st.Account.Name, other)
	}
	tree.names[strings.ToLower(st.Account.Name)] = at + "account"
}

// checkKeys checks the account's keys and claims their ids in the tree:
// a key id names one key of the whole file.
func (st *State) checkKeys(at string, tree *treeNames, bad func(format string, args ...any)) {
	for i, k := range st.Keys {
		switch other, dup := tree.keys[k.KeyID]; {
		case k.KeyID == "":
			bad("keys[%d]: key_id is empty", i)
		case dup:
			bad("keys[%d]: duplicate key_id %q (also %s)", i, k.KeyID, other)
		}
		tree.keys[k.KeyID] = fmt.Sprintf("%skeys[%d]", at, i)
		if _, err := ParsePublicKey(k.PublicKey); err != nil {
			bad("keys[%d] (%s): public_key: %w", i, k.KeyID, err)
		}
		for _, r := range k.Roles {
			if !slices.Contains(roles, r) {
				bad("keys[%d] (%s): unknown role %q; the roles are %s", i, k.KeyID, r, strings.Join(roles, ", "))
			}
		}
	}
}

// checkApplications checks an account's applications and returns the set
// of their ids, which rules, users and registrations refer to.
func checkApplications(list []ApplicationRecord, bad func(format string, args ...any)) map[int64]bool {
	apps := map[int64]bool{}
	appNames := map[string]int64{}
	for i, a := range list {
		if a.ID <= 0 {
			bad("applications[%d]: id must be a positive number", i)
		} else if apps[a.ID] {
			bad("applications[%d]: duplicate id %d", i, a.ID)
		}
		apps[a.ID] = true
		if a.Name == "" || strings.ContainsAny(a.Name, ". \t") {
			bad("applications[%d] (id %d): name %q must be a short name: non-empty, without dots or spaces", i, a.ID, a.Name)
		}
		if other, dup := appNames[strings.ToLower(a.Name)]; dup {
			bad("applications[%d] (id %d): name %q is also the name of application %d", i, a.ID, a.Name, other)
		}
		appNames[strings.ToLower(a.Name)] = a.ID
	}
	return apps
}

// checkRegistrations checks an account's registrations against its
// applications, rules and users: a bound registration goes to one rule or
// one user of an existing application, and a user holds at most one.
func checkRegistrations(list []Registration, apps map[int64]bool, rules map[int64]RuleRecord, users map[int64]UserRecord, bad func(format string, args ...any)) {
	regs := map[int64]bool{}
	holders := map[int64]int64{} // user id → registration id
	for i, r := range list {
		where := fmt.Sprintf("registrations[%d] (id %d)", i, r.ID)
		if r.ID <= 0 {
			bad("registrations[%d]: sip_registration_id must be a positive number", i)
		} else if regs[r.ID] {
			bad("%s: duplicate sip_registration_id", where)
		}
		regs[r.ID] = true
		if r.SIPUsername == "" || r.Proxy == "" {
			bad("%s: sip_username and proxy must both be set", where)
		}
		if r.ApplicationID == 0 {
			if r.RuleID != 0 || r.UserID != 0 {
				bad("%s: rule_id or user_id set without application_id", where)
			}
			continue
		}
		if !apps[r.ApplicationID] {
			bad("%s: application %d does not exist", where, r.ApplicationID)
		}
		if r.RuleID != 0 && r.UserID != 0 {
			bad("%s: bound to both rule %d and user %d; a registration goes to a rule or to a user", where, r.RuleID, r.UserID)
		}
		if r.RuleID != 0 {
			if rule, ok := rules[r.RuleID]; !ok {
				bad("%s: rule %d does not exist", where, r.RuleID)
			} else if rule.ApplicationID != r.ApplicationID {
				bad("%s: rule %d belongs to application %d, not %d", where, r.RuleID, rule.ApplicationID, r.ApplicationID)
			}
		}
		if r.UserID != 0 {
			if user, ok := users[r.UserID]; !ok {
				bad("%s: user %d does not exist", where, r.UserID)
			} else if user.ApplicationID != r.ApplicationID {
				bad("%s: user %d belongs to application %d, not %d", where, r.UserID, user.ApplicationID, r.ApplicationID)
			}
			if other, dup := holders[r.UserID]; dup {
				bad("%s: user %d is also bound to registration %d; a user holds at most one registration", where, r.UserID, other)
			}
			holders[r.UserID] = r.ID
		}
	}
}

// ParsePublicKey decodes a PEM RSA public key, PKIX ("PUBLIC KEY") or
// PKCS #1 ("RSA PUBLIC KEY").
func ParsePublicKey(s string) (*rsa.PublicKey, error) {
	block, _ := pem.Decode([]byte(s))
	if block == nil {
		return nil, errors.New("not PEM")
	}
	switch block.Type {
	case "RSA PUBLIC KEY":
		return x509.ParsePKCS1PublicKey(block.Bytes)
	case "PUBLIC KEY":
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, err
		}
		rk, ok := k.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("a %T, not an RSA key", k)
		}
		return rk, nil
	default:
		return nil, fmt.Errorf("PEM block %q, want \"PUBLIC KEY\"", block.Type)
	}
}

// EncodePublicKey encodes an RSA public key as a PKIX PEM block, the form
// the state file records.
func EncodePublicKey(pub *rsa.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), nil
}

// member is a rule or a user record: both are named members of one
// application and are checked the same way.
type member struct {
	ID            int64
	ApplicationID int64
	Name          string
}

func (r RuleRecord) member() member { return member{r.ID, r.ApplicationID, r.Name} }
func (u UserRecord) member() member { return member{u.ID, u.ApplicationID, u.Name} }

// checkMembers checks the rules, or the users, of a state (kind is "rule"
// or "user") and returns them by id: ids positive and unique, the
// application existing, names non-empty and unique within it.
func checkMembers[T interface {
	RuleRecord | UserRecord
	member() member
}](kind string, list []T, apps map[int64]bool, bad func(format string, args ...any)) map[int64]T {
	type scoped struct {
		app  int64
		name string
	}
	byID := make(map[int64]T, len(list))
	names := map[scoped]int64{}
	for i, x := range list {
		m := x.member()
		if m.ID <= 0 {
			bad("%ss[%d]: id must be a positive number", kind, i)
		} else if _, dup := byID[m.ID]; dup {
			bad("%ss[%d]: duplicate id %d", kind, i, m.ID)
		}
		byID[m.ID] = x
		if !apps[m.ApplicationID] {
			bad("%ss[%d] (id %d): application %d does not exist", kind, i, m.ID, m.ApplicationID)
		}
		if m.Name == "" {
			bad("%ss[%d] (id %d): name is empty", kind, i, m.ID)
		}
		k := scoped{m.ApplicationID, strings.ToLower(m.Name)}
		if other, dup := names[k]; dup {
			bad("%ss[%d] (id %d): name %q is also the name of %s %d of the same application", kind, i, m.ID, m.Name, kind, other)
		}
		names[k] = m.ID
	}
	return byID
}

// LooksLikeState reports whether the file at path begins as a state file
// does (a JSON object whose first key is "account"), reading no more than
// that: a command about to replace the file can refuse to destroy a
// sandbox's account, even one another voxbind is serving.
func LooksLikeState(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return false
	}
	dec := json.NewDecoder(io.LimitReader(f, 4096))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return false
	}
	t, err := dec.Token()
	return err == nil && t == "account"
}
