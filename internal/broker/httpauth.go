package broker

import (
	"crypto/tls"
	"net"
	"net/http"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/auth"
)

// The HTTP listeners' security: HTTPS with the broker's certificate when
// tls is configured, and the auth.Guard in front of every handler but the
// probes when authentication or authorization is.

// listenHTTP binds an HTTP listener on addr, serving TLS with the Kafka
// listeners' reloading certificate when one is configured.
func (b *Broker) listenHTTP(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if !b.cfg.TLS.Enabled() {
		return ln, nil
	}
	if b.tls == nil {
		if err := b.openTLS(); err != nil {
			ln.Close()
			return nil, err
		}
	}
	return tls.NewListener(ln, b.tls.Config()), nil
}

// httpGuard is the guard of the HTTP APIs, nil when neither
// authentication (SASL mechanisms) nor authorization is configured: every
// request then passes, anonymous. The authenticator and authorizer are
// the Kafka listeners' (b.sec) unless b.authn or b.authz replace them.
func (b *Broker) httpGuard() *auth.Guard {
	authn, authz := b.authn, b.authz
	if authn == nil && b.sec.sasl != nil {
		authn = b.sec.sasl
	}
	if authz == nil && b.sec.authz != nil {
		authz = b.sec.authz
	}
	if authn == nil && authz == nil {
		return nil
	}
	o := auth.GuardOptions{Authenticator: authn, Authorizer: authz, Required: b.cfg.Authorization.Enabled,
		FailureDelay: b.cfg.SASL.FailureDelay, Logger: b.log.With("component", "http")}
	if b.tls != nil {
		o.Certificates = b.tls
	}
	return auth.NewGuard(o)
}

// clusterOnly guards an operator endpoint (/metrics, /debug/pprof): the
// caller must be authenticated and allowed DESCRIBE on the cluster.
func clusterOnly(g *auth.Guard, h http.Handler) http.Handler {
	if g == nil {
		return h
	}
	return g.Authenticate(g.RequireCluster(kmsg.ACLOperationDescribe, h))
}
