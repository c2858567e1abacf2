package sandbox

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestAuthentication checks the JWT rules of docs/management-api.md, one
// case per rule and code.
func TestAuthentication(t *testing.T) {
	e := newEnv(t, demoState(t), Options{})
	keys := testKeys()
	now := time.Now().Unix()
	claims := func(iss any, iat, exp int64) jwt.MapClaims {
		return jwt.MapClaims{"iss": iss, "iat": iat, "exp": exp}
	}
	good := claims(DemoAccountID, now-5, now+3590)
	hs256, err := jwt.NewWithClaims(jwt.SigningMethodHS256, good).SignedString([]byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	hs256Kid := jwt.NewWithClaims(jwt.SigningMethodHS256, good)
	hs256Kid.Header["kid"] = testKeyID
	hs256WithKid, err := hs256Kid.SignedString([]byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	valid := sign(t, keys[0], testKeyID, good)
	parts := strings.Split(valid, ".")

	tests := []struct {
		name   string
		header string
		want   int
	}{
		{"valid", "Bearer " + valid, 0},
		{"iss as a decimal string", "Bearer " + sign(t, keys[0], testKeyID, claims("1000001", now-5, now+3590)), 0},
		{"iat 30 s ahead is still fine", "Bearer " + sign(t, keys[0], testKeyID, claims(DemoAccountID, now+25, now+3000)), 0},
		{"no header", "", 100},
		{"not bearer", "Basic dXNlcjpwYXNz", 100},
		{"empty bearer", "Bearer ", 100},
		{"garbled", "Bearer not-a-jwt", 447},
		{"two parts", "Bearer " + parts[0] + "." + parts[1], 447},
		{"header not base64", "Bearer !!!." + parts[1] + "." + parts[2], 447},
		{"claims not JSON", "Bearer " + parts[0] + ".bm90IGpzb24." + parts[2], 447},
		{"no exp", "Bearer " + sign(t, keys[0], testKeyID, jwt.MapClaims{"iss": DemoAccountID, "iat": now}), 447},
		{"unknown kid", "Bearer " + sign(t, keys[0], "other-key", good), 433},
		{"no kid", "Bearer " + sign(t, keys[0], "", good), 433},
		{"signed by another key", "Bearer " + sign(t, keys[1], testKeyID, good), 100},
		{"tampered claims", "Bearer " + parts[0] + "." + strings.Split(sign(t, keys[0], testKeyID, claims(42, now-5, now+3590)), ".")[1] + "." + parts[2], 100},
		{"HS256 without kid", "Bearer " + hs256, 433},
		{"HS256 with a known kid", "Bearer " + hs256WithKid, 100},
		{"lifetime too long", "Bearer " + sign(t, keys[0], testKeyID, claims(DemoAccountID, now-5, now+3600)), 454},
		{"issued in the future", "Bearer " + sign(t, keys[0], testKeyID, claims(DemoAccountID, now+120, now+600)), 455},
		{"expired", "Bearer " + sign(t, keys[0], testKeyID, claims(DemoAccountID, now-600, now-10)), 456},
		{"another account", "Bearer " + sign(t, keys[0], testKeyID, claims(1000002, now-5, now+3590)), 100},
		{"iss not a number", "Bearer " + sign(t, keys[0], testKeyID, claims("demo", now-5, now+3590)), 100},
		{"no iss", "Bearer " + sign(t, keys[0], testKeyID, jwt.MapClaims{"iat": now - 5, "exp": now + 3590}), 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, e.ts.URL+"/platform_api/GetAccountInfo", nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.header != "" {
				req.Header.Set("Authorization", tt.header)
			}
			a := e.do(req)
			if a.code() != tt.want {
				t.Fatalf("code %d (%+v), want %d", a.code(), a.Error, tt.want)
			}
			if tt.want != 0 && (a.Error.Msg == "" || a.Result != nil) {
				t.Errorf("error answer %+v has no message or has a result", a)
			}
		})
	}
}

// TestAddedKeyIsAccepted covers the in-process mode's ephemeral key.
func TestAddedKeyIsAccepted(t *testing.T) {
	e := newEnv(t, demoState(t), Options{})
	now := time.Now().Unix()
	e.token = sign(t, testKeys()[1], "ephemeral", jwt.MapClaims{"iss": DemoAccountID, "iat": now, "exp": now + 60})
	if got := e.call("GetAccountInfo").code(); got != 433 {
		t.Fatalf("before AddKey: code %d, want 433", got)
	}
	e.srv.AddKey("ephemeral", &testKeys()[1].PublicKey)
	mustOK(t, e.call("GetAccountInfo"))
	if n := len(e.srv.State().Keys); n != 1 {
		t.Errorf("state has %d keys after AddKey, want 1: added keys live in memory only", n)
	}
}

// TestClockSkew: --clock-skew moves the server's clock, both what its Date
// header says and what its token checks compare with.
func TestClockSkew(t *testing.T) {
	for _, skew := range []time.Duration{5 * time.Minute, -5 * time.Minute} {
		t.Run(skew.String(), func(t *testing.T) {
			e := newEnv(t, demoState(t), Options{ClockSkew: skew})
			now := time.Now()
			// A token on this machine's time, valid for two minutes.
			e.token = sign(t, testKeys()[0], testKeyID, jwt.MapClaims{"iss": DemoAccountID, "iat": now.Unix() - 5, "exp": now.Unix() + 120})
			req, err := http.NewRequest(http.MethodPost, e.ts.URL+"/platform_api/GetAccountInfo", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+e.token)
			resp, err := e.ts.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			date, err := http.ParseTime(resp.Header.Get("Date"))
			if err != nil {
				t.Fatalf("Date header %q: %v", resp.Header.Get("Date"), err)
			}
			if off := date.Sub(now); off < skew-5*time.Second || off > skew+5*time.Second {
				t.Errorf("Date header is %v off this machine's clock, want about %v", off, skew)
			}
			want := 456 // the server's clock is past the token's exp
			if skew < 0 {
				want = 455 // the token was issued in the server's future
			}
			if got := e.call("GetAccountInfo").code(); got != want {
				t.Errorf("a token on this machine's time: code %d, want %d", got, want)
			}
			// A token on the server's time is accepted.
			e.token = sign(t, testKeys()[0], testKeyID, jwt.MapClaims{"iss": DemoAccountID, "iat": date.Unix() - 5, "exp": date.Unix() + 120})
			mustOK(t, e.call("GetAccountInfo"))
		})
	}
}

// TestTokenTimeBoundaries checks the JWT time rules at their edges, on a
// server clock fixed at now: a lifetime of exactly 3600 s is allowed, one
// second more is 454; iat exactly 30 s ahead is allowed, 31 s is 455; a
// token whose exp is now has expired (456), one second later it has not.
func TestTokenTimeBoundaries(t *testing.T) {
	e := newEnv(t, demoState(t), Options{})
	now := time.Date(2026, 11, 28, 6, 15, 0, 0, time.UTC)
	e.srv.now = func() time.Time { return now }
	n := now.Unix()
	for _, tt := range []struct {
		name     string
		iat, exp int64
		want     int
	}{
		{"lifetime exactly 3600 s", n - 10, n - 10 + 3600, 0},
		{"lifetime 3601 s", n - 10, n - 10 + 3601, 454},
		{"iat exactly 30 s ahead", n + 30, n + 600, 0},
		{"iat 31 s ahead", n + 31, n + 600, 455},
		{"exp is now", n - 600, n, 456},
		{"exp a second from now", n - 600, n + 1, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e.token = sign(t, testKeys()[0], testKeyID, jwt.MapClaims{"iss": DemoAccountID, "iat": tt.iat, "exp": tt.exp})
			if got := e.call("GetAccountInfo").code(); got != tt.want {
				t.Errorf("code %d, want %d", got, tt.want)
			}
		})
	}
}
