package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLooksLikeKey: a key file is seen wherever its key stands, also past
// the first read and cut between two reads; a public key or a certificate
// is no private key.
func TestLooksLikeKey(t *testing.T) {
	dir := t.TempDir()
	pad := strings.Repeat("x", 64<<10-5) // the mark straddles the first read's end
	for name, tc := range map[string]struct {
		text string
		want bool
	}{
		"key file":         {`{"account_id": 1, "private_key": "..."}`, true},
		"PEM key last":     {strings.Repeat("a", 200<<10) + "\n-----BEGIN RSA " + "PRIVATE KEY-----\n", true},
		"field cut":        {pad + `"private_key": "..."`, true},
		"plan":             {`{"format_version": 1, "changes": []}`, false},
		"certificate only": {"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", false},
		"public key only":  {"-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----\n", false},
		"big, no key":      {strings.Repeat("b", 300<<10), false},
	} {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
		if err := os.WriteFile(path, []byte(tc.text), 0o600); err != nil {
			t.Fatal(err)
		}
		if got := looksLikeKey(path); got != tc.want {
			t.Errorf("%s: looksLikeKey = %v, want %v", name, got, tc.want)
		}
	}
}
