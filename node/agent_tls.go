package node

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// errBadCA marks a --tls-ca that cannot be used, so that Validate names the
// right flag.
var errBadCA = errors.New("CA file")

// loadTLS builds the HTTP server's TLS from the node's files: its
// certificate, and with a CA file, mutual TLS (a client certificate signed by
// the CA is required). The NATS side builds its own from the same files
// (bus.Config).
func loadTLS(certFile, keyFile, caFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load %s and %s: %w", certFile, keyFile, err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if caFile == "" {
		return tc, nil
	}
	pool, err := loadCA(caFile)
	if err != nil {
		return nil, err
	}
	tc.ClientCAs = pool
	tc.ClientAuth = tls.RequireAndVerifyClientCert
	return tc, nil
}

// HTTPURL is the base URL of the HTTP API (https:// with TLS), or "" when it
// is off.
func (n *Node) HTTPURL() string {
	if n.httpAddr == "" {
		return ""
	}
	if n.cfg.TLSCert != "" {
		return "https://" + n.httpAddr
	}
	return "http://" + n.httpAddr
}

// loadCA reads a PEM CA file into a pool.
func loadCA(caFile string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errBadCA, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%w %s holds no PEM certificate", errBadCA, caFile)
	}
	return pool, nil
}
