package sandbox

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// request builds one authenticated urlencoded POST for ServeHTTP.
func (e *env) request(method string, form url.Values) *http.Request {
	req := httptest.NewRequest(http.MethodPost, "/platform_api/"+method, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+e.token)
	return req
}

func serveOK(b *testing.B, h http.Handler, req *http.Request) {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusOK || strings.Contains(w.Body.String(), `"error"`) {
		b.Fatalf("HTTP %d: %s", w.Code, w.Body)
	}
}

// BenchmarkGetSipRegistrationsPage reads one page of 1000 rows out of
// 10,000 registrations: authentication, filtering and JSON encoding.
func BenchmarkGetSipRegistrationsPage(b *testing.B) {
	e := newEnv(b, bigState(b, 10000), Options{})
	form := url.Values{"count": {"1000"}, "offset": {"5000"}}
	for b.Loop() {
		serveOK(b, e.srv, e.request("GetSipRegistrations", form))
	}
}

// BenchmarkBind binds registrations of a 10,000-registration account to
// users in turn, in memory, from parallel goroutines.
func BenchmarkBind(b *testing.B) {
	e := newEnv(b, bigState(b, 10000), Options{})
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			form := url.Values{
				"sip_registration_id": {strconv.Itoa(10000 + i%10000)},
				"application_id":      {"10"},
				"user_id":             {strconv.Itoa(200 + i%3)},
			}
			serveOK(b, e.srv, e.request("BindSipRegistration", form))
		}
	})
}

// BenchmarkBindSaved is BenchmarkBind on the demo account saved to a file:
// each change is an atomic write with fsync.
func BenchmarkBindSaved(b *testing.B) {
	data, _ := demoState(b).Marshal()
	path := filepath.Join(b.TempDir(), "account.json")
	os.WriteFile(path, data, 0o644)
	srv, err := Open(path, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	e := newEnv(b, demoState(b), Options{})
	i := 0
	for b.Loop() {
		i++
		form := url.Values{"sip_registration_id": {strconv.Itoa(3003 + i%2*2)}, "application_id": {"10"}, "user_id": {"202"}}
		serveOK(b, srv, e.request("BindSipRegistration", form))
	}
}
