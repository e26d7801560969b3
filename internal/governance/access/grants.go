package access

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/runnel-dev/runnel/internal/auth"
	"github.com/runnel-dev/runnel/internal/governance"
)

// The bookkeeping of the ACLs grants make. Two grants may need the same
// binding (Alice asked twice; or a binding an administrator made before),
// and revoking one must neither take the binding from the other nor
// delete a binding no grant made. So every binding a grant needs has:
//
//   - an origin key, aclOriginPrefix + binding: "granted" when grants
//     made it (it did not exist when the first of them was approved),
//     "independent" when it existed without them;
//   - one hold key per grant that needs it, aclHoldsPrefix + binding +
//     "/" + holder.
//
// A hold is taken in one transaction with reading the origin; the last
// holder to release deletes a "granted" binding, then the origin key in a
// transaction conditioned on there being no hold left. A hold taken
// meanwhile fails that transaction, and the releaser puts the binding
// back: the binding stands whenever a hold exists.
const (
	aclOriginPrefix = governance.Prefix + "access/acl-origin/"
	aclHoldsPrefix  = governance.Prefix + "access/acl-holds/"

	originGranted     = "granted"
	originIndependent = "independent"
)

// aclKey names a binding in the bookkeeping keys: every field, escaped,
// always seven segments.
func aclKey(a auth.ACL) string {
	return strings.Join([]string{
		strconv.Itoa(int(a.ResourceType)),
		strconv.Itoa(int(a.PatternType)),
		url.PathEscape(a.ResourceName),
		url.PathEscape(a.Principal),
		url.PathEscape(a.Host),
		strconv.Itoa(int(a.Operation)),
		strconv.Itoa(int(a.Permission)),
	}, "/")
}

// exactFilter selects exactly the binding a.
func exactFilter(a auth.ACL) auth.Filter {
	name, p, h := a.ResourceName, a.Principal, a.Host
	return auth.Filter{ResourceType: a.ResourceType, ResourceName: &name, PatternType: a.PatternType,
		Principal: &p, Host: &h, Operation: a.Operation, Permission: a.Permission}
}

// grantBook keeps the bookkeeping over the cluster's ACL store.
type grantBook struct {
	cli  *clientv3.Client
	acls ACLs
}

// hold records that holder needs binding a and makes sure it exists. It
// reports whether the binding existed independently of any grant.
func (g *grantBook) hold(ctx context.Context, a auth.ACL, holder string) (preexisting bool, err error) {
	origin := aclOriginPrefix + aclKey(a)
	hold := aclHoldsPrefix + aclKey(a) + "/" + holder
	for {
		resp, err := g.cli.Get(ctx, origin)
		if err != nil {
			return false, fmt.Errorf("access: read ACL origin: %w", err)
		}
		var v string
		var txn clientv3.Txn
		if len(resp.Kvs) == 0 {
			v = originGranted
			if len(g.acls.Describe(exactFilter(a))) > 0 {
				v = originIndependent
			}
			txn = g.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(origin), "=", 0)).
				Then(clientv3.OpPut(origin, v), clientv3.OpPut(hold, ""))
		} else {
			v = string(resp.Kvs[0].Value)
			txn = g.cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(origin), "=", resp.Kvs[0].ModRevision)).
				Then(clientv3.OpPut(hold, ""))
		}
		tr, err := txn.Commit()
		if err != nil {
			return false, fmt.Errorf("access: hold ACL: %w", err)
		}
		if !tr.Succeeded {
			continue // the origin changed under us: look again
		}
		if v == originGranted {
			if err := errors.Join(g.acls.Create(ctx, []auth.ACL{a})...); err != nil {
				return false, fmt.Errorf("access: create ACL %s: %w", a, err)
			}
		}
		return v == originIndependent, nil
	}
}

// release drops holder's hold on a; the last holder of a binding grants
// made deletes it.
func (g *grantBook) release(ctx context.Context, a auth.ACL, holder string) error {
	origin := aclOriginPrefix + aclKey(a)
	holds := aclHoldsPrefix + aclKey(a) + "/"
	if _, err := g.cli.Delete(ctx, holds+holder); err != nil {
		return fmt.Errorf("access: release ACL: %w", err)
	}
	resp, err := g.cli.Get(ctx, origin)
	if err != nil {
		return fmt.Errorf("access: read ACL origin: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return nil // released before (a sweep finishing a release)
	}
	orev, granted := resp.Kvs[0].ModRevision, string(resp.Kvs[0].Value) == originGranted
	n, err := g.cli.Get(ctx, holds, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return fmt.Errorf("access: count ACL holds: %w", err)
	}
	if n.Count > 0 {
		return nil // another grant still needs it
	}
	if granted {
		if _, errs := g.acls.Delete(ctx, []auth.Filter{exactFilter(a)}); errors.Join(errs...) != nil {
			return fmt.Errorf("access: delete ACL %s: %w", a, errors.Join(errs...))
		}
	}
	tr, err := g.cli.Txn(ctx).If(
		clientv3.Compare(clientv3.ModRevision(origin), "=", orev),
		clientv3.Compare(clientv3.Version(holds), "=", 0).WithPrefix(),
	).Then(clientv3.OpDelete(origin)).Commit()
	if err != nil {
		return fmt.Errorf("access: release ACL origin: %w", err)
	}
	if tr.Succeeded || !granted {
		return nil
	}
	// A grant took a hold between the count and the delete: the binding
	// must stand again.
	n, err = g.cli.Get(ctx, holds, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return fmt.Errorf("access: count ACL holds: %w", err)
	}
	if n.Count > 0 {
		if err := errors.Join(g.acls.Create(ctx, []auth.ACL{a})...); err != nil {
			return fmt.Errorf("access: restore ACL %s: %w", a, err)
		}
	}
	return nil
}
