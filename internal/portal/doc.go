// Package portal owns Runnel's web portal (DESIGN §7, governance): the
// single-page application served at / on the HTTP listener, embedded in
// the binary as static files (plain JavaScript modules, CSS and SVG; no
// build step, no framework), and the login session API under
// /api/v1/session that sets the auth.SessionCookie.
//
// Everything the portal shows comes from the governance REST API under
// /api/v1 (catalog, lineage, access requests, shares, audit), called by
// the browser with the session cookie; this package serves no data of
// its own and holds no state: sessions are signed tokens (auth.Sessions).
//
// It must never serve an API's path (/api/, /metrics, /iceberg, /tables,
// /share, /debug, the probes) as the application, must never put a
// password anywhere but into auth's CheckPassword, and must never answer
// with a page that runs inline script: every page carries a
// Content-Security-Policy of default-src 'self'.
package portal
