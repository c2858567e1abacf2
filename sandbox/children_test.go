package sandbox

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
)

// Account ids of familyState.
const (
	child1     = DemoAccountID + 1
	child2     = DemoAccountID + 2
	grandchild = 2000001
)

// familyState is the demo account with two demo children (the second
// inactive, frozen and with another email) and a grandchild under the first child, which
// has its own key, testKeys()[1] as "child-key".
func familyState(t testing.TB) *State {
	t.Helper()
	st := demoState(t)
	if err := AddDemoChildren(st, 2); err != nil {
		t.Fatal(err)
	}
	off := false
	st.Children[1].Account.Active, st.Children[1].Account.Frozen = &off, true
	st.Children[1].Account.Email = "billing@example.com" // sorts before the first child's
	pemText, err := EncodePublicKey(&testKeys()[1].PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	st.Children[0].Keys = []KeyRecord{{KeyID: "child-key", PublicKey: pemText}}
	st.Children[0].Children = []State{{
		Account:      AccountRecord{ID: grandchild, Name: "grandchild", Email: "g@example.com"},
		Applications: []ApplicationRecord{{ID: 1, Name: "only"}},
	}}
	if err := st.Validate(); err != nil {
		t.Fatal(err)
	}
	return st
}

// tokenFor signs a token of key (0: the parent's test key, 1: the first
// child's) with the given iss.
func tokenFor(t testing.TB, key int, iss int64) string {
	kid := testKeyID
	if key == 1 {
		kid = "child-key"
	}
	now := time.Now().Unix()
	return sign(t, testKeys()[key], kid, jwt.MapClaims{"iss": iss, "iat": now - 5, "exp": now + 600})
}

func TestChildAccountTokens(t *testing.T) {
	e := newEnv(t, familyState(t), Options{})
	tests := []struct {
		name string
		key  int
		iss  int64
		want int // 0: acts on iss
	}{
		{"parent key on the parent", 0, DemoAccountID, 0},
		{"parent key on a child", 0, child1, 0},
		{"parent key on an inactive child", 0, child2, 0},
		{"parent key on a grandchild", 0, grandchild, 100},
		{"parent key on an unknown account", 0, 4242, 100},
		{"child key on its own account", 1, child1, 0},
		{"child key on its child", 1, grandchild, 0},
		{"child key on its parent", 1, DemoAccountID, 100},
		{"child key on its sibling", 1, child2, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.token = tokenFor(t, tt.key, tt.iss)
			a := e.call("GetAccountInfo")
			if a.code() != tt.want {
				t.Fatalf("code %d (%+v), want %d", a.code(), a.Error, tt.want)
			}
			if tt.want != 0 {
				if !strings.Contains(a.Error.Msg, "cannot act on account") {
					t.Errorf("message %q does not say which account the key cannot act on", a.Error.Msg)
				}
				return
			}
			if got := decode[map[string]any](t, a)["account_id"]; got != float64(tt.iss) {
				t.Errorf("acted on account %v, want %d", got, tt.iss)
			}
		})
	}
}

// TestChildAccountsHaveTheirOwnData: a call acts on the token's account
// only, reads and writes.
func TestChildAccountsHaveTheirOwnData(t *testing.T) {
	e := newEnv(t, familyState(t), Options{})
	e.token = tokenFor(t, 0, child1)
	shift := int64(DemoChildIDStep)
	apps := decode[[]applicationInfoType](t, e.call("GetApplications"))
	if len(apps) != 3 || apps[0].ID != shift+10 || apps[0].Name != "support.demo-child1.voximplant.com" {
		t.Errorf("child's applications = %+v", apps)
	}
	// The parent's ids do not exist in the child.
	if code := e.call("BindSipRegistration", "sip_registration_id", "3003", "application_id", "10").code(); code != 275 {
		t.Errorf("binding the parent's registration as the child: code %d, want 275", code)
	}
	mustOK(t, e.call("BindSipRegistration", "sip_registration_id", "103003", "application_id", "100010"))
	st := e.srv.State()
	if got := bindings(&st.Children[0])[shift+3003]; got != (binding{App: shift + 10}) {
		t.Errorf("child registration bound to %+v", got)
	}
	if got := bindings(st)[3003]; got != (binding{}) {
		t.Errorf("the parent's registration 3003 changed: %+v", got)
	}
	if got := bindings(&st.Children[1])[2*shift+3003]; got != (binding{}) {
		t.Errorf("the other child's registration changed: %+v", got)
	}
}

func TestGetChildrenAccounts(t *testing.T) {
	e := newEnv(t, familyState(t), Options{})
	type row = accountInfoType
	on, off := true, false
	c1 := row{ID: child1, Name: "demo-child1", Email: "demo-child1@example.com", Active: &on, Frozen: &off}
	c2 := row{ID: child2, Name: "demo-child2", Email: "billing@example.com", Active: &off, Frozen: &on}
	tests := []struct {
		name      string
		args      []string
		want      []row
		wantTotal int
		code      int
	}{
		{"any", []string{"child_account_id", "any"}, []row{c1, c2}, 2, 0},
		{"one id", []string{"child_account_id", "1000003"}, []row{c2}, 1, 0},
		{"a list", []string{"child_account_id", "1000003;1000002"}, []row{c1, c2}, 2, 0},
		{"by name fragment", []string{"child_account_name", "CHILD2"}, []row{c2}, 1, 0},
		{"by email fragment", []string{"child_account_email", "child1@"}, []row{c1}, 1, 0},
		{"active", []string{"child_account_id", "any", "active", "true"}, []row{c1}, 1, 0},
		{"frozen", []string{"child_account_id", "any", "frozen", "true"}, []row{c2}, 1, 0},
		{"paged", []string{"child_account_id", "any", "count", "1", "offset", "1"}, []row{c2}, 2, 0},
		{"ordered by email", []string{"child_account_id", "any", "order_by", "child_account_email"}, []row{c2, c1}, 2, 0},
		{"ordered by name", []string{"child_account_id", "any", "order_by", "child_account_name"}, []row{c1, c2}, 2, 0},
		{"brief", []string{"child_account_id", "any", "brief_output", "true"}, []row{{ID: child1}, {ID: child2}}, 2, 0},
		{"medium", []string{"child_account_id", "1000002", "medium_output", "true"}, []row{{ID: child1, Name: "demo-child1", Email: "demo-child1@example.com"}}, 1, 0},
		{"ignore invalid ids", []string{"child_account_id", "1000002;2000001", "ignore_invalid_accounts", "true"}, []row{c1}, 1, 0},
		{"no filter", nil, nil, 0, 485},
		{"only paging", []string{"count", "5"}, nil, 0, 485},
		{"a grandchild is not a child", []string{"child_account_id", "2000001"}, nil, 0, 496},
		{"the account itself is not a child", []string{"child_account_id", "1000001"}, nil, 0, 496},
		{"bad id list", []string{"child_account_id", "1000002;x"}, nil, 0, 101},
		{"bad order", []string{"child_account_id", "any", "order_by", "balance"}, nil, 0, 496},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := e.call("GetChildrenAccounts", tt.args...)
			if a.code() != tt.code {
				t.Fatalf("code %d (%+v), want %d", a.code(), a.Error, tt.code)
			}
			if tt.code != 0 {
				return
			}
			if diff := cmp.Diff(tt.want, decode[[]row](t, a)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if a.TotalCount == nil || *a.TotalCount != tt.wantTotal || *a.Count != len(tt.want) {
				t.Errorf("total_count %v, count %v; want %d, %d", a.TotalCount, a.Count, tt.wantTotal, len(tt.want))
			}
		})
	}
	// A child lists its own children only.
	e.token = tokenFor(t, 1, child1)
	got := decode[[]row](t, e.call("GetChildrenAccounts", "child_account_id", "any", "brief_output", "true"))
	if diff := cmp.Diff([]row{{ID: grandchild}}, got); diff != "" {
		t.Errorf("the child's children (-want +got):\n%s", diff)
	}
}

func TestGetChildrenAccountsPagesLikeTheOtherLists(t *testing.T) {
	st := demoState(t)
	if err := AddDemoChildren(st, 1500/100); err != nil { // 15 children
		t.Fatal(err)
	}
	e := newEnv(t, st, Options{})
	a := e.call("GetChildrenAccounts", "child_account_id", "any")
	if rows := decode[[]accountInfoType](t, a); len(rows) != 15 || *a.TotalCount != 15 {
		t.Errorf("%d rows, total %d; want 15 of 15 (default count 20)", len(rows), *a.TotalCount)
	}
	a = e.call("GetChildrenAccounts", "child_account_id", "any", "count", "10", "offset", "10")
	if rows := decode[[]accountInfoType](t, a); len(rows) != 5 || rows[0].ID != DemoAccountID+11 {
		t.Errorf("second page of 10: %+v", rows)
	}
}

func TestKeyRoles(t *testing.T) {
	st := demoState(t)
	st.Keys[0].Roles = []string{"Accountant"}
	e := newEnv(t, st, Options{})
	for _, tt := range []struct {
		method string
		args   []string
		want   int
	}{
		{"GetAccountInfo", nil, 0},
		{"GetSipRegistrations", nil, 0},
		{"GetApplications", nil, 104},
		{"GetRules", []string{"application_id", "10"}, 104},
		{"GetUsers", []string{"application_id", "10"}, 104},
		{"BindSipRegistration", []string{"sip_registration_id", "3003", "application_id", "10"}, 104},
	} {
		a := e.call(tt.method, tt.args...)
		if a.code() != tt.want {
			t.Errorf("%s as an Accountant: code %d (%+v), want %d", tt.method, a.code(), a.Error, tt.want)
			continue
		}
		if tt.want == 104 && !strings.Contains(a.Error.Msg, "Developer") {
			t.Errorf("%s: message %q does not name the roles that may call it", tt.method, a.Error.Msg)
		}
	}
	if st := e.srv.State(); bindings(st)[3003] != (binding{}) {
		t.Error("a refused bind changed the registration")
	}

	st.Keys[0].Roles = []string{"Ownr"}
	if err := st.Validate(); err == nil || !strings.Contains(err.Error(), `unknown role "Ownr"`) {
		t.Errorf("Validate with an unknown role = %v", err)
	}
}

func TestStateWithChildrenRoundTrips(t *testing.T) {
	st := familyState(t)
	data, err := st.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "account.json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	back, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(st, back); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil || raw["children"] == nil {
		t.Errorf("the file has no children key: %v", err)
	}
}

func TestValidateChildren(t *testing.T) {
	for _, tt := range []struct {
		name   string
		mutate func(*State)
		want   string
	}{
		{"duplicate account id", func(st *State) { st.Children[1].Account.ID = child1 }, "children[1].account: duplicate account id 1000002 (also children[0].account)"},
		{"account id of the parent", func(st *State) { st.Children[0].Children[0].Account.ID = DemoAccountID }, "children[0].children[0].account: duplicate account id 1000001 (also account)"},
		{"duplicate account name", func(st *State) { st.Children[1].Account.Name = "DEMO" }, `children[1].account: duplicate account name "DEMO"`},
		{"duplicate key id across accounts", func(st *State) { st.Children[0].Keys[0].KeyID = testKeyID }, `children[0].keys[0]: duplicate key_id "test-key" (also keys[0])`},
		{"dangling reference in a child", func(st *State) { st.Children[1].Registrations[0].UserID = 200 }, "children[1].registrations[0] (id 203001): user 200 does not exist"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st := familyState(t)
			tt.mutate(st)
			if err := st.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// TestRateLimitPerAccount: each account has its own request budget, so
// that a busy account does not starve the others.
func TestRateLimitPerAccount(t *testing.T) {
	e := newEnv(t, familyState(t), Options{Rate: 1})
	mustOK(t, e.call("GetAccountInfo"))
	if got := e.call("GetAccountInfo").code(); got != 340 {
		t.Fatalf("second call within a second: code %d, want 340", got)
	}
	e.token = tokenFor(t, 0, child1)
	mustOK(t, e.call("GetAccountInfo"))
}

// TestAccountRateAndLatency: one account's own rate and latency replace
// the server's for that account only.
func TestAccountRateAndLatency(t *testing.T) {
	const slow = 300 * time.Millisecond
	e := newEnv(t, familyState(t), Options{
		Rate:           100,
		AccountRate:    map[int64]float64{child1: 1},
		AccountLatency: map[int64]time.Duration{child2: slow},
	})
	// The top account has the server's rate: two calls at once pass.
	mustOK(t, e.call("GetAccountInfo"))
	mustOK(t, e.call("GetAccountInfo"))
	e.token = tokenFor(t, 0, child1)
	mustOK(t, e.call("GetAccountInfo"))
	a := e.call("GetAccountInfo")
	if a.code() != 340 || !strings.Contains(a.Error.Msg, "1 requests per second for account 1000002") {
		t.Fatalf("second call of account %d within a second: %+v, want 340 naming its own rate", child1, a.Error)
	}
	e.token = tokenFor(t, 0, child2)
	start := time.Now()
	mustOK(t, e.call("GetAccountInfo"))
	if d := time.Since(start); d < slow {
		t.Errorf("a call of account %d took %v, less than its latency of %v", child2, d, slow)
	}

	for _, opts := range []Options{
		{AccountRate: map[int64]float64{42: 1}},
		{AccountLatency: map[int64]time.Duration{42: time.Second}},
	} {
		if _, err := newServer(familyState(t), opts); err == nil || !strings.Contains(err.Error(), "account 42") {
			t.Errorf("options for an account the state does not have: %v, want an error naming it", err)
		}
	}
	if err := (Options{AccountRate: map[int64]float64{child1: -1}}).Validate(); err == nil {
		t.Errorf("a negative rate of one account passes Validate")
	}
}
