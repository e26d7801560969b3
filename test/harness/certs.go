package harness

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
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// CA is a throw-away certificate authority for one test: it issues the
// broker's server certificate and clients' certificates, all as PEM files
// in the test's directory.
type CA struct {
	Cert *x509.Certificate
	// CertFile is the CA certificate (PEM): what clients trust and what
	// tls.client-ca-file names.
	CertFile string
	key      *ecdsa.PrivateKey
	dir      string
}

// Issued is a certificate with its key, as PEM files.
type Issued struct {
	Cert     *x509.Certificate
	CertFile string
	KeyFile  string
}

var certSerial atomic.Int64

// GenerateCA makes a CA (named name) whose files go under dir (a
// t.TempDir(), say).
func GenerateCA(t testing.TB, dir, name string) *CA {
	t.Helper()
	key := newCertKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(certSerial.Add(1)),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"Runnel tests"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca := &CA{Cert: cert, CertFile: filepath.Join(dir, name+"-ca.pem"), key: key, dir: dir}
	writeCertPEM(t, ca.CertFile, "CERTIFICATE", der)
	return ca
}

// IssueServerCert issues a server certificate for 127.0.0.1, ::1 and
// localhost, written as <name>.pem and <name>-key.pem.
func (ca *CA) IssueServerCert(t testing.TB, name string) Issued {
	t.Helper()
	return ca.issue(t, name, pkix.Name{CommonName: "localhost"}, x509.ExtKeyUsageServerAuth,
		[]string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback})
}

// IssueClientCert issues a client certificate whose subject is CN=cn,
// written as <cn>.pem and <cn>-key.pem.
func (ca *CA) IssueClientCert(t testing.TB, cn string) Issued {
	t.Helper()
	return ca.issue(t, cn, pkix.Name{CommonName: cn}, x509.ExtKeyUsageClientAuth, nil, nil)
}

// Pool is a pool holding the CA certificate.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// ClientTLS is a client configuration trusting the CA, presenting client
// when it is not nil.
func (ca *CA) ClientTLS(t testing.TB, client *Issued) *tls.Config {
	t.Helper()
	c := &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12}
	if client != nil {
		pair, err := tls.LoadX509KeyPair(client.CertFile, client.KeyFile)
		if err != nil {
			t.Fatal(err)
		}
		c.Certificates = []tls.Certificate{pair}
	}
	return c
}

func (ca *CA) issue(t testing.TB, name string, subject pkix.Name, usage x509.ExtKeyUsage, dns []string, ips []net.IP) Issued {
	t.Helper()
	key := newCertKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(certSerial.Add(1)),
		Subject:      subject,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		DNSNames:     dns,
		IPAddresses:  ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	out := Issued{Cert: cert, CertFile: filepath.Join(ca.dir, name+".pem"), KeyFile: filepath.Join(ca.dir, name+"-key.pem")}
	writeCertPEM(t, out.CertFile, "CERTIFICATE", der)
	writeCertPEM(t, out.KeyFile, "PRIVATE KEY", keyDER)
	return out
}

func newCertKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func writeCertPEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(fmt.Errorf("harness: writing %s: %w", path, err))
	}
}
