package voximplant

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// APIError is an error answer of the Management API: {"error": {"code",
// "msg"}}. Callers test Code with errors.As.
type APIError struct {
	Method string // API method, e.g. BindSipRegistration
	Code   int
	Msg    string
}

func (e *APIError) Error() string {
	msg := e.Msg
	switch {
	case strings.TrimSpace(msg) != "":
	case e.Code == 0:
		msg = "the server's error answer has no code and no message"
	default:
		msg = "the server gave no message"
	}
	s := fmt.Sprintf("%s: api error %d: %s", e.Method, e.Code, msg)
	if h := e.Hint(); h != "" {
		s += " (" + h + ")"
	}
	return s
}

// APICode is the API's error code; the apply journal records it.
func (e *APIError) APICode() int { return e.Code }

// Hint says what to check for the authentication and authorization codes,
// and "" for every other code.
func (e *APIError) Hint() string {
	switch e.Code {
	case CodeAuthFailed:
		return "authorization failed: check that the key file belongs to this account, that --account-id names a child of that account, and that the key was not revoked"
	case CodeForbidden:
		if roles := MethodRoles[e.Method]; roles != nil {
			return "the service account lacks a role for " + e.Method + ": " + e.Method + " needs " + OneOf(roles)
		}
		return "the service account lacks a role for " + e.Method
	case CodeInvalidKeyID:
		return "the key_id is unknown: the key was deleted, or the key file is not the one Voximplant issued for this account; give the key file of a key the service account has now, or make a new key for it"
	case CodeInvalidToken:
		return "the token was malformed: check that the key file holds the complete private_key"
	case CodeTokenTooLong:
		return "the token lifetime exceeds one hour: this is a voxbind bug, please report it"
	case CodeTokenFuture:
		return "the token was issued in the future: this machine's clock is ahead; sync it with NTP"
	case CodeTokenExpired:
		return "the token has expired: this machine's clock is behind; sync it with NTP"
	}
	return ""
}

// RefusesKey reports whether the code says the API refuses the call's
// key or token, or the key's permission to make the call: the codes
// Hint explains. No later call with the same key fares better.
func (e *APIError) RefusesKey() bool {
	switch e.Code {
	case CodeAuthFailed, CodeForbidden, CodeInvalidKeyID, CodeInvalidToken, CodeTokenTooLong, CodeTokenFuture, CodeTokenExpired:
		return true
	}
	return false
}

// MethodRoles are the service-account roles that may call each method
// voxbind uses. Voximplant documents them for BindSipRegistration and
// GetSipRegistrations; for the others these are the roles that work with
// applications (reading the account's money is for Accountant), and the
// sandbox enforces exactly these. GetAccountInfo is open to every key.
var MethodRoles = map[string][]string{
	"GetSipRegistrations": {"Owner", "Admin", "Developer", "Supervisor", "Accountant", "Support"},
	"GetApplications":     {"Owner", "Admin", "Developer", "Supervisor", "Support"},
	"GetRules":            {"Owner", "Admin", "Developer", "Supervisor", "Support"},
	"GetUsers":            {"Owner", "Admin", "Developer", "Supervisor", "Support"},
	"GetChildrenAccounts": {"Owner", "Admin", "Accountant"},
	"BindSipRegistration": {"Owner", "Admin", "Developer"},
}

// OneOf joins names as "A, B or C".
func OneOf(names []string) string {
	switch len(names) {
	case 0:
		return ""
	case 1:
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// Temporary reports whether the same request may succeed later (the codes
// Voximplant documents as "try again later").
func (e *APIError) Temporary() bool { return transientCode(e.Code) }

// Error codes voxbind treats specially (docs/management-api.md).
const (
	CodeAuthFailed     = 100
	CodeForbidden      = 104
	CodeTryLater       = 162
	CodeRateLimited    = 340
	CodeRepeatAfter    = 416
	CodeInvalidKeyID   = 433
	CodeInvalidToken   = 447
	CodeTokenTooLong   = 454
	CodeTokenFuture    = 455
	CodeTokenExpired   = 456
	CodeProbableResend = 484
	CodeDoneRecently   = 515
)

func transientCode(code int) bool {
	switch code {
	case CodeRateLimited, CodeRepeatAfter, CodeTryLater, CodeProbableResend, CodeDoneRecently:
		return true
	}
	return false
}

// HTTPError is an answer without a JSON body: a proxy's error page, a bare
// 502. 429 and 5xx are retried; the others are returned at once.
type HTTPError struct {
	Method string
	Status int
	Body   string // the start of the body, for the message
}

func (e *HTTPError) Error() string {
	s := fmt.Sprintf("%s: http status %d", e.Method, e.Status)
	if e.Body != "" {
		s += ": " + e.Body
	}
	if e.Status >= 400 && e.Status < 500 && e.Status != 429 {
		// The API answers its own errors in JSON; this came from
		// something else on the way, or the URL is not the API's.
		s += " (not an answer of the Management API: check the endpoint URL, and any proxy in between)"
	}
	return s
}

// Temporary reports whether the status means "try again".
func (e *HTTPError) Temporary() bool { return e.Status == 429 || e.Status >= 500 }

// Secrets a server (or a proxy's error page) may echo back: the JWT of
// the request, its Authorization header, a PEM key, or any base64url run
// of 16 characters or more that mixes upper case, lower case and digits
// (a piece of a token's signature, of the key's DER; "/" ends a run, so
// that a path such as "8080/platform_api/GetUsers" is not one). Error messages and
// traces show "[redacted]" instead. The client also cuts every piece of
// the tokens it sent itself (tokenSource.cut), whatever it looks like.
var (
	pemBlock   = regexp.MustCompile(`-----BEGIN[^-]*-----[\s\S]*?(-----END[^-]*-----|$)`)
	bearer     = regexp.MustCompile(`(?i)\bbearer\s+[A-Za-z0-9._~+/\-]+=*`)
	jwtLike    = regexp.MustCompile(`eyJ[A-Za-z0-9_\-.]*`)
	longBase64 = regexp.MustCompile(`[A-Za-z0-9+_\-]{16,}=*`)
)

// redact cuts anything secret-looking out of text that came from the
// server, before it reaches an error message, a trace or a journal.
// Sixteen characters is a quarter of a PEM line, and a run of random
// base64 that long lacks one of the three kinds of character rarely
// (a digit-free one, the likeliest, about 7 times in 100): the tokens
// voxbind sent are cut whole by the client, this rule catches the rest.
func redact(s string) string {
	if !strings.Contains(s, "-----BEGIN") && !strings.Contains(s, "eyJ") && !strings.Contains(strings.ToLower(s), "bearer") && !longBase64.MatchString(s) {
		return s
	}
	s = pemBlock.ReplaceAllString(s, "[redacted]")
	s = bearer.ReplaceAllString(s, "Bearer [redacted]")
	s = jwtLike.ReplaceAllString(s, "[redacted]")
	return longBase64.ReplaceAllStringFunc(s, func(run string) string {
		// Random base64 mixes upper case, lower case and digits; a long
		// name such as "support-team-of-the-north-east-region-office" does not.
		if strings.ContainsAny(run, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") && strings.ContainsAny(run, "abcdefghijklmnopqrstuvwxyz") && strings.ContainsAny(run, "0123456789") {
			return "[redacted]"
		}
		return run
	})
}

var afterSeconds = regexp.MustCompile(`(?i)after\s+(\d+)\s*sec`)

// retryHint extracts "repeat after N seconds" from an API message.
func retryHint(msg string) time.Duration {
	m := afterSeconds.FindStringSubmatch(msg)
	if m == nil {
		return 0
	}
	return hintSeconds(m[1])
}

// maxRetryHint is the longest wait a server's "retry after" is taken
// as: any longer one (a year, or more seconds than a time.Duration
// holds) is past every retry budget just the same.
const maxRetryHint = 24 * time.Hour

// hintSeconds is a wait given as a count of seconds in digits, at most
// maxRetryHint, 0 when digits is not a count of seconds.
func hintSeconds(digits string) time.Duration {
	n, err := strconv.ParseUint(digits, 10, 64)
	switch {
	case errors.Is(err, strconv.ErrRange), err == nil && n > uint64(maxRetryHint/time.Second):
		return maxRetryHint
	case err != nil:
		return 0
	}
	return time.Duration(n) * time.Second
}
