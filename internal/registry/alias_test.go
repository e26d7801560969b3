package registry

import (
	"testing"
)

// TestSubjectAlias: lookups of a subject whose config sets an alias read
// the aliased subject; writes stay on the subject named.
func TestSubjectAlias(t *testing.T) {
	r := newRegistry(t, startEtcd(t))
	reg := func(s string, extra map[string]any) string { return schemaJSON(t, s, extra) }
	runSteps(t, r, []step{
		{name: "target v1", method: "POST", path: "/subjects/target/versions", body: reg(sA, nil), status: 200, contains: `"version":1,"id":1`},
		{name: "target v2", method: "POST", path: "/subjects/target/versions", body: reg(sAB, nil), status: 200, contains: `"version":2,"id":2`},
		{name: "alias before it is set", method: "GET", path: "/subjects/al/versions", status: 404, code: 40401},
		{name: "set alias", method: "PUT", path: "/config/al", body: `{"alias":"target"}`, status: 200, want: `{"alias":"target"}`},
		{name: "alias config read", method: "GET", path: "/config/al", status: 200, want: `{"alias":"target"}`},
		{name: "versions follow alias", method: "GET", path: "/subjects/al/versions", status: 200, want: `[1,2]`},
		{name: "latest follows alias", method: "GET", path: "/subjects/al/versions/latest", status: 200, contains: `"subject":"target","version":2,"id":2`},
		{name: "version follows alias", method: "GET", path: "/subjects/al/versions/1", status: 200, contains: `"subject":"target","version":1,"id":1`},
		{name: "raw schema follows alias", method: "GET", path: "/subjects/al/versions/1/schema", status: 200, want: sA},
		{name: "missing version of alias", method: "GET", path: "/subjects/al/versions/7", status: 404, code: 40402},
		{name: "referencedby follows alias", method: "GET", path: "/subjects/al/versions/1/referencedby", status: 200, want: `[]`},
		{name: "lookup follows alias", method: "POST", path: "/subjects/al", body: reg(sA, nil), status: 200, contains: `"subject":"target","version":1,"id":1`},
		{name: "lookup of unknown schema", method: "POST", path: "/subjects/al", body: reg(sC, nil), status: 404, code: 40403},
		{name: "compatibility follows alias", method: "POST", path: "/compatibility/subjects/al/versions/latest", body: reg(sC, nil), status: 200, want: `{"is_compatible":false}`},
		{name: "compatibility against all versions of target", method: "POST", path: "/compatibility/subjects/al/versions", body: reg(sAB, nil), status: 200, want: `{"is_compatible":true}`},
		{name: "target config NONE", method: "PUT", path: "/config/target", body: `{"compatibility":"NONE"}`, status: 200},
		{name: "compatibility uses target's config", method: "POST", path: "/compatibility/subjects/al/versions", body: reg(sC, nil), status: 200, want: `{"is_compatible":true}`},
		{name: "alias's own level is not used", method: "PUT", path: "/config/al", body: `{"compatibility":"FULL"}`, status: 200},
		{name: "alias kept when level set", method: "GET", path: "/config/al", status: 200, want: `{"compatibilityLevel":"FULL","alias":"target"}`},
		{name: "still target's NONE", method: "POST", path: "/compatibility/subjects/al/versions", body: reg(sC, nil), status: 200, want: `{"is_compatible":true}`},
		{name: "target config back", method: "DELETE", path: "/config/target", status: 200},

		{name: "register under alias stays on alias", method: "POST", path: "/subjects/al/versions", body: reg(sC, nil), status: 200, contains: `"version":1,"id":3`},
		{name: "target unchanged", method: "GET", path: "/subjects/target/versions", status: 200, want: `[1,2]`},
		{name: "alias subject listed", method: "GET", path: "/subjects", status: 200, want: `["al","target"]`},
		{name: "its versions hidden while aliased", method: "GET", path: "/subjects/al/versions", status: 200, want: `[1,2]`},
		{name: "register under target", method: "POST", path: "/subjects/target/versions", body: reg(sBase, nil), status: 200, contains: `"version":3`},
		{name: "alias sees target's new version", method: "GET", path: "/subjects/al/versions/latest", status: 200, contains: `"subject":"target","version":3`},
		{name: "delete stays on alias", method: "DELETE", path: "/subjects/al", status: 200, want: `[1]`},
		{name: "target survives", method: "GET", path: "/subjects/al/versions", status: 200, want: `[1,2,3]`},
		{name: "alias removed", method: "DELETE", path: "/config/al", status: 200, want: `{"compatibilityLevel":"FULL","alias":"target"}`},
		{name: "no alias: own soft-deleted subject", method: "GET", path: "/subjects/al/versions", status: 404, code: 40401},

		{name: "alias of an alias is one hop", method: "PUT", path: "/config/a2", body: `{"alias":"a3"}`, status: 200},
		{name: "a3 aliases target", method: "PUT", path: "/config/a3", body: `{"alias":"target"}`, status: 200},
		{name: "a2 reads a3 itself", method: "GET", path: "/subjects/a2/versions", status: 404, code: 40401},
		{name: "self alias", method: "PUT", path: "/config/self", body: `{"alias":"self"}`, status: 200},
		{name: "self alias reads itself", method: "GET", path: "/subjects/self/versions", status: 404, code: 40401},
		{name: "alias to missing subject", method: "PUT", path: "/config/dangling", body: `{"alias":"nobody"}`, status: 200},
		{name: "dangling alias", method: "GET", path: "/subjects/dangling/versions/latest", status: 404, code: 40401},
		{name: "bad alias", method: "PUT", path: "/config/bad", body: `{"alias":":.ctx"}`, status: 422, code: 422},
		{name: "control character alias", method: "PUT", path: "/config/bad", body: `{"alias":"a\u0001"}`, status: 422, code: 422},

		{name: "context subject", method: "POST", path: "/subjects/:.prod:orders/versions", body: reg(sAB, nil), status: 200, contains: `"version":1`},
		{name: "qualified alias into a context", method: "PUT", path: "/config/orders", body: `{"alias":":.prod:orders"}`, status: 200},
		{name: "reads the context's subject", method: "GET", path: "/subjects/orders/versions/1", status: 200, contains: `"subject":":.prod:orders"`},
		{name: "unqualified alias stays in its context", method: "PUT", path: "/config/:.prod:o2", body: `{"alias":"orders"}`, status: 200},
		{name: "context alias reads its context", method: "GET", path: "/subjects/:.prod:o2/versions", status: 200, want: `[1]`},
		{name: "context path alias", method: "GET", path: "/contexts/.prod/subjects/o2/versions/latest", status: 200, contains: `"subject":":.prod:orders"`},
	})
}

// TestSubjectAliasLatestForSubject: the broker's produce-time read follows
// an alias too.
func TestSubjectAliasLatestForSubject(t *testing.T) {
	r := newRegistry(t, startEtcd(t))
	ctx := testCtx(t)
	if _, err := r.Register(ctx, RegisterRequest{Subject: "target", Schema: sA}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.SetConfig(ctx, "topic-value", Config{Alias: "target"}); err != nil {
		t.Fatal(err)
	}
	_, ss, err := r.LatestForSubject(ctx, "topic-value")
	if err != nil || ss.Subject != "target" || ss.ID != 1 {
		t.Fatalf("LatestForSubject = %+v, %v", ss, err)
	}
}
