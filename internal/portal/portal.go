package portal

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/runnel-dev/runnel/internal/auth"
	"github.com/runnel-dev/runnel/internal/governance"
)

//go:embed web
var webFS embed.FS

// ContentSecurityPolicy is sent with every page and asset: scripts,
// styles, images and connections only from the portal's own origin, no
// inline script or style, no framing.
const ContentSecurityPolicy = "default-src 'self'; base-uri 'none'; object-src 'none'; form-action 'self'; frame-ancestors 'none'"

// reserved are the first path segments the application is never served
// under: the HTTP listener's other handlers own them.
var reserved = map[string]bool{
	"api": true, "metrics": true, "iceberg": true, "tables": true, "share": true,
	"debug": true, "healthz": true, "readyz": true,
}

// contentTypes of the embedded files, fixed here rather than taken from
// the system's MIME tables, which differ between hosts.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".json": "application/json",
}

// PasswordChecker checks a user's password (auth.Authenticator).
type PasswordChecker interface {
	CheckPassword(ctx context.Context, user, password string) (auth.Principal, error)
}

// Routes finds the handler of a request: the HTTP listener's
// *http.ServeMux. The portal asks it which methods another handler
// serves a path with, to answer 405 rather than 404.
type Routes interface {
	Handler(r *http.Request) (h http.Handler, pattern string)
}

// Options configure a Portal.
type Options struct {
	// Sessions issues the login cookie's tokens; nil offers no password
	// login (certificates and Authorization headers still work).
	Sessions *auth.Sessions
	// Passwords checks logins; nil offers no password login.
	Passwords PasswordChecker
	// LoginRequired says a caller without credentials is refused (the
	// guard's Required); false lets one in as User:ANONYMOUS.
	LoginRequired bool
	// Authorizer decides what a principal may do; nil allows everything.
	Authorizer governance.Authorizer
	// FailureDelay holds back the answer to a failed login, as the
	// guard does for failed credentials.
	FailureDelay time.Duration
	// Logger receives failed logins; discarded when nil.
	Logger *slog.Logger
}

// Portal serves the web application and the session API.
type Portal struct {
	o      Options
	assets map[string]asset // by path below web/, "index.html", "assets/app.js"
	// Set by Mount:
	secured bool   // an auth.Guard authenticates requests
	routes  Routes // the mux mounted on, for 405 answers
}

// asset is one embedded file, with its content hash as ETag.
type asset struct {
	body        []byte
	etag        string
	contentType string
}

// New returns a Portal with options o.
func New(o Options) (*Portal, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	p := &Portal{o: o, assets: map[string]asset{}}
	err := fs.WalkDir(webFS, "web", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := webFS.ReadFile(name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		ct, ok := contentTypes[path.Ext(name)]
		if !ok {
			return fmt.Errorf("%s: no content type for its extension", name)
		}
		p.assets[strings.TrimPrefix(name, "web/")] = asset{body: body, etag: `"` + hex.EncodeToString(sum[:12]) + `"`, contentType: ct}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("portal: reading the embedded files: %w", err)
	}
	if _, ok := p.assets["index.html"]; !ok {
		return nil, fmt.Errorf("portal: the embedded files lack index.html")
	}
	return p, nil
}

// Mount adds the application at / and the session API to mux;
// authenticated wraps a handler in the HTTP listener's authentication
// (the request's principal in its context, as auth.Guard does). secured
// says that authentication is a guard's; false means every caller is
// User:ANONYMOUS, allowed everything, and nobody logs in. Mount once,
// before mux serves.
func (p *Portal) Mount(mux *http.ServeMux, secured bool, authenticated func(http.Handler) http.Handler) {
	p.secured, p.routes = secured, mux
	mux.HandleFunc("POST /api/v1/session", p.login)
	mux.HandleFunc("GET /api/v1/session", func(w http.ResponseWriter, r *http.Request) { p.current(w, r, authenticated) })
	mux.HandleFunc("DELETE /api/v1/session", p.logout)
	mux.Handle("GET /api/v1/session/permissions", authenticated(governance.Handler(p.o.Authorizer, p.permissions)))
	mux.Handle("/", http.HandlerFunc(p.serve))
}

// serve answers a request no other handler took: an embedded asset
// under /assets/, the application's page for any other path it may own
// (client-side routes), and 404 or 405 for another handler's paths.
func (p *Portal) serve(w http.ResponseWriter, r *http.Request) {
	first, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if reserved[first] {
		p.notOurs(w, r, first)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name := "index.html"
	if first == "assets" {
		name = strings.TrimPrefix(path.Clean(r.URL.Path), "/")
		if _, ok := p.assets[name]; !ok || !strings.HasPrefix(name, "assets/") {
			securityHeaders(w)
			http.NotFound(w, r)
			return
		}
	}
	p.serveAsset(w, r, name)
}

func (p *Portal) serveAsset(w http.ResponseWriter, r *http.Request, name string) {
	a := p.assets[name]
	securityHeaders(w)
	w.Header().Set("Content-Type", a.contentType)
	w.Header().Set("ETag", a.etag)
	// Revalidate every time: the binary, not a file name, versions them.
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(a.body))
}

// securityHeaders are sent with every page and asset.
func securityHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
}

// notOurs answers a path another handler owns that matched none of its
// patterns: 405 naming the methods it serves the path with, else 404.
func (p *Portal) notOurs(w http.ResponseWriter, r *http.Request, first string) {
	var allow []string
	if p.routes != nil {
		for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
			if m == r.Method || (m == http.MethodGet && r.Method == http.MethodHead) {
				continue
			}
			probe := r.Clone(r.Context())
			probe.Method = m
			if _, pattern := p.routes.Handler(probe); pattern != "" && pattern != "/" {
				allow = append(allow, m)
			}
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		if first == "api" {
			governance.WriteError(w, &governance.Error{Status: http.StatusMethodNotAllowed, Code: 40501,
				Message: fmt.Sprintf("method %s not allowed on %s", r.Method, r.URL.Path)})
			return
		}
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if first == "api" {
		governance.WriteError(w, fmt.Errorf("%w: no API at %s", governance.ErrNotFound, r.URL.Path))
		return
	}
	http.NotFound(w, r)
}
