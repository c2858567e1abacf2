package leakcheck

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

func TestFind(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"iss": 1, "iat": 2, "exp": 3}).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	other, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"x": 1}).SignedString([]byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	pemKey := string(pem.EncodeToMemory(&pem.Block{Type: "RSA " + "PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
	pemBody := strings.Join(strings.Split(pemKey, "\n")[2:5], "\n") // three lines, no marker
	secrets := Secrets{Tokens: []string{tok}, Keys: []*rsa.PrivateKey{key}}
	for name, tt := range map[string]struct {
		text string
		want string
	}{
		"clean":              {"voximplant: GetAccountInfo -> status=200 time=1ms retry=0 app.acme.voximplant.com", ""},
		"whole token":        {"Authorization: Bearer " + tok, "token 1, whole"},
		"signature only":     {"[token].[token]." + parts[2], "token 1, (a piece of) its signature"},
		"cut signature":      {"[token].[token]." + parts[2][:30] + "…", "token 1, (a piece of) its signature"},
		"claims only":        {"claims " + parts[1], "token 1, (a piece of) its claims"},
		"another JWT":        {"echo " + other, "a JWT"},
		"PEM lines":          {pemBody, "PKCS#1 DER in base64"},
		"private exponent":   {"d=" + key.D.String(), "private exponent"},
		"PEM marker":         {"-----BEGIN RSA " + "PRIVATE KEY-----", "PEM private key marker"},
		"dotted host names":  {"support.acme.voximplant.com ext0001.bulk.example.com", ""},
		"dotted base64 runs": {"abcdEFGH.ijklMNOP.qrstUVWX", ""},
	} {
		got := strings.Join(Find(tt.text, secrets), "; ")
		if tt.want == "" && got != "" || !strings.Contains(got, tt.want) {
			t.Errorf("%s: Find = %q, want %q", name, got, tt.want)
		}
	}
}
