// Package voximplant is a client of the Voximplant Management API: JWT
// service-account authentication, paging, retries of transient failures and
// an adaptive rate limit. *Client implements reconcile.Account.
//
// It is built to what Voximplant documents and stays correct under the
// behaviour that leaves open (docs/management-api.md).
package voximplant

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/voxbind/voxbind/reconcile"
)

// DefaultEndpoint is the Management API of Voximplant's cloud.
const DefaultEndpoint = "https://api.voximplant.com/platform_api/"

// Options configure a Client.
type Options struct {
	Endpoint    string       // base URL, "" = DefaultEndpoint; http:// only for loopback hosts
	Credentials *Credentials // the service-account key that signs
	AccountID   int64        // child account to act on; 0 = the key's account
	// AccountSource says where AccountID comes from, for messages
	// ("fleet/a.yaml:2", "the plan plan.json"); "" = --account-id.
	AccountSource string
	Rate          float64 // ceiling in requests per second; 0 = none
	// Logger gets one debug record per HTTP attempt (method, parameters,
	// status, time; never the token), an info record per retry and per
	// clock correction. nil logs nothing.
	Logger      *slog.Logger
	HTTPClient  *http.Client  // nil = a client with its own connection pool
	ReadOnly    bool          // refuse BindSipRegistration without sending it
	UserAgent   string        // full User-Agent; "" = "voxbind"
	Timeout     time.Duration // for one attempt's answer; 0 = DefaultTimeout
	RetryBudget time.Duration // total time one call may spend retrying; 0 = DefaultRetryBudget
	// OnRetry, when set, hears of every failed attempt that the client is
	// about to repeat, before the wait. It is called from the goroutine
	// making the call, so it must be safe for concurrent use, and quick.
	OnRetry func(RetryEvent)
}

// Stats counts a client's traffic since New.
type Stats struct {
	Calls       int64   // API calls made (each may take several attempts)
	Requests    int64   // HTTP attempts sent
	Retries     int64   // attempts that repeated an earlier one
	RateLimited int64   // rate-limit answers (API error 340, HTTP 429)
	Transient   int64   // transient failures of any kind, rate limits included
	Rate        float64 // the adaptive limiter's current rate in req/s; 0 = unlimited
}

// Client talks to the Management API for one account. It is safe for
// concurrent use; all goroutines share one rate limiter.
type Client struct {
	endpoint string
	account  int64
	childOf  int64  // the key's account when acting on a child (--account-id), else 0
	source   string // where the child's id comes from; "" = --account-id
	http     *http.Client
	tokens   *tokenSource
	creds    *Credentials
	ua       string
	timeout  time.Duration
	budget   time.Duration
	limiter  *adaptiveLimiter
	readOnly bool
	paging   pagingStats
	onRetry  func(RetryEvent)

	// Until the API first answers, calls use the shorter first-contact
	// limits. failingSince is when the current run of transport-level
	// failures began (zero: the API answers); lastAnswer is when the API
	// last answered.
	firstBudget, firstTimeout time.Duration
	answered                  atomic.Bool
	healthMu                  sync.Mutex
	failingSince, lastAnswer  time.Time

	log *slog.Logger

	// Backoff between attempts: full jitter over base·2^attempt, capped.
	backoffBase, backoffCap time.Duration
	now                     func() time.Time
	sleep                   func(ctx context.Context, d time.Duration) error
	jitter                  func(max time.Duration) time.Duration
	pageParallelism         int
	maxRows, maxPages       int64 // bounds on one list read

	calls, requests, retries, rateLimited, transient atomic.Int64
}

// New checks the options and returns a client. It makes no request.
func New(o Options) (*Client, error) {
	if err := o.Credentials.Validate(); err != nil {
		return nil, fmt.Errorf("voximplant client: credentials: %w", err)
	}
	endpoint, err := checkEndpoint(o.Endpoint)
	if err != nil {
		return nil, err
	}
	if o.AccountID < 0 {
		return nil, fmt.Errorf("voximplant client: account id %d: must be positive", o.AccountID)
	}
	if o.Rate < 0 {
		return nil, fmt.Errorf("voximplant client: rate %g: must be positive (0 = no ceiling)", o.Rate)
	}
	account, childOf := o.Credentials.AccountID, int64(0)
	if o.AccountID != 0 && o.AccountID != account {
		account, childOf = o.AccountID, account
	}
	c := &Client{
		endpoint:        endpoint,
		account:         account,
		childOf:         childOf,
		source:          o.AccountSource,
		http:            o.HTTPClient,
		tokens:          newTokenSource(o.Credentials, account),
		creds:           o.Credentials,
		ua:              o.UserAgent,
		timeout:         o.Timeout,
		budget:          o.RetryBudget,
		limiter:         newAdaptiveLimiter(o.Rate),
		readOnly:        o.ReadOnly,
		onRetry:         o.OnRetry,
		firstBudget:     FirstContactBudget,
		firstTimeout:    FirstContactTimeout,
		log:             o.Logger,
		backoffBase:     100 * time.Millisecond,
		backoffCap:      5 * time.Second,
		now:             time.Now,
		sleep:           sleepCtx,
		jitter:          func(max time.Duration) time.Duration { return rand.N(max + 1) },
		pageParallelism: 4,
		maxRows:         defaultMaxRows,
		maxPages:        defaultMaxPages,
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.http == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 32
		c.http = &http.Client{Transport: t}
	} else {
		hc := *c.http // the caller's client keeps its own redirect policy
		c.http = &hc
	}
	c.http.CheckRedirect = refuseRedirect
	if c.ua == "" {
		c.ua = "voxbind"
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.budget <= 0 {
		c.budget = DefaultRetryBudget
	}
	return c, nil
}

// checkEndpoint normalises the base URL and refuses plain http to anything
// but a loopback host: the bearer token would travel in clear. Its errors
// match ErrEndpointURL.
func checkEndpoint(s string) (string, error) {
	if s == "" {
		s = DefaultEndpoint
	}
	if shown, ok := withoutUserinfo(s); ok {
		// Checked before parsing, so that no other message (url.Parse's
		// quotes the whole text) can echo the password.
		return "", endpointURLErrorf("endpoint %q: holds a user name or password (user:password@); the Management API authenticates with the key file's token, never with credentials in the URL: remove user:password@ from --endpoint (or VOXIMPLANT_ENDPOINT)", shown)
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", endpointURLErrorf("endpoint %q: not a URL: %w", s, err)
	}
	if u.Host == "" {
		return "", endpointURLErrorf("endpoint %q: no host; expected a URL such as %s", s, DefaultEndpoint)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !loopbackHost(u.Hostname()) {
			return "", endpointURLErrorf("endpoint %q: plain http:// is refused for non-loopback host %q (the token would travel in clear); use https://", s, u.Hostname())
		}
	default:
		return "", endpointURLErrorf("endpoint %q: scheme %q: use https:// (http:// only for a loopback host)", s, u.Scheme)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", endpointURLErrorf("endpoint %q: must not have a query or fragment", s)
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
		if u.RawPath != "" {
			u.RawPath += "/"
		}
	}
	return u.String(), nil
}

// ErrEndpointURL is matched (errors.Is) by the error of an endpoint that
// is not a URL voxbind sends the token to: not a URL, no host, a scheme
// other than https (http only for a loopback host), a query, a password.
var ErrEndpointURL = errors.New("the endpoint is not a URL voxbind can use")

// endpointURLError is an error that matches ErrEndpointURL.
type endpointURLError struct{ err error }

func endpointURLErrorf(format string, args ...any) error {
	return &endpointURLError{fmt.Errorf(format, args...)}
}

func (e *endpointURLError) Error() string        { return e.err.Error() }
func (e *endpointURLError) Unwrap() error        { return e.err }
func (e *endpointURLError) Is(target error) bool { return target == ErrEndpointURL }

// withoutUserinfo returns endpoint s with its user name and password
// ("user:password@" after the scheme) cut out, and whether it had them. It
// reads the text as it is, so that it also finds them in a URL that does
// not parse, and one written without its scheme ("user:pw@host/path").
func withoutUserinfo(s string) (string, bool) {
	prefix, rest := "", s
	if scheme, after, ok := strings.Cut(s, "://"); ok {
		prefix, rest = scheme+"://", after
	}
	authority := rest
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		authority = rest[:i]
	}
	at := strings.LastIndexByte(authority, '@')
	if at < 0 {
		return s, false
	}
	return prefix + rest[at+1:], true
}

func loopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// AccountID is the id of the account the client acts on (the JWT iss).
func (c *Client) AccountID() int64 { return c.account }

// accountSource says where the account acted on comes from, for messages.
func (c *Client) accountSource() string {
	if c.childOf != 0 {
		source := c.source
		if source == "" {
			source = "--account-id"
		}
		return fmt.Sprintf("%s, with the key of account %d", source, c.childOf)
	}
	return "the key file's account_id"
}

// Stats returns the counters since New.
func (c *Client) Stats() Stats {
	return Stats{
		Calls:       c.calls.Load(),
		Requests:    c.requests.Load(),
		Retries:     c.retries.Load(),
		RateLimited: c.rateLimited.Load(),
		Transient:   c.transient.Load(),
		Rate:        c.limiter.Rate(),
	}
}

// call makes one read call, retrying transient failures, and decodes the
// answer into a new A. Cancelling ctx abandons the attempt in flight.
func call[A any, PA interface {
	*A
	answer
}](ctx context.Context, c *Client, method string, params url.Values) (*A, error) {
	return send[A, PA](ctx, c, method, params, false)
}

// write makes one write call like call, except that cancelling ctx only
// stops further attempts: the attempt in flight runs to its answer or its
// timeout, so that whether the write took effect is known when it can be.
// When it cannot (an answer was lost and no later attempt settled it), the
// error matches reconcile.ErrOutcomeUnknown.
func write[A any, PA interface {
	*A
	answer
}](ctx context.Context, c *Client, method string, params url.Values) (*A, error) {
	return send[A, PA](ctx, c, method, params, true)
}

func send[A any, PA interface {
	*A
	answer
}](ctx context.Context, c *Client, method string, params url.Values, isWrite bool) (*A, error) {
	c.calls.Add(1)
	start := c.now()
	form := params.Encode()
	lost := false // an attempt may have taken effect unanswered, and no answer since settled it
	resynced := false
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			c.retries.Add(1)
		}
		out := PA(new(A))
		res := c.attempt(ctx, method, form, attempt, out, isWrite, start)
		if res.err == nil {
			return (*A)(out), nil
		}
		lost = res.lost || lost && !res.settles
		err := res.err
		switch {
		case res.clockRefused && !resynced && ctx.Err() == nil:
			resynced = true // a token on the server's time, once
			continue
		case res.cancelled:
		case ctx.Err() != nil && res.transient:
			err = fmt.Errorf("%s: %w; not retried after: %v", method, context.Cause(ctx), res.err)
		case res.transient:
			if err = c.retry(ctx, start, method, attempt, res); err == nil {
				continue
			}
		}
		switch {
		case isWrite && lost && !res.lost && res.replied:
			err = &lostError{fmt.Errorf("%w; the answer to an earlier attempt was lost, and this answer does not say whether that attempt took effect", err)}
		case isWrite && lost && !res.lost:
			err = &lostError{fmt.Errorf("%w; the answer to an earlier attempt was lost, and this attempt did not reach the API to say whether that one took effect", err)}
		case isWrite && lost:
			err = &lostError{err}
		case isWrite && res.cancelled && attempt == 0 && !res.lost:
			err = &notSentError{err} // ctx ended while it waited its turn
		}
		return nil, err
	}
}

// retry waits before the next attempt after a transient failure, or says
// why there is none: the retry budget is spent, or ctx was cancelled
// during the wait.
func (c *Client) retry(ctx context.Context, start time.Time, method string, attempt int, res result) error {
	c.transient.Add(1)
	base := c.backoffBase
	if res.rateLimited && c.limiter.Rate() > 0 {
		// The adaptive limiter paces these; a long backoff would only
		// starve it of the answers it measures the server's rate by.
		// Until it has a rate, the backoff alone paces them.
		base /= 10
	}
	wait := c.jitter(min(c.backoffCap, base<<min(attempt, 20)))
	if res.hint > wait {
		wait = res.hint
	}
	budget := c.retryBudget()
	// wait > budget-elapsed, not elapsed+wait > budget: the sum of a long
	// wait could overflow into the past.
	if elapsed := c.now().Sub(start); wait > budget-elapsed {
		return c.gaveUp(attempt, elapsed, wait, budget, res)
	}
	ev := RetryEvent{Method: method, Cause: res.cause, Detail: res.detail, Err: res.err, Attempt: attempt + 1, Wait: wait, Budget: budget}
	ev.Deadline, _ = ctx.Deadline()
	c.log.LogAttrs(ctx, slog.LevelInfo, "retry", slog.String("method", method), slog.String("cause", string(res.cause)),
		slog.String("detail", res.detail), slog.Int("attempt", attempt+1), slog.Duration("wait", wait), slog.Duration("budget", budget))
	if c.onRetry != nil {
		c.onRetry(ev)
	}
	if err := c.sleep(ctx, wait); err != nil {
		return fmt.Errorf("%s: %w; not retried after: %v", method, context.Cause(ctx), res.err)
	}
	return nil
}

// gaveUp is the error of a call that retries no more: its retry budget
// would pass during the next wait. When the API itself answered "try
// later" (a code that says so, or HTTP 429), it matches
// *reconcile.TryLaterError, so that apply stops starting steps; a
// server error (5xx) does not: the breaker covers an API that is gone.
func (c *Client) gaveUp(attempt int, elapsed, wait, budget time.Duration, res result) error {
	var err error
	hinted := res.hint > 0 && res.hint == wait
	if hinted {
		after := wait.String()
		if wait >= maxRetryHint {
			after += " or more"
		}
		err = fmt.Errorf("gave up: the server asks to retry after %s, past the retry budget of %s: %w", after, budget, res.err)
	} else {
		var first string
		if !c.answered.Load() {
			first = ", short because the API has not answered yet in this run"
		}
		err = fmt.Errorf("gave up after %d attempts in %s (retry budget %s%s): %w",
			attempt+1, elapsed.Round(time.Millisecond), budget, first, res.err)
	}
	tl := &reconcile.TryLaterError{For: elapsed, Budget: budget, Err: err}
	var apiErr *APIError
	var httpErr *HTTPError
	switch {
	case errors.As(res.err, &apiErr) && apiErr.Temporary():
		tl.Code = apiErr.Code
	case errors.As(res.err, &httpErr) && httpErr.Status == http.StatusTooManyRequests:
		tl.Code, tl.HTTP = httpErr.Status, true
	default:
		return err
	}
	if hinted {
		tl.Wait = wait
	}
	return tl
}

// result is how one attempt ended.
type result struct {
	err         error
	transient   bool
	hint        time.Duration // the server's "retry after"
	rateLimited bool          // API error 340 or HTTP 429
	cause       Cause         // the kind of a transient failure
	detail      string        // a transient failure in a few words
	cancelled   bool          // ctx ended the attempt, or kept it from starting
	// clockRefused: 455/456 with a Date header to correct the clock by.
	clockRefused bool
	// lost: the request may have reached the API and taken effect, but no
	// answer says so. settles: the API judged the request itself, which
	// settles an earlier lost attempt (BindSipRegistration sent again is
	// idempotent: success means done, a final refusal of the request
	// means the identical earlier attempt was refused too). An answer
	// that refuses the key, a transient one ("try later", 429, 5xx) and
	// one that is not the API's own (a proxy's page) say nothing about
	// the earlier attempt.
	lost, settles bool
	// replied: an HTTP answer came back, whatever it said.
	replied bool
}

// attempt makes one HTTP request. The answer is parsed whatever the HTTP
// status: Voximplant does not document the status of a failure. A write's
// request is not tied to ctx (see write).
func (c *Client) attempt(ctx context.Context, method, form string, try int, out answer, isWrite bool, callStart time.Time) (res result) {
	sentAt, err := c.limiter.Wait(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return result{err: fmt.Errorf("%s: %w", method, context.Cause(ctx)), cancelled: true}
		}
		return result{err: fmt.Errorf("%s: %w", method, err)}
	}
	if try == 0 {
		reconcile.Sending(ctx) // its turn has come: apply's step_start
	}
	c.requests.Add(1)
	status, code := 0, 0
	defer func() {
		res.replied = status != 0
		c.trace(ctx, method, form, status, code, res.err, c.now().Sub(sentAt), try)
	}()

	token, err := c.tokens.Token()
	if err != nil {
		return result{err: err}
	}
	timeout := c.attemptTimeout(callStart)
	base := ctx
	if isWrite {
		base = context.WithoutCancel(ctx)
	}
	actx, cancel := context.WithTimeout(base, timeout)
	defer cancel()
	req, err := c.newRequest(actx, method, form, token)
	if err != nil {
		return result{err: fmt.Errorf("%s: %w", method, err)}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return c.networkError(ctx, actx, method, err, sentAt, timeout)
	}
	defer resp.Body.Close()
	status = resp.StatusCode
	date := resp.Header.Get("Date")
	c.observeClock(date, false)
	if status >= 300 && status <= 399 {
		return result{err: c.redirectError(method, resp)}
	}
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufPool.Put(buf)
	if _, err := buf.ReadFrom(io.LimitReader(resp.Body, maxBody+1)); err != nil {
		return c.networkError(ctx, actx, method, err, sentAt, timeout)
	}
	if buf.Len() > maxBody {
		return result{err: &EndpointError{Method: method, Fix: checkEndpointURL,
			Problem: fmt.Sprintf("the answer is larger than %d MiB, the most voxbind reads of one answer (a page of the Management API is far smaller)", maxBody>>20)}}
	}
	res, code = c.outcome(method, resp, buf.Bytes(), out, sentAt, date, isWrite)
	return res
}

// newRequest is one attempt's HTTP request: a form POST to the method's
// URL, with token as its bearer credential.
func (c *Client) newRequest(ctx context.Context, method, form, token string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint+method, strings.NewReader(form))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.ua)
	req.Header.Set("Authorization", "Bearer "+token)
	return req, nil
}

// outcome is the result of an answer read in full into body, and the API
// error code it carries (0 if none), for the trace. The API's own verdict
// comes first; the HTTP status decides only when the body does not carry
// one.
//
// A write's answer that does not say whether the call took effect is
// taken as lost (the step is unknown, not failed): "result": null, and
// a final error together with a result.
func (c *Client) outcome(method string, resp *http.Response, body []byte, out answer, sentAt time.Time, date string, isWrite bool) (result, int) {
	status := resp.StatusCode
	hint := retryAfter(resp.Header.Get("Retry-After"), c.now())

	decodeErr := json.Unmarshal(body, out)
	if decodeErr == nil {
		if f := out.failure(); f != nil {
			f.Msg = c.message(f.Msg)
			res := c.apiFailure(method, f, hint, sentAt, date)
			if isWrite && !res.transient && out.hasResult(body) {
				res.err = fmt.Errorf("%w; the answer also holds a result, so it does not say whether the call took effect", res.err)
				res.lost, res.settles = true, false
			}
			return res, f.Code
		}
		if isWrite && !out.hasResult(body) && nullResult(body) {
			c.noteAnswer()
			return result{err: fmt.Errorf(`%s: the API answered "result": null, which says neither that the call took effect nor that it failed`, method), lost: true}, 0
		}
	}
	if status < 200 || status > 299 {
		herr := &HTTPError{Method: method, Status: status, Body: c.snippet(body)}
		switch {
		case status >= 500:
			c.noteFailure(sentAt)
			return result{err: herr, transient: true, hint: hint, lost: true, cause: CauseServerError, detail: fmt.Sprintf("http status %d", status)}, 0
		case status == http.StatusTooManyRequests:
			c.noteAnswer()
			c.rateLimited.Add(1)
			c.limiter.RateLimited(sentAt)
			return result{err: herr, transient: true, hint: hint, rateLimited: true, cause: CauseRateLimited, detail: "http status 429"}, 0
		}
		return result{err: herr}, 0
	}
	c.limiter.Accepted()
	if decodeErr != nil || !out.hasResult(body) {
		return result{err: notAPIAnswer(method, status, resp.Header.Get("Content-Type"), c.snippet(body), body, decodeErr)}, 0
	}
	c.noteAnswer()
	return result{}, 0
}

// apiFailure is the result of an error answer of the API: the codes that
// mean "try again later" are transient, every other one is final.
func (c *Client) apiFailure(method string, f *wireError, hint time.Duration, sentAt time.Time, date string) result {
	c.noteAnswer()
	apiErr := &APIError{Method: method, Code: f.Code, Msg: f.Msg}
	if !apiErr.Temporary() {
		c.limiter.Accepted()
		refused := (f.Code == CodeTokenFuture || f.Code == CodeTokenExpired) && c.observeClock(date, true)
		return result{err: apiErr, settles: !apiErr.RefusesKey(), clockRefused: refused}
	}
	res := result{err: apiErr, transient: true, hint: max(hint, retryHint(f.Msg)),
		cause: CauseTryLater, detail: fmt.Sprintf("api error %d", f.Code)}
	if f.Code == CodeRateLimited {
		c.rateLimited.Add(1)
		c.limiter.RateLimited(sentAt)
		res.rateLimited, res.cause = true, CauseRateLimited
	} else {
		c.limiter.Accepted()
	}
	return res
}

// observeClock hands an answer's Date header to the token source (refused:
// the answer was 455 or 456) and logs when tokens move to the server's
// time. It reports whether the header told the server's time:
// then a refused call is worth one more try, with a token on that time
// (this answer, or one that came in meanwhile, set it).
func (c *Client) observeClock(date string, refused bool) bool {
	offset, changed, ok := c.tokens.observe(date, refused)
	if changed {
		var msg string
		switch {
		case offset == 0:
			msg = "this machine's clock agrees with the server's again; tokens are issued on this machine's time"
		case offset > 0:
			msg = fmt.Sprintf("this machine's clock is %s behind the server's (its Date header); tokens are now issued on the server's time", offset)
		default:
			msg = fmt.Sprintf("this machine's clock is %s ahead of the server's (its Date header); tokens are now issued on the server's time", -offset)
		}
		c.log.Info(msg, slog.Duration("clock_offset", offset))
	}
	return ok
}

// ClockOffset is how far the server's clock is ahead of this machine's
// (negative: behind), as the client corrects its tokens for; 0 until an
// answer showed more than 5 s of difference.
func (c *Client) ClockOffset() time.Duration { return c.tokens.clockOffset() }

// nullResult reports whether body is a JSON object whose "result" is
// null.
func nullResult(body []byte) bool {
	var probe map[string]json.RawMessage
	if json.Unmarshal(body, &probe) != nil {
		return false
	}
	r, ok := probe["result"]
	return ok && string(bytes.TrimSpace(r)) == "null"
}

// notAPIAnswer is the error for a successful HTTP answer that is not one
// of the Management API: an HTML page (a captive portal, a proxy's login,
// a web site at the wrong URL), or JSON of another shape.
func notAPIAnswer(method string, status int, contentType, shown string, body []byte, decodeErr error) *EndpointError {
	e := &EndpointError{Method: method, Err: decodeErr, Fix: checkEndpointURL}
	trimmed := bytes.TrimSpace(body)
	switch {
	case decodeErr == nil:
		e.Problem = fmt.Sprintf(`the endpoint answered JSON that is not a Management API answer (neither "result" nor "error"): %s`, shown)
	case json.Valid(trimmed):
		e.Problem = fmt.Sprintf("the endpoint answered JSON that is not a Management API answer (%v): %s", answerProblem(decodeErr), shown)
	case strings.Contains(contentType, "html") || bytes.HasPrefix(trimmed, []byte("<")):
		e.Problem = fmt.Sprintf("the endpoint answered an HTML page, not the Management API (http status %d: %s)", status, shown)
		e.Fix += "; a captive portal or a proxy's login page answers like this too"
	default:
		e.Problem = fmt.Sprintf("the endpoint's answer is not JSON, so not the Management API (http status %d: %s)", status, shown)
	}
	return e
}

// answerProblem says which key of an answer had a value of the wrong
// kind, in the answer's words ("result" is an object, but must be a
// list), not Go's; the embedded status holding "error" is no key.
func answerProblem(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		c := *te
		c.Field = strings.TrimPrefix(c.Field, "status.")
		err = &c
	}
	return reconcile.JSONProblem(err)
}

// refuseRedirect stops the HTTP client at a redirect: the Management API
// never redirects, and following one would send the bearer token (Go keeps
// Authorization for the same host name, even over plain http or another
// port) or take another server's answers for the account's. The redirect
// answer itself comes back and attempt turns it into redirectError.
func refuseRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// redirectError names where a redirect pointed: its scheme, host and path,
// cleaned like any text the server sent (the server knows the token it
// was sent, and may put it anywhere in the Location), without the query,
// the fragment and any user name.
func (c *Client) redirectError(method string, resp *http.Response) error {
	return fmt.Errorf("%s: %s: check --endpoint", method, redirected(resp, c.clean))
}

// redirected says that resp is a redirect and where it pointed, the
// Location cleaned by clean (see redirectError).
func redirected(resp *http.Response, clean func(string) string) string {
	where := "no Location"
	if loc, err := resp.Location(); err == nil {
		where = "Location " + clean(shorten(loc.Scheme+"://"+loc.Host+loc.Path, 4<<10))
	}
	return fmt.Sprintf("the server answered HTTP %d, a redirect (%s); the Management API never redirects, so voxbind does not follow it", resp.StatusCode, shorten(where, 300))
}

// maxBody is the most bytes voxbind reads of one answer.
const maxBody = 64 << 20

// bufPool holds answer buffers: json.Unmarshal copies what it keeps, so a
// buffer is reused once the answer is decoded.
var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxMessage is the most bytes of an API error's msg that an error
// message, a trace or a journal line shows: a server may answer a
// message of megabytes, and each step's failure repeats it.
const maxMessage = 300

// message is an API error's msg fit to show: cleaned (see clean), and
// past maxMessage bytes cut, with "…" and its length in bytes; at most
// its first 4 KiB are read, however long it is.
func (c *Client) message(msg string) string {
	read := msg[:min(len(msg), 4<<10)]
	cleaned := c.clean(read)
	short := shorten(cleaned, maxMessage)
	if short == cleaned && len(read) == len(msg) {
		return cleaned
	}
	return fmt.Sprintf("%s (the message is cut: %d bytes in all)", short, len(msg))
}

// snippet is the start of a body for an error message, on one line, with
// anything that looks like a token or a key cut out.
func snippet(b []byte) string {
	return shorten(reconcile.Printable(redact(oneLine(b))), 200)
}

// snippet is the start of a body the server sent for an error message,
// cleaned (see clean).
func (c *Client) snippet(b []byte) string {
	return shorten(c.clean(oneLine(b)), 200)
}

// oneLine is the start of b on one line: enough of it for a snippet,
// however long b is.
func oneLine(b []byte) string {
	return strings.Join(strings.Fields(string(b[:min(len(b), 4<<10)])), " ")
}

// shorten cuts s to at most n bytes (and an ellipsis), at a character
// boundary.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// clean makes text the server sent fit to show: every piece of a token
// this client sent, and anything else that looks like a token or a key,
// is cut out (redact), and control characters are escaped. Every error,
// trace and journal line that holds the server's words goes through it.
func (c *Client) clean(s string) string {
	return reconcile.Printable(c.tokens.cut(redact(s)))
}

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if d := hintSeconds(strings.TrimSpace(v)); d > 0 {
		return d
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), maxRetryHint)
	}
	return 0
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

// trace logs one HTTP attempt at debug level. Parameters are ids and
// flags; the Authorization header is never logged, and an error's text is
// redacted like every error the client returns.
func (c *Client) trace(ctx context.Context, method, form string, status, code int, err error, d time.Duration, try int) {
	if !c.log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	attrs := []slog.Attr{slog.String("method", method), slog.String("params", strings.ReplaceAll(form, "&", " ")),
		slog.Int("status", status), slog.Duration("duration", d.Round(100*time.Microsecond)), slog.Int("retry", try)}
	if code != 0 {
		attrs = append(attrs, slog.Int("code", code))
	}
	if err != nil && code == 0 {
		attrs = append(attrs, slog.String("err", err.Error()))
	}
	c.log.LogAttrs(ctx, slog.LevelDebug, "api request", attrs...)
}
