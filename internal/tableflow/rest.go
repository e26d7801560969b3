package tableflow

// The Iceberg REST catalog, read-only (Iceberg's open-api/
// rest-catalog-open-api.yaml). Served paths, relative to the mount point
// (the broker mounts the handler under /iceberg, so the catalog URI is
// http://host:8080/iceberg):
//
//	GET       /v1/config
//	GET       /v1/namespaces[?parent=ns]
//	GET|HEAD  /v1/namespaces/{namespace}
//	GET       /v1/namespaces/{namespace}/tables
//	GET|HEAD  /v1/namespaces/{namespace}/tables/{table}
//	POST      /v1/namespaces/{namespace}/tables/{table}/metrics (accepted, discarded)
//
// Every other POST, PUT, DELETE or PATCH (create, update, commit, rename,
// register, drop, transactions, namespace changes) is refused with 403
// ForbiddenException: the topic is the source of truth of its table. No
// catalog prefix, no paging (every list fits one page), no server-side
// scan planning, no views, no credential vending: engines read the files
// with the IO properties the catalog returns (for S3 the store's endpoint,
// region and path style) and their own credentials.

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// RESTOptions configures the REST catalog handler.
type RESTOptions struct {
	// Authorize reports whether the request's principal may read (write
	// false) or write the topic of a table; nil allows everything.
	// Listings show only the tables whose topic it allows.
	Authorize func(r *http.Request, topic string, write bool) bool
	// IOProperties are the file IO properties engines need to read the
	// store (s3.endpoint, s3.region, s3.path-style-access; none for a
	// file store), returned in /v1/config overrides and in every
	// LoadTableResult's config.
	IOProperties map[string]string
}

// restEndpoints are the endpoints /v1/config advertises: those served,
// and the write endpoints of the default set, which are answered (with
// 403) so that a client reports the catalog's reason.
var restEndpoints = []string{
	"GET /v1/{prefix}/namespaces",
	"GET /v1/{prefix}/namespaces/{namespace}",
	"HEAD /v1/{prefix}/namespaces/{namespace}",
	"GET /v1/{prefix}/namespaces/{namespace}/tables",
	"GET /v1/{prefix}/namespaces/{namespace}/tables/{table}",
	"HEAD /v1/{prefix}/namespaces/{namespace}/tables/{table}",
	"POST /v1/{prefix}/namespaces/{namespace}/tables/{table}/metrics",
	"POST /v1/{prefix}/namespaces",
	"POST /v1/{prefix}/namespaces/{namespace}/properties",
	"DELETE /v1/{prefix}/namespaces/{namespace}",
	"POST /v1/{prefix}/namespaces/{namespace}/tables",
	"POST /v1/{prefix}/namespaces/{namespace}/tables/{table}",
	"DELETE /v1/{prefix}/namespaces/{namespace}/tables/{table}",
	"POST /v1/{prefix}/tables/rename",
	"POST /v1/{prefix}/namespaces/{namespace}/register",
	"POST /v1/{prefix}/transactions/commit",
}

// Error types of the REST spec's ErrorModel that the handler answers.
const (
	errBadRequest      = "BadRequestException"
	errForbidden       = "ForbiddenException"
	errNoSuchNamespace = "NoSuchNamespaceException"
	errNoSuchTable     = "NoSuchTableException"
	errNotFound        = "NotFoundException"
	errServer          = "InternalServerError"
)

type restHandler struct {
	cat  *Catalog
	opts RESTOptions
}

// Handler returns the read-only Iceberg REST catalog over c.
func (c *Catalog) Handler(opts RESTOptions) http.Handler {
	h := &restHandler{cat: c, opts: opts}
	mux := http.NewServeMux()
	// GET patterns also match HEAD.
	mux.HandleFunc("GET /v1/config", h.config)
	mux.HandleFunc("GET /v1/namespaces", h.listNamespaces)
	mux.HandleFunc("GET /v1/namespaces/{namespace}", h.loadNamespace)
	mux.HandleFunc("GET /v1/namespaces/{namespace}/tables", h.listTables)
	mux.HandleFunc("GET /v1/namespaces/{namespace}/tables/{table}", h.loadTable)
	mux.HandleFunc("POST /v1/namespaces/{namespace}/tables/{table}/metrics", h.metrics)
	mux.HandleFunc("/", h.other)
	return mux
}

// errorModel is the REST spec's error response body.
type errorModel struct {
	Error errorBody `json:"error"`
}

type errorBody struct {
	Message string `json:"message"`
	Type    string `json:"type"`
	Code    int    `json:"code"`
}

func writeJSON(w http.ResponseWriter, r *http.Request, code int, v any) {
	if r.Method == http.MethodHead {
		w.WriteHeader(code)
		return
	}
	body, err := json.Marshal(v)
	if err != nil {
		code = http.StatusInternalServerError
		body, _ = json.Marshal(errorModel{errorBody{Message: "cannot encode the response", Type: errServer, Code: code}})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

func writeError(w http.ResponseWriter, r *http.Request, code int, typ, msg string) {
	writeJSON(w, r, code, errorModel{errorBody{Message: msg, Type: typ, Code: code}})
}

// catalogError answers err, a catalog error.
func (h *restHandler) catalogError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, ErrNoSuchTable):
		writeError(w, r, http.StatusNotFound, errNoSuchTable, err.Error())
	case errors.Is(err, ErrNoSuchNamespace):
		writeError(w, r, http.StatusNotFound, errNoSuchNamespace, err.Error())
	default:
		h.cat.log.Warn("iceberg rest catalog", "path", r.URL.Path, "err", err)
		writeError(w, r, http.StatusInternalServerError, errServer, err.Error())
	}
}

func (h *restHandler) allowed(r *http.Request, topic string) bool {
	return h.opts.Authorize == nil || h.opts.Authorize(r, topic, false)
}

func (h *restHandler) ioProperties() map[string]string {
	out := map[string]string{}
	for k, v := range h.opts.IOProperties {
		out[k] = v
	}
	return out
}

func (h *restHandler) config(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, r, http.StatusOK, struct {
		Defaults  map[string]string `json:"defaults"`
		Overrides map[string]string `json:"overrides"`
		Endpoints []string          `json:"endpoints"`
	}{map[string]string{}, h.ioProperties(), restEndpoints})
}

// namespace reads the {namespace} path parameter: one level only (a
// multi-level namespace, parts separated by 0x1F, does not exist here).
func namespace(r *http.Request) string { return r.PathValue("namespace") }

// visibleTables returns the tables of ns the request may see, and
// whether the namespace itself is visible (it is when it has one, or when
// there is no authorization).
func (h *restHandler) visibleTables(r *http.Request, ns string) ([]TableEntry, bool, error) {
	tables, err := h.cat.Tables(r.Context(), ns)
	if err != nil {
		return nil, false, err
	}
	if h.opts.Authorize == nil {
		return tables, true, nil
	}
	out := tables[:0]
	for _, t := range tables {
		if h.allowed(r, t.Topic) {
			out = append(out, t)
		}
	}
	return out, len(out) > 0, nil
}

func (h *restHandler) listNamespaces(w http.ResponseWriter, r *http.Request) {
	if parent := r.URL.Query().Get("parent"); parent != "" {
		// Namespaces have one level: an existing parent has no children.
		if _, ok, err := h.visibleTables(r, parent); err != nil || !ok {
			if err == nil {
				err = fmt.Errorf("%w: %q", ErrNoSuchNamespace, parent)
			}
			h.catalogError(w, r, err)
			return
		}
		writeJSON(w, r, http.StatusOK, map[string]any{"namespaces": [][]string{}})
		return
	}
	names, err := h.cat.Namespaces(r.Context())
	if err != nil {
		h.catalogError(w, r, err)
		return
	}
	out := [][]string{}
	for _, ns := range names {
		_, ok, err := h.visibleTables(r, ns)
		if errors.Is(err, ErrNoSuchNamespace) {
			continue // removed meanwhile
		}
		if err != nil {
			h.catalogError(w, r, err)
			return
		}
		if ok {
			out = append(out, []string{ns})
		}
	}
	writeJSON(w, r, http.StatusOK, map[string]any{"namespaces": out})
}

func (h *restHandler) loadNamespace(w http.ResponseWriter, r *http.Request) {
	ns := namespace(r)
	props, err := h.cat.Namespace(r.Context(), ns)
	if err == nil {
		var ok bool
		if _, ok, err = h.visibleTables(r, ns); err == nil && !ok {
			err = fmt.Errorf("%w: %q", ErrNoSuchNamespace, ns)
		}
	}
	if err != nil {
		h.catalogError(w, r, err)
		return
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeJSON(w, r, http.StatusOK, map[string]any{"namespace": []string{ns}, "properties": props})
}

func (h *restHandler) listTables(w http.ResponseWriter, r *http.Request) {
	ns := namespace(r)
	tables, ok, err := h.visibleTables(r, ns)
	if err == nil && !ok && h.opts.Authorize != nil {
		err = fmt.Errorf("%w: %q", ErrNoSuchNamespace, ns)
	}
	if err != nil {
		h.catalogError(w, r, err)
		return
	}
	type ident struct {
		Namespace []string `json:"namespace"`
		Name      string   `json:"name"`
	}
	ids := make([]ident, 0, len(tables))
	for _, t := range tables {
		ids = append(ids, ident{[]string{t.Namespace}, t.Name})
	}
	writeJSON(w, r, http.StatusOK, map[string]any{"identifiers": ids})
}

// tableEntry finds the table of a request, answering 404 (no such
// namespace, no such table) or 403 itself when it returns false.
func (h *restHandler) tableEntry(w http.ResponseWriter, r *http.Request) (TableEntry, bool) {
	ns, name := namespace(r), r.PathValue("table")
	entry, err := h.cat.Table(r.Context(), ns, name)
	if errors.Is(err, ErrNoSuchTable) {
		if _, nsErr := h.cat.Namespace(r.Context(), ns); errors.Is(nsErr, ErrNoSuchNamespace) {
			err = nsErr
		}
	}
	if err != nil {
		h.catalogError(w, r, err)
		return TableEntry{}, false
	}
	if !h.allowed(r, entry.Topic) {
		writeError(w, r, http.StatusForbidden, errForbidden,
			fmt.Sprintf("not authorized to read topic %q (table %s.%s)", entry.Topic, ns, name))
		return TableEntry{}, false
	}
	return entry, true
}

func (h *restHandler) loadTable(w http.ResponseWriter, r *http.Request) {
	entry, ok := h.tableEntry(w, r)
	if !ok {
		return
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if snaps := r.URL.Query().Get("snapshots"); snaps != "" && snaps != "all" && snaps != "refs" {
		writeError(w, r, http.StatusBadRequest, errBadRequest, fmt.Sprintf("snapshots=%q: want all or refs", snaps))
		return
	}
	meta, err := h.cat.Metadata(entry)
	if err != nil {
		h.catalogError(w, r, err)
		return
	}
	raw, err := json.Marshal(meta)
	if err != nil {
		h.catalogError(w, r, err)
		return
	}
	writeJSON(w, r, http.StatusOK, loadTableResult{
		MetadataLocation: entry.MetadataLocation,
		Metadata:         raw,
		Config:           h.ioProperties(),
	})
}

type loadTableResult struct {
	MetadataLocation string            `json:"metadata-location"`
	Metadata         json.RawMessage   `json:"metadata"`
	Config           map[string]string `json:"config"`
}

// metrics accepts an engine's scan or commit report (the spec's
// ReportMetrics); reports change nothing, so they are not writes.
func (h *restHandler) metrics(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.tableEntry(w, r); !ok {
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// other answers every path and method not served: writes with 403,
// anything else with 404.
func (h *restHandler) other(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		if r.Method == http.MethodHead {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		writeError(w, r, http.StatusNotFound, errNotFound, fmt.Sprintf("no such endpoint: %s %s", r.Method, r.URL.Path))
	default:
		writeError(w, r, http.StatusForbidden, errForbidden, h.readOnly(r))
	}
}

// readOnly explains a refused write, naming the topic of the table it
// addresses when there is one.
func (h *restHandler) readOnly(r *http.Request) string {
	const why = "the catalog is read-only: Runnel writes every table from its topic, the source of truth"
	rest, ok := strings.CutPrefix(r.URL.Path, "/v1/namespaces/")
	if ok {
		if ns, rest, ok := strings.Cut(rest, "/"); ok {
			if name, ok := strings.CutPrefix(rest, "tables/"); ok && name != "" && !strings.Contains(name, "/") {
				if e, err := h.cat.Table(r.Context(), ns, name); err == nil && h.allowed(r, e.Topic) {
					return fmt.Sprintf("%s %s refused: table %s.%s is written from topic %q, its source of truth; produce to the topic instead",
						r.Method, r.URL.Path, ns, name, e.Topic)
				}
			}
		}
	}
	return fmt.Sprintf("%s %s refused: %s; produce to a topic with table.enabled=true instead", r.Method, r.URL.Path, why)
}
