package voximplant

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// rowsServer answers every list method from rows: the raw JSON rows of
// each method, in pages of pageCap, with total_count when withTotal.
func rowsServer(t *testing.T, rows map[string][]string, pageCap int, withTotal bool) *Client {
	t.Helper()
	f := newFakeServer(t)
	f.fault = func(_ int64, method string, w http.ResponseWriter, r *http.Request) bool {
		all, ok := rows[method]
		if !ok {
			return false
		}
		offset, count := int(formInt(r, "offset")), min(int(formInt(r, "count")), pageCap)
		page := []json.RawMessage{}
		for i := offset; i < len(all) && i < offset+count; i++ {
			page = append(page, json.RawMessage(all[i]))
		}
		out := map[string]any{"result": page, "count": len(page)}
		if withTotal {
			out["total_count"] = len(all)
		}
		writeJSON(w, out)
		return true
	}
	c, _ := testClient(t, f, nil)
	return c
}

// readList reads one list method of c by name.
func readList(c *Client, method string) error {
	ctx := context.Background()
	var err error
	switch method {
	case "GetSipRegistrations":
		_, err = c.GetSipRegistrations(ctx)
	case "GetApplications":
		_, err = c.GetApplications(ctx)
	case "GetRules":
		_, err = c.GetRules(ctx, 7)
	case "GetUsers":
		_, err = c.GetUsers(ctx, 7)
	case "GetChildrenAccounts":
		_, err = c.GetChildrenAccounts(ctx)
	default:
		panic(method)
	}
	return err
}

// TestListRowWithoutID: a row of any list without a positive id (null, the
// id missing, 0, negative) fails the whole read, naming the method, the id
// field and where the row was, whether it is on the first page or a later
// one, read one after the other or concurrently. Before, such rows were
// kept (id 0 reached BindSipRegistration, export wrote an entry without a
// registration) and several of them collapsed into one.
func TestListRowWithoutID(t *testing.T) {
	good := map[string]func(i int) string{
		"GetSipRegistrations": func(i int) string {
			return `{"sip_registration_id": ` + itoa(100+i) + `, "sip_username": "u` + itoa(i) + `", "proxy": "pbx.example.com"}`
		},
		"GetApplications": func(i int) string {
			return `{"application_id": ` + itoa(100+i) + `, "application_name": "a` + itoa(i) + `.acme.voximplant.com"}`
		},
		"GetRules": func(i int) string {
			return `{"rule_id": ` + itoa(100+i) + `, "rule_name": "r` + itoa(i) + `", "application_id": 7}`
		},
		"GetUsers": func(i int) string {
			return `{"user_id": ` + itoa(100+i) + `, "user_name": "u` + itoa(i) + `"}`
		},
		"GetChildrenAccounts": func(i int) string {
			return `{"account_id": ` + itoa(100+i) + `, "account_name": "c` + itoa(i) + `"}`
		},
	}
	field := map[string]string{"GetSipRegistrations": "sip_registration_id", "GetApplications": "application_id",
		"GetRules": "rule_id", "GetUsers": "user_id", "GetChildrenAccounts": "account_id"}
	bad := []struct{ name, row, has string }{
		{"null row", `null`, "has none"},
		{"id missing", `{"sip_username": "x", "application_name": "x", "rule_name": "x", "user_name": "x", "account_name": "x"}`, "has none"},
		{"id 0", `{"sip_registration_id": 0, "application_id": 0, "rule_id": 0, "user_id": 0, "account_id": 0}`, "has none"},
		{"id negative", `{"sip_registration_id": -7, "application_id": -7, "rule_id": -7, "user_id": -7, "account_id": -7}`, "has -7"},
	}
	for method, row := range good {
		for _, b := range bad {
			for _, withTotal := range []bool{false, true} {
				name := method + "/" + b.name
				if withTotal {
					name += "/total_count"
				}
				t.Run(name, func(t *testing.T) {
					// 7 rows in pages of 3; the bad one is row 2 of the
					// page at offset 3.
					var rows []string
					for i := range 7 {
						if i == 4 {
							rows = append(rows, b.row)
						} else {
							rows = append(rows, row(i))
						}
					}
					c := rowsServer(t, map[string][]string{method: rows}, 3, withTotal)
					err := readList(c, method)
					want := method + ": a row without a positive " + field[method] + " (row 2 of the page at offset 3 " + b.has + "): the endpoint's answer is not what the Management API sends"
					if err == nil || !strings.Contains(err.Error(), want) {
						t.Errorf("error %v\nwant it to contain %q", err, want)
					}
				})
			}
		}
	}
}

// TestListRepeatedRows: a row listed twice in the same form is kept once (a
// server may repeat rows across pages); listed twice with different
// content, the read fails, naming the id and both copies. Before, the
// first copy won silently.
func TestListRepeatedRows(t *testing.T) {
	alice := `{"sip_registration_id": 1, "sip_username": "alice", "proxy": "pbx.example.com"}`
	aliceBound := `{"sip_registration_id": 1, "sip_username": "alice", "proxy": "pbx.example.com", "application_id": 11, "application_name": "sales.acme.voximplant.com", "user_id": 210, "user_name": "dave"}`
	mallory := `{"sip_registration_id": 1, "sip_username": "mallory", "proxy": "evil.example", "application_id": 11}`
	bob := `{"sip_registration_id": 2, "sip_username": "bob", "proxy": "pbx.example.com"}`
	lobby := `{"sip_registration_id": 4, "sip_username": "lobby", "proxy": "pbx.example.com"}`
	for _, tc := range []struct {
		name string
		rows []string
		want string // "": read, 3 registrations
	}{
		{"same copy on the next page", []string{alice, bob, alice, lobby}, ""},
		{"same copy on the same page", []string{alice, alice, bob, lobby}, ""},
		{"bound in the second copy", []string{alice, bob, lobby, aliceBound},
			"GetSipRegistrations: sip_registration_id 1 is listed twice with different content, first alice@pbx.example.com unbound, then alice@pbx.example.com bound to application 11 user 210; the account changed while it was read, or the endpoint's answer is not what the Management API sends"},
		{"another name in the first copy", []string{mallory, bob, alice, lobby},
			"sip_registration_id 1 is listed twice with different content, first mallory@evil.example bound to application 11, then alice@pbx.example.com unbound;"},
	} {
		for _, withTotal := range []bool{false, true} {
			name := tc.name
			if withTotal {
				name += "/total_count"
			}
			t.Run(name, func(t *testing.T) {
				c := rowsServer(t, map[string][]string{"GetSipRegistrations": tc.rows}, 2, withTotal)
				regs, err := c.GetSipRegistrations(context.Background())
				if tc.want == "" {
					if err != nil {
						t.Fatal(err)
					}
					var ids []int64
					for _, r := range regs {
						ids = append(ids, r.ID)
					}
					if len(ids) != 3 {
						t.Errorf("registrations %v, want 1, 2 and 4 once each", ids)
					}
					return
				}
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("error %v\nwant it to contain %q", err, tc.want)
				}
			})
		}
	}
	// The other lists name their rows by name.
	c := rowsServer(t, map[string][]string{"GetApplications": {
		`{"application_id": 10, "application_name": "support.acme.voximplant.com"}`,
		`{"application_id": 10, "application_name": "sales.acme.voximplant.com"}`,
	}}, 1000, true)
	_, err := c.GetApplications(context.Background())
	if want := "GetApplications: application_id 10 is listed twice with different content, first support.acme.voximplant.com, then sales.acme.voximplant.com;"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error %v\nwant it to contain %q", err, want)
	}
}

// TestChildrenAccountsListingTheParent: a GetChildrenAccounts answer that
// lists the account acted on as its own child is refused whole (export
// --children wrote the parent's spec as a child's file).
func TestChildrenAccountsListingTheParent(t *testing.T) {
	c := rowsServer(t, map[string][]string{"GetChildrenAccounts": {
		`{"account_id": 200, "account_name": "kid"}`,
		`{"account_id": ` + itoa(testAccount) + `, "account_name": "acme"}`,
	}}, 1000, true)
	children, err := c.GetChildrenAccounts(context.Background())
	want := "GetChildrenAccounts: the answer lists account 1234567 (acme), the account acted on, as its own child: the endpoint's answer is not what the Management API sends"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("children %v, error %v\nwant it to contain %q", children, err, want)
	}
}

func itoa[T int | int64](n T) string { return strconv.FormatInt(int64(n), 10) }
