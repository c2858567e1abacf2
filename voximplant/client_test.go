package voximplant

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/voxbind/voxbind/reconcile"
)

func TestEndpoint(t *testing.T) {
	tests := []struct {
		in, want, err string
	}{
		{"", DefaultEndpoint, ""},
		{"https://api.voximplant.com/platform_api", DefaultEndpoint, ""},
		{"http://127.0.0.1:8080/platform_api/", "http://127.0.0.1:8080/platform_api/", ""},
		{"http://127.9.9.9/x", "http://127.9.9.9/x/", ""},
		{"http://localhost:8080/platform_api", "http://localhost:8080/platform_api/", ""},
		{"http://[::1]:8080/", "http://[::1]:8080/", ""},
		{"http://api.voximplant.com/platform_api/", "", `plain http:// is refused for non-loopback host "api.voximplant.com"`},
		{"http://10.0.0.1/", "", "plain http:// is refused"},
		{"http://localhost.evil.com/", "", "plain http:// is refused"},
		{"ftp://api.voximplant.com/", "", `scheme "ftp"`},
		{"api.voximplant.com/platform_api/", "", "no host"},
		{"https://api.voximplant.com/platform_api/?cmd=x", "", "query"},
	}
	for _, tt := range tests {
		got, err := checkEndpoint(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) || !errors.Is(err, ErrEndpointURL) {
				t.Errorf("checkEndpoint(%q) error = %v, want %q matching ErrEndpointURL", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("checkEndpoint(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestNewRefuses(t *testing.T) {
	for name, o := range map[string]Options{
		"no credentials": {},
		"no key":         {Credentials: &Credentials{AccountID: 1, KeyID: "k"}},
		"bad endpoint":   {Credentials: testCredentials(), Endpoint: "http://example.com/"},
		"negative rate":  {Credentials: testCredentials(), Rate: -1},
		"negative child": {Credentials: testCredentials(), AccountID: -4},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("%s: New accepted %+v", name, o)
		}
	}
}

func TestRequestShape(t *testing.T) {
	f := newFakeServer(t)
	var got *http.Request
	f.fault = func(_ int64, _ string, _ http.ResponseWriter, r *http.Request) bool {
		got = r.Clone(context.Background())
		return false
	}
	c, trace := testClient(t, f, func(o *Options) { o.UserAgent = "voxbind/1.2.3" })
	info, err := c.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(reconcile.AccountInfo{ID: testAccount, Name: "acme"}, info); diff != "" {
		t.Errorf("Info (-want +got):\n%s", diff)
	}
	if got.Method != http.MethodPost || got.URL.Path != "/platform_api/GetAccountInfo" {
		t.Errorf("request %s %s", got.Method, got.URL.Path)
	}
	if ua := got.UserAgent(); ua != "voxbind/1.2.3" {
		t.Errorf("User-Agent %q", ua)
	}
	if len(f.claims) != 1 {
		t.Fatalf("server verified %d tokens", len(f.claims))
	}
	line := trace.String()
	if !regexp.MustCompile(`^time=\S+ level=DEBUG msg="api request" method=GetAccountInfo params="" status=200 duration=\S+ retry=0\n$`).MatchString(line) {
		t.Errorf("trace line %q", line)
	}
}

func TestDefaultUserAgent(t *testing.T) {
	f := newFakeServer(t)
	c, _ := testClient(t, f, func(o *Options) { o.UserAgent = "" })
	if _, err := c.Info(context.Background()); err != nil {
		t.Fatal(err)
	}
	if f.agents[0] != "voxbind" {
		t.Errorf("default User-Agent %q", f.agents[0])
	}
}

func apiError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, map[string]any{"error": map[string]any{"code": code, "msg": msg}})
}

// TestTransientRetried fails the first attempt in each transient way and
// checks that the call succeeds on the next attempt.
func TestTransientRetried(t *testing.T) {
	tests := []struct {
		name        string
		fail        func(w http.ResponseWriter)
		rateLimited int64
	}{
		{"api 340", func(w http.ResponseWriter) { apiError(w, 340, "Rate limit exceeded") }, 1},
		{"api 416", func(w http.ResponseWriter) { apiError(w, 416, "Repeat after 0 seconds") }, 0},
		{"api 162", func(w http.ResponseWriter) { apiError(w, 162, "Try later") }, 0},
		{"api 484", func(w http.ResponseWriter) { apiError(w, 484, "The request was rejected as a probable resend") }, 0},
		{"api 515", func(w http.ResponseWriter) { apiError(w, 515, "The same operation was performed recently") }, 0},
		{"api 340 with http 503", func(w http.ResponseWriter) {
			w.WriteHeader(503)
			writeJSON(w, map[string]any{"error": map[string]any{"code": 340, "msg": "Rate limit"}})
		}, 1},
		{"http 429", func(w http.ResponseWriter) { http.Error(w, "slow down", 429) }, 1},
		{"http 500", func(w http.ResponseWriter) { w.WriteHeader(500) }, 0},
		{"http 502 html", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(502)
			fmt.Fprint(w, "<html><body>Bad Gateway</body></html>")
		}, 0},
		{"http 503 json without error", func(w http.ResponseWriter) { w.WriteHeader(503); fmt.Fprint(w, "{}") }, 0},
		{"dropped connection", drop, 0},
		{"truncated body", func(w http.ResponseWriter) {
			w.Header().Set("Content-Length", "100")
			fmt.Fprint(w, `{"result": {"account_id"`)
		}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeServer(t)
			f.fault = func(n int64, _ string, w http.ResponseWriter, _ *http.Request) bool {
				if n == 1 {
					tt.fail(w)
					return true
				}
				return false
			}
			c, trace := testClient(t, f, nil)
			info, err := c.Info(context.Background())
			if err != nil {
				t.Fatalf("not retried: %v", err)
			}
			if info.ID != testAccount {
				t.Errorf("info %+v", info)
			}
			st := c.Stats()
			if st.Requests != 2 || st.Retries != 1 || st.Transient != 1 || st.RateLimited != tt.rateLimited || st.Calls != 1 {
				t.Errorf("stats %+v, want 2 requests, 1 retry, 1 transient, %d rate-limited", st, tt.rateLimited)
			}
			if n := strings.Count(trace.String(), `msg="api request"`); n != 2 {
				t.Errorf("trace has %d requests, want one per attempt:\n%s", n, trace)
			}
			if n := strings.Count(trace.String(), "level=INFO msg=retry method=GetAccountInfo"); n != 1 {
				t.Errorf("trace has %d retry records, want 1:\n%s", n, trace)
			}
			if !strings.Contains(trace.String(), "retry=1") {
				t.Errorf("trace does not number the retry:\n%s", trace)
			}
		})
	}
}

func TestTimeoutRetried(t *testing.T) {
	f := newFakeServer(t)
	release := make(chan struct{})
	defer close(release)
	f.fault = func(n int64, _ string, _ http.ResponseWriter, r *http.Request) bool {
		if n == 1 {
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return true
		}
		return false
	}
	c, trace := testClient(t, f, func(o *Options) { o.Timeout = 100 * time.Millisecond })
	if _, err := c.Info(context.Background()); err != nil {
		t.Fatalf("timeout not retried: %v", err)
	}
	if !strings.Contains(trace.String(), `err="GetAccountInfo: no answer within 100ms"`) {
		t.Errorf("trace does not show the timeout:\n%s", trace)
	}
}

func TestPermanentErrorsNotRetried(t *testing.T) {
	tests := []struct {
		name string
		fail func(w http.ResponseWriter)
		want string
		code int
	}{
		{"api 101", func(w http.ResponseWriter) { apiError(w, 101, "Invalid arguments") }, "GetAccountInfo: api error 101: Invalid arguments", 101},
		{"api 275 with http 400", func(w http.ResponseWriter) {
			w.WriteHeader(400)
			writeJSON(w, map[string]any{"error": map[string]any{"code": 275, "msg": "Invalid sip_registration_id"}})
		}, "GetAccountInfo: api error 275: Invalid sip_registration_id", 275},
		{"errors array", func(w http.ResponseWriter) {
			writeJSON(w, map[string]any{"errors": []any{map[string]any{"code": 116, "msg": "Invalid application_id"}}})
		}, "api error 116", 116},
		{"http 403 html", func(w http.ResponseWriter) { w.WriteHeader(403); fmt.Fprint(w, "<h1>Forbidden</h1>") }, "GetAccountInfo: http status 403: <h1>Forbidden</h1>", 0},
		{"http 404", func(w http.ResponseWriter) { w.WriteHeader(404) }, "http status 404", 0},
		{"http 401 echoing the token", func(w http.ResponseWriter) {
			w.WriteHeader(401)
			fmt.Fprint(w, "<p>rejected Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOjF9.c2ln</p>")
		}, "http status 401: <p>rejected Authorization: Bearer [redacted]</p>", 0},
		{"200 html", func(w http.ResponseWriter) { fmt.Fprint(w, "<html>captive portal</html>") }, "GetAccountInfo: the endpoint answered an HTML page, not the Management API (http status 200: <html>captive portal</html>); check the endpoint URL", 0},
		{"200 not json", func(w http.ResponseWriter) { fmt.Fprint(w, "OK") }, "GetAccountInfo: the endpoint's answer is not JSON, so not the Management API (http status 200: OK); check the endpoint URL", 0},
		{"200 json of another shape", func(w http.ResponseWriter) { fmt.Fprint(w, `{"status": "ok"}`) }, `GetAccountInfo: the endpoint answered JSON that is not a Management API answer (neither "result" nor "error"): {"status": "ok"}`, 0},
		{"200 null result", func(w http.ResponseWriter) { fmt.Fprint(w, `{"result": null}`) }, `neither "result" nor "error"`, 0},
		{"200 json of a wrong type", func(w http.ResponseWriter) { fmt.Fprint(w, `{"result": "yes"}`) }, "GetAccountInfo: the endpoint answered JSON that is not a Management API answer (\"result\" is a string, but must be an object)", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeServer(t)
			f.fault = func(n int64, _ string, w http.ResponseWriter, _ *http.Request) bool { tt.fail(w); return true }
			c, _ := testClient(t, f, nil)
			_, err := c.Info(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
			var apiErr *APIError
			if got := errors.As(err, &apiErr); got != (tt.code != 0) || (got && apiErr.Code != tt.code) {
				t.Errorf("errors.As(APIError) = %v %+v, want code %d", got, apiErr, tt.code)
			}
			assertNoSecrets(t, "error", err.Error())
			if st := c.Stats(); st.Requests != 1 || st.Retries != 0 {
				t.Errorf("stats %+v: a permanent error was retried", st)
			}
		})
	}
}

// TestEchoedTokenCut: a proxy that echoes the request's real token in its
// error pages, first only the token's signature in a transient 502 (traced
// and retried), then the whole Authorization header in a final 401:
// neither the error nor the trace holds any part of the token.
func TestEchoedTokenCut(t *testing.T) {
	f := newFakeServer(t)
	f.fault = func(n int64, _ string, w http.ResponseWriter, r *http.Request) bool {
		auth := r.Header.Get("Authorization")
		if n == 1 {
			w.WriteHeader(502)
			fmt.Fprintf(w, "<p>upstream refused signature %s</p>", auth[strings.LastIndexByte(auth, '.')+1:])
			return true
		}
		w.WriteHeader(401)
		fmt.Fprintf(w, "<p>rejected\n%s</p>", auth)
		return true
	}
	c, trace := testClient(t, f, nil)
	_, err := c.Info(context.Background())
	if err == nil || !strings.Contains(err.Error(), "http status 401: <p>rejected Bearer ") {
		t.Fatalf("error %v, want the 401's page", err)
	}
	assertNoSecrets(t, "error", err.Error())
	if !strings.Contains(trace.String(), "status=502") || !strings.Contains(trace.String(), "upstream refused signature") || !strings.Contains(trace.String(), "retry=1") {
		t.Errorf("the trace does not show the 502's page and the retry:\n%s", trace)
	}
}

func TestAuthHints(t *testing.T) {
	want := map[int]string{
		100: "check that the key file belongs to this account, that --account-id names a child",
		104: "lacks a role for BindSipRegistration: BindSipRegistration needs Owner, Admin or Developer",
		433: "the key_id is unknown: the key was deleted",
		447: "the token was malformed",
		454: "token lifetime exceeds one hour: this is a voxbind bug",
		455: "clock is ahead; sync it with NTP",
		456: "clock is behind; sync it with NTP",
	}
	for code, hint := range want {
		f := newFakeServer(t)
		f.fault = func(_ int64, _ string, w http.ResponseWriter, _ *http.Request) bool {
			apiError(w, code, "Authorization failed")
			return true
		}
		c, _ := testClient(t, f, nil)
		err := c.Bind(context.Background(), 1, nil)
		if err == nil {
			t.Fatalf("code %d: no error", code)
		}
		wantPrefix := fmt.Sprintf("BindSipRegistration: api error %d: Authorization failed (", code)
		if !strings.HasPrefix(err.Error(), wantPrefix) || !strings.Contains(err.Error(), hint) {
			t.Errorf("code %d: error %q, want %q… with %q", code, err, wantPrefix, hint)
		}
		assertNoSecrets(t, "error", err.Error())
		// A clock refusal is tried once more, on the server's time.
		wantRequests := int64(1)
		if code == CodeTokenFuture || code == CodeTokenExpired {
			wantRequests = 2
		}
		if got := c.Stats().Requests; got != wantRequests {
			t.Errorf("code %d: %d requests, want %d", code, got, wantRequests)
		}
		// Bind's refusal is what stops apply: it matches KeyRefusedError,
		// with the hint as the fix.
		var refused *reconcile.KeyRefusedError
		var apiErr *APIError
		if !errors.As(err, &refused) || refused.Code != code || !errors.As(err, &apiErr) || refused.Fix != apiErr.Hint() {
			t.Errorf("code %d: error %#v does not match a KeyRefusedError with the hint", code, err)
		}
		// Only a token voxbind made wrong is voxbind's bug to report.
		if refused != nil && refused.Bug != (code == CodeTokenTooLong) {
			t.Errorf("code %d: KeyRefusedError.Bug %v", code, refused.Bug)
		}
	}
	// A refusal the client's retry on the server's time heals stops
	// nothing; nor does any other error.
	for code, answers := range map[int]int{CodeTokenExpired: 1, CodeTokenFuture: 1, 117: 10} {
		f := newFakeServer(t)
		f.fault = func(n int64, _ string, w http.ResponseWriter, _ *http.Request) bool {
			if n > int64(answers) {
				return false
			}
			apiError(w, code, "no")
			return true
		}
		c, _ := testClient(t, f, nil)
		var refused *reconcile.KeyRefusedError
		if err := c.Bind(context.Background(), 1, nil); errors.As(err, &refused) {
			t.Errorf("code %d answered %d times: %v matches KeyRefusedError", code, answers, err)
		}
	}
}

// TestRealServerRejectsOtherIss runs the fake's real JWT check against a
// client acting on a child account the server does not serve.
func TestWrongAccountRejected(t *testing.T) {
	f := newFakeServer(t)
	c, _ := testClient(t, f, func(o *Options) { o.AccountID = 99 })
	_, err := c.Info(context.Background())
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Code != 100 {
		t.Fatalf("error %v, want api error 100", err)
	}
	f.account = 99
	if _, err := c.Info(context.Background()); err != nil {
		t.Errorf("child account: %v", err)
	}
}

// fakeClock is advanced by the client's sleeps, so that retry delays and the
// retry budget are checked without waiting.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	slept  []time.Duration
	cancel func() // called at the first sleep when set
}

func (fc *fakeClock) Now() time.Time {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return fc.now
}

func (fc *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	fc.mu.Lock()
	fc.slept = append(fc.slept, d)
	fc.now = fc.now.Add(d)
	cancel := fc.cancel
	fc.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	return ctx.Err()
}

func withFakeClock(c *Client) *fakeClock {
	fc := &fakeClock{now: time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)}
	c.now, c.sleep = fc.Now, fc.Sleep
	return fc
}

func TestRetryHints(t *testing.T) {
	tests := []struct {
		name string
		fail func(w http.ResponseWriter)
		want time.Duration
	}{
		{"Retry-After seconds", func(w http.ResponseWriter) { w.Header().Set("Retry-After", "3"); w.WriteHeader(429) }, 3 * time.Second},
		{"Retry-After on api 340", func(w http.ResponseWriter) {
			w.Header().Set("Retry-After", "2")
			apiError(w, 340, "Rate limit exceeded")
		}, 2 * time.Second},
		{"repeat after N seconds", func(w http.ResponseWriter) { apiError(w, 416, "Repeat after 7 seconds") }, 7 * time.Second},
		{"try again after N seconds", func(w http.ResponseWriter) { apiError(w, 162, "Try again after 12 seconds") }, 12 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeServer(t)
			f.fault = func(n int64, _ string, w http.ResponseWriter, _ *http.Request) bool {
				if n == 1 {
					tt.fail(w)
					return true
				}
				return false
			}
			c, _ := testClient(t, f, nil)
			fc := withFakeClock(c)
			if _, err := c.Info(context.Background()); err != nil {
				t.Fatal(err)
			}
			if len(fc.slept) != 1 || fc.slept[0] != tt.want {
				t.Errorf("slept %v, want [%v]", fc.slept, tt.want)
			}
		})
	}
}

func TestBackoffAndBudget(t *testing.T) {
	f := newFakeServer(t)
	f.fault = func(_ int64, _ string, w http.ResponseWriter, _ *http.Request) bool { w.WriteHeader(503); return true }
	c, _ := testClient(t, f, func(o *Options) { o.RetryBudget = 20 * time.Second })
	c.backoffBase, c.backoffCap = 100*time.Millisecond, 5*time.Second
	c.answered.Store(true) // the API answered earlier in the run: the full budget applies
	fc := withFakeClock(c)
	c.jitter = func(max time.Duration) time.Duration { return max } // the ceiling of each full-jitter draw
	_, err := c.Info(context.Background())
	var herr *HTTPError
	if !errors.As(err, &herr) || herr.Status != 503 {
		t.Fatalf("error %v, want the last http 503", err)
	}
	assertNoSecrets(t, "error", err.Error())
	if !strings.Contains(err.Error(), "gave up after") || !strings.Contains(err.Error(), "retry budget 20s") {
		t.Errorf("error %q does not say the budget ran out", err)
	}
	ms := time.Millisecond
	want := []time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms, 1600 * ms, 3200 * ms, 5000 * ms, 5000 * ms}
	if diff := cmp.Diff(want, fc.slept); diff != "" {
		t.Errorf("backoff delays (-want +got):\n%s", diff)
	}
	var total time.Duration
	for _, d := range fc.slept {
		total += d
	}
	if total > 20*time.Second {
		t.Errorf("slept %v, more than the budget", total)
	}
}

// TestRateLimitBacksOffBriefly: a rate-limit answer without a hint is
// retried after a tenth of the backoff a failure gets while the adaptive
// limiter has a rate to pace the retries by; before it has one (refused
// before it could measure the server's rate), after the full backoff, as
// a 503, so as not to retry many times faster than the server accepts.
func TestRateLimitBacksOffBriefly(t *testing.T) {
	ms := time.Millisecond
	rateLimited := func(w http.ResponseWriter) { apiError(w, 340, "Rate limit exceeded") }
	for _, tt := range []struct {
		name string
		rate float64 // the client's ceiling: a rate from the start
		fail func(w http.ResponseWriter)
		want []time.Duration
	}{
		{"api 340 paced", 1000, rateLimited, []time.Duration{10 * ms, 20 * ms, 40 * ms}},
		{"http 429 paced", 1000, func(w http.ResponseWriter) { w.WriteHeader(429) }, []time.Duration{10 * ms, 20 * ms, 40 * ms}},
		{"api 340 before a rate", 0, rateLimited, []time.Duration{100 * ms, 200 * ms, 400 * ms}},
		{"http 503", 0, func(w http.ResponseWriter) { w.WriteHeader(503) }, []time.Duration{100 * ms, 200 * ms, 400 * ms}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeServer(t)
			f.fault = func(n int64, _ string, w http.ResponseWriter, _ *http.Request) bool {
				if n <= 3 {
					tt.fail(w)
					return true
				}
				return false
			}
			c, _ := testClient(t, f, func(o *Options) { o.Rate = tt.rate })
			c.backoffBase, c.backoffCap = 100*ms, 5*time.Second
			fc := withFakeClock(c)
			c.jitter = func(max time.Duration) time.Duration { return max } // the ceiling of each draw
			if _, err := c.Info(context.Background()); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, fc.slept); diff != "" {
				t.Errorf("waits before the retries (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHintPastBudget(t *testing.T) {
	f := newFakeServer(t)
	f.fault = func(_ int64, _ string, w http.ResponseWriter, _ *http.Request) bool {
		apiError(w, 416, "Repeat after 600 seconds")
		return true
	}
	c, _ := testClient(t, f, nil)
	fc := withFakeClock(c)
	err := c.Bind(context.Background(), 1, nil)
	want := "gave up: the server asks to retry after 10m0s, past the retry budget of 2m0s: BindSipRegistration: api error 416: Repeat after 600 seconds"
	if err == nil || err.Error() != want {
		t.Errorf("error %v\nwant  %s", err, want)
	}
	if len(fc.slept) != 0 || c.Stats().Requests != 1 {
		t.Errorf("waited %v and sent %d requests; want no wait past the budget", fc.slept, c.Stats().Requests)
	}
}

func TestFullJitter(t *testing.T) {
	c, err := New(Options{Credentials: testCredentials()})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[time.Duration]bool{}
	for range 200 {
		d := c.jitter(time.Second)
		if d < 0 || d > time.Second {
			t.Fatalf("jitter %v outside [0, 1s]", d)
		}
		seen[d/(100*time.Millisecond)] = true
	}
	if len(seen) < 8 {
		t.Errorf("jitter covers only %d of 10 tenths of the range", len(seen))
	}
}

func TestCancelInFlight(t *testing.T) {
	f := newFakeServer(t)
	started := make(chan struct{})
	f.fault = func(_ int64, _ string, _ http.ResponseWriter, r *http.Request) bool {
		close(started)
		<-r.Context().Done()
		return true
	}
	c, _ := testClient(t, f, nil)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-started; cancel() }()
	_, err := c.Registrations(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	if st := c.Stats(); st.Retries != 0 {
		t.Errorf("cancelled call retried: %+v", st)
	}
}

func TestCancelDuringBackoff(t *testing.T) {
	f := newFakeServer(t)
	f.fault = func(_ int64, _ string, w http.ResponseWriter, _ *http.Request) bool {
		apiError(w, 416, "Repeat after 3600 seconds")
		return true
	}
	c, _ := testClient(t, f, func(o *Options) { o.RetryBudget = 2 * time.Hour })
	ctx, cancel := context.WithCancel(context.Background())
	waiting := make(chan struct{})
	var once sync.Once
	sleep := c.sleep
	c.sleep = func(ctx context.Context, d time.Duration) error {
		once.Do(func() { close(waiting) })
		return sleep(ctx, d) // the real wait, which cancellation must end
	}
	go func() { <-waiting; cancel() }()
	done := make(chan error)
	go func() { done <- c.Bind(ctx, 1, nil) }()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("cancellation did not stop the wait for a retry")
	}
}

func TestCancelWhileRateLimited(t *testing.T) {
	f := newFakeServer(t)
	c, _ := testClient(t, f, func(o *Options) { o.Rate = 0.01 }) // one request per 100 s
	if _, err := c.Info(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	if _, err := c.Info(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
}

// TestWriteCancelledBeforeSent: a write whose context ends while it waits
// for its turn under the rate ceiling was never sent, and says so
// (reconcile.ErrNotSent), so that apply counts its step not started; a
// write cancelled after its request went out does not.
func TestWriteCancelledBeforeSent(t *testing.T) {
	f := newFakeServer(t)
	f.regs = []SIPRegistration{{ID: 101, SIPUsername: "alice", Proxy: "pbx.example.com"}}
	c, _ := testClient(t, f, func(o *Options) { o.Rate = 0.01 }) // one request per 100 s
	if _, err := c.Info(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	err := c.Bind(ctx, 101, nil)
	if !errors.Is(err, reconcile.ErrNotSent) || !errors.Is(err, context.Canceled) || errors.Is(err, reconcile.ErrOutcomeUnknown) {
		t.Fatalf("error %v, want it to match ErrNotSent and context.Canceled", err)
	}
	if n := f.calls["BindSipRegistration"]; n != 0 {
		t.Errorf("%d BindSipRegistration requests, want none", n)
	}

	// Sent, refused for now, then cancelled during the backoff: sent.
	f2 := newFakeServer(t)
	f2.fault = func(_ int64, _ string, w http.ResponseWriter, _ *http.Request) bool {
		apiError(w, 416, "Repeat after 3600 seconds")
		return true
	}
	c2, _ := testClient(t, f2, func(o *Options) { o.RetryBudget = 2 * time.Hour })
	ctx2, cancel2 := context.WithCancel(context.Background())
	sleep := c2.sleep
	c2.sleep = func(ctx context.Context, d time.Duration) error {
		cancel2()
		return sleep(ctx, d)
	}
	if err := c2.Bind(ctx2, 1, nil); errors.Is(err, reconcile.ErrNotSent) || !errors.Is(err, context.Canceled) {
		t.Errorf("after a sent attempt: error %v, want context.Canceled without ErrNotSent", err)
	}
}

func TestHintInMessage(t *testing.T) {
	for msg, want := range map[string]time.Duration{
		"Repeat after 5 seconds":            5 * time.Second,
		"repeat the request after 1 sec":    time.Second,
		"Rate limit exceeded":               0,
		"Please try again after 30 seconds": 30 * time.Second,
		// Past a time.Duration, and past a day: a day, and so past any budget.
		"repeat after 9223372037 seconds":          24 * time.Hour,
		"repeat after 99999999999999999999999 sec": 24 * time.Hour,
		"repeat after 86401 seconds":               24 * time.Hour,
	} {
		if got := retryHint(msg); got != want {
			t.Errorf("retryHint(%q) = %v, want %v", msg, got, want)
		}
	}
}

// TestWriteDroppedAfterApplied loses the answer of a write the server has
// applied; the retry repeats it (writes are idempotent), and the
// account ends in the desired state with one effect.
func TestWriteDroppedAfterApplied(t *testing.T) {
	f := newFakeServer(t)
	f.regs = []SIPRegistration{{ID: 101, SIPUsername: "alice", Proxy: "pbx.example.com"}}
	f.after = func(n int64, _ string, w http.ResponseWriter, _ *http.Request) bool {
		if n == 1 {
			drop(w)
			return true
		}
		return false
	}
	c, trace := testClient(t, f, nil)
	target := &reconcile.Target{Application: reconcile.Ref{ID: 77}, User: &reconcile.Ref{ID: 9}}
	if err := c.Bind(context.Background(), 101, target); err != nil {
		t.Fatalf("bind: %v", err)
	}
	want := []SIPRegistration{{ID: 101, SIPUsername: "alice", Proxy: "pbx.example.com", ApplicationID: 77, ApplicationName: "app77.acme.voximplant.com", UserID: 9, UserName: "user9"}}
	if diff := cmp.Diff(want, f.regs); diff != "" {
		t.Errorf("server state (-want +got):\n%s", diff)
	}
	if f.effects != 1 || f.calls["BindSipRegistration"] != 2 {
		t.Errorf("%d effects in %d calls, want 1 effect in 2 calls", f.effects, f.calls["BindSipRegistration"])
	}
	if !strings.Contains(trace.String(), `method=BindSipRegistration params="application_id=77 bind=true sip_registration_id=101 user_id=9" status=0 `) {
		t.Errorf("trace does not show the dropped attempt:\n%s", trace)
	}
}

func TestBindParameters(t *testing.T) {
	f := newFakeServer(t)
	f.regs = []SIPRegistration{{ID: 101}, {ID: 102}}
	c, _ := testClient(t, f, nil)
	ctx := context.Background()
	steps := []struct {
		id     int64
		target *reconcile.Target
	}{
		{101, &reconcile.Target{Application: reconcile.Ref{ID: 77, Name: "support"}, User: &reconcile.Ref{ID: 9, Name: "alice"}}},
		{102, &reconcile.Target{Application: reconcile.Ref{ID: 77, Name: "support"}, Rule: &reconcile.Ref{ID: 5, Name: "inbound"}}},
		{101, nil},
		{102, &reconcile.Target{Application: reconcile.Ref{ID: 78}}},
	}
	for _, s := range steps {
		if err := c.Bind(ctx, s.id, s.target); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{
		"BindSipRegistration application_id=77&bind=true&sip_registration_id=101&user_id=9",
		"BindSipRegistration application_id=77&bind=true&rule_id=5&sip_registration_id=102",
		"BindSipRegistration bind=false&sip_registration_id=101",
		"BindSipRegistration application_id=78&bind=true&sip_registration_id=102",
	}
	if diff := cmp.Diff(want, f.forms); diff != "" {
		t.Errorf("forms sent (-want +got):\n%s", diff)
	}
	for _, bad := range []BindRequest{
		{RegistrationID: 0, Bind: false},
		{RegistrationID: 1, Bind: true},
		{RegistrationID: 1, Bind: true, ApplicationID: 7, RuleID: 1, UserID: 2},
		{RegistrationID: 1, Bind: false, ApplicationID: 7},
	} {
		if err := c.BindSipRegistration(ctx, bad); err == nil {
			t.Errorf("BindSipRegistration(%+v) sent", bad)
		}
	}
	if len(f.forms) != len(want) {
		t.Errorf("invalid requests reached the server")
	}
}

func TestBindResultZero(t *testing.T) {
	f := newFakeServer(t)
	f.fault = func(_ int64, _ string, w http.ResponseWriter, _ *http.Request) bool {
		writeJSON(w, map[string]any{"result": 0})
		return true
	}
	c, _ := testClient(t, f, nil)
	if err := c.Bind(context.Background(), 5, nil); err == nil || !strings.Contains(err.Error(), "answered result 0") {
		t.Errorf("error %v", err)
	}
}

// TestConcurrentUse runs reads and writes from many goroutines (run with
// -race): one token is signed and shared, every call succeeds.
func TestConcurrentUse(t *testing.T) {
	f := newFakeServer(t)
	for i := range 50 {
		f.regs = append(f.regs, SIPRegistration{ID: int64(100 + i)})
	}
	f.fault = func(n int64, _ string, w http.ResponseWriter, _ *http.Request) bool {
		if n%7 == 3 {
			apiError(w, 340, "Rate limit exceeded")
			return true
		}
		return false
	}
	c, _ := testClient(t, f, nil)
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			if err := c.Bind(context.Background(), int64(100+i), &reconcile.Target{Application: reconcile.Ref{ID: 7}}); err != nil {
				t.Error(err)
			}
			if _, err := c.Registrations(context.Background()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	tokens := map[string]bool{}
	for _, cl := range f.claims {
		tokens[fmt.Sprint(cl["iat"], cl["exp"])] = true
	}
	if len(tokens) != 1 {
		t.Errorf("%d different tokens for one client", len(tokens))
	}
	if st := c.Stats(); st.RateLimited == 0 || st.Requests != st.Calls+st.Retries {
		t.Errorf("stats %+v", st)
	}
}

// TestRetryHintNeverShortensBackoff: a Retry-After shorter than the
// backoff does not cut it short; it only lengthens the shorter waits.
func TestRetryHintNeverShortensBackoff(t *testing.T) {
	f := newFakeServer(t)
	f.fault = func(n int64, _ string, w http.ResponseWriter, _ *http.Request) bool {
		if n <= 5 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(429)
			return true
		}
		return false
	}
	c, _ := testClient(t, f, func(o *Options) { o.RetryBudget = time.Minute })
	c.backoffBase, c.backoffCap = 100*time.Millisecond, 5*time.Second
	c.answered.Store(true)
	fc := withFakeClock(c)
	c.jitter = func(max time.Duration) time.Duration { return max }
	if _, err := c.Info(context.Background()); err != nil {
		t.Fatal(err)
	}
	s := time.Second
	want := []time.Duration{s, s, s, s, 1600 * time.Millisecond}
	if diff := cmp.Diff(want, fc.slept); diff != "" {
		t.Errorf("waits (-want +got):\n%s", diff)
	}
}

// TestGaveUpOnTryLater: a call the API answered "try later" until the
// retry budget was spent, or with a wait past it, matches
// *reconcile.TryLaterError with the code and how long it tried, so that
// apply stops starting steps; so does HTTP 429 (Too Many Requests) to
// the end or with a Retry-After past the budget. A server error (HTTP
// 503) or a final API error does not.
func TestGaveUpOnTryLater(t *testing.T) {
	for _, tc := range []struct {
		name     string
		fail     func(w http.ResponseWriter)
		tryLater bool
		code     int
		wait     time.Duration
	}{
		{"api 484 to the end", func(w http.ResponseWriter) { apiError(w, 484, "probable resend") }, true, 484, 0},
		{"api 162 to the end", func(w http.ResponseWriter) { apiError(w, 162, "try again later") }, true, 162, 0},
		{"api 416 past the budget", func(w http.ResponseWriter) { apiError(w, 416, "Repeat after 600 seconds") }, true, 416, 10 * time.Minute},
		{"http 429 to the end", func(w http.ResponseWriter) { w.WriteHeader(429) }, true, 429, 0},
		{"http 429 past the budget", func(w http.ResponseWriter) {
			w.Header().Set("Retry-After", "600")
			w.WriteHeader(429)
		}, true, 429, 10 * time.Minute},
		{"http 503", func(w http.ResponseWriter) { w.WriteHeader(503) }, false, 0, 0},
		{"api 101", func(w http.ResponseWriter) { apiError(w, 101, "no") }, false, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeServer(t)
			f.fault = func(_ int64, _ string, w http.ResponseWriter, _ *http.Request) bool {
				tc.fail(w)
				return true
			}
			const budget = 20 * time.Second
			c, _ := testClient(t, f, func(o *Options) { o.RetryBudget = budget })
			c.answered.Store(true) // the full budget applies
			withFakeClock(c)
			// The client's own waits: the budget is spent in about 14
			// attempts. The rate limiter keeps real time, and tiny waits
			// would send thousands of requests; on a loaded machine they
			// take more than a second, which slows the limiter to one
			// request a second and the test to hours.
			c.backoffBase, c.backoffCap = 100*time.Millisecond, 2*time.Second
			c.jitter = func(max time.Duration) time.Duration { return max }
			err := c.Bind(context.Background(), 1, nil)
			var tl *reconcile.TryLaterError
			if got := errors.As(err, &tl); got != tc.tryLater {
				t.Fatalf("error %v: a TryLaterError %v, want %v", err, got, tc.tryLater)
			}
			if !tc.tryLater {
				return
			}
			if tl.Code != tc.code || tl.HTTP != (tc.code == 429) || tl.Wait != tc.wait || tl.Budget != budget || tl.Error() != err.Error() {
				t.Errorf("code %d (HTTP %v), wait %v, budget %v, text %q; want %d, %v, %v and the call's error", tl.Code, tl.HTTP, tl.Wait, tl.Budget, tl.Error(), tc.code, tc.wait, budget)
			}
			if tc.wait == 0 && tl.For < budget/2 {
				t.Errorf("tried for %v; want most of the budget", tl.For)
			}
		})
	}
}

// TestHugeRetryAfter: a Retry-After of more seconds than a
// time.Duration holds is a day, past the budget: the call gives up at
// once, saying so, instead of an overflowed wait.
func TestHugeRetryAfter(t *testing.T) {
	now := time.Now()
	for v, want := range map[string]time.Duration{
		"99999999999":          24 * time.Hour,
		"99999999999999999999": 24 * time.Hour,
		"120":                  2 * time.Minute,
		"-5":                   0,
		"soon":                 0,
	} {
		if got := retryAfter(v, now); got != want {
			t.Errorf("retryAfter(%q) = %v, want %v", v, got, want)
		}
	}
	for name, fail := range map[string]func(http.ResponseWriter){
		"Retry-After": func(w http.ResponseWriter) { w.Header().Set("Retry-After", "99999999999"); w.WriteHeader(429) },
		"message":     func(w http.ResponseWriter) { apiError(w, 416, "repeat after 9223372037 seconds") },
	} {
		f := newFakeServer(t)
		f.fault = func(_ int64, _ string, w http.ResponseWriter, _ *http.Request) bool { fail(w); return true }
		c, _ := testClient(t, f, nil)
		fc := withFakeClock(c)
		err := c.Bind(context.Background(), 1, nil)
		if err == nil || !strings.Contains(err.Error(), "gave up: the server asks to retry after 24h0m0s or more, past the retry budget") {
			t.Errorf("%s: error %v; want it to give up at once on a wait past the budget", name, err)
		}
		if len(fc.slept) != 0 || c.Stats().Requests != 1 {
			t.Errorf("%s: waited %v and sent %d requests; want one request and no wait", name, fc.slept, c.Stats().Requests)
		}
	}
}

// TestBindAnswerThatSaysNothing: a BindSipRegistration answer that does
// not say whether the call took effect ("result": null, a result other
// than 1 or true, 0 or false, or a final error together with a result)
// makes the step unknown, not failed (nor applied); an error alone, or a
// result of 0 or false, is a failure. TestBindResultTrue has the
// results that say it took effect.
func TestBindAnswerThatSaysNothing(t *testing.T) {
	for body, unknown := range map[string]bool{
		`{"result": null}`: true,
		`{"result": 1, "error": {"code": 101, "msg": "both"}}`: true,
		`{"error": {"code": 101, "msg": "no"}}`:                false,
		`{"result": 0}`:                                        false,
		`{"result": false}`:                                    false,
		`{"result": "ok"}`:                                     true,
		`{"result": {}}`:                                       true,
		`{"result": "0"}`:                                      true,
		`{"result": "1"}`:                                      true,
		`{"result": 2}`:                                        true,
		`{"result": []}`:                                       true,
	} {
		f := newFakeServer(t)
		f.fault = func(_ int64, _ string, w http.ResponseWriter, _ *http.Request) bool {
			w.Write([]byte(body))
			return true
		}
		c, _ := testClient(t, f, nil)
		err := c.Bind(context.Background(), 1, nil)
		if err == nil || errors.Is(err, reconcile.ErrOutcomeUnknown) != unknown {
			t.Errorf("%s: error %v; want unknown %v", body, err, unknown)
		}
	}
}

// TestBindResultTrue: a BindSipRegistration answer of result 1 or true
// says the call took effect.
func TestBindResultTrue(t *testing.T) {
	for _, body := range []string{`{"result": 1}`, `{"result": true}`, `{"result":1 }`} {
		f := newFakeServer(t)
		f.fault = func(_ int64, _ string, w http.ResponseWriter, _ *http.Request) bool {
			w.Write([]byte(body))
			return true
		}
		c, _ := testClient(t, f, nil)
		if err := c.Bind(context.Background(), 1, nil); err != nil {
			t.Errorf("%s: error %v; want none", body, err)
		}
	}
}

// TestRetryHintBeyondBudget: a retry hint far past the retry budget gives
// up at once, whatever its size. A number of seconds that overflows a
// time.Duration once converted, or a date centuries ahead, once made the
// client sleep for centuries (the budget check overflowed too) or for a
// few hundred milliseconds (the conversion wrapped around).
func TestRetryHintBeyondBudget(t *testing.T) {
	header := func(v string) func(w http.ResponseWriter) {
		return func(w http.ResponseWriter) { w.Header().Set("Retry-After", v); w.WriteHeader(503) }
	}
	message := func(msg string) func(w http.ResponseWriter) {
		return func(w http.ResponseWriter) { apiError(w, 416, msg) }
	}
	for _, tt := range []struct {
		name string
		fail func(w http.ResponseWriter)
		want string
	}{
		{"seconds near the largest duration", header("9223372036"), "24h0m0s or more"},
		{"seconds that wrap around", header("18446744074"), "24h0m0s or more"},
		{"seconds of thousands of years", header("99999999999"), "24h0m0s or more"},
		{"seconds past int64", header("99999999999999999999999"), "24h0m0s or more"},
		{"a date in year 9999", header("Fri, 31 Dec 9999 23:59:59 GMT"), "24h0m0s or more"},
		{"an hour", header("3600"), "1h0m0s"},
		{"message near the largest duration", message("Repeat after 9223372036 seconds"), "24h0m0s or more"},
		{"message that overflows to negative", message("Repeat after 9223372037 seconds"), "24h0m0s or more"},
		{"message past int64", message("Repeat after 99999999999999999999999 seconds"), "24h0m0s or more"},
		{"message of a day and a second", message("Repeat after 86401 seconds"), "24h0m0s or more"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeServer(t)
			var fc *fakeClock
			f.fault = func(n int64, _ string, w http.ResponseWriter, _ *http.Request) bool {
				if n != 1 {
					return false
				}
				fc.mu.Lock()
				fc.now = fc.now.Add(time.Second) // a slow answer: time has passed in the call
				fc.mu.Unlock()
				tt.fail(w)
				return true
			}
			c, _ := testClient(t, f, nil)
			fc = withFakeClock(c)
			_, err := c.Info(context.Background())
			if len(fc.slept) != 0 {
				t.Errorf("slept %v, want no wait: the hint is past the budget", fc.slept)
			}
			if err == nil || !strings.Contains(err.Error(), "gave up: the server asks to retry after "+tt.want+", past the retry budget") {
				t.Errorf("error %v, want it to say the server asks to retry after %s, past the budget", err, tt.want)
			}
		})
	}
}
