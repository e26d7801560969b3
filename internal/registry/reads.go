package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// ListOptions filter subject and schema listings.
type ListOptions struct {
	// Prefix keeps subjects starting with it (":*:" means every context).
	Prefix string
	// Deleted includes soft-deleted subjects/versions; DeletedOnly keeps
	// only them.
	Deleted, DeletedOnly bool
	// LatestOnly keeps each subject's latest version (schema listings).
	LatestOnly bool
}

func (o ListOptions) keep(q string) bool {
	if o.Prefix == "" || o.Prefix == ":*:" {
		return true
	}
	return strings.HasPrefix(q, o.Prefix)
}

// Subjects lists subject names, sorted.
func (r *Registry) Subjects(ctx context.Context, o ListOptions) ([]string, error) {
	done, err := r.enter()
	if err != nil {
		return nil, err
	}
	defer done()
	subs, err := r.listSubjects(ctx)
	if err != nil {
		return nil, err
	}
	out := []string{}
	for _, q := range sortedKeys(subs) {
		rec := subs[q]
		if len(rec.Versions) == 0 || !o.keep(q) {
			continue
		}
		live := rec.live()
		if (o.DeletedOnly && !live) || (!o.DeletedOnly && (live || o.Deleted)) {
			out = append(out, q)
		}
	}
	return out, nil
}

// Contexts lists the schema contexts in use, the default one first.
func (r *Registry) Contexts(ctx context.Context) ([]string, error) {
	done, err := r.enter()
	if err != nil {
		return nil, err
	}
	defer done()
	subs, err := r.listSubjects(ctx)
	if err != nil {
		return nil, err
	}
	set := map[string]bool{}
	for q := range subs {
		if c := contextOf(q); c != defaultContext {
			set[c] = true
		}
	}
	return append([]string{defaultContext}, sortedKeys(set)...), nil
}

// Versions lists a subject's version numbers.
func (r *Registry) Versions(ctx context.Context, subject string, o ListOptions) ([]int, error) {
	done, err := r.enter()
	if err != nil {
		return nil, err
	}
	defer done()
	sn, err := r.parseLookupSubject(ctx, subject)
	if err != nil {
		return nil, err
	}
	rec, _, err := r.readSubject(ctx, sn.q)
	if err != nil {
		return nil, err
	}
	if len(rec.Versions) == 0 || (!rec.live() && !o.Deleted && !o.DeletedOnly) {
		return nil, errf(ErrSubjectNotFound, "Subject '%s' not found.", sn.q)
	}
	out := []int{}
	for _, v := range rec.Versions {
		if (o.DeletedOnly && v.Deleted) || (!o.DeletedOnly && (!v.Deleted || o.Deleted)) {
			out = append(out, v.Version)
		}
	}
	return out, nil
}

// Version returns version v (-1: latest) of a subject; soft-deleted ones
// only when deleted.
func (r *Registry) Version(ctx context.Context, subject string, v int, deleted bool) (SubjectSchema, error) {
	done, err := r.enter()
	if err != nil {
		return SubjectSchema{}, err
	}
	defer done()
	_, ss, err := r.version(ctx, subject, v, deleted)
	return ss, err
}

func (r *Registry) version(ctx context.Context, subject string, v int, deleted bool) (subjectName, SubjectSchema, error) {
	sn, err := r.parseLookupSubject(ctx, subject)
	if err != nil {
		return sn, SubjectSchema{}, err
	}
	rec, _, err := r.readSubject(ctx, sn.q)
	if err != nil {
		return sn, SubjectSchema{}, err
	}
	if len(rec.Versions) == 0 || (!rec.live() && !deleted) {
		return sn, SubjectSchema{}, errf(ErrSubjectNotFound, "Subject '%s' not found.", sn.q)
	}
	vr, err := pickVersion(rec, sn.q, v, deleted)
	if err != nil {
		return sn, SubjectSchema{}, err
	}
	st, found, err := r.readSchema(ctx, sn.ctx, vr.ID)
	if err != nil {
		return sn, SubjectSchema{}, err
	}
	if !found {
		return sn, SubjectSchema{}, fmt.Errorf("registry: subject %q version %d names missing schema id %d", sn.q, vr.Version, vr.ID)
	}
	return sn, SubjectSchema{Subject: sn.q, Version: vr.Version, Deleted: vr.Deleted, StoredSchema: st}, nil
}

// LatestForSubject returns the parsed latest (not soft-deleted) version of
// a subject, for the broker's produce checks.
func (r *Registry) LatestForSubject(ctx context.Context, subject string) (Schema, SubjectSchema, error) {
	done, err := r.enter()
	if err != nil {
		return nil, SubjectSchema{}, err
	}
	defer done()
	sn, ss, err := r.version(ctx, subject, -1, false)
	if err != nil {
		return nil, SubjectSchema{}, err
	}
	s, err := r.parsedSchema(ctx, sn.ctx, ss.StoredSchema)
	if err != nil {
		return nil, SubjectSchema{}, err
	}
	return s, ss, nil
}

// SchemaByID returns the parsed schema with id in the default context and
// the subject versions that use it (soft-deleted ones marked). An id no
// subject version uses any more is ErrSchemaNotFound.
func (r *Registry) SchemaByID(ctx context.Context, id int) (Schema, SchemaInfo, error) {
	return r.SchemaByIDInContext(ctx, defaultContext, id)
}

// SchemaByIDInContext is SchemaByID in schema context sctx ("." is the
// default one).
func (r *Registry) SchemaByIDInContext(ctx context.Context, sctx string, id int) (Schema, SchemaInfo, error) {
	done, err := r.enter()
	if err != nil {
		return nil, SchemaInfo{}, err
	}
	defer done()
	info, err := r.schemaInfo(ctx, sctx, id)
	if err != nil {
		return nil, SchemaInfo{}, err
	}
	s, err := r.parsedSchema(ctx, sctx, info.StoredSchema)
	if err != nil {
		return nil, SchemaInfo{}, err
	}
	return s, info, nil
}

// SchemaInfo returns the stored schema with id in sctx and its usages,
// without parsing it.
func (r *Registry) SchemaInfo(ctx context.Context, sctx string, id int) (SchemaInfo, error) {
	done, err := r.enter()
	if err != nil {
		return SchemaInfo{}, err
	}
	defer done()
	return r.schemaInfo(ctx, sctx, id)
}

func (r *Registry) schemaInfo(ctx context.Context, sctx string, id int) (SchemaInfo, error) {
	if sctx == "" {
		sctx = defaultContext
	}
	if id <= 0 {
		return SchemaInfo{}, errf(ErrSchemaNotFound, "Schema %d not found", id)
	}
	st, found, err := r.readSchema(ctx, sctx, id)
	if err != nil {
		return SchemaInfo{}, err
	}
	if !found {
		return SchemaInfo{}, errf(ErrSchemaNotFound, "Schema %d not found", id)
	}
	usages, err := r.readUsages(ctx, sctx, id)
	if err != nil {
		return SchemaInfo{}, err
	}
	if len(usages) == 0 {
		return SchemaInfo{}, errf(ErrSchemaNotFound, "Schema %d not found", id)
	}
	return SchemaInfo{StoredSchema: st, Context: sctx, Usages: usages}, nil
}

// Schemas lists subject versions with their schemas, by subject then
// version.
func (r *Registry) Schemas(ctx context.Context, o ListOptions) ([]SubjectSchema, error) {
	done, err := r.enter()
	if err != nil {
		return nil, err
	}
	defer done()
	subs, err := r.listSubjects(ctx)
	if err != nil {
		return nil, err
	}
	out := []SubjectSchema{}
	for _, q := range sortedKeys(subs) {
		if !o.keep(q) {
			continue
		}
		rec := subs[q]
		var picked []versionRecord
		for _, v := range rec.Versions {
			if !v.Deleted || o.Deleted {
				picked = append(picked, v)
			}
		}
		if o.LatestOnly && len(picked) > 1 {
			picked = picked[len(picked)-1:]
		}
		sctx := contextOf(q)
		for _, v := range picked {
			st, found, err := r.readSchema(ctx, sctx, v.ID)
			if err != nil {
				return nil, err
			}
			if found {
				out = append(out, SubjectSchema{Subject: q, Version: v.Version, Deleted: v.Deleted, StoredSchema: st})
			}
		}
	}
	return out, nil
}

// ReferencedBy lists the ids of the live schema versions that reference a
// subject's version v (-1: latest).
func (r *Registry) ReferencedBy(ctx context.Context, subject string, v int) ([]int, error) {
	done, err := r.enter()
	if err != nil {
		return nil, err
	}
	defer done()
	_, ss, err := r.version(ctx, subject, v, false)
	if err != nil {
		return nil, err
	}
	svs, ids, err := r.referrers(ctx, ss.Subject, ss.Version)
	if err != nil {
		return nil, err
	}
	seen := map[int]bool{}
	out := []int{}
	for i, sv := range svs {
		if !sv.Deleted && !seen[ids[i]] {
			seen[ids[i]] = true
			out = append(out, ids[i])
		}
	}
	sort.Ints(out)
	return out, nil
}

// writable refuses writes to a subject in a read-only mode.
func (r *Registry) writable(ctx context.Context, sn subjectName) error {
	mode, err := r.effectiveMode(ctx, sn)
	if err != nil {
		return err
	}
	if mode == ModeReadOnly || mode == ModeReadOnlyOverride {
		return errf(ErrNotPermitted, "Subject %s is in read-only mode", sn.q)
	}
	return nil
}

// blockingReferrer returns an error when another version references
// (q, v): a live referrer blocks a soft delete, any referrer a permanent
// one.
func (r *Registry) blockingReferrer(ctx context.Context, q string, v int, permanent bool) error {
	svs, _, err := r.referrers(ctx, q, v)
	if err != nil {
		return err
	}
	for _, sv := range svs {
		if sv.Subject == q {
			continue
		}
		if permanent || !sv.Deleted {
			return errf(ErrReferenceExists, "One or more references exist to the schema {subject=%s,version=%d}: referenced by subject %s version %d", q, v, sv.Subject, sv.Version)
		}
	}
	return nil
}

// removeOps are the ops that forget (q, v) completely: its usage key and
// the referenced-by keys it created.
func (r *Registry) removeOps(ctx context.Context, sn subjectName, vr versionRecord) ([]clientv3.Op, error) {
	ops := []clientv3.Op{clientv3.OpDelete(r.kUsage(sn.ctx, vr.ID, sn.q, vr.Version))}
	st, found, err := r.readSchema(ctx, sn.ctx, vr.ID)
	if err != nil || !found {
		return ops, err
	}
	for _, ref := range st.References {
		refQ := ref.Subject
		if !strings.HasPrefix(refQ, ":.") {
			refQ = qualify(sn.ctx, refQ)
		}
		if rsn, err := parseSubject(refQ, false); err == nil {
			ops = append(ops, clientv3.OpDelete(r.kRefBy(rsn.q, ref.Version, sn.q, vr.Version)))
		}
	}
	return ops, nil
}

// DeleteSubject soft-deletes every version of a subject, or (permanent)
// removes a soft-deleted subject, and returns the versions deleted.
func (r *Registry) DeleteSubject(ctx context.Context, subject string, permanent bool) ([]int, error) {
	done, err := r.enter()
	if err != nil {
		return nil, err
	}
	defer done()
	sn, err := parseSubject(subject, false)
	if err != nil {
		return nil, err
	}
	if err := r.writable(ctx, sn); err != nil {
		return nil, err
	}
	for range r.maxRetries {
		rec, rev, err := r.readSubject(ctx, sn.q)
		if err != nil {
			return nil, err
		}
		if len(rec.Versions) == 0 {
			return nil, errf(ErrSubjectNotFound, "Subject '%s' not found.", sn.q)
		}
		live := rec.live()
		var versions []int
		ops := []clientv3.Op{}
		switch {
		case !permanent && !live:
			return nil, errf(ErrSubjectSoftDeleted, "Subject '%s' was soft deleted. Set permanent=true to delete permanently", sn.q)
		case permanent && live:
			return nil, errf(ErrSubjectNotSoftDeleted, "Subject '%s' was not deleted first before being permanently deleted", sn.q)
		case !permanent:
			next := &subjectRecord{}
			for _, v := range rec.Versions {
				if !v.Deleted {
					if err := r.blockingReferrer(ctx, sn.q, v.Version, false); err != nil {
						return nil, err
					}
					versions = append(versions, v.Version)
				}
				v.Deleted = true
				next.Versions = append(next.Versions, v)
			}
			b, err := json.Marshal(next)
			if err != nil {
				return nil, fmt.Errorf("registry: encode subject: %w", err)
			}
			ops = append(ops, clientv3.OpPut(r.kSubject(sn.q), string(b)))
		default:
			for _, v := range rec.Versions {
				if err := r.blockingReferrer(ctx, sn.q, v.Version, true); err != nil {
					return nil, err
				}
				versions = append(versions, v.Version)
				more, err := r.removeOps(ctx, sn, v)
				if err != nil {
					return nil, err
				}
				ops = append(ops, more...)
			}
			ops = append(ops, clientv3.OpDelete(r.kSubject(sn.q)),
				clientv3.OpDelete(r.kConfig(sn.q, false)), clientv3.OpDelete(r.kMode(sn.q, false)))
		}
		tr, err := r.cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(r.kSubject(sn.q)), "=", rev)).Then(ops...).Commit()
		if err != nil {
			return nil, fmt.Errorf("registry: delete subject: %w", err)
		}
		if tr.Succeeded {
			return versions, nil
		}
	}
	return nil, ErrConflict
}

// DeleteVersion soft-deletes version v (-1: latest) of a subject, or
// (permanent) removes a soft-deleted version, and returns its number.
func (r *Registry) DeleteVersion(ctx context.Context, subject string, v int, permanent bool) (int, error) {
	done, err := r.enter()
	if err != nil {
		return 0, err
	}
	defer done()
	sn, err := parseSubject(subject, false)
	if err != nil {
		return 0, err
	}
	if err := r.writable(ctx, sn); err != nil {
		return 0, err
	}
	for range r.maxRetries {
		rec, rev, err := r.readSubject(ctx, sn.q)
		if err != nil {
			return 0, err
		}
		if len(rec.Versions) == 0 || (!rec.live() && !permanent) {
			return 0, errf(ErrSubjectNotFound, "Subject '%s' not found.", sn.q)
		}
		vr, err := pickVersion(rec, sn.q, v, true)
		if err != nil {
			return 0, err
		}
		i, _ := rec.find(vr.Version)
		next := &subjectRecord{Versions: append([]versionRecord(nil), rec.Versions...)}
		var ops []clientv3.Op
		if !permanent {
			if vr.Deleted {
				return 0, errf(ErrVersionSoftDeleted, "Subject '%s' Version %d was soft deleted. Set permanent=true to delete permanently", sn.q, vr.Version)
			}
			if err := r.blockingReferrer(ctx, sn.q, vr.Version, false); err != nil {
				return 0, err
			}
			next.Versions[i].Deleted = true
		} else {
			if !vr.Deleted {
				return 0, errf(ErrVersionNotSoftDeleted, "Subject '%s' Version %d was not deleted first before being permanently deleted", sn.q, vr.Version)
			}
			if err := r.blockingReferrer(ctx, sn.q, vr.Version, true); err != nil {
				return 0, err
			}
			next.Versions = append(next.Versions[:i], next.Versions[i+1:]...)
			if ops, err = r.removeOps(ctx, sn, vr); err != nil {
				return 0, err
			}
		}
		if len(next.Versions) == 0 {
			ops = append(ops, clientv3.OpDelete(r.kSubject(sn.q)))
		} else {
			b, err := json.Marshal(next)
			if err != nil {
				return 0, fmt.Errorf("registry: encode subject: %w", err)
			}
			ops = append(ops, clientv3.OpPut(r.kSubject(sn.q), string(b)))
		}
		tr, err := r.cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(r.kSubject(sn.q)), "=", rev)).Then(ops...).Commit()
		if err != nil {
			return 0, fmt.Errorf("registry: delete version: %w", err)
		}
		if tr.Succeeded {
			return vr.Version, nil
		}
	}
	return 0, ErrConflict
}
