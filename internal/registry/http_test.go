package registry

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

const (
	sA    = `{"fields":{"a":"string"},"required":["a"]}`
	sAB   = `{"fields":{"a":"string","b":"int"},"required":["a"]}`
	sC    = `{"fields":{"c":"int"},"required":["c"]}`
	sBase = `{"fields":{"x":"int"}}`
	sUser = `{"fields":{"u":"string"},"uses":["base.x"]}`
)

// step is one request of a scripted API test and what it must answer.
type step struct {
	name, method, path, body string
	hdr                      []string
	status                   int
	code                     int    // error_code when status >= 400
	want                     string // exact JSON (or raw text) when set
	contains                 string // substring of the body when set
}

func runSteps(t *testing.T, r *Registry, steps []step) {
	t.Helper()
	h := r.Handler()
	for _, s := range steps {
		status, body, _ := call(t, h, s.method, s.path, s.body, s.hdr...)
		if status != s.status {
			t.Fatalf("%s: %s %s = %d %s, want status %d", s.name, s.method, s.path, status, body, s.status)
		}
		if s.code != 0 && errorCode(body) != s.code {
			t.Fatalf("%s: error_code in %s, want %d", s.name, body, s.code)
		}
		if s.want != "" && !jsonSame(body, []byte(s.want)) {
			t.Fatalf("%s: body %s, want %s", s.name, body, s.want)
		}
		if s.contains != "" && !strings.Contains(string(body), s.contains) {
			t.Fatalf("%s: body %s does not contain %s", s.name, body, s.contains)
		}
	}
}

// jsonSame compares a response body with a wanted JSON document. A
// "guid" the body has and want does not name is left out (each schema has
// one; the steps that are about GUIDs name it).
func jsonSame(body, want []byte) bool {
	var x, y any
	if json.Unmarshal(body, &x) != nil || json.Unmarshal(want, &y) != nil {
		return string(body) == string(want)
	}
	return reflect.DeepEqual(dropUnwantedGUID(x, y), y)
}

func dropUnwantedGUID(got, want any) any {
	switch g := got.(type) {
	case map[string]any:
		w, _ := want.(map[string]any)
		if _, named := w["guid"]; !named {
			delete(g, "guid")
		}
	case []any:
		w, _ := want.([]any)
		for i := range g {
			if i < len(w) {
				g[i] = dropUnwantedGUID(g[i], w[i])
			}
		}
	}
	return got
}

func TestAPIScript(t *testing.T) {
	r := newRegistry(t, startEtcd(t))
	reg := func(s string, extra map[string]any) string { return schemaJSON(t, s, extra) }
	refs := map[string]any{"references": []map[string]any{{"name": "base.x", "subject": "base", "version": 1}}}
	steps := []step{
		{name: "no subjects", method: "GET", path: "/subjects", status: 200, want: `[]`},
		{name: "types", method: "GET", path: "/schemas/types", status: 200, want: `["AVRO","JSON"]`},
		{name: "root", method: "GET", path: "/", status: 200, want: `{}`},
		{name: "register A", method: "POST", path: "/subjects/t-value/versions", body: reg(sA, nil), status: 200, contains: `"id":1,"guid":"`},
		{name: "register A again, reformatted", method: "POST", path: "/subjects/t-value/versions", body: reg(` { "required":["a"], "fields":{"a":"string"}}`, nil), status: 200, contains: `"version":1,"id":1`},
		{name: "same schema other subject same id", method: "POST", path: "/subjects/other/versions", body: reg(sA, nil), status: 200, contains: `"version":1,"id":1`},
		{name: "register AB", method: "POST", path: "/subjects/t-value/versions", body: reg(sAB, nil), status: 200, contains: `"version":2,"id":2`},
		{name: "incompatible", method: "POST", path: "/subjects/t-value/versions", body: reg(sC, nil), status: 409, code: 409, contains: "READER_FIELD_MISSING_DEFAULT_VALUE"},
		{name: "invalid schema", method: "POST", path: "/subjects/t-value/versions", body: reg(`{`, nil), status: 422, code: 42201},
		{name: "bad body", method: "POST", path: "/subjects/t-value/versions", body: `not json`, status: 422, code: 422},
		{name: "unknown type", method: "POST", path: "/subjects/t-value/versions", body: reg(sA, map[string]any{"schemaType": "XML"}), status: 422, code: 42201},
		{name: "type JSON", method: "POST", path: "/subjects/j/versions", body: reg(sA, map[string]any{"schemaType": "JSON"}), status: 200, contains: `"schemaType":"JSON"`},
		{name: "subjects", method: "GET", path: "/subjects", status: 200, want: `["j","other","t-value"]`},
		{name: "subject prefix", method: "GET", path: "/subjects?subjectPrefix=t-", status: 200, want: `["t-value"]`},
		{name: "versions", method: "GET", path: "/subjects/t-value/versions", status: 200, want: `[1,2]`},
		{name: "latest", method: "GET", path: "/subjects/t-value/versions/latest", status: 200, want: `{"subject":"t-value","version":2,"id":2,"schema":` + jsonString(sAB) + `}`},
		{name: "-1", method: "GET", path: "/subjects/t-value/versions/-1", status: 200, contains: `"version":2`},
		{name: "raw schema", method: "GET", path: "/subjects/t-value/versions/1/schema", status: 200, want: sA},
		{name: "version not found", method: "GET", path: "/subjects/t-value/versions/9", status: 404, code: 40402},
		{name: "invalid version", method: "GET", path: "/subjects/t-value/versions/abc", status: 422, code: 42202},
		{name: "version zero", method: "GET", path: "/subjects/t-value/versions/0", status: 422, code: 42202},
		{name: "subject not found", method: "GET", path: "/subjects/nope/versions", status: 404, code: 40401},
		{name: "subject not found version", method: "GET", path: "/subjects/nope/versions/1", status: 404, code: 40401},
		{name: "lookup", method: "POST", path: "/subjects/t-value", body: reg(sA, nil), status: 200, contains: `"subject":"t-value","version":1,"id":1`},
		{name: "lookup normalize", method: "POST", path: "/subjects/t-value?normalize=true", body: reg(sA, nil), status: 200, contains: `"version":1`},
		{name: "lookup missing schema", method: "POST", path: "/subjects/t-value", body: reg(sC, nil), status: 404, code: 40403},
		{name: "lookup missing subject", method: "POST", path: "/subjects/nope", body: reg(sA, nil), status: 404, code: 40401},
		{name: "by id", method: "GET", path: "/schemas/ids/1", status: 200, want: `{"schema":` + jsonString(sA) + `}`},
		{name: "by id json type", method: "GET", path: "/schemas/ids/3", status: 200, contains: `"schemaType":"JSON"`},
		{name: "by id raw", method: "GET", path: "/schemas/ids/1/schema", status: 200, want: sA},
		{name: "by id subjects", method: "GET", path: "/schemas/ids/1/subjects", status: 200, want: `["other","t-value"]`},
		{name: "by id versions", method: "GET", path: "/schemas/ids/1/versions", status: 200, want: `[{"subject":"other","version":1},{"subject":"t-value","version":1}]`},
		{name: "by id missing", method: "GET", path: "/schemas/ids/99", status: 404, code: 40403},
		{name: "by id not a number", method: "GET", path: "/schemas/ids/x", status: 404, code: 40403},
		{name: "schemas", method: "GET", path: "/schemas?subjectPrefix=t-", status: 200, contains: `"subject":"t-value","version":2`},
		{name: "schemas latest only", method: "GET", path: "/schemas?latestOnly=true&subjectPrefix=t-", status: 200, want: `[{"subject":"t-value","version":2,"id":2,"schema":` + jsonString(sAB) + `}]`},

		{name: "global config", method: "GET", path: "/config", status: 200, want: `{"compatibilityLevel":"BACKWARD"}`},
		{name: "bad level", method: "PUT", path: "/config", body: `{"compatibility":"sideways"}`, status: 422, code: 42203},
		{name: "empty config", method: "PUT", path: "/config", body: `{}`, status: 422, code: 422},
		{name: "subject config", method: "PUT", path: "/config/t-value", body: `{"compatibility":"none"}`, status: 200, want: `{"compatibility":"NONE"}`},
		{name: "get subject config", method: "GET", path: "/config/t-value", status: 200, want: `{"compatibilityLevel":"NONE"}`},
		{name: "no subject config", method: "GET", path: "/config/other", status: 404, code: 40408},
		{name: "default to global", method: "GET", path: "/config/other?defaultToGlobal=true", status: 200, want: `{"compatibilityLevel":"BACKWARD"}`},
		{name: "NONE lets C in", method: "POST", path: "/subjects/t-value/versions", body: reg(sC, nil), status: 200, contains: `"version":3,"id":4`},
		{name: "delete subject config", method: "DELETE", path: "/config/t-value", status: 200, want: `{"compatibilityLevel":"NONE"}`},
		{name: "delete config of nothing", method: "DELETE", path: "/config/nope", status: 404, code: 40401},
		{name: "normalize config kept", method: "PUT", path: "/config/j", body: `{"normalize":true}`, status: 200, want: `{"normalize":true}`},
		{name: "merged config", method: "PUT", path: "/config/j", body: `{"compatibility":"FULL"}`, status: 200},
		{name: "merged config read", method: "GET", path: "/config/j", status: 200, want: `{"compatibilityLevel":"FULL","normalize":true}`},
		{name: "validateFields kept", method: "PUT", path: "/config/j", body: `{"validateFields":false}`, status: 200, want: `{"validateFields":false}`},
		{name: "validateFields read", method: "GET", path: "/config/j", status: 200, want: `{"compatibilityLevel":"FULL","normalize":true,"validateFields":false}`},

		{name: "compat verbose", method: "POST", path: "/compatibility/subjects/t-value/versions/latest?verbose=true", body: reg(sA, nil), status: 200, contains: `"is_compatible":false,"messages":["{errorType:'READER_FIELD_MISSING_DEFAULT_VALUE'`},
		{name: "compat verbose names version", method: "POST", path: "/compatibility/subjects/t-value/versions/latest?verbose=true", body: reg(sA, nil), status: 200, contains: `{oldSchemaVersion: 3}`},
		{name: "compat terse", method: "POST", path: "/compatibility/subjects/t-value/versions/latest", body: reg(sA, nil), status: 200, want: `{"is_compatible":false}`},
		{name: "compat ok", method: "POST", path: "/compatibility/subjects/t-value/versions/1?verbose=true", body: reg(sAB, nil), status: 200, want: `{"is_compatible":true,"messages":[]}`},
		{name: "compat all versions", method: "POST", path: "/compatibility/subjects/t-value/versions", body: reg(sC, nil), status: 200, want: `{"is_compatible":true}`},
		{name: "compat no subject", method: "POST", path: "/compatibility/subjects/nope/versions/1", body: reg(sA, nil), status: 404, code: 40401},
		{name: "compat no version", method: "POST", path: "/compatibility/subjects/t-value/versions/7", body: reg(sA, nil), status: 404, code: 40402},
		{name: "compat new subject", method: "POST", path: "/compatibility/subjects/nope/versions", body: reg(sA, nil), status: 200, want: `{"is_compatible":true}`},
		{name: "compat invalid schema", method: "POST", path: "/compatibility/subjects/t-value/versions", body: reg(`[]`, nil), status: 422, code: 42201},

		{name: "global mode", method: "GET", path: "/mode", status: 200, want: `{"mode":"READWRITE"}`},
		{name: "bad mode", method: "PUT", path: "/mode", body: `{"mode":"SOMETIMES"}`, status: 422, code: 42204},
		{name: "readonly subject", method: "PUT", path: "/mode/t-value", body: `{"mode":"READONLY"}`, status: 200, want: `{"mode":"READONLY"}`},
		{name: "readonly refuses register", method: "POST", path: "/subjects/t-value/versions", body: reg(sAB, map[string]any{"metadata": map[string]any{"properties": map[string]string{"k": "v"}}}), status: 422, code: 42205},
		{name: "readonly refuses delete", method: "DELETE", path: "/subjects/t-value", status: 422, code: 42205},
		{name: "subject mode", method: "GET", path: "/mode/t-value", status: 200, want: `{"mode":"READONLY"}`},
		{name: "no subject mode", method: "GET", path: "/mode/other", status: 404, code: 40409},
		{name: "mode default to global", method: "GET", path: "/mode/other?defaultToGlobal=true", status: 200, want: `{"mode":"READWRITE"}`},
		{name: "delete subject mode", method: "DELETE", path: "/mode/t-value", status: 200, want: `{"mode":"READONLY"}`},
		{name: "import refused", method: "PUT", path: "/mode", body: `{"mode":"IMPORT"}`, status: 422, code: 42205},
		{name: "import forced", method: "PUT", path: "/mode?force=true", body: `{"mode":"IMPORT"}`, status: 200, want: `{"mode":"IMPORT"}`},
		{name: "back to readwrite", method: "PUT", path: "/mode", body: `{"mode":"READWRITE"}`, status: 200},
		{name: "global readonly override", method: "PUT", path: "/mode", body: `{"mode":"READONLY_OVERRIDE"}`, status: 200},
		{name: "override wins", method: "POST", path: "/subjects/fresh/versions", body: reg(sA, nil), status: 422, code: 42205},
		{name: "global readwrite again", method: "DELETE", path: "/mode", status: 200, want: `{"mode":"READONLY_OVERRIDE"}`},

		{name: "permanent before soft", method: "DELETE", path: "/subjects/t-value/versions/3?permanent=true", status: 404, code: 40407},
		{name: "soft delete version", method: "DELETE", path: "/subjects/t-value/versions/3", status: 200, want: `3`},
		{name: "soft delete again", method: "DELETE", path: "/subjects/t-value/versions/3", status: 404, code: 40406},
		{name: "versions without deleted", method: "GET", path: "/subjects/t-value/versions", status: 200, want: `[1,2]`},
		{name: "versions with deleted", method: "GET", path: "/subjects/t-value/versions?deleted=true", status: 200, want: `[1,2,3]`},
		{name: "deleted version hidden", method: "GET", path: "/subjects/t-value/versions/3", status: 404, code: 40402},
		{name: "deleted version shown", method: "GET", path: "/subjects/t-value/versions/3?deleted=true", status: 200, contains: `"version":3`},
		{name: "soft-deleted id still served", method: "GET", path: "/schemas/ids/4", status: 200},
		{name: "permanent delete version", method: "DELETE", path: "/subjects/t-value/versions/3?permanent=true", status: 200, want: `3`},
		{name: "id gone after permanent delete", method: "GET", path: "/schemas/ids/4", status: 404, code: 40403},
		{name: "permanent subject before soft", method: "DELETE", path: "/subjects/other?permanent=true", status: 404, code: 40405},
		{name: "soft delete subject", method: "DELETE", path: "/subjects/other", status: 200, want: `[1]`},
		{name: "soft delete subject again", method: "DELETE", path: "/subjects/other", status: 404, code: 40404},
		{name: "soft-deleted subject hidden", method: "GET", path: "/subjects", status: 200, want: `["j","t-value"]`},
		{name: "soft-deleted subject listed", method: "GET", path: "/subjects?deleted=true", status: 200, want: `["j","other","t-value"]`},
		{name: "deleted only", method: "GET", path: "/subjects?deletedOnly=true", status: 200, want: `["other"]`},
		{name: "soft-deleted subject versions", method: "GET", path: "/subjects/other/versions", status: 404, code: 40401},
		{name: "id subjects without deleted", method: "GET", path: "/schemas/ids/1/subjects", status: 200, want: `["t-value"]`},
		{name: "id subjects with deleted", method: "GET", path: "/schemas/ids/1/subjects?deleted=true", status: 200, want: `["other","t-value"]`},
		{name: "lookup deleted", method: "POST", path: "/subjects/other?deleted=true", body: reg(sA, nil), status: 200, contains: `"version":1`},
		{name: "permanent delete subject", method: "DELETE", path: "/subjects/other?permanent=true", status: 200, want: `[1]`},
		{name: "gone", method: "GET", path: "/subjects?deleted=true", status: 200, want: `["j","t-value"]`},
		{name: "re-register after permanent delete restarts versions", method: "POST", path: "/subjects/other/versions", body: reg(sA, nil), status: 200, contains: `"version":1,"id":1`},

		{name: "base", method: "POST", path: "/subjects/base/versions", body: reg(sBase, nil), status: 200, contains: `"id":5`},
		{name: "missing reference", method: "POST", path: "/subjects/user/versions", body: reg(sUser, nil), status: 422, code: 42201},
		{name: "reference to missing version", method: "POST", path: "/subjects/user/versions", body: reg(sUser, map[string]any{"references": []map[string]any{{"name": "base.x", "subject": "base", "version": 9}}}), status: 422, code: 42201},
		{name: "with reference", method: "POST", path: "/subjects/user/versions", body: reg(sUser, refs), status: 200, contains: `"id":6`},
		{name: "references shown", method: "GET", path: "/subjects/user/versions/1", status: 200, contains: `"references":[{"name":"base.x","subject":"base","version":1}]`},
		{name: "referenced by", method: "GET", path: "/subjects/base/versions/1/referencedby", status: 200, want: `[6]`},
		{name: "not referenced", method: "GET", path: "/subjects/user/versions/1/referencedby", status: 200, want: `[]`},
		{name: "referenced version not deletable", method: "DELETE", path: "/subjects/base/versions/1", status: 422, code: 42206},
		{name: "referenced subject not deletable", method: "DELETE", path: "/subjects/base", status: 422, code: 42206},
		{name: "lookup with reference", method: "POST", path: "/subjects/user", body: reg(sUser, refs), status: 200, contains: `"id":6`},
		{name: "delete referrer", method: "DELETE", path: "/subjects/user", status: 200, want: `[1]`},
		{name: "soft-deleted referrer allows soft delete", method: "DELETE", path: "/subjects/base/versions/1", status: 200, want: `1`},
		{name: "but blocks permanent delete", method: "DELETE", path: "/subjects/base/versions/1?permanent=true", status: 422, code: 42206},
		{name: "permanent referrer", method: "DELETE", path: "/subjects/user?permanent=true", status: 200, want: `[1]`},
		{name: "then permanent referenced", method: "DELETE", path: "/subjects/base/versions/1?permanent=true", status: 200, want: `1`},

		{name: "not acceptable", method: "GET", path: "/subjects", hdr: []string{"Accept", "text/html"}, status: 406, code: 406},
		{name: "accept wildcard", method: "GET", path: "/subjects", hdr: []string{"Accept", "text/html, */*;q=0.1"}, status: 200},
		{name: "unsupported media type", method: "POST", path: "/subjects/t-value/versions", body: reg(sA, nil), hdr: []string{"Content-Type", "text/plain"}, status: 415, code: 415},
		{name: "plain json accepted", method: "POST", path: "/subjects/t-value", body: reg(sA, nil), hdr: []string{"Content-Type", "application/json"}, status: 200},
		{name: "default media type", method: "POST", path: "/subjects/t-value", body: reg(sA, nil), hdr: []string{"Content-Type", "application/vnd.schemaregistry+json"}, status: 200},
		{name: "unknown path", method: "GET", path: "/nope", status: 404, code: 404},
		{name: "wrong method", method: "PATCH", path: "/subjects", status: 405, code: 405},
	}
	runSteps(t, r, steps)
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func TestResponseContentType(t *testing.T) {
	r := newRegistry(t, startEtcd(t))
	h := r.Handler()
	tests := []struct{ accept, want string }{
		{"", mediaV1},
		{"application/json", mediaJSON},
		{"application/vnd.schemaregistry+json", mediaDefault},
		{"application/json;q=0.5, application/vnd.schemaregistry.v1+json", mediaV1},
		{"*/*", mediaV1},
	}
	for _, tt := range tests {
		t.Run(tt.accept, func(t *testing.T) {
			var hdr []string
			if tt.accept != "" {
				hdr = []string{"Accept", tt.accept}
			}
			_, _, got := call(t, h, "GET", "/subjects", "", hdr...)
			if ct := got.Get("Content-Type"); ct != tt.want {
				t.Fatalf("Content-Type = %q, want %q", ct, tt.want)
			}
		})
	}
}

func TestErrorTable(t *testing.T) {
	tests := []struct {
		err          error
		status, code int
	}{
		{errf(ErrSubjectNotFound, "x"), 404, 40401},
		{errf(ErrVersionNotFound, "x"), 404, 40402},
		{errf(ErrSchemaNotFound, "x"), 404, 40403},
		{errf(ErrSubjectSoftDeleted, "x"), 404, 40404},
		{errf(ErrSubjectNotSoftDeleted, "x"), 404, 40405},
		{errf(ErrVersionSoftDeleted, "x"), 404, 40406},
		{errf(ErrVersionNotSoftDeleted, "x"), 404, 40407},
		{errf(ErrConfigNotFound, "x"), 404, 40408},
		{errf(ErrModeNotFound, "x"), 404, 40409},
		{errf(ErrIncompatible, "x"), 409, 409},
		{errf(ErrInvalidSchema, "x"), 422, 42201},
		{errf(ErrInvalidVersion, "x"), 422, 42202},
		{errf(ErrInvalidCompatibility, "x"), 422, 42203},
		{errf(ErrInvalidMode, "x"), 422, 42204},
		{errf(ErrNotPermitted, "x"), 422, 42205},
		{errf(ErrReferenceExists, "x"), 422, 42206},
		{errf(ErrContextNotEmpty, "x"), 422, 42211},
		{errf(ErrContextNotFound, "x"), 404, 40401},
		{errf(ErrInvalidRequest, "x"), 422, 422},
		{ErrConflict, 500, 50001},
	}
	for _, tt := range tests {
		t.Run(tt.err.Error(), func(t *testing.T) {
			status, code, _ := errorStatus(tt.err)
			if status != tt.status || code != tt.code {
				t.Fatalf("errorStatus(%v) = %d/%d, want %d/%d", tt.err, status, code, tt.status, tt.code)
			}
		})
	}
}
