package registry

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"
)

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// guidAt reads the "guid" of a JSON response.
func guidAt(t *testing.T, body []byte) string {
	t.Helper()
	var v struct {
		GUID string `json:"guid"`
	}
	if err := json.Unmarshal(body, &v); err != nil || !uuidRE.MatchString(v.GUID) {
		t.Fatalf("no UUID guid in %s (%v)", body, err)
	}
	return v.GUID
}

func TestSchemaGUIDs(t *testing.T) {
	cli := startEtcd(t)
	r := newRegistry(t, cli)
	h := r.Handler()
	reg := func(subject, schema string, extra map[string]any) string {
		t.Helper()
		status, body, _ := call(t, h, "POST", "/subjects/"+subject+"/versions", schemaJSON(t, schema, extra))
		if status != 200 {
			t.Fatalf("register %s = %d %s", subject, status, body)
		}
		return guidAt(t, body)
	}
	get := func(path string) []byte {
		t.Helper()
		status, body, _ := call(t, h, "GET", path, "")
		if status != 200 {
			t.Fatalf("GET %s = %d %s", path, status, body)
		}
		return body
	}
	gA := reg("a", sA, nil)
	gAB := reg("a", sAB, nil)
	if gA == gAB {
		t.Fatal("two schemas share a guid")
	}
	if g := reg("b", ` {"required":["a"],"fields":{"a":"string"}}`, nil); g != gA {
		t.Fatalf("same schema, reformatted, under another subject: guid %s, want %s", g, gA)
	}
	gCtx := reg(":.prod:c", sA, nil)
	if gCtx != gA {
		t.Fatalf("same schema in another context: guid %s, want %s", gCtx, gA)
	}
	reg(":.prod:d", sC, nil) // id 2 in .prod is another schema
	gMeta := reg("m", sA, map[string]any{"metadata": map[string]any{"properties": map[string]string{"k": "v"}}})
	if gMeta == gA {
		t.Fatal("another data contract kept the guid")
	}
	// Every read names the same guid; a second registry (another broker)
	// derives the same.
	other := newRegistry(t, cli).Handler()
	for _, path := range []string{"/subjects/a/versions/1", "/schemas/ids/1", "/subjects/b/versions/latest"} {
		if g := guidAt(t, get(path)); g != gA {
			t.Fatalf("GET %s guid %s, want %s", path, g, gA)
		}
		_, body, _ := call(t, other, "GET", path, "")
		if g := guidAt(t, body); g != gA {
			t.Fatalf("other registry GET %s guid %s, want %s", path, g, gA)
		}
	}
	if g := guidAt(t, get("/schemas/ids/1?subject=:.prod:")); g != gA {
		t.Fatalf("guid in .prod %s, want %s", g, gA)
	}
	status, body, _ := call(t, h, "POST", "/subjects/a", schemaJSON(t, sAB, nil))
	if status != 200 || guidAt(t, body) != gAB {
		t.Fatalf("lookup = %d %s, want guid %s", status, body, gAB)
	}

	runSteps(t, r, []step{
		{name: "by guid", method: "GET", path: "/schemas/guids/" + gAB, status: 200, want: `{"schema":` + jsonString(sAB) + `,"guid":"` + gAB + `"}`},
		{name: "by guid, upper case", method: "GET", path: "/schemas/guids/" + strings.ToUpper(gAB), status: 200, contains: `"guid":"` + gAB + `"`},
		{name: "ids in every context", method: "GET", path: "/schemas/guids/" + gA + "/ids", status: 200, want: `[{"context":".","id":1},{"context":".prod","id":1}]`},
		{name: "ids of one context", method: "GET", path: "/schemas/guids/" + gAB + "/ids", status: 200, want: `[{"context":".","id":2}]`},
		{name: "unknown guid", method: "GET", path: "/schemas/guids/00000000-0000-8000-8000-000000000000", status: 404, code: 40403},
		{name: "unknown guid ids", method: "GET", path: "/schemas/guids/00000000-0000-8000-8000-000000000000/ids", status: 404, code: 40403},
		{name: "not a uuid", method: "GET", path: "/schemas/guids/xyz", status: 404, code: 40403},
		{name: "not hex", method: "GET", path: "/schemas/guids/zzzzzzzz-0000-8000-8000-000000000000", status: 404, code: 40403},
		{name: "soft delete keeps the guid", method: "DELETE", path: "/subjects/m", status: 200},
		{name: "soft-deleted still found", method: "GET", path: "/schemas/guids/" + gMeta + "/ids", status: 200, want: `[{"context":".","id":3}]`},
		{name: "permanent delete", method: "DELETE", path: "/subjects/m?permanent=true", status: 200},
		{name: "gone after permanent delete", method: "GET", path: "/schemas/guids/" + gMeta, status: 404, code: 40403},
		{name: "context path", method: "GET", path: "/contexts/.prod/schemas/guids/" + gA + "/ids", status: 200, contains: `{"context":".prod","id":1}`},
	})

	t.Run("franz-go", func(t *testing.T) {
		cl := newSRClient(t, r)
		ctx := testCtx(t)
		ss, err := cl.SchemaByGUID(ctx, gAB)
		if err != nil || ss.Schema.Schema != sAB || ss.GUID != gAB {
			t.Fatalf("SchemaByGUID = %+v, %v", ss, err)
		}
		ids, err := cl.SchemaIDsByGUID(ctx, gA)
		if err != nil || len(ids) != 2 || ids[0] != (sr.ContextID{Context: ".", ID: 1}) || ids[1] != (sr.ContextID{Context: ".prod", ID: 1}) {
			t.Fatalf("SchemaIDsByGUID = %+v, %v", ids, err)
		}
		got, err := cl.SchemaByVersion(ctx, "a", 2)
		if err != nil || got.GUID != gAB {
			t.Fatalf("SchemaByVersion guid = %+v, %v", got, err)
		}
		created, err := cl.CreateSchema(ctx, "n", sr.Schema{Schema: sBase})
		if err != nil || !uuidRE.MatchString(created.GUID) {
			t.Fatalf("CreateSchema guid = %+v, %v", created, err)
		}
	})
}

func TestGUIDOf(t *testing.T) {
	h := identityHash("AVRO", "x", nil, nil, nil)
	g := guidOf(h)
	if !uuidRE.MatchString(g) {
		t.Fatalf("guidOf = %q", g)
	}
	if p, ok := hashPrefixOf(g); !ok || p != h[:12] {
		t.Fatalf("hashPrefixOf(%s) = %q, %v; want %s", g, p, ok, h[:12])
	}
	for _, bad := range []string{"", "abc", "0000000000000000000000000000000000000", "00000000-0000-0000-0000-00000000000g"} {
		if _, ok := hashPrefixOf(bad); ok {
			t.Errorf("hashPrefixOf(%q) accepted", bad)
		}
	}
	if guidOf("") != "" || guidOf("zz") != "" {
		t.Fatal("guidOf of a bad hash is not empty")
	}
}
