package sandbox

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"path/filepath"
	"strings"
	"time"

	"github.com/voxbind/voxbind/internal/atomicfile"
)

// CertPath is where 'sandbox serve --tls' writes the certificate of a
// state file: beside it, account.json → account.cert.pem.
func CertPath(statePath string) string {
	dir, base := filepath.Split(statePath)
	return filepath.Join(dir, strings.TrimSuffix(base, filepath.Ext(base))+".cert.pem")
}

// SelfSignedTLS makes a fresh key and a self-signed certificate for the
// loopback names (127.0.0.1, ::1, localhost), valid for 30 days, writes
// the certificate (not the key, which never leaves memory) to certPath
// atomically, and returns a TLS configuration that serves it. Clients
// that only speak https trust it through the file: NODE_EXTRA_CA_CERTS
// for Node.js, SSL_CERT_FILE for Go programs (voxbind included).
func SelfSignedTLS(certPath string) (*tls.Config, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("sandbox tls: generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("sandbox tls: serial number: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "voxbind sandbox", Organization: []string{"voxbind sandbox (self-signed, loopback only)"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(30 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true, // so that it can be trusted as its own authority
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("sandbox tls: create certificate: %w", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := atomicfile.WriteFile(certPath, certPEM, 0o644); err != nil {
		return nil, fmt.Errorf("sandbox tls: %w", err)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		MinVersion:   tls.VersionTLS12,
	}, nil
}
