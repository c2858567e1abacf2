package reconcile

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/voxbind/voxbind/spec"
)

// The benchmark account: 100,000 registrations, 20,000 users in 20
// applications, and a spec that lists every registration.
const (
	benchRegs  = 100000
	benchUsers = 20000
	benchApps  = 20
	benchRules = 5 // per application
)

// benchAccount builds the account: registration i is bound to user i for
// i < 20,000, to a rule for i < 60,000, to an application only for
// i < 80,000, and unbound above.
func benchAccount() *Current {
	c := &Current{Account: AccountInfo{ID: 1, Name: "acme"}, Rules: map[int64][]Rule{}, Users: map[int64][]User{}}
	for a := range benchApps {
		app := Application{ID: int64(1 + a), Name: fmt.Sprintf("app%02d.acme.voximplant.com", a)}
		c.Applications = append(c.Applications, app)
		for r := range benchRules {
			c.Rules[app.ID] = append(c.Rules[app.ID], Rule{ID: int64(100 + a*benchRules + r), ApplicationID: app.ID, Name: fmt.Sprintf("rule%d", r)})
		}
	}
	for u := range benchUsers {
		app := int64(1 + u%benchApps)
		c.Users[app] = append(c.Users[app], User{ID: int64(10000 + u), ApplicationID: app, Name: fmt.Sprintf("user%05d", u)})
	}
	c.Registrations = make([]Registration, benchRegs)
	for i := range c.Registrations {
		reg := &c.Registrations[i]
		reg.RegistrationRef = RegistrationRef{ID: int64(1000000 + i), SIPUsername: fmt.Sprintf("sip%06d", i), Proxy: "pbx.example.com"}
		app := c.Applications[i%benchApps]
		switch {
		case i < benchUsers:
			u := c.Users[app.ID][i/benchApps]
			reg.Target = &Target{Application: Ref{app.ID, app.Name}, User: &Ref{u.ID, u.Name}}
		case i < 60000:
			r := c.Rules[app.ID][i%benchRules]
			reg.Target = &Target{Application: Ref{app.ID, app.Name}, Rule: &Ref{r.ID, r.Name}}
		case i < 80000:
			reg.Target = &Target{Application: Ref{app.ID, app.Name}}
		}
	}
	return c
}

// benchSpec lists every registration by name: users move on by one within
// their application (a chain or cycle per application), half the rule
// bindings change rule, the rest stay, the unbound ones get bound.
func benchSpec(c *Current) *spec.Spec {
	s := &spec.Spec{Version: 1, AccountID: 1, Files: []string{"voxbind.yaml"}, Bindings: make([]spec.Binding, benchRegs)}
	for i := range s.Bindings {
		b := &s.Bindings[i]
		b.Pos = spec.Pos{File: "voxbind.yaml", Line: 4 + 3*i, Col: 5}
		b.Registration = fmt.Sprintf("sip%06d@pbx.example.com", i)
		app := c.Applications[i%benchApps]
		b.Application = planShortAppName(app.Name)
		switch {
		case i < benchUsers:
			users := c.Users[app.ID]
			b.User = users[(i/benchApps+1)%len(users)].Name
		case i < 60000:
			b.Rule = c.Rules[app.ID][(i+i%2)%benchRules].Name
		case i >= 80000:
			b.Rule = c.Rules[app.ID][0].Name
		}
	}
	return s
}

// BenchmarkDiff100k plans the 100,000-entry spec against the account.
// Compare with BenchmarkDecodeAccountJSON100k: planning should cost no more
// than decoding the registrations from the API.
func BenchmarkDiff100k(b *testing.B) {
	c := benchAccount()
	s := benchSpec(c)
	p, err := Diff(s, c, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := Diff(s, c, Options{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(p.Changes)), "steps")
}

// benchSIPRegistration mirrors SIPRegistrationType as GetSipRegistrations
// returns it (docs/management-api.md). It is local: package voximplant
// imports reconcile.
type benchSIPRegistration struct {
	SIPRegistrationID       int64  `json:"sip_registration_id"`
	SIPUsername             string `json:"sip_username"`
	Proxy                   string `json:"proxy"`
	LastUpdated             int64  `json:"last_updated"`
	AuthUser                string `json:"auth_user"`
	OutboundProxy           string `json:"outbound_proxy"`
	Successful              bool   `json:"successful"`
	StatusCode              int    `json:"status_code"`
	ErrorMessage            string `json:"error_message"`
	Deactivated             bool   `json:"deactivated"`
	NextSubscriptionRenewal string `json:"next_subscription_renewal"`
	PurchaseDate            string `json:"purchase_date"`
	SubscriptionPrice       string `json:"subscription_price"`
	IsPersistent            bool   `json:"is_persistent"`
	ApplicationID           int64  `json:"application_id,omitempty"`
	ApplicationName         string `json:"application_name,omitempty"`
	RuleID                  int64  `json:"rule_id,omitempty"`
	RuleName                string `json:"rule_name,omitempty"`
	UserID                  int64  `json:"user_id,omitempty"`
	UserName                string `json:"user_name,omitempty"`
}

type benchSIPPage struct {
	Result []benchSIPRegistration `json:"result"`
	Count  int                    `json:"count"`
}

// benchAccountPages renders the benchmark account as GetSipRegistrations
// answers of 1,000 rows each.
func benchAccountPages(c *Current) [][]byte {
	var pages [][]byte
	for start := 0; start < len(c.Registrations); start += 1000 {
		page := benchSIPPage{}
		for _, reg := range c.Registrations[start:min(start+1000, len(c.Registrations))] {
			r := benchSIPRegistration{
				SIPRegistrationID: reg.ID, SIPUsername: reg.SIPUsername, Proxy: reg.Proxy,
				LastUpdated: 1764201600, AuthUser: reg.SIPUsername, OutboundProxy: "",
				Successful: true, StatusCode: 200, Deactivated: reg.Deactivated,
				NextSubscriptionRenewal: "2026-12-27", PurchaseDate: "2025-12-27 10:00:00",
				SubscriptionPrice: "0.5000", IsPersistent: true,
			}
			if t := reg.Target; t != nil {
				r.ApplicationID, r.ApplicationName = t.Application.ID, t.Application.Name
				if t.Rule != nil {
					r.RuleID, r.RuleName = t.Rule.ID, t.Rule.Name
				}
				if t.User != nil {
					r.UserID, r.UserName = t.User.ID, t.User.Name
				}
			}
			page.Result = append(page.Result, r)
		}
		page.Count = len(page.Result)
		data, err := json.Marshal(page)
		if err != nil {
			panic(err)
		}
		pages = append(pages, data)
	}
	return pages
}

// BenchmarkDecodeAccountJSON100k decodes the benchmark account's
// registrations as the API sends them: the yardstick for BenchmarkDiff100k.
func BenchmarkDecodeAccountJSON100k(b *testing.B) {
	pages := benchAccountPages(benchAccount())
	var size int
	for _, p := range pages {
		size += len(p)
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		n := 0
		for _, data := range pages {
			var page benchSIPPage
			if err := json.Unmarshal(data, &page); err != nil {
				b.Fatal(err)
			}
			n += len(page.Result)
		}
		if n != benchRegs {
			b.Fatalf("decoded %d registrations", n)
		}
	}
}

// TestBenchSpecPlans keeps the benchmark honest: its spec resolves, and the
// plan has the chains, cycles and unchanged entries it is meant to have.
func TestBenchSpecPlans(t *testing.T) {
	if testing.Short() {
		t.Skip("100k registrations")
	}
	c := benchAccount()
	p, err := Diff(benchSpec(c), c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// 20,000 user moves, 20,000 rule changes, 20,000 binds.
	if p.Summary.Rebind != 40000 || p.Summary.Bind != 20000 || p.Summary.Unchanged != 40000 || p.Summary.Unbind != 0 {
		t.Errorf("summary %+v", p.Summary)
	}
	if len(p.SideEffects) != benchApps {
		t.Errorf("%d side effects, want one per application's cycle (%d)", len(p.SideEffects), benchApps)
	}
}

// benchUsersAccount is the account of BenchmarkPlanUsers100k: one
// application with n users and n registrations; registration i is bound
// to user i+1 (the last to user 0) when i is even, and unbound when odd.
func benchUsersAccount(n int) (*Current, *spec.Spec) {
	app := Application{ID: 7, Name: "support.acme.voximplant.com"}
	c := &Current{Account: AccountInfo{ID: 1, Name: "acme"}, Applications: []Application{app},
		Rules: map[int64][]Rule{}, Users: map[int64][]User{app.ID: make([]User, n)}}
	users := c.Users[app.ID]
	for u := range users {
		users[u] = User{ID: int64(500000 + u), ApplicationID: app.ID, Name: fmt.Sprintf("User%06d", u)}
	}
	c.Registrations = make([]Registration, n)
	s := &spec.Spec{Version: 1, AccountID: 1, Files: []string{"voxbind.yaml"}, Bindings: make([]spec.Binding, n)}
	for i := range c.Registrations {
		reg := &c.Registrations[i]
		reg.RegistrationRef = RegistrationRef{ID: int64(1000000 + i), SIPUsername: fmt.Sprintf("sip%06d", i), Proxy: "pbx.example.com"}
		if i%2 == 0 {
			u := users[(i+1)%n]
			reg.Target = &Target{Application: Ref{app.ID, app.Name}, User: &Ref{u.ID, u.Name}}
		}
		// The spec names each user in lower case: matching folds it.
		s.Bindings[i] = spec.Binding{Pos: spec.Pos{File: "voxbind.yaml", Line: 4 + 4*i, Col: 5},
			Registration: fmt.Sprintf("sip%06d@pbx.example.com", i), Application: "support", User: fmt.Sprintf("user%06d", i)}
	}
	return c, s
}

// BenchmarkDiff100kScoped plans the same spec with a selection and
// exceptions: --only reg=sip00*@pbx.example.com (the first 10,000
// registrations) --only app=app07 --except id=1000003, and 1,000 ignore
// entries by name, 1,000 by id and 2 patterns. Selections and exceptions
// must keep planning linear: compare with BenchmarkDiff100k.
func BenchmarkDiff100kScoped(b *testing.B) {
	c := benchAccount()
	s := benchSpec(c)
	until := time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC)
	for i := range 1000 {
		s.Ignores = append(s.Ignores,
			spec.Ignore{Registration: fmt.Sprintf("sip%06d@pbx.example.com", 50000+i), Reason: "by name", Until: until},
			spec.Ignore{RegistrationID: int64(1000000 + 70000 + i), Reason: "by id", Until: until})
	}
	s.Ignores = append(s.Ignores,
		spec.Ignore{Registration: "sip0999*@*", Reason: "a pattern", Until: until},
		spec.Ignore{Registration: "sip?????7@PBX.example.com", Reason: "a pattern", Until: until})
	var opts Options
	opts.Today = time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	for _, only := range []string{"reg=sip00*@pbx.example.com", "app=app07"} {
		sel, err := ParseSelector(only)
		if err != nil {
			b.Fatal(err)
		}
		opts.Selection.Only = append(opts.Selection.Only, sel)
	}
	except, _ := ParseSelector("id=1000003")
	opts.Selection.Except = []Selector{except}
	p, err := Diff(s, c, opts)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := Diff(s, c, opts); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(p.Changes)), "steps")
	b.ReportMetric(float64(p.Selection.Outside), "outside")
	b.ReportMetric(float64(len(p.Ignored)), "ignored")
}

// BenchmarkPlanUsers100k observes (from an in-process fake account),
// resolves and diffs a spec that binds each of 100,000 registrations to its
// own user among the 100,000 users of one application. Planning must stay
// linear in the user bindings: compare with BenchmarkDecodeAccountJSON100k
// (target: no slower).
func BenchmarkPlanUsers100k(b *testing.B) {
	benchPlanUsers(b, 100000)
}

func benchPlanUsers(b *testing.B, n int) {
	c, s := benchUsersAccount(n)
	acct := newFakeAccount(*c)
	ctx := context.Background()
	var steps int
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		acct.reads = acct.reads[:0]
		current, err := Observe(ctx, acct, s)
		if err != nil {
			b.Fatal(err)
		}
		p, err := Diff(s, current, Options{})
		if err != nil {
			b.Fatal(err)
		}
		steps = len(p.Changes)
	}
	b.ReportMetric(float64(steps), "steps")
}

// BenchmarkPlanUsersScaling runs the same plan at 12,500 to 50,000 users:
// linear planning doubles its time with each doubling.
func BenchmarkPlanUsersScaling(b *testing.B) {
	for _, n := range []int{12500, 25000, 50000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) { benchPlanUsers(b, n) })
	}
}

// TestPlanUsersLinear guards BenchmarkPlanUsers100k's point in the normal
// suite with a deliberately generous bound: 50,000 user bindings in one
// application plan in well under a second when planning is linear, and
// took about a minute when every binding scanned the application's users.
func TestPlanUsersLinear(t *testing.T) {
	if testing.Short() {
		t.Skip("50,000 registrations")
	}
	c, s := benchUsersAccount(50000)
	start := time.Now()
	current, err := Observe(context.Background(), newFakeAccount(*c), s)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Diff(s, current, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("planning 50,000 user bindings took %s; it must grow linearly (well under a second here)", d)
	}
	if p.Summary.Bind != 25000 || p.Summary.Rebind != 25000 {
		t.Errorf("summary %+v, want 25,000 binds and 25,000 rebinds", p.Summary)
	}
}
