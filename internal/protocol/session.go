package protocol

import (
	"net"

	"github.com/runnel-dev/runnel/internal/auth"
)

// session is what a connection knows about its client: where it connected
// from, on which listener, and who it authenticated as. It is owned by the
// connection's request loop; handlers read it through reqCtx.
type session struct {
	// listener is the name of the listener the client connected to
	// (Metadata answers that listener's addresses).
	listener string
	// host is the client's IP address (ACL host matching).
	host string
	// principal is who the client is: Anonymous until authenticated on a
	// SASL listener, the certificate's principal on an SSL listener.
	principal auth.Principal
}

// newSession is the session of a connection from remote on a listener that
// needs no authentication.
func newSession(listener, remote string) *session {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	return &session{listener: listener, host: host, principal: auth.Anonymous}
}

// DefaultListener is the name of the listener of a server started with
// Serve: the single PLAINTEXT listener.
const DefaultListener = "PLAINTEXT"
