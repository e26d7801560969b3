package auth

// Authentication and authorization of Runnel's HTTP APIs (the schema
// registry on registry-addr; /metrics, /debug/pprof and the REST APIs on
// http-addr).
//
// A request is authenticated from, in order: a verified TLS client
// certificate (mapped to a principal like an SSL listener's), then its
// Authorization header: "Basic" (checked against the SASL users' SCRAM
// credentials, so PLAIN and SCRAM users alike log in) or "Bearer" (a JWT
// validated like an OAUTHBEARER token, refused once expired), and without
// one the portal's session cookie (session.go). A header
// that does not authenticate is refused with 401 even when a certificate
// did: a client that sends credentials means them. A request with no
// credentials at all is refused with 401 when authentication is required
// (authorization enabled), and otherwise passes as User:ANONYMOUS, which
// the authorizer allows everything while authorization is off.
//
// The principal and the client's host go into the request's context
// (RequestPrincipal), where handlers and Guard.Authorized read them.
// Refusals carry Confluent's JSON error body, {"error_code":40101,...} for
// 401 and {"error_code":40301,...} for 403, so schema registry clients
// report them as they report Confluent's.

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// HTTPAuthenticator checks the credentials of an HTTP request's
// Authorization header. CheckPassword verifies a user's password against
// the SASL credential store; CheckToken validates a JWT and returns its
// principal and expiry. Both return an error for credentials that do not
// authenticate.
type HTTPAuthenticator interface {
	CheckPassword(ctx context.Context, user, password string) (Principal, error)
	CheckToken(ctx context.Context, token string) (Principal, time.Time, error)
}

// HTTPAuthorizer decides with Kafka's ACL semantics whether principal p,
// connecting from host, may perform op on the resource (typ, name). It
// allows everything while authorization is off.
type HTTPAuthorizer interface {
	Authorize(p Principal, host string, op kmsg.ACLOperation, typ kmsg.ACLResourceType, name string) bool
}

// HTTPCertificates maps the verified client certificate of a TLS
// connection to a principal; ok is false when the connection has none,
// and err is set when the certificate maps to no principal.
type HTTPCertificates interface {
	Principal(state tls.ConnectionState) (p Principal, ok bool, err error)
}

// ClusterResourceName is the name of the cluster resource that
// cluster-level ACLs name, as in Kafka.
const ClusterResourceName = "kafka-cluster"

// realm is the protection space named in WWW-Authenticate challenges.
const realm = "runnel"

// GuardOptions configure a Guard.
type GuardOptions struct {
	// Authenticator checks Basic and Bearer credentials; nil refuses them.
	Authenticator HTTPAuthenticator
	// Authorizer decides what a principal may do; nil allows everything.
	Authorizer HTTPAuthorizer
	// Certificates maps client certificates to principals; nil ignores
	// them.
	Certificates HTTPCertificates
	// Required refuses requests that carry no credentials (401); false
	// lets them through as User:ANONYMOUS. Authentication is required
	// whenever authorization is enabled.
	Required bool
	// FailureDelay holds back the answer to credentials that fail to
	// authenticate (sasl.failure-delay, as Kafka's
	// connection.failed.authentication.delay.ms), slowing password
	// guessing; requests without credentials are answered at once.
	FailureDelay time.Duration
	// Sessions verifies the portal's login cookie (session.go), taken
	// from requests without an Authorization header; nil ignores cookies.
	Sessions SessionVerifier
	// Now is the clock token expiry is checked against (time.Now if nil).
	Now func() time.Time
	// Logger receives refused authentications (nothing if nil).
	Logger *slog.Logger
}

// Guard authenticates and authorizes HTTP requests.
type Guard struct {
	o GuardOptions
}

// NewGuard returns a Guard with options o.
func NewGuard(o GuardOptions) *Guard {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Guard{o: o}
}

// AcceptSessions makes g accept session cookies verified by s. Call it
// before g serves a request.
func (g *Guard) AcceptSessions(s SessionVerifier) { g.o.Sessions = s }

type identityKey struct{}

type identity struct {
	principal Principal
	host      string
}

// WithRequestPrincipal returns ctx carrying the principal and client host
// of a request.
func WithRequestPrincipal(ctx context.Context, p Principal, host string) context.Context {
	return context.WithValue(ctx, identityKey{}, identity{p, host})
}

// RequestPrincipal returns the principal and client host a Guard put into
// a request's context; ok is false for a request no Guard authenticated.
func RequestPrincipal(ctx context.Context) (p Principal, host string, ok bool) {
	id, ok := ctx.Value(identityKey{}).(identity)
	return id.principal, id.host, ok
}

// Authenticate wraps next: a request reaches it only once authenticated,
// with its principal and host in its context.
func (g *Guard) Authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := clientHost(r.RemoteAddr)
		p, ok := g.authenticate(w, r, host)
		if !ok {
			return
		}
		next.ServeHTTP(w, r.WithContext(WithRequestPrincipal(r.Context(), p, host)))
	})
}

// authenticate finds the request's principal, or answers 401 and returns
// false.
func (g *Guard) authenticate(w http.ResponseWriter, r *http.Request, host string) (Principal, bool) {
	var principal Principal
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && g.o.Certificates != nil {
		p, ok, err := g.o.Certificates.Principal(*r.TLS)
		if err != nil {
			g.refused(r, host, "certificate", r.TLS.VerifiedChains[0][0].Subject.String(), err.Error())
			g.unauthenticated(w, "", "The client certificate maps to no principal")
			return Principal{}, false
		}
		if ok {
			principal = p
		}
	}
	header := r.Header.Get("Authorization")
	if header == "" {
		if !principal.IsZero() {
			return principal, true
		}
		if c, err := r.Cookie(SessionCookie); err == nil && g.o.Sessions != nil {
			return g.session(w, r, host, c.Value)
		}
		if g.o.Required {
			g.unauthenticated(w, "", "Authentication required: send HTTP Basic credentials, a Bearer token or a client certificate")
			return Principal{}, false
		}
		return Anonymous, true
	}
	scheme, rest, _ := strings.Cut(header, " ")
	switch {
	case strings.EqualFold(scheme, "Basic"):
		user, password, ok := r.BasicAuth()
		if !ok {
			g.unauthenticated(w, "", "Malformed Basic credentials")
			return Principal{}, false
		}
		if g.o.Authenticator == nil {
			g.refused(r, host, "basic", user, "no user store configured")
			g.unauthenticated(w, "", "Invalid username or password")
			return Principal{}, false
		}
		p, err := g.o.Authenticator.CheckPassword(r.Context(), user, password)
		if err != nil {
			g.refused(r, host, "basic", user, err.Error())
			g.unauthenticated(w, "", "Invalid username or password")
			return Principal{}, false
		}
		if principal.IsZero() {
			principal = p
		}
	case strings.EqualFold(scheme, "Bearer"):
		token := strings.TrimSpace(rest)
		if token == "" {
			g.unauthenticated(w, bearerChallenge("invalid_request", "The Bearer token is empty"), "Invalid token: empty")
			return Principal{}, false
		}
		if g.o.Authenticator == nil {
			g.refused(r, host, "bearer", "", "no token validation configured")
			g.unauthenticated(w, bearerChallenge("invalid_token", "Tokens are not accepted"), "Invalid token")
			return Principal{}, false
		}
		p, exp, err := g.o.Authenticator.CheckToken(r.Context(), token)
		if err != nil {
			g.refused(r, host, "bearer", "", err.Error())
			g.unauthenticated(w, bearerChallenge("invalid_token", "The token is invalid"), "Invalid token")
			return Principal{}, false
		}
		if !exp.IsZero() && !g.o.Now().Before(exp) {
			g.refused(r, host, "bearer", p.String(), "token expired at "+exp.UTC().Format(time.RFC3339))
			g.unauthenticated(w, bearerChallenge("invalid_token", "The token expired"), "Invalid token: expired")
			return Principal{}, false
		}
		if principal.IsZero() {
			principal = p
		}
	default:
		g.unauthenticated(w, "", fmt.Sprintf("Unsupported authentication scheme %q: use Basic or Bearer", scheme))
		return Principal{}, false
	}
	return principal, true
}

// session authenticates a request by its session cookie: 401 when the
// cookie does not verify (the portal then asks for a login), 403 when a
// request that changes state lacks the CSRF header.
func (g *Guard) session(w http.ResponseWriter, r *http.Request, host, token string) (Principal, bool) {
	p, _, err := g.o.Sessions.VerifySession(token)
	if err != nil {
		g.o.Logger.Info("http: session refused", "host", host, "method", r.Method, "path", r.URL.Path, "err", err)
		// No Basic challenge: a browser would answer it with its own
		// login dialog instead of letting the portal ask.
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Cookie realm=%q, cookie-name=%q`, realm, SessionCookie))
		WriteHTTPError(w, http.StatusUnauthorized, "The session expired or is invalid: log in again")
		return Principal{}, false
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
	default:
		if r.Header.Get(CSRFHeader) != "1" {
			WriteHTTPError(w, http.StatusForbidden, "A request authenticated by the session cookie must carry the header "+CSRFHeader+": 1")
			return Principal{}, false
		}
	}
	return p, true
}

// refused logs a refused authentication (never the credentials) and
// waits FailureDelay.
func (g *Guard) refused(r *http.Request, host, scheme, user, reason string) {
	g.o.Logger.Info("http: authentication failed", "scheme", scheme, "user", user, "host", host,
		"method", r.Method, "path", r.URL.Path, "err", reason)
	if g.o.FailureDelay <= 0 {
		return
	}
	t := time.NewTimer(g.o.FailureDelay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
	}
}

// bearerChallenge is an RFC 6750 challenge with an error code.
func bearerChallenge(code, description string) string {
	return fmt.Sprintf(`Bearer realm=%q, error=%q, error_description=%q`, realm, code, description)
}

// unauthenticated answers 401 with a Basic challenge (and bearer, a Bearer
// challenge naming what was wrong with a token).
func (g *Guard) unauthenticated(w http.ResponseWriter, bearer, msg string) {
	w.Header().Add("WWW-Authenticate", fmt.Sprintf(`Basic realm=%q`, realm))
	if bearer != "" {
		w.Header().Add("WWW-Authenticate", bearer)
	}
	WriteHTTPError(w, http.StatusUnauthorized, msg)
}

// Authorized reports whether the principal of the request whose context is
// ctx may perform op on the resource (typ, name). A context no Guard
// authenticated is User:ANONYMOUS from an unknown host.
func (g *Guard) Authorized(ctx context.Context, op kmsg.ACLOperation, typ kmsg.ACLResourceType, name string) bool {
	if g.o.Authorizer == nil {
		return true
	}
	p, host, ok := RequestPrincipal(ctx)
	if !ok {
		p = Anonymous
	}
	return g.o.Authorizer.Authorize(p, host, op, typ, name)
}

// RequireCluster wraps next so that only principals allowed op on the
// cluster reach it; others get 403. It goes inside Authenticate.
func (g *Guard) RequireCluster(op kmsg.ACLOperation, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !g.Authorized(r.Context(), op, kmsg.ACLResourceTypeCluster, ClusterResourceName) {
			p, _, _ := RequestPrincipal(r.Context())
			WriteHTTPError(w, http.StatusForbidden, DeniedMessage(p, op, "Cluster", ClusterResourceName))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// DeniedMessage is the message of a 403 answer, in the words Confluent's
// authorizers use ("User is denied operation Write on Subject: orders-value").
func DeniedMessage(p Principal, op kmsg.ACLOperation, resourceType, name string) string {
	who := "User"
	if !p.IsZero() {
		who = p.String()
	}
	return fmt.Sprintf("%s is denied operation %s on %s: %s", who, opName(op), resourceType, name)
}

// opName is op in Kafka's spelling ("Write", "DescribeConfigs").
func opName(op kmsg.ACLOperation) string {
	s := strings.ToLower(op.String())
	var b strings.Builder
	up := true
	for _, c := range s {
		if c == '_' {
			up = true
			continue
		}
		if up {
			b.WriteString(strings.ToUpper(string(c)))
			up = false
		} else {
			b.WriteRune(c)
		}
	}
	return b.String()
}

// WriteHTTPError writes a refusal with Confluent's JSON error body; the
// error_code is status×100+1 (40101, 40301).
func WriteHTTPError(w http.ResponseWriter, status int, msg string) {
	body, _ := json.Marshal(struct {
		Code    int    `json:"error_code"`
		Message string `json:"message"`
	}{status*100 + 1, msg})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// clientHost is the IP of a request's peer.
func clientHost(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return remoteAddr
	}
	return host
}
