package sandbox

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestBindSipRegistration covers every binding rule of docs/management-api.md
// and its choices 1 to 4: each case starts from the demo account, makes one
// call, and checks the answer and exactly which registrations changed.
func TestBindSipRegistration(t *testing.T) {
	none := binding{}
	tests := []struct {
		name    string
		args    []string
		code    int
		changed map[int64]binding // registrations whose binding changes
	}{
		// bind=true sets exactly the target given (choice 1).
		{"bind to a user", []string{"sip_registration_id", "3003", "application_id", "10", "user_id", "202"}, 0,
			map[int64]binding{3003: {10, 0, 202}}},
		{"bind by names, any case, full application name", []string{"sip_registration_id", "3003", "application_name", "SUPPORT.demo.voximplant.com", "user_name", "Carol"}, 0,
			map[int64]binding{3003: {10, 0, 202}}},
		{"bind by short application name and rule name", []string{"sip_registration_id", "3010", "application_name", "support", "rule_name", "after-hours"}, 0,
			map[int64]binding{3010: {10, 101, 0}}},
		{"bind to a rule", []string{"sip_registration_id", "3009", "application_id", "11", "rule_id", "102"}, 0,
			map[int64]binding{3009: {11, 102, 0}}},
		{"bind to an application only", []string{"sip_registration_id", "3005", "application_id", "12"}, 0,
			map[int64]binding{3005: {12, 0, 0}}},
		{"rebind a user's registration to a rule frees the user", []string{"sip_registration_id", "3001", "application_id", "10", "rule_id", "101"}, 0,
			map[int64]binding{3001: {10, 101, 0}}},
		{"rebind without rule or user clears them", []string{"sip_registration_id", "3006", "application_id", "10"}, 0,
			map[int64]binding{3006: {10, 0, 0}}},
		{"rebind to another application", []string{"sip_registration_id", "3002", "application_id", "11", "user_id", "204"}, 0,
			map[int64]binding{3002: {11, 0, 204}}},
		{"binding what is there changes nothing", []string{"sip_registration_id", "3001", "application_id", "10", "user_id", "200"}, 0, nil},
		{"bind=true spelled 1", []string{"sip_registration_id", "3003", "application_id", "10", "bind", "1"}, 0,
			map[int64]binding{3003: {10, 0, 0}}},

		// One registration per user: the previous holder is fully unbound (choice 2).
		{"displacement", []string{"sip_registration_id", "3003", "application_id", "10", "user_id", "200"}, 0,
			map[int64]binding{3003: {10, 0, 200}, 3001: none}},
		{"displacement by user name", []string{"sip_registration_id", "3005", "application_name", "sales", "user_name", "dave"}, 0,
			map[int64]binding{3005: {11, 0, 203}, 3004: none}},
		{"swap a bound registration onto another's user", []string{"sip_registration_id", "3002", "application_id", "10", "user_id", "200"}, 0,
			map[int64]binding{3002: {10, 0, 200}, 3001: none}},

		// Unbind forms (choice 3).
		{"unbind by registration", []string{"sip_registration_id", "3001", "bind", "false"}, 0,
			map[int64]binding{3001: none}},
		{"unbind by registration ignores other parameters", []string{"sip_registration_id", "3007", "application_id", "10", "bind", "false"}, 0,
			map[int64]binding{3007: none}},
		{"unbind an unbound registration", []string{"sip_registration_id", "3003", "bind", "false"}, 0, nil},
		{"unbind spelled 0, any case", []string{"sip_registration_id", "3002", "bind", "FALSE"}, 0,
			map[int64]binding{3002: none}},
		{"unbind by user id alone", []string{"user_id", "200", "bind", "false"}, 0,
			map[int64]binding{3001: none}},
		{"unbind by user name with its application", []string{"application_name", "sales", "user_name", "dave", "bind", "false"}, 0,
			map[int64]binding{3004: none}},
		{"unbind a user that holds nothing", []string{"user_id", "202", "bind", "false"}, 0, nil},
		{"unbind an application skips frozen registrations", []string{"application_id", "11", "bind", "false"}, 0,
			map[int64]binding{3004: none, 3008: none}},
		{"unbind an application by name", []string{"application_name", "support", "bind", "false"}, 0,
			map[int64]binding{3001: none, 3002: none, 3006: none, 3011: none}},
		{"unbind a rule of an application", []string{"application_id", "10", "rule_id", "100", "bind", "false"}, 0,
			map[int64]binding{3006: none}},

		// Argument errors.
		{"458 application id and name", []string{"sip_registration_id", "3003", "application_id", "10", "application_name", "support"}, 458, nil},
		{"458 rule id and name", []string{"sip_registration_id", "3003", "application_id", "10", "rule_id", "100", "rule_name", "inbound-main"}, 458, nil},
		{"458 user id and name", []string{"sip_registration_id", "3003", "application_id", "10", "user_id", "202", "user_name", "carol"}, 458, nil},
		{"458 rule and user", []string{"sip_registration_id", "3003", "application_id", "10", "rule_id", "100", "user_id", "202"}, 458, nil},
		{"458 rule and user on unbind", []string{"sip_registration_id", "3001", "application_id", "10", "rule_id", "100", "user_id", "200", "bind", "false"}, 458, nil},
		{"485 bind without registration", []string{"application_id", "10", "user_id", "202"}, 485, nil},
		{"485 bind without application", []string{"sip_registration_id", "3003", "user_id", "202"}, 485, nil},
		{"485 bind with nothing", nil, 485, nil},
		{"485 unbind with nothing", []string{"bind", "false"}, 485, nil},
		{"485 unbind a rule without application", []string{"rule_id", "100", "bind", "false"}, 485, nil},
		{"485 unbind a user name without application", []string{"user_name", "alice", "bind", "false"}, 485, nil},
		{"101 malformed id", []string{"sip_registration_id", "abc", "application_id", "10"}, 101, nil},
		{"485 zero id counts as absent", []string{"sip_registration_id", "0", "application_id", "10"}, 485, nil},
		{"485 zero application id counts as absent", []string{"sip_registration_id", "3011", "application_id", "0"}, 485, nil},
		{"zero application id beside a name", []string{"sip_registration_id", "3003", "application_id", "0", "application_name", "support"}, 0,
			map[int64]binding{3003: {10, 0, 0}}},
		{"485 zero application id beside a rule", []string{"sip_registration_id", "3003", "application_id", "0", "rule_id", "100"}, 485, nil},
		{"485 unbind by a zero application id", []string{"application_id", "0", "bind", "false"}, 485, nil},
		{"zero rule id counts as absent", []string{"sip_registration_id", "3001", "application_id", "10", "rule_id", "0"}, 0,
			map[int64]binding{3001: {10, 0, 0}}},
		{"485 unbind by a zero user id", []string{"user_id", "0", "bind", "false"}, 485, nil},
		{"101 negative id", []string{"sip_registration_id", "-3", "application_id", "10"}, 101, nil},
		{"101 malformed bind", []string{"sip_registration_id", "3003", "application_id", "10", "bind", "yes"}, 101, nil},

		// Unknown objects (choice 4).
		{"275 unknown registration", []string{"sip_registration_id", "9999", "application_id", "10"}, 275, nil},
		{"275 unknown registration on unbind", []string{"sip_registration_id", "9999", "bind", "false"}, 275, nil},
		{"116 unknown application id", []string{"sip_registration_id", "3003", "application_id", "99"}, 116, nil},
		{"116 unknown application id on unbind", []string{"application_id", "99", "bind", "false"}, 116, nil},
		{"558 unknown application name", []string{"sip_registration_id", "3003", "application_name", "nope"}, 558, nil},
		{"558 application of another account", []string{"sip_registration_id", "3003", "application_name", "support.other.voximplant.com"}, 558, nil},
		{"147 unknown rule", []string{"sip_registration_id", "3003", "application_id", "10", "rule_id", "999"}, 147, nil},
		{"147 rule of another application", []string{"sip_registration_id", "3003", "application_id", "10", "rule_id", "102"}, 147, nil},
		{"156 unknown rule name", []string{"sip_registration_id", "3003", "application_id", "10", "rule_name", "nope"}, 156, nil},
		{"156 rule name of another application", []string{"sip_registration_id", "3003", "application_id", "10", "rule_name", "fax-in"}, 156, nil},
		{"117 unknown user", []string{"sip_registration_id", "3003", "application_id", "10", "user_id", "999"}, 117, nil},
		{"117 unknown user on unbind", []string{"user_id", "999", "bind", "false"}, 117, nil},
		{"117 unknown user name", []string{"sip_registration_id", "3003", "application_id", "10", "user_name", "zed"}, 117, nil},
		{"393 user of another application", []string{"sip_registration_id", "3003", "application_id", "10", "user_id", "203"}, 393, nil},
		{"393 user name of another application", []string{"sip_registration_id", "3003", "application_id", "10", "user_name", "dave"}, 393, nil},
		{"393 unbind a user of another application", []string{"application_id", "12", "user_id", "200", "bind", "false"}, 393, nil},

		// Frozen registrations are never written (choice 4).
		{"496 bind a frozen registration", []string{"sip_registration_id", "3012", "application_id", "11", "rule_id", "102"}, 496, nil},
		{"496 unbind a frozen registration", []string{"sip_registration_id", "3012", "bind", "false"}, 496, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := demoState(t)
			before := bindings(st)
			e := newEnv(t, st, Options{})
			a := e.call("BindSipRegistration", tt.args...)
			if a.code() != tt.code {
				t.Fatalf("code %d (%+v), want %d", a.code(), a.Error, tt.code)
			}
			if tt.code == 0 && string(a.Result) != "1" {
				t.Errorf("result %s, want 1", a.Result)
			}
			if tt.code != 0 && a.Error.Msg == "" {
				t.Errorf("error %d without a message", tt.code)
			}
			// The server works on a copy: st is as it was.
			if diff := cmp.Diff(before, bindings(st)); diff != "" {
				t.Errorf("the state given to New changed (-before +after):\n%s", diff)
			}
			want := maps.Clone(before)
			maps.Copy(want, tt.changed)
			after := e.srv.State()
			if diff := cmp.Diff(want, bindings(after)); diff != "" {
				t.Errorf("bindings (-want +got):\n%s", diff)
			}
			if err := after.Validate(); err != nil {
				t.Errorf("state no longer valid: %v", err)
			}
			if got := e.srv.Stats().Writes; got != int64(min(len(tt.changed), 1)) {
				t.Errorf("%d writes counted, want %d", got, min(len(tt.changed), 1))
			}
		})
	}
}

// TestFrozenUnboundIsNotWritten: a frozen registration that is unbound is
// not bound either (496), by id, and nothing changes.
func TestFrozenUnboundIsNotWritten(t *testing.T) {
	st := demoState(t)
	i := slices.IndexFunc(st.Registrations, func(r Registration) bool { return r.ID == 3003 })
	if i < 0 || st.Registrations[i].ApplicationID != 0 {
		t.Fatalf("the demo's registration 3003 is not there, or not unbound")
	}
	st.Registrations[i].Deactivated = true
	e := newEnv(t, st, Options{})
	if a := e.call("BindSipRegistration", "sip_registration_id", "3003", "application_id", "10"); a.code() != 496 {
		t.Errorf("bind a frozen unbound registration: code %d (%+v), want 496", a.code(), a.Error)
	}
	if diff := cmp.Diff(bindings(st), bindings(e.srv.State())); diff != "" {
		t.Errorf("bindings changed (-before +after):\n%s", diff)
	}
}

func TestFrozenMessageSaysDeactivated(t *testing.T) {
	e := newEnv(t, demoState(t), Options{})
	a := e.call("BindSipRegistration", "sip_registration_id", "3012", "bind", "false")
	if a.code() != 496 || !strings.Contains(a.Error.Msg, "deactivated") || !strings.Contains(a.Error.Msg, "3012") {
		t.Errorf("error %+v; want 496 saying registration 3012 is deactivated", a.Error)
	}
}

func TestBindUpdatesLastUpdatedAndNames(t *testing.T) {
	e := newEnv(t, demoState(t), Options{})
	mustOK(t, e.call("BindSipRegistration", "sip_registration_id", "3003", "application_id", "10", "user_id", "200"))
	rows := decode[[]sipRegistrationType](t, e.call("GetSipRegistrations", "sip_username", "a"))
	byID := map[int64]sipRegistrationType{}
	for _, r := range rows {
		byID[r.ID] = r
	}
	carol, alice := byID[3003], byID[3001]
	if carol.UserName != "alice" || carol.ApplicationName != "support.demo.voximplant.com" || carol.LastUpdated <= demoLastUpdated {
		t.Errorf("3003 after bind: %+v", carol)
	}
	if alice.ApplicationID != 0 || alice.UserID != 0 || alice.ApplicationName != "" || alice.LastUpdated <= demoLastUpdated {
		t.Errorf("3001 after losing its user: %+v", alice)
	}
}
