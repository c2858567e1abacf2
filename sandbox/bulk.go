package sandbox

import (
	"crypto/rsa"
	"fmt"
	"strconv"
)

// MaxBulk bounds the lines of a bulk account (a spec of 100,000 entries is
// about as large as voxbind reads).
const MaxBulk = 100_000

// BulkLine is one phone line of the bulk example: a registration of the
// bulk account and the target examples/bulk.yaml (and bulk.csv) asks for it.
type BulkLine struct {
	SIPUsername string
	Proxy       string
	Application string // support or sales; "" for a retired line, which stays unbound
	Rule        string // a trunk's rule
	User        string // a desk phone's user, named like its extension
}

// Registration is the line's sip_username@proxy.
func (l BulkLine) Registration() string { return l.SIPUsername + "@" + l.Proxy }

// BulkLines returns the n lines of the bulk example: of every 26, 20 desk
// phones (extensions from 2000, each with the user of the same name, of
// support and sales in turn), 5 carrier trunks (rule inbound-sales of
// sales) and 1 retired line that stays unbound. examples/genbulk writes the
// spec from them, and BulkState the account they plan against.
func BulkLines(n int) []BulkLine {
	lines := make([]BulkLine, 0, n)
	ext, trunk, retired := 2000, 1, 1
	for i := range n {
		switch k := i % 26; {
		case k < 20:
			app := "support"
			if k%2 == 1 {
				app = "sales"
			}
			name := strconv.Itoa(ext)
			lines = append(lines, BulkLine{SIPUsername: name, Proxy: "pbx.example.com", Application: app, User: name})
			ext++
		case k < 25:
			lines = append(lines, BulkLine{SIPUsername: fmt.Sprintf("trunk%03d", trunk), Proxy: "sip.carrier.example", Application: "sales", Rule: "inbound-sales"})
			trunk++
		default:
			lines = append(lines, BulkLine{SIPUsername: fmt.Sprintf("retired%03d", retired), Proxy: "pbx.example.com"})
			retired++
		}
	}
	return lines
}

// BulkState returns a new account for the bulk example of n lines: the
// demo account's id, name, applications and rules, a user for every desk
// phone, and one registration per line (ids from 3001, users from 200),
// all unbound, so that planning the example binds every line but the
// retired ones. pub, recorded under keyID, is the key the sandbox accepts.
func BulkState(pub *rsa.PublicKey, keyID string, n int) (*State, error) {
	if n < 1 || n > MaxBulk {
		return nil, fmt.Errorf("bulk account: %d lines: give 1 to %d", n, MaxBulk)
	}
	st, err := DemoState(pub, keyID)
	if err != nil {
		return nil, err
	}
	apps := map[string]int64{}
	for _, a := range st.Applications {
		apps[a.Name] = a.ID
	}
	st.Users = nil
	st.Registrations = make([]Registration, 0, n)
	userID := int64(200)
	for i, l := range BulkLines(n) {
		if l.User != "" {
			st.Users = append(st.Users, UserRecord{ID: userID, ApplicationID: apps[l.Application], Name: l.User})
			userID++
		}
		r := Registration{
			ID: int64(3001 + i), SIPUsername: l.SIPUsername, Proxy: l.Proxy, AuthUser: l.SIPUsername,
			Successful: true, StatusCode: 200, LastUpdated: demoLastUpdated,
			NextSubscriptionRenewal: "2027-01-01", PurchaseDate: "2026-01-01 00:00:00",
			SubscriptionPrice: "1.00", IsPersistent: true,
		}
		if l.Proxy == "sip.carrier.example" {
			r.OutboundProxy = "edge.sip.carrier.example"
		}
		st.Registrations = append(st.Registrations, r)
	}
	if err := st.Validate(); err != nil {
		return nil, fmt.Errorf("bulk account: %w", err)
	}
	return st, nil
}
