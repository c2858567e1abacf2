package voximplant

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/voxbind/voxbind/internal/leakcheck"
)

// testKey is generated once per test binary: RSA generation is slow.
var testKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

const (
	testAccount = 1234567
	testKeyID   = "8c1b5d2e-test-key"
)

func testCredentials() *Credentials {
	return NewCredentials("svc@acme.voximplant.com", testAccount, testKeyID, testKey())
}

// fakeServer is a Management API server for the client's tests: it checks
// JWTs against the public key, serves pages with a configurable cap and
// meaning of count, applies BindSipRegistration as docs/management-api.md
// says, and lets a test inject faults before or after a request is handled.
type fakeServer struct {
	t   *testing.T
	srv *httptest.Server

	// Settings; set before the first request.
	account      int64          // the iss every token must carry
	pageCap      int            // rows per page at most; 0 = 1000
	countIsTotal bool           // answer count = total rows instead of rows in the page
	noTotal      bool           // omit total_count where the API would give it
	shortPages   bool           // every other page returns fewer rows than it could
	accountState map[string]any // fields added to GetAccountInfo's result (active, frozen)
	latency      time.Duration
	// fault runs before a request is handled; true means it answered.
	fault func(n int64, method string, w http.ResponseWriter, r *http.Request) bool
	// after runs after a write was applied, before the answer; true means
	// it answered (or dropped the connection).
	after func(n int64, method string, w http.ResponseWriter, r *http.Request) bool

	mu      sync.Mutex
	regs    []SIPRegistration
	apps    []ApplicationInfo
	rules   map[int64][]RuleInfo
	users   map[int64][]UserInfo
	effects int // writes that changed something
	calls   map[string]int
	forms   []string // every form received, in order
	claims  []jwt.MapClaims
	agents  []string
	n       atomic.Int64
}

func newFakeServer(t *testing.T) *fakeServer {
	f := &fakeServer{t: t, account: testAccount, rules: map[int64][]RuleInfo{}, users: map[int64][]UserInfo{}, calls: map[string]int{}}
	f.srv = httptest.NewServer(receivedTokens.Wrap(http.HandlerFunc(f.serve)))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeServer) endpoint() string { return f.srv.URL + "/platform_api/" }

func (f *fakeServer) serve(w http.ResponseWriter, r *http.Request) {
	n := f.n.Add(1)
	method, ok := strings.CutPrefix(r.URL.Path, "/platform_api/")
	if !ok || r.Method != http.MethodPost {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	if f.latency > 0 {
		time.Sleep(f.latency)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		writeJSON(w, map[string]any{"error": map[string]any{"code": 101, "msg": "bad content type " + ct}})
		return
	}
	if err := r.ParseForm(); err != nil {
		writeJSON(w, map[string]any{"error": map[string]any{"code": 101, "msg": err.Error()}})
		return
	}
	// The body is read: the server now notices a client that goes away.
	if f.fault != nil && f.fault(n, method, w, r) {
		return
	}
	if code, msg := f.auth(r); code != 0 {
		writeJSON(w, map[string]any{"error": map[string]any{"code": code, "msg": msg}})
		return
	}
	f.mu.Lock()
	f.calls[method]++
	f.forms = append(f.forms, method+" "+r.PostForm.Encode())
	f.agents = append(f.agents, r.UserAgent())
	var out any
	switch method {
	case "GetAccountInfo":
		result := map[string]any{"account_id": f.account, "account_name": "acme", "api_key": "not-for-voxbind"}
		for k, v := range f.accountState {
			result[k] = v
		}
		out = map[string]any{"result": result}
	case "GetSipRegistrations":
		out = f.pageOf(r, f.regs, false)
	case "GetApplications":
		out = f.pageOf(r, f.apps, !f.noTotal)
	case "GetRules":
		out = f.pageOf(r, f.rules[formInt(r, "application_id")], !f.noTotal)
	case "GetUsers":
		out = f.pageOf(r, f.users[formInt(r, "application_id")], !f.noTotal)
	case "BindSipRegistration":
		out = f.bind(r)
	default:
		out = map[string]any{"error": map[string]any{"code": 101, "msg": "unknown method " + method}}
	}
	f.mu.Unlock()
	if method == "BindSipRegistration" && f.after != nil && f.after(n, method, w, r) {
		return
	}
	writeJSON(w, out)
}

// auth checks the bearer token as docs/management-api.md says.
func (f *fakeServer) auth(r *http.Request) (int, string) {
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return 100, "Authorization failed"
	}
	claims := jwt.MapClaims{}
	tok, err := jwt.ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
		if t.Header["kid"] != testKeyID {
			return nil, fmt.Errorf("kid %v", t.Header["kid"])
		}
		return &testKey().PublicKey, nil
	}, jwt.WithValidMethods([]string{"RS256"}), jwt.WithIssuedAt(), jwt.WithLeeway(30*time.Second))
	if err != nil || !tok.Valid {
		return 100, "Authorization failed"
	}
	iat, _ := claims.GetIssuedAt()
	exp, _ := claims.GetExpirationTime()
	if iat == nil || exp == nil || exp.Sub(iat.Time) > time.Hour {
		return 454, "Token lifetime too long"
	}
	iss, ok := claims["iss"].(float64) // a JSON number, not a string
	if !ok || int64(iss) != f.account {
		return 100, "Authorization failed"
	}
	f.mu.Lock()
	f.claims = append(f.claims, claims)
	f.mu.Unlock()
	return 0, ""
}

func formInt(r *http.Request, k string) int64 {
	n, _ := strconv.ParseInt(r.PostForm.Get(k), 10, 64)
	return n
}

// pageOf answers one page of rows; count means what countIsTotal says.
func pageOf[T any](f *fakeServer, r *http.Request, rows []T, withTotal bool) map[string]any {
	limit := 20
	if r.PostForm.Has("count") {
		limit = int(formInt(r, "count"))
	}
	cap := f.pageCap
	if cap == 0 {
		cap = 1000
	}
	offset := int(formInt(r, "offset"))
	if f.shortPages && (offset/max(cap, 1))%2 == 1 && cap > 1 {
		cap = cap/2 + 1
	}
	limit = min(limit, cap)
	page := []T{}
	if offset < len(rows) {
		page = slices.Clone(rows[offset:min(len(rows), offset+limit)]) // encoded after the lock is released
	}
	out := map[string]any{"result": page, "count": len(page)}
	if f.countIsTotal {
		out["count"] = len(rows)
	}
	if withTotal {
		out["total_count"] = len(rows)
	}
	return out
}

func (f *fakeServer) pageOf(r *http.Request, rows any, withTotal bool) map[string]any {
	switch rows := rows.(type) {
	case []SIPRegistration:
		return pageOf(f, r, rows, withTotal)
	case []ApplicationInfo:
		return pageOf(f, r, rows, withTotal)
	case []RuleInfo:
		return pageOf(f, r, rows, withTotal)
	case []UserInfo:
		return pageOf(f, r, rows, withTotal)
	}
	panic("pageOf: unknown row type")
}

// bind follows docs/management-api.md for the parameters voxbind sends.
func (f *fakeServer) bind(r *http.Request) map[string]any {
	fail := func(code int, msg string) map[string]any {
		return map[string]any{"error": map[string]any{"code": code, "msg": msg}}
	}
	for _, k := range []string{"application_name", "rule_name", "user_name"} {
		if r.PostForm.Has(k) {
			return fail(101, "voxbind must send ids only, got "+k)
		}
	}
	id := formInt(r, "sip_registration_id")
	i := -1
	for j := range f.regs {
		if f.regs[j].ID == id {
			i = j
		}
	}
	if i < 0 {
		return fail(275, "Invalid sip_registration_id")
	}
	before := f.regs[i]
	reg := &f.regs[i]
	if r.PostForm.Get("bind") == "false" {
		*reg = SIPRegistration{ID: reg.ID, SIPUsername: reg.SIPUsername, Proxy: reg.Proxy}
	} else {
		app := formInt(r, "application_id")
		if app == 0 {
			return fail(485, "Specify the 'application_id' parameter")
		}
		user := formInt(r, "user_id")
		if user != 0 {
			for j := range f.regs {
				if j != i && f.regs[j].UserID == user {
					f.regs[j] = SIPRegistration{ID: f.regs[j].ID, SIPUsername: f.regs[j].SIPUsername, Proxy: f.regs[j].Proxy}
					f.effects++
				}
			}
		}
		*reg = SIPRegistration{ID: reg.ID, SIPUsername: reg.SIPUsername, Proxy: reg.Proxy,
			ApplicationID: app, ApplicationName: fmt.Sprintf("app%d.acme.voximplant.com", app),
			RuleID: formInt(r, "rule_id"), UserID: user}
		if user != 0 {
			reg.UserName = fmt.Sprintf("user%d", user)
		}
	}
	if *reg != before {
		f.effects++
	}
	return map[string]any{"result": 1}
}

func writeJSON(w http.ResponseWriter, v any) {
	var b bytes.Buffer
	if err := json.NewEncoder(&b).Encode(v); err != nil {
		panic(err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b.Bytes())
}

// drop closes the connection without an answer.
func drop(w http.ResponseWriter) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		panic(err)
	}
	conn.Close()
}

// testClient returns a client of f with tracing on; at the end of the test
// the trace is checked for secrets. Backoff is shortened so tests are fast.
func testClient(t *testing.T, f *fakeServer, mod func(*Options)) (*Client, *leakcheck.Sink) {
	t.Helper()
	trace := &leakcheck.Sink{}
	o := Options{Endpoint: f.endpoint(), Credentials: testCredentials(), UserAgent: "voxbind/test",
		Logger: slog.New(slog.NewTextHandler(trace, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if mod != nil {
		mod(&o)
	}
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	c.backoffBase, c.backoffCap = time.Millisecond, 10*time.Millisecond
	t.Cleanup(func() {
		assertNoSecrets(t, "debug trace", trace.String())
		if t.Failed() {
			t.Logf("trace:\n%s", trace.String())
		}
	})
	return c, trace
}

// receivedTokens holds every bearer token a fake server of this test
// binary received.
var receivedTokens leakcheck.Recorder

// assertNoSecrets fails when s holds any token a fake server received (or
// its claims or signature alone), anything shaped like a JWT, or the test
// key in any form (leakcheck).
func assertNoSecrets(t *testing.T, what, s string) {
	t.Helper()
	for _, leak := range leakcheck.Find(s, leakcheck.Secrets{Tokens: receivedTokens.Tokens(), Keys: []*rsa.PrivateKey{testKey()}}) {
		t.Errorf("%s contains a secret: %s", what, leak)
	}
}
