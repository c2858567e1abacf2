package sandbox

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/voxbind/voxbind/voximplant"
)

// Running is an emulator serving on a loopback port in this process.
type Running struct {
	// Endpoint is the API base URL, http://127.0.0.1:PORT/platform_api/.
	Endpoint string
	// Credentials hold an ephemeral key that the server accepts and that is
	// never written anywhere.
	Credentials *voximplant.Credentials
	// Server is the emulator, for its Stats and State.
	Server *Server

	http *http.Server
	done chan error

	// fresh holds connections that have not sent a request yet. Shutdown
	// counts them as idle only after 5 s, and the client often dials one
	// it then does not need; Close closes them at once.
	mu    sync.Mutex
	fresh map[net.Conn]bool
}

func (r *Running) connState(c net.Conn, state http.ConnState) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if state == http.StateNew {
		r.fresh[c] = true
	} else {
		delete(r.fresh, c)
	}
}

// Start opens the state file (locking it, see Open), makes an ephemeral
// RSA key that the server accepts for as long as it runs, and serves on
// 127.0.0.1 on a free port. Close stops it and releases the file.
func Start(statePath string, opts Options) (*Running, error) {
	srv, err := Open(statePath, opts)
	if err != nil {
		return nil, err
	}
	key, err := rsa.GenerateKey(rand.Reader, keyBits)
	if err != nil {
		srv.Close()
		return nil, fmt.Errorf("sandbox: generate key: %w", err)
	}
	keyID := "ephemeral-" + newKeyID()
	srv.AddKey(keyID, &key.PublicKey)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		srv.Close()
		return nil, fmt.Errorf("sandbox: listen on loopback: %w", err)
	}
	acct := srv.Account()
	r := &Running{
		Endpoint:    "http://" + ln.Addr().String() + "/platform_api/",
		Credentials: voximplant.NewCredentials(acct.Email, acct.ID, keyID, key),
		Server:      srv,
		http:        &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second},
		done:        make(chan error, 1),
		fresh:       map[net.Conn]bool{},
	}
	r.http.ConnState = r.connState
	go func() { r.done <- r.http.Serve(ln) }()
	return r, nil
}

// Close stops serving, waits for requests in flight (at most a few
// seconds), and releases the state file. Every change is already saved.
func (r *Running) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r.mu.Lock()
	for c := range r.fresh {
		c.Close()
	}
	r.mu.Unlock()
	err := r.http.Shutdown(ctx)
	if err != nil {
		r.http.Close()
	}
	if serr := <-r.done; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return errors.Join(err, r.Server.Close())
}
