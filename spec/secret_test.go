package spec

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestKeyInSpecNotShown: a private key pasted into a spec, as a PEM block
// or as its base64 body alone (on one line, or wrapped as a PEM block
// wraps it), in YAML or CSV, is a spec error at the value's position that
// never shows the value; a long name that only looks busy is not one. The
// key is made here, at run time: no key is committed.
func TestKeyInSpecNotShown(t *testing.T) {
	// Two lines of the key's base64 body as a PEM block wraps it, each
	// holding a '/' and a '+' (most keys have such lines; another key is
	// made until one does), so that the case is the same whatever bytes
	// the key has: neither character may end a run.
	var der []byte
	var lines []string
	for len(lines) < 2 {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		der = x509.MarshalPKCS1PrivateKey(key)
		body := base64.StdEncoding.EncodeToString(der)
		lines = nil
		for i := 0; i+64 <= len(body) && len(lines) < 2; i += 64 {
			if l := body[i : i+64]; strings.Contains(l, "/") && strings.Contains(l, "+") {
				lines = append(lines, l)
			}
		}
	}
	line1, line2 := lines[0], lines[1]
	block := strings.TrimSpace(string(pem.EncodeToMemory(&pem.Block{Type: "RSA " + "PRIVATE KEY", Bytes: der})))
	body := base64.StdEncoding.EncodeToString(der)
	const (
		pemMsg  = "this value looks like a PEM key or certificate (not shown): a spec never holds keys or tokens; remove it, and replace the key or token if the file was shared [secret]"
		bodyMsg = "this value looks like the base64 of a key or a token (not shown): a spec never holds keys or tokens; remove it, and replace the key or token if the file was shared [secret]"
		jwtMsg  = "this value looks like a JWT, an API token (not shown): a spec never holds keys or tokens; remove it, and replace the key or token if the file was shared [secret]"
	)
	carol := "  - registration: carol@pbx.example.com\n    application: support-team-of-the-north-east-region-office-2026\n    user: SalesTeamBerlin2024\n" +
		"  - registration: GrandCentralStationReceptionDesk2024MainLobby@pbx.example.com\n    application: support\n    user: mikeyJones.home.office\n" +
		"  - registration: eyJane.eyJones.example@pbx.example.com\n    application: support\n    user: Xy1Xy1Xy1Xy1Xy1Xy1Xy1Xy1Xy1Xy1Xy1Xy1Xy1Xy1Xy1Xy1Xy1Xy1Xy1Xy1Xy1\n"
	cases := []struct {
		name, text string
		want       []string
	}{
		// The PEM block as one double-quoted YAML string, its newlines
		// escaped, as a paste into a name looks.
		{"pem.yaml",
			"version: 1\nbindings:\n  - registration: alice@pbx.example.com\n    application: support\n    user: \"" + strings.ReplaceAll(block, "\n", `\n`) + "\"\n" + carol,
			[]string{"pem.yaml:5:11: " + pemMsg}},
		{"body.yaml",
			"version: 1\nbindings:\n  - registration: alice@pbx.example.com\n    application: support\n    user: " + body + "\n" +
				"  - registration: bob@pbx.example.com\n    application: support\n    rule: |\n      " + line1 + "\n      " + line2 + "\n" + carol,
			[]string{"body.yaml:5:11: " + bodyMsg, "body.yaml:8:11: " + bodyMsg}},
		// A JWT glued to a word by '_', and one without its signature.
		{"jwt.yaml",
			"version: 1\nbindings:\n  - registration: alice@pbx.example.com\n    application: support\n    user: x_" + jwtHeader + "." + jwtPayload + "." + jwtSig + "\n" +
				"  - registration: bob@pbx.example.com\n    application: support\n    user: " + jwtHeader + "." + jwtPayload + "\n" + carol,
			[]string{"jwt.yaml:5:11: " + jwtMsg, "jwt.yaml:8:11: " + jwtMsg}},
		{"body.csv",
			"registration,application,user\nalice@pbx.example.com,support," + body + "\n" +
				"bob@pbx.example.com,support,\"" + line1 + "\n" + line2 + "\"\n" +
				"carol@pbx.example.com,support-team-of-the-north-east-region-office-2026,SalesTeamBerlin2024\n",
			[]string{"body.csv:2:3: " + bodyMsg, "body.csv:3:3: " + bodyMsg}},
	}
	dir := t.TempDir()
	t.Chdir(dir)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(filepath.Join(dir, tc.name), []byte(tc.text), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadFleetWith([]string{tc.name}, Options{Today: testToday})
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error %v (%T), want spec errors", err, err)
			}
			var got []string
			for _, e := range errs {
				got = append(got, e.Error()+" ["+string(e.Code)+"]")
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			for _, piece := range []string{body[:12], line1[:12], line2[:12], body[len(body)-12:], "PRIVATE KEY", jwtPayload} {
				if strings.Contains(err.Error(), piece) {
					t.Errorf("the error shows %q of the key:\n%v", piece, err)
				}
			}
		})
	}
}

// TestUnknownAnchor: an alias to an anchor the file does not define is
// reported where the alias is, not at 1:1; its name is shown only when it
// does not look like a key or a token, and cut past 40 characters.
func TestUnknownAnchor(t *testing.T) {
	key := make([]byte, 60)
	rand.Read(key)
	secret := strings.NewReplacer("+", "", "/", "", "=", "").Replace(base64.StdEncoding.EncodeToString(key))
	secret = "Ab1" + secret // upper case, lower case and digits whatever the random bytes
	long := strings.Repeat("x", 60)
	forty := strings.Repeat("x", 40)
	dir := t.TempDir()
	t.Chdir(dir)
	for name, tc := range map[string]struct{ alias, want, hidden string }{
		"short.yaml":  {"*carol", "short.yaml:5:11: invalid YAML: unknown anchor 'carol' referenced", ""},
		"secret.yaml": {"*" + secret, "secret.yaml:5:11: invalid YAML: an alias names an anchor the file does not define, and its name looks like the base64 of a key or a token (not shown)", secret[:12]},
		"long.yaml":   {"[a, " + "*" + long + "]", "long.yaml:5:15: invalid YAML: unknown anchor '" + long[:40] + "…' referenced", long[:41]},
		"forty.yaml":  {"*" + forty, "forty.yaml:5:11: invalid YAML: unknown anchor '" + forty + "' referenced", "…"},
		// The column counts characters, not bytes.
		"accent.yaml": {"[é, *carol]", "accent.yaml:5:15: invalid YAML: unknown anchor 'carol' referenced", ""},
		// Windows line ends: the \r after the alias ends it.
		"crlf.yaml": {"*carol", "crlf.yaml:5:11: invalid YAML: unknown anchor 'carol' referenced", ""},
	} {
		t.Run(name, func(t *testing.T) {
			text := "version: 1\nbindings:\n  - registration: alice@pbx.example.com\n    application: support\n    user: " + tc.alias + "\n"
			if name == "crlf.yaml" {
				text = strings.ReplaceAll(text, "\n", "\r\n")
			}
			if err := os.WriteFile(name, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadFleetWith([]string{name}, Options{Today: testToday})
			if err == nil || !strings.Contains(err.Error(), tc.want) || tc.hidden != "" && strings.Contains(err.Error(), tc.hidden) {
				t.Errorf("error = %v; want %q", err, tc.want)
			}
		})
	}
}

// The parts of a JWT (an API token): header, payload, signature.
const (
	jwtHeader  = "eyJhbGciOiJSUzI1NiJ9"
	jwtPayload = "eyJpc3MiOjEwMDAwMDF9"
	jwtSig     = "c2lnbmF0dXJl"
)

// TestSecretKindKeyRun: a run of 64 or more base64 characters (letters,
// digits, '+' and '/') mixing upper case, lower case and digits looks
// like a key or a token; a shorter run, or one without digits, does not.
// A JWT (header and payload of 8 or more characters past "eyJ", the
// signature optional) is one unless a letter, digit or '-' comes before
// it.
func TestSecretKindKeyRun(t *testing.T) {
	const key = "the base64 of a key or a token"
	const jwt = "a JWT, an API token"
	for in, want := range map[string]string{
		jwtHeader + "." + jwtPayload + "." + jwtSig:        jwt,
		jwtHeader + "." + jwtPayload:                       jwt,
		"x_" + jwtHeader + "." + jwtPayload + "." + jwtSig: jwt,
		"x_" + jwtHeader + "." + jwtPayload:                jwt,
		"user " + jwtHeader + "." + jwtPayload + "@pbx":    jwt,
		"x" + jwtHeader + "." + jwtPayload + "." + jwtSig:  "",
		"x-" + jwtHeader + "." + jwtPayload + "." + jwtSig: "",
		"9" + jwtHeader + "." + jwtPayload:                 "",
		"mikeyJones.home.office":                           "",
		"eyJane.eyJones.example":                           "",
		"eyJane12.eyJones12.example":                       "",
		jwtHeader + ".example":                             "",
		"eyJabcdefgh.eyJabcdefg":                           "",

		strings.Repeat("Ab1/", 16):               key,
		strings.Repeat("Ab1+", 16):               key,
		"x " + strings.Repeat("aB9/", 16) + " y": key,
		strings.Repeat("Ab1/", 16)[1:]:           "",
		strings.Repeat("Abc/", 16):               "",
		strings.Repeat("Ab1.", 16):               "",
	} {
		if got := SecretKind(in); got != want {
			t.Errorf("SecretKind(%q) = %q, want %q", in, got, want)
		}
	}
}
