package sandbox

import (
	"crypto/rsa"
	"fmt"
)

// Names and ids of the demo account that Init writes and DemoState builds.
// Examples, scripts and tests are written against them: keep them.
const (
	DemoAccountID    = 1000001
	DemoAccountName  = "demo"
	DemoAccountEmail = "demo@example.com"
)

// demoLastUpdated is 2026-01-01T00:00:00Z: the demo account's registrations
// were all last updated then, so that two demo accounts compare equal.
const demoLastUpdated = 1767225600

// DemoState returns the demo account: applications support (10), sales (11)
// and fax (12); rules inbound-main and after-hours (support), inbound-sales
// (sales), fax-in (fax) with ids from 100; users alice, bob, carol (support),
// dave, erin (sales) with ids from 200; and twelve registrations with ids
// from 3001, some bound to users, some to rules, one to an application
// only, some unbound, and old@pbx.example.com frozen; trunk2 and old fail
// to register (403), erin is still registering and lobby is not
// persistent. pub, recorded under keyID, is the key the sandbox accepts;
// nil records no key.
func DemoState(pub *rsa.PublicKey, keyID string) (*State, error) {
	st := demoAccount(AccountRecord{ID: DemoAccountID, Name: DemoAccountName, Email: DemoAccountEmail}, 0)
	if pub != nil {
		pemText, err := EncodePublicKey(pub)
		if err != nil {
			return nil, fmt.Errorf("demo account: public key: %w", err)
		}
		st.Keys = append(st.Keys, KeyRecord{KeyID: keyID, PublicKey: pemText})
	}
	if err := st.Validate(); err != nil {
		return nil, fmt.Errorf("demo account: %w", err)
	}
	return st, nil
}

// DemoChildIDStep is how far apart the ids of the demo child accounts'
// objects are: child k's applications, rules, users and registrations
// have the demo account's ids plus k × DemoChildIDStep.
const DemoChildIDStep = 100000

// AddDemoChildren gives st n child accounts with the demo account's data:
// child k (from 1) is account DemoAccountID+k, named demo-child<k>, with
// ids shifted by k × DemoChildIDStep so that no id means two things. The
// children have no keys of their own: st's keys act on them.
func AddDemoChildren(st *State, n int) error {
	if n < 0 {
		return fmt.Errorf("demo children: %d: give 0 or more", n)
	}
	for k := 1; k <= n; k++ {
		name := fmt.Sprintf("%s-child%d", DemoAccountName, k)
		st.Children = append(st.Children, *demoAccount(AccountRecord{
			ID: DemoAccountID + int64(k), Name: name, Email: name + "@example.com",
		}, int64(k)*DemoChildIDStep))
	}
	if err := st.Validate(); err != nil {
		return fmt.Errorf("demo children: %w", err)
	}
	return nil
}

// demoAccount is the demo data under acct, every id plus shift.
func demoAccount(acct AccountRecord, shift int64) *State {
	st := &State{
		Account: acct,
		Keys:    []KeyRecord{},
		Applications: []ApplicationRecord{
			{ID: shift + 10, Name: "support"},
			{ID: shift + 11, Name: "sales"},
			{ID: shift + 12, Name: "fax"},
		},
		Rules: []RuleRecord{
			{ID: shift + 100, ApplicationID: shift + 10, Name: "inbound-main"},
			{ID: shift + 101, ApplicationID: shift + 10, Name: "after-hours"},
			{ID: shift + 102, ApplicationID: shift + 11, Name: "inbound-sales"},
			{ID: shift + 103, ApplicationID: shift + 12, Name: "fax-in"},
		},
		Users: []UserRecord{
			{ID: shift + 200, ApplicationID: shift + 10, Name: "alice"},
			{ID: shift + 201, ApplicationID: shift + 10, Name: "bob"},
			{ID: shift + 202, ApplicationID: shift + 10, Name: "carol"},
			{ID: shift + 203, ApplicationID: shift + 11, Name: "dave"},
			{ID: shift + 204, ApplicationID: shift + 11, Name: "erin"},
		},
	}
	type demo struct {
		user, proxy                  string
		app, rule, usr               int64
		failing, frozen, registering bool
		onLogin                      bool // not persistent: registers when its user logs in
	}
	regs := []demo{
		{user: "alice", proxy: "pbx.example.com", app: 10, usr: 200},
		{user: "bob", proxy: "pbx.example.com", app: 10, usr: 201},
		{user: "carol", proxy: "pbx.example.com"},
		{user: "dave", proxy: "pbx.example.com", app: 11, usr: 203},
		{user: "erin", proxy: "pbx.example.com", registering: true},
		{user: "frontdesk", proxy: "pbx.example.com", app: 10, rule: 100},
		{user: "fax", proxy: "fax.example.net", app: 12, rule: 103},
		{user: "trunk1", proxy: "sip.carrier.example", app: 11, rule: 102},
		{user: "trunk2", proxy: "sip.carrier.example", failing: true},
		{user: "lobby", proxy: "pbx.example.com", onLogin: true},
		{user: "conf", proxy: "pbx.example.com", app: 10},
		{user: "old", proxy: "pbx.example.com", app: 11, rule: 102, failing: true, frozen: true},
	}
	shifted := func(id int64) int64 {
		if id == 0 {
			return 0
		}
		return shift + id
	}
	for i, d := range regs {
		r := Registration{
			ID: shift + int64(3001+i), SIPUsername: d.user, Proxy: d.proxy, AuthUser: d.user,
			Successful: true, StatusCode: 200, LastUpdated: demoLastUpdated,
			NextSubscriptionRenewal: "2027-01-01", PurchaseDate: "2026-01-01 00:00:00",
			SubscriptionPrice: "1.00", IsPersistent: true,
			ApplicationID: shifted(d.app), RuleID: shifted(d.rule), UserID: shifted(d.usr),
		}
		if d.failing {
			r.Successful, r.StatusCode, r.ErrorMessage = false, 403, "Forbidden"
		}
		if d.registering {
			r.Successful, r.StatusCode, r.InProgress = false, 0, true
		}
		if d.onLogin {
			r.IsPersistent = false
		}
		if d.frozen {
			r.Deactivated = true
			r.NextSubscriptionRenewal = "2026-02-01"
			r.ErrorMessage = "subscription lapsed"
		}
		if d.proxy == "sip.carrier.example" {
			r.OutboundProxy = "edge.sip.carrier.example"
		}
		st.Registrations = append(st.Registrations, r)
	}
	return st
}
