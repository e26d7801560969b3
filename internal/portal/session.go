package portal

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/auth"
	"github.com/runnel-dev/runnel/internal/governance"
)

// The session API (governance design, section Portal):
//
//	POST   /api/v1/session  {"username","password"} → 200 Session, sets the cookie
//	GET    /api/v1/session  → 200 Session ("principal":"" when nobody is logged in)
//	DELETE /api/v1/session  → 204, clears the cookie
//	GET    /api/v1/session/permissions?topic=T → 200 Permissions of the caller
//
// POST and DELETE need the auth.CSRFHeader like every cookie-authenticated
// write: a login or logout forced by another site is refused too. GET
// answers 200 whether or not anyone is logged in, so the application asks
// for a login without a failed request in the browser's console.

// Session is what the session API answers.
type Session struct {
	// Principal is the caller ("User:alice"), "" when nobody is logged in.
	Principal string `json:"principal"`
	// Admin says the caller may administer the cluster (ALTER on it).
	Admin bool `json:"admin"`
	// ExpiresAt is when a cookie session ends; nil for other credentials.
	ExpiresAt *time.Time `json:"expiresAt"`
	// PasswordLogin says POST /api/v1/session is offered.
	PasswordLogin bool `json:"passwordLogin"`
}

// Permissions are what the caller may do with a topic, so the
// application offers only what will succeed (a record sample needs READ).
type Permissions struct {
	Topic    string `json:"topic"`
	Describe bool   `json:"describe"`
	Read     bool   `json:"read"`
	Write    bool   `json:"write"`
	Alter    bool   `json:"alter"`
	Admin    bool   `json:"admin"`
}

// maxCredential bounds a login's user name and password.
const maxCredential = 1024

func (p *Portal) passwordLogin() bool {
	return p.secured && p.o.Sessions != nil && p.o.Passwords != nil
}

// checkCSRF refuses a state-changing session request without the header.
func checkCSRF(r *http.Request) error {
	if r.Header.Get(auth.CSRFHeader) != "1" {
		return governance.Errorf(http.StatusForbidden, "the request must carry the header %s: 1", auth.CSRFHeader)
	}
	return nil
}

// login checks a user's password and sets the session cookie.
func (p *Portal) login(w http.ResponseWriter, r *http.Request) {
	if err := p.doLogin(w, r); err != nil {
		governance.WriteError(w, err)
	}
}

func (p *Portal) doLogin(w http.ResponseWriter, r *http.Request) error {
	if err := checkCSRF(r); err != nil {
		return err
	}
	if !p.passwordLogin() {
		return governance.Errorf(http.StatusNotFound, "password login is not enabled on this broker (no SASL users and authorization are configured)")
	}
	var req struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}
	if err := governance.ReadJSON(r, &req, 8*maxCredential); err != nil {
		return err
	}
	if req.Username == "" || req.Password == "" {
		return fmt.Errorf("%w: username and password are required", governance.ErrInvalid)
	}
	if len(req.Username) > maxCredential || len(req.Password) > maxCredential {
		return fmt.Errorf("%w: username or password longer than %d bytes", governance.ErrInvalid, maxCredential)
	}
	host := clientHost(r.RemoteAddr)
	principal, err := p.o.Passwords.CheckPassword(r.Context(), req.Username, req.Password)
	if err != nil {
		p.o.Logger.Info("portal: login failed", "user", req.Username, "host", host, "err", err)
		delay(r.Context(), p.o.FailureDelay)
		challenge(w)
		return &governance.Error{Status: http.StatusUnauthorized, Code: 40101, Message: "Invalid username or password"}
	}
	token, exp := p.o.Sessions.Issue(principal)
	http.SetCookie(w, &http.Cookie{
		Name: auth.SessionCookie, Value: token, Path: "/", Expires: exp, MaxAge: int(p.o.Sessions.TTL().Seconds()),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
	governance.WriteJSON(w, http.StatusOK, p.session(r, principal, host, &exp))
	return nil
}

// current answers who the caller is. Credentials other than the cookie
// go through the guard (authenticated); a cookie that no longer verifies
// is cleared and answered as nobody logged in.
func (p *Portal) current(w http.ResponseWriter, r *http.Request, authenticated func(http.Handler) http.Handler) {
	if !p.secured {
		governance.WriteJSON(w, http.StatusOK, p.session(r, auth.Anonymous, clientHost(r.RemoteAddr), nil))
		return
	}
	hasCert := r.TLS != nil && len(r.TLS.VerifiedChains) > 0
	if r.Header.Get("Authorization") == "" && !hasCert {
		host := clientHost(r.RemoteAddr)
		if c, err := r.Cookie(auth.SessionCookie); err == nil && p.o.Sessions != nil {
			principal, exp, err := p.o.Sessions.VerifySession(c.Value)
			if err == nil {
				governance.WriteJSON(w, http.StatusOK, p.session(r, principal, host, &exp))
				return
			}
			clearCookie(w, r)
		}
		if p.o.LoginRequired {
			governance.WriteJSON(w, http.StatusOK, Session{PasswordLogin: p.passwordLogin()})
			return
		}
		governance.WriteJSON(w, http.StatusOK, p.session(r, auth.Anonymous, host, nil))
		return
	}
	authenticated(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		principal, host, _ := auth.RequestPrincipal(r.Context())
		governance.WriteJSON(w, http.StatusOK, p.session(r, principal, host, nil))
	})).ServeHTTP(w, r)
}

// logout clears the session cookie.
func (p *Portal) logout(w http.ResponseWriter, r *http.Request) {
	if err := checkCSRF(r); err != nil {
		governance.WriteError(w, err)
		return
	}
	clearCookie(w, r)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

// permissions answers what the caller may do with a topic.
func (p *Portal) permissions(w http.ResponseWriter, r *http.Request, a governance.Actor) error {
	topic := r.URL.Query().Get("topic")
	if topic == "" {
		return fmt.Errorf("%w: the query parameter topic is required", governance.ErrInvalid)
	}
	may := func(op kmsg.ACLOperation) bool { return a.May(op, kmsg.ACLResourceTypeTopic, topic) }
	governance.WriteJSON(w, http.StatusOK, Permissions{
		Topic: topic, Describe: may(kmsg.ACLOperationDescribe), Read: may(kmsg.ACLOperationRead),
		Write: may(kmsg.ACLOperationWrite), Alter: may(kmsg.ACLOperationAlter), Admin: a.Admin,
	})
	return nil
}

// session describes principal, connecting from host.
func (p *Portal) session(r *http.Request, principal auth.Principal, host string, exp *time.Time) Session {
	ctx := auth.WithRequestPrincipal(r.Context(), principal, host)
	a, _ := governance.ActorOf(r.WithContext(ctx), p.o.Authorizer)
	if exp != nil {
		utc := exp.UTC()
		exp = &utc
	}
	return Session{Principal: principal.String(), Admin: a.Admin, ExpiresAt: exp, PasswordLogin: p.passwordLogin()}
}

func clearCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: auth.SessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
}

// challenge names the cookie scheme in a 401: a Basic challenge would
// make the browser show its own login dialog.
func challenge(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Cookie realm="runnel", cookie-name="`+auth.SessionCookie+`"`)
}

// delay waits d or until ctx ends.
func delay(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// clientHost is the IP of a request's peer.
func clientHost(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return remoteAddr
	}
	return host
}
