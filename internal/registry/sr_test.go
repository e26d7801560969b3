package registry

import (
	"context"
	"errors"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"
)

// TestFranzGoClient drives every endpoint through franz-go's sr client, as
// serializers and tools built on it would.
func TestFranzGoClient(t *testing.T) {
	r := newRegistry(t, startEtcd(t))
	srv := httptest.NewServer(r.Handler())
	t.Cleanup(srv.Close)
	cl, err := sr.NewClient(sr.URLs(srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	wantCode := func(t *testing.T, err error, code int) {
		t.Helper()
		var re *sr.ResponseError
		if !errors.As(err, &re) || re.ErrorCode != code {
			t.Fatalf("err = %v, want error_code %d", err, code)
		}
	}

	t.Run("types", func(t *testing.T) {
		types, err := cl.SupportedTypes(ctx)
		if err != nil || !slices.Contains(types, sr.TypeAvro) || !slices.Contains(types, sr.TypeJSON) {
			t.Fatalf("SupportedTypes = %v, %v", types, err)
		}
	})
	var a sr.SubjectSchema
	t.Run("register and read", func(t *testing.T) {
		if a, err = cl.CreateSchema(ctx, "t-value", sr.Schema{Schema: sA}); err != nil {
			t.Fatal(err)
		}
		if a.ID != 1 || a.Version != 1 || a.Subject != "t-value" {
			t.Fatalf("CreateSchema = %+v", a)
		}
		id, err := cl.RegisterSchema(ctx, "t-value", sr.Schema{Schema: sAB}, -1, -1)
		if err != nil || id != 2 {
			t.Fatalf("RegisterSchema = %d, %v", id, err)
		}
		got, err := cl.LookupSchema(ctx, "t-value", sr.Schema{Schema: sA})
		if err != nil || got.ID != 1 || got.Version != 1 {
			t.Fatalf("LookupSchema = %+v, %v", got, err)
		}
		_, err = cl.LookupSchema(ctx, "t-value", sr.Schema{Schema: sBase})
		wantCode(t, err, 40403)
		subs, err := cl.Subjects(ctx)
		if err != nil || !slices.Equal(subs, []string{"t-value"}) {
			t.Fatalf("Subjects = %v, %v", subs, err)
		}
		s, err := cl.SchemaByID(ctx, 1)
		if err != nil || s.Schema != sA || s.Type != sr.TypeAvro {
			t.Fatalf("SchemaByID = %+v, %v", s, err)
		}
		text, err := cl.SchemaTextByID(ctx, 2)
		if err != nil || text != sAB {
			t.Fatalf("SchemaTextByID = %q, %v", text, err)
		}
		subs, err = cl.SubjectsByID(ctx, 1)
		if err != nil || !slices.Equal(subs, []string{"t-value"}) {
			t.Fatalf("SubjectsByID = %v, %v", subs, err)
		}
		svs, err := cl.SchemaVersionsByID(ctx, 2)
		if err != nil || len(svs) != 1 || svs[0] != (sr.SubjectVersion{Subject: "t-value", Version: 2}) {
			t.Fatalf("SchemaVersionsByID = %v, %v", svs, err)
		}
		vs, err := cl.SubjectVersions(ctx, "t-value")
		if err != nil || !slices.Equal(vs, []int{1, 2}) {
			t.Fatalf("SubjectVersions = %v, %v", vs, err)
		}
		latest, err := cl.SchemaByVersion(ctx, "t-value", -1)
		if err != nil || latest.Version != 2 || latest.ID != 2 || latest.Schema.Schema != sAB {
			t.Fatalf("SchemaByVersion = %+v, %v", latest, err)
		}
		text, err = cl.SchemaTextByVersion(ctx, "t-value", 1)
		if err != nil || text != sA {
			t.Fatalf("SchemaTextByVersion = %q, %v", text, err)
		}
		all, err := cl.AllSchemas(ctx)
		if err != nil || len(all) != 2 {
			t.Fatalf("AllSchemas = %+v, %v", all, err)
		}
		ss, err := cl.Schemas(ctx, "t-value")
		if err != nil || len(ss) != 2 || ss[0].Version != 1 {
			t.Fatalf("Schemas = %+v, %v", ss, err)
		}
		us, err := cl.SchemaUsagesByID(ctx, 1)
		if err != nil || len(us) != 1 || us[0].Subject != "t-value" {
			t.Fatalf("SchemaUsagesByID = %+v, %v", us, err)
		}
		_, err = cl.SchemaByVersion(ctx, "nope", 1)
		wantCode(t, err, 40401)
		_, err = cl.SchemaByID(ctx, 42)
		wantCode(t, err, 40403)
	})
	t.Run("compatibility", func(t *testing.T) {
		_, err := cl.CreateSchema(ctx, "t-value", sr.Schema{Schema: sC})
		wantCode(t, err, 409)
		res, err := cl.CheckCompatibility(sr.WithParams(ctx, sr.Verbose), "t-value", -1, sr.Schema{Schema: sC})
		if err != nil || res.Is || len(res.Messages) == 0 {
			t.Fatalf("CheckCompatibility latest = %+v, %v", res, err)
		}
		res, err = cl.CheckCompatibility(ctx, "t-value", -2, sr.Schema{Schema: sAB})
		if err != nil || !res.Is {
			t.Fatalf("CheckCompatibility all = %+v, %v", res, err)
		}
		set := cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatFullTransitive}, "t-value")
		if set[0].Err != nil || set[0].Level != sr.CompatFullTransitive {
			t.Fatalf("SetCompatibility = %+v", set[0])
		}
		got := cl.Compatibility(ctx, "t-value", sr.GlobalSubject)
		if got[0].Err != nil || got[0].Level != sr.CompatFullTransitive || got[1].Err != nil || got[1].Level != sr.CompatBackward {
			t.Fatalf("Compatibility = %+v", got)
		}
		if res := cl.ResetCompatibility(ctx, "t-value"); res[0].Err != nil {
			t.Fatalf("ResetCompatibility = %+v", res[0])
		}
		got = cl.Compatibility(ctx, "t-value")
		wantCode(t, got[0].Err, 40408)
		got = cl.Compatibility(sr.WithParams(ctx, sr.DefaultToGlobal), "t-value")
		if got[0].Err != nil || got[0].Level != sr.CompatBackward {
			t.Fatalf("Compatibility defaultToGlobal = %+v", got[0])
		}
	})
	t.Run("modes", func(t *testing.T) {
		m := cl.SetMode(ctx, sr.ModeReadOnly, "t-value")
		if m[0].Err != nil || m[0].Mode != sr.ModeReadOnly {
			t.Fatalf("SetMode = %+v", m[0])
		}
		_, err := cl.CreateSchema(ctx, "t-value", sr.Schema{Schema: sBase})
		wantCode(t, err, 42205)
		m = cl.Mode(ctx, "t-value", sr.GlobalSubject)
		if m[0].Mode != sr.ModeReadOnly || m[1].Mode != sr.ModeReadWrite {
			t.Fatalf("Mode = %+v", m)
		}
		if m := cl.ResetMode(ctx, "t-value"); m[0].Err != nil {
			t.Fatalf("ResetMode = %+v", m[0])
		}
		m = cl.SetMode(ctx, sr.ModeImport)
		wantCode(t, m[0].Err, 42205)
		m = cl.SetMode(sr.WithParams(ctx, sr.Force), sr.ModeImport)
		if m[0].Err != nil || m[0].Mode != sr.ModeImport {
			t.Fatalf("SetMode IMPORT force = %+v", m[0])
		}
		imp, err := cl.CreateSchemaWithIDAndVersion(ctx, "imported", sr.Schema{Schema: sBase}, 500, 3)
		if err != nil || imp.ID != 500 || imp.Version != 3 {
			t.Fatalf("CreateSchemaWithIDAndVersion = %+v, %v", imp, err)
		}
		if m := cl.SetMode(ctx, sr.ModeReadWrite); m[0].Err != nil {
			t.Fatal(m[0].Err)
		}
	})
	t.Run("references", func(t *testing.T) {
		base, err := cl.CreateSchema(ctx, "base", sr.Schema{Schema: sBase})
		if err != nil {
			t.Fatal(err)
		}
		user, err := cl.CreateSchema(ctx, "user", sr.Schema{Schema: sUser,
			References: []sr.SchemaReference{{Name: "base.x", Subject: "base", Version: base.Version}}})
		if err != nil {
			t.Fatal(err)
		}
		refs, err := cl.SchemaReferences(ctx, "base", base.Version)
		if err != nil || len(refs) != 1 || refs[0].ID != user.ID || len(refs[0].References) != 1 {
			t.Fatalf("SchemaReferences = %+v, %v", refs, err)
		}
		wantCode(t, cl.DeleteSchema(ctx, "base", base.Version, sr.SoftDelete), 42206)
	})
	t.Run("deletes", func(t *testing.T) {
		wantCode(t, cl.DeleteSchema(ctx, "t-value", 2, sr.HardDelete), 40407)
		if err := cl.DeleteSchema(ctx, "t-value", 2, sr.SoftDelete); err != nil {
			t.Fatal(err)
		}
		vs, err := cl.SubjectVersions(sr.WithParams(ctx, sr.ShowDeleted), "t-value")
		if err != nil || !slices.Equal(vs, []int{1, 2}) {
			t.Fatalf("SubjectVersions deleted = %v, %v", vs, err)
		}
		if err := cl.DeleteSchema(ctx, "t-value", 2, sr.HardDelete); err != nil {
			t.Fatal(err)
		}
		_, err = cl.DeleteSubject(ctx, "t-value", sr.HardDelete)
		wantCode(t, err, 40405)
		vs, err = cl.DeleteSubject(ctx, "t-value", sr.SoftDelete)
		if err != nil || !slices.Equal(vs, []int{1}) {
			t.Fatalf("DeleteSubject soft = %v, %v", vs, err)
		}
		_, err = cl.DeleteSubject(ctx, "t-value", sr.SoftDelete)
		wantCode(t, err, 40404)
		if vs, err = cl.DeleteSubject(ctx, "t-value", sr.HardDelete); err != nil || !slices.Equal(vs, []int{1}) {
			t.Fatalf("DeleteSubject hard = %v, %v", vs, err)
		}
	})
	t.Run("contexts", func(t *testing.T) {
		cctx := sr.InContext(ctx, ".team")
		s, err := cl.CreateSchema(cctx, "orders", sr.Schema{Schema: sAB})
		if err != nil || s.ID != 1 || s.Subject != ":.team:orders" {
			t.Fatalf("CreateSchema in context = %+v, %v", s, err)
		}
		subs, err := cl.Subjects(cctx)
		if err != nil || !slices.Equal(subs, []string{":.team:orders"}) {
			t.Fatalf("Subjects in context = %v, %v", subs, err)
		}
		text, err := cl.SchemaTextByID(cctx, 1)
		if err != nil || text != sAB {
			t.Fatalf("SchemaTextByID in context = %q, %v", text, err)
		}
		ctxs, err := cl.Contexts(context.WithoutCancel(ctx))
		if err != nil || !slices.Equal(ctxs, []string{".", ".team"}) {
			t.Fatalf("Contexts = %v, %v", ctxs, err)
		}
		if res := cl.SetCompatibility(cctx, sr.SetCompatibility{Level: sr.CompatNone}); res[0].Err != nil {
			t.Fatal(res[0].Err)
		}
		if got, err := r.GetConfig(ctx, ":.team:", false); err != nil || got.Compatibility != CompatNone {
			t.Fatalf("context config = %+v, %v", got, err)
		}
	})
}

// newSRClient serves r over HTTP and returns a franz-go sr client for it.
func newSRClient(t *testing.T, r *Registry) *sr.Client {
	t.Helper()
	srv := httptest.NewServer(r.Handler())
	t.Cleanup(srv.Close)
	cl, err := sr.NewClient(sr.URLs(srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// TestFranzGoAlias sets and follows a subject alias through franz-go's sr
// client.
func TestFranzGoAlias(t *testing.T) {
	cl := newSRClient(t, newRegistry(t, startEtcd(t)))
	ctx := testCtx(t)
	v1, err := cl.CreateSchema(ctx, "orders-v1-value", sr.Schema{Schema: sA})
	if err != nil {
		t.Fatal(err)
	}
	set := cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatBackward, Alias: "orders-v1-value"}, "orders-value")
	if set[0].Err != nil || set[0].Alias != "orders-v1-value" {
		t.Fatalf("SetCompatibility alias = %+v", set[0])
	}
	got := cl.Compatibility(ctx, "orders-value")
	if got[0].Err != nil || got[0].Alias != "orders-v1-value" || got[0].Level != sr.CompatBackward {
		t.Fatalf("Compatibility = %+v", got[0])
	}
	ss, err := cl.SchemaByVersion(ctx, "orders-value", -1)
	if err != nil || ss.ID != v1.ID || ss.Subject != "orders-v1-value" {
		t.Fatalf("SchemaByVersion through alias = %+v, %v", ss, err)
	}
	found, err := cl.LookupSchema(ctx, "orders-value", sr.Schema{Schema: sA})
	if err != nil || found.ID != v1.ID || found.Version != 1 {
		t.Fatalf("LookupSchema through alias = %+v, %v", found, err)
	}
	res, err := cl.CheckCompatibility(ctx, "orders-value", -1, sr.Schema{Schema: sC})
	if err != nil || res.Is {
		t.Fatalf("CheckCompatibility through alias = %+v, %v", res, err)
	}
	vs, err := cl.SubjectVersions(ctx, "orders-value")
	if err != nil || !slices.Equal(vs, []int{1}) {
		t.Fatalf("SubjectVersions through alias = %v, %v", vs, err)
	}
}

// isCode reports whether err is a registry response with error_code code.
func isCode(err error, code int) bool {
	var re *sr.ResponseError
	return errors.As(err, &re) && re.ErrorCode == code
}
