package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// maxRefDepth bounds how deep references are followed.
const maxRefDepth = 32

// defaultType is the schema type when a request names none.
const defaultType = "AVRO"

// RegisterRequest is a schema to register under a subject.
type RegisterRequest struct {
	// Subject is the (possibly context-qualified) subject.
	Subject string
	// Schema is the schema text and Type its format (AVRO when empty).
	Schema     string
	Type       string
	References []Reference
	// Metadata and RuleSet are the schema's own data contract; nil ones are
	// inherited from the subject's latest version, then layered between the
	// config's default and override.
	Metadata *Metadata
	RuleSet  *RuleSet
	// ID and Version, when positive, ask for that id and version (IMPORT
	// mode, where the id is required; outside it only the id the schema
	// already has and the next version are accepted).
	ID      int
	Version int
	// Normalize stores and compares the format's normalized text.
	Normalize bool
}

// storedRecord is a schema record as kept in etcd.
type storedRecord struct {
	StoredSchema
	Hash string `json:"hash"`
}

// resolved is a request's references, checked against the registry.
type resolved struct {
	refs     []Reference         // as stored: versions made explicit
	resolved []ResolvedReference // for Format.Parse
	refQ     []string            // qualified subject of each reference
	revs     map[string]int64    // ModRevision of each referenced subject key
}

// resolveRefs resolves refs made by a schema in context sctx.
func (r *Registry) resolveRefs(ctx context.Context, sctx string, refs []Reference) (*resolved, error) {
	out := &resolved{revs: map[string]int64{}}
	for _, ref := range refs {
		rr, q, err := r.resolveRef(ctx, sctx, ref, 0, map[string]bool{}, out.revs)
		if err != nil {
			return nil, err
		}
		out.refs = append(out.refs, Reference{Name: ref.Name, Subject: ref.Subject, Version: rr.Version})
		out.resolved = append(out.resolved, rr)
		out.refQ = append(out.refQ, q)
	}
	return out, nil
}

func (r *Registry) resolveRef(ctx context.Context, sctx string, ref Reference, depth int, path map[string]bool, revs map[string]int64) (ResolvedReference, string, error) {
	if depth >= maxRefDepth {
		return ResolvedReference{}, "", errf(ErrInvalidSchema, "Invalid schema: references nest deeper than %d", maxRefDepth)
	}
	if ref.Name == "" || ref.Subject == "" {
		return ResolvedReference{}, "", errf(ErrInvalidSchema, "Invalid schema: a reference needs a name and a subject (got name %q, subject %q)", ref.Name, ref.Subject)
	}
	q := ref.Subject
	if !strings.HasPrefix(q, ":.") {
		q = qualify(sctx, q)
	}
	sn, err := parseSubject(q, false)
	if err != nil {
		return ResolvedReference{}, "", errf(ErrInvalidSchema, "Invalid schema: reference %q: %v", ref.Name, err)
	}
	rec, rev, err := r.readSubject(ctx, sn.q)
	if err != nil {
		return ResolvedReference{}, "", err
	}
	revs[r.kSubject(sn.q)] = rev
	var vr versionRecord
	var ok bool
	switch {
	case ref.Version == -1:
		vr, ok = rec.latest(false)
	case ref.Version > 0:
		var i int
		if i, ok = rec.find(ref.Version); ok {
			vr = rec.Versions[i]
			ok = !vr.Deleted
		}
	}
	if !ok {
		return ResolvedReference{}, "", errf(ErrInvalidSchema, "Invalid schema: reference %q to subject %q version %d does not exist", ref.Name, ref.Subject, ref.Version)
	}
	node := sn.q + "/" + strconv.Itoa(vr.Version)
	if path[node] {
		return ResolvedReference{}, "", errf(ErrInvalidSchema, "Invalid schema: reference cycle through subject %q version %d", ref.Subject, vr.Version)
	}
	stored, found, err := r.readSchema(ctx, sn.ctx, vr.ID)
	if err != nil {
		return ResolvedReference{}, "", err
	}
	if !found {
		return ResolvedReference{}, "", fmt.Errorf("registry: subject %q version %d names missing schema id %d", sn.q, vr.Version, vr.ID)
	}
	path[node] = true
	defer delete(path, node)
	out := ResolvedReference{Name: ref.Name, Subject: sn.q, Version: vr.Version, Schema: stored.Schema}
	for _, sub := range stored.References {
		rr, _, err := r.resolveRef(ctx, sn.ctx, sub, depth+1, path, revs)
		if err != nil {
			return ResolvedReference{}, "", err
		}
		out.Refs = append(out.Refs, rr)
	}
	return out, sn.q, nil
}

func (r *Registry) format(typ string) (Format, string, error) {
	if typ == "" {
		typ = defaultType
	}
	typ = strings.ToUpper(typ)
	f, ok := r.formats[typ]
	if !ok {
		return nil, "", errf(ErrInvalidSchema, "Invalid schema type %s; supported types are %s", typ, strings.Join(r.Types(), ", "))
	}
	return f, typ, nil
}

// parse parses text with its references into a Schema, mapping a
// format's error to ErrInvalidSchema.
func parseWith(f Format, text string, refs []ResolvedReference) (Schema, error) {
	s, err := f.Parse(text, refs)
	if err != nil {
		if errors.Is(err, ErrInvalidSchema) {
			return nil, &apiError{err: ErrInvalidSchema, msg: "Invalid schema: " + err.Error()}
		}
		return nil, errf(ErrInvalidSchema, "Invalid schema: %v", err)
	}
	return s, nil
}

// parsedSchema parses a stored schema (cached by context and id; a schema
// record never changes).
func (r *Registry) parsedSchema(ctx context.Context, sctx string, st StoredSchema) (Schema, error) {
	k := parsedKey{ctx: sctx, id: st.ID}
	r.mu.Lock()
	s, ok := r.parsed[k]
	r.mu.Unlock()
	if ok {
		return s, nil
	}
	f, _, err := r.format(st.Type)
	if err != nil {
		return nil, fmt.Errorf("registry: stored schema %d: %w", st.ID, err)
	}
	res, err := r.resolveRefs(ctx, sctx, st.References)
	if err != nil {
		return nil, fmt.Errorf("registry: stored schema %d: %w", st.ID, err)
	}
	s, err = parseWith(f, st.Schema, res.resolved)
	if err != nil {
		return nil, fmt.Errorf("registry: stored schema %d no longer parses: %w", st.ID, err)
	}
	r.mu.Lock()
	if len(r.parsed) >= maxParsedCache {
		clear(r.parsed)
	}
	r.parsed[k] = s
	r.mu.Unlock()
	return s, nil
}

// identityHash is what makes two registrations the same schema.
func identityHash(typ, canonical string, refs []Reference, md *Metadata, rs *RuleSet) string {
	b, _ := json.Marshal(struct {
		T string      `json:"t"`
		C string      `json:"c"`
		R []Reference `json:"r"`
		M *Metadata   `json:"m"`
		S *RuleSet    `json:"s"`
	}{typ, canonical, refs, md, rs})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Register registers req.Schema under req.Subject, or returns the version
// it already has there. Two registries on one etcd never hand out one id
// or one version twice: every write is one Txn guarded by the revisions it
// was decided on, retried when another write got there first.
func (r *Registry) Register(ctx context.Context, req RegisterRequest) (SubjectSchema, error) {
	done, err := r.enter()
	if err != nil {
		return SubjectSchema{}, err
	}
	defer done()
	sn, err := parseSubject(req.Subject, false)
	if err != nil {
		return SubjectSchema{}, err
	}
	// The registration is written only if no mode key it depends on
	// changed since this read (a switch to READONLY wins); a retry reads
	// the mode again.
	readMode := func() (bool, []clientv3.Cmp, error) {
		mode, guards, err := r.guardedMode(ctx, sn)
		if err != nil {
			return false, nil, err
		}
		if mode == ModeReadOnly || mode == ModeReadOnlyOverride {
			return false, nil, errf(ErrNotPermitted, "Subject %s is in read-only mode", sn.q)
		}
		// In IMPORT mode every registration carries its id, as the
		// registry it is imported from assigned it; one without would
		// take an id from the counter that a later import may need.
		// Like Confluent's registry this is refused before any lookup,
		// even for a schema the subject already has.
		if mode == ModeImport && req.ID <= 0 {
			return false, nil, errf(ErrNotPermitted, "Subject %s in context %s is not in read-write mode", sn.q, sn.ctx)
		}
		return mode == ModeImport, guards, nil
	}
	imp, modeGuards, err := readMode()
	if err != nil {
		return SubjectSchema{}, err
	}
	if req.ID < 0 {
		req.ID = 0
	}
	if req.Version == -1 {
		req.Version = 0
	}
	if req.Version < 0 {
		return SubjectSchema{}, errf(ErrInvalidVersion, "The specified version '%d' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\"", req.Version)
	}
	f, typ, err := r.format(req.Type)
	if err != nil {
		return SubjectSchema{}, err
	}
	if strings.TrimSpace(req.Schema) == "" {
		return SubjectSchema{}, errf(ErrInvalidSchema, "Invalid schema: empty schema")
	}
	for attempt := range r.maxRetries {
		if attempt > 0 {
			if imp, modeGuards, err = readMode(); err != nil {
				return SubjectSchema{}, err
			}
		}
		// Like the modes, the configs (compatibility level, normalize,
		// compatibility group, default and override contracts) are read
		// once per attempt and guarded in the Txn: a PUT /config that lands
		// between this read and the commit makes the attempt start over.
		cfg, cfgGuards, err := r.guardedConfig(ctx, sn)
		if err != nil {
			return SubjectSchema{}, err
		}
		normalize := req.Normalize || (cfg.Normalize != nil && *cfg.Normalize)
		res, err := r.resolveRefs(ctx, sn.ctx, req.References)
		if err != nil {
			return SubjectSchema{}, err
		}
		parsed, err := parseWith(f, req.Schema, res.resolved)
		if err != nil {
			return SubjectSchema{}, err
		}
		text, canon := req.Schema, parsed.Canonical()
		if ts, ok := parsed.(TextStorer); ok {
			text = ts.StoredText(text)
		}
		if normalize {
			text = parsed.Normalized()
			canon = text
		}
		rec, subjRev, err := r.readSubject(ctx, sn.q)
		if err != nil {
			return SubjectSchema{}, err
		}
		md, rs := req.Metadata, req.RuleSet
		if md == nil || rs == nil {
			if latest, ok := rec.latest(false); ok {
				prev, _, err := r.readSchema(ctx, sn.ctx, latest.ID)
				if err != nil {
					return SubjectSchema{}, err
				}
				if md == nil {
					md = prev.Metadata
				}
				if rs == nil {
					rs = prev.RuleSet
				}
			}
		}
		md = mergeMetadata(mergeMetadata(cfg.DefaultMetadata, md), cfg.OverrideMetadata)
		rs = mergeRuleSet(mergeRuleSet(cfg.DefaultRuleSet, rs), cfg.OverrideRuleSet)
		if rs != nil && r.validate != nil {
			if err := r.validate(rs); err != nil {
				return SubjectSchema{}, errf(ErrInvalidSchema, "Invalid schema: rule set: %v", err)
			}
		}
		h := identityHash(typ, canon, res.refs, md, rs)
		hresp, err := r.cli.Get(ctx, r.kHash(sn.ctx, h))
		if err != nil {
			return SubjectSchema{}, fmt.Errorf("registry: read schema hash: %w", err)
		}
		existingID, hashRev := 0, int64(0)
		if len(hresp.Kvs) > 0 {
			hashRev = hresp.Kvs[0].ModRevision
			existingID, _ = strconv.Atoi(string(hresp.Kvs[0].Value))
		}
		stored := StoredSchema{Type: typ, Schema: text, References: res.refs, Metadata: md, RuleSet: rs, GUID: guidOf(h)}
		if existingID > 0 {
			for i := len(rec.Versions) - 1; i >= 0; i-- {
				v := rec.Versions[i]
				if !v.Deleted && v.ID == existingID && (req.ID == 0 || req.ID == existingID) {
					stored.ID = existingID
					return SubjectSchema{Subject: sn.q, Version: v.Version, StoredSchema: stored}, nil
				}
			}
		}
		if !imp {
			msgs, err := r.checkCompat(ctx, sn, rec, cfg.Compatibility, f, typ, parsed, nil, groupValue(cfg, md))
			if err != nil {
				return SubjectSchema{}, err
			}
			if len(msgs) > 0 {
				return SubjectSchema{}, &apiError{err: ErrIncompatible, messages: msgs,
					msg: fmt.Sprintf("Schema being registered is incompatible with an earlier schema for subject %q, details: [%s]", sn.q, strings.Join(msgs, ", "))}
			}
		}
		cresp, err := r.cli.Get(ctx, r.kCounter(sn.ctx))
		if err != nil {
			return SubjectSchema{}, fmt.Errorf("registry: read id counter: %w", err)
		}
		counter, counterRev := 0, int64(0)
		if len(cresp.Kvs) > 0 {
			counterRev = cresp.Kvs[0].ModRevision
			if counter, err = strconv.Atoi(string(cresp.Kvs[0].Value)); err != nil {
				return SubjectSchema{}, fmt.Errorf("registry: corrupt id counter: %w", err)
			}
		}
		id, newSchema, newCounter := 0, false, 0
		switch {
		case req.ID > 0 && req.ID == existingID:
			id = existingID
		case req.ID > 0:
			other, found, err := r.readSchemaRecord(ctx, sn.ctx, req.ID)
			if err != nil {
				return SubjectSchema{}, err
			}
			switch {
			case found && other.Hash == h:
				id = req.ID
			case found:
				return SubjectSchema{}, errf(ErrNotPermitted, "Overwrite new schema with id %d is not permitted.", req.ID)
			case !imp:
				return SubjectSchema{}, errf(ErrNotPermitted, "Subject %s is not in import mode; a schema id can only be given in IMPORT mode", sn.q)
			default:
				id, newSchema = req.ID, true
				if id > counter {
					newCounter = id
				}
			}
		case existingID > 0:
			id = existingID
		default:
			id, newSchema, newCounter = counter+1, true, counter+1
		}
		version := rec.maxVersion() + 1
		if req.Version > 0 {
			if i, ok := rec.find(req.Version); ok {
				if rec.Versions[i].ID == id && !rec.Versions[i].Deleted {
					stored.ID = id
					return SubjectSchema{Subject: sn.q, Version: req.Version, StoredSchema: stored}, nil
				}
				return SubjectSchema{}, errf(ErrInvalidVersion, "Version %d already exists in subject %s with another schema", req.Version, sn.q)
			}
			if !imp && req.Version != version {
				return SubjectSchema{}, errf(ErrInvalidVersion, "Version %d is not the next version of subject %s (%d); a version can only be chosen in IMPORT mode", req.Version, sn.q, version)
			}
			version = req.Version
		}
		next := &subjectRecord{Versions: append(slices.Clone(rec.Versions), versionRecord{Version: version, ID: id})}
		sort.Slice(next.Versions, func(i, j int) bool { return next.Versions[i].Version < next.Versions[j].Version })
		nb, err := json.Marshal(next)
		if err != nil {
			return SubjectSchema{}, fmt.Errorf("registry: encode subject: %w", err)
		}
		cmps := []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(r.kSubject(sn.q)), "=", subjRev)}
		ops := []clientv3.Op{
			clientv3.OpPut(r.kSubject(sn.q), string(nb)),
			clientv3.OpPut(r.kUsage(sn.ctx, id, sn.q, version), ""),
		}
		for k, rev := range res.revs {
			if k != r.kSubject(sn.q) {
				cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(k), "=", rev))
			}
		}
		for i, ref := range res.refs {
			ops = append(ops, clientv3.OpPut(r.kRefBy(res.refQ[i], ref.Version, sn.q, version), strconv.Itoa(id)))
		}
		if newSchema {
			sb, err := json.Marshal(storedRecord{StoredSchema: stored, Hash: h})
			if err != nil {
				return SubjectSchema{}, fmt.Errorf("registry: encode schema: %w", err)
			}
			cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(r.kSchema(sn.ctx, id)), "=", 0))
			ops = append(ops, clientv3.OpPut(r.kSchema(sn.ctx, id), string(sb)))
			if hashRev == 0 {
				cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(r.kHash(sn.ctx, h)), "=", 0))
				ops = append(ops, clientv3.OpPut(r.kHash(sn.ctx, h), strconv.Itoa(id)))
			}
		}
		if !newSchema {
			// The schema record it reuses must still be there (a
			// concurrent DELETE /contexts removes those of an empty
			// context).
			cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(r.kSchema(sn.ctx, id)), ">", 0))
		}
		if newCounter > 0 {
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(r.kCounter(sn.ctx)), "=", counterRev))
			ops = append(ops, clientv3.OpPut(r.kCounter(sn.ctx), strconv.Itoa(newCounter)))
		}
		cmps = append(cmps, modeGuards...)
		cmps = append(cmps, cfgGuards...)
		if r.beforeCommit != nil {
			r.beforeCommit(attempt)
		}
		tr, err := r.cli.Txn(ctx).If(cmps...).Then(ops...).Commit()
		if err != nil {
			return SubjectSchema{}, fmt.Errorf("registry: register: %w", err)
		}
		if tr.Succeeded {
			stored.ID = id
			r.log.Debug("schema registered", "subject", sn.q, "version", version, "id", id)
			return SubjectSchema{Subject: sn.q, Version: version, StoredSchema: stored}, nil
		}
		if err := ctx.Err(); err != nil {
			return SubjectSchema{}, err
		}
	}
	return SubjectSchema{}, ErrConflict
}

func (r *Registry) readSchemaRecord(ctx context.Context, sctx string, id int) (storedRecord, bool, error) {
	resp, err := r.cli.Get(ctx, r.kSchema(sctx, id))
	if err != nil {
		return storedRecord{}, false, fmt.Errorf("registry: read schema %d: %w", id, err)
	}
	if len(resp.Kvs) == 0 {
		return storedRecord{}, false, nil
	}
	var s storedRecord
	if err := json.Unmarshal(resp.Kvs[0].Value, &s); err != nil {
		return storedRecord{}, false, fmt.Errorf("registry: corrupt schema record %d: %w", id, err)
	}
	s.ID, s.GUID = id, guidOf(s.Hash)
	return s, true, nil
}

// canRead asks the format (or, failing that, the reader schema) whether
// reader can read data written with writer.
func canRead(f Format, reader, writer Schema) ([]string, error) {
	if c, ok := f.(Compatibility); ok {
		return c.CanRead(reader, writer), nil
	}
	if c, ok := reader.(Compatibility); ok {
		return c.CanRead(reader, writer), nil
	}
	return nil, fmt.Errorf("registry: format %s has no compatibility rules", f.Type())
}

// checkCompat checks parsed against the subject's versions as level asks
// (only against version `only` when it is given) and returns Confluent's
// verbose messages; none means compatible.
func (r *Registry) checkCompat(ctx context.Context, sn subjectName, rec *subjectRecord, level string, f Format, typ string, parsed Schema, only *versionRecord, group compatGroup) ([]string, error) {
	if level == "" {
		level = r.defCompat
	}
	if level == CompatNone {
		return nil, nil
	}
	var targets []versionRecord
	switch {
	case only != nil:
		targets = []versionRecord{*only}
	default:
		// Transitive levels check every live version, the others the
		// latest; with a compatibility group, only versions in the group.
		transitive := strings.HasSuffix(level, "_TRANSITIVE")
		for i := len(rec.Versions) - 1; i >= 0; i-- {
			v := rec.Versions[i]
			if v.Deleted {
				continue
			}
			if group.set {
				st, found, err := r.readSchema(ctx, sn.ctx, v.ID)
				if err != nil {
					return nil, err
				}
				if found && !group.inGroup(st) {
					continue
				}
			}
			targets = append(targets, v)
			if !transitive {
				break
			}
		}
	}
	base := strings.TrimSuffix(level, "_TRANSITIVE")
	var msgs []string
	for _, t := range targets {
		st, found, err := r.readSchema(ctx, sn.ctx, t.ID)
		if err != nil {
			return nil, err
		}
		if !found {
			return nil, fmt.Errorf("registry: subject %q version %d names missing schema id %d", sn.q, t.Version, t.ID)
		}
		var found1 []string
		if st.Type != typ {
			found1 = []string{fmt.Sprintf("{errorType:'TYPE_MISMATCH', description:'The new schema is of type %s, the old one of type %s'}", typ, st.Type)}
		} else {
			old, err := r.parsedSchema(ctx, sn.ctx, st)
			if err != nil {
				return nil, err
			}
			if base == CompatBackward || base == CompatFull {
				m, err := canRead(f, parsed, old)
				if err != nil {
					return nil, err
				}
				found1 = append(found1, m...)
			}
			if base == CompatForward || base == CompatFull {
				m, err := canRead(f, old, parsed)
				if err != nil {
					return nil, err
				}
				found1 = append(found1, m...)
			}
		}
		if len(found1) > 0 {
			msgs = append(msgs, found1...)
			msgs = append(msgs,
				fmt.Sprintf("{oldSchemaVersion: %d}", t.Version),
				fmt.Sprintf("{oldSchema: '%s'}", st.Schema),
				fmt.Sprintf("{compatibility: '%s'}", level))
		}
	}
	return msgs, nil
}

// CheckCompatibility checks a schema against a subject's versions as its
// compatibility level asks, or against one version (version > 0, or -1 for
// the latest). It returns the messages; none means compatible.
func (r *Registry) CheckCompatibility(ctx context.Context, req RegisterRequest, version int) ([]string, error) {
	done, err := r.enter()
	if err != nil {
		return nil, err
	}
	defer done()
	sn, err := r.parseLookupSubject(ctx, req.Subject)
	if err != nil {
		return nil, err
	}
	f, typ, err := r.format(req.Type)
	if err != nil {
		return nil, err
	}
	rec, _, err := r.readSubject(ctx, sn.q)
	if err != nil {
		return nil, err
	}
	var only *versionRecord
	if version != 0 {
		if !rec.live() {
			return nil, errf(ErrSubjectNotFound, "Subject '%s' not found.", sn.q)
		}
		vr, err := pickVersion(rec, sn.q, version, false)
		if err != nil {
			return nil, err
		}
		only = &vr
	}
	res, err := r.resolveRefs(ctx, sn.ctx, req.References)
	if err != nil {
		return nil, err
	}
	parsed, err := parseWith(f, req.Schema, res.resolved)
	if err != nil {
		return nil, err
	}
	cfg, err := r.effectiveConfig(ctx, sn)
	if err != nil {
		return nil, err
	}
	return r.checkCompat(ctx, sn, rec, cfg.Compatibility, f, typ, parsed, only, groupValue(cfg, req.Metadata))
}

// compatGroup is a schema's compatibility group: the subject's
// compatibilityGroup names a metadata property, and a new schema is
// checked only against versions with the same value of it (Confluent's
// semantics, e.g. "application.major.version"). set is false when the
// subject has no compatibility group.
type compatGroup struct {
	property, value string
	set             bool
}

func groupValue(cfg Config, md *Metadata) compatGroup {
	if cfg.CompatibilityGroup == "" {
		return compatGroup{}
	}
	g := compatGroup{property: cfg.CompatibilityGroup, set: true}
	if md != nil {
		g.value = md.Properties[cfg.CompatibilityGroup]
	}
	return g
}

// inGroup reports whether a stored schema belongs to the compatibility
// group.
func (g compatGroup) inGroup(st StoredSchema) bool {
	if !g.set {
		return true
	}
	v := ""
	if st.Metadata != nil {
		v = st.Metadata.Properties[g.property]
	}
	return v == g.value
}

// pickVersion finds version v (-1: latest) of a subject.
func pickVersion(rec *subjectRecord, q string, v int, withDeleted bool) (versionRecord, error) {
	if v == -1 {
		if vr, ok := rec.latest(withDeleted); ok {
			return vr, nil
		}
		return versionRecord{}, errf(ErrVersionNotFound, "Version latest not found.")
	}
	if v <= 0 {
		return versionRecord{}, errf(ErrInvalidVersion, "The specified version '%d' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\"", v)
	}
	i, ok := rec.find(v)
	if !ok || (rec.Versions[i].Deleted && !withDeleted) {
		return versionRecord{}, errf(ErrVersionNotFound, "Version %d not found.", v)
	}
	return rec.Versions[i], nil
}

// Lookup finds the version of a subject holding this schema (the newest
// one if several do).
func (r *Registry) Lookup(ctx context.Context, req RegisterRequest, deleted bool) (SubjectSchema, error) {
	done, err := r.enter()
	if err != nil {
		return SubjectSchema{}, err
	}
	defer done()
	sn, err := r.parseLookupSubject(ctx, req.Subject)
	if err != nil {
		return SubjectSchema{}, err
	}
	rec, _, err := r.readSubject(ctx, sn.q)
	if err != nil {
		return SubjectSchema{}, err
	}
	if len(rec.Versions) == 0 || (!rec.live() && !deleted) {
		return SubjectSchema{}, errf(ErrSubjectNotFound, "Subject '%s' not found.", sn.q)
	}
	f, typ, err := r.format(req.Type)
	if err != nil {
		return SubjectSchema{}, err
	}
	res, err := r.resolveRefs(ctx, sn.ctx, req.References)
	if err != nil {
		return SubjectSchema{}, err
	}
	parsed, err := parseWith(f, req.Schema, res.resolved)
	if err != nil {
		return SubjectSchema{}, err
	}
	cfg, err := r.effectiveConfig(ctx, sn)
	if err != nil {
		return SubjectSchema{}, err
	}
	normalize := req.Normalize || (cfg.Normalize != nil && *cfg.Normalize)
	form := func(s Schema) string {
		if normalize {
			return s.Normalized()
		}
		return s.Canonical()
	}
	want := form(parsed)
	for i := len(rec.Versions) - 1; i >= 0; i-- {
		v := rec.Versions[i]
		if v.Deleted && !deleted {
			continue
		}
		st, found, err := r.readSchema(ctx, sn.ctx, v.ID)
		if err != nil {
			return SubjectSchema{}, err
		}
		if !found || st.Type != typ || !sameRefs(st.References, res.refs) {
			continue
		}
		if req.Metadata != nil && !jsonEqual(req.Metadata, st.Metadata) {
			continue
		}
		if req.RuleSet != nil && !jsonEqual(req.RuleSet, st.RuleSet) {
			continue
		}
		old, err := r.parsedSchema(ctx, sn.ctx, st)
		if err != nil {
			return SubjectSchema{}, err
		}
		if form(old) == want || old.Canonical() == parsed.Canonical() {
			return SubjectSchema{Subject: sn.q, Version: v.Version, Deleted: v.Deleted, StoredSchema: st}, nil
		}
	}
	return SubjectSchema{}, errf(ErrSchemaNotFound, "Schema not found")
}

func sameRefs(a, b []Reference) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}
