package sandbox

import (
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestStart(t *testing.T) {
	path := writeState(t)
	r, err := Start(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(r.Endpoint, "http://127.0.0.1:") || !strings.HasSuffix(r.Endpoint, "/platform_api/") {
		t.Errorf("endpoint %q", r.Endpoint)
	}
	c := r.Credentials
	if c.AccountID != DemoAccountID || c.Validate() != nil {
		t.Errorf("credentials %v: %v", c, c.Validate())
	}
	now := time.Now().Unix()
	e := &env{t: t, srv: r.Server, token: sign(t, c.PrivateKey, c.KeyID, jwt.MapClaims{"iss": c.AccountID, "iat": now, "exp": now + 60})}
	req, _ := http.NewRequest(http.MethodPost, r.Endpoint+"BindSipRegistration?sip_registration_id=3003&application_id=10", nil)
	req.Header.Set("Authorization", "Bearer "+e.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if _, err := Open(path, Options{}); err == nil {
		t.Error("the state file is not locked while Start runs")
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if bindings(st)[3003] != (binding{10, 0, 0}) {
		t.Errorf("the bind was not saved: %+v", bindings(st)[3003])
	}
	if len(st.Keys) != 1 || st.Keys[0].KeyID == c.KeyID {
		t.Errorf("the ephemeral key was saved: %+v", st.Keys)
	}
	if _, err := http.Get(r.Endpoint + "GetAccountInfo"); err == nil {
		t.Error("still serving after Close")
	}
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("the lock outlived Close: %v", err)
	}
	s.Close()
}

// TestCloseDoesNotWaitForIdleDials: a connection dialed but never used
// (the client's pool does that) must not hold Close up: Shutdown would
// count it idle only after 5 s and Close would report a timeout.
func TestCloseDoesNotWaitForIdleDials(t *testing.T) {
	r, err := Start(writeState(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(r.Endpoint)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := r.Close(); err != nil {
		t.Fatalf("Close with an idle dial: %v", err)
	}
}
