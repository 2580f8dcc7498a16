package integration

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/nats-io/nats.go"
	"github.com/roostkv/roost/node"
)

// testPKI is a throw-away CA, a certificate for 127.0.0.1 (server and
// client use, as routes need) and a client certificate, as PEM files.
type testPKI struct {
	ca, cert, key, clientCert, clientKey string
	pool                                 *x509.CertPool
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "roost test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64, cn string, ips []net.IP, usage ...x509.ExtKeyUsage) (certPEM, keyPEM []byte) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: usage, IPAddresses: ips, DNSNames: []string{"localhost"},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	}
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	loopback := []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	sc, sk := issue(2, "roost node", loopback, x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth)
	cc, ck := issue(3, "roost client", nil, x509.ExtKeyUsageClientAuth)
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return testPKI{
		ca:   write("ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})),
		cert: write("node.pem", sc), key: write("node-key.pem", sk),
		clientCert: write("client.pem", cc), clientKey: write("client-key.pem", ck),
		pool: pool,
	}
}

// httpsClient trusts the test CA and, when withCert, presents the client
// certificate.
func (p testPKI) httpsClient(t *testing.T, withCert bool) *http.Client {
	t.Helper()
	tc := &tls.Config{RootCAs: p.pool}
	if withCert {
		cert, err := tls.LoadX509KeyPair(p.clientCert, p.clientKey)
		if err != nil {
			t.Fatal(err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: tc}, Timeout: 5 * time.Second}
}

// plainNATSRefused checks that a client speaking plain text to addr gets no
// service: the server wants a TLS handshake after its INFO.
func plainNATSRefused(t *testing.T, clientURL string) {
	t.Helper()
	u, _ := url.Parse(clientURL)
	conn, err := net.DialTimeout("tcp", u.Host, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
	r := bufio.NewReader(conn)
	info, err := r.ReadString('\n')
	if err != nil || !strings.Contains(info, `"tls_required":true`) {
		t.Fatalf("INFO = %q, %v; want tls_required", info, err)
	}
	if _, err := io.WriteString(conn, "CONNECT {\"verbose\":false}\r\nPING\r\n"); err != nil {
		return // closed already: refused
	}
	line, err := r.ReadString('\n')
	if err == nil && strings.HasPrefix(line, "PONG") {
		t.Fatalf("a plain-text client got %q", line)
	}
}

func TestTLSServesNATSAndHTTP(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	n := startNode(t, func(c *node.Config) {
		c.TLSCert, c.TLSKey = pki.cert, pki.key
		c.Token = agentToken
	})
	if !strings.HasPrefix(n.ClientURL(), "tls://") || !strings.HasPrefix(n.HTTPURL(), "https://") {
		t.Fatalf("URLs %s and %s, want tls:// and https://", n.ClientURL(), n.HTTPURL())
	}

	// NATS over TLS with the CA: set and get.
	nc := connect(t, n, nats.RootCAs(pki.ca), nats.Token(agentToken))
	if !nc.TLSRequired() {
		t.Fatal("the connection does not use TLS")
	}
	wantCode(t, "set over TLS", request(t, nc, "roost.set.secure", []byte("sealed")), 200)
	if r := request(t, nc, "roost.get.secure", nil); r.code != 200 || string(r.body) != "sealed" {
		t.Fatalf("get over TLS = %d %q", r.code, r.body)
	}
	// Without the CA the server's certificate is not trusted; plain text gets nothing.
	if nc, err := nats.Connect(n.ClientURL(), nats.Token(agentToken)); err == nil {
		nc.Close()
		t.Fatal("connected without trusting the CA")
	}
	plainNATSRefused(t, n.ClientURL())

	// HTTPS with the CA; plain HTTP gets the TLS server's 400.
	resp, err := pki.httpsClient(t, false).Get(n.HTTPURL() + "/v1/health")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("HTTPS GET /v1/health = %v, %v", resp, err)
	}
	resp.Body.Close()
	if resp, err := http.Get("http://" + n.HTTPAddr() + "/v1/health"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("plain HTTP served on the TLS port")
		}
	}
	// The consul client over HTTPS.
	c, err := api.NewClient(&api.Config{Address: n.HTTPAddr(), Scheme: "https", Token: agentToken, TLSConfig: api.TLSConfig{CAFile: pki.ca}})
	if err != nil {
		t.Fatal(err)
	}
	if members, err := c.Agent().Members(false); err != nil || len(members) != 1 {
		t.Fatalf("consul members over HTTPS = %v, %v", members, err)
	}
}

func TestTLSMutual(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	n := startNode(t, func(c *node.Config) { c.TLSCert, c.TLSKey, c.TLSCA = pki.cert, pki.key, pki.ca })

	// NATS: the client certificate is required.
	if nc, err := nats.Connect(n.ClientURL(), nats.RootCAs(pki.ca)); err == nil {
		nc.Close()
		t.Fatal("connected without a client certificate")
	}
	nc := connect(t, n, nats.RootCAs(pki.ca), nats.ClientCert(pki.clientCert, pki.clientKey))
	wantCode(t, "set with mutual TLS", request(t, nc, "roost.set.m", []byte("v")), 200)

	// HTTP too.
	if resp, err := pki.httpsClient(t, false).Get(n.HTTPURL() + "/v1/health"); err == nil {
		resp.Body.Close()
		t.Fatalf("HTTPS without a client certificate = %d, want a refused handshake", resp.StatusCode)
	}
	resp, err := pki.httpsClient(t, true).Get(n.HTTPURL() + "/v1/health")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("HTTPS with a client certificate = %v, %v", resp, err)
	}
	resp.Body.Close()
}

func TestTLSCluster(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	nodes := startCluster(t, 2, func(i int, c *node.Config) {
		c.TLSCert, c.TLSKey, c.TLSCA = pki.cert, pki.key, pki.ca
	})
	opts := []nats.Option{nats.RootCAs(pki.ca), nats.ClientCert(pki.clientCert, pki.clientKey)}
	n1, n2 := connect(t, nodes[0], opts...), connect(t, nodes[1], opts...)
	for i := range 40 { // some land on n2's partitions: forwarded over the TLS route
		k := fmt.Sprintf("k%d", i)
		wantCode(t, "set through n1", request(t, n1, "roost.set."+k, []byte(k)), 200)
		if r := request(t, n2, "roost.get."+k, nil); r.code != 200 || string(r.body) != k {
			t.Fatalf("get %s through n2 = %d %q", k, r.code, r.body)
		}
	}
	if nodes[0].StoreStats().Keys == 0 || nodes[1].StoreStats().Keys == 0 {
		t.Fatal("every key on one node: the route was not exercised")
	}
}

func TestTLSConfigErrors(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	for _, tc := range []struct {
		edit func(*node.Config)
		flag string
	}{
		{func(c *node.Config) { c.TLSCert = pki.cert }, "--tls-cert"},
		{func(c *node.Config) { c.TLSKey = pki.key }, "--tls-cert"},
		{func(c *node.Config) { c.TLSCA = pki.ca }, "--tls-cert"},
		{func(c *node.Config) { c.TLSCert, c.TLSKey = pki.cert, pki.clientKey }, "--tls-cert"},
		{func(c *node.Config) { c.TLSCert, c.TLSKey, c.TLSCA = pki.cert, pki.key, pki.key }, "--tls-ca"},
		{func(c *node.Config) { c.TLSCert, c.TLSKey, c.TLSCA = pki.cert, pki.key, "/nonexistent" }, "--tls-ca"},
	} {
		cfg := node.DefaultConfig()
		cfg.Name = "bad"
		tc.edit(&cfg)
		_, err := node.New(cfg)
		if !errors.Is(err, node.ErrConfig) || !strings.Contains(err.Error(), tc.flag) {
			t.Fatalf("config %+v: %v, want ErrConfig naming %s", cfg, err, tc.flag)
		}
	}
}
