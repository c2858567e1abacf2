package sandbox

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Token lifetime rules (docs/management-api.md, authentication).
const (
	maxTokenLifetime = 3600 * time.Second
	maxClockSkew     = 30 * time.Second
)

// authenticate checks the bearer token exactly as docs/management-api.md
// says, in this order: no bearer token 100; not a JWT (three base64url
// parts, JSON header and claims, numeric iat and exp) 447; unknown kid 433;
// a signature that is not RS256 by that key 100; exp - iat > 3600 s 454;
// iat more than 30 s ahead 455; expired 456; iss neither the key's account
// nor one of its children 100. iss may be a JSON number or a decimal
// string. It returns the account the request acts on and the key's roles
// (nil: every role). Times are the server's clock.
func (s *Server) authenticate(header string) (*account, []string, *apiError) {
	fail := func(code int, format string, args ...any) (*account, []string, *apiError) {
		return nil, nil, errorf(code, format, args...)
	}
	token, ok := strings.CutPrefix(header, "Bearer ")
	token = strings.TrimSpace(token)
	if !ok || token == "" {
		return fail(100, "authorization failed: send 'Authorization: Bearer <JWT>'")
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return fail(447, "invalid token format: a JWT has three dot-separated parts")
	}
	var hdr struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	if err := decodeSegment(parts[0], &hdr); err != nil {
		return fail(447, "invalid token format: header: %v", err)
	}
	var claims struct {
		Iss json.RawMessage `json:"iss"`
		Iat *json.Number    `json:"iat"`
		Exp *json.Number    `json:"exp"`
	}
	if err := decodeSegment(parts[1], &claims); err != nil {
		return fail(447, "invalid token format: claims: %v", err)
	}
	if claims.Iat == nil || claims.Exp == nil {
		return fail(447, "invalid token format: the claims need numeric 'iat' and 'exp'")
	}
	iat, err1 := claims.Iat.Float64()
	exp, err2 := claims.Exp.Float64()
	if err1 != nil || err2 != nil {
		return fail(447, "invalid token format: 'iat' and 'exp' must be numbers")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return fail(447, "invalid token format: signature: %v", err)
	}

	s.keysMu.RLock()
	key, known := s.keys[hdr.Kid]
	s.keysMu.RUnlock()
	if !known {
		return fail(433, "invalid key id %q", hdr.Kid)
	}
	if hdr.Alg != "RS256" {
		return fail(100, "authorization failed: the token must be signed with RS256, not %q", hdr.Alg)
	}
	if err := jwt.SigningMethodRS256.Verify(parts[0]+"."+parts[1], sig, key.pub); err != nil {
		return fail(100, "authorization failed: bad token signature")
	}

	now := float64(s.now().Unix())
	if exp-iat > maxTokenLifetime.Seconds() {
		return fail(454, "token lifetime too long: exp - iat is %gs, at most %gs", exp-iat, maxTokenLifetime.Seconds())
	}
	if iat > now+maxClockSkew.Seconds() {
		return fail(455, "token issued in the future: iat is %gs ahead of the server's clock", iat-now)
	}
	if exp <= now {
		return fail(456, "token expired %gs ago", now-exp)
	}
	iss, ok := parseIssuer(claims.Iss)
	if !ok {
		return fail(100, "authorization failed: the token's iss %s is not an account id", string(claims.Iss))
	}
	acct, ok := s.actingOn(key.owner, iss)
	if !ok {
		return fail(100, "authorization failed: the key of account %d cannot act on account %d (the token's iss): only on its own account and its child accounts", key.owner, iss)
	}
	return acct, key.roles, nil
}

// claimedAccount is the account a bearer token's iss names, unverified
// (0 when there is none): what per-account latency needs before the
// request is authenticated. A forged iss only picks its own delay.
func claimedAccount(header string) int64 {
	token, ok := strings.CutPrefix(header, "Bearer ")
	if !ok {
		return 0
	}
	parts := strings.Split(strings.TrimSpace(token), ".")
	if len(parts) != 3 {
		return 0
	}
	var claims struct {
		Iss json.RawMessage `json:"iss"`
	}
	if decodeSegment(parts[1], &claims) != nil {
		return 0
	}
	id, _ := parseIssuer(claims.Iss)
	return id
}

func decodeSegment(seg string, v any) error {
	data, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	return dec.Decode(v)
}

func parseIssuer(raw json.RawMessage) (int64, bool) {
	s := string(raw)
	if unq, err := strconv.Unquote(s); err == nil {
		s = unq
	}
	id, err := strconv.ParseInt(s, 10, 64)
	return id, err == nil
}
