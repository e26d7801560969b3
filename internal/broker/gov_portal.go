package broker

import (
	"context"
	"fmt"
	"net/http"

	"github.com/runnel-dev/runnel/internal/auth"
	"github.com/runnel-dev/runnel/internal/governance"
	"github.com/runnel-dev/runnel/internal/portal"
)

// The web portal (internal/portal) at / on the HTTP listener, and its
// login: session cookies signed with a key every broker shares (created
// once in etcd), accepted by the HTTP listener's guard beside Basic and
// Bearer credentials. With governance.portal.enabled false there is
// neither portal nor login; the API stays.

// sessionKeyPath is the etcd key of the session signing key.
const sessionKeyPath = governance.Prefix + "portal/session-key"

// govPortal is the broker's portal part of governance (governance.go).
type govPortal struct {
	sessions *auth.Sessions // nil when the portal is off
	portal   *portal.Portal
}

func (b *Broker) openPortal(ctx context.Context) error {
	pc := b.cfg.Governance.Portal
	if !pc.PortalOn() {
		return nil
	}
	key, err := auth.LoadSessionKey(ctx, b.cli, sessionKeyPath)
	if err != nil {
		return fmt.Errorf("broker: portal: %w", err)
	}
	so := auth.SessionOptions{TTL: pc.SessionTTLOrDefault()}
	o := portal.Options{
		LoginRequired: b.cfg.Authorization.Enabled, Authorizer: b.govAuthorizer(),
		FailureDelay: b.cfg.SASL.FailureDelay, Logger: b.log.With("component", "portal"),
	}
	// The guard's authenticator (httpGuard): a login checks the same
	// passwords Basic credentials are checked against. Sessions of the
	// SCRAM users end on every broker when a password changes or a user
	// is deleted.
	switch {
	case b.authn != nil:
		o.Passwords = b.authn
	case b.sec.sasl != nil:
		o.Passwords = b.sec.sasl
		so.Binding = auth.CredentialBinding(b.sec.creds)
	}
	sessions, err := auth.NewSessions(key, so)
	if err != nil {
		return fmt.Errorf("broker: portal: %w", err)
	}
	o.Sessions = sessions
	p, err := portal.New(o)
	if err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	b.gov.portal = govPortal{sessions: sessions, portal: p}
	return nil
}

// mountPortal serves the portal at / and the session API, and makes the
// guard accept the session cookie. A broker whose portal was not opened
// (off, or a test broker with only its HTTP listeners) mounts nothing.
func (b *Broker) mountPortal(mux *http.ServeMux, g *auth.Guard) {
	gp := b.gov.portal
	if gp.portal == nil {
		return
	}
	if g != nil {
		g.AcceptSessions(gp.sessions)
	}
	gp.portal.Mount(mux, g != nil, func(h http.Handler) http.Handler { return govAuthenticated(g, h) })
}

func (b *Broker) closePortal() error { return nil }
