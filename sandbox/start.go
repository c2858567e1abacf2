package sandbox

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
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

	stop context.CancelFunc
	done chan error
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
	ctx, stop := context.WithCancel(context.Background())
	acct := srv.Account()
	r := &Running{
		Endpoint:    "http://" + ln.Addr().String() + "/platform_api/",
		Credentials: voximplant.NewCredentials(acct.Email, acct.ID, keyID, key),
		Server:      srv,
		stop:        stop,
		done:        make(chan error, 1),
	}
	go func() { r.done <- Serve(ctx, ln, srv) }()
	return r, nil
}

// Close stops serving, waits for requests in flight (at most a few
// seconds), and releases the state file. Every change is already saved.
func (r *Running) Close() error {
	r.stop()
	err := <-r.done
	return errors.Join(err, r.Server.Close())
}

// httpLog is where net/http's server writes what it has to say about
// connections (a TLS handshake that failed, such as plain http sent to
// serve --tls): debug records of the server's Logger, so that they follow
// --log-level and --log-format like every other record; nowhere without a
// Logger. Left alone, net/http would print them on stderr whatever the
// flags say.
func (s *Server) httpLog() *log.Logger {
	if s.opts.Logger == nil {
		return log.New(io.Discard, "", 0)
	}
	return slog.NewLogLogger(s.opts.Logger.Handler(), slog.LevelDebug)
}

// shutdownGrace bounds how long a stopping server waits for requests in
// flight before it closes their connections.
const shutdownGrace = 5 * time.Second

// Serve answers requests on ln with srv until ctx is cancelled, then stops:
// it closes ln, lets requests in flight finish (at most a few seconds) and
// returns nil. It returns early only if serving fails. It does not Close
// srv.
func Serve(ctx context.Context, ln net.Listener, srv *Server) error {
	// fresh holds connections that have not sent a request yet. Shutdown
	// counts them as idle only after 5 s, and a client often dials one it
	// then does not need; stopping closes them at once. No request has
	// been read from them, so nothing is lost.
	// A connection accepted after stopping began is closed as it appears.
	var mu sync.Mutex
	fresh := map[net.Conn]bool{}
	stopping := false
	hs := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          srv.httpLog(),
		ConnState: func(c net.Conn, state http.ConnState) {
			mu.Lock()
			defer mu.Unlock()
			switch {
			case state == http.StateNew && stopping:
				c.Close()
			case state == http.StateNew:
				fresh[c] = true
			default:
				delete(fresh, c)
			}
		},
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("sandbox: serve: %w", err)
	case <-ctx.Done():
	}
	mu.Lock()
	stopping = true
	for c := range fresh {
		c.Close()
	}
	mu.Unlock()
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	err := hs.Shutdown(sctx)
	if err != nil {
		hs.Close()
		err = fmt.Errorf("sandbox: requests still in flight after %v were cut off: %w", shutdownGrace, err)
	}
	if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, fmt.Errorf("sandbox: serve: %w", serr))
	}
	return err
}
