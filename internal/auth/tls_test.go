package auth

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/auth/authtest"
	"github.com/runnel-dev/runnel/internal/config"
)

// handshake runs one TLS handshake between a client configured by cc and
// the server's listener config, returning the server side's state.
func handshake(t *testing.T, srv *tls.Config, cc *tls.Config) (tls.ConnectionState, *x509.Certificate, error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var state tls.ConnectionState
	var serr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		a, err := ln.Accept()
		if err != nil {
			serr = err
			return
		}
		defer a.Close()
		sc := tls.Server(a, srv)
		serr = sc.Handshake()
		state = sc.ConnectionState()
	}()
	b, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	b.SetDeadline(time.Now().Add(10 * time.Second))
	c := tls.Client(b, cc)
	cerr := c.Handshake()
	var leaf *x509.Certificate
	if cerr == nil {
		leaf = c.ConnectionState().PeerCertificates[0]
	}
	wg.Wait()
	return state, leaf, errors.Join(serr, cerr)
}

func TestServerTLSClientCertificates(t *testing.T) {
	dir := t.TempDir()
	ca := authtest.NewCA(t, dir, "ca")
	other := authtest.NewCA(t, dir, "other")
	server := ca.Server(t, dir, "server")
	alice := ca.Client(t, dir, "alice", pkix.Name{CommonName: "alice", OrganizationalUnit: []string{"eng"}, Organization: []string{"example"}})
	mallory := other.Client(t, dir, "mallory", pkix.Name{CommonName: "mallory"})
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	client := func(p *authtest.Pair) *tls.Config {
		c := &tls.Config{RootCAs: roots, ServerName: "localhost"}
		if p != nil {
			kp, err := tls.LoadX509KeyPair(p.CertFile, p.KeyFile)
			if err != nil {
				t.Fatal(err)
			}
			// Always present it: Go's default picks a certificate only if
			// it chains to a CA the server names, and the test needs the
			// server to see untrusted ones too.
			c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &kp, nil }
		}
		return c
	}
	for _, tc := range []struct {
		name, clientAuth, rules string
		cert                    *authtest.Pair
		wantErr                 bool
		want                    string // principal; "" = anonymous
		wantMapErr              bool
	}{
		{name: "required with a trusted certificate", clientAuth: "required", cert: &alice, want: "User:CN=alice,OU=eng,O=example"},
		{name: "required without a certificate", clientAuth: "required", wantErr: true},
		{name: "required with an untrusted certificate", clientAuth: "required", cert: &mallory, wantErr: true},
		{name: "requested without a certificate", clientAuth: "requested"},
		{name: "requested with a trusted certificate", clientAuth: "requested", cert: &alice, want: "User:CN=alice,OU=eng,O=example"},
		{name: "requested with an untrusted certificate", clientAuth: "requested", cert: &mallory, wantErr: true},
		{name: "mapping rule", clientAuth: "required", cert: &alice, rules: `RULE:^CN=(.*?),OU=(.*?),.*$/$1@$2/U`, want: "User:ALICE@ENG"},
		{name: "no rule matches", clientAuth: "required", cert: &alice, rules: `RULE:^CN=bob,.*$/bob/`, wantMapErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewServerTLS(config.TLSConfig{CertFile: server.CertFile, KeyFile: server.KeyFile,
				ClientCAFile: ca.CertFile, ClientAuth: tc.clientAuth, PrincipalMappingRules: tc.rules}, nil)
			if err != nil {
				t.Fatal(err)
			}
			state, _, err := handshake(t, s.Config(), client(tc.cert))
			if tc.wantErr {
				if err == nil {
					t.Fatal("handshake succeeded")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			p, ok, err := s.Principal(state)
			if tc.wantMapErr {
				if !errors.Is(err, ErrNoPrincipalRule) {
					t.Fatalf("Principal = %v, %v, %v; want ErrNoPrincipalRule", p, ok, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if ok {
				got = p.String()
			}
			if got != tc.want {
				t.Fatalf("principal %q, want %q", got, tc.want)
			}
		})
	}
}

func TestServerTLSReloadsRotatedCertificate(t *testing.T) {
	dir := t.TempDir()
	ca := authtest.NewCA(t, dir, "ca")
	first := ca.Server(t, dir, "server")
	s, err := NewServerTLS(config.TLSConfig{CertFile: first.CertFile, KeyFile: first.KeyFile}, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	s.now = func() time.Time { return now }
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	cc := &tls.Config{RootCAs: roots, ServerName: "localhost"}
	srv := s.Config()
	_, leaf, err := handshake(t, srv, cc)
	if err != nil || !leaf.Equal(first.Cert) {
		t.Fatalf("first handshake: %v (leaf serial %v, want %v)", err, leaf, first.Cert.SerialNumber)
	}
	second := ca.Server(t, dir, "server") // same files, new certificate and key
	_, leaf, err = handshake(t, srv, cc)
	if err != nil || !leaf.Equal(first.Cert) {
		t.Fatalf("within the check interval the old certificate is served: %v", err)
	}
	now = now.Add(reloadCheckInterval)
	_, leaf, err = handshake(t, srv, cc)
	if err != nil {
		t.Fatal(err)
	}
	if !leaf.Equal(second.Cert) {
		t.Fatalf("after rotation the server presents serial %v, want the new %v", leaf.SerialNumber, second.Cert.SerialNumber)
	}
	// A broken rotation (garbage key) keeps the working pair.
	writeFile(t, second.KeyFile, []byte("not a key"))
	now = now.Add(reloadCheckInterval)
	_, leaf, err = handshake(t, srv, cc)
	if err != nil || !leaf.Equal(second.Cert) {
		t.Fatalf("a broken rotation must keep the previous certificate: %v", err)
	}
}

func TestNewServerTLSErrors(t *testing.T) {
	dir := t.TempDir()
	ca := authtest.NewCA(t, dir, "ca")
	p := ca.Server(t, dir, "server")
	for _, tc := range []struct {
		name string
		cfg  config.TLSConfig
	}{
		{"missing cert", config.TLSConfig{CertFile: dir + "/nope.pem", KeyFile: p.KeyFile}},
		{"key of another cert", config.TLSConfig{CertFile: p.CertFile, KeyFile: ca.Server(t, dir, "other").KeyFile}},
		{"CA file without PEM", config.TLSConfig{CertFile: p.CertFile, KeyFile: p.KeyFile, ClientCAFile: p.KeyFile, ClientAuth: "required"}},
		{"bad mapping rule", config.TLSConfig{CertFile: p.CertFile, KeyFile: p.KeyFile, PrincipalMappingRules: "RULE:(/x"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewServerTLS(tc.cfg, nil); !errors.Is(err, ErrTLSConfig) {
				t.Fatalf("err = %v, want ErrTLSConfig", err)
			}
		})
	}
}
