package voximplant

import (
	"crypto/rsa"
	"fmt"
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

// tokenSource signs JWTs for one key and account and reuses each until
// shortly before it expires. It is safe for concurrent use.
type tokenSource struct {
	keyID   string
	key     *rsa.PrivateKey
	account int64 // iss: the account acted on
	now     func() time.Time

	mu     sync.Mutex
	token  string
	expiry time.Time
}

func newTokenSource(c *Credentials, account int64) *tokenSource {
	return &tokenSource{keyID: c.KeyID, key: c.PrivateKey, account: account, now: time.Now}
}

// Token returns a valid bearer token.
func (s *tokenSource) Token() (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
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
	return signed, nil
}
