package harness

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"testing"

	"github.com/runnel-dev/runnel/internal/auth/authtest"
)

// CA is a throw-away certificate authority for an end-to-end test: it
// issues the broker's server certificate and clients' certificates, all as
// PEM files in one directory (authtest makes them).
type CA struct {
	*authtest.CA
	dir string
}

// Issued is a certificate with its key, as PEM files.
type Issued = authtest.Pair

// GenerateCA makes a CA (named name) whose files go under dir (a
// t.TempDir(), say). CertFile is what clients trust and what
// tls.client-ca-file names.
func GenerateCA(t testing.TB, dir, name string) *CA {
	t.Helper()
	return &CA{CA: authtest.NewCA(t, dir, name), dir: dir}
}

// IssueServerCert issues a server certificate for 127.0.0.1, ::1 and
// localhost, written as <name>.pem and <name>-key.pem.
func (ca *CA) IssueServerCert(t testing.TB, name string) Issued {
	t.Helper()
	return ca.Server(t, ca.dir, name)
}

// IssueClientCert issues a client certificate whose subject is CN=cn,
// written as <cn>.pem and <cn>-key.pem.
func (ca *CA) IssueClientCert(t testing.TB, cn string) Issued {
	t.Helper()
	return ca.Client(t, ca.dir, cn, pkix.Name{CommonName: cn})
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
