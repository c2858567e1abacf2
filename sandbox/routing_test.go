package sandbox

import (
	"io"
	"net/http"
	"net/url"
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
