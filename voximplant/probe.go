package voximplant

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/voxbind/voxbind/reconcile"
)

// CheckEndpoint normalises an endpoint URL the way New does, and refuses
// what New refuses (plain http to anything but a loopback host).
func CheckEndpoint(s string) (string, error) { return checkEndpoint(s) }

// ProbeResult is what one unauthenticated request to the endpoint showed:
// whether it is reachable, over what TLS, through which proxy, and the
// server's clock. It holds nothing secret.
type ProbeResult struct {
	URL       string               // the request's URL
	Proxy     *url.URL             // the proxy the request went through; nil = none
	Status    int                  // HTTP status; 0 = no answer
	APIAnswer bool                 // the body is an API answer (a JSON object with result or error)
	Body      string               // the start of a body that is not an API answer
	TLS       *tls.ConnectionState // nil for plain http
	Date      time.Time            // the Date header; zero when absent or garbled
	Sent      time.Time            // when the request left, on this machine's clock
	Received  time.Time            // when the answer's headers came in
	Err       error                // why there is no answer
}

// Offset is how far the server's clock (its Date header) is ahead of this
// machine's, estimated at the middle of the exchange; ok is false without
// a Date header.
func (p ProbeResult) Offset() (offset time.Duration, ok bool) {
	if p.Date.IsZero() {
		return 0, false
	}
	mid := p.Sent.Add(p.Received.Sub(p.Sent) / 2)
	// Date has whole seconds: the server's time lies in [Date, Date+1s).
	return p.Date.Add(time.Second / 2).Sub(mid).Round(time.Second), true
}

// TLSError returns the certificate verification error behind Err, if that
// is why there is no answer.
func (p ProbeResult) TLSError() *tls.CertificateVerificationError {
	var cerr *tls.CertificateVerificationError
	if errors.As(p.Err, &cerr) {
		return cerr
	}
	return nil
}

// Probe sends GetAccountInfo without credentials to endpoint (checked with
// CheckEndpoint first) through hc (nil: a client like the one New makes,
// which honours the proxy environment variables). A Management API answers
// it with an authorization error; no token is ever sent and nothing is
// changed. A redirect is not followed: Err says where it pointed.
func Probe(ctx context.Context, endpoint string, hc *http.Client) ProbeResult {
	base, err := checkEndpoint(endpoint)
	if err != nil {
		return ProbeResult{URL: endpoint, Err: err}
	}
	p := ProbeResult{URL: base + "GetAccountInfo"}
	if hc == nil {
		hc = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	} else {
		own := *hc // the caller's client keeps its own redirect policy
		hc = &own
	}
	hc.CheckRedirect = refuseRedirect // as the API client: see refuseRedirect
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.URL, strings.NewReader(""))
	if err != nil {
		p.Err = err
		return p
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if t, ok := hc.Transport.(*http.Transport); ok && t.Proxy != nil {
		if proxy, err := t.Proxy(req); err == nil {
			p.Proxy = proxy
		}
	}
	p.Sent = time.Now()
	resp, err := hc.Do(req)
	p.Received = time.Now()
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		p.Err = err
		return p
	}
	defer resp.Body.Close()
	p.Status, p.TLS = resp.StatusCode, resp.TLS
	if d, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
		p.Date = d
	}
	if p.Status >= 300 && p.Status <= 399 {
		p.Err = errors.New(redirected(resp, func(s string) string { return reconcile.Printable(redact(s)) }))
		return p
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		p.Err = fmt.Errorf("read the answer: %w", err)
		return p
	}
	var a struct {
		Result json.RawMessage `json:"result"`
		Error  json.RawMessage `json:"error"`
		Errors json.RawMessage `json:"errors"`
	}
	if json.Unmarshal(body, &a) == nil && (a.Result != nil || a.Error != nil || a.Errors != nil) {
		p.APIAnswer = true
	} else {
		p.Body = snippet(body)
	}
	return p
}
