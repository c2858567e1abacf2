package sandbox

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// testKeys are generated once per test binary: RSA-2048 generation is slow.
var testKeys = sync.OnceValue(func() [2]*rsa.PrivateKey {
	var keys [2]*rsa.PrivateKey
	for i := range keys {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		keys[i] = k
	}
	return keys
})

const testKeyID = "test-key"

// demoState is the demo account accepting testKeys()[0] as testKeyID.
func demoState(t testing.TB) *State {
	t.Helper()
	st, err := DemoState(&testKeys()[0].PublicKey, testKeyID)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// env is a sandbox behind an httptest server and a hand-made client.
type env struct {
	t     testing.TB
	srv   *Server
	ts    *httptest.Server
	token string
}

func newEnv(t testing.TB, st *State, opts Options) *env {
	t.Helper()
	srv := New(st, opts)
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return &env{t: t, srv: srv, ts: ts, token: sign(t, testKeys()[0], testKeyID, jwt.MapClaims{
		"iss": st.Account.ID,
		"iat": time.Now().Unix() - 5,
		"exp": time.Now().Unix() + 3000,
	})}
}

func sign(t testing.TB, key *rsa.PrivateKey, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// answer is any JSON answer of the API.
type answer struct {
	Result     json.RawMessage `json:"result"`
	Count      *int            `json:"count"`
	TotalCount *int            `json:"total_count"`
	Error      *apiError       `json:"error"`
}

func (a answer) code() int {
	if a.Error == nil {
		return 0
	}
	return a.Error.Code
}

// call POSTs an urlencoded form to /platform_api/<method>; args are
// name, value pairs. It fails the test unless the answer is JSON with
// HTTP 200.
func (e *env) call(method string, args ...string) answer {
	e.t.Helper()
	a, err := e.tryCall(method, args...)
	if err != nil {
		e.t.Fatal(err)
	}
	return a
}

// tryCall is call for goroutines other than the test's.
func (e *env) tryCall(method string, args ...string) (answer, error) {
	form := url.Values{}
	for i := 0; i+1 < len(args); i += 2 {
		form.Add(args[i], args[i+1])
	}
	req, err := http.NewRequest(http.MethodPost, e.ts.URL+"/platform_api/"+method, strings.NewReader(form.Encode()))
	if err != nil {
		return answer{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+e.token)
	return e.tryDo(req)
}

// do sends req and decodes a JSON answer with HTTP 200.
func (e *env) do(req *http.Request) answer {
	e.t.Helper()
	a, err := e.tryDo(req)
	if err != nil {
		e.t.Fatal(err)
	}
	return a
}

func (e *env) tryDo(req *http.Request) (answer, error) {
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return answer{}, fmt.Errorf("%s %s: HTTP %d: %s", req.Method, req.URL.Path, resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return answer{}, fmt.Errorf("Content-Type %q, want application/json", ct)
	}
	var a answer
	if err := json.Unmarshal(body, &a); err != nil {
		return answer{}, fmt.Errorf("answer is not JSON: %v: %s", err, body)
	}
	return a, nil
}

// multipartRequest builds a multipart POST like the Go, Java and PHP
// official clients send.
func (e *env) multipartRequest(path string, args ...string) *http.Request {
	e.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for i := 0; i+1 < len(args); i += 2 {
		mw.WriteField(args[i], args[i+1])
	}
	mw.Close()
	req, err := http.NewRequest(http.MethodPost, e.ts.URL+path, &buf)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+e.token)
	return req
}

// mustOK fails the test unless a is a success.
func mustOK(t testing.TB, a answer) {
	t.Helper()
	if a.Error != nil {
		t.Fatalf("api error %d: %s", a.Error.Code, a.Error.Msg)
	}
}

// decode decodes a's result into v.
func decode[T any](t testing.TB, a answer) T {
	t.Helper()
	mustOK(t, a)
	var v T
	if err := json.Unmarshal(a.Result, &v); err != nil {
		t.Fatalf("result: %v: %s", err, a.Result)
	}
	return v
}

// binding is a registration's target as ids.
type binding struct{ App, Rule, User int64 }

// bindings maps each registration id to its target.
func bindings(st *State) map[int64]binding {
	m := map[int64]binding{}
	for _, r := range st.Registrations {
		m[r.ID] = binding{r.ApplicationID, r.RuleID, r.UserID}
	}
	return m
}
