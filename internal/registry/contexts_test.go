package registry

import (
	"errors"
	"testing"
)

func TestDeleteContext(t *testing.T) {
	r := newRegistry(t, startEtcd(t))
	reg := func(s string, extra map[string]any) string { return schemaJSON(t, s, extra) }
	runSteps(t, r, []step{
		{name: "default", method: "POST", path: "/subjects/s/versions", body: reg(sA, nil), status: 200},
		{name: "prod s", method: "POST", path: "/subjects/:.prod:s/versions", body: reg(sA, nil), status: 200, contains: `"id":1`},
		{name: "prod t", method: "POST", path: "/subjects/:.prod:t/versions", body: reg(sAB, nil), status: 200, contains: `"id":2`},
		{name: "prod config", method: "PUT", path: "/config/:.prod:", body: `{"compatibility":"NONE"}`, status: 200},
		{name: "prod subject mode", method: "PUT", path: "/mode/:.prod:t", body: `{"mode":"READWRITE"}`, status: 200},
		{name: "not empty", method: "DELETE", path: "/contexts/.prod", status: 422, code: 42211},
		{name: "unknown context", method: "DELETE", path: "/contexts/.nope", status: 404, code: 40401},
		{name: "bad context name", method: "DELETE", path: "/contexts/.a:b", status: 404, code: 40401},
		{name: "soft delete s", method: "DELETE", path: "/subjects/:.prod:s", status: 200},
		{name: "soft delete t", method: "DELETE", path: "/subjects/:.prod:t", status: 200},
		{name: "soft-deleted subjects keep it", method: "DELETE", path: "/contexts/.prod", status: 422, code: 42211},
		{name: "permanent s", method: "DELETE", path: "/subjects/:.prod:s?permanent=true", status: 200},
		{name: "permanent t", method: "DELETE", path: "/subjects/:.prod:t?permanent=true", status: 200},
		{name: "delete", method: "DELETE", path: "/contexts/.prod", status: 204},
		{name: "gone", method: "DELETE", path: "/contexts/.prod", status: 404, code: 40401},
		{name: "its config gone", method: "GET", path: "/config/:.prod:", status: 404, code: 40408},
		{name: "contexts", method: "GET", path: "/contexts", status: 200, want: `["."]`},
		{name: "default untouched", method: "GET", path: "/subjects/s/versions/1", status: 200, contains: `"id":1`},
		{name: "ids not reused", method: "POST", path: "/subjects/:.prod:s/versions", body: reg(sA, nil), status: 200, contains: `"version":1,"id":3`},
		{name: "name without the dot", method: "DELETE", path: "/contexts/prod", status: 422, code: 42211},
		{name: "config-only context", method: "PUT", path: "/config/:.cfg:", body: `{"compatibility":"FULL"}`, status: 200},
		{name: "config-only context deleted", method: "DELETE", path: "/contexts/cfg", status: 204},
		{name: "config-only context config gone", method: "GET", path: "/config/:.cfg:", status: 404, code: 40408},
	})
	// "/contexts/." is a dot segment HTTP routing cleans away; the default
	// context is refused by name.
	if err := r.DeleteContext(testCtx(t), "."); !errors.Is(err, ErrNotPermitted) {
		t.Fatalf("DeleteContext(.) = %v, want ErrNotPermitted", err)
	}
}

// TestDeleteContextRacingRegistration: a registration that reuses a schema
// id of an empty context while the context is deleted must not point at
// the deleted record; it starts over and gets a new id.
func TestDeleteContextRacingRegistration(t *testing.T) {
	ctx := testCtx(t)
	cli := startEtcd(t)
	r, other := newRegistry(t, cli), newRegistry(t, cli)
	if _, err := r.Register(ctx, RegisterRequest{Subject: ":.r:a", Schema: sA}); err != nil {
		t.Fatal(err)
	}
	for _, perm := range []bool{false, true} {
		if _, err := r.DeleteSubject(ctx, ":.r:a", perm); err != nil {
			t.Fatal(err)
		}
	}
	var attempts []int
	r.beforeCommit = func(attempt int) {
		attempts = append(attempts, attempt)
		if attempt == 0 {
			if err := other.DeleteContext(ctx, ".r"); err != nil {
				t.Error(err)
			}
		}
	}
	ss, err := r.Register(ctx, RegisterRequest{Subject: ":.r:b", Schema: sA})
	if err != nil || ss.ID != 2 || len(attempts) != 2 {
		t.Fatalf("Register = %+v, %v after %v attempts; want id 2 on the second", ss, err, attempts)
	}
	if got, err := r.Version(ctx, ":.r:b", 1, false); err != nil || got.ID != 2 || got.Schema != sA {
		t.Fatalf("Version = %+v, %v", got, err)
	}
}

// TestFranzGoDeleteContext deletes an emptied context through franz-go.
func TestFranzGoDeleteContext(t *testing.T) {
	r := newRegistry(t, startEtcd(t))
	cl := newSRClient(t, r)
	ctx := testCtx(t)
	if _, err := r.Register(ctx, RegisterRequest{Subject: ":.team:x", Schema: sA}); err != nil {
		t.Fatal(err)
	}
	if err := cl.DeleteContext(ctx, ".team"); !isCode(err, 42211) {
		t.Fatalf("DeleteContext of a used context = %v, want 42211", err)
	}
	for _, perm := range []bool{false, true} {
		if _, err := r.DeleteSubject(ctx, ":.team:x", perm); err != nil {
			t.Fatal(err)
		}
	}
	if err := cl.DeleteContext(ctx, ".team"); err != nil {
		t.Fatal(err)
	}
	if err := cl.DeleteContext(ctx, ".team"); !isCode(err, 40401) {
		t.Fatalf("DeleteContext again = %v, want 40401", err)
	}
}
