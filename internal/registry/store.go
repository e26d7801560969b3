package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Storage layout under the prefix P (subjects are qualified names, escaped
// with url.PathEscape so "/" in a name never splits a key):
//
//	P/subjects/<subject>                          subjectRecord (all its versions)
//	P/contexts/<ctx>/counter                      last schema id handed out in ctx
//	P/contexts/<ctx>/ids/<id %010d>               schemaRecord (immutable)
//	P/contexts/<ctx>/hashes/<sha256>              id of a schema's identity
//	P/contexts/<ctx>/usage/<id>/<subject>/<ver>   "" per subject version using id
//	P/refby/<subject>/<ver>/<referrer>/<ver>      id of the referring version
//	P/config/global, P/config/subjects/<subject>  configRecord
//	P/mode/global,   P/mode/subjects/<subject>    mode string
//
// A subject's key changes on every write to the subject, so a Txn guarded
// by its ModRevision serialises versions; the counter's ModRevision and the
// hash key's absence do the same for ids.

type subjectRecord struct {
	Versions []versionRecord `json:"versions"`
}

type versionRecord struct {
	Version int  `json:"version"`
	ID      int  `json:"id"`
	Deleted bool `json:"deleted,omitempty"`
}

// live reports whether the subject has a version not soft-deleted.
func (s *subjectRecord) live() bool {
	for _, v := range s.Versions {
		if !v.Deleted {
			return true
		}
	}
	return false
}

// latest returns the newest version (not soft-deleted unless withDeleted).
func (s *subjectRecord) latest(withDeleted bool) (versionRecord, bool) {
	for i := len(s.Versions) - 1; i >= 0; i-- {
		if withDeleted || !s.Versions[i].Deleted {
			return s.Versions[i], true
		}
	}
	return versionRecord{}, false
}

func (s *subjectRecord) find(v int) (int, bool) {
	for i, vr := range s.Versions {
		if vr.Version == v {
			return i, true
		}
	}
	return -1, false
}

func (s *subjectRecord) maxVersion() int {
	if len(s.Versions) == 0 {
		return 0
	}
	return s.Versions[len(s.Versions)-1].Version
}

func esc(s string) string { return url.PathEscape(s) }

func pad(n int) string { return fmt.Sprintf("%010d", n) }

func (r *Registry) kSubjects() string          { return r.prefix + "/subjects/" }
func (r *Registry) kSubject(q string) string   { return r.kSubjects() + esc(q) }
func (r *Registry) kCtx(ctx string) string     { return r.prefix + "/contexts/" + esc(ctx) }
func (r *Registry) kCounter(ctx string) string { return r.kCtx(ctx) + "/counter" }
func (r *Registry) kSchema(ctx string, id int) string {
	return r.kCtx(ctx) + "/ids/" + pad(id)
}
func (r *Registry) kHash(ctx, h string) string { return r.kCtx(ctx) + "/hashes/" + h }
func (r *Registry) kUsagePrefix(ctx string, id int) string {
	return r.kCtx(ctx) + "/usage/" + pad(id) + "/"
}
func (r *Registry) kUsage(ctx string, id int, q string, v int) string {
	return r.kUsagePrefix(ctx, id) + esc(q) + "/" + pad(v)
}
func (r *Registry) kRefByPrefix(q string, v int) string {
	return r.prefix + "/refby/" + esc(q) + "/" + pad(v) + "/"
}
func (r *Registry) kRefBy(refQ string, refV int, q string, v int) string {
	return r.kRefByPrefix(refQ, refV) + esc(q) + "/" + pad(v)
}
func (r *Registry) kConfig(q string, global bool) string {
	if global {
		return r.prefix + "/config/global"
	}
	return r.prefix + "/config/subjects/" + esc(q)
}
func (r *Registry) kMode(q string, global bool) string {
	if global {
		return r.prefix + "/mode/global"
	}
	return r.prefix + "/mode/subjects/" + esc(q)
}

// readSubject reads a subject's record and its ModRevision (0 when absent).
func (r *Registry) readSubject(ctx context.Context, q string) (*subjectRecord, int64, error) {
	resp, err := r.cli.Get(ctx, r.kSubject(q))
	if err != nil {
		return nil, 0, fmt.Errorf("registry: read subject %q: %w", q, err)
	}
	if len(resp.Kvs) == 0 {
		return &subjectRecord{}, 0, nil
	}
	var rec subjectRecord
	if err := json.Unmarshal(resp.Kvs[0].Value, &rec); err != nil {
		return nil, 0, fmt.Errorf("registry: corrupt subject record %q: %w", q, err)
	}
	return &rec, resp.Kvs[0].ModRevision, nil
}

// readSchema reads the schema record of id in ctx; found is false when the
// id was never used.
func (r *Registry) readSchema(ctx context.Context, sctx string, id int) (StoredSchema, bool, error) {
	resp, err := r.cli.Get(ctx, r.kSchema(sctx, id))
	if err != nil {
		return StoredSchema{}, false, fmt.Errorf("registry: read schema %d: %w", id, err)
	}
	if len(resp.Kvs) == 0 {
		return StoredSchema{}, false, nil
	}
	var rec storedRecord
	if err := json.Unmarshal(resp.Kvs[0].Value, &rec); err != nil {
		return StoredSchema{}, false, fmt.Errorf("registry: corrupt schema record %d: %w", id, err)
	}
	s := rec.StoredSchema
	s.ID, s.GUID = id, guidOf(rec.Hash)
	return s, true, nil
}

// readUsages lists the subject versions using id in ctx, with their
// soft-delete flags.
func (r *Registry) readUsages(ctx context.Context, sctx string, id int) ([]SubjectVersion, error) {
	svs, _, err := r.versionsUnder(ctx, r.kUsagePrefix(sctx, id))
	if err != nil {
		return nil, fmt.Errorf("registry: read usages of %d: %w", id, err)
	}
	sort.Slice(svs, func(i, j int) bool {
		if svs[i].Subject != svs[j].Subject {
			return svs[i].Subject < svs[j].Subject
		}
		return svs[i].Version < svs[j].Version
	})
	return svs, nil
}

// versionsUnder reads the subject versions named by the keys under prefix
// ("<prefix><escaped subject>/<version>"), with their soft-delete flags and
// schema ids, reading each subject's record once. Versions their subject no
// longer has are left out.
func (r *Registry) versionsUnder(ctx context.Context, prefix string) ([]SubjectVersion, []int, error) {
	resp, err := r.cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, nil, err
	}
	var svs []SubjectVersion
	var ids []int
	recs := map[string]*subjectRecord{}
	for _, kv := range resp.Kvs {
		sv, ok := r.parseSubjectVersionKey(string(kv.Key), prefix)
		if !ok {
			continue
		}
		rec, ok := recs[sv.Subject]
		if !ok {
			if rec, _, err = r.readSubject(ctx, sv.Subject); err != nil {
				return nil, nil, err
			}
			recs[sv.Subject] = rec
		}
		if i, ok := rec.find(sv.Version); ok {
			sv.Deleted = rec.Versions[i].Deleted
			svs = append(svs, sv)
			ids = append(ids, rec.Versions[i].ID)
		}
	}
	return svs, ids, nil
}

// parseSubjectVersionKey parses "<prefix><escaped subject>/<version>".
func (r *Registry) parseSubjectVersionKey(key, prefix string) (SubjectVersion, bool) {
	rest, ok := strings.CutPrefix(key, prefix)
	if !ok {
		return SubjectVersion{}, false
	}
	i := strings.LastIndexByte(rest, '/')
	if i < 0 {
		return SubjectVersion{}, false
	}
	subj, err := url.PathUnescape(rest[:i])
	if err != nil {
		return SubjectVersion{}, false
	}
	v, err := strconv.Atoi(rest[i+1:])
	if err != nil {
		return SubjectVersion{}, false
	}
	return SubjectVersion{Subject: subj, Version: v}, true
}

// referrers lists the subject versions that reference q's version v, with
// their schema ids.
func (r *Registry) referrers(ctx context.Context, q string, v int) ([]SubjectVersion, []int, error) {
	svs, ids, err := r.versionsUnder(ctx, r.kRefByPrefix(q, v))
	if err != nil {
		return nil, nil, fmt.Errorf("registry: read referrers of %q/%d: %w", q, v, err)
	}
	return svs, ids, nil
}

// listSubjects returns every stored subject record, by qualified name.
func (r *Registry) listSubjects(ctx context.Context) (map[string]*subjectRecord, error) {
	resp, err := r.cli.Get(ctx, r.kSubjects(), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("registry: list subjects: %w", err)
	}
	out := make(map[string]*subjectRecord, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		name, err := url.PathUnescape(strings.TrimPrefix(string(kv.Key), r.kSubjects()))
		if err != nil {
			continue
		}
		var rec subjectRecord
		if err := json.Unmarshal(kv.Value, &rec); err != nil {
			return nil, fmt.Errorf("registry: corrupt subject record %q: %w", name, err)
		}
		out[name] = &rec
	}
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
