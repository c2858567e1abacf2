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
// only, some unbound, and old@pbx.example.com frozen. pub, recorded under
// keyID, is the key the sandbox accepts; nil records no key.
func DemoState(pub *rsa.PublicKey, keyID string) (*State, error) {
	st := &State{
		Account: AccountRecord{ID: DemoAccountID, Name: DemoAccountName, Email: DemoAccountEmail},
		Keys:    []KeyRecord{},
		Applications: []ApplicationRecord{
			{ID: 10, Name: "support"},
			{ID: 11, Name: "sales"},
			{ID: 12, Name: "fax"},
		},
		Rules: []RuleRecord{
			{ID: 100, ApplicationID: 10, Name: "inbound-main"},
			{ID: 101, ApplicationID: 10, Name: "after-hours"},
			{ID: 102, ApplicationID: 11, Name: "inbound-sales"},
			{ID: 103, ApplicationID: 12, Name: "fax-in"},
		},
		Users: []UserRecord{
			{ID: 200, ApplicationID: 10, Name: "alice"},
			{ID: 201, ApplicationID: 10, Name: "bob"},
			{ID: 202, ApplicationID: 10, Name: "carol"},
			{ID: 203, ApplicationID: 11, Name: "dave"},
			{ID: 204, ApplicationID: 11, Name: "erin"},
		},
	}
	if pub != nil {
		pemText, err := EncodePublicKey(pub)
		if err != nil {
			return nil, fmt.Errorf("demo account: public key: %w", err)
		}
		st.Keys = append(st.Keys, KeyRecord{KeyID: keyID, PublicKey: pemText})
	}
	type demo struct {
		user, proxy     string
		app, rule, usr  int64
		failing, frozen bool
	}
	regs := []demo{
		{user: "alice", proxy: "pbx.example.com", app: 10, usr: 200},
		{user: "bob", proxy: "pbx.example.com", app: 10, usr: 201},
		{user: "carol", proxy: "pbx.example.com"},
		{user: "dave", proxy: "pbx.example.com", app: 11, usr: 203},
		{user: "erin", proxy: "pbx.example.com"},
		{user: "frontdesk", proxy: "pbx.example.com", app: 10, rule: 100},
		{user: "fax", proxy: "fax.example.net", app: 12, rule: 103},
		{user: "trunk1", proxy: "sip.carrier.example", app: 11, rule: 102},
		{user: "trunk2", proxy: "sip.carrier.example", failing: true},
		{user: "lobby", proxy: "pbx.example.com"},
		{user: "conf", proxy: "pbx.example.com", app: 10},
		{user: "old", proxy: "pbx.example.com", app: 11, rule: 102, failing: true, frozen: true},
	}
	for i, d := range regs {
		r := Registration{
			ID: int64(3001 + i), SIPUsername: d.user, Proxy: d.proxy, AuthUser: d.user,
			Successful: true, StatusCode: 200, LastUpdated: demoLastUpdated,
			NextSubscriptionRenewal: "2027-01-01", PurchaseDate: "2026-01-01 00:00:00",
			SubscriptionPrice: "1.00", IsPersistent: true,
			ApplicationID: d.app, RuleID: d.rule, UserID: d.usr,
		}
		if d.failing {
			r.Successful, r.StatusCode, r.ErrorMessage = false, 403, "Forbidden"
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
	if err := st.Validate(); err != nil {
		return nil, fmt.Errorf("demo account: %w", err)
	}
	return st, nil
}
