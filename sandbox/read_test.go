package sandbox

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestGetAccountInfo(t *testing.T) {
	e := newEnv(t, demoState(t), Options{})
	got := decode[map[string]any](t, e.call("GetAccountInfo"))
	if got["account_id"] != float64(DemoAccountID) || got["account_name"] != "demo" {
		t.Errorf("GetAccountInfo = %v", got)
	}
}

func ids[T any](rows []T, id func(T) int64) []int64 {
	out := []int64{}
	for _, r := range rows {
		out = append(out, id(r))
	}
	return out
}

func regIDs(rows []sipRegistrationType) []int64 {
	return ids(rows, func(r sipRegistrationType) int64 { return r.ID })
}

func TestGetSipRegistrationsFilters(t *testing.T) {
	e := newEnv(t, demoState(t), Options{})
	tests := []struct {
		name string
		args []string
		want []int64
	}{
		{"all", nil, []int64{3001, 3002, 3003, 3004, 3005, 3006, 3007, 3008, 3009, 3010, 3011, 3012}},
		{"by id", []string{"sip_registration_id", "3007"}, []int64{3007}},
		{"unknown id", []string{"sip_registration_id", "9999"}, []int64{}},
		{"username fragment, any case", []string{"sip_username", "TRUNK"}, []int64{3008, 3009}},
		{"proxy fragment", []string{"proxy", "fax."}, []int64{3007}},
		{"proxy list", []string{"proxy", "fax.example.net;sip.carrier.example"}, []int64{3007, 3008, 3009}},
		{"deactivated", []string{"deactivated", "true"}, []int64{3012}},
		{"bound to an application", []string{"application_id", "11"}, []int64{3004, 3008, 3012}},
		{"bound", []string{"is_bound_to_application", "true"}, []int64{3001, 3002, 3004, 3006, 3007, 3008, 3011, 3012}},
		{"unbound", []string{"is_bound_to_application", "false"}, []int64{3003, 3005, 3009, 3010}},
		{"combined", []string{"proxy", "pbx", "is_bound_to_application", "1", "deactivated", "0"}, []int64{3001, 3002, 3004, 3006, 3011}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := e.call("GetSipRegistrations", tt.args...)
			rows := decode[[]sipRegistrationType](t, a)
			if diff := cmp.Diff(tt.want, regIDs(rows)); diff != "" {
				t.Errorf("ids (-want +got):\n%s", diff)
			}
			if a.Count == nil || *a.Count != len(rows) {
				t.Errorf("count %v, want %d (rows in the page)", a.Count, len(rows))
			}
			if a.TotalCount != nil {
				t.Errorf("total_count %d given; GetSipRegistrations has none", *a.TotalCount)
			}
		})
	}
	for _, bad := range [][]string{
		{"sip_registration_id", "abc"}, {"application_id", "-1"}, {"deactivated", "maybe"},
		{"count", "0"}, {"count", "x"}, {"offset", "-1"},
	} {
		if got := e.call("GetSipRegistrations", bad...).code(); got != 101 {
			t.Errorf("%v: code %d, want 101", bad, got)
		}
	}
}

func TestGetSipRegistrationsShowsEveryField(t *testing.T) {
	e := newEnv(t, demoState(t), Options{})
	rows := decode[[]map[string]any](t, e.call("GetSipRegistrations", "sip_registration_id", "3001"))
	want := map[string]any{
		"sip_registration_id": 3001.0, "sip_username": "alice", "proxy": "pbx.example.com",
		"auth_user": "alice", "successful": true, "status_code": 200.0, "deactivated": false,
		"last_updated": float64(demoLastUpdated), "next_subscription_renewal": "2027-01-01",
		"purchase_date": "2026-01-01 00:00:00", "subscription_price": "1.00", "is_persistent": true,
		"application_id": 10.0, "application_name": "support.demo.voximplant.com",
		"user_id": 200.0, "user_name": "alice",
	}
	if diff := cmp.Diff([]map[string]any{want}, rows); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	rows = decode[[]map[string]any](t, e.call("GetSipRegistrations", "sip_registration_id", "3012"))
	if rows[0]["rule_name"] != "inbound-sales" || rows[0]["deactivated"] != true || rows[0]["application_name"] != "sales.demo.voximplant.com" {
		t.Errorf("frozen registration shown as %v", rows[0])
	}
	rows = decode[[]map[string]any](t, e.call("GetSipRegistrations", "sip_registration_id", "3003"))
	for _, k := range []string{"application_id", "application_name", "rule_id", "rule_name", "user_id", "user_name"} {
		if _, ok := rows[0][k]; ok {
			t.Errorf("unbound registration shows %s", k)
		}
	}
}

// bigState is the demo account with n more unbound registrations.
func bigState(t testing.TB, n int) *State {
	st := demoState(t)
	for i := range n {
		st.Registrations = append(st.Registrations, Registration{
			ID: int64(10000 + i), SIPUsername: "ext" + strconv.Itoa(i), Proxy: "bulk.example.com",
		})
	}
	return st
}

func TestPaging(t *testing.T) {
	e := newEnv(t, bigState(t, 1500-12), Options{})
	tests := []struct {
		args      []string
		wantRows  int
		wantFirst int64
	}{
		{nil, 20, 3001},                   // default count 20
		{[]string{"count", "5"}, 5, 3001}, // as asked
		{[]string{"count", "5", "offset", "12"}, 5, 10000},
		{[]string{"count", "5000"}, 1000, 3001}, // capped at 1000
		{[]string{"count", "1000", "offset", "1000"}, 500, 10988},
		{[]string{"offset", "1499"}, 1, 11487},
		{[]string{"offset", "1500"}, 0, 0}, // past the end: empty page
		{[]string{"offset", "99999"}, 0, 0},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.args), func(t *testing.T) {
			a := e.call("GetSipRegistrations", tt.args...)
			rows := decode[[]sipRegistrationType](t, a)
			if len(rows) != tt.wantRows || *a.Count != tt.wantRows {
				t.Fatalf("%d rows, count %d; want %d", len(rows), *a.Count, tt.wantRows)
			}
			if tt.wantRows > 0 && rows[0].ID != tt.wantFirst {
				t.Errorf("first id %d, want %d", rows[0].ID, tt.wantFirst)
			}
		})
	}

	// A reader that pages correctly (docs/management-api.md) sees every row once.
	seen := map[int64]bool{}
	for offset := 0; ; {
		rows := decode[[]sipRegistrationType](t, e.call("GetSipRegistrations", "count", "300", "offset", strconv.Itoa(offset)))
		if len(rows) == 0 {
			break
		}
		for _, r := range rows {
			if seen[r.ID] {
				t.Fatalf("registration %d seen twice", r.ID)
			}
			seen[r.ID] = true
		}
		offset += len(rows)
	}
	if len(seen) != 1500 {
		t.Errorf("paged through %d registrations, want 1500", len(seen))
	}
}

func TestGetApplications(t *testing.T) {
	e := newEnv(t, demoState(t), Options{})
	type app = applicationInfoType
	tests := []struct {
		name      string
		args      []string
		want      []app
		wantTotal int
	}{
		{"all, full names", nil, []app{{ID: 10, Name: "support.demo.voximplant.com"}, {ID: 11, Name: "sales.demo.voximplant.com"}, {ID: 12, Name: "fax.demo.voximplant.com"}}, 3},
		{"by id", []string{"application_id", "11"}, []app{{ID: 11, Name: "sales.demo.voximplant.com"}}, 1},
		{"name fragment, any case", []string{"application_name", "SA"}, []app{{ID: 11, Name: "sales.demo.voximplant.com"}}, 1},
		{"fragment of the full name", []string{"application_name", "demo.vox"}, []app{{ID: 10, Name: "support.demo.voximplant.com"}, {ID: 11, Name: "sales.demo.voximplant.com"}, {ID: 12, Name: "fax.demo.voximplant.com"}}, 3},
		{"page", []string{"count", "1", "offset", "1"}, []app{{ID: 11, Name: "sales.demo.voximplant.com"}}, 3},
		{"no match", []string{"application_name", "nope"}, []app{}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := e.call("GetApplications", tt.args...)
			if diff := cmp.Diff(tt.want, decode[[]app](t, a)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if a.TotalCount == nil || *a.TotalCount != tt.wantTotal || *a.Count != len(tt.want) {
				t.Errorf("total_count %v, count %v; want %d, %d", a.TotalCount, a.Count, tt.wantTotal, len(tt.want))
			}
		})
	}
}

func TestGetRulesAndUsers(t *testing.T) {
	e := newEnv(t, demoState(t), Options{})
	ruleIDs := func(a answer) []int64 {
		return ids(decode[[]ruleInfoType](t, a), func(r ruleInfoType) int64 { return r.ID })
	}
	userIDs := func(a answer) []int64 {
		return ids(decode[[]userInfoType](t, a), func(u userInfoType) int64 { return u.ID })
	}
	tests := []struct {
		name   string
		method string
		args   []string
		want   []int64
		code   int
	}{
		{"rules by application id", "GetRules", []string{"application_id", "10"}, []int64{100, 101}, 0},
		{"rules by short name", "GetRules", []string{"application_name", "Support"}, []int64{100, 101}, 0},
		{"rules by full name", "GetRules", []string{"application_name", "support.demo.voximplant.com"}, []int64{100, 101}, 0},
		{"rules by name fragment", "GetRules", []string{"application_id", "10", "rule_name", "HOURS"}, []int64{101}, 0},
		{"rules by id", "GetRules", []string{"application_id", "10", "rule_id", "100"}, []int64{100}, 0},
		{"rule of another application", "GetRules", []string{"application_id", "10", "rule_id", "102"}, []int64{}, 0},
		{"rules page", "GetRules", []string{"application_id", "10", "count", "1", "offset", "1"}, []int64{101}, 0},
		{"rules need an application", "GetRules", nil, nil, 485},
		{"rules of an unknown application id", "GetRules", []string{"application_id", "99"}, nil, 116},
		{"rules of an unknown application name", "GetRules", []string{"application_name", "nope"}, nil, 558},
		{"a fragment is not an application name", "GetRules", []string{"application_name", "supp"}, nil, 558},
		{"rules by id and name", "GetRules", []string{"application_id", "10", "application_name", "support"}, nil, 458},
		{"users by application id", "GetUsers", []string{"application_id", "10"}, []int64{200, 201, 202}, 0},
		{"users by full name", "GetUsers", []string{"application_name", "sales.demo.voximplant.com"}, []int64{203, 204}, 0},
		{"users by name fragment", "GetUsers", []string{"application_id", "10", "user_name", "A"}, []int64{200, 202}, 0},
		{"users by id", "GetUsers", []string{"application_id", "11", "user_id", "204"}, []int64{204}, 0},
		{"no users", "GetUsers", []string{"application_name", "fax"}, []int64{}, 0},
		{"users of every application", "GetUsers", nil, []int64{200, 201, 202, 203, 204}, 0},
		{"a user without its application", "GetUsers", []string{"user_id", "203"}, []int64{203}, 0},
		{"application_id=0 is no application", "GetUsers", []string{"application_id", "0", "user_name", "AV"}, []int64{203}, 0},
		{"users of an unknown application id", "GetUsers", []string{"application_id", "99"}, nil, 116},
		{"users of an unknown application name", "GetUsers", []string{"application_name", "nope"}, nil, 558},
		{"bad user id", "GetUsers", []string{"application_id", "10", "user_id", "x"}, nil, 101},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := e.call(tt.method, tt.args...)
			if a.code() != tt.code {
				t.Fatalf("code %d (%+v), want %d", a.code(), a.Error, tt.code)
			}
			if tt.code != 0 {
				return
			}
			got := ruleIDs
			if tt.method == "GetUsers" {
				got = userIDs
			}
			if diff := cmp.Diff(tt.want, got(a)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if a.TotalCount == nil || a.Count == nil {
				t.Errorf("total_count %v, count %v; want both", a.TotalCount, a.Count)
			}
		})
	}
	rules := decode[[]ruleInfoType](t, e.call("GetRules", "application_name", "fax"))
	if diff := cmp.Diff([]ruleInfoType{{ID: 103, Name: "fax-in", ApplicationID: 12, RulePattern: ".*"}}, rules); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	users := decode[[]userInfoType](t, e.call("GetUsers", "application_id", "11", "user_id", "203"))
	if len(users) != 1 || users[0].Name != "dave" || users[0].Applications[0].ID != 11 {
		t.Errorf("users = %+v", users)
	}
}

// TestRegistrationFilterRefusalStable: with several bad parameters, the
// same one is refused on every call (the filters are read in a fixed
// order, not a map's).
func TestRegistrationFilterRefusalStable(t *testing.T) {
	e := newEnv(t, demoState(t), Options{})
	args := []string{"is_bound_to_application", "maybe", "deactivated", "maybe", "in_progress", "maybe", "user_id", "x", "rule_id", "x"}
	first := e.call("GetSipRegistrations", args...)
	if first.Error == nil || !strings.Contains(first.Error.Msg, "deactivated") {
		t.Fatalf("first refusal: %+v, want it to name deactivated, the first boolean filter", first.Error)
	}
	for range 30 {
		if a := e.call("GetSipRegistrations", args...); a.Error == nil || a.Error.Msg != first.Error.Msg {
			t.Fatalf("refusal changed between calls: %+v, then %+v", first.Error, a.Error)
		}
	}
}

// TestRepeatedParameterRefused: a parameter given twice is refused, not
// read as its first value with the others dropped (a filter silently
// half-applied); the ';' list is the way to give several.
func TestRepeatedParameterRefused(t *testing.T) {
	e := newEnv(t, demoState(t), Options{})
	a := e.call("GetSipRegistrations", "user_id", "200", "user_id", "203")
	if a.code() != 101 || !strings.Contains(a.Error.Msg, "'user_id' is given 2 times") || !strings.Contains(a.Error.Msg, "200;203") {
		t.Fatalf("answer %+v; want error 101 naming user_id given twice and the ';' list", a.Error)
	}
	mustOK(t, e.call("GetSipRegistrations", "user_id", "200;203"))
}
