package sandbox

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/voxbind/voxbind/voximplant"
)

// Files that Init writes into its directory.
const (
	CredentialsFile = "credentials.json"
	StateFile       = "account.json"
)

// maxDemoChildren bounds the child accounts Init makes (each has the whole
// demo account's data).
const maxDemoChildren = 10000

// keyBits is the size of the RSA keys the sandbox makes, as Voximplant's.
const keyBits = 2048

// Init writes DIR/credentials.json (mode 0600: a fresh RSA-2048 service-
// account key in the real key-file format) and DIR/account.json (the demo
// account of DemoState, which accepts that key, with children demo child
// accounts of AddDemoChildren that the key may act on too). DIR is created
// if missing. Existing files are never overwritten: if either file exists,
// Init writes nothing and says which.
func Init(dir string, children int) error {
	return initAccount(dir, children, DemoState)
}

// InitBulk is Init with the bulk example's account of BulkState, lines
// lines long, in place of the demo account.
func InitBulk(dir string, lines, children int) error {
	if lines < 1 || lines > MaxBulk {
		return fmt.Errorf("sandbox init: --bulk %d: give the number of phone lines, 1 to %d", lines, MaxBulk)
	}
	return initAccount(dir, children, func(pub *rsa.PublicKey, keyID string) (*State, error) {
		return BulkState(pub, keyID, lines)
	})
}

// initAccount writes the key and the account that account returns for it.
func initAccount(dir string, children int, account func(pub *rsa.PublicKey, keyID string) (*State, error)) error {
	if children < 0 || children > maxDemoChildren {
		return fmt.Errorf("sandbox init: --children %d: give 0 to %d child accounts", children, maxDemoChildren)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("sandbox init: %w", err)
	}
	credPath, statePath := filepath.Join(dir, CredentialsFile), filepath.Join(dir, StateFile)
	for _, p := range []string{credPath, statePath} {
		if _, err := os.Lstat(p); err == nil {
			return fmt.Errorf("sandbox init: %s already exists; it is never overwritten: choose another directory or delete it", p)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("sandbox init: %w", err)
		}
	}
	key, err := rsa.GenerateKey(rand.Reader, keyBits)
	if err != nil {
		return fmt.Errorf("sandbox init: generate key: %w", err)
	}
	keyID := newKeyID()
	st, err := account(&key.PublicKey, keyID)
	if err != nil {
		return fmt.Errorf("sandbox init: %w", err)
	}
	if err := AddDemoChildren(st, children); err != nil {
		return fmt.Errorf("sandbox init: %w", err)
	}
	keyFile, err := voximplant.EncodeKeyFile(voximplant.NewCredentials(st.Account.Email, st.Account.ID, keyID, key))
	if err != nil {
		return fmt.Errorf("sandbox init: %w", err)
	}
	stateJSON, err := st.Marshal()
	if err != nil {
		return fmt.Errorf("sandbox init: %w", err)
	}
	if err := createExclusive(credPath, keyFile, 0o600); err != nil {
		return fmt.Errorf("sandbox init: %w", err)
	}
	if err := createExclusive(statePath, stateJSON, 0o644); err != nil {
		os.Remove(credPath) // a key for no account is of no use
		return fmt.Errorf("sandbox init: %w", err)
	}
	return nil
}

// newKeyID returns a random key id in the UUID form Voximplant uses.
func newKeyID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// createExclusive writes a new file; it fails if the file exists.
func createExclusive(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s already exists; it is never overwritten", path)
		}
		return err
	}
	if err := f.Chmod(mode); err != nil { // umask must not widen or narrow it
		f.Close()
		os.Remove(path)
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}
