package sandbox

import (
	"maps"
	"slices"
	"sort"
	"strings"
)

// methodParams are the parameters of one method: those it honours, and
// those that are about something the sandbox does not model (with what
// that is).
type methodParams struct {
	honoured   []string
	unmodelled map[string]string
}

// documented lists, for each method the sandbox serves, every parameter
// that Voximplant's official clients (apiclient-nodejs, apiclient-go)
// document for it. A parameter is honoured, or refused with error 101 as
// soon as it asks for something the sandbox does not model (a flag set to
// false asks for nothing and is accepted). A parameter documented nowhere
// is refused too: a misspelt filter must never silently match every row.
var documented = map[string]methodParams{
	"GetAccountInfo": {
		unmodelled: map[string]string{"return_live_balance": "live balances"},
	},
	"GetSipRegistrations": {
		honoured: []string{"sip_registration_id", "sip_username", "deactivated", "successful", "is_persistent",
			"application_id", "application_name", "is_bound_to_application", "rule_id", "rule_name",
			"user_id", "user_name", "proxy", "in_progress", "status_code", "count", "offset"},
	},
	"GetApplications": {
		honoured:   []string{"application_id", "application_name", "with_rules", "count", "offset"},
		unmodelled: map[string]string{"with_scenarios": "scenarios"},
	},
	"GetRules": {
		honoured: []string{"application_id", "application_name", "rule_id", "rule_name", "video_conference", "count", "offset"},
		unmodelled: map[string]string{
			"attached_key_id": "service accounts attached to rules",
			"template":        "rule pattern templates",
			"with_scenarios":  "scenarios",
		},
	},
	"GetUsers": {
		honoured: []string{"application_id", "application_name", "user_id", "user_name", "user_active",
			"user_display_name", "count", "offset", "order_by"},
		unmodelled: map[string]string{
			"skill_id":              "ACD skills",
			"excluded_skill_id":     "ACD skills",
			"showing_skill_id":      "ACD skills",
			"with_skills":           "ACD skills",
			"acd_queue_id":          "ACD queues",
			"excluded_acd_queue_id": "ACD queues",
			"with_queues":           "ACD queues",
			"acd_status":            "ACD operator statuses",
			"return_live_balance":   "live balances",
		},
	},
	"GetChildrenAccounts": {
		honoured: []string{"child_account_id", "child_account_name", "child_account_email", "active", "frozen",
			"ignore_invalid_accounts", "brief_output", "medium_output", "count", "offset", "order_by"},
		unmodelled: map[string]string{"return_live_balance": "live balances"},
	},
	"BindSipRegistration": {
		honoured: []string{"sip_registration_id", "application_id", "application_name", "rule_id", "rule_name",
			"user_id", "user_name", "bind"},
	},
}

// checkParams refuses (101) a parameter that method does not take and one
// that asks for something the sandbox does not model. Empty values count
// as absent (the official Go client sends some parameters empty), as do
// ids of 0 (params.given), and so does cmd, which names the method.
func checkParams(method string, p params) *apiError {
	doc := documented[method]
	names := make([]string, 0, len(p.v))
	for name := range p.v {
		names = append(names, name)
	}
	sort.Strings(names) // the same parameter is named first every time
	for _, name := range names {
		if n := len(p.v[name]); n > 1 {
			// The API reads one value per parameter: taking the first
			// and dropping the others would ignore a filter silently.
			return errorf(101, "invalid arguments: '%s' is given %d times in %s; give it once (a parameter that takes a list takes one value such as 200;203)", name, n, method)
		}
		if name == "cmd" || !p.given(name) || slices.Contains(doc.honoured, name) {
			continue
		}
		if what, ok := doc.unmodelled[name]; ok {
			if on, given, _ := p.boolean(name, false); flagLike(name) && given && !on {
				continue // a switch turned off asks for nothing
			}
			return errorf(101, "invalid arguments: the sandbox does not emulate %s, so it cannot honour '%s' in %s; leave it out", what, name, method)
		}
		takes := slices.Sorted(slices.Values(append(slices.Clone(doc.honoured), slices.Collect(maps.Keys(doc.unmodelled))...)))
		return errorf(101, "invalid arguments: %s takes no '%s' parameter; it takes %s", method, name, strings.Join(takes, ", "))
	}
	return nil
}

// flagLike reports whether a parameter is a switch for extra output,
// which asks for nothing when false.
func flagLike(name string) bool {
	return strings.HasPrefix(name, "with_") || strings.HasPrefix(name, "return_")
}
