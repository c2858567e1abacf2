package voximplant

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/voxbind/voxbind/reconcile"
)

// fillServer gives f n rows of every kind; application 7 has the rules
// and users.
func fillServer(f *fakeServer, n int) {
	f.regs, f.apps, f.rules[7], f.users[7] = nil, nil, nil, nil
	for i := range n {
		id := int64(1000 + i)
		f.regs = append(f.regs, SIPRegistration{ID: id, SIPUsername: fmt.Sprintf("u%d", i), Proxy: "pbx.example.com"})
		f.apps = append(f.apps, ApplicationInfo{ID: id, Name: fmt.Sprintf("app%d.acme.voximplant.com", i)})
		f.rules[7] = append(f.rules[7], RuleInfo{ID: id, Name: fmt.Sprintf("rule%d", i), ApplicationID: 7})
		f.users[7] = append(f.users[7], UserInfo{ID: id, Name: fmt.Sprintf("user%d", i)})
	}
}

// TestPagingMatrix reads every list under page caps from 1 to 1000, both
// meanings of the answer's count, with and without total_count, and pages
// that come back shorter than the cap.
func TestPagingMatrix(t *testing.T) {
	for _, n := range []int{0, 1, 57, 80, 1003} { // 80 in pages of 20: a short last page
		for _, pageCap := range []int{1, 3, 20, 999, 1000} {
			if pageCap == 1 && n > 100 {
				continue // one request per row: covered by the smaller lists
			}
			for _, countIsTotal := range []bool{false, true} {
				for _, variant := range []string{"plain", "no total", "short pages"} {
					name := fmt.Sprintf("rows=%d/cap=%d/countIsTotal=%v/%s", n, pageCap, countIsTotal, variant)
					t.Run(name, func(t *testing.T) {
						f := newFakeServer(t)
						fillServer(f, n)
						f.pageCap, f.countIsTotal = pageCap, countIsTotal
						f.noTotal = variant == "no total"
						f.shortPages = variant == "short pages"
						c, _ := testClient(t, f, nil)
						c.log = slog.New(slog.DiscardHandler) // thousands of lines; redaction is tested elsewhere
						checkLists(t, c, f, n)
					})
				}
			}
		}
	}
}

// TestReadRegistrations10kCalls: 10,000 registrations in pages of 1,000,
// without a total, take exactly 11 requests: the 10 pages and the empty
// one that ends the list (BenchmarkReadRegistrations10k measures the same
// read under latency; go test does not run it).
func TestReadRegistrations10kCalls(t *testing.T) {
	f := newFakeServer(t)
	fillServer(f, 10_000)
	f.pageCap = 1000
	c, _ := testClient(t, f, nil)
	c.log = slog.New(slog.DiscardHandler) // one line per request; redaction is tested elsewhere
	regs, err := c.Registrations(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int64]bool{}
	for _, r := range regs {
		seen[r.ID] = true
	}
	if len(regs) != 10_000 || len(seen) != 10_000 {
		t.Errorf("%d registrations (%d different), want 10000", len(regs), len(seen))
	}
	if got := f.calls["GetSipRegistrations"]; got != 11 {
		t.Errorf("%d requests to read 10,000 registrations in pages of 1,000, want 11", got)
	}
}

func checkLists(t *testing.T, c *Client, f *fakeServer, n int) {
	t.Helper()
	ctx := context.Background()
	regs, err := c.Registrations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	apps, err := c.Applications(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rules, err := c.Rules(ctx, 7)
	if err != nil {
		t.Fatal(err)
	}
	users, err := c.Users(ctx, 7)
	if err != nil {
		t.Fatal(err)
	}
	ids := func(get func(i int) int64, m int) []int64 {
		out := make([]int64, m)
		for i := range out {
			out[i] = get(i)
		}
		return out
	}
	want := ids(func(i int) int64 { return int64(1000 + i) }, n)
	for name, got := range map[string][]int64{
		"registrations": ids(func(i int) int64 { return regs[i].ID }, len(regs)),
		"applications":  ids(func(i int) int64 { return apps[i].ID }, len(apps)),
		"rules":         ids(func(i int) int64 { return rules[i].ID }, len(rules)),
		"users":         ids(func(i int) int64 { return users[i].ID }, len(users)),
	} {
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
	}
	if n > 0 && len(users) == n && len(rules) == n && (users[n-1].ApplicationID != 7 || rules[n-1].ApplicationID != 7) {
		t.Errorf("rules and users must carry their application id")
	}
	// Exactly as many requests as the server's pages need, no more.
	withTotal := wantPagedCalls(f, n, !f.noTotal)
	for method, want := range map[string]int{
		"GetSipRegistrations": wantPagedCalls(f, n, false), // never a total
		"GetApplications":     withTotal,
		"GetRules":            withTotal,
		"GetUsers":            withTotal,
	} {
		if got := f.calls[method]; got != want {
			t.Errorf("%s: %d requests for %d rows (page cap %d, short pages %v, total %v), want %d",
				method, got, n, f.pageCap, f.shortPages, method != "GetSipRegistrations" && !f.noTotal, want)
		}
	}
}

// wantPagedCalls is the number of requests that reading n rows from f
// takes, worked out from the fake's own paging rules. Without a total, a
// reader advances by the rows each page returns and stops at the first
// empty page: every page plus one. With a total, it reads the first page,
// then every page at a multiple of the first page's size, then once more
// for each short page's gap; nothing past the total.
func wantPagedCalls(f *fakeServer, n int, total bool) int {
	pageCap := f.pageCap
	if pageCap == 0 {
		pageCap = 1000
	}
	pageCap = min(pageCap, 1000) // the client asks for 1000
	rowsAt := func(offset int) int {
		size := pageCap
		if f.shortPages && pageCap > 1 && (offset/pageCap)%2 == 1 {
			size = pageCap/2 + 1
		}
		return max(0, min(size, n-offset))
	}
	if !total || n == 0 {
		calls := 1
		for off := 0; rowsAt(off) > 0; off += rowsAt(off) {
			calls++
		}
		return calls
	}
	calls := 0
	for off := 0; off < n; off += pageCap {
		calls++
		if rowsAt(off) < min(pageCap, n-off) {
			calls++ // the gap a short page leaves
		}
	}
	return calls
}

func TestPagingConcurrentWithTotal(t *testing.T) {
	f := newFakeServer(t)
	fillServer(f, 2500)
	f.pageCap = 100
	c, trace := testClient(t, f, nil)
	apps, err := c.GetApplications(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(apps) != 2500 {
		t.Fatalf("%d applications, want 2500", len(apps))
	}
	// With total_count known, exactly one request per page: no empty page.
	if got := f.calls["GetApplications"]; got != 25 {
		t.Errorf("%d GetApplications calls, want 25", got)
	}
	if !strings.Contains(trace.String(), `method=GetApplications params="count=1000 offset=2400" `) {
		t.Errorf("pages not stepped by the server's page size:\n%s", trace)
	}
}

// TestPagingOffsetIgnored stops with an error instead of looping forever
// when a server answers every offset with the first page.
func TestPagingOffsetIgnored(t *testing.T) {
	f := newFakeServer(t)
	fillServer(f, 30)
	f.pageCap = 10
	f.fault = func(_ int64, method string, w http.ResponseWriter, r *http.Request) bool {
		if method == "GetSipRegistrations" {
			writeJSON(w, map[string]any{"result": f.regs[:10], "count": 10})
			return true
		}
		return false
	}
	c, _ := testClient(t, f, nil)
	_, err := c.GetSipRegistrations(context.Background())
	if err == nil || !strings.Contains(err.Error(), "does not honour offset") {
		t.Errorf("error %v", err)
	}
}

// TestPagingListChanges reads a list whose total grows between pages: no
// row is lost or doubled.
func TestPagingListGrows(t *testing.T) {
	f := newFakeServer(t)
	fillServer(f, 50)
	f.pageCap = 10
	f.fault = func(n int64, method string, _ http.ResponseWriter, _ *http.Request) bool {
		if n == 2 { // after the first page: a row appears at the end
			f.mu.Lock()
			f.apps = append(f.apps, ApplicationInfo{ID: 5000, Name: "late.acme.voximplant.com"})
			f.mu.Unlock()
		}
		return false
	}
	c, _ := testClient(t, f, func(o *Options) {})
	apps, err := c.GetApplications(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int64]int{}
	for _, a := range apps {
		seen[a.ID]++
	}
	for id, k := range seen {
		if k > 1 {
			t.Errorf("application %d listed %d times", id, k)
		}
	}
	if len(seen) < 50 {
		t.Errorf("%d applications, want at least the 50 that were there throughout", len(seen))
	}
}

func TestRegistrationMapping(t *testing.T) {
	f := newFakeServer(t)
	f.regs = []SIPRegistration{
		{ID: 1, SIPUsername: "alice", Proxy: "pbx.example.com"},
		{ID: 2, SIPUsername: "bob", Proxy: "pbx.example.com", Deactivated: true, ApplicationID: 77, ApplicationName: "support.acme.voximplant.com", UserID: 9, UserName: "bob"},
		{ID: 3, SIPUsername: "fax", Proxy: "pbx.example.com", ApplicationID: 77, ApplicationName: "support.acme.voximplant.com", RuleID: 5, RuleName: "inbound"},
	}
	c, _ := testClient(t, f, nil)
	got, err := c.Registrations(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	support := reconcile.Ref{ID: 77, Name: "support.acme.voximplant.com"}
	want := []reconcile.Registration{
		{RegistrationRef: reconcile.RegistrationRef{ID: 1, SIPUsername: "alice", Proxy: "pbx.example.com"}},
		{RegistrationRef: reconcile.RegistrationRef{ID: 2, SIPUsername: "bob", Proxy: "pbx.example.com"}, Deactivated: true,
			Target: &reconcile.Target{Application: support, User: &reconcile.Ref{ID: 9, Name: "bob"}}},
		{RegistrationRef: reconcile.RegistrationRef{ID: 3, SIPUsername: "fax", Proxy: "pbx.example.com"},
			Target: &reconcile.Target{Application: support, Rule: &reconcile.Ref{ID: 5, Name: "inbound"}}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Registrations (-want +got):\n%s", diff)
	}
}

// TestInfoAccountState: Info reads the account's state from
// GetAccountInfo's active and frozen; a field left out is active, not
// frozen; frozen wins over inactive.
func TestInfoAccountState(t *testing.T) {
	for _, tt := range []struct {
		fields map[string]any
		want   string
	}{
		{nil, ""},
		{map[string]any{"active": true, "frozen": false}, ""},
		{map[string]any{"frozen": true}, reconcile.AccountFrozen},
		{map[string]any{"active": false}, reconcile.AccountInactive},
		{map[string]any{"active": false, "frozen": true}, reconcile.AccountFrozen},
	} {
		f := newFakeServer(t)
		f.accountState = tt.fields
		c, _ := testClient(t, f, nil)
		info, err := c.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if info.State != tt.want {
			t.Errorf("%v: state %q, want %q", tt.fields, info.State, tt.want)
		}
	}
}

// TestReadsSendNoNames: every read lists all rows and leaves name matching
// to the caller, so the API's fragment filters are never used.
func TestReadsSendNoNames(t *testing.T) {
	f := newFakeServer(t)
	fillServer(f, 3)
	c, _ := testClient(t, f, nil)
	checkLists(t, c, f, 3)
	for _, form := range f.forms {
		if strings.Contains(form, "_name=") {
			t.Errorf("a read filtered by name: %s", form)
		}
	}
}

// TestPagingErrorStopsAll: a page that fails for good fails the whole
// list, names the method, and the other pages stop.
func TestPagingErrorStopsAll(t *testing.T) {
	f := newFakeServer(t)
	fillServer(f, 100)
	f.pageCap = 10
	var requests atomic.Int64
	f.fault = func(_ int64, method string, w http.ResponseWriter, r *http.Request) bool {
		requests.Add(1)
		switch r.PostForm.Get("offset") {
		case "0":
		case "30":
			apiError(w, 116, "Invalid application_id")
			return true
		default:
			// The other pages answer only once the client gives up on
			// them (or, if it never does, after a long while).
			select {
			case <-r.Context().Done():
				return true
			case <-time.After(30 * time.Second):
			}
		}
		return false
	}
	c, _ := testClient(t, f, nil)
	_, err := c.GetUsers(context.Background(), 7)
	if err == nil || !strings.Contains(err.Error(), "read users of application 7: GetUsers: api error 116: Invalid application_id") {
		t.Fatalf("error %v", err)
	}
	// The first page, then at most the 4 pages in flight when one failed;
	// without cancellation all 10 pages would be asked for.
	if n := requests.Load(); n > 5 {
		t.Errorf("%d pages asked for, want at most 5: the failure did not stop the others", n)
	}
}

// TestPagingShortLastPage: with a total, a last page that comes back
// shorter than the first is not the end of the list: the rest is read
// one page at a time, up to the total.
func TestPagingShortLastPage(t *testing.T) {
	f := newFakeServer(t)
	fillServer(f, 80)
	f.pageCap, f.shortPages = 20, true // pages at 0, 20, 40, 60: 20, 11, 20, 11 rows
	c, _ := testClient(t, f, nil)
	apps, err := c.Applications(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(apps) != 80 || apps[79].ID != 1079 {
		t.Errorf("%d applications, want 80", len(apps))
	}
	// The 4 pages at multiples of 20, the gap after the page at 20, and
	// the rows after the short page at 60.
	if got := f.calls["GetApplications"]; got != 6 {
		t.Errorf("%d GetApplications calls, want 6", got)
	}
}

// TestPagingShortLastPageThenEmpty: a list that shrinks after its pages
// were counted ends at the first empty page, without an error, as it does
// without a total.
func TestPagingShortLastPageThenEmpty(t *testing.T) {
	f := newFakeServer(t)
	fillServer(f, 30)
	f.pageCap = 20
	f.fault = func(_ int64, method string, w http.ResponseWriter, r *http.Request) bool {
		if r.PostForm.Get("offset") == "20" { // 10 rows were deleted since the first page
			writeJSON(w, map[string]any{"result": f.apps[20:25], "total_count": 30})
			return true
		}
		if r.PostForm.Get("offset") == "25" {
			writeJSON(w, map[string]any{"result": []any{}, "total_count": 25})
			return true
		}
		return false
	}
	c, _ := testClient(t, f, nil)
	apps, err := c.Applications(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(apps) != 25 {
		t.Errorf("%d applications, want the 25 still there", len(apps))
	}
}

// TestPagingEmptyFirstPageWithTotal: a first page without rows whose
// total_count says there are some is an answer that contradicts itself;
// the read fails instead of returning an empty list.
func TestPagingEmptyFirstPageWithTotal(t *testing.T) {
	f := newFakeServer(t)
	f.fault = func(_ int64, _ string, w http.ResponseWriter, _ *http.Request) bool {
		writeJSON(w, map[string]any{"result": []any{}, "total_count": 5})
		return true
	}
	c, _ := testClient(t, f, nil)
	apps, err := c.Applications(context.Background())
	if err == nil || !strings.Contains(err.Error(), "GetApplications: the first page has no rows, but its total_count says 5") {
		t.Errorf("%d applications, error %v; want the contradiction told", len(apps), err)
	}
}

// TestPagingImplausibleTotal: a total_count past the bound, or below
// zero, is refused after the first page, not read as the list's size
// nor taken for a list without a total.
func TestPagingImplausibleTotal(t *testing.T) {
	for total, want := range map[int64]string{
		1 << 40: "GetApplications: implausible total_count 1099511627776 (more than 2000000 rows)",
		-5:      "GetApplications: implausible total_count -5 (a count of rows is never negative)",
	} {
		f := newFakeServer(t)
		f.fault = func(_ int64, _ string, w http.ResponseWriter, r *http.Request) bool {
			rows := []any{map[string]any{"application_id": 1}} // one application, and the total
			if r.FormValue("offset") != "0" {
				rows = []any{}
			}
			writeJSON(w, map[string]any{"result": rows, "total_count": total})
			return true
		}
		c, _ := testClient(t, f, nil)
		if apps, err := c.GetApplications(context.Background()); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("total_count %d: %d applications, error %v; want %q", total, len(apps), err, want)
		}
	}
}

// TestPagingReport: the client records how the server paged, for
// 'voxbind doctor' to report: the largest page, and what count meant.
func TestPagingReport(t *testing.T) {
	for _, tt := range []struct {
		name         string
		countIsTotal bool
		want         Paging
	}{
		// 700 registrations in pages of 300: 300, 300, 100, then an empty
		// page; 700 applications in 3 pages with total_count.
		{"count is the page", false, Paging{Asked: 1000, LargestPage: 300, Pages: 7, CountIsPage: 7}},
		{"count is the total", true, Paging{Asked: 1000, LargestPage: 300, Pages: 7, CountIsTotal: 3, CountOther: 4}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeServer(t)
			fillServer(f, 700)
			f.pageCap, f.countIsTotal = 300, tt.countIsTotal
			c, _ := testClient(t, f, nil)
			ctx := context.Background()
			if _, err := c.Registrations(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Applications(ctx); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, c.Paging()); diff != "" {
				t.Errorf("Paging (-want +got):\n%s", diff)
			}
		})
	}
}

// TestReadOnlyClientNeverBinds: a read-only client refuses
// BindSipRegistration without sending anything.
func TestReadOnlyClientNeverBinds(t *testing.T) {
	f := newFakeServer(t)
	fillServer(f, 3)
	c, _ := testClient(t, f, func(o *Options) { o.ReadOnly = true })
	err := c.Bind(context.Background(), 1000, &reconcile.Target{Application: reconcile.Ref{ID: 1000}})
	if err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("Bind = %v, want a read-only refusal", err)
	}
	if n := f.n.Load(); n != 0 {
		t.Errorf("the server got %d requests", n)
	}
}

// TestMembersErrorNamesTheApplicationOnce: a failed read of an
// application's rules or users, through reconcile, names the application
// once, with its name.
func TestMembersErrorNamesTheApplicationOnce(t *testing.T) {
	for _, method := range []string{"GetRules", "GetUsers"} {
		f := newFakeServer(t)
		f.fault = func(_ int64, m string, w http.ResponseWriter, _ *http.Request) bool {
			if m != method {
				return false
			}
			apiError(w, 116, "Invalid application_id")
			return true
		}
		c, _ := testClient(t, f, nil)
		cur := &reconcile.Current{Applications: []reconcile.Application{{ID: 7, Name: "support.acme.voximplant.com"}},
			Rules: map[int64][]reconcile.Rule{}, Users: map[int64][]reconcile.User{}}
		err := reconcile.ObserveMembers(context.Background(), c, cur)
		what := map[string]string{"GetRules": "rules", "GetUsers": "users"}[method]
		want := "read " + what + " of application 7 (support.acme.voximplant.com): " + method + ": api error 116: Invalid application_id"
		if err == nil || err.Error() != want {
			t.Errorf("%s: error %v\nwant  %s", method, err, want)
		}
	}
}
