package voximplant

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
	"strings"
)

// CredentialsEnv is the environment variable that the official clients read
// the key-file path from; LoadCredentials falls back to it.
const CredentialsEnv = "VOXIMPLANT_CREDENTIALS"

// Credentials is a service-account key: the result of CreateKey as Voximplant
// lets you download it. The private key never leaves this process: it signs
// JWTs and is never printed.
type Credentials struct {
	AccountEmail string
	AccountID    int64
	KeyID        string
	PrivateKey   *rsa.PrivateKey
}

// NewCredentials builds credentials from parts, for keys that never were in
// a file (the sandbox's ephemeral key).
func NewCredentials(accountEmail string, accountID int64, keyID string, key *rsa.PrivateKey) *Credentials {
	return &Credentials{AccountEmail: accountEmail, AccountID: accountID, KeyID: keyID, PrivateKey: key}
}

// String keeps the key out of any %v of a Credentials (value or pointer).
func (c Credentials) String() string {
	return fmt.Sprintf("key %s of account %d (%s)", c.KeyID, c.AccountID, c.AccountEmail)
}

// GoString keeps the key out of %#v too.
func (c Credentials) GoString() string { return c.String() }

// Validate reports what makes c unusable for signing requests.
func (c *Credentials) Validate() error {
	switch {
	case c == nil:
		return errors.New("no credentials")
	case c.AccountID <= 0:
		return fmt.Errorf("account_id must be a positive number, got %d", c.AccountID)
	case c.KeyID == "":
		return errors.New("key_id is empty")
	case c.PrivateKey == nil:
		return errors.New("private_key is missing")
	}
	if err := c.PrivateKey.Validate(); err != nil {
		return fmt.Errorf("private_key is not a valid RSA key: %w", err)
	}
	return nil
}

// LoadCredentials reads a key file {account_email, account_id, key_id,
// private_key}. An empty path means $VOXIMPLANT_CREDENTIALS. A file that
// group or others may read earns a call of warn with the path read and
// its mode (nil: no warnings); the caller words the warning, as it knows
// how to quote a path for the user to paste.
func LoadCredentials(path string, warn func(path string, mode fs.FileMode)) (*Credentials, error) {
	if path == "" {
		path = os.Getenv(CredentialsEnv)
	}
	if path == "" {
		return nil, fmt.Errorf("no credentials: pass --credentials FILE or set %s to the service-account key file", CredentialsEnv)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("credentials file: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && warn != nil && runtime.GOOS != "windows" {
		if mode := fi.Mode().Perm(); mode&0o044 != 0 {
			warn(path, mode)
		}
	}
	data, err := io.ReadAll(io.LimitReader(f, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("credentials file %s: %w", path, err)
	}
	c, err := ParseCredentials(data)
	if err != nil {
		return nil, fmt.Errorf("credentials file %s: %w", path, err)
	}
	return c, nil
}

// keyFileFields are the fields of a key file, in the order they are checked.
var keyFileFields = []string{"account_email", "account_id", "key_id", "private_key"}

// ParseCredentials parses the contents of a key file. Errors name the field
// at fault and never quote the key.
func ParseCredentials(data []byte) (*Credentials, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("empty file: expected the JSON key file that Voximplant's CreateKey returns")
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			// The offset, not the text: the text around it may be the key.
			return nil, fmt.Errorf("not JSON: syntax error at byte %d; expected {\"account_email\", \"account_id\", \"key_id\", \"private_key\"}", syn.Offset)
		}
		var typ *json.UnmarshalTypeError
		if errors.As(err, &typ) {
			return nil, fmt.Errorf("not a JSON object but %s; expected {\"account_email\", \"account_id\", \"key_id\", \"private_key\"}", typ.Value)
		}
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	if raw == nil {
		return nil, errors.New("not a JSON object but null; expected {\"account_email\", \"account_id\", \"key_id\", \"private_key\"}")
	}
	var missing []string
	for _, k := range keyFileFields {
		if v, ok := raw[k]; !ok || string(v) == "null" {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("missing field %s; a key file has %q, %q, %q and %q", quoteJoin(missing), keyFileFields[0], keyFileFields[1], keyFileFields[2], keyFileFields[3])
	}
	c := &Credentials{}
	if err := stringField(raw, "account_email", &c.AccountEmail); err != nil {
		return nil, err
	}
	if err := stringField(raw, "key_id", &c.KeyID); err != nil {
		return nil, err
	}
	var id json.Number
	if err := json.Unmarshal(raw["account_id"], &id); err != nil || jsonKind(raw["account_id"]) != "a number" {
		return nil, fmt.Errorf("field \"account_id\" must be a number, got %s", jsonKind(raw["account_id"]))
	}
	n, err := id.Int64()
	if err != nil || n <= 0 {
		return nil, fmt.Errorf("field \"account_id\" must be a positive whole number, got %s", id)
	}
	c.AccountID = n
	if c.KeyID == "" {
		return nil, errors.New("field \"key_id\" is empty")
	}
	var pemText string
	if err := stringField(raw, "private_key", &pemText); err != nil {
		return nil, err
	}
	key, err := parsePrivateKey([]byte(pemText))
	if err != nil {
		return nil, fmt.Errorf("field \"private_key\": %w", err)
	}
	c.PrivateKey = key
	return c, nil
}

func stringField(raw map[string]json.RawMessage, name string, dst *string) error {
	if err := json.Unmarshal(raw[name], dst); err != nil {
		return fmt.Errorf("field %q must be a string, got %s", name, jsonKind(raw[name]))
	}
	return nil
}

// jsonKind names the JSON type of v without quoting it.
func jsonKind(v json.RawMessage) string {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return "nothing"
	}
	switch v[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}

func quoteJoin(names []string) string {
	var b bytes.Buffer
	for i, n := range names {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q", n)
	}
	return b.String()
}

// parsePrivateKey accepts an RSA key as PKCS#1 ("RSA PRIVATE KEY", what
// Voximplant issues) or PKCS#8 ("PRIVATE KEY") PEM.
func parsePrivateKey(data []byte) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("not PEM; expected the PEM text Voximplant issued (a block starting with -----BEGIN RSA ...)")
	}
	if _, ok := block.Headers["Proc-Type"]; ok {
		return nil, errors.New("the PEM key is encrypted; voxbind needs the unencrypted key Voximplant issued")
	}
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, errors.New("the PEM block does not hold a valid PKCS#1 RSA key")
		}
		return key, nil
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, errors.New("the PEM block does not hold a valid PKCS#8 key")
		}
		switch k := k.(type) {
		case *rsa.PrivateKey:
			return k, nil
		case *ecdsa.PrivateKey:
			return nil, errors.New("the key is ECDSA, not RSA; Voximplant keys are RSA (RS256)")
		case ed25519.PrivateKey:
			return nil, errors.New("the key is Ed25519, not RSA; Voximplant keys are RSA (RS256)")
		default:
			return nil, fmt.Errorf("the key is %T, not RSA; Voximplant keys are RSA (RS256)", k)
		}
	case "EC PRIVATE KEY":
		return nil, errors.New("the key is ECDSA, not RSA; Voximplant keys are RSA (RS256)")
	default:
		return nil, fmt.Errorf("the PEM block is a %s, not an RSA key; expected the PKCS#1 RSA key Voximplant issues", strings.ToLower(block.Type))
	}
}

// EncodeKeyFile writes c in the key-file format Voximplant issues, with the
// key as PKCS#1 PEM. Write the result with mode 0600.
func EncodeKeyFile(c *Credentials) ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("encode key file: %w", err)
	}
	pemText := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(c.PrivateKey)})
	out, err := json.MarshalIndent(struct {
		AccountEmail string `json:"account_email"`
		AccountID    int64  `json:"account_id"`
		KeyID        string `json:"key_id"`
		PrivateKey   string `json:"private_key"`
	}{c.AccountEmail, c.AccountID, c.KeyID, string(pemText)}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode key file: %w", err)
	}
	return append(out, '\n'), nil
}
