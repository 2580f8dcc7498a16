package bus

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"github.com/nats-io/nats-server/v2/server"
)

// TLS of the bus. The embedded server's client port serves TLS with the
// node's certificate when one is configured; with a CA, clients must present
// a certificate the CA signed (mutual TLS), and routes between servers use
// TLS too, each end verifying the other against the CA (the certificate then
// needs both the server and the client extended key usage). Without a CA
// routes stay plain TCP, authenticated by the token.

// serverTLS sets o's client-port TLS from cfg.
func serverTLS(cfg Config, o *server.Options) error {
	if cfg.TLSCert == "" {
		return nil
	}
	tc, err := server.GenTLSConfig(&server.TLSConfigOpts{
		CertFile: cfg.TLSCert,
		KeyFile:  cfg.TLSKey,
		CaFile:   cfg.TLSCA,
		Verify:   cfg.TLSCA != "",
	})
	if err != nil {
		return fmt.Errorf("%w: tls: %v", ErrConfig, err)
	}
	o.TLSConfig = tc
	o.TLS = true
	o.TLSVerify = cfg.TLSCA != ""
	o.TLSCert, o.TLSKey, o.TLSCaCert = cfg.TLSCert, cfg.TLSKey, cfg.TLSCA
	return nil
}

// routeTLS sets o's route TLS from cfg: only with a CA, since both ends of a
// route verify each other.
func routeTLS(cfg Config, o *server.Options) error {
	if cfg.TLSCert == "" || cfg.TLSCA == "" {
		return nil
	}
	tc, err := server.GenTLSConfig(&server.TLSConfigOpts{
		CertFile: cfg.TLSCert,
		KeyFile:  cfg.TLSKey,
		CaFile:   cfg.TLSCA,
		Verify:   true,
	})
	if err != nil {
		return fmt.Errorf("%w: route tls: %v", ErrConfig, err)
	}
	// A route's server dials as a client too: it verifies its peer against
	// the same CA (as nats-server's own cluster tls block does).
	tc.ClientAuth = tls.RequireAndVerifyClientCert
	tc.RootCAs = tc.ClientCAs
	o.Cluster.TLSConfig = tc
	return nil
}

// clientTLS is the TLS of the connection to an external NATS: the CA (if
// any) verifies the server, and the certificate (if any) is presented when
// the server asks for one.
func clientTLS(cfg Config) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("%w: tls: %v", ErrConfig, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	if cfg.TLSCA != "" {
		pem, err := os.ReadFile(cfg.TLSCA)
		if err != nil {
			return nil, fmt.Errorf("%w: tls ca: %v", ErrConfig, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: tls ca: no PEM certificate in %s", ErrConfig, cfg.TLSCA)
		}
		tc.RootCAs = pool
	}
	return tc, nil
}
