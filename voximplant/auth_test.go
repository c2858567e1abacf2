package voximplant

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// parseToken verifies s with the test key's public half and returns its
// header and claims as raw JSON, so that types (iss a number) can be checked.
func parseToken(t *testing.T, s string) (header, claims map[string]json.RawMessage) {
	t.Helper()
	_, err := jwt.Parse(s, func(tok *jwt.Token) (any, error) { return &testKey().PublicKey, nil },
		jwt.WithValidMethods([]string{"RS256"}), jwt.WithoutClaimsValidation())
	if err != nil {
		t.Fatalf("token does not verify with the public key: %v", err)
	}
	parts := strings.Split(s, ".")
	for i, dst := range []*map[string]json.RawMessage{&header, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, dst); err != nil {
			t.Fatal(err)
		}
	}
	return header, claims
}

func TestTokenClaims(t *testing.T) {
	now := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name    string
		account int64
		wantIss string
	}{
		{"own account", 0, "1234567"},
		{"child account", 7654321, "7654321"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(Options{Endpoint: "https://api.example.com/platform_api/", Credentials: testCredentials(), AccountID: tt.account})
			if err != nil {
				t.Fatal(err)
			}
			c.tokens.now = func() time.Time { return now }
			tok, err := c.tokens.Token()
			if err != nil {
				t.Fatal(err)
			}
			header, claims := parseToken(t, tok)
			if got := string(header["alg"]); got != `"RS256"` {
				t.Errorf("alg = %s, want RS256", got)
			}
			if got := string(header["kid"]); got != `"`+testKeyID+`"` {
				t.Errorf("kid = %s, want %q", got, testKeyID)
			}
			if got := string(claims["iss"]); got != tt.wantIss {
				t.Errorf("iss = %s, want the number %s", got, tt.wantIss)
			}
			var iat, exp int64
			json.Unmarshal(claims["iat"], &iat)
			json.Unmarshal(claims["exp"], &exp)
			if d := now.Unix() - iat; d < 1 || d > 30 {
				t.Errorf("iat is %d s before now, want a few seconds back-dated", d)
			}
			if exp-iat > 3600 {
				t.Errorf("exp - iat = %d s, must be at most 3600", exp-iat)
			}
			if exp-now.Unix() < 50*60 {
				t.Errorf("token valid for only %d s", exp-now.Unix())
			}
			if c.AccountID() != map[bool]int64{true: tt.account, false: testAccount}[tt.account != 0] {
				t.Errorf("AccountID() = %d", c.AccountID())
			}
		})
	}
}

func TestTokenReuse(t *testing.T) {
	now := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	s := newTokenSource(testCredentials(), testAccount)
	s.now = func() time.Time { return now }
	first, err := s.Token()
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(50 * time.Minute)
	if again, _ := s.Token(); again != first {
		t.Error("token not reused 50 minutes in")
	}
	now = now.Add(9 * time.Minute) // less than a minute before exp
	renewed, _ := s.Token()
	if renewed == first {
		t.Error("token not renewed shortly before it expires")
	}
	_, claims := parseToken(t, renewed)
	var exp int64
	json.Unmarshal(claims["exp"], &exp)
	if exp <= now.Unix()+3000 {
		t.Errorf("renewed token expires at %d, now is %d", exp, now.Unix())
	}
}

func TestTokenConcurrent(t *testing.T) {
	s := newTokenSource(testCredentials(), testAccount)
	var wg sync.WaitGroup
	toks := make([]string, 32)
	for i := range toks {
		wg.Go(func() {
			tok, err := s.Token()
			if err != nil {
				t.Error(err)
			}
			toks[i] = tok
		})
	}
	wg.Wait()
	for _, tok := range toks[1:] {
		if tok != toks[0] {
			t.Fatal("concurrent callers got different tokens: one should be signed and shared")
		}
	}
}

// TestTokenSourceFollowsTheServersClock: offsets within 5 s are left
// alone, larger ones are adopted (and drop the token in use), a refusal
// adopts any offset, and a garbled Date header changes nothing.
func TestTokenSourceFollowsTheServersClock(t *testing.T) {
	local := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	date := func(d time.Duration) string { return local.Add(d).Format(http.TimeFormat) }
	const half = 500 * time.Millisecond // Date has whole seconds: the estimate is the middle
	s := newTokenSource(testCredentials(), testAccount)
	s.now = func() time.Time { return local }
	first, err := s.Token()
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		date        string
		refused     bool
		wantOffset  time.Duration
		wantChanged bool
	}{
		{date(3 * time.Second), false, 0, false},
		{"not a date", false, 0, false},
		{date(5 * time.Minute), false, 5*time.Minute + half, true},
		{date(5*time.Minute + 2*time.Second), false, 5*time.Minute + half, false},
		{date(-time.Minute), false, -time.Minute + half, true},
		{date(2 * time.Second), false, 0, true}, // back within tolerance
		{date(3 * time.Second), true, 3*time.Second + half, true},
	}
	for i, st := range steps {
		offset, changed, _ := s.observe(st.date, st.refused)
		if offset != st.wantOffset || changed != st.wantChanged {
			t.Errorf("step %d (%s, refused %v): offset %v changed %v, want %v %v", i, st.date, st.refused, offset, changed, st.wantOffset, st.wantChanged)
		}
	}
	s.observe(date(10*time.Minute), false)
	tok, err := s.Token()
	if err != nil {
		t.Fatal(err)
	}
	if tok == first {
		t.Fatal("the token signed before the correction is still in use")
	}
	_, claims := parseToken(t, tok)
	if got, want := string(claims["iat"]), fmt.Sprint(local.Add(10*time.Minute+half-tokenBackdate).Truncate(time.Second).Unix()); got != want {
		t.Errorf("iat %s, want %s (the server's time, back-dated)", got, want)
	}
}
