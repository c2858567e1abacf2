package voximplant

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/voxbind/voxbind/reconcile"
)

// retryLog collects the events OnRetry hears.
type retryLog struct {
	mu     sync.Mutex
	events []RetryEvent
}

func (l *retryLog) add(e RetryEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

func (l *retryLog) all() []RetryEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]RetryEvent(nil), l.events...)
}

// failFirst makes the first request fail with fail; the others are served.
func failFirst(f *fakeServer, fail func(w http.ResponseWriter)) {
	f.fault = func(n int64, _ string, w http.ResponseWriter, _ *http.Request) bool {
		if n == 1 {
			fail(w)
			return true
		}
		return false
	}
}

// closedPort is a loopback address where nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestRetryEvents fails the first attempt in each transient way and checks
// the one event OnRetry hears: its cause, its words and the budget.
func TestRetryEvents(t *testing.T) {
	// Nothing had answered before each first call: the short budget holds
	// until the API itself answers, even with an error.
	tests := []struct {
		name   string
		fail   func(w http.ResponseWriter)
		cause  Cause
		reason string
		budget time.Duration
	}{
		{"http 503", func(w http.ResponseWriter) { w.WriteHeader(503) }, CauseServerError, "the API is failing (http status 503)", FirstContactBudget},
		{"api 340", func(w http.ResponseWriter) { apiError(w, 340, "Rate limit exceeded") }, CauseRateLimited, "the API is limiting the request rate (api error 340)", DefaultRetryBudget},
		{"http 429", func(w http.ResponseWriter) { w.WriteHeader(429) }, CauseRateLimited, "the API is limiting the request rate (http status 429)", DefaultRetryBudget},
		{"api 416", func(w http.ResponseWriter) { apiError(w, 416, "Repeat after 0 seconds") }, CauseTryLater, "the API asks to try again later (api error 416)", DefaultRetryBudget},
		{"dropped", drop, CauseUnreachable, "the API is not reachable (connection closed before the answer)", FirstContactBudget},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeServer(t)
			failFirst(f, tt.fail)
			var log retryLog
			c, _ := testClient(t, f, func(o *Options) { o.OnRetry = log.add })
			if _, err := c.Info(context.Background()); err != nil {
				t.Fatal(err)
			}
			ev := log.all()
			if len(ev) != 1 {
				t.Fatalf("%d events, want 1: %+v", len(ev), ev)
			}
			e := ev[0]
			if e.Method != "GetAccountInfo" || e.Cause != tt.cause || e.Reason() != tt.reason || e.Attempt != 1 || e.Err == nil {
				t.Errorf("event %+v (reason %q), want cause %q, reason %q, attempt 1", e, e.Reason(), tt.cause, tt.reason)
			}
			if e.Budget != tt.budget {
				t.Errorf("budget %v, want %v", e.Budget, tt.budget)
			}
		})
	}
}

// TestRetryEventConnectionRefused: a port where nothing listens is
// "not reachable (connection refused)", and retried.
func TestRetryEventConnectionRefused(t *testing.T) {
	var log retryLog
	c, err := New(Options{Endpoint: "http://" + closedPort(t) + "/platform_api/", Credentials: testCredentials(), OnRetry: log.add})
	if err != nil {
		t.Fatal(err)
	}
	c.firstBudget = 300 * time.Millisecond
	c.backoffBase, c.backoffCap = time.Millisecond, 20*time.Millisecond
	_, err = c.Info(context.Background())
	if err == nil || !strings.Contains(err.Error(), "gave up after") || !strings.Contains(err.Error(), "short because the API has not answered yet") {
		t.Fatalf("error %v, want it to give up on the short first-contact budget", err)
	}
	ev := log.all()
	if len(ev) < 2 {
		t.Fatalf("%d events, want one per retry", len(ev))
	}
	if r := ev[0].Reason(); r != "the API is not reachable (connection refused)" {
		t.Errorf("reason %q", r)
	}
	if since, ok := c.Unreachable(); !ok || since.IsZero() {
		t.Errorf("Unreachable() = %v, %v after refused connections; want true", since, ok)
	}
}

// TestFirstContactBudget: until the API has answered, a call retries
// for the short budget; after one answer, for the full one.
func TestFirstContactBudget(t *testing.T) {
	f := newFakeServer(t)
	var failing atomic.Bool
	failing.Store(true)
	f.fault = func(_ int64, _ string, w http.ResponseWriter, _ *http.Request) bool {
		if failing.Load() {
			w.WriteHeader(503)
			return true
		}
		return false
	}
	c, _ := testClient(t, f, func(o *Options) { o.RetryBudget = time.Minute })
	fc := withFakeClock(c)
	c.backoffBase, c.backoffCap = 100*time.Millisecond, 5*time.Second
	c.jitter = func(max time.Duration) time.Duration { return max }
	if _, err := c.Info(context.Background()); err == nil {
		t.Fatal("no error from a server that always fails")
	}
	if total := fc.total(); total > FirstContactBudget {
		t.Errorf("retried for %v before the API ever answered; want at most %v", total, FirstContactBudget)
	}
	if _, ok := c.Unreachable(); !ok {
		t.Error("Unreachable() = false after 503s only")
	}

	failing.Store(false)
	if _, err := c.Info(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Unreachable(); ok {
		t.Error("Unreachable() = true after an answer")
	}
	failing.Store(true)
	fc.mu.Lock()
	fc.slept = nil
	fc.mu.Unlock()
	if err := c.Bind(context.Background(), 1, nil); err == nil {
		t.Fatal("no error from a server that always fails")
	}
	if total := fc.total(); total < 2*FirstContactBudget || total > time.Minute {
		t.Errorf("retried for %v after the API had answered; want nearly the full budget (1m)", total)
	}
}

func (fc *fakeClock) total() time.Duration {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	var d time.Duration
	for _, s := range fc.slept {
		d += s
	}
	return d
}

// TestFirstContactTimeout: an endpoint that accepts and never answers
// costs the short attempt timeout before the first answer, and the call
// ends within the first-contact budget, its last attempt cut short.
func TestFirstContactTimeout(t *testing.T) {
	f := newFakeServer(t)
	f.fault = func(_ int64, _ string, _ http.ResponseWriter, r *http.Request) bool {
		<-r.Context().Done()
		return true
	}
	c, trace := testClient(t, f, nil)
	// The call's clock starts before the key signs its token, which on a
	// loaded machine can take 100 ms and more: the budget leaves 700 ms
	// for that before the first attempt, which waits 500 ms.
	c.firstTimeout, c.firstBudget = 500*time.Millisecond, 1200*time.Millisecond
	start := time.Now()
	_, err := c.Info(context.Background())
	took := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "(retry budget 1.2s, short because the API has not answered yet in this run): GetAccountInfo: no answer within ") {
		t.Fatalf("error %v, want no answer within the first-contact budget", err)
	}
	if !strings.Contains(trace.String(), `err="GetAccountInfo: no answer within 500ms"`) {
		t.Errorf("the first attempts did not wait 500ms:\n%s", trace)
	}
	if took > 10*time.Second {
		t.Errorf("took %v", took)
	}
}

// TestFailFast: what no retry can heal fails on the first attempt, with
// what is wrong and what to do. (A host that does not exist: see
// TestPlanFailsFast, which runs the whole command.)
func TestFailFast(t *testing.T) {
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, `{"result":{}}`) }))
	t.Cleanup(tlsSrv.Close)
	plainSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, `{"result":{}}`) }))
	t.Cleanup(plainSrv.Close)
	tests := []struct {
		name     string
		endpoint string
		want     []string
	}{
		{"tls certificate", tlsSrv.URL + "/platform_api/", []string{
			"GetAccountInfo: the endpoint's TLS certificate does not verify (x509: certificate signed by unknown authority)",
			"check the endpoint URL", "add its CA certificate to this machine's trust store",
		}},
		{"not tls", strings.Replace(plainSrv.URL, "http://", "https://", 1) + "/platform_api/", []string{
			"GetAccountInfo: the endpoint does not speak TLS", "check the endpoint URL",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log retryLog
			c, err := New(Options{Endpoint: tt.endpoint, Credentials: testCredentials(), OnRetry: log.add})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Info(context.Background())
			var eerr *EndpointError
			if !errors.As(err, &eerr) {
				t.Fatalf("error %v (%T), want an *EndpointError", err, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nlacks %q", err, w)
				}
			}
			if n := len(log.all()); n != 0 || c.Stats().Requests != 1 {
				t.Errorf("%d retries, %d requests; want one request, no retry", n, c.Stats().Requests)
			}
		})
	}
}

// TestFailFastDNS: a host that the resolver says does not exist ends the
// call at the first attempt, on any machine: the dialer answers as a
// resolver would, so the test does not depend on this machine's DNS.
func TestFailFastDNS(t *testing.T) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = func(_ context.Context, _, addr string) (net.Conn, error) {
		host, _, _ := net.SplitHostPort(addr)
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}}
	}
	var log retryLog
	c, err := New(Options{Endpoint: "https://api.voximplant.invalid/platform_api/", Credentials: testCredentials(),
		OnRetry: log.add, HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Info(context.Background())
	var eerr *EndpointError
	if !errors.As(err, &eerr) || !strings.Contains(err.Error(), `the endpoint's host "api.voximplant.invalid" does not exist (DNS: no such host)`) ||
		!strings.Contains(err.Error(), "check the endpoint URL") {
		t.Fatalf("error %v (%T), want an *EndpointError saying the host does not exist", err, err)
	}
	if n := len(log.all()); n != 0 || c.Stats().Requests != 1 {
		t.Errorf("%d retries, %d requests; want one request, no retry", n, c.Stats().Requests)
	}
}

// TestWriteOutcomeUnknown: a write whose answers are all lost is unknown;
// one that never reached the server (refused) or was answered is not; a
// read never is.
func TestWriteOutcomeUnknown(t *testing.T) {
	// server returns a client of a new server whose requests all go
	// through handle (true: it answered): writes after they took effect,
	// reads before they are served.
	server := func(handle func(n int64, w http.ResponseWriter) bool) *Client {
		f := newFakeServer(t)
		f.regs = []SIPRegistration{{ID: 101}}
		f.after = func(n int64, _ string, w http.ResponseWriter, _ *http.Request) bool { return handle(n, w) }
		f.fault = func(n int64, method string, w http.ResponseWriter, _ *http.Request) bool {
			return method != "BindSipRegistration" && handle(n, w)
		}
		c, _ := testClient(t, f, func(o *Options) { o.RetryBudget = 100 * time.Millisecond })
		return c
	}
	c := server(func(_ int64, w http.ResponseWriter) bool { drop(w); return true })
	if err := c.Bind(context.Background(), 101, nil); !errors.Is(err, reconcile.ErrOutcomeUnknown) {
		t.Errorf("every answer lost: error %v, want it to match ErrOutcomeUnknown", err)
	}
	if _, err := c.Registrations(context.Background()); err == nil || errors.Is(err, reconcile.ErrOutcomeUnknown) {
		t.Errorf("read, every answer lost: error %v, want a plain failure", err)
	}

	// Lost, then a final API error: the last answer settles it.
	c = server(func(n int64, w http.ResponseWriter) bool {
		if n == 1 {
			drop(w)
		} else {
			apiError(w, 275, "Invalid sip_registration_id")
		}
		return true
	})
	if err := c.Bind(context.Background(), 101, nil); err == nil || errors.Is(err, reconcile.ErrOutcomeUnknown) {
		t.Errorf("lost then refused: error %v, want a plain failure", err)
	}

	refused, err := New(Options{Endpoint: "http://" + closedPort(t) + "/platform_api/", Credentials: testCredentials()})
	if err != nil {
		t.Fatal(err)
	}
	refused.firstBudget = 100 * time.Millisecond
	refused.backoffBase = time.Millisecond
	if err := refused.Bind(context.Background(), 101, nil); err == nil || errors.Is(err, reconcile.ErrOutcomeUnknown) {
		t.Errorf("connection refused: error %v, want a plain failure (nothing was sent)", err)
	}
}

// TestLostWriteSettledOnlyByItsOwnAnswer: the first attempt takes effect
// and its answer is lost; the retry's answer settles the step only when
// the API judged the request itself. A refusal of the request (393)
// means the identical first attempt was refused too: failed. A refused
// key, or answers that only say "try later", say nothing about the
// first attempt: unknown, and a refused key still stops the apply.
func TestLostWriteSettledOnlyByItsOwnAnswer(t *testing.T) {
	tests := []struct {
		name    string
		retry   func(w http.ResponseWriter)
		unknown bool
		refused bool // the key: reconcile.KeyRefusedError
	}{
		{"request refused", func(w http.ResponseWriter) { apiError(w, 393, "Invalid application_id") }, false, false},
		{"key refused", func(w http.ResponseWriter) { apiError(w, CodeInvalidKeyID, "Invalid key_id") }, true, true},
		{"role refused", func(w http.ResponseWriter) { apiError(w, CodeForbidden, "Forbidden") }, true, true},
		{"try later", func(w http.ResponseWriter) { apiError(w, CodeTryLater, "Try again later") }, true, false},
		{"rate limited", func(w http.ResponseWriter) { w.WriteHeader(http.StatusTooManyRequests) }, true, false},
		{"a proxy's refusal", func(w http.ResponseWriter) { http.Error(w, "forbidden by policy", http.StatusForbidden) }, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeServer(t)
			f.regs = []SIPRegistration{{ID: 101}}
			var binds atomic.Int64
			f.fault = func(_ int64, method string, w http.ResponseWriter, _ *http.Request) bool {
				if method != "BindSipRegistration" || binds.Add(1) == 1 {
					return false // the first attempt reaches the account
				}
				tt.retry(w)
				return true
			}
			f.after = func(_ int64, method string, w http.ResponseWriter, _ *http.Request) bool {
				if method != "BindSipRegistration" {
					return false
				}
				drop(w) // bound, but the answer is lost
				return true
			}
			c, _ := testClient(t, f, func(o *Options) { o.RetryBudget = 300 * time.Millisecond })
			err := c.Bind(context.Background(), 101, &reconcile.Target{Application: reconcile.Ref{ID: 77}})
			if err == nil {
				t.Fatal("no error")
			}
			if got := errors.Is(err, reconcile.ErrOutcomeUnknown); got != tt.unknown {
				t.Errorf("error %v: unknown outcome %v, want %v", err, got, tt.unknown)
			}
			var refused *reconcile.KeyRefusedError
			if got := errors.As(err, &refused); got != tt.refused {
				t.Errorf("error %v: key refused %v, want %v", err, got, tt.refused)
			}
			if says := strings.Contains(err.Error(), "the answer to an earlier attempt was lost"); says != tt.unknown {
				t.Errorf("error %q: says the earlier answer was lost: %v, want %v", err, says, tt.unknown)
			}
			if f.regs[0].ApplicationID != 77 {
				t.Fatalf("registration %+v: the first attempt did not take effect", f.regs[0])
			}
		})
	}
}

// TestLostWriteThenUnreachable: after a lost answer, retries that never
// reach the API (the connection is refused) leave the step unknown, and
// the error does not call a refused connection an answer.
func TestLostWriteThenUnreachable(t *testing.T) {
	f := newFakeServer(t)
	f.regs = []SIPRegistration{{ID: 101}}
	f.after = func(_ int64, method string, w http.ResponseWriter, _ *http.Request) bool {
		if method != "BindSipRegistration" {
			return false
		}
		f.srv.Listener.Close() // every retry is refused
		drop(w)                // bound, but the answer is lost
		return true
	}
	c, _ := testClient(t, f, func(o *Options) { o.RetryBudget = 300 * time.Millisecond })
	err := c.Bind(context.Background(), 101, &reconcile.Target{Application: reconcile.Ref{ID: 77}})
	if !errors.Is(err, reconcile.ErrOutcomeUnknown) {
		t.Fatalf("error %v: want an unknown outcome", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "the answer to an earlier attempt was lost, and this attempt did not reach the API") || strings.Contains(msg, "this answer") {
		t.Errorf("error %q: want it to say the retry did not reach the API, not call it an answer", msg)
	}
}

// TestWriteRunsToItsAnswerAfterCancel: cancelling a write's context stops
// retries but lets the attempt in flight get its answer; a read's attempt
// is abandoned at once.
func TestWriteRunsToItsAnswerAfterCancel(t *testing.T) {
	f := newFakeServer(t)
	f.regs = []SIPRegistration{{ID: 101}}
	arrived := make(chan struct{}, 10)
	release := make(chan struct{})
	f.fault = func(_ int64, _ string, _ http.ResponseWriter, _ *http.Request) bool {
		arrived <- struct{}{}
		<-release
		return false
	}
	c, _ := testClient(t, f, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Bind(ctx, 101, &reconcile.Target{Application: reconcile.Ref{ID: 77}}) }()
	<-arrived
	cancel()
	select {
	case err := <-done:
		t.Fatalf("the write returned (%v) while its request was still being answered", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if err := <-done; err != nil {
		t.Errorf("write answered after cancel: %v, want success", err)
	}
	if f.regs[0].ApplicationID != 77 {
		t.Errorf("registration %+v, want bound to 77", f.regs[0])
	}

	// A transient failure after the cancel is not retried, and the write
	// whose request may have taken effect is unknown.
	f.fault = func(_ int64, _ string, w http.ResponseWriter, _ *http.Request) bool {
		arrived <- struct{}{}
		w.WriteHeader(503)
		return true
	}
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	before := c.Stats().Requests
	err := c.Bind(ctx, 101, nil)
	if !errors.Is(err, context.Canceled) || c.Stats().Requests != before {
		t.Errorf("write with a cancelled context: %v after %d requests; want context.Canceled and no request", err, c.Stats().Requests-before)
	}
}

// stoppedWrite makes a Bind whose attempt is in flight when its context
// is cancelled with stop, then answered by answer; it returns the client
// and the Bind's error.
func stoppedWrite(t *testing.T, stop error, answer func(w http.ResponseWriter)) (*Client, error) {
	t.Helper()
	f := newFakeServer(t)
	f.regs = []SIPRegistration{{ID: 101}}
	arrived := make(chan struct{})
	release := make(chan struct{})
	f.fault = func(_ int64, _ string, w http.ResponseWriter, _ *http.Request) bool {
		close(arrived)
		<-release
		answer(w)
		return true
	}
	c, _ := testClient(t, f, nil)
	ctx, cancel := context.WithCancelCause(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Bind(ctx, 101, nil) }()
	<-arrived
	cancel(stop)
	close(release)
	return c, <-done
}

// TestStoppedWriteNotRetried: a transient failure of the attempt in flight
// when ctx is cancelled ends the call, unknown, without another attempt.
func TestStoppedWriteNotRetried(t *testing.T) {
	stop := errors.New("interrupted")
	c, err := stoppedWrite(t, stop, func(w http.ResponseWriter) { w.WriteHeader(503) })
	if !errors.Is(err, stop) || !errors.Is(err, reconcile.ErrOutcomeUnknown) {
		t.Errorf("error %v; want the stop's cause, unknown outcome", err)
	}
	if !strings.Contains(err.Error(), "BindSipRegistration: interrupted; not retried after: BindSipRegistration: http status 503") {
		t.Errorf("error %q does not say it was not retried and why", err)
	}
	if n := c.Stats().Requests; n != 1 {
		t.Errorf("%d requests; want 1 (no retry after the stop)", n)
	}
}

// TestStoppedWriteFinalAnswer: a final answer to the attempt in flight
// when ctx is cancelled (the key refused, say, while another step's
// refusal stopped the apply) is that answer: the call failed, and it
// would not have been retried anyway, so nothing says "not retried".
func TestStoppedWriteFinalAnswer(t *testing.T) {
	stop := errors.New("the API refuses the key: api error 433")
	_, err := stoppedWrite(t, stop, func(w http.ResponseWriter) { apiError(w, 433, "Invalid key_id") })
	var refused *reconcile.KeyRefusedError
	if !errors.As(err, &refused) || errors.Is(err, stop) || errors.Is(err, reconcile.ErrOutcomeUnknown) || strings.Contains(err.Error(), "not retried") {
		t.Errorf("error %q; want the API's own refusal, not the stop's cause", err)
	}
}

// TestNullListIsEmpty: a list page whose result is null is an empty page
// (a server may encode an empty list so), not an answer of another API.
func TestNullListIsEmpty(t *testing.T) {
	f := newFakeServer(t)
	f.fault = func(_ int64, method string, w http.ResponseWriter, _ *http.Request) bool {
		if method == "GetSipRegistrations" {
			fmt.Fprint(w, `{"result": null, "count": 0}`)
			return true
		}
		return false
	}
	c, _ := testClient(t, f, nil)
	regs, err := c.Registrations(context.Background())
	if err != nil || len(regs) != 0 {
		t.Errorf("Registrations = %v, %v; want none, no error", regs, err)
	}
}

// TestUnreachableSinceTheHang: a server that stops answering is
// unreachable since the first request it left unanswered was sent, not
// since that request's attempt timed out: the breaker's clock starts
// when answers stopped. An answer that came meanwhile (to a request sent
// later) moves the start to that answer.
func TestUnreachableSinceTheHang(t *testing.T) {
	f := newFakeServer(t)
	var hanging atomic.Bool
	held := make(chan time.Time, 10) // when each unanswered request arrived
	f.fault = func(_ int64, _ string, _ http.ResponseWriter, r *http.Request) bool {
		if !hanging.Load() {
			return false
		}
		held <- time.Now()
		<-r.Context().Done()
		return true
	}
	const timeout = time.Second
	c, _ := testClient(t, f, func(o *Options) { o.Timeout = timeout; o.RetryBudget = timeout })
	if _, err := c.Info(context.Background()); err != nil {
		t.Fatal(err)
	}

	hanging.Store(true)
	sent := time.Now()
	if _, err := c.Info(context.Background()); err == nil {
		t.Fatal("no error from a server that never answers")
	}
	since, ok := c.Unreachable()
	if !ok {
		t.Fatal("Unreachable() = false after an attempt got no answer")
	}
	// Sent after the call began and before it reached the server, not
	// when its attempt timed out (a second after it was sent): bounds in
	// the order of events, which a slow machine does not shift.
	arrived := <-held // the request above
	if since.Before(sent) || since.After(arrived) {
		t.Errorf("unreachable since %v after the call began, %v after the request reached the server; want when it was sent (the attempt timed out %v later)",
			since.Sub(sent), since.Sub(arrived), timeout)
	}

	// A request sent before an answer, and left unanswered: the API was
	// reachable until that answer.
	hanging.Store(false)
	c.Info(context.Background()) // an answer: reachable again
	hanging.Store(true)
	first := make(chan error, 1)
	go func() { _, err := c.Info(context.Background()); first <- err }()
	<-held
	hanging.Store(false)
	asked := time.Now() // the answer below comes after this
	if _, err := c.Info(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-first; err == nil {
		t.Fatal("the held request was answered")
	}
	if since, ok := c.Unreachable(); !ok || since.Before(asked) {
		t.Errorf("Unreachable() = %v, %v; want since the last answer, asked for at %v, at the earliest", since, ok, asked)
	}
}

// TestFirstContactBudgetNeverLonger: a retry budget shorter than the
// first-contact budget applies before the first answer too.
func TestFirstContactBudgetNeverLonger(t *testing.T) {
	f := newFakeServer(t)
	f.fault = func(_ int64, _ string, w http.ResponseWriter, _ *http.Request) bool { w.WriteHeader(503); return true }
	c, _ := testClient(t, f, func(o *Options) { o.RetryBudget = 3 * time.Second })
	fc := withFakeClock(c)
	c.backoffBase, c.backoffCap = 100*time.Millisecond, 5*time.Second
	c.jitter = func(max time.Duration) time.Duration { return max }
	_, err := c.Info(context.Background())
	if err == nil || !strings.Contains(err.Error(), "(retry budget 3s") {
		t.Fatalf("error %v, want it to give up on the retry budget of 3s", err)
	}
	if total := fc.total(); total > 3*time.Second {
		t.Errorf("retried for %v; want at most the retry budget, 3s", total)
	}
}

// TestFirstContactTimeoutFloor: before the first answer, an attempt
// waits no longer than what is left of the first-contact budget, but
// never less than a tenth of the first-contact timeout.
func TestFirstContactTimeoutFloor(t *testing.T) {
	c, err := New(Options{Endpoint: "http://127.0.0.1:1/platform_api/", Credentials: testCredentials()})
	if err != nil {
		t.Fatal(err)
	}
	fc := withFakeClock(c)
	if got := c.attemptTimeout(fc.Now()); got != FirstContactTimeout {
		t.Errorf("a call just begun: attempts wait %v, want %v", got, FirstContactTimeout)
	}
	start := fc.Now().Add(-(FirstContactBudget - time.Millisecond))
	if got := c.attemptTimeout(start); got != FirstContactTimeout/10 {
		t.Errorf("1ms of the first-contact budget left: attempts wait %v, want %v", got, FirstContactTimeout/10)
	}
}

// TestUnreachableSince: the API is unreachable since the earliest
// request of the run of failures was sent, however late the failures
// show, and not before the last answer; an answer ends it.
func TestUnreachableSince(t *testing.T) {
	c, err := New(Options{Endpoint: "http://127.0.0.1:1/platform_api/", Credentials: testCredentials()})
	if err != nil {
		t.Fatal(err)
	}
	fc := withFakeClock(c)
	t0 := fc.Now()
	fc.now = t0.Add(40 * time.Second)
	c.noteFailure(t0.Add(5 * time.Second)) // sent later, failed first
	c.noteFailure(t0)
	c.noteFailure(t0.Add(10 * time.Second))
	if since, ok := c.Unreachable(); !ok || !since.Equal(t0) {
		t.Errorf("Unreachable() = %v, %v; want %v, true", since, ok, t0)
	}
	c.noteAnswer()
	if since, ok := c.Unreachable(); ok {
		t.Errorf("Unreachable() = %v, true after an answer", since)
	}
	answered := fc.Now()
	fc.now = answered.Add(30 * time.Second)
	c.noteFailure(answered.Add(-time.Second)) // sent before the answer came
	if since, ok := c.Unreachable(); !ok || !since.Equal(answered) {
		t.Errorf("Unreachable() = %v, %v; want since the last answer, %v", since, ok, answered)
	}
}
