package asyncapi

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/runnel-dev/runnel/internal/governance"
)

// HandleExport serves GET /api/v1/asyncapi?topics=a,b&format=yaml|json:
// the document of the named topics (every topic without the parameter),
// as JSON or YAML by format, else by the Accept header (JSON unless it
// asks for YAML). Every authenticated caller may read it: finding the
// products is the point.
func (s *Service) HandleExport(w http.ResponseWriter, r *http.Request, _ governance.Actor) error {
	format, err := exportFormat(r)
	if err != nil {
		return err
	}
	var names []string
	for _, n := range strings.Split(r.URL.Query().Get("topics"), ",") {
		if n = strings.TrimSpace(n); n != "" {
			names = append(names, n)
		}
	}
	d, err := s.Export(r.Context(), names)
	if err != nil {
		return err
	}
	body, ct, err := encodeDocument(d, format)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Cache-Control", "no-store")
	w.Write(body)
	return nil
}

func exportFormat(r *http.Request) (string, error) {
	switch f := r.URL.Query().Get("format"); f {
	case "json", "yaml":
		return f, nil
	case "":
	default:
		return "", invalidf("format %q: want yaml or json", f)
	}
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		if strings.Contains(mt, "yaml") {
			return "yaml", nil
		}
		if strings.Contains(mt, "json") {
			return "json", nil
		}
	}
	return "json", nil
}

// HandleImport serves POST /api/v1/asyncapi/import?dryRun=true|false, an
// administrator's (ALTER on the cluster): the body is the document, YAML
// or JSON, at most MaxImportBytes. A dry run (the default) answers the
// plan; otherwise the import is applied and the answer says what was
// done. An apply refused or stopped answers the result with the error's
// status, its error_code and message beside the steps.
func (s *Service) HandleImport(w http.ResponseWriter, r *http.Request, a governance.Actor) error {
	if !a.Admin {
		return governance.Errorf(http.StatusForbidden,
			"importing an AsyncAPI document creates topics and subjects: it needs ALTER on the cluster, which %s does not have", a)
	}
	dryRun := true
	switch v := r.URL.Query().Get("dryRun"); v {
	case "", "true":
	case "false":
		dryRun = false
	default:
		return invalidf("dryRun %q: want true or false", v)
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || !importable(mt) {
			return &governance.Error{Status: http.StatusUnsupportedMediaType, Code: 41501,
				Message: fmt.Sprintf("Content-Type %q: send the document as application/yaml or application/json", ct)}
		}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxImportBytes+1))
	if err != nil {
		return invalidf("reading the body: %v", err)
	}
	res, err := s.Import(r.Context(), a, body, dryRun)
	var e *governance.Error
	if res != nil && errors.As(err, &e) {
		governance.WriteJSON(w, e.Status, res)
		return nil
	}
	if err != nil {
		return err
	}
	governance.WriteJSON(w, http.StatusOK, res)
	return nil
}

func importable(mt string) bool {
	switch mt {
	case "application/json", "application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml",
		"application/vnd.aai.asyncapi", "text/plain", "application/octet-stream":
		return true
	}
	return strings.HasSuffix(mt, "+json") || strings.HasSuffix(mt, "+yaml")
}
