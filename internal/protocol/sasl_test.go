package protocol

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/runnel-dev/runnel/internal/auth"
	"github.com/runnel-dev/runnel/internal/auth/authtest"
	"github.com/runnel-dev/runnel/internal/config"
)

// fakeSASL serves PLAIN against a fixed user table; a user's credential
// expires at expiry[user] when set.
type fakeSASL struct {
	users  map[string]string
	mu     sync.Mutex
	expiry map[string]time.Time
}

func (f *fakeSASL) Mechanisms() []string { return []string{"PLAIN"} }

func (f *fakeSASL) Start(m string) (SASLExchange, error) {
	if m != "PLAIN" {
		return nil, fmt.Errorf("mechanism %q not enabled", m)
	}
	return &fakePlain{f: f}, nil
}

type fakePlain struct {
	f      *fakeSASL
	user   string
	expiry time.Time
}

func (e *fakePlain) Next(_ context.Context, msg []byte) ([]byte, bool, error) {
	parts := bytes.Split(msg, []byte{0})
	if len(parts) != 3 {
		return nil, false, errors.New("malformed PLAIN message")
	}
	user, pass := string(parts[1]), string(parts[2])
	if want, ok := e.f.users[user]; !ok || want != pass {
		return nil, false, errors.New("invalid credentials")
	}
	e.user = user
	e.f.mu.Lock()
	e.expiry = e.f.expiry[user]
	e.f.mu.Unlock()
	return []byte{}, true, nil
}

func (e *fakePlain) Principal() auth.Principal { return auth.User(e.user) }
func (e *fakePlain) Expiry() time.Time         { return e.expiry }

func saslOpts(f *fakeSASL, delay time.Duration) func(*Options) {
	return func(o *Options) {
		o.SASL = f
		o.SASLFailureDelay = delay
	}
}

func handshakeReq(v int16, mech string) *kmsg.SASLHandshakeRequest {
	r := kmsg.NewPtrSASLHandshakeRequest()
	r.SetVersion(v)
	r.Mechanism = mech
	return r
}

func authReq(token []byte) *kmsg.SASLAuthenticateRequest {
	r := kmsg.NewPtrSASLAuthenticateRequest()
	r.SetVersion(1) // not flexible: rawConn.recv reads no header tags
	r.SASLAuthBytes = token
	return r
}

func plainToken(user, pass string) []byte { return []byte("\x00" + user + "\x00" + pass) }

func recvInto(t *testing.T, r *rawConn, resp kmsg.Response, version int16) {
	t.Helper()
	_, body, err := r.recv()
	if err != nil {
		t.Fatalf("recv %T: %v", resp, err)
	}
	resp.SetVersion(version)
	if err := resp.ReadFrom(body); err != nil {
		t.Fatalf("decode %T: %v", resp, err)
	}
}

func TestSASLOnlyAuthenticationBeforeAuthenticated(t *testing.T) {
	f := &fakeSASL{users: map[string]string{"alice": "secret"}}
	tb := startServerOn(t, saslOpts(f, 0), Listener{Name: "SASL", SASL: true})

	// ApiVersions is answered before authentication...
	r := dialRaw(t, tb.addr)
	av := kmsg.NewPtrApiVersionsRequest()
	av.SetVersion(2)
	r.sendReq(av, 1)
	var avr kmsg.ApiVersionsResponse
	recvInto(t, r, &avr, 2)
	var advertised []int16
	for _, k := range avr.ApiKeys {
		advertised = append(advertised, k.ApiKey)
	}
	for _, want := range []int16{17, 36} {
		if !bytes.Contains(fmt.Append(nil, advertised), fmt.Append(nil, want)) {
			t.Errorf("ApiVersions does not advertise key %d: %v", want, advertised)
		}
	}
	// ...but anything else closes the connection.
	r.sendReq(metadataReq(1), 2)
	r.expectClosed()

	// An unknown mechanism lists the enabled ones.
	r = dialRaw(t, tb.addr)
	r.sendReq(handshakeReq(1, "SCRAM-SHA-512"), 1)
	var hr kmsg.SASLHandshakeResponse
	recvInto(t, r, &hr, 1)
	if hr.ErrorCode != kerr.UnsupportedSaslMechanism.Code || len(hr.SupportedMechanisms) != 1 || hr.SupportedMechanisms[0] != "PLAIN" {
		t.Fatalf("handshake for a disabled mechanism: %+v", hr)
	}
	// SaslAuthenticate before a handshake is illegal and closes.
	r.sendReq(authReq(plainToken("alice", "secret")), 2)
	var ar kmsg.SASLAuthenticateResponse
	recvInto(t, r, &ar, 1)
	if ar.ErrorCode != kerr.IllegalSaslState.Code {
		t.Fatalf("authenticate before handshake: code %d", ar.ErrorCode)
	}
	r.expectClosed()

	// The v1 flow authenticates, then other requests are served.
	r = dialRaw(t, tb.addr)
	r.sendReq(handshakeReq(1, "PLAIN"), 1)
	recvInto(t, r, &hr, 1)
	if hr.ErrorCode != 0 {
		t.Fatalf("handshake: code %d", hr.ErrorCode)
	}
	r.sendReq(authReq(plainToken("alice", "secret")), 2)
	recvInto(t, r, &ar, 1)
	if ar.ErrorCode != 0 || ar.SessionLifetimeMillis != 0 {
		t.Fatalf("authenticate: %+v", ar)
	}
	r.sendReq(metadataReq(1), 3)
	var mr kmsg.MetadataResponse
	recvInto(t, r, &mr, 1)
	if len(mr.Brokers) != 1 {
		t.Fatalf("metadata after authentication: %+v", mr)
	}
}

func TestSASLFailureIsDelayedAndCloses(t *testing.T) {
	const delay = 300 * time.Millisecond
	f := &fakeSASL{users: map[string]string{"alice": "secret"}}
	tb := startServerOn(t, saslOpts(f, delay), Listener{Name: "SASL", SASL: true})
	r := dialRaw(t, tb.addr)
	r.sendReq(handshakeReq(1, "PLAIN"), 1)
	var hr kmsg.SASLHandshakeResponse
	recvInto(t, r, &hr, 1)
	start := time.Now()
	r.sendReq(authReq(plainToken("alice", "wrong")), 2)
	var ar kmsg.SASLAuthenticateResponse
	recvInto(t, r, &ar, 1)
	if ar.ErrorCode != kerr.SaslAuthenticationFailed.Code || ar.ErrorMessage == nil {
		t.Fatalf("wrong password: %+v", ar)
	}
	if took := time.Since(start); took < delay {
		t.Fatalf("failure answered after %s, want >= %s", took, delay)
	}
	r.expectClosed()

	// The broker keeps serving others.
	cl := newClient(t, tb.addr, kgo.SASL(plain.Auth{User: "alice", Pass: "secret"}.AsMechanism()))
	if err := cl.Ping(testCtx(t)); err != nil {
		t.Fatal(err)
	}
}

func TestSASLHandshakeV0RawTokens(t *testing.T) {
	f := &fakeSASL{users: map[string]string{"alice": "secret"}}
	tb := startServerOn(t, saslOpts(f, 0), Listener{Name: "SASL", SASL: true})
	rawToken := func(r *rawConn, tok []byte) {
		r.send(append(binary.BigEndian.AppendUint32(nil, uint32(len(tok))), tok...))
	}
	r := dialRaw(t, tb.addr)
	r.sendReq(handshakeReq(0, "PLAIN"), 1)
	var hr kmsg.SASLHandshakeResponse
	recvInto(t, r, &hr, 0)
	if hr.ErrorCode != 0 {
		t.Fatalf("handshake v0: %d", hr.ErrorCode)
	}
	rawToken(r, plainToken("alice", "secret"))
	var sz [4]byte
	if _, err := io.ReadFull(r, sz[:]); err != nil || binary.BigEndian.Uint32(sz[:]) != 0 {
		t.Fatalf("raw reply: %v %v", sz, err)
	}
	r.sendReq(metadataReq(1), 2)
	var mr kmsg.MetadataResponse
	recvInto(t, r, &mr, 1)

	// A bad raw token closes the connection: v0 has no error response.
	r = dialRaw(t, tb.addr)
	r.sendReq(handshakeReq(0, "PLAIN"), 1)
	recvInto(t, r, &hr, 0)
	rawToken(r, plainToken("alice", "nope"))
	r.expectClosed()
}

func TestSASLOnPlaintextListenerIsIllegal(t *testing.T) {
	f := &fakeSASL{users: map[string]string{"alice": "secret"}}
	tb := startServer(t, saslOpts(f, 0))
	r := dialRaw(t, tb.addr)
	r.sendReq(handshakeReq(1, "PLAIN"), 1)
	var hr kmsg.SASLHandshakeResponse
	recvInto(t, r, &hr, 1)
	if hr.ErrorCode != kerr.IllegalSaslState.Code {
		t.Fatalf("handshake on a PLAINTEXT listener: code %d", hr.ErrorCode)
	}
}

// TestSASLSessionExpiry: a session ends when its credential expires (or at
// MaxReauth); afterwards a request other than the SASL ones closes the
// connection, while re-authenticating on the same connection extends it.
func TestSASLSessionExpiry(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	f := &fakeSASL{users: map[string]string{"alice": "secret", "bob": "pw"}, expiry: map[string]time.Time{"alice": now.Add(time.Minute)}}
	tb := startServerOn(t, func(o *Options) {
		o.SASL, o.Now, o.MaxReauth = f, clock, time.Hour
	}, Listener{Name: "SASL", SASL: true})

	authenticate := func(r *rawConn, user, pass string, corr int32) kmsg.SASLAuthenticateResponse {
		t.Helper()
		r.sendReq(handshakeReq(1, "PLAIN"), corr)
		var hr kmsg.SASLHandshakeResponse
		recvInto(t, r, &hr, 1)
		if hr.ErrorCode != 0 {
			t.Fatalf("handshake: %d", hr.ErrorCode)
		}
		r.sendReq(authReq(plainToken(user, pass)), corr+1)
		var ar kmsg.SASLAuthenticateResponse
		recvInto(t, r, &ar, 1)
		return ar
	}
	r := dialRaw(t, tb.addr)
	ar := authenticate(r, "alice", "secret", 1)
	if ar.ErrorCode != 0 || ar.SessionLifetimeMillis <= 0 || ar.SessionLifetimeMillis > time.Minute.Milliseconds() {
		t.Fatalf("session lifetime %d ms, want (0, 60000]", ar.SessionLifetimeMillis)
	}
	// Re-authenticating extends the session.
	f.mu.Lock()
	f.expiry["alice"] = now.Add(3 * time.Minute)
	f.mu.Unlock()
	advance(50 * time.Second)
	if ar := authenticate(r, "alice", "secret", 3); ar.ErrorCode != 0 {
		t.Fatalf("re-authentication: %+v", ar)
	}
	advance(time.Minute) // past the first token's expiry, within the second's
	r.sendReq(metadataReq(1), 5)
	var mr kmsg.MetadataResponse
	recvInto(t, r, &mr, 1)
	// Past the session's end, a request closes the connection.
	advance(3 * time.Minute)
	r.sendReq(metadataReq(1), 6)
	r.expectClosed()

	// MaxReauth bounds a credential that never expires.
	r = dialRaw(t, tb.addr)
	if ar := authenticate(r, "bob", "pw", 1); ar.SessionLifetimeMillis <= 0 || ar.SessionLifetimeMillis > time.Hour.Milliseconds() {
		t.Fatalf("bob's session lifetime %d ms, want (0, 1h]", ar.SessionLifetimeMillis)
	}
	// Re-authenticating as someone else fails and closes.
	if ar := authenticate(r, "alice", "secret", 3); ar.ErrorCode != kerr.SaslAuthenticationFailed.Code {
		t.Fatalf("re-authentication as another user: code %d", ar.ErrorCode)
	}
	r.expectClosed()
}

// TestSASLFranzGoReauthenticates: a real client keeps working across
// KIP-368 re-authentications (sessions of one second).
func TestSASLFranzGoReauthenticates(t *testing.T) {
	f := &fakeSASL{users: map[string]string{"alice": "secret"}}
	reg := map[string]int{}
	var mu sync.Mutex
	tb := startServerOn(t, func(o *Options) {
		o.SASL, o.MaxReauth = countingSASL{f, &mu, reg}, time.Second
	}, Listener{Name: "SASL", SASL: true})
	cl := newClient(t, tb.addr, kgo.SASL(plain.Auth{User: "alice", Pass: "secret"}.AsMechanism()))
	ctx := testCtx(t)
	deadline := time.Now().Add(3500 * time.Millisecond)
	for time.Now().Before(deadline) {
		if err := cl.Ping(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if reg["PLAIN"] < 3 {
		t.Fatalf("%d authentications in 3.5 s with 1 s sessions, want >= 3", reg["PLAIN"])
	}
}

type countingSASL struct {
	*fakeSASL
	mu *sync.Mutex
	n  map[string]int
}

func (c countingSASL) Start(m string) (SASLExchange, error) {
	c.mu.Lock()
	c.n[m]++
	c.mu.Unlock()
	return c.fakeSASL.Start(m)
}

// TestTLSListener: an SSL listener with mutual TLS takes the principal
// from the client certificate; plaintext and untrusted certificates fail
// their own connection only.
func TestTLSListener(t *testing.T) {
	dir := t.TempDir()
	ca := authtest.NewCA(t, dir, "ca")
	srvPair := ca.Server(t, dir, "server")
	alice := ca.Client(t, dir, "alice", pkix.Name{CommonName: "alice"})
	stls, err := auth.NewServerTLS(config.TLSConfig{CertFile: srvPair.CertFile, KeyFile: srvPair.KeyFile,
		ClientCAFile: ca.CertFile, ClientAuth: "required"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var seen sync.Map
	tb := startServerOn(t, func(o *Options) {
		o.Groups = nil
	}, Listener{Name: "SSL", TLS: stls.Config(), TLSPrincipal: func(cs tls.ConnectionState) (auth.Principal, bool, error) {
		p, ok, err := stls.Principal(cs)
		seen.Store(p.String(), true)
		return p, ok, err
	}})
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	kp, err := tls.LoadX509KeyPair(alice.CertFile, alice.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	cl := newClient(t, tb.addr, kgo.DialTLSConfig(&tls.Config{RootCAs: roots, Certificates: []tls.Certificate{kp}}))
	if err := cl.Ping(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if _, ok := seen.Load("User:CN=alice"); !ok {
		t.Fatal("principal User:CN=alice was not derived")
	}
	// Plaintext to the TLS port: that connection fails, nothing else.
	r := dialRaw(t, tb.addr)
	r.sendReq(metadataReq(1), 1)
	r.expectClosed()
	// A client without a certificate fails the handshake.
	bad := newClient(t, tb.addr, kgo.DialTLSConfig(&tls.Config{RootCAs: roots}), kgo.RetryTimeout(time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := bad.Ping(ctx); err == nil {
		t.Fatal("a client without a certificate was served")
	}
	if err := cl.Ping(testCtx(t)); err != nil {
		t.Fatalf("the good client after the bad ones: %v", err)
	}
}

// TestMetadataAnswersTheClientsListener: brokers are reported at their
// address on the listener the client connected to, and a broker without
// that listener is left out.
func TestMetadataAnswersTheClientsListener(t *testing.T) {
	for _, tc := range []struct {
		name      string
		endpoints func(self Broker) []Endpoint
		want      []string
	}{
		{"the client's listener", func(self Broker) []Endpoint {
			return []Endpoint{{Listener: "EXTERNAL", Host: "broker1.example.com", Port: 9093}, {Listener: "INTERNAL", Host: "10.0.0.1", Port: 9092}}
		}, []string{"10.0.0.1:9092"}},
		{"no endpoints registered", func(Broker) []Endpoint { return nil }, []string{"self"}},
		{"listener missing", func(Broker) []Endpoint {
			return []Endpoint{{Listener: "EXTERNAL", Host: "broker1.example.com", Port: 9093}}
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var self Broker
			tb := startServerOn(t, func(o *Options) {
				fc := o.Cluster.(*fakeCluster)
				fc.self.Endpoints = tc.endpoints(fc.self)
				self = fc.self
			}, Listener{Name: "INTERNAL"})
			r := dialRaw(t, tb.addr)
			r.sendReq(metadataReq(1), 1)
			var mr kmsg.MetadataResponse
			recvInto(t, r, &mr, 1)
			var got []string
			for _, b := range mr.Brokers {
				addr := fmt.Sprintf("%s:%d", b.Host, b.Port)
				if b.Host == self.Host && b.Port == self.Port {
					addr = "self"
				}
				got = append(got, addr)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("brokers %v, want %v", got, tc.want)
			}
		})
	}
}
