package voximplant

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestEncodeParseRoundTrip(t *testing.T) {
	want := testCredentials()
	data, err := EncodeKeyFile(want)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte(`"private_key": "-----BEGIN RSA `+`PRIVATE KEY-----`)) {
		t.Errorf("key file does not hold a PKCS#1 PEM key")
	}
	got, err := ParseCredentials(data)
	if err != nil {
		t.Fatal(err)
	}
	if got.AccountEmail != want.AccountEmail || got.AccountID != want.AccountID || got.KeyID != want.KeyID || !got.PrivateKey.Equal(want.PrivateKey) {
		t.Errorf("round trip changed the credentials: got %v, want %v", got, want)
	}
}

func TestParseCredentialsPKCS8(t *testing.T) {
	der, err := x509.MarshalPKCS8PrivateKey(testKey())
	if err != nil {
		t.Fatal(err)
	}
	data := keyFile(t, map[string]any{"private_key": string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))})
	got, err := ParseCredentials(data)
	if err != nil {
		t.Fatal(err)
	}
	if !got.PrivateKey.Equal(testKey()) {
		t.Error("PKCS#8 key not read back")
	}
}

// keyFile is a valid key file with some fields replaced (nil deletes).
func keyFile(t *testing.T, change map[string]any) []byte {
	t.Helper()
	good, err := EncodeKeyFile(testCredentials())
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]any{}
	if err := json.Unmarshal(good, &m); err != nil {
		t.Fatal(err)
	}
	for k, v := range change {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestParseCredentialsErrors(t *testing.T) {
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalPKCS8PrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	ecSEC1, err := x509.MarshalECPrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	pemOf := func(typ string, der []byte) string {
		return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
	}
	good := string(keyFile(t, nil))
	tests := []struct {
		name string
		data string
		want string
	}{
		{"empty", "  \n", "empty file"},
		{"not JSON", "account_id: 1\n", "not JSON: syntax error at byte 1"},
		{"truncated", good[:len(good)/2], "not JSON: syntax error at byte"},
		{"array", "[1, 2]", "not a JSON object but array"},
		{"null", "null", "not a JSON object but null"},
		{"missing key_id", string(keyFile(t, map[string]any{"key_id": nil})), `missing field "key_id"`},
		{"missing two", `{"account_email": "a@b"}`, `missing field "account_id", "key_id", "private_key"`},
		{"account_id string", string(keyFile(t, map[string]any{"account_id": "1234567"})), `field "account_id" must be a number, got a string`},
		{"account_id fraction", string(keyFile(t, map[string]any{"account_id": 1.5})), `field "account_id" must be a positive whole number, got 1.5`},
		{"account_id zero", string(keyFile(t, map[string]any{"account_id": 0})), `field "account_id" must be a positive whole number, got 0`},
		{"key_id number", string(keyFile(t, map[string]any{"key_id": 42})), `field "key_id" must be a string, got a number`},
		{"key_id empty", string(keyFile(t, map[string]any{"key_id": ""})), `field "key_id" is empty`},
		{"email object", string(keyFile(t, map[string]any{"account_email": map[string]any{}})), `field "account_email" must be a string, got an object`},
		{"private_key array", string(keyFile(t, map[string]any{"private_key": []int{1}})), `field "private_key" must be a string, got an array`},
		{"private_key not PEM", string(keyFile(t, map[string]any{"private_key": "MIIEowIBAAKCAQEA"})), `field "private_key": not PEM`},
		{"private_key garbage DER", string(keyFile(t, map[string]any{"private_key": pemOf("RSA PRIVATE KEY", []byte("nonsense"))})), `not hold a valid PKCS#1 RSA key`},
		{"ECDSA PKCS#8", string(keyFile(t, map[string]any{"private_key": pemOf("PRIVATE KEY", ecDER)})), `the key is ECDSA, not RSA`},
		{"ECDSA SEC1", string(keyFile(t, map[string]any{"private_key": pemOf("EC PRIVATE KEY", ecSEC1)})), `the key is ECDSA, not RSA`},
		{"certificate", string(keyFile(t, map[string]any{"private_key": pemOf("CERTIFICATE", []byte{1})})), `the PEM block is a certificate, not an RSA key`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseCredentials([]byte(tt.data))
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			assertNoSecrets(t, "error", err.Error())
			if strings.Contains(err.Error(), "MII") {
				t.Errorf("error quotes key material: %q", err)
			}
		})
	}
}

func TestLoadCredentials(t *testing.T) {
	dir := t.TempDir()
	data := keyFile(t, nil)
	private := filepath.Join(dir, "private.json")
	if err := os.WriteFile(private, data, 0o600); err != nil {
		t.Fatal(err)
	}
	shared := filepath.Join(dir, "shared.json")
	if err := os.WriteFile(shared, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(shared, 0o644); err != nil {
		t.Fatal(err)
	}

	var warn strings.Builder
	warnf := func(path string, mode fs.FileMode) { fmt.Fprintf(&warn, "%s %04o\n", path, mode) }
	c, err := LoadCredentials(private, warnf)
	if err != nil {
		t.Fatal(err)
	}
	if c.AccountID != testAccount || c.KeyID != testKeyID {
		t.Errorf("loaded %v", c)
	}
	if warn.Len() != 0 {
		t.Errorf("warning for a 0600 file: %q", warn.String())
	}

	if _, err := LoadCredentials(shared, warnf); err != nil {
		t.Fatal(err)
	}
	if want := shared + " 0644\n"; warn.String() != want {
		t.Errorf("warned %q, want %q", warn.String(), want)
	}

	t.Setenv(CredentialsEnv, private)
	if c, err := LoadCredentials("", nil); err != nil || c.KeyID != testKeyID {
		t.Errorf("from $%s: %v, %v", CredentialsEnv, c, err)
	}
	t.Setenv(CredentialsEnv, "")
	if _, err := LoadCredentials("", nil); err == nil || !strings.Contains(err.Error(), "pass --credentials FILE or set VOXIMPLANT_CREDENTIALS") {
		t.Errorf("no path: got %v", err)
	}
	_, err = LoadCredentials(filepath.Join(dir, "absent.json"), nil)
	if err == nil || !strings.Contains(err.Error(), "absent.json") || !os.IsNotExist(unwrapAll(err)) {
		t.Errorf("absent file: got %v", err)
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, keyFile(t, map[string]any{"key_id": nil}), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadCredentials(bad, nil); err == nil || !strings.Contains(err.Error(), "credentials file "+bad+`: missing field "key_id"`) {
		t.Errorf("bad file: got %v", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok || u.Unwrap() == nil {
			return err
		}
		err = u.Unwrap()
	}
}

func TestCredentialsNeverPrintKey(t *testing.T) {
	c := testCredentials()
	for _, s := range []string{c.String(), c.GoString()} {
		assertNoSecrets(t, "credentials string", s)
	}
	want := "key " + testKeyID + " of account 1234567 (svc@acme.voximplant.com)"
	if diff := cmp.Diff(want, c.String()); diff != "" {
		t.Errorf("String (-want +got):\n%s", diff)
	}
}

func TestCredentialsFormatting(t *testing.T) {
	c := testCredentials()
	for _, s := range []string{fmt.Sprint(c), fmt.Sprint(*c), fmt.Sprintf("%+v", *c), fmt.Sprintf("%#v", c), fmt.Sprintf("%v", []any{c})} {
		assertNoSecrets(t, "formatted credentials", s)
	}
}

// FuzzParseCredentials: no input panics, and no error quotes the input's
// key material.
func FuzzParseCredentials(f *testing.F) {
	good, err := EncodeKeyFile(testCredentials())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"account_email":"a","account_id":1,"key_id":"k","private_key":"-----BEGIN RSA ` + `PRIVATE KEY-----\nMIIB\n-----END RSA ` + `PRIVATE KEY-----\n"}`))
	f.Add([]byte(`{"account_id": 1e3}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseCredentials(data)
		if err == nil {
			if c.Validate() != nil {
				t.Errorf("parsed credentials that do not validate: %v", c.Validate())
			}
			return
		}
		if strings.Contains(err.Error(), "MII") || strings.Contains(err.Error(), "PRIVATE KEY") {
			t.Errorf("error quotes the key: %q", err)
		}
	})
}
