package catalog

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/runnel-dev/runnel/internal/governance"
)

// Writes: each reads the stored object from etcd, checks the caller's
// version against it, and writes with a Txn conditioned on the object's
// ModRevision (or its absence), so of two writers based on one version
// exactly one wins and the other gets governance.ErrConflict. A write
// returns once this broker's copy shows it, and is then audited.

// current reads a stored object and its ModRevision (0: absent).
func (c *Catalog) current(ctx context.Context, key string, v any) (int64, error) {
	resp, err := c.o.Client.Get(ctx, key)
	if err != nil {
		return 0, fmt.Errorf("catalog: read %s: %w", key, err)
	}
	if len(resp.Kvs) == 0 {
		return 0, nil
	}
	if err := json.Unmarshal(resp.Kvs[0].Value, v); err != nil {
		return 0, fmt.Errorf("catalog: corrupt object %s: %w", key, err)
	}
	return resp.Kvs[0].ModRevision, nil
}

// cas writes value at key if the key's ModRevision is still modRev (0:
// the key must not exist), or deletes it when value is nil, and waits
// until the catalog shows the write.
func (c *Catalog) cas(ctx context.Context, key string, modRev int64, value any) error {
	var cmp clientv3.Cmp
	if modRev == 0 {
		cmp = clientv3.Compare(clientv3.CreateRevision(key), "=", 0)
	} else {
		cmp = clientv3.Compare(clientv3.ModRevision(key), "=", modRev)
	}
	op := clientv3.OpDelete(key)
	if value != nil {
		b, err := json.Marshal(value)
		if err != nil {
			return fmt.Errorf("catalog: encode %s: %w", key, err)
		}
		op = clientv3.OpPut(key, string(b))
	}
	resp, err := c.o.Client.Txn(ctx).If(cmp).Then(op).Commit()
	if err != nil {
		return fmt.Errorf("catalog: write %s: %w", key, err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("%w: %s changed meanwhile; read it again and retry", governance.ErrConflict, strings.TrimPrefix(key, c.prefix))
	}
	if err := c.mirror.WaitRev(ctx, resp.Header.Revision); err != nil {
		return fmt.Errorf("catalog: waiting for the write to apply: %w", err)
	}
	return nil
}

// audit records an event; a nil Auditor records nothing.
func (c *Catalog) audit(ctx context.Context, e governance.Event) error {
	if c.o.Auditor == nil {
		return nil
	}
	if err := c.o.Auditor.Record(ctx, e); err != nil {
		return fmt.Errorf("catalog: the change was made but could not be audited: %w", err)
	}
	return nil
}

// stale is the conflict of a write based on another version.
func stale(what string, have, want int64) error {
	if have == 0 {
		return fmt.Errorf("%w: %s has no metadata to update (version %d given; use version 0 to create it)", governance.ErrConflict, what, want)
	}
	return fmt.Errorf("%w: %s is at version %d, not %d; read it again and retry", governance.ErrConflict, what, have, want)
}

// PutProduct creates or replaces a product's metadata as actor a.
// Creating needs an admin or ALTER on the topic (a non-admin may name
// only itself or its own team as owner); replacing needs the owner or an
// admin. The topic must exist.
func (c *Catalog) PutProduct(ctx context.Context, a governance.Actor, topic string, u ProductUpdate) (Product, error) {
	if err := ValidTopic(topic); err != nil {
		return Product{}, err
	}
	if !c.hasTopic(topic) {
		return Product{}, fmt.Errorf("%w: no topic %q", governance.ErrNotFound, topic)
	}
	c.mu.RLock()
	defs := c.tagDefs
	c.mu.RUnlock()
	if u.Version < 0 {
		return Product{}, invalid("version must not be negative")
	}
	u, err := validateProduct(u, defs)
	if err != nil {
		return Product{}, err
	}
	key := c.key(kindProduct, topic)
	var old storedProduct
	modRev, err := c.current(ctx, key, &old)
	if err != nil {
		return Product{}, err
	}
	what := "product " + topic
	if modRev == 0 {
		if u.Version != 0 {
			return Product{}, stale(what, 0, u.Version)
		}
		if !a.Admin && !a.May(kmsg.ACLOperationAlter, kmsg.ACLResourceTypeTopic, topic) {
			return Product{}, fmt.Errorf("%w: creating the product of %s needs ALTER on the topic or an administrator", governance.ErrForbidden, topic)
		}
		if !a.Admin && u.Owner != "" && !c.ownerAllowed(u.Owner, a) {
			return Product{}, fmt.Errorf("%w: %s may name only itself or one of its teams as the owner, not %s", governance.ErrForbidden, a, u.Owner)
		}
	} else {
		if u.Version != old.Version {
			return Product{}, stale(what, old.Version, u.Version)
		}
		c.mu.RLock()
		owns := c.ownsLocked(old.Owner, a.Principal)
		c.mu.RUnlock()
		if !a.Admin && !owns {
			return Product{}, fmt.Errorf("%w: only the owner of %s (%s) or an administrator may edit it", governance.ErrForbidden, topic, ownerText(old.Owner))
		}
	}
	now := c.o.Now().UTC().Truncate(time.Second)
	sp := storedProduct{
		Topic: topic, Owner: u.Owner, Description: u.Description, Domain: u.Domain, Tags: u.Tags, Lifecycle: u.Lifecycle,
		BusinessMetadata: u.BusinessMetadata, Links: u.Links, FieldTags: u.FieldTags,
		CreatedAt: now, UpdatedAt: now, UpdatedBy: a.String(), Version: old.Version + 1,
	}
	action := "product.create"
	var before any
	if modRev != 0 {
		sp.CreatedAt, action, before = old.CreatedAt, "product.update", old
	}
	if err := c.cas(ctx, key, modRev, sp); err != nil {
		return Product{}, err
	}
	if err := c.audit(ctx, governance.NewEvent(a, action, "topic:"+topic, topic, "", before, sp)); err != nil {
		return Product{}, err
	}
	return c.Product(ctx, topic)
}

// ownerAllowed reports whether a non-admin may name owner: itself, or a
// team it is a member of.
func (c *Catalog) ownerAllowed(owner string, a governance.Actor) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.ownsLocked(owner, a.Principal)
}

func ownerText(o string) string {
	if o == "" {
		return "no owner"
	}
	return o
}

// DeleteProduct deletes a product's metadata (never the topic), as its
// owner or an admin.
func (c *Catalog) DeleteProduct(ctx context.Context, a governance.Actor, topic string) error {
	if err := ValidTopic(topic); err != nil {
		return err
	}
	key := c.key(kindProduct, topic)
	var old storedProduct
	modRev, err := c.current(ctx, key, &old)
	if err != nil {
		return err
	}
	if modRev == 0 {
		return fmt.Errorf("%w: product %s has no metadata", governance.ErrNotFound, topic)
	}
	c.mu.RLock()
	owns := c.ownsLocked(old.Owner, a.Principal)
	c.mu.RUnlock()
	if !a.Admin && !owns {
		return fmt.Errorf("%w: only the owner of %s (%s) or an administrator may delete its metadata", governance.ErrForbidden, topic, ownerText(old.Owner))
	}
	if err := c.cas(ctx, key, modRev, nil); err != nil {
		return err
	}
	return c.audit(ctx, governance.NewEvent(a, "product.delete", "topic:"+topic, topic, "", old, nil))
}

// PutTeam creates or replaces a team: an admin creates one; an admin or a
// member edits it. A non-zero version must be the stored one.
func (c *Catalog) PutTeam(ctx context.Context, a governance.Actor, name string, u TeamUpdate) (Team, error) {
	if err := validName("team", name); err != nil {
		return Team{}, err
	}
	if u.Version < 0 {
		return Team{}, invalid("version must not be negative")
	}
	u, err := validateTeam(u)
	if err != nil {
		return Team{}, err
	}
	key := c.key(kindTeam, name)
	var old Team
	modRev, err := c.current(ctx, key, &old)
	if err != nil {
		return Team{}, err
	}
	what := "team " + name
	switch {
	case modRev == 0 && u.Version != 0:
		return Team{}, stale(what, 0, u.Version)
	case modRev != 0 && u.Version != 0 && u.Version != old.Version:
		return Team{}, stale(what, old.Version, u.Version)
	case modRev == 0 && !a.Admin:
		return Team{}, fmt.Errorf("%w: only an administrator creates teams", governance.ErrForbidden)
	case modRev != 0 && !a.Admin && !containsString(old.Members, a.String()):
		return Team{}, fmt.Errorf("%w: only a member of team %s or an administrator may edit it", governance.ErrForbidden, name)
	}
	t := Team{Name: name, Members: u.Members, Description: u.Description,
		UpdatedAt: c.o.Now().UTC().Format(time.RFC3339), UpdatedBy: a.String(), Version: old.Version + 1}
	action := "team.create"
	var before any
	if modRev != 0 {
		action, before = "team.update", old
	}
	if err := c.cas(ctx, key, modRev, t); err != nil {
		return Team{}, err
	}
	if err := c.audit(ctx, governance.NewEvent(a, action, "team:"+name, "", "", before, t)); err != nil {
		return Team{}, err
	}
	return t, nil
}

// DeleteTeam deletes a team, as an admin. Products it owns keep naming it
// and have no owner members until it is created again.
func (c *Catalog) DeleteTeam(ctx context.Context, a governance.Actor, name string) error {
	if err := validName("team", name); err != nil {
		return err
	}
	if !a.Admin {
		return fmt.Errorf("%w: only an administrator deletes teams", governance.ErrForbidden)
	}
	key := c.key(kindTeam, name)
	var old Team
	modRev, err := c.current(ctx, key, &old)
	if err != nil {
		return err
	}
	if modRev == 0 {
		return fmt.Errorf("%w: no team %q", governance.ErrNotFound, name)
	}
	if err := c.cas(ctx, key, modRev, nil); err != nil {
		return err
	}
	return c.audit(ctx, governance.NewEvent(a, "team.delete", "team:"+name, "", "", old, nil))
}

// PutTag creates or replaces a tag definition, as an admin.
func (c *Catalog) PutTag(ctx context.Context, a governance.Actor, name string, u TagUpdate) (TagDef, error) {
	if err := validTag("tag", name); err != nil {
		return TagDef{}, err
	}
	if !a.Admin {
		return TagDef{}, fmt.Errorf("%w: only an administrator defines tags", governance.ErrForbidden)
	}
	if u.Version < 0 {
		return TagDef{}, invalid("version must not be negative")
	}
	u, err := validateTag(u)
	if err != nil {
		return TagDef{}, err
	}
	key := c.key(kindTag, name)
	var old TagDef
	modRev, err := c.current(ctx, key, &old)
	if err != nil {
		return TagDef{}, err
	}
	what := "tag " + name
	switch {
	case modRev == 0 && u.Version != 0:
		return TagDef{}, stale(what, 0, u.Version)
	case modRev != 0 && u.Version != 0 && u.Version != old.Version:
		return TagDef{}, stale(what, old.Version, u.Version)
	}
	t := TagDef{Name: name, Description: u.Description, Attributes: u.Attributes, Mask: u.Mask,
		UpdatedAt: c.o.Now().UTC().Format(time.RFC3339), UpdatedBy: a.String(), Version: old.Version + 1}
	action := "tag.create"
	var before any
	if modRev != 0 {
		action, before = "tag.update", old
	}
	if err := c.cas(ctx, key, modRev, t); err != nil {
		return TagDef{}, err
	}
	if err := c.audit(ctx, governance.NewEvent(a, action, "tag:"+name, "", "", before, t)); err != nil {
		return TagDef{}, err
	}
	return t, nil
}

// DeleteTag deletes a tag definition, as an admin (products keep the tag).
func (c *Catalog) DeleteTag(ctx context.Context, a governance.Actor, name string) error {
	if err := validTag("tag", name); err != nil {
		return err
	}
	if !a.Admin {
		return fmt.Errorf("%w: only an administrator deletes tag definitions", governance.ErrForbidden)
	}
	key := c.key(kindTag, name)
	var old TagDef
	modRev, err := c.current(ctx, key, &old)
	if err != nil {
		return err
	}
	if modRev == 0 {
		return fmt.Errorf("%w: no tag definition %q", governance.ErrNotFound, name)
	}
	if err := c.cas(ctx, key, modRev, nil); err != nil {
		return err
	}
	return c.audit(ctx, governance.NewEvent(a, "tag.delete", "tag:"+name, "", "", old, nil))
}

func containsString(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
