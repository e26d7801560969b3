package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// maxBodyBytes caps a request body (etcd's own request cap is 8 MiB).
const maxBodyBytes = 4 << 20

// Media types, in the server's order of preference.
const (
	mediaV1      = "application/vnd.schemaregistry.v1+json"
	mediaDefault = "application/vnd.schemaregistry+json"
	mediaJSON    = "application/json"
	mediaGeneric = "application/octet-stream"
)

// errorTable maps the package's errors to Confluent's HTTP status and
// error_code.
var errorTable = []struct {
	err    error
	status int
	code   int
}{
	{ErrSubjectNotFound, 404, 40401},
	{ErrVersionNotFound, 404, 40402},
	{ErrSchemaNotFound, 404, 40403},
	{ErrSubjectSoftDeleted, 404, 40404},
	{ErrSubjectNotSoftDeleted, 404, 40405},
	{ErrVersionSoftDeleted, 404, 40406},
	{ErrVersionNotSoftDeleted, 404, 40407},
	{ErrConfigNotFound, 404, 40408},
	{ErrModeNotFound, 404, 40409},
	// Confluent has no error code of its own for a missing context.
	{ErrContextNotFound, 404, 40401},
	{ErrIncompatible, 409, 409},
	{ErrInvalidSchema, 422, 42201},
	{ErrInvalidVersion, 422, 42202},
	{ErrInvalidCompatibility, 422, 42203},
	{ErrInvalidMode, 422, 42204},
	{ErrNotPermitted, 422, 42205},
	{ErrReferenceExists, 422, 42206},
	{ErrContextNotEmpty, 422, 42211},
	{ErrInvalidRequest, 422, 422},
	{ErrForbidden, 403, 40301},
}

// errorStatus returns the HTTP status, error_code and message for err.
func errorStatus(err error) (int, int, string) {
	for _, e := range errorTable {
		if errors.Is(err, e.err) {
			return e.status, e.code, err.Error()
		}
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return 500, 50002, "Operation timed out: " + err.Error()
	}
	return 500, 50001, "Error in the backend data store: " + err.Error()
}

type errorBody struct {
	Code    int    `json:"error_code"`
	Message string `json:"message"`
}

// Handler returns the Confluent-compatible REST API, every request allowed.
func (r *Registry) Handler() http.Handler { return r.handler(nil) }

// handler returns the REST API, with every request authorized by a unless
// a is nil (access.go).
func (r *Registry) handler(a Authorizer) http.Handler {
	mux := http.NewServeMux()
	routes := 0
	h := func(pattern string, f func(w http.ResponseWriter, req *http.Request) (any, error)) {
		if _, ok := accessRules[pattern]; !ok && a != nil {
			panic("registry: route " + pattern + " has no access rule")
		}
		routes++
		mux.HandleFunc(pattern, func(w http.ResponseWriter, req *http.Request) {
			if err := authorize(pattern, req); err != nil {
				r.writeError(w, req, err)
				return
			}
			v, err := f(w, req)
			if err != nil {
				r.writeError(w, req, err)
				return
			}
			if _, ok := v.(noContent); ok {
				w.WriteHeader(http.StatusNoContent)
				return
			}
			if raw, ok := v.(rawText); ok {
				w.Header().Set("Content-Type", responseType(req))
				_, _ = io.WriteString(w, string(raw))
				return
			}
			writeJSON(w, req, http.StatusOK, v)
		})
	}
	h("GET /{$}", func(http.ResponseWriter, *http.Request) (any, error) { return struct{}{}, nil })
	h("GET /subjects", r.httpSubjects)
	h("POST /subjects/{s}", r.httpLookup)
	h("DELETE /subjects/{s}", r.httpDeleteSubject)
	h("GET /subjects/{s}/versions", r.httpVersions)
	h("POST /subjects/{s}/versions", r.httpRegister)
	h("GET /subjects/{s}/versions/{v}", r.httpVersion)
	h("DELETE /subjects/{s}/versions/{v}", r.httpDeleteVersion)
	h("GET /subjects/{s}/versions/{v}/schema", r.httpVersionSchema)
	h("GET /subjects/{s}/versions/{v}/referencedby", r.httpReferencedBy)
	h("GET /schemas", r.httpSchemas)
	h("GET /schemas/types", func(http.ResponseWriter, *http.Request) (any, error) { return r.Types(), nil })
	h("GET /schemas/ids/{id}", r.httpSchemaByID)
	h("GET /schemas/ids/{id}/schema", r.httpSchemaTextByID)
	h("GET /schemas/ids/{id}/subjects", r.httpSubjectsByID)
	h("GET /schemas/ids/{id}/versions", r.httpVersionsByID)
	h("GET /schemas/guids/{guid}", r.httpSchemaByGUID)
	h("GET /schemas/guids/{guid}/ids", r.httpIDsByGUID)
	h("GET /contexts", func(_ http.ResponseWriter, req *http.Request) (any, error) {
		cs, err := r.Contexts(req.Context())
		if err != nil {
			return nil, err
		}
		return r.visibleContexts(req, cs)
	})
	h("DELETE /contexts/{context}", r.httpDeleteContext)
	h("GET /config", r.httpGetConfig)
	h("PUT /config", r.httpPutConfig)
	h("DELETE /config", r.httpDeleteConfig)
	h("GET /config/{s}", r.httpGetConfig)
	h("PUT /config/{s}", r.httpPutConfig)
	h("DELETE /config/{s}", r.httpDeleteConfig)
	h("GET /mode", r.httpGetMode)
	h("PUT /mode", r.httpPutMode)
	h("DELETE /mode", r.httpDeleteMode)
	h("GET /mode/{s}", r.httpGetMode)
	h("PUT /mode/{s}", r.httpPutMode)
	h("DELETE /mode/{s}", r.httpDeleteMode)
	h("POST /compatibility/subjects/{s}/versions", r.httpCompatibility)
	h("POST /compatibility/subjects/{s}/versions/{v}", r.httpCompatibility)
	if a != nil && routes != len(accessRules) {
		panic(fmt.Sprintf("registry: %d routes but %d access rules", routes, len(accessRules)))
	}

	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if !acceptable(req) {
			writeJSON(w, req, http.StatusNotAcceptable, errorBody{406, "HTTP 406 Not Acceptable"})
			return
		}
		if req.ContentLength != 0 && (req.Method == http.MethodPost || req.Method == http.MethodPut) && !consumable(req) {
			writeJSON(w, req, http.StatusUnsupportedMediaType, errorBody{415, "HTTP 415 Unsupported Media Type"})
			return
		}
		req = rewriteContextPath(req)
		if _, pattern := mux.Handler(req); pattern == "" {
			status, msg := http.StatusNotFound, "HTTP 404 Not Found"
			for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete} {
				probe := req.Clone(req.Context())
				probe.Method = m
				if _, p := mux.Handler(probe); p != "" {
					status, msg = http.StatusMethodNotAllowed, "HTTP 405 Method Not Allowed"
					break
				}
			}
			writeJSON(w, req, status, errorBody{status, msg})
			return
		}
		req.Body = http.MaxBytesReader(w, req.Body, maxBodyBytes)
		if a != nil {
			req = req.WithContext(context.WithValue(req.Context(), accessKey{}, &access{r, a}))
		}
		mux.ServeHTTP(w, req)
	})
}

// rawText is a response written as is (schema text endpoints).
type rawText string

// noContent is an empty 204 response.
type noContent struct{}

func (r *Registry) writeError(w http.ResponseWriter, req *http.Request, err error) {
	status, code, msg := errorStatus(err)
	if status >= 500 {
		r.log.Error("registry request failed", "method", req.Method, "path", req.URL.Path, "err", err)
	}
	writeJSON(w, req, status, errorBody{code, msg})
}

func writeJSON(w http.ResponseWriter, req *http.Request, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error_code":50001,"message":"cannot encode response"}`)
	}
	w.Header().Set("Content-Type", responseType(req))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// acceptEntries parses an Accept header into media ranges by falling q.
func acceptEntries(h string) []string {
	type entry struct {
		m string
		q float64
	}
	var es []entry
	for _, part := range strings.Split(h, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		m, params, err := mime.ParseMediaType(part)
		if err != nil {
			continue
		}
		q := 1.0
		if s, ok := params["q"]; ok {
			if f, err := strconv.ParseFloat(s, 64); err == nil {
				q = f
			}
		}
		if q > 0 {
			es = append(es, entry{m, q})
		}
	}
	sort.SliceStable(es, func(i, j int) bool { return es[i].q > es[j].q })
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.m
	}
	return out
}

// responseType picks the response media type from the Accept header.
func responseType(req *http.Request) string {
	h := req.Header.Get("Accept")
	if h == "" {
		return mediaV1
	}
	for _, m := range acceptEntries(h) {
		switch m {
		case mediaV1, mediaDefault, mediaJSON:
			return m
		case "*/*", "application/*":
			return mediaV1
		}
	}
	return mediaV1
}

func acceptable(req *http.Request) bool {
	h := req.Header.Get("Accept")
	if strings.TrimSpace(h) == "" {
		return true
	}
	for _, m := range acceptEntries(h) {
		switch m {
		case mediaV1, mediaDefault, mediaJSON, "*/*", "application/*":
			return true
		}
	}
	return false
}

func consumable(req *http.Request) bool {
	h := req.Header.Get("Content-Type")
	if h == "" {
		return true
	}
	m, _, err := mime.ParseMediaType(h)
	if err != nil {
		return false
	}
	switch m {
	case mediaV1, mediaDefault, mediaJSON, mediaGeneric:
		return true
	}
	return false
}

// rewriteContextPath maps "/contexts/{ctx}/..." onto the plain API with
// subjects qualified by the context, as Confluent's context-scoped paths
// (and clients such as franz-go's sr) use.
func rewriteContextPath(req *http.Request) *http.Request {
	path := req.URL.EscapedPath()
	rest, ok := strings.CutPrefix(path, "/contexts/")
	if !ok {
		return req
	}
	i := strings.IndexByte(rest, '/')
	if i < 0 {
		return req
	}
	ctxName, err := url.PathUnescape(rest[:i])
	if err != nil || ctxName == "" {
		return req
	}
	if !strings.HasPrefix(ctxName, ".") {
		ctxName = "." + ctxName
	}
	ctxQ := qualify(ctxName, "")
	segs := strings.Split(rest[i+1:], "/")
	q := func(s string) string {
		u, err := url.PathUnescape(s)
		if err != nil {
			return s
		}
		if !strings.HasPrefix(u, ":.") {
			u = qualify(ctxName, u)
		}
		return url.PathEscape(u)
	}
	query := req.URL.Query()
	switch segs[0] {
	case "subjects":
		if len(segs) == 1 {
			if query.Get("subjectPrefix") == "" && ctxQ != "" {
				query.Set("subjectPrefix", ctxQ)
			}
		} else {
			segs[1] = q(segs[1])
		}
	case "schemas":
		if query.Get("subject") == "" && ctxQ != "" {
			query.Set("subject", ctxQ)
		}
		if len(segs) == 1 && query.Get("subjectPrefix") == "" && ctxQ != "" {
			query.Set("subjectPrefix", ctxQ)
		}
	case "config", "mode":
		if len(segs) == 1 {
			if ctxQ != "" {
				segs = append(segs, url.PathEscape(ctxQ))
			}
		} else {
			segs[1] = q(segs[1])
		}
	case "compatibility":
		if len(segs) > 2 && segs[1] == "subjects" {
			segs[2] = q(segs[2])
		}
	default:
		return req
	}
	np := "/" + strings.Join(segs, "/")
	out := req.Clone(req.Context())
	u := *req.URL
	u.RawPath = np
	if u.Path, err = url.PathUnescape(np); err != nil {
		return req
	}
	u.RawQuery = query.Encode()
	out.URL = &u
	out.RequestURI = u.RequestURI()
	return out
}

func qbool(req *http.Request, name string) bool {
	v, _ := strconv.ParseBool(req.URL.Query().Get(name))
	return v
}

// versionParam parses a version: a positive number, "latest" or -1.
func versionParam(s string) (int, error) {
	if strings.EqualFold(s, "latest") {
		return -1, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil || v == 0 || v < -1 {
		return 0, errf(ErrInvalidVersion, "The specified version '%s' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\"", s)
	}
	return v, nil
}

func idParam(req *http.Request) (int, error) {
	s := req.PathValue("id")
	id, err := strconv.Atoi(s)
	if err != nil || id <= 0 {
		return 0, errf(ErrSchemaNotFound, "Schema %s not found", s)
	}
	return id, nil
}

// schemaBody is the body of register, lookup and compatibility requests.
type schemaBody struct {
	Schema     string      `json:"schema"`
	SchemaType string      `json:"schemaType,omitempty"`
	References []Reference `json:"references,omitempty"`
	Metadata   *Metadata   `json:"metadata,omitempty"`
	RuleSet    *RuleSet    `json:"ruleSet,omitempty"`
	ID         int         `json:"id,omitempty"`
	Version    int         `json:"version,omitempty"`
}

func decodeBody(req *http.Request, into any) error {
	b, err := io.ReadAll(req.Body)
	if err != nil {
		return errf(ErrInvalidRequest, "Cannot read request body: %v", err)
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return errf(ErrInvalidRequest, "Request body is empty")
	}
	if err := json.Unmarshal(b, into); err != nil {
		return errf(ErrInvalidRequest, "Invalid request body: %v", err)
	}
	return nil
}

func (r *Registry) schemaRequest(req *http.Request) (RegisterRequest, error) {
	var b schemaBody
	if err := decodeBody(req, &b); err != nil {
		return RegisterRequest{}, err
	}
	if b.Schema == "" {
		return RegisterRequest{}, errf(ErrInvalidSchema, "Invalid schema: the request has no schema")
	}
	return RegisterRequest{
		Subject: req.PathValue("s"), Schema: b.Schema, Type: b.SchemaType, References: b.References,
		Metadata: b.Metadata, RuleSet: b.RuleSet, ID: b.ID, Version: b.Version,
		Normalize: qbool(req, "normalize"),
	}, nil
}

// versionResponse is a subject version as Confluent returns it
// (schemaType left out for AVRO).
type versionResponse struct {
	Subject    string      `json:"subject,omitempty"`
	Version    int         `json:"version,omitempty"`
	ID         int         `json:"id"`
	GUID       string      `json:"guid,omitempty"`
	SchemaType string      `json:"schemaType,omitempty"`
	References []Reference `json:"references,omitempty"`
	Metadata   *Metadata   `json:"metadata,omitempty"`
	RuleSet    *RuleSet    `json:"ruleSet,omitempty"`
	Schema     string      `json:"schema"`
}

func toResponse(ss SubjectSchema) versionResponse {
	t := ss.Type
	if t == defaultType {
		t = ""
	}
	return versionResponse{Subject: ss.Subject, Version: ss.Version, ID: ss.ID, GUID: ss.GUID, SchemaType: t,
		References: ss.References, Metadata: ss.Metadata, RuleSet: ss.RuleSet, Schema: ss.Schema}
}

func listOptions(req *http.Request) ListOptions {
	return ListOptions{
		Prefix:      req.URL.Query().Get("subjectPrefix"),
		Deleted:     qbool(req, "deleted"),
		DeletedOnly: qbool(req, "deletedOnly"),
		LatestOnly:  qbool(req, "latestOnly"),
	}
}

// page applies ?offset and ?limit to a listing.
func page[T any](req *http.Request, xs []T) []T {
	off, _ := strconv.Atoi(req.URL.Query().Get("offset"))
	lim, _ := strconv.Atoi(req.URL.Query().Get("limit"))
	if off > 0 {
		if off >= len(xs) {
			return xs[:0]
		}
		xs = xs[off:]
	}
	if lim > 0 && lim < len(xs) {
		xs = xs[:lim]
	}
	return xs
}

func (r *Registry) httpSubjects(_ http.ResponseWriter, req *http.Request) (any, error) {
	s, err := r.Subjects(req.Context(), listOptions(req))
	if err != nil {
		return nil, err
	}
	return page(req, visibleOnly(req, s, func(s string) string { return s })), nil
}

func (r *Registry) httpLookup(_ http.ResponseWriter, req *http.Request) (any, error) {
	rr, err := r.schemaRequest(req)
	if err != nil {
		return nil, err
	}
	ss, err := r.Lookup(req.Context(), rr, qbool(req, "deleted"))
	if err != nil {
		return nil, err
	}
	return toResponse(ss), nil
}

func (r *Registry) httpRegister(_ http.ResponseWriter, req *http.Request) (any, error) {
	rr, err := r.schemaRequest(req)
	if err != nil {
		return nil, err
	}
	ss, err := r.Register(req.Context(), rr)
	if err != nil {
		return nil, err
	}
	resp := toResponse(ss)
	resp.Subject = ""
	return resp, nil
}

func (r *Registry) httpDeleteSubject(_ http.ResponseWriter, req *http.Request) (any, error) {
	return r.DeleteSubject(req.Context(), req.PathValue("s"), qbool(req, "permanent"))
}

func (r *Registry) httpVersions(_ http.ResponseWriter, req *http.Request) (any, error) {
	return r.Versions(req.Context(), req.PathValue("s"), listOptions(req))
}

func (r *Registry) httpVersion(_ http.ResponseWriter, req *http.Request) (any, error) {
	v, err := versionParam(req.PathValue("v"))
	if err != nil {
		return nil, err
	}
	ss, err := r.Version(req.Context(), req.PathValue("s"), v, qbool(req, "deleted"))
	if err != nil {
		return nil, err
	}
	if ss.Schema, err = r.schemaText(req, contextOf(ss.Subject), ss.StoredSchema); err != nil {
		return nil, err
	}
	return toResponse(ss), nil
}

// schemaText is st's text in the form ?format= asks for (see
// FormattedText).
func (r *Registry) schemaText(req *http.Request, sctx string, st StoredSchema) (string, error) {
	f := req.URL.Query().Get("format")
	if f == "" {
		return st.Schema, nil
	}
	return r.FormattedText(req.Context(), sctx, st, f)
}

func (r *Registry) httpVersionSchema(_ http.ResponseWriter, req *http.Request) (any, error) {
	v, err := versionParam(req.PathValue("v"))
	if err != nil {
		return nil, err
	}
	ss, err := r.Version(req.Context(), req.PathValue("s"), v, qbool(req, "deleted"))
	if err != nil {
		return nil, err
	}
	text, err := r.schemaText(req, contextOf(ss.Subject), ss.StoredSchema)
	if err != nil {
		return nil, err
	}
	return rawText(text), nil
}

func (r *Registry) httpDeleteVersion(_ http.ResponseWriter, req *http.Request) (any, error) {
	v, err := versionParam(req.PathValue("v"))
	if err != nil {
		return nil, err
	}
	return r.DeleteVersion(req.Context(), req.PathValue("s"), v, qbool(req, "permanent"))
}

func (r *Registry) httpReferencedBy(_ http.ResponseWriter, req *http.Request) (any, error) {
	v, err := versionParam(req.PathValue("v"))
	if err != nil {
		return nil, err
	}
	return r.ReferencedBy(req.Context(), req.PathValue("s"), v)
}

func (r *Registry) httpSchemas(_ http.ResponseWriter, req *http.Request) (any, error) {
	ss, err := r.Schemas(req.Context(), listOptions(req))
	if err != nil {
		return nil, err
	}
	ss = visibleOnly(req, ss, func(s SubjectSchema) string { return s.Subject })
	out := make([]versionResponse, len(ss))
	for i, s := range ss {
		out[i] = toResponse(s)
	}
	return page(req, out), nil
}

// idContext is the schema context a by-id request names through ?subject.
func idContext(req *http.Request) string {
	if s := req.URL.Query().Get("subject"); s != "" {
		return contextOf(s)
	}
	return defaultContext
}

func (r *Registry) byID(req *http.Request) (SchemaInfo, error) {
	id, err := idParam(req)
	if err != nil {
		return SchemaInfo{}, err
	}
	return r.SchemaInfo(req.Context(), idContext(req), id)
}

func (r *Registry) httpSchemaByID(_ http.ResponseWriter, req *http.Request) (any, error) {
	info, err := r.byID(req)
	if err != nil {
		return nil, err
	}
	if info.Schema, err = r.schemaText(req, info.Context, info.StoredSchema); err != nil {
		return nil, err
	}
	resp := byIDResponse(info.StoredSchema)
	var maxID *int
	if req.URL.Query().Get("fetchMaxId") == "true" {
		// The highest id handed out in the schema's context.
		n, err := r.maxID(req.Context(), idContext(req))
		if err != nil {
			return nil, err
		}
		maxID = &n
	}
	resp.MaxID = maxID
	return resp, nil
}

// schemaByIDResponse is a schema as GET /schemas/ids/{id} and
// /schemas/guids/{guid} return it (schemaType left out for AVRO).
type schemaByIDResponse struct {
	SchemaType string      `json:"schemaType,omitempty"`
	Schema     string      `json:"schema"`
	References []Reference `json:"references,omitempty"`
	Metadata   *Metadata   `json:"metadata,omitempty"`
	RuleSet    *RuleSet    `json:"ruleSet,omitempty"`
	GUID       string      `json:"guid,omitempty"`
	MaxID      *int        `json:"maxId,omitempty"`
}

func byIDResponse(st StoredSchema) schemaByIDResponse {
	v := toResponse(SubjectSchema{StoredSchema: st})
	return schemaByIDResponse{SchemaType: v.SchemaType, Schema: v.Schema, References: v.References,
		Metadata: v.Metadata, RuleSet: v.RuleSet, GUID: v.GUID}
}

// maxID reads the id counter of a schema context.
func (r *Registry) maxID(ctx context.Context, sctx string) (int, error) {
	resp, err := r.cli.Get(ctx, r.kCounter(sctx))
	if err != nil {
		return 0, fmt.Errorf("registry: read id counter: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return 0, nil
	}
	return strconv.Atoi(string(resp.Kvs[0].Value))
}

func (r *Registry) httpSchemaTextByID(_ http.ResponseWriter, req *http.Request) (any, error) {
	info, err := r.byID(req)
	if err != nil {
		return nil, err
	}
	text, err := r.schemaText(req, info.Context, info.StoredSchema)
	if err != nil {
		return nil, err
	}
	return rawText(text), nil
}

type subjectVersionJSON struct {
	Subject string `json:"subject"`
	Version int    `json:"version"`
}

func (r *Registry) usages(req *http.Request) ([]subjectVersionJSON, error) {
	info, err := r.byID(req)
	if err != nil {
		return nil, err
	}
	deleted := qbool(req, "deleted")
	out := []subjectVersionJSON{}
	for _, u := range visibleOnly(req, info.Usages, func(u SubjectVersion) string { return u.Subject }) {
		if !u.Deleted || deleted {
			out = append(out, subjectVersionJSON{u.Subject, u.Version})
		}
	}
	return out, nil
}

func (r *Registry) httpSubjectsByID(_ http.ResponseWriter, req *http.Request) (any, error) {
	us, err := r.usages(req)
	if err != nil {
		return nil, err
	}
	out := []string{}
	for _, u := range us {
		if len(out) == 0 || out[len(out)-1] != u.Subject {
			out = append(out, u.Subject)
		}
	}
	return out, nil
}

func (r *Registry) httpVersionsByID(_ http.ResponseWriter, req *http.Request) (any, error) {
	return r.usages(req)
}

// configBody is a config as PUT takes it ("compatibility") and GET gives
// it ("compatibilityLevel").
type configBody struct {
	Compatibility      string    `json:"compatibility,omitempty"`
	CompatibilityLevel string    `json:"compatibilityLevel,omitempty"`
	Normalize          *bool     `json:"normalize,omitempty"`
	Alias              string    `json:"alias,omitempty"`
	CompatibilityGroup string    `json:"compatibilityGroup,omitempty"`
	ValidateFields     *bool     `json:"validateFields,omitempty"`
	DefaultMetadata    *Metadata `json:"defaultMetadata,omitempty"`
	OverrideMetadata   *Metadata `json:"overrideMetadata,omitempty"`
	DefaultRuleSet     *RuleSet  `json:"defaultRuleSet,omitempty"`
	OverrideRuleSet    *RuleSet  `json:"overrideRuleSet,omitempty"`
}

func (r *Registry) httpGetConfig(_ http.ResponseWriter, req *http.Request) (any, error) {
	return r.GetConfig(req.Context(), req.PathValue("s"), qbool(req, "defaultToGlobal"))
}

func (r *Registry) httpPutConfig(_ http.ResponseWriter, req *http.Request) (any, error) {
	var b configBody
	if err := decodeBody(req, &b); err != nil {
		return nil, err
	}
	lvl := b.Compatibility
	if lvl == "" {
		lvl = b.CompatibilityLevel
	}
	c := Config{Compatibility: lvl, Normalize: b.Normalize, Alias: b.Alias, CompatibilityGroup: b.CompatibilityGroup,
		ValidateFields: b.ValidateFields, DefaultMetadata: b.DefaultMetadata, OverrideMetadata: b.OverrideMetadata,
		DefaultRuleSet: b.DefaultRuleSet, OverrideRuleSet: b.OverrideRuleSet}
	if c == (Config{}) {
		return nil, errf(ErrInvalidRequest, "The config update sets nothing")
	}
	if _, err := r.SetConfig(req.Context(), req.PathValue("s"), c); err != nil {
		return nil, err
	}
	if c.Compatibility != "" {
		c.Compatibility, _ = parseCompatibility(c.Compatibility)
	}
	return configBody{Compatibility: c.Compatibility, Normalize: c.Normalize, Alias: c.Alias, CompatibilityGroup: c.CompatibilityGroup,
		ValidateFields: c.ValidateFields, DefaultMetadata: c.DefaultMetadata, OverrideMetadata: c.OverrideMetadata,
		DefaultRuleSet: c.DefaultRuleSet, OverrideRuleSet: c.OverrideRuleSet}, nil
}

func (r *Registry) httpDeleteConfig(_ http.ResponseWriter, req *http.Request) (any, error) {
	return r.DeleteConfig(req.Context(), req.PathValue("s"))
}

type modeBody struct {
	Mode string `json:"mode"`
}

func (r *Registry) httpGetMode(_ http.ResponseWriter, req *http.Request) (any, error) {
	m, err := r.GetMode(req.Context(), req.PathValue("s"), qbool(req, "defaultToGlobal"))
	return modeBody{m}, err
}

func (r *Registry) httpPutMode(_ http.ResponseWriter, req *http.Request) (any, error) {
	var b modeBody
	if err := decodeBody(req, &b); err != nil {
		return nil, err
	}
	m, err := r.SetMode(req.Context(), req.PathValue("s"), b.Mode, qbool(req, "force"))
	return modeBody{m}, err
}

func (r *Registry) httpDeleteMode(_ http.ResponseWriter, req *http.Request) (any, error) {
	m, err := r.DeleteMode(req.Context(), req.PathValue("s"))
	return modeBody{m}, err
}

func (r *Registry) httpCompatibility(_ http.ResponseWriter, req *http.Request) (any, error) {
	version := 0
	if s := req.PathValue("v"); s != "" {
		v, err := versionParam(s)
		if err != nil {
			return nil, err
		}
		version = v
	}
	rr, err := r.schemaRequest(req)
	if err != nil {
		return nil, err
	}
	msgs, err := r.CheckCompatibility(req.Context(), rr, version)
	if err != nil {
		return nil, err
	}
	type result struct {
		Is       bool      `json:"is_compatible"`
		Messages *[]string `json:"messages,omitempty"`
	}
	res := result{Is: len(msgs) == 0}
	if qbool(req, "verbose") {
		if msgs == nil {
			msgs = []string{}
		}
		res.Messages = &msgs
	}
	return res, nil
}
