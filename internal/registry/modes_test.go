package registry

import "testing"

func TestImportMode(t *testing.T) {
	r := newRegistry(t, startEtcd(t))
	reg := func(s string, extra map[string]any) string { return schemaJSON(t, s, extra) }
	runSteps(t, r, []step{
		{name: "explicit id outside import", method: "POST", path: "/subjects/s/versions", body: reg(sA, map[string]any{"id": 100}), status: 422, code: 42205},
		{name: "import on empty registry", method: "PUT", path: "/mode", body: `{"mode":"IMPORT"}`, status: 200, want: `{"mode":"IMPORT"}`},
		{name: "import id and version", method: "POST", path: "/subjects/s/versions", body: reg(sA, map[string]any{"id": 100, "version": 5}), status: 200, contains: `"version":5,"id":100`},
		{name: "import needs an id", method: "POST", path: "/subjects/s/versions", body: reg(sAB, nil), status: 422, code: 42205, contains: "is not in read-write mode"},
		{name: "import needs an id even for a known schema", method: "POST", path: "/subjects/s/versions", body: reg(sA, nil), status: 422, code: 42205},
		{name: "import skips compatibility", method: "POST", path: "/subjects/s/versions", body: reg(sC, map[string]any{"id": 7, "version": 2}), status: 200, contains: `"version":2,"id":7`},
		{name: "same id other schema", method: "POST", path: "/subjects/s/versions", body: reg(sAB, map[string]any{"id": 100, "version": 6}), status: 422, code: 42205},
		{name: "version taken", method: "POST", path: "/subjects/s/versions", body: reg(sAB, map[string]any{"id": 101, "version": 5}), status: 422, code: 42202},
		{name: "same import again", method: "POST", path: "/subjects/s/versions", body: reg(sA, map[string]any{"id": 100, "version": 5}), status: 200, contains: `"version":5,"id":100`},
		{name: "versions sorted", method: "GET", path: "/subjects/s/versions", status: 200, want: `[2,5]`},
		{name: "by imported id", method: "GET", path: "/schemas/ids/100/versions", status: 200, want: `[{"subject":"s","version":5}]`},
		{name: "leave import", method: "PUT", path: "/mode", body: `{"mode":"READWRITE"}`, status: 200},
		{name: "counter past imported ids", method: "POST", path: "/subjects/t/versions", body: reg(sAB, nil), status: 200, contains: `"version":1,"id":101`},
		{name: "next version only", method: "POST", path: "/subjects/t/versions", body: reg(sBase, map[string]any{"version": 5}), status: 422, code: 42202},
		{name: "subject import on non-empty subject", method: "PUT", path: "/mode/t", body: `{"mode":"IMPORT"}`, status: 422, code: 42205},
		{name: "subject import on empty subject", method: "PUT", path: "/mode/u", body: `{"mode":"IMPORT"}`, status: 200},
		{name: "subject import", method: "POST", path: "/subjects/u/versions", body: reg(sBase, map[string]any{"id": 50, "version": 3}), status: 200, contains: `"version":3,"id":50`},
		{name: "subject import needs an id", method: "POST", path: "/subjects/u/versions", body: reg(sAB, nil), status: 422, code: 42205},
		{name: "other subjects stay read-write", method: "POST", path: "/subjects/w/versions", body: reg(sAB, nil), status: 200},
	})
}

func TestContexts(t *testing.T) {
	r := newRegistry(t, startEtcd(t))
	reg := func(s string, extra map[string]any) string { return schemaJSON(t, s, extra) }
	runSteps(t, r, []step{
		{name: "default context", method: "POST", path: "/subjects/s/versions", body: reg(sA, nil), status: 200, contains: `"id":1`},
		{name: "other context has its own ids", method: "POST", path: "/subjects/:.prod:s/versions", body: reg(sAB, nil), status: 200, contains: `"version":1,"id":1`},
		{name: "same schema other context", method: "POST", path: "/subjects/:.prod:t/versions", body: reg(sA, nil), status: 200, contains: `"id":2`},
		{name: "explicit default context", method: "GET", path: "/subjects/:.:s/versions", status: 200, want: `[1]`},
		{name: "subjects qualified", method: "GET", path: "/subjects", status: 200, want: `[":.prod:s",":.prod:t","s"]`},
		{name: "subjects of a context", method: "GET", path: "/subjects?subjectPrefix=:.prod:", status: 200, want: `[":.prod:s",":.prod:t"]`},
		{name: "contexts", method: "GET", path: "/contexts", status: 200, want: `[".",".prod"]`},
		{name: "id in default context", method: "GET", path: "/schemas/ids/1/schema", status: 200, want: sA},
		{name: "id in prod context", method: "GET", path: "/schemas/ids/1/schema?subject=:.prod:", status: 200, want: sAB},
		{name: "context path", method: "GET", path: "/contexts/.prod/subjects/s/versions/1", status: 200, contains: `"subject":":.prod:s"`},
		{name: "context path ids", method: "GET", path: "/contexts/.prod/schemas/ids/2/subjects", status: 200, want: `[":.prod:t"]`},
		{name: "context path subjects", method: "GET", path: "/contexts/.prod/subjects", status: 200, want: `[":.prod:s",":.prod:t"]`},
		{name: "context config", method: "PUT", path: "/contexts/.prod/config", body: `{"compatibility":"NONE"}`, status: 200},
		{name: "context config read", method: "GET", path: "/config/:.prod:", status: 200, want: `{"compatibilityLevel":"NONE"}`},
		{name: "context config applies", method: "POST", path: "/subjects/:.prod:s/versions", body: reg(sC, nil), status: 200, contains: `"version":2`},
		{name: "default context still backward", method: "POST", path: "/subjects/s/versions", body: reg(sC, nil), status: 409, code: 409},
		{name: "reference within context", method: "POST", path: "/subjects/:.prod:base/versions", body: reg(sBase, nil), status: 200},
		{name: "unqualified reference resolves in context", method: "POST", path: "/subjects/:.prod:user/versions", body: reg(sUser, map[string]any{"references": []map[string]any{{"name": "base.x", "subject": "base", "version": 1}}}), status: 200},
		{name: "referenced by in context", method: "GET", path: "/subjects/:.prod:base/versions/1/referencedby", status: 200, contains: `[`},
		{name: "reference outside context does not resolve", method: "POST", path: "/subjects/user/versions", body: reg(sUser, map[string]any{"references": []map[string]any{{"name": "base.x", "subject": "base", "version": 1}}}), status: 422, code: 42201},
	})
}

// TestDataContractLayering: metadata and rule sets layer default, the
// schema's own (or the previous version's) and override.
func TestDataContractLayering(t *testing.T) {
	r := newRegistry(t, startEtcd(t))
	ctx := testCtx(t)
	rule := func(name, expr string) Rule {
		return Rule{Name: name, Kind: "CONDITION", Mode: "WRITE", Type: "CEL", Expr: expr, OnFailure: "ERROR"}
	}
	if _, err := r.SetConfig(ctx, "s", Config{
		Compatibility:    CompatNone,
		DefaultMetadata:  &Metadata{Properties: map[string]string{"owner": "default", "tier": "gold"}},
		OverrideMetadata: &Metadata{Properties: map[string]string{"owner": "platform"}, Sensitive: []string{"ssn"}},
		DefaultRuleSet:   &RuleSet{DomainRules: []Rule{rule("positive", "message.a > 0"), rule("named", "true")}},
		OverrideRuleSet:  &RuleSet{DomainRules: []Rule{rule("named", "message.a != ''")}},
	}); err != nil {
		t.Fatal(err)
	}
	ss, err := r.Register(ctx, RegisterRequest{Subject: "s", Schema: sA,
		Metadata: &Metadata{Properties: map[string]string{"tier": "silver", "owner": "me"}, Sensitive: []string{"name"}}})
	if err != nil {
		t.Fatal(err)
	}
	md, rs := ss.Metadata, ss.RuleSet
	if md == nil || md.Properties["owner"] != "platform" || md.Properties["tier"] != "silver" || len(md.Sensitive) != 2 {
		t.Fatalf("metadata %+v", md)
	}
	if rs == nil || len(rs.DomainRules) != 2 || rs.DomainRules[1].Expr != "message.a != ''" {
		t.Fatalf("rule set %+v", rs)
	}
	// A new version without metadata inherits the previous version's.
	ss2, err := r.Register(ctx, RegisterRequest{Subject: "s", Schema: sAB})
	if err != nil {
		t.Fatal(err)
	}
	if ss2.Metadata == nil || ss2.Metadata.Properties["tier"] != "silver" {
		t.Fatalf("inherited metadata %+v", ss2.Metadata)
	}
	// Registering the latest again (same effective contract) is no new version.
	ss3, err := r.Register(ctx, RegisterRequest{Subject: "s", Schema: sAB})
	if err != nil || ss3.Version != ss2.Version || ss3.ID != ss2.ID {
		t.Fatalf("re-register = %+v, %v; want version %d", ss3, err, ss2.Version)
	}
	// Another contract makes another schema id.
	ss4, err := r.Register(ctx, RegisterRequest{Subject: "s", Schema: sAB, Metadata: &Metadata{Properties: map[string]string{"tier": "bronze"}}})
	if err != nil || ss4.ID == ss2.ID || ss4.Version != 3 {
		t.Fatalf("new contract = %+v, %v", ss4, err)
	}
	_, info, err := r.SchemaByID(ctx, ss4.ID)
	if err != nil || info.Metadata.Properties["tier"] != "bronze" || info.RuleSet == nil {
		t.Fatalf("SchemaByID = %+v, %v", info, err)
	}
}

// TestRulesStoredVerbatim keeps rule fields the registry does not know.
func TestRulesStoredVerbatim(t *testing.T) {
	r := newRegistry(t, startEtcd(t))
	rs := map[string]any{"domainRules": []any{map[string]any{"name": "r1", "kind": "CONDITION", "mode": "WRITE", "type": "CEL",
		"expr": "true", "customField": map[string]any{"a": 1}}}}
	runSteps(t, r, []step{
		{name: "register", method: "POST", path: "/subjects/v/versions", body: schemaJSON(t, sA, map[string]any{"ruleSet": rs}), status: 200},
		{name: "unknown field served back", method: "GET", path: "/subjects/v/versions/1", status: 200, contains: `"customField":{"a":1}`},
	})
}

// TestCompatibilityGroup checks a new schema only against versions whose
// compatibilityGroup metadata property has the same value.
func TestCompatibilityGroup(t *testing.T) {
	r := newRegistry(t, startEtcd(t))
	major := func(v string) map[string]any {
		return map[string]any{"metadata": map[string]any{"properties": map[string]any{"app.major": v}}}
	}
	runSteps(t, r, []step{
		{name: "group config", method: "PUT", path: "/config/g", body: `{"compatibility":"BACKWARD","compatibilityGroup":"app.major"}`, status: 200},
		{name: "v1 in major 1", method: "POST", path: "/subjects/g/versions", body: schemaJSON(t, sA, major("1")), status: 200, contains: `"version":1`},
		{name: "incompatible in major 2 is another group", method: "POST", path: "/subjects/g/versions", body: schemaJSON(t, sC, major("2")), status: 200, contains: `"version":2`},
		{name: "incompatible within major 1", method: "POST", path: "/subjects/g/versions", body: schemaJSON(t, sC, major("1")), status: 409, code: 409},
		{name: "compatible within major 2", method: "POST", path: "/compatibility/subjects/g/versions", body: schemaJSON(t, sC, major("2")), status: 200, contains: `"is_compatible":true`},
		{name: "incompatible within major 2", method: "POST", path: "/compatibility/subjects/g/versions", body: schemaJSON(t, sA, major("2")), status: 200, contains: `"is_compatible":false`},
	})
}

// TestFetchMaxID answers ?fetchMaxId=true with the context's highest id.
func TestFetchMaxID(t *testing.T) {
	r := newRegistry(t, startEtcd(t))
	runSteps(t, r, []step{
		{name: "first", method: "POST", path: "/subjects/m/versions", body: schemaJSON(t, sA, nil), status: 200},
		{name: "second", method: "POST", path: "/subjects/n/versions", body: schemaJSON(t, sC, nil), status: 200},
		{name: "max id", method: "GET", path: "/schemas/ids/1?fetchMaxId=true", status: 200, contains: `"maxId":2`},
		{name: "without", method: "GET", path: "/schemas/ids/1", status: 200, want: `{"schema":"{\"fields\":{\"a\":\"string\"},\"required\":[\"a\"]}"}`},
	})
}
