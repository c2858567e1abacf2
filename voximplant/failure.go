package voximplant

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/voxbind/voxbind/reconcile"
)

// How long the client keeps trying. Until the Management API has answered
// once in the life of a Client, a wrong endpoint or a missing network is
// far likelier than an outage, so the budget is short; once it has
// answered, failures are outages worth waiting out.
const (
	DefaultRetryBudget  = 2 * time.Minute  // per call, once the API has answered
	DefaultTimeout      = 30 * time.Second // per attempt, once the API has answered
	FirstContactBudget  = 15 * time.Second // per call, until the API first answers
	FirstContactTimeout = 10 * time.Second // per attempt, until the API first answers
)

// Cause is the kind of transient failure a call is retrying after.
type Cause string

// The transient causes. Everything else fails the call at once.
const (
	CauseUnreachable Cause = "unreachable"  // no connection, or it broke before the answer
	CauseNoAnswer    Cause = "no answer"    // an attempt got no answer within its timeout
	CauseServerError Cause = "server error" // HTTP 5xx without an API answer
	CauseRateLimited Cause = "rate limited" // API error 340 or HTTP 429
	CauseTryLater    Cause = "try later"    // the API's other "try again later" codes
)

// RetryEvent is what Options.OnRetry hears when an attempt failed in a way
// worth repeating and the client is about to wait and repeat it.
type RetryEvent struct {
	Method  string        // the API method, e.g. BindSipRegistration
	Cause   Cause         // the kind of failure
	Detail  string        // the failure in a few words: "connection refused", "http status 503"
	Err     error         // the attempt's error
	Attempt int           // the attempt that failed: 1 for the first
	Wait    time.Duration // until the next attempt
	Budget  time.Duration // how long this call may retry in all
	// Deadline is when the caller's context ends (zero: it has no
	// deadline), which may come before the budget is spent.
	Deadline time.Time
}

// Reason says what is wrong in words for an operator:
// "the API is not reachable (connection refused)".
func (e RetryEvent) Reason() string {
	var what string
	switch e.Cause {
	case CauseUnreachable:
		what = "the API is not reachable"
	case CauseNoAnswer:
		what = "the API does not answer"
	case CauseServerError:
		what = "the API is failing"
	case CauseRateLimited:
		what = "the API is limiting the request rate"
	default:
		what = "the API asks to try again later"
	}
	if e.Detail == "" {
		return what
	}
	return what + " (" + e.Detail + ")"
}

// EndpointError is a failure that no retry can heal: the endpoint's host
// does not exist, its TLS certificate does not verify, or what answers is
// not the Management API. The fix is in the endpoint URL or the network.
type EndpointError struct {
	Method  string
	Problem string // what is wrong
	Fix     string // what to do
	Err     error  // the underlying error, if any
}

func (e *EndpointError) Error() string {
	return e.Method + ": " + e.Problem + "; " + e.Fix
}

func (e *EndpointError) Unwrap() error { return e.Err }

// checkEndpointURL is the fix shared by most endpoint errors.
const checkEndpointURL = "check the endpoint URL (--endpoint or VOXIMPLANT_ENDPOINT; Voximplant's is " + DefaultEndpoint + ")"

// lostError is the error of a write that may have reached the API although
// no answer says whether it took effect: an attempt's answer was lost and
// no later attempt settled it. It matches reconcile.ErrOutcomeUnknown.
type lostError struct{ err error }

func (e *lostError) Error() string   { return e.err.Error() }
func (e *lostError) Unwrap() []error { return []error{e.err, reconcile.ErrOutcomeUnknown} }

// notSentError is the error of a write that ctx ended before its first
// request went out. It matches reconcile.ErrNotSent.
type notSentError struct{ err error }

func (e *notSentError) Error() string   { return e.err.Error() }
func (e *notSentError) Unwrap() []error { return []error{e.err, reconcile.ErrNotSent} }

// networkError classifies an exchange that got no complete answer. The
// caller's cancellation ends a read (a write's attempt is not tied to it);
// a host that does not exist, a certificate that does not verify and an
// endpoint that does not speak TLS fail at once; anything else (refused,
// reset, timed out) is transient: every write voxbind makes is idempotent
// (docs/management-api.md), so repeating one whose answer was lost is safe.
func (c *Client) networkError(ctx, actx context.Context, method string, err error, sentAt time.Time, timeout time.Duration) result {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err // the URL is the endpoint; the method already names it
	}
	if ctx.Err() != nil && context.Cause(actx) == context.Cause(ctx) {
		return result{err: fmt.Errorf("%s: %w", method, context.Cause(ctx)), cancelled: true, lost: true}
	}
	if errors.Is(actx.Err(), context.DeadlineExceeded) {
		c.noteFailure(sentAt)
		within := timeout.Round(time.Millisecond).String()
		return result{err: fmt.Errorf("%s: no answer within %s", method, within), transient: true, lost: true,
			cause: CauseNoAnswer, detail: "no answer within " + within}
	}
	if eerr := endpointError(method, err); eerr != nil {
		eerr.Problem = c.clean(eerr.Problem)
		return result{err: eerr}
	}
	c.noteFailure(sentAt)
	var op *net.OpError
	sent := !(errors.As(err, &op) && op.Op == "dial")
	// The text may quote what the server sent ("malformed HTTP response
	// ..."), so it is cleaned like an answer.
	return result{err: &cleanError{msg: method + ": " + c.clean(err.Error()), err: err}, transient: true, lost: sent,
		cause: CauseUnreachable, detail: c.clean(unreachableDetail(err))}
}

// cleanError shows an error's text cleaned of secrets (Client.clean), and
// unwraps to the error, whose text is never shown.
type cleanError struct {
	msg string
	err error
}

func (e *cleanError) Error() string { return e.msg }
func (e *cleanError) Unwrap() error { return e.err }

// endpointError recognises the network failures that retrying cannot heal.
func endpointError(method string, err error) *EndpointError {
	var dns *net.DNSError
	if errors.As(err, &dns) && dns.IsNotFound {
		return &EndpointError{Method: method, Err: err,
			Problem: fmt.Sprintf("the endpoint's host %q does not exist (DNS: %s)", dns.Name, dns.Err),
			Fix:     checkEndpointURL}
	}
	var (
		verify    *tls.CertificateVerificationError
		authority x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
	)
	if errors.As(err, &verify) || errors.As(err, &authority) || errors.As(err, &hostname) || errors.As(err, &invalid) {
		return &EndpointError{Method: method, Err: err,
			Problem: "the endpoint's TLS certificate does not verify (" + tlsDetail(err) + ")",
			Fix:     checkEndpointURL + "; if a proxy on your network inspects TLS, add its CA certificate to this machine's trust store (or name it in SSL_CERT_FILE)"}
	}
	var record tls.RecordHeaderError
	if errors.As(err, &record) || strings.Contains(err.Error(), "server gave HTTP response to HTTPS client") {
		return &EndpointError{Method: method, Err: err,
			Problem: "the endpoint does not speak TLS (an https:// URL for a plain-HTTP server?)",
			Fix:     checkEndpointURL}
	}
	return nil
}

// tlsDetail is the reason a certificate was refused, without the Go
// package prefix.
func tlsDetail(err error) string {
	s := err.Error()
	if i := strings.Index(s, "x509: "); i >= 0 {
		return s[i:]
	}
	return s
}

// unreachableDetail names a connection failure in a few words.
func unreachableDetail(err error) string {
	var (
		dns *net.DNSError
		ne  net.Error
	)
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.EPIPE):
		return "connection broken"
	case errors.Is(err, syscall.EHOSTUNREACH):
		return "no route to host"
	case errors.Is(err, syscall.ENETUNREACH):
		return "network unreachable"
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed before the answer"
	case errors.As(err, &dns):
		return "DNS lookup failed: " + dns.Err
	case errors.As(err, &ne) && ne.Timeout():
		return "connection timed out"
	}
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 {
		s = s[i+2:]
	}
	return s
}

// noteAnswer records that the API answered: the first-contact budget ends,
// and the API is reachable.
func (c *Client) noteAnswer() {
	now := c.now()
	c.answered.Store(true)
	c.healthMu.Lock()
	c.failingSince, c.lastAnswer = time.Time{}, now
	c.healthMu.Unlock()
}

// noteFailure records an attempt sent at sentAt that failed at transport
// level. The API has been unreachable since that request went out, not
// since its failure showed (an attempt that gets no answer shows it only
// when it times out, 30 s later), unless an answer came after it was
// sent: then since that answer. For a refused connection the two times
// are the same.
func (c *Client) noteFailure(sentAt time.Time) {
	c.healthMu.Lock()
	defer c.healthMu.Unlock()
	since := sentAt
	if since.Before(c.lastAnswer) {
		since = c.lastAnswer
	}
	if c.failingSince.IsZero() || since.Before(c.failingSince) {
		c.failingSince = since
	}
}

// Unreachable reports whether every attempt since some moment has failed
// at transport level (no connection, no answer, or HTTP 5xx without an
// API answer), and since when: the time the first of those requests was
// sent (or the last answer, if it came later). It is the signal for
// apply's circuit breaker. Any answer of the API ends it.
func (c *Client) Unreachable() (since time.Time, ok bool) {
	c.healthMu.Lock()
	defer c.healthMu.Unlock()
	return c.failingSince, !c.failingSince.IsZero()
}

// retryBudget is how long a call may keep retrying: short while the API
// has not answered yet.
func (c *Client) retryBudget() time.Duration {
	if c.answered.Load() {
		return c.budget
	}
	return min(c.budget, c.firstBudget)
}

// attemptTimeout is how long an attempt of a call begun at start waits for
// its answer. While the API has not answered yet, it is short, and the
// call ends within its budget: an endpoint that never answers costs 15 s,
// not 15 s plus a last attempt.
func (c *Client) attemptTimeout(start time.Time) time.Duration {
	if c.answered.Load() {
		return c.timeout
	}
	t := min(c.timeout, c.firstTimeout)
	left := min(c.budget, c.firstBudget) - c.now().Sub(start)
	return max(min(t, left), t/10)
}
