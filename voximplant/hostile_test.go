package voximplant

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
)

// catcher is a server that must never be reached: it counts requests and
// remembers whether one carried an Authorization header.
type catcher struct {
	srv        *httptest.Server
	hits, auth atomic.Int64
}

func newCatcher(t *testing.T) *catcher {
	c := &catcher{}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.hits.Add(1)
		if r.Header.Get("Authorization") != "" {
			c.auth.Add(1)
		}
		writeJSON(w, map[string]any{"result": map[string]any{"account_id": testAccount, "account_name": "evil"}})
	}))
	t.Cleanup(c.srv.Close)
	return c
}

// TestRedirectRefused: a redirect is never followed, whatever its target
// (plain http on the same host, another port, another host), also with a
// caller's own http.Client; the error names the Location and the call is
// not retried.
func TestRedirectRefused(t *testing.T) {
	evil := newCatcher(t)
	sameHostOtherPort := evil.srv.URL + "/platform_api/GetAccountInfo"
	otherHost := strings.Replace(evil.srv.URL, "127.0.0.1", "localhost", 1) + "/platform_api/GetAccountInfo"

	for _, tc := range []struct {
		name, location string
		status         int
		own            bool
	}{
		{"same host, other port", sameHostOtherPort, http.StatusFound, false},
		{"other host", otherHost, http.StatusMovedPermanently, false},
		{"307 keeps the body", sameHostOtherPort, http.StatusTemporaryRedirect, false},
		{"caller's own client", sameHostOtherPort, http.StatusPermanentRedirect, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeServer(t)
			var requests atomic.Int64
			f.fault = func(_ int64, _ string, w http.ResponseWriter, r *http.Request) bool {
				requests.Add(1)
				http.Redirect(w, r, tc.location+"?token=x", tc.status)
				return true
			}
			var own *http.Client
			c, trace := testClient(t, f, func(o *Options) {
				if tc.own {
					own = &http.Client{}
					o.HTTPClient = own
				}
			})
			_, err := c.GetAccountInfo(context.Background())
			if err == nil {
				t.Fatal("GetAccountInfo followed a redirect and succeeded")
			}
			for _, want := range []string{"redirect", "Location " + tc.location, "check --endpoint"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if strings.Contains(err.Error(), "token=x") {
				t.Errorf("error %q shows the Location's query", err)
			}
			if n := requests.Load(); n != 1 {
				t.Errorf("%d requests to the endpoint, want 1: a redirect is not retried", n)
			}
			if own != nil && own.CheckRedirect != nil {
				t.Error("the caller's http.Client was changed")
			}
			assertNoSecrets(t, "error", err.Error())
			assertNoSecrets(t, "trace", trace.String())
		})
	}
	if evil.hits.Load() != 0 || evil.auth.Load() != 0 {
		t.Errorf("the redirect target got %d requests (%d with a token); want none", evil.hits.Load(), evil.auth.Load())
	}
}

// TestRedirectFromHTTPSToHTTP: an https endpoint redirecting to plain http
// on the same host must not hand over the token in clear.
func TestRedirectFromHTTPSToHTTP(t *testing.T) {
	evil := newCatcher(t)
	f := newFakeServer(t)
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, evil.srv.URL+r.URL.Path, http.StatusFound)
	}))
	t.Cleanup(tlsSrv.Close)
	c, _ := testClient(t, f, func(o *Options) {
		o.Endpoint = tlsSrv.URL + "/platform_api/"
		o.HTTPClient = tlsSrv.Client()
	})
	_, err := c.GetAccountInfo(context.Background())
	if err == nil || !strings.Contains(err.Error(), "Location "+evil.srv.URL+"/platform_api/GetAccountInfo") {
		t.Errorf("error %v, want the redirect refused naming its Location", err)
	}
	if evil.hits.Load() != 0 {
		t.Errorf("the plain-http target got %d requests (%d with a token)", evil.hits.Load(), evil.auth.Load())
	}
}

// TestAPIErrorMessageRedacted: a JSON error that echoes the request's token
// and a private key is shown without either, in the error and the trace.
func TestAPIErrorMessageRedacted(t *testing.T) {
	f := newFakeServer(t)
	der, err := x509.MarshalPKCS8PrivateKey(testKey())
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE" + " KEY", Bytes: der}))
	var token atomic.Value
	f.fault = func(_ int64, _ string, w http.ResponseWriter, r *http.Request) bool {
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		token.Store(tok)
		parts := strings.Split(tok, ".")
		apiError(w, 101, fmt.Sprintf("invalid request\x1b[2J\n: Authorization: Bearer %s; token %s; signature %s; payload %s.%s; key %s",
			tok, tok, parts[2], parts[1], parts[2], keyPEM))
		return true
	}
	c, trace := testClient(t, f, nil)
	_, err = c.GetAccountInfo(context.Background())
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Code != 101 {
		t.Fatalf("error %v, want API error 101", err)
	}
	tok := token.Load().(string)
	parts := strings.Split(tok, ".")
	b64DER := base64.StdEncoding.EncodeToString(der)
	threePart := regexp.MustCompile(`[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}`)
	for what, s := range map[string]string{"error": err.Error(), "message": apiErr.Msg, "trace": trace.String()} {
		for _, secret := range append(parts, tok, "PRIVATE KEY", b64DER[100:140], b64DER[len(b64DER)-60:len(b64DER)-20]) {
			if strings.Contains(s, secret) {
				t.Errorf("%s contains a secret (%.12q…): %s", what, secret, s)
			}
		}
		if m := threePart.FindString(s); m != "" {
			t.Errorf("%s contains a JWT-shaped string %q", what, m)
		}
	}
	if !strings.HasPrefix(apiErr.Msg, `invalid request\x1b[2J\n: `) {
		t.Errorf("message %q lost its text, or shows control characters raw", apiErr.Msg)
	}
}

// TestEchoedForeignJWTCut: a server that echoes a JWT voxbind did not
// send (so the client's own cut does not know it) whose signature has no
// digit, only letters, '-' and '_', gets no piece of it shown: the
// signature is cut as part of the three-part token, since a digit-free
// run is no mixed base64 run.
func TestEchoedForeignJWTCut(t *testing.T) {
	const sigChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_"
	rnd := rand.New(rand.NewPCG(17, 18))
	sig := make([]byte, 342) // an RS256 signature's length
	for i := range sig {
		sig[i] = sigChars[rnd.IntN(len(sigChars))]
	}
	tok := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." +
		base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"another-client","iat":1767225600}`)) + "." + string(sig)
	if strings.ContainsAny(string(sig), "0123456789") {
		t.Fatal("the signature holds a digit")
	}
	f := newFakeServer(t)
	f.fault = func(_ int64, _ string, w http.ResponseWriter, _ *http.Request) bool {
		apiError(w, 101, "cached token "+tok+" was refused")
		return true
	}
	c, trace := testClient(t, f, nil)
	_, err := c.GetAccountInfo(context.Background())
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Code != 101 {
		t.Fatalf("error %v, want API error 101", err)
	}
	if !strings.Contains(apiErr.Msg, "cached token [redacted]") || !strings.HasSuffix(apiErr.Msg, " was refused") {
		t.Errorf("message %q: want the token cut and the rest kept", apiErr.Msg)
	}
	for what, s := range map[string]string{"error": err.Error(), "message": apiErr.Msg, "trace": trace.String()} {
		for i := 0; i+10 <= len(tok); i++ {
			if strings.Contains(s, tok[i:i+10]) {
				t.Errorf("%s holds a 10-character piece of the echoed token, %q: %s", what, tok[i:i+10], s)
				break
			}
		}
	}
}

func TestRedactKeepsOrdinaryText(t *testing.T) {
	for _, s := range []string{
		"Invalid application_id",
		"SIP registration 3005 (alice@pbx.example.com) is deactivated",
		"application support.acme.voximplant.com not found",
		"repeat after 5 seconds",
		"application support-team-of-the-north-east-region-office-2026 not found",
	} {
		if got := redact(s); got != s {
			t.Errorf("redact(%q) = %q, want it unchanged", s, got)
		}
	}
}

// TestPagingGrowsPastTotal: the last page holds more rows than total_count
// said (rows were added while reading): every row is kept, none twice.
func TestPagingGrowsPastTotal(t *testing.T) {
	f := newFakeServer(t)
	fillServer(f, 30)
	f.pageCap = 10
	f.fault = func(_ int64, method string, w http.ResponseWriter, r *http.Request) bool {
		if method != "GetApplications" {
			return false
		}
		page := f.pageOf(r, f.apps, true)
		page["total_count"] = 21 // as it was when the read began
		writeJSON(w, page)
		return true
	}
	c, _ := testClient(t, f, nil)
	apps, err := c.GetApplications(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int64]bool{}
	for _, a := range apps {
		if seen[a.ID] {
			t.Errorf("application %d listed twice", a.ID)
		}
		seen[a.ID] = true
	}
	if len(apps) != 30 {
		t.Errorf("%d applications, want all 30", len(apps))
	}
}

// TestPagingLyingTotal: a total_count that would take more requests than
// the bound is refused after the first page, with nothing allocated for it.
func TestPagingLyingTotal(t *testing.T) {
	f := newFakeServer(t)
	var requests atomic.Int64
	f.fault = func(_ int64, _ string, w http.ResponseWriter, _ *http.Request) bool {
		requests.Add(1)
		writeJSON(w, map[string]any{"result": []any{map[string]any{"application_id": 1}}, "total_count": 1_000_000})
		return true
	}
	c, _ := testClient(t, f, nil)
	_, err := c.GetApplications(context.Background())
	if err == nil || !strings.Contains(err.Error(), "would take 1000000 requests, more than the bound of 20000") {
		t.Errorf("error %v, want the page bound named", err)
	}
	if n := requests.Load(); n != 1 {
		t.Errorf("%d requests, want only the first page", n)
	}
}

// TestPagingEndless: a server that never answers an empty page (without
// total_count) is given up on after the page bound.
func TestPagingEndless(t *testing.T) {
	f := newFakeServer(t)
	var requests atomic.Int64
	f.fault = func(_ int64, _ string, w http.ResponseWriter, r *http.Request) bool {
		n := requests.Add(1)
		writeJSON(w, map[string]any{"result": []any{map[string]any{"sip_registration_id": n, "sip_username": "u", "proxy": "p"}}})
		return true
	}
	c, _ := testClient(t, f, nil)
	c.maxPages = 50
	_, err := c.GetSipRegistrations(context.Background())
	if err == nil || !strings.Contains(err.Error(), "does not end the list") {
		t.Errorf("error %v, want the endless list refused", err)
	}
	if n := requests.Load(); n != 50 {
		t.Errorf("%d requests, want the bound of 50", n)
	}
}

// TestInfoOtherAccount: GetAccountInfo answering another account than the
// key (or --account-id) acts on is an error naming both.
func TestInfoOtherAccount(t *testing.T) {
	for _, child := range []int64{0, 7654321} {
		f := newFakeServer(t)
		if child != 0 {
			f.account = child
		}
		f.fault = func(_ int64, method string, w http.ResponseWriter, _ *http.Request) bool {
			if method != "GetAccountInfo" {
				return false
			}
			writeJSON(w, map[string]any{"result": map[string]any{"account_id": 999, "account_name": "other"}})
			return true
		}
		c, _ := testClient(t, f, func(o *Options) { o.AccountID = child })
		_, err := c.Info(context.Background())
		want := fmt.Sprintf("voxbind acts on account %d (the key file's account_id), but the API answered for account 999", testAccount)
		if child != 0 {
			want = fmt.Sprintf("voxbind acts on account %d (--account-id, with the key of account %d), but the API answered for account 999", child, testAccount)
		}
		if !errors.Is(err, ErrWrongAccount) || !strings.Contains(err.Error(), want) {
			t.Errorf("child %d: Info = %v, want ErrWrongAccount saying %q", child, err, want)
		}
	}
}

// TestEchoedTokenPiecesCut: a server that echoes the request's token cut
// into pieces with spaces between (20 characters, as leakcheck looks for,
// and 10), in an API error, in an error page, and in an answer that is not
// HTTP at all (which Go's client quotes in its error), gets no piece of it
// shown, in the error or in the trace.
func TestEchoedTokenPiecesCut(t *testing.T) {
	pieces := func(s string, n int) string {
		var out []string
		for len(s) > n {
			out = append(out, s[:n])
			s = s[n:]
		}
		return strings.Join(append(out, s), " ")
	}
	echo := func(r *http.Request, n int) string {
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		parts := strings.Split(tok, ".")
		return fmt.Sprintf("claims %s signature %s", pieces(parts[1], n), pieces(parts[2], n))
	}
	for _, tc := range []struct {
		name  string
		fault func(w http.ResponseWriter, r *http.Request)
	}{
		{"api error, 20-character pieces", func(w http.ResponseWriter, r *http.Request) { apiError(w, 101, echo(r, 20)) }},
		{"api error, 10-character pieces", func(w http.ResponseWriter, r *http.Request) { apiError(w, 101, echo(r, 10)) }},
		{"error page", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprintf(w, "<p>%s</p>", echo(r, 20))
		}},
		{"not HTTP", func(w http.ResponseWriter, r *http.Request) {
			conn, buf, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			// Go's client quotes a status line without a space whole.
			buf.WriteString(strings.ReplaceAll(echo(r, 20), " ", "/") + "\r\n\r\n")
			buf.Flush()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeServer(t)
			f.fault = func(n int64, _ string, w http.ResponseWriter, r *http.Request) bool {
				if n > 1 {
					return false // a retry is answered
				}
				tc.fault(w, r)
				return true
			}
			c, trace := testClient(t, f, nil)
			_, err := c.GetAccountInfo(context.Background())
			shown := trace.String()
			if err != nil {
				shown += "\n" + err.Error()
			}
			if !strings.Contains(shown, "claims [redacted]") && !strings.Contains(shown, "claims/[redacted]") {
				t.Errorf("the echo is not shown cut: %v\n%s", err, trace)
			}
			assertNoSecrets(t, "error and trace", shown)
			for _, tok := range receivedTokens.Tokens() {
				sig := tok[strings.LastIndexByte(tok, '.')+1:]
				for i := 0; i+10 <= len(sig); i += 10 {
					if strings.Contains(shown, sig[i:i+10]) {
						t.Errorf("error and trace hold a 10-character piece of a token's signature: %q", sig[i:i+10])
					}
				}
			}
		})
	}
}

// TestRedactCutsShortMixedRuns: in text from the server, a base64url run
// of 16 characters or more that mixes upper case, lower case and digits is
// cut, whatever token it came from (these are pieces of no token voxbind
// sent); shorter runs, and runs of one or two kinds, are words and stay.
func TestRedactCutsShortMixedRuns(t *testing.T) {
	for in, want := range map[string]string{
		"sig Tknyrmj_1CDXfxiYRA5- 5-1h5GlW_tP7jC9gM0ir end":  "sig [redacted] [redacted] end",
		"pieces qGn2rt7LGd70Do3V and 76qSSLH1mHDRWxA-jz":     "pieces [redacted] and [redacted]",
		"key MIIEpAIBAAKCAQEAxJ8w+Z3k":                       "key [redacted]",
		"short Tknyrmj1CDXfxiY stays":                        "short Tknyrmj1CDXfxiY stays",
		"GetSipRegistrations failed":                         "GetSipRegistrations failed",
		"registration-20260101-north-east":                   "registration-20260101-north-east",
		"http://127.0.0.1:40337/platform_api/GetAccountInfo": "http://127.0.0.1:40337/platform_api/GetAccountInfo",
	} {
		if got := redact(in); got != want {
			t.Errorf("redact(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestProbeRefusesRedirect: doctor's unauthenticated probe does not follow
// a redirect either: it reports it, naming the Location, and the server
// redirected to is never contacted.
func TestProbeRefusesRedirect(t *testing.T) {
	evil := newCatcher(t)
	for _, status := range []int{http.StatusFound, http.StatusTemporaryRedirect} {
		redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, evil.srv.URL+"/platform_api/GetAccountInfo?x=1", status)
		}))
		t.Cleanup(redirector.Close)
		p := Probe(context.Background(), redirector.URL+"/platform_api/", nil)
		if n := evil.hits.Load(); n != 0 {
			t.Fatalf("HTTP %d: the probe followed the redirect (%d requests reached its target)", status, n)
		}
		want := fmt.Sprintf("HTTP %d, a redirect (Location %s/platform_api/GetAccountInfo)", status, evil.srv.URL)
		if p.Err == nil || !strings.Contains(p.Err.Error(), want) || p.Status != status {
			t.Errorf("HTTP %d: probe = status %d, err %v; want an error saying %q", status, p.Status, p.Err, want)
		}
		if p.APIAnswer {
			t.Errorf("HTTP %d: a redirect taken for an API answer", status)
		}
	}
}

// TestEndpointWithPasswordRefused: user:password@ in the endpoint is
// refused before anything is sent (the Management API takes the key's
// token, never URL credentials), and the refusal does not echo the
// password, whatever else is wrong with the URL.
func TestEndpointWithPasswordRefused(t *testing.T) {
	for _, endpoint := range []string{
		"http://bob:hunter2pass@127.0.0.1:1/platform_api/",
		"https://bob:hunter2pass@api.voximplant.com/platform_api/",
		"https://hunter2pass@api.voximplant.com/platform_api/",
		"ftp://bob:hunter2pass@127.0.0.1:1/platform_api/",
		"http://bob:hunter2pass@api.example.com/platform_api/?q",
		"https://bob:hunter2pass@[::1/platform_api/",
		"bob:hunter2pass@127.0.0.1:1/platform_api/", // no scheme
		"hunter2pass@api.voximplant.com",
	} {
		_, err := CheckEndpoint(endpoint)
		if err == nil {
			t.Errorf("%s: accepted", endpoint)
			continue
		}
		if strings.Contains(err.Error(), "hunter2pass") {
			t.Errorf("%s: the error echoes the password: %v", endpoint, err)
		}
		if !strings.Contains(err.Error(), "remove user:password@ from --endpoint") {
			t.Errorf("%s: the error does not say what to do: %v", endpoint, err)
		}
		if _, err := New(Options{Endpoint: endpoint, Credentials: testCredentials()}); err == nil || strings.Contains(err.Error(), "hunter2pass") {
			t.Errorf("%s: New = %v", endpoint, err)
		}
	}
}

// TestAPIErrorMessageCut: an API error whose msg is megabytes long is
// shown cut to a few hundred bytes, marked as cut with its length; a
// short one is shown whole.
func TestAPIErrorMessageCut(t *testing.T) {
	long := strings.Repeat("A very long error message. ", 200000)
	for _, tc := range []struct {
		msg, want string
		most      int
	}{
		{long, "(the message is cut: 5400000 bytes in all)", 400},
		{"key not found", "GetAccountInfo: api error 101: key not found", 100},
	} {
		f := newFakeServer(t)
		f.fault = func(_ int64, method string, w http.ResponseWriter, r *http.Request) bool {
			writeJSON(w, map[string]any{"error": map[string]any{"code": 101, "msg": tc.msg}})
			return true
		}
		c, _ := testClient(t, f, nil)
		_, err := c.GetAccountInfo(context.Background())
		if err == nil {
			t.Fatal("GetAccountInfo succeeded")
		}
		if msg := err.Error(); len(msg) > tc.most || !strings.Contains(msg, tc.want) {
			t.Errorf("error of %d bytes, %.500q; want at most %d bytes, with %q", len(msg), msg, tc.most, tc.want)
		}
	}
}

// TestAnswerTooLarge: an answer past 64 MiB is refused as too large,
// not as "not JSON" (it is cut where voxbind stops reading).
func TestAnswerTooLarge(t *testing.T) {
	f := newFakeServer(t)
	f.fault = func(_ int64, _ string, w http.ResponseWriter, _ *http.Request) bool {
		w.Write([]byte(`{"result": [`))
		row := []byte(`{"sip_registration_id": 1, "sip_username": "x", "proxy": "p"},`)
		big := []byte(strings.Repeat(string(row), 1<<14))
		for n := 0; n <= maxBody; n += len(big) {
			if _, err := w.Write(big); err != nil {
				return true
			}
		}
		w.Write([]byte(`{"sip_registration_id": 1}], "total_count": 1}`))
		return true
	}
	c, _ := testClient(t, f, nil)
	_, err := c.Registrations(context.Background())
	var ee *EndpointError
	if !errors.As(err, &ee) || !strings.Contains(err.Error(), "the answer is larger than 64 MiB, the most voxbind reads of one answer") || strings.Contains(err.Error(), "not JSON") {
		t.Errorf("error %v; want one that says the answer is larger than 64 MiB", err)
	}
}

// TestAPIErrorWithoutMessage: an error answer with no message (or no code
// either) says so, rather than ending in "api error -1: ".
func TestAPIErrorWithoutMessage(t *testing.T) {
	for body, want := range map[string]string{
		`{"error": {}}`:                      "GetAccountInfo: api error 0: the server's error answer has no code and no message",
		`{"error": {"code": -1, "msg": ""}}`: "GetAccountInfo: api error -1: the server gave no message",
		`{"error": {"code": 7, "msg": " "}}`: "GetAccountInfo: api error 7: the server gave no message",
	} {
		f := newFakeServer(t)
		f.fault = func(_ int64, _ string, w http.ResponseWriter, _ *http.Request) bool {
			w.Write([]byte(body))
			return true
		}
		c, _ := testClient(t, f, nil)
		if _, err := c.GetAccountInfo(context.Background()); err == nil || err.Error() != want {
			t.Errorf("%s: error %v\nwant  %s", body, err, want)
		}
	}
}

// TestAnswerOfTheWrongKind: JSON whose values have the wrong kind is
// refused naming the key and the kinds in plain words, not Go's types.
func TestAnswerOfTheWrongKind(t *testing.T) {
	for _, tc := range []struct {
		method, body, want string
	}{
		{"GetSipRegistrations", `{"result": {"sip_registration_id": 1}}`, `("result" is an object, but must be a list)`},
		{"GetAccountInfo", `{"result": [{"account_id": 1}]}`, `("result" is a list, but must be an object)`},
		{"GetSipRegistrations", `{"result": [{"sip_registration_id": "1"}], "total_count": 1}`, `("result.sip_registration_id" is a string, but must be a whole number)`},
		{"GetAccountInfo", `{"error": {"code": "340", "msg": "x"}}`, `("error.code" is a string, but must be a whole number)`},
	} {
		f := newFakeServer(t)
		f.fault = func(_ int64, _ string, w http.ResponseWriter, _ *http.Request) bool {
			w.Write([]byte(tc.body))
			return true
		}
		c, _ := testClient(t, f, nil)
		var err error
		if tc.method == "GetAccountInfo" {
			_, err = c.GetAccountInfo(context.Background())
		} else {
			_, err = c.Registrations(context.Background())
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "Go struct") || strings.Contains(err.Error(), "json: cannot") {
			t.Errorf("%s: error %v; want %s, in plain words", tc.body, err, tc.want)
		}
	}
}
