package protocol

import (
	"crypto/tls"
	"net"
	"time"

	"github.com/runnel-dev/runnel/internal/auth"
)

// DefaultListener is the name of the listener of a server started with
// Serve: the single PLAINTEXT listener.
const DefaultListener = "PLAINTEXT"

// Listener describes how the clients of one listener are authenticated.
type Listener struct {
	// Name is the listener's name; Metadata answers the brokers' addresses
	// on the listener of that name.
	Name string
	// TLS, when set, makes the listener speak TLS (SSL and SASL_SSL).
	TLS *tls.Config
	// TLSPrincipal maps a TLS handshake's client certificate to a
	// principal; ok false means the client sent none (anonymous), and an
	// error fails the connection. Nil: clients are anonymous.
	TLSPrincipal func(tls.ConnectionState) (p auth.Principal, ok bool, err error)
	// SASL requires SASL authentication before any request other than
	// ApiVersions, SaslHandshake and SaslAuthenticate (SASL_PLAINTEXT and
	// SASL_SSL).
	SASL bool
}

// tlsHandshakeTimeout bounds a TLS handshake on a new connection.
const tlsHandshakeTimeout = 10 * time.Second

// session is what a connection knows about its client: where it connected
// from, on which listener, and who it authenticated as. It is owned by the
// connection's request loop; handlers read and (the SASL handlers) change
// it through reqCtx, one request at a time.
type session struct {
	listener Listener
	// host is the client's IP address (ACL host matching).
	host string
	// port, softwareName and softwareVersion describe the client to
	// KIP-714 subscriptions (the latter two from ApiVersions v3+).
	port, softwareName, softwareVersion string
	// principal is who the client is: Anonymous until authenticated on a
	// SASL listener, the certificate's principal on an SSL listener.
	principal auth.Principal

	// SASL state (sasl.go).
	authenticated bool         // a SASL exchange completed (and the session has not been replaced)
	mechanism     string       // from the last SaslHandshake
	exchange      SASLExchange // in progress, nil between exchanges
	rawTokens     bool         // SaslHandshake v0: the next frames are bare SASL tokens
	expiry        time.Time    // the authenticated session ends (KIP-368); zero: never

	// shareSessions are the share sessions this connection opened
	// (sharesession.go); guarded by the share session cache's lock.
	shareSessions map[shareSessKey]struct{}

	// software is what the client announced in ApiVersions v3+, as
	// counted in the metrics (metrics.go).
	software softwareKey

	// lineage observes the connection (lineage.go); nil: not observed.
	lineage *connLineage
}

// newSession is the session of a new connection from remote on l.
func newSession(l Listener, remote string) *session {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	return &session{listener: l, host: host, port: sourcePort(remote), principal: auth.Anonymous}
}

// mayServe reports whether a request of api key may be answered now: on a
// SASL listener only ApiVersions, SaslHandshake and SaslAuthenticate are
// until the client has authenticated, and again once its session expired
// (the client must re-authenticate, KIP-368).
func (s *session) mayServe(key int16, now time.Time) bool {
	switch key {
	case apiKeyApiVersions, apiKeySaslHandshake, apiKeySaslAuthenticate:
		return true
	}
	if !s.listener.SASL {
		return true
	}
	return s.authenticated && (s.expiry.IsZero() || now.Before(s.expiry))
}

const (
	apiKeySaslHandshake    = 17
	apiKeyApiVersions      = 18
	apiKeySaslAuthenticate = 36
)

// brokers returns the live brokers as the client of rc sees them: each at
// its address on the client's listener; brokers without that listener are
// left out, as Kafka does.
func (s *Server) brokers(rc *reqCtx) []Broker {
	all := s.opts.Cluster.Brokers()
	out := all[:0:0]
	for _, b := range all {
		if b, ok := b.On(rc.sess.listener.Name); ok {
			out = append(out, b)
		}
	}
	return out
}
