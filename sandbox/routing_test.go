package sandbox

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// TestRouting checks every way a method can be named and its parameters
// sent: the path or cmd=, GET query, urlencoded or multipart POST.
func TestRouting(t *testing.T) {
	e := newEnv(t, demoState(t), Options{})
	get := func(path string) *http.Request {
		req, _ := http.NewRequest(http.MethodGet, e.ts.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+e.token)
		return req
	}
	form := func(path string, v url.Values) *http.Request {
		req, _ := http.NewRequest(http.MethodPost, e.ts.URL+path, strings.NewReader(v.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Bearer "+e.token)
		return req
	}
	tests := []struct {
		name string
		req  *http.Request
		want int64 // the one registration id expected; 0: expect an error
		code int
	}{
		{"GET path", get("/platform_api/GetSipRegistrations?sip_registration_id=3002"), 3002, 0},
		{"GET cmd with slash", get("/platform_api/?cmd=GetSipRegistrations&sip_registration_id=3003"), 3003, 0},
		{"GET cmd without slash", get("/platform_api?cmd=GetSipRegistrations&sip_registration_id=3004"), 3004, 0},
		{"POST urlencoded path", form("/platform_api/GetSipRegistrations", url.Values{"sip_registration_id": {"3005"}}), 3005, 0},
		{"POST urlencoded cmd", form("/platform_api", url.Values{"cmd": {"GetSipRegistrations"}, "sip_registration_id": {"3006"}}), 3006, 0},
		{"POST multipart path", e.multipartRequest("/platform_api/GetSipRegistrations", "sip_registration_id", "3007"), 3007, 0},
		{"POST multipart cmd", e.multipartRequest("/platform_api/", "cmd", "GetSipRegistrations", "sip_registration_id", "3008"), 3008, 0},
		{"query and form merged", form("/platform_api/GetSipRegistrations?sip_username=trunk", url.Values{"proxy": {"carrier"}, "is_bound_to_application": {"true"}}), 3008, 0},
		{"unknown method", get("/platform_api/DelAccount"), 0, 101},
		{"unknown cmd", get("/platform_api/?cmd=DelAccount"), 0, 101},
		{"no method", get("/platform_api/"), 0, 101},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := e.do(tt.req)
			if a.code() != tt.code {
				t.Fatalf("code %d (%+v), want %d", a.code(), a.Error, tt.code)
			}
			if tt.code != 0 {
				return
			}
			rows := decode[[]sipRegistrationType](t, a)
			if len(rows) != 1 || rows[0].ID != tt.want {
				t.Fatalf("got %+v, want registration %d only", rows, tt.want)
			}
		})
	}
}

func TestRoutingHTTPErrors(t *testing.T) {
	e := newEnv(t, demoState(t), Options{})
	tests := []struct {
		method, path string
		status       int
	}{
		{http.MethodGet, "/", http.StatusNotFound},
		{http.MethodGet, "/platform_apis/GetAccountInfo", http.StatusNotFound},
		{http.MethodGet, "/platform_api/GetAccountInfo/extra", http.StatusNotFound},
		{http.MethodPut, "/platform_api/GetAccountInfo", http.StatusMethodNotAllowed},
		{http.MethodDelete, "/platform_api/BindSipRegistration", http.StatusMethodNotAllowed},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(tt.method, e.ts.URL+tt.path, nil)
		resp, err := e.ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.status {
			t.Errorf("%s %s: HTTP %d, want %d", tt.method, tt.path, resp.StatusCode, tt.status)
		}
	}
}

// TestUnknownMethodNeedsAuthentication: the method list is not told to
// strangers.
func TestUnknownMethodNeedsAuthentication(t *testing.T) {
	e := newEnv(t, demoState(t), Options{})
	e.token = "x.y.z"
	if got := e.call("DelAccount").code(); got != 447 {
		t.Errorf("code %d, want 447 before the method is looked at", got)
	}
}

// TestRawSemicolonLists: a list joined with a raw ';', as the API's own
// examples put it in the query string, is one value in the query and in
// an urlencoded body alike; '&' still separates parameters, and an
// escaped ';' (%3B) reads the same.
func TestRawSemicolonLists(t *testing.T) {
	for _, failRate := range []float64{0, 1e-9} { // with a fail rate, parameters are read before the fault is picked
		e := newEnv(t, demoState(t), Options{FailRate: failRate})
		raw := func(method, target, body string) *http.Request {
			var rd io.Reader
			if body != "" {
				rd = strings.NewReader(body)
			}
			req, err := http.NewRequest(method, e.ts.URL+target, rd)
			if err != nil {
				t.Fatal(err)
			}
			if body != "" {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			req.Header.Set("Authorization", "Bearer "+e.token)
			return req
		}
		tests := []struct {
			name string
			req  *http.Request
			want []int64 // registrations expected
			code int
		}{
			{"raw query", raw(http.MethodGet, "/platform_api/GetSipRegistrations?user_id=200;201", ""), []int64{3001, 3002}, 0},
			{"raw query with cmd", raw(http.MethodGet, "/platform_api/?cmd=GetSipRegistrations&user_name=alice;BOB", ""), []int64{3001, 3002}, 0},
			{"escaped query", raw(http.MethodGet, "/platform_api/GetSipRegistrations?user_id=200%3B201", ""), []int64{3001, 3002}, 0},
			{"raw body", raw(http.MethodPost, "/platform_api/GetSipRegistrations", "user_id=200;201"), []int64{3001, 3002}, 0},
			{"raw body and raw query", raw(http.MethodPost, "/platform_api/GetSipRegistrations?user_id=200;201;203", "proxy=pbx;nowhere&count=2"), []int64{3001, 3002}, 0},
			{"ampersand still separates", raw(http.MethodGet, "/platform_api/GetSipRegistrations?user_id=200;201&user_name=alice", ""), nil, 458},
			{"a raw ';' in a bad id", raw(http.MethodPost, "/platform_api/GetSipRegistrations", "user_id=200;x"), nil, 101},
			{"bad escape refused", raw(http.MethodGet, "/platform_api/GetSipRegistrations?user_id=%zz", ""), nil, 101},
			{"bad escape in a body refused", raw(http.MethodPost, "/platform_api/GetSipRegistrations", "user_id=%zz;201"), nil, 101},
			{"body over the limit refused", raw(http.MethodPost, "/platform_api/GetSipRegistrations", "proxy="+strings.Repeat(";", maxForm)), nil, 101},
		}
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s fail rate %g", tt.name, failRate), func(t *testing.T) {
				a := e.do(tt.req)
				if a.code() != tt.code {
					t.Fatalf("code %d (%+v), want %d", a.code(), a.Error, tt.code)
				}
				if tt.code != 0 {
					return
				}
				rows := decode[[]sipRegistrationType](t, a)
				if got := ids(rows, func(r sipRegistrationType) int64 { return r.ID }); !slices.Equal(got, tt.want) {
					t.Errorf("registrations %v, want %v", got, tt.want)
				}
			})
		}
	}
}
