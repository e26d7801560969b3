package registry

import (
	"fmt"
	"sync"
	"testing"
)

// TestTwoRegistriesAgree: a write through one registry is visible through
// another on the same etcd as soon as it returns.
func TestTwoRegistriesAgree(t *testing.T) {
	cli := startEtcd(t)
	a, b := newRegistry(t, cli), newRegistry(t, cli)
	ctx := testCtx(t)
	ss, err := a.Register(ctx, RegisterRequest{Subject: "s", Schema: sA})
	if err != nil {
		t.Fatal(err)
	}
	got, err := b.Version(ctx, "s", -1, false)
	if err != nil || got.ID != ss.ID || got.Version != 1 {
		t.Fatalf("b.Version = %+v, %v; want id %d version 1", got, err, ss.ID)
	}
	if _, err := b.SetConfig(ctx, "s", Config{Compatibility: "forward"}); err != nil {
		t.Fatal(err)
	}
	if c, err := a.GetConfig(ctx, "s", false); err != nil || c.Compatibility != CompatForward {
		t.Fatalf("a.GetConfig = %+v, %v", c, err)
	}
	if _, err := b.SetMode(ctx, "s", "readonly", false); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Register(ctx, RegisterRequest{Subject: "s", Schema: sAB}); err == nil {
		t.Fatal("a registered into a subject b made read-only")
	}
	if _, err := b.DeleteMode(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	ss2, err := b.Register(ctx, RegisterRequest{Subject: "s", Schema: sAB})
	if err != nil {
		t.Fatal(err)
	}
	s, info, err := a.SchemaByID(ctx, ss2.ID)
	if err != nil || s.Canonical() == "" || len(info.Usages) != 1 || info.Usages[0] != (SubjectVersion{Subject: "s", Version: 2}) {
		t.Fatalf("a.SchemaByID = %+v, %v", info, err)
	}
	if _, err := a.DeleteSubject(ctx, "s", false); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.LatestForSubject(ctx, "s"); err == nil {
		t.Fatal("b still sees the subject a deleted")
	}
}

// TestConcurrentRegistration: two registries registering at once never
// hand out one id or one version twice.
func TestConcurrentRegistration(t *testing.T) {
	cli := startEtcd(t)
	regs := []*Registry{newRegistry(t, cli), newRegistry(t, cli)}
	ctx := testCtx(t)
	for _, s := range []string{"x", "y"} {
		if _, err := regs[0].SetConfig(ctx, s, Config{Compatibility: CompatNone}); err != nil {
			t.Fatal(err)
		}
	}
	const perWorker = 15
	type result struct {
		subject string
		ss      SubjectSchema
	}
	var (
		mu      sync.Mutex
		results []result
		wg      sync.WaitGroup
		errs    = make(chan error, 100)
	)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := regs[w%2]
			subject := []string{"x", "y"}[w/2]
			for i := range perWorker {
				// Workers 0/1 and 2/3 race on one subject; each schema is
				// unique, except that every worker also registers one
				// schema shared by all.
				schema := fmt.Sprintf(`{"fields":{"w%d_%d":"int"}}`, w, i)
				if i == perWorker-1 {
					schema = `{"fields":{"shared":"int"}}`
				}
				ss, err := r.Register(ctx, RegisterRequest{Subject: subject, Schema: schema})
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				results = append(results, result{subject, ss})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	idOf := map[string]int{}     // schema text -> id
	schemaOf := map[int]string{} // id -> schema text
	versions := map[string]map[int]int{"x": {}, "y": {}}
	for _, res := range results {
		if id, ok := idOf[res.ss.Schema]; ok && id != res.ss.ID {
			t.Fatalf("schema %s got ids %d and %d", res.ss.Schema, id, res.ss.ID)
		}
		if s, ok := schemaOf[res.ss.ID]; ok && s != res.ss.Schema {
			t.Fatalf("id %d handed out for %s and %s", res.ss.ID, s, res.ss.Schema)
		}
		idOf[res.ss.Schema], schemaOf[res.ss.ID] = res.ss.ID, res.ss.Schema
		if id, ok := versions[res.subject][res.ss.Version]; ok && id != res.ss.ID {
			t.Fatalf("subject %s version %d handed out for ids %d and %d", res.subject, res.ss.Version, id, res.ss.ID)
		}
		versions[res.subject][res.ss.Version] = res.ss.ID
	}
	// 4 workers x 14 unique schemas + 1 shared one.
	if len(schemaOf) != 4*(perWorker-1)+1 {
		t.Fatalf("%d distinct ids, want %d", len(schemaOf), 4*(perWorker-1)+1)
	}
	for _, s := range []string{"x", "y"} {
		vs, err := regs[1].Versions(ctx, s, ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(vs) != 2*(perWorker-1)+1 {
			t.Fatalf("subject %s has versions %v, want %d", s, vs, 2*(perWorker-1)+1)
		}
		for i, v := range vs {
			if v != i+1 {
				t.Fatalf("subject %s versions %v are not 1..n", s, vs)
			}
		}
	}
}

// TestRestartKeepsIDs: a new Registry on the same etcd (a restarted
// broker) serves the same ids and keeps counting from them.
func TestRestartKeepsIDs(t *testing.T) {
	cli := startEtcd(t)
	ctx := testCtx(t)
	r1 := newRegistry(t, cli)
	first, err := r1.Register(ctx, RegisterRequest{Subject: "s", Schema: sA})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r1.SetConfig(ctx, "", Config{Compatibility: CompatFull}); err != nil {
		t.Fatal(err)
	}
	if _, err := r1.SetMode(ctx, "other", ModeReadOnly, false); err != nil {
		t.Fatal(err)
	}
	_ = r1.Close()
	if _, err := r1.Subjects(ctx, ListOptions{}); err != ErrClosed {
		t.Fatalf("closed registry answered: %v", err)
	}
	r2 := newRegistry(t, cli)
	again, err := r2.Register(ctx, RegisterRequest{Subject: "s", Schema: sA})
	if err != nil || again.ID != first.ID || again.Version != 1 {
		t.Fatalf("re-register after restart = %+v, %v; want id %d version 1", again, err, first.ID)
	}
	next, err := r2.Register(ctx, RegisterRequest{Subject: "t", Schema: sC})
	if err != nil || next.ID != first.ID+1 {
		t.Fatalf("new schema after restart = %+v, %v; want id %d", next, err, first.ID+1)
	}
	if c, err := r2.GetConfig(ctx, "", false); err != nil || c.Compatibility != CompatFull {
		t.Fatalf("global config after restart = %+v, %v", c, err)
	}
	if m, err := r2.GetMode(ctx, "other", false); err != nil || m != ModeReadOnly {
		t.Fatalf("mode after restart = %q, %v", m, err)
	}
}
