package voximplant

import (
	"crypto/rsa"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Token timing: iat is back-dated for clock skew, the
// lifetime stays under the one-hour maximum, and a token is replaced a
// minute before it expires so that none expires in flight.
const (
	tokenBackdate = 5 * time.Second
	tokenLifetime = time.Hour - 10*time.Second
	tokenRenew    = time.Minute
)

// clockTolerance is how far this machine's clock may be off the server's
// before tokens are issued on the server's time instead.
const clockTolerance = 5 * time.Second

// tokenSource signs JWTs for one key and account and reuses each until
// shortly before it expires. It is safe for concurrent use.
//
// Tokens are checked against the server's clock, so a machine whose clock
// is more than 30 s off has every call refused. The source therefore
// keeps the offset of the server's clock, learnt from the Date header of
// its answers, and issues tokens on the server's time once the offset
// passes clockTolerance, or at once when the server refused a token as
// issued in the future or expired.
type tokenSource struct {
	keyID   string
	key     *rsa.PrivateKey
	account int64 // iss: the account acted on
	now     func() time.Time

	mu     sync.Mutex
	token  string
	expiry time.Time     // on the server's time
	offset time.Duration // the server's clock minus this machine's, as used
	// signed holds the last tokens signed, and pieces every piece of
	// tokenPiece characters of them, for cut.
	signed []string
	pieces map[string]bool
}

// tokenPiece is the shortest piece of a token that cut finds in a
// server's text; keptTokens is how many of the last tokens it looks for
// (a token lasts an hour; a run signs another only past that, or when the
// clock is corrected).
const (
	tokenPiece = 8
	keptTokens = 4
)

func newTokenSource(c *Credentials, account int64) *tokenSource {
	return &tokenSource{keyID: c.KeyID, key: c.PrivateKey, account: account, now: time.Now}
}

// Token returns a valid bearer token.
func (s *tokenSource) Token() (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().Add(s.offset)
	if s.token != "" && now.Before(s.expiry.Add(-tokenRenew)) {
		return s.token, nil
	}
	iat := now.Add(-tokenBackdate).Truncate(time.Second)
	exp := iat.Add(tokenLifetime)
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"iss": s.account, // a JSON number, as the API wants
		"iat": iat.Unix(),
		"exp": exp.Unix(),
	})
	t.Header["kid"] = s.keyID
	signed, err := t.SignedString(s.key)
	if err != nil {
		// The jwt error names the problem, never the key.
		return "", fmt.Errorf("sign token with key %s: %w", s.keyID, err)
	}
	s.token, s.expiry = signed, exp
	s.remember(signed)
	return signed, nil
}

// remember adds a token just signed to those cut looks for; s.mu is held.
func (s *tokenSource) remember(token string) {
	s.signed = append(s.signed, token)
	if len(s.signed) > keptTokens {
		s.signed = s.signed[len(s.signed)-keptTokens:]
	}
	pieces := make(map[string]bool, len(s.signed)*len(token))
	for _, tok := range s.signed {
		for i := 0; i+tokenPiece <= len(tok); i++ {
			pieces[tok[i:i+tokenPiece]] = true
		}
	}
	s.pieces = pieces
}

// cut replaces every run of text made of pieces of a token this source
// signed, tokenPiece characters or more, with "[redacted]": a server
// knows the tokens it was sent, and may echo them whole or in pieces, in
// any text (an error message, an error page, a Location header).
func (s *tokenSource) cut(text string) string {
	s.mu.Lock()
	pieces := s.pieces
	s.mu.Unlock()
	if len(pieces) == 0 || len(text) < tokenPiece {
		return text
	}
	var secret []bool // secret[i]: byte i belongs to a piece of a token
	for i := 0; i+tokenPiece <= len(text); i++ {
		if pieces[text[i:i+tokenPiece]] {
			if secret == nil {
				secret = make([]bool, len(text))
			}
			for j := i; j < i+tokenPiece; j++ {
				secret[j] = true
			}
		}
	}
	if secret == nil {
		return text
	}
	var b strings.Builder
	for i := 0; i < len(text); i++ {
		switch {
		case !secret[i]:
			b.WriteByte(text[i])
		case i == 0 || !secret[i-1]:
			b.WriteString("[redacted]")
		}
	}
	return b.String()
}

// observe takes the server's clock from an answer's Date header, just
// received. refused says the server refused the token as
// issued in the future or expired (455, 456): then the server's time is
// adopted whatever the offset. It returns the new offset and whether it
// changed; a change drops the token in use, so that the next one is
// signed on the server's time. A missing or garbled header is ignored
// (ok false).
func (s *tokenSource) observe(date string, refused bool) (offset time.Duration, changed, ok bool) {
	server, err := http.ParseTime(date)
	if err != nil {
		return 0, false, false
	}
	received := s.now()
	// Date has whole seconds: the server's time lies in [server, server+1s),
	// so the estimate is the middle, at most half a second off.
	diff := server.Add(time.Second / 2).Sub(received).Round(time.Millisecond)
	s.mu.Lock()
	defer s.mu.Unlock()
	drift := (diff - s.offset).Abs()
	if drift <= clockTolerance && !(refused && drift > 0) {
		return s.offset, false, true
	}
	if !refused && diff.Abs() <= clockTolerance {
		diff = 0 // back within tolerance: this machine's own time again
	}
	s.offset = diff
	s.token = ""
	return diff, true, true
}

// clockOffset returns the offset in use: how far the server's clock is
// ahead of this machine's (negative: behind).
func (s *tokenSource) clockOffset() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.offset
}
