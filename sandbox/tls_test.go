package sandbox

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCertPath(t *testing.T) {
	for state, want := range map[string]string{
		"sb/account.json":   "sb/account.cert.pem",
		"state":             "state.cert.pem",
		"/x/y/demo.v2.json": "/x/y/demo.v2.cert.pem",
	} {
		if got := CertPath(state); got != filepath.FromSlash(want) {
			t.Errorf("CertPath(%q) = %q, want %q", state, got, want)
		}
	}
}

// TestSelfSignedTLS serves https with the certificate and checks that a
// client trusting only the written file gets through, and one trusting
// the system roots does not.
func TestSelfSignedTLS(t *testing.T) {
	certPath := filepath.Join(t.TempDir(), "account.cert.pem")
	cfg, err := SelfSignedTLS(certPath)
	if err != nil {
		t.Fatal(err)
	}
	pemData, err := os.ReadFile(certPath)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(pemData), "PRIVATE KEY") {
		t.Fatal("the certificate file holds a private key")
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemData) {
		t.Fatalf("%s holds no certificate", certPath)
	}

	srv := New(demoState(t), Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, tls.NewListener(ln, cfg), srv) }()
	t.Cleanup(func() { cancel(); <-done })

	token := tokenFor(t, 0, DemoAccountID)
	for _, host := range []string{ln.Addr().String(), strings.Replace(ln.Addr().String(), "127.0.0.1", "localhost", 1)} {
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
		req, _ := http.NewRequest(http.MethodPost, "https://"+host+"/platform_api/GetAccountInfo", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("https://%s with the written certificate: %v", host, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.TLS == nil {
			t.Errorf("https://%s: status %d, TLS %v", host, resp.StatusCode, resp.TLS != nil)
		}
	}
	strict := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: x509.NewCertPool()}}}
	if resp, err := strict.Get("https://" + ln.Addr().String() + "/platform_api/GetAccountInfo"); err == nil {
		resp.Body.Close()
		t.Error("a client that does not trust the certificate got through")
	}
}
