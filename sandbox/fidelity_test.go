package sandbox

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestGetSipRegistrationsEveryFilter checks each filter that the official
// clients document against the demo account (ids from 3001: alice, bob,
// carol, dave, erin, frontdesk, fax, trunk1, trunk2, lobby, conf, old).
func TestGetSipRegistrationsEveryFilter(t *testing.T) {
	e := newEnv(t, demoState(t), Options{})
	all := []int64{3001, 3002, 3003, 3004, 3005, 3006, 3007, 3008, 3009, 3010, 3011, 3012}
	bound := []int64{3001, 3002, 3004, 3006, 3007, 3008, 3011, 3012}
	tests := []struct {
		name string
		args []string
		want []int64
	}{
		{"user id", []string{"user_id", "200"}, []int64{3001}},
		{"user ids", []string{"user_id", "200;203"}, []int64{3001, 3004}},
		{"any user", []string{"user_id", "any"}, []int64{3001, 3002, 3004}},
		{"user name, exact, any case", []string{"user_name", "BOB"}, []int64{3002}},
		{"user names", []string{"user_name", "alice;dave"}, []int64{3001, 3004}},
		{"a user name fragment is no name", []string{"user_name", "ali"}, []int64{}},
		{"rule id", []string{"rule_id", "102"}, []int64{3008, 3012}},
		{"rule ids", []string{"rule_id", "100;103"}, []int64{3006, 3007}},
		{"any rule", []string{"rule_id", "any"}, []int64{3006, 3007, 3008, 3012}},
		{"rule name", []string{"rule_name", "inbound-main"}, []int64{3006}},
		{"rule names", []string{"rule_name", "fax-in;inbound-sales"}, []int64{3007, 3008, 3012}},
		{"application name, short", []string{"application_name", "fax"}, []int64{3007}},
		{"application names, full and short", []string{"application_name", "support.demo.voximplant.com;FAX"}, []int64{3001, 3002, 3006, 3007, 3011}},
		{"application ids", []string{"application_id", "10;12"}, []int64{3001, 3002, 3006, 3007, 3011}},
		{"any application", []string{"application_id", "any"}, bound},
		{"application_id=0 is no filter", []string{"application_id", "0"}, all},
		{"unsuccessful", []string{"successful", "false"}, []int64{3005, 3009, 3012}},
		{"not persistent", []string{"is_persistent", "false"}, []int64{3010}},
		{"in progress", []string{"in_progress", "true"}, []int64{3005}},
		{"not in progress", []string{"in_progress", "false"}, []int64{3001, 3002, 3003, 3004, 3006, 3007, 3008, 3009, 3010, 3011, 3012}},
		{"status code", []string{"status_code", "403"}, []int64{3009, 3012}},
		{"status code range", []string{"status_code", "400:499"}, []int64{3009, 3012}},
		{"status codes and ranges", []string{"status_code", "100:199;200"}, []int64{3001, 3002, 3003, 3004, 3006, 3007, 3008, 3010, 3011}},
		{"combined", []string{"application_id", "11", "rule_name", "inbound-sales", "deactivated", "false"}, []int64{3008}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows := decode[[]sipRegistrationType](t, e.call("GetSipRegistrations", tt.args...))
			if diff := cmp.Diff(tt.want, regIDs(rows)); diff != "" {
				t.Errorf("ids (-want +got):\n%s", diff)
			}
		})
	}
	for _, bad := range []struct {
		args []string
		code int
	}{
		{[]string{"status_code", "abc"}, 101},
		{[]string{"status_code", "499:400"}, 101},
		{[]string{"rule_id", "100;x"}, 101},
		{[]string{"user_id", "any;200"}, 101},
		{[]string{"sip_registration_id", "any"}, 101},
		{[]string{"successful", "yes"}, 101},
		{[]string{"application_id", "10", "application_name", "support"}, 458},
		{[]string{"rule_id", "100", "rule_name", "fax-in"}, 458},
		{[]string{"user_id", "200", "user_name", "bob"}, 458},
	} {
		if got := e.call("GetSipRegistrations", bad.args...).code(); got != bad.code {
			t.Errorf("%v: code %d, want %d", bad.args, got, bad.code)
		}
	}
}

// TestEveryDocumentedParameterIsHonouredOrRefused: for every parameter
// that Voximplant's official clients (apiclient-nodejs 4.11.0,
// apiclient-go) document for the methods the sandbox serves, a value that
// asks for something either changes the answer or is refused with a
// clear error: never silently ignored, so that a script tested on the
// sandbox cannot act on rows it did not ask for. The list is written out
// here from the official clients, not taken from the sandbox.
// BindSipRegistration's parameters are covered by TestBindSipRegistration.
func TestEveryDocumentedParameterIsHonouredOrRefused(t *testing.T) {
	st := familyState(t)
	off := false
	// A user whose name sorts first and who is inactive, so that order_by
	// and user_active select something.
	st.Users = append(st.Users, UserRecord{ID: 205, ApplicationID: 12, Name: "aaron", Active: &off})
	e := newEnv(t, st, Options{})
	app10 := []string{"application_id", "10"}
	anyChild := []string{"child_account_id", "any"}
	type row struct {
		method, param string
		args, base    []string // base: the same call without the parameter
	}
	with := func(base []string, args ...string) []string { return append(append([]string{}, base...), args...) }
	rows := []row{
		{"GetAccountInfo", "return_live_balance", []string{"return_live_balance", "true"}, nil},

		{"GetSipRegistrations", "sip_registration_id", []string{"sip_registration_id", "3002"}, nil},
		{"GetSipRegistrations", "sip_username", []string{"sip_username", "trunk"}, nil},
		{"GetSipRegistrations", "deactivated", []string{"deactivated", "true"}, nil},
		{"GetSipRegistrations", "successful", []string{"successful", "false"}, nil},
		{"GetSipRegistrations", "is_persistent", []string{"is_persistent", "false"}, nil},
		{"GetSipRegistrations", "application_id", []string{"application_id", "12"}, nil},
		{"GetSipRegistrations", "application_name", []string{"application_name", "fax"}, nil},
		{"GetSipRegistrations", "is_bound_to_application", []string{"is_bound_to_application", "false"}, nil},
		{"GetSipRegistrations", "rule_id", []string{"rule_id", "100"}, nil},
		{"GetSipRegistrations", "rule_name", []string{"rule_name", "fax-in"}, nil},
		{"GetSipRegistrations", "user_id", []string{"user_id", "201"}, nil},
		{"GetSipRegistrations", "user_name", []string{"user_name", "dave"}, nil},
		{"GetSipRegistrations", "proxy", []string{"proxy", "fax.example.net"}, nil},
		{"GetSipRegistrations", "in_progress", []string{"in_progress", "true"}, nil},
		{"GetSipRegistrations", "status_code", []string{"status_code", "403"}, nil},
		{"GetSipRegistrations", "count", []string{"count", "2"}, nil},
		{"GetSipRegistrations", "offset", []string{"offset", "2"}, nil},

		{"GetApplications", "application_id", []string{"application_id", "11"}, nil},
		{"GetApplications", "application_name", []string{"application_name", "sal"}, nil},
		{"GetApplications", "with_rules", []string{"with_rules", "true"}, nil},
		{"GetApplications", "with_scenarios", []string{"with_scenarios", "true"}, nil},
		{"GetApplications", "count", []string{"count", "1"}, nil},
		{"GetApplications", "offset", []string{"offset", "1"}, nil},

		{"GetRules", "application_id", []string{"application_id", "11"}, app10},
		{"GetRules", "application_name", []string{"application_name", "sales"}, app10},
		{"GetRules", "rule_id", with(app10, "rule_id", "101"), app10},
		{"GetRules", "rule_name", with(app10, "rule_name", "hours"), app10},
		{"GetRules", "video_conference", with(app10, "video_conference", "true"), app10},
		{"GetRules", "attached_key_id", with(app10, "attached_key_id", "key-1"), app10},
		{"GetRules", "template", with(app10, "template", "+1*"), app10},
		{"GetRules", "with_scenarios", with(app10, "with_scenarios", "true"), app10},
		{"GetRules", "count", with(app10, "count", "1"), app10},
		{"GetRules", "offset", with(app10, "offset", "1"), app10},

		{"GetUsers", "application_id", []string{"application_id", "11"}, nil},
		{"GetUsers", "application_name", []string{"application_name", "sales"}, nil},
		{"GetUsers", "skill_id", []string{"skill_id", "1"}, nil},
		{"GetUsers", "excluded_skill_id", []string{"excluded_skill_id", "1"}, nil},
		{"GetUsers", "acd_queue_id", []string{"acd_queue_id", "1"}, nil},
		{"GetUsers", "excluded_acd_queue_id", []string{"excluded_acd_queue_id", "1"}, nil},
		{"GetUsers", "user_id", []string{"user_id", "202"}, nil},
		{"GetUsers", "user_name", []string{"user_name", "car"}, nil},
		{"GetUsers", "user_active", []string{"user_active", "false"}, nil},
		{"GetUsers", "user_display_name", []string{"user_display_name", "erin"}, nil},
		{"GetUsers", "with_skills", []string{"with_skills", "true"}, nil},
		{"GetUsers", "with_queues", []string{"with_queues", "true"}, nil},
		{"GetUsers", "acd_status", []string{"acd_status", "ONLINE;READY"}, nil},
		{"GetUsers", "showing_skill_id", []string{"showing_skill_id", "1"}, nil},
		{"GetUsers", "count", []string{"count", "2"}, nil},
		{"GetUsers", "offset", []string{"offset", "2"}, nil},
		{"GetUsers", "order_by", []string{"order_by", "user_name"}, nil},
		{"GetUsers", "return_live_balance", []string{"return_live_balance", "true"}, nil},

		{"GetChildrenAccounts", "child_account_id", []string{"child_account_id", "1000003"}, anyChild},
		{"GetChildrenAccounts", "child_account_name", []string{"child_account_name", "child2"}, anyChild},
		{"GetChildrenAccounts", "child_account_email", []string{"child_account_email", "billing"}, anyChild},
		{"GetChildrenAccounts", "active", with(anyChild, "active", "false"), anyChild},
		{"GetChildrenAccounts", "frozen", with(anyChild, "frozen", "false"), anyChild},
		{"GetChildrenAccounts", "ignore_invalid_accounts", []string{"child_account_id", "1000002;99", "ignore_invalid_accounts", "true"}, []string{"child_account_id", "1000002;99"}},
		{"GetChildrenAccounts", "brief_output", with(anyChild, "brief_output", "true"), anyChild},
		{"GetChildrenAccounts", "medium_output", with(anyChild, "medium_output", "true"), anyChild},
		{"GetChildrenAccounts", "count", with(anyChild, "count", "1"), anyChild},
		{"GetChildrenAccounts", "offset", with(anyChild, "offset", "1"), anyChild},
		{"GetChildrenAccounts", "order_by", with(anyChild, "order_by", "child_account_email"), anyChild},
		{"GetChildrenAccounts", "return_live_balance", with(anyChild, "return_live_balance", "true"), anyChild},
	}
	for _, r := range rows {
		t.Run(r.method+"/"+r.param, func(t *testing.T) {
			got, base := e.call(r.method, r.args...), e.call(r.method, r.base...)
			// A refusal is code 101 naming the parameter; any other error
			// (the one the call without it gives, say) is not a refusal.
			if got.Error != nil {
				if got.Error.Code != 101 || !strings.Contains(got.Error.Msg, r.param) {
					t.Errorf("refused without naming '%s' (code 101): %d %s", r.param, got.Error.Code, got.Error.Msg)
				}
				return
			}
			if sameAnswer(got, base) {
				t.Errorf("'%s' is silently ignored: the answer equals the one without it", r.param)
			}
		})
	}

	// A flag that asks for nothing is accepted even where it is not modelled.
	mustOK(t, e.call("GetUsers", "with_skills", "false", "return_live_balance", "false"))
}

// TestGetUsersOrderByName: order_by=user_name sorts users by name
// whatever its case, as Voximplant does; without it they come in id order.
func TestGetUsersOrderByName(t *testing.T) {
	st := demoState(t)
	st.Users = append(st.Users,
		UserRecord{ID: 206, ApplicationID: 12, Name: "alice"},
		UserRecord{ID: 205, ApplicationID: 12, Name: "Bob"})
	e := newEnv(t, st, Options{})
	names := func(args ...string) []string {
		var out []string
		for _, u := range decode[[]userInfoType](t, e.call("GetUsers", append([]string{"application_id", "12"}, args...)...)) {
			out = append(out, u.Name)
		}
		return out
	}
	if got, want := names("order_by", "user_name"), []string{"alice", "Bob"}; !slices.Equal(got, want) {
		t.Errorf("order_by=user_name: %q, want %q", got, want)
	}
	if got, want := names(), []string{"Bob", "alice"}; !slices.Equal(got, want) {
		t.Errorf("no order_by: %q, want %q (id order)", got, want)
	}
}

func sameAnswer(a, b answer) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

// TestUnknownParametersAreRefused: a misspelt parameter is an error, not
// a filter that matches everything.
func TestUnknownParametersAreRefused(t *testing.T) {
	e := newEnv(t, demoState(t), Options{})
	for _, tt := range []struct{ method, param string }{
		{"GetSipRegistrations", "aplication_id"},
		{"GetUsers", "username"},
		{"BindSipRegistration", "registration_id"},
		{"GetAccountInfo", "account_id"},
	} {
		a := e.call(tt.method, tt.param, "10")
		if a.code() != 101 || !strings.Contains(a.Error.Msg, "'"+tt.param+"'") {
			t.Errorf("%s %s=10: %+v, want error 101 naming the parameter", tt.method, tt.param, a.Error)
		}
	}
	// Empty values are absent (the official Go client sends some empty),
	// and cmd names the method.
	mustOK(t, e.call("GetSipRegistrations", "rule_id", "", "user_name", "", "cmd", "GetSipRegistrations"))
}

// TestGoClientSendsApplicationIDZero: the official Go client always sends
// application_id, 0 when it names the application instead.
func TestGoClientSendsApplicationIDZero(t *testing.T) {
	e := newEnv(t, demoState(t), Options{})
	req := e.multipartRequest("/platform_api/GetRules", "application_id", "0", "application_name", "support")
	rules := decode[[]ruleInfoType](t, e.do(req))
	if got := ids(rules, func(r ruleInfoType) int64 { return r.ID }); !cmp.Equal(got, []int64{100, 101}) {
		t.Errorf("rules %v, want [100 101]", got)
	}
}

// TestZeroIDCountsAsAbsent: every id parameter of every method, set to 0,
// gets the answer and leaves the bindings that leaving it out does (the
// official Go client sends application_id=0 when it names the application).
func TestZeroIDCountsAsAbsent(t *testing.T) {
	calls := []struct {
		method string
		args   []string
	}{
		{"GetAccountInfo", nil},
		{"GetSipRegistrations", nil},
		{"GetSipRegistrations", []string{"application_name", "support"}},
		{"GetApplications", nil},
		{"GetRules", nil},
		{"GetRules", []string{"application_name", "support"}},
		{"GetUsers", nil},
		{"GetUsers", []string{"application_name", "sales"}},
		{"GetChildrenAccounts", nil},
		{"GetChildrenAccounts", []string{"child_account_name", "demo"}},
		{"BindSipRegistration", nil},
		{"BindSipRegistration", []string{"sip_registration_id", "3011"}},
		{"BindSipRegistration", []string{"sip_registration_id", "3003", "application_name", "support"}},
		{"BindSipRegistration", []string{"sip_registration_id", "3003", "application_id", "10"}},
		{"BindSipRegistration", []string{"sip_registration_id", "3003", "rule_id", "100"}},
		{"BindSipRegistration", []string{"sip_registration_id", "3003", "application_name", "support", "rule_name", "after-hours"}},
		{"BindSipRegistration", []string{"sip_registration_id", "3003", "application_name", "support", "user_name", "carol"}},
		{"BindSipRegistration", []string{"bind", "false"}},
		{"BindSipRegistration", []string{"bind", "false", "sip_registration_id", "3001"}},
		{"BindSipRegistration", []string{"bind", "false", "application_name", "support"}},
		{"BindSipRegistration", []string{"bind", "false", "application_id", "10", "rule_id", "100"}},
		{"BindSipRegistration", []string{"bind", "false", "user_id", "200"}},
		{"BindSipRegistration", []string{"bind", "false", "application_name", "sales", "user_name", "dave"}},
	}
	for _, c := range calls {
		doc := documented[c.method]
		params := slices.Concat(doc.honoured, slices.Collect(maps.Keys(doc.unmodelled)))
		slices.Sort(params)
		for _, param := range params {
			if !strings.HasSuffix(param, "_id") || slices.Contains(c.args, param) {
				continue
			}
			t.Run(c.method+" "+strings.Join(c.args, "=")+" "+param, func(t *testing.T) {
				without, with := newEnv(t, familyState(t), Options{}), newEnv(t, familyState(t), Options{})
				want := without.call(c.method, c.args...)
				got := with.call(c.method, append(slices.Clone(c.args), param, "0")...)
				if !sameAnswer(got, want) {
					t.Errorf("with %s=0: %s\nwithout it: %s", param, jsonOf(got), jsonOf(want))
				}
				if diff := cmp.Diff(bindings(without.srv.State()), bindings(with.srv.State())); diff != "" {
					t.Errorf("%s=0 changed other bindings than leaving it out (-without +with):\n%s", param, diff)
				}
			})
		}
	}
}

func jsonOf(a answer) string {
	j, _ := json.Marshal(a)
	return string(j)
}
