package registry

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// DeleteContext deletes a schema context that no subject uses any more
// (DELETE /contexts/{context}, Confluent 7.x/8.x): a context with a subject
// in it, even a soft-deleted one, is ErrContextNotEmpty (42211; delete its
// subjects permanently first); a context with nothing left of it is
// ErrContextNotFound; the default context cannot be deleted
// (ErrNotPermitted). What goes are the context's schema records, hashes
// and usage keys and the configs and modes of the context and its
// subjects. Its id counter stays, so ids are never handed out twice in a
// context: a record written with an id of the deleted context must never
// decode with another schema.
func (r *Registry) DeleteContext(ctx context.Context, name string) error {
	done, err := r.enter()
	if err != nil {
		return err
	}
	defer done()
	if name != "" && !strings.HasPrefix(name, ".") {
		name = "." + name
	}
	if name == "" || strings.ContainsAny(name, ":") {
		return errf(ErrContextNotFound, "Context '%s' not found", name)
	}
	if _, err := parseSubject(qualify(name, ""), true); err != nil {
		return err
	}
	if name == defaultContext {
		return errf(ErrNotPermitted, "The default context cannot be deleted")
	}
	ctxQ := esc(qualify(name, ""))
	subjects := r.kSubjects() + ctxQ
	// Ranges removed, by what they hold; any key in them means the context
	// exists.
	ranges := []string{
		r.kCtx(name) + "/ids/",
		r.kCtx(name) + "/hashes/",
		r.kCtx(name) + "/usage/",
		r.prefix + "/config/subjects/" + ctxQ,
		r.prefix + "/mode/subjects/" + ctxQ,
	}
	resp, err := r.cli.Get(ctx, subjects, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return fmt.Errorf("registry: read context subjects: %w", err)
	}
	if resp.Count > 0 {
		return errf(ErrContextNotEmpty, "Context '%s' is not empty: delete its subjects permanently first", name)
	}
	found := false
	for _, p := range ranges {
		resp, err := r.cli.Get(ctx, p, clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			return fmt.Errorf("registry: read context: %w", err)
		}
		found = found || resp.Count > 0
	}
	if !found {
		return errf(ErrContextNotFound, "Context '%s' not found", name)
	}
	ops := make([]clientv3.Op, len(ranges))
	for i, p := range ranges {
		ops[i] = clientv3.OpDelete(p, clientv3.WithPrefix())
	}
	// Written only while no subject of the context exists (a prefix
	// compare over an empty range holds).
	noSubjects := clientv3.Compare(clientv3.CreateRevision(subjects), "=", 0).WithPrefix()
	tr, err := r.cli.Txn(ctx).If(noSubjects).Then(ops...).Commit()
	if err != nil {
		return fmt.Errorf("registry: delete context: %w", err)
	}
	if !tr.Succeeded {
		return errf(ErrContextNotEmpty, "Context '%s' is not empty: a subject was registered in it", name)
	}
	r.mu.Lock()
	for k := range r.parsed {
		if k.ctx == name {
			delete(r.parsed, k)
		}
	}
	r.mu.Unlock()
	return nil
}

func (r *Registry) httpDeleteContext(_ http.ResponseWriter, req *http.Request) (any, error) {
	if err := r.DeleteContext(req.Context(), req.PathValue("context")); err != nil {
		return nil, err
	}
	return noContent{}, nil
}
