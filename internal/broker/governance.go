package broker

import (
	"context"
	"net"
	"net/http"

	"github.com/runnel-dev/runnel/internal/auth"
	"github.com/runnel-dev/runnel/internal/governance"
)

// Governance (DESIGN §7): the stream catalog, observed lineage, access
// requests and shares, AsyncAPI, and the portal over them. Each part is
// opened, mounted and closed by its own file (gov_*.go); this file
// orders them. The REST API lives under /api/v1, the portal at /.

// governanceServices are the broker's governance parts.
type governanceServices struct {
	catalog  govCatalog  // gov_catalog.go
	lineage  govLineage  // gov_lineage.go
	access   govAccess   // gov_access.go
	asyncapi govAsyncAPI // gov_asyncapi.go
	portal   govPortal   // gov_portal.go
}

// openGovernance opens the parts in dependency order: the catalog
// (owners) before access requests and shares, lineage before AsyncAPI
// (operations come from observed clients).
func (b *Broker) openGovernance(ctx context.Context) error {
	for _, open := range []func(context.Context) error{
		b.openCatalog, b.openLineage, b.openAccess, b.openAsyncAPI, b.openPortal,
	} {
		if err := open(ctx); err != nil {
			return err
		}
	}
	// The catalog's writes go to the audit log; the catalog answers who
	// owns a product when access requests and shares ask.
	b.gov.catalog.auditor = b.govAuditor()
	if b.gov.catalog.cat != nil {
		b.gov.access.owners.set(b.gov.catalog.cat)
	}
	return nil
}

// mountGovernance adds the API and the portal to the HTTP mux. Every
// API handler sees an authenticated caller (governance.ActorOf): with no
// guard configured, the caller is User:ANONYMOUS, allowed everything.
func (b *Broker) mountGovernance(mux *http.ServeMux, g *auth.Guard) {
	b.mountCatalog(mux, g)
	b.mountLineage(mux, g)
	b.mountAccess(mux, g)
	b.mountAsyncAPI(mux, g)
	b.mountPortal(mux, g)
}

// closeGovernance stops the parts in reverse order.
func (b *Broker) closeGovernance() []error {
	return []error{b.closePortal(), b.closeAsyncAPI(), b.closeAccess(), b.closeLineage(), b.closeCatalog()}
}

// govAuthenticated wraps an API handler: through the guard when there is
// one, otherwise as User:ANONYMOUS from the client's host.
func govAuthenticated(g *auth.Guard, h http.Handler) http.Handler {
	if g != nil {
		return g.Authenticate(h)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.RemoteAddr
		if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
			host = h
		}
		h.ServeHTTP(w, r.WithContext(auth.WithRequestPrincipal(r.Context(), auth.Anonymous, host)))
	})
}

// govAuthorizer is the authorizer API handlers check actors with: the
// HTTP listeners' (nil, allowing everything, when authorization is off).
func (b *Broker) govAuthorizer() governance.Authorizer {
	if b.authz != nil {
		return b.authz
	}
	if b.sec.authz != nil {
		return b.sec.authz
	}
	return nil
}
