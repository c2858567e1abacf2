// Package leakcheck finds secrets in text voxbind writes: debug traces,
// logs, error messages. Tests use it wherever a token or a key could
// leak; nothing in voxbind itself depends on it.
//
// It looks for the exact tokens a test server received (whole, or any
// 20-character piece of their claims or signature, as a cut-off message
// would show), for anything shaped like a JWT (three
// base64url parts whose first decodes to a JSON header with "alg"), for
// the base64 of the private keys' DER encodings (as a PEM block or a key
// file would show them), their private exponents in decimal, and PEM key
// markers.
package leakcheck

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
)

// Secrets is what must not appear.
type Secrets struct {
	Tokens []string          // bearer tokens, as sent
	Keys   []*rsa.PrivateKey // the keys that signed them
}

// threeParts is a candidate JWT: three dot-separated base64url runs.
var threeParts = regexp.MustCompile(`[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}`)

// Find returns one line for every secret found in s, nil when there is none.
func Find(s string, secrets Secrets) []string {
	var found []string
	add := func(format string, args ...any) { found = append(found, fmt.Sprintf(format, args...)) }
	for i, tok := range secrets.Tokens {
		if tok == "" {
			continue
		}
		if strings.Contains(s, tok) {
			add("token %d, whole", i+1)
			continue
		}
		parts := strings.Split(tok, ".")
		for j, name := range []string{"header", "claims", "signature"} {
			if j > 0 && j < len(parts) && containsPiece(s, parts[j]) {
				add("token %d, (a piece of) its %s", i+1, name)
			}
		}
	}
	for _, m := range threeParts.FindAllString(s, -1) {
		if isJWT(m) {
			add("a JWT: %.12s…", m)
		}
	}
	if strings.Contains(s, "eyJ") {
		add("base64url of a JSON object (\"eyJ\"), as a token's header or claims begin")
	}
	if strings.Contains(s, "PRIVATE KEY") {
		add("a PEM private key marker")
	}
	for i, k := range secrets.Keys {
		if k == nil {
			continue
		}
		if strings.Contains(s, k.D.String()[:24]) {
			add("key %d: the private exponent in decimal", i+1)
		}
		for _, enc := range derForms(k) {
			if w, ok := containsWindow(s, enc.b64); ok {
				add("key %d: its %s DER in base64 (%.8s…)", i+1, enc.name, w)
			}
		}
	}
	return found
}

// isJWT reports whether m's first part decodes to a JSON object with "alg".
func isJWT(m string) bool {
	head, _, _ := strings.Cut(m, ".")
	data, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(head, "="))
	if err != nil {
		return false
	}
	var hdr map[string]any
	if json.Unmarshal(data, &hdr) != nil {
		return false
	}
	_, ok := hdr["alg"]
	return ok
}

// containsPiece reports whether s holds any 20-character piece of part.
func containsPiece(s, part string) bool {
	const n = 20
	if len(part) < n {
		return false
	}
	for off := 0; off+n <= len(part); off += n / 2 {
		if strings.Contains(s, part[off:off+n]) {
			return true
		}
	}
	return strings.Contains(s, part[len(part)-n:])
}

type der struct{ name, b64 string }

func derForms(k *rsa.PrivateKey) []der {
	out := []der{{"PKCS#1", base64.StdEncoding.EncodeToString(x509.MarshalPKCS1PrivateKey(k))}}
	if p8, err := x509.MarshalPKCS8PrivateKey(k); err == nil {
		out = append(out, der{"PKCS#8", base64.StdEncoding.EncodeToString(p8)})
	}
	return out
}

// containsWindow looks for 24-character pieces of b64, one from each
// 64-character line a PEM block would have, the first line (the encoding's
// common header) left out.
func containsWindow(s, b64 string) (string, bool) {
	for off := 64; off+32 <= len(b64); off += 64 {
		if w := b64[off+8 : off+32]; strings.Contains(s, w) {
			return w, true
		}
	}
	return "", false
}

// Recorder keeps the bearer token of every request that passes through
// the handler Wrap returns, so that a test can look for exactly those.
type Recorder struct {
	mu   sync.Mutex
	seen map[string]bool
}

// Wrap returns h, recording each request's bearer token first.
func (rec *Recorder) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && tok != "" {
			rec.mu.Lock()
			if rec.seen == nil {
				rec.seen = map[string]bool{}
			}
			rec.seen[tok] = true
			rec.mu.Unlock()
		}
		h.ServeHTTP(w, r)
	})
}

// Tokens lists the tokens recorded so far.
func (rec *Recorder) Tokens() []string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	out := make([]string, 0, len(rec.seen))
	for tok := range rec.seen {
		out = append(out, tok)
	}
	slices.Sort(out)
	return out
}

// Sink collects what concurrent writers write (a client's trace, a
// server's log), for Find.
type Sink struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *Sink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *Sink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
