package registry

import (
	"context"
	"encoding/json"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Config is a global, context or subject configuration. Unset fields are
// nil/empty; layering takes each field from the most specific level that
// sets it (subject, then its context, then global).
type Config struct {
	Compatibility      string `json:"compatibilityLevel,omitempty"`
	Normalize          *bool  `json:"normalize,omitempty"`
	Alias              string `json:"alias,omitempty"`
	CompatibilityGroup string `json:"compatibilityGroup,omitempty"`
	// ValidateFields is stored and served for Confluent's clients and
	// tools; the Avro format validates field names whatever it says.
	ValidateFields   *bool     `json:"validateFields,omitempty"`
	DefaultMetadata  *Metadata `json:"defaultMetadata,omitempty"`
	OverrideMetadata *Metadata `json:"overrideMetadata,omitempty"`
	DefaultRuleSet   *RuleSet  `json:"defaultRuleSet,omitempty"`
	OverrideRuleSet  *RuleSet  `json:"overrideRuleSet,omitempty"`
}

// overlay returns c with every field that o sets taken from o.
func (c Config) overlay(o Config) Config {
	if o.Compatibility != "" {
		c.Compatibility = o.Compatibility
	}
	if o.Normalize != nil {
		c.Normalize = o.Normalize
	}
	if o.Alias != "" {
		c.Alias = o.Alias
	}
	if o.CompatibilityGroup != "" {
		c.CompatibilityGroup = o.CompatibilityGroup
	}
	if o.ValidateFields != nil {
		c.ValidateFields = o.ValidateFields
	}
	if o.DefaultMetadata != nil {
		c.DefaultMetadata = o.DefaultMetadata
	}
	if o.OverrideMetadata != nil {
		c.OverrideMetadata = o.OverrideMetadata
	}
	if o.DefaultRuleSet != nil {
		c.DefaultRuleSet = o.DefaultRuleSet
	}
	if o.OverrideRuleSet != nil {
		c.OverrideRuleSet = o.OverrideRuleSet
	}
	return c
}

func (r *Registry) readConfig(ctx context.Context, q string, global bool) (Config, bool, error) {
	resp, err := r.cli.Get(ctx, r.kConfig(q, global))
	if err != nil {
		return Config{}, false, fmt.Errorf("registry: read config: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return Config{}, false, nil
	}
	var c Config
	if err := json.Unmarshal(resp.Kvs[0].Value, &c); err != nil {
		return Config{}, false, fmt.Errorf("registry: corrupt config: %w", err)
	}
	return c, true, nil
}

// globalConfig is the stored global config with the defaults filled in.
func (r *Registry) globalConfig(ctx context.Context) (Config, error) {
	c, _, err := r.readConfig(ctx, "", true)
	if err != nil {
		return Config{}, err
	}
	return Config{Compatibility: r.defCompat}.overlay(c), nil
}

// effectiveConfig layers global, the subject's context and the subject.
func (r *Registry) effectiveConfig(ctx context.Context, sn subjectName) (Config, error) {
	c, _, err := r.guardedConfig(ctx, sn)
	return c, err
}

// guardedConfig is effectiveConfig with a Txn condition per config key it
// read (present or not), true only while none of them has changed, so a
// registration is never decided on a compatibility level (or any other
// config field) that a concurrent PUT /config has replaced. The levels are
// read in one round trip.
func (r *Registry) guardedConfig(ctx context.Context, sn subjectName) (Config, []clientv3.Cmp, error) {
	keys := []string{r.kConfig("", true)}
	if sn.ctx != defaultContext {
		keys = append(keys, r.kConfig(qualify(sn.ctx, ""), false))
	}
	if sn.name != "" {
		keys = append(keys, r.kConfig(sn.q, false))
	}
	vals, guards, err := r.readGuarded(ctx, keys)
	if err != nil {
		return Config{}, nil, fmt.Errorf("registry: read config: %w", err)
	}
	c := Config{Compatibility: r.defCompat}
	for _, v := range vals { // global first, then context, then subject
		if v == nil {
			continue
		}
		var lc Config
		if err := json.Unmarshal(v, &lc); err != nil {
			return Config{}, nil, fmt.Errorf("registry: corrupt config: %w", err)
		}
		c = c.overlay(lc)
	}
	return c, guards, nil
}

// readGuarded reads keys in one etcd Txn and returns each one's value (nil
// when absent) and a condition per key, true only while it keeps the
// revision read (an absent key: while it stays absent).
func (r *Registry) readGuarded(ctx context.Context, keys []string) ([][]byte, []clientv3.Cmp, error) {
	ops := make([]clientv3.Op, len(keys))
	for i, k := range keys {
		ops[i] = clientv3.OpGet(k)
	}
	resp, err := r.cli.Txn(ctx).Then(ops...).Commit()
	if err != nil {
		return nil, nil, err
	}
	vals := make([][]byte, len(keys))
	guards := make([]clientv3.Cmp, len(keys))
	for i, rr := range resp.Responses {
		var rev int64
		if kvs := rr.GetResponseRange().GetKvs(); len(kvs) > 0 {
			vals[i], rev = kvs[0].Value, kvs[0].ModRevision
		}
		guards[i] = clientv3.Compare(clientv3.ModRevision(keys[i]), "=", rev)
	}
	return vals, guards, nil
}

// GetConfig returns the global config (subject ""), or a subject's (or a
// context's, ":.ctx:") own config; with defaultToGlobal the layered one.
// A subject without its own config is ErrConfigNotFound.
func (r *Registry) GetConfig(ctx context.Context, subject string, defaultToGlobal bool) (Config, error) {
	done, err := r.enter()
	if err != nil {
		return Config{}, err
	}
	defer done()
	if subject == "" {
		return r.globalConfig(ctx)
	}
	sn, err := parseSubject(subject, true)
	if err != nil {
		return Config{}, err
	}
	if sn.q == "" {
		return r.globalConfig(ctx)
	}
	if defaultToGlobal {
		return r.effectiveConfig(ctx, sn)
	}
	c, ok, err := r.readConfig(ctx, sn.q, false)
	if err != nil {
		return Config{}, err
	}
	if !ok {
		return Config{}, errf(ErrConfigNotFound, "Subject '%s' does not have subject-level compatibility configured", subject)
	}
	return c, nil
}

// SetConfig merges c into the global (subject "") or subject config and
// returns the stored result.
func (r *Registry) SetConfig(ctx context.Context, subject string, c Config) (Config, error) {
	done, err := r.enter()
	if err != nil {
		return Config{}, err
	}
	defer done()
	if c.Compatibility != "" {
		lvl, ok := parseCompatibility(c.Compatibility)
		if !ok {
			return Config{}, errf(ErrInvalidCompatibility, "Invalid compatibility level. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive")
		}
		c.Compatibility = lvl
	}
	global := subject == ""
	var q string
	if !global {
		sn, err := parseSubject(subject, true)
		if err != nil {
			return Config{}, err
		}
		q = sn.q
		global = q == ""
		if c.Alias != "" {
			if _, err := aliasTarget(sn.ctx, c.Alias); err != nil {
				return Config{}, errf(ErrInvalidRequest, "Invalid alias %q: %v", c.Alias, err)
			}
		}
	}
	key := r.kConfig(q, global)
	for range r.maxRetries {
		resp, err := r.cli.Get(ctx, key)
		if err != nil {
			return Config{}, fmt.Errorf("registry: read config: %w", err)
		}
		var cur Config
		var rev int64
		if len(resp.Kvs) > 0 {
			rev = resp.Kvs[0].ModRevision
			if err := json.Unmarshal(resp.Kvs[0].Value, &cur); err != nil {
				return Config{}, fmt.Errorf("registry: corrupt config: %w", err)
			}
		}
		next := cur.overlay(c)
		b, err := json.Marshal(next)
		if err != nil {
			return Config{}, fmt.Errorf("registry: encode config: %w", err)
		}
		tr, err := r.cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
			Then(clientv3.OpPut(key, string(b))).Commit()
		if err != nil {
			return Config{}, fmt.Errorf("registry: write config: %w", err)
		}
		if tr.Succeeded {
			return next, nil
		}
	}
	return Config{}, ErrConflict
}

// DeleteConfig removes the global (subject "") or a subject's config and
// returns what it was. Deleting a config that is not set for a subject
// that does not exist is ErrSubjectNotFound.
func (r *Registry) DeleteConfig(ctx context.Context, subject string) (Config, error) {
	done, err := r.enter()
	if err != nil {
		return Config{}, err
	}
	defer done()
	global := subject == ""
	var sn subjectName
	if !global {
		if sn, err = parseSubject(subject, true); err != nil {
			return Config{}, err
		}
		global = sn.q == ""
	}
	key := r.kConfig(sn.q, global)
	resp, err := r.cli.Delete(ctx, key, clientv3.WithPrevKV())
	if err != nil {
		return Config{}, fmt.Errorf("registry: delete config: %w", err)
	}
	var prev Config
	if len(resp.PrevKvs) > 0 {
		if err := json.Unmarshal(resp.PrevKvs[0].Value, &prev); err != nil {
			return Config{}, fmt.Errorf("registry: corrupt config: %w", err)
		}
	} else if !global && sn.name != "" {
		rec, _, err := r.readSubject(ctx, sn.q)
		if err != nil {
			return Config{}, err
		}
		if len(rec.Versions) == 0 {
			return Config{}, errf(ErrSubjectNotFound, "Subject '%s' not found.", subject)
		}
	}
	if global && prev.Compatibility == "" {
		prev.Compatibility = r.defCompat
	}
	return prev, nil
}

func (r *Registry) readMode(ctx context.Context, q string, global bool) (string, bool, error) {
	resp, err := r.cli.Get(ctx, r.kMode(q, global))
	if err != nil {
		return "", false, fmt.Errorf("registry: read mode: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return "", false, nil
	}
	return string(resp.Kvs[0].Value), true, nil
}

// effectiveMode is the subject's mode, else its context's, else the
// global one; a global READONLY_OVERRIDE wins over all.
func (r *Registry) effectiveMode(ctx context.Context, sn subjectName) (string, error) {
	m, _, err := r.guardedMode(ctx, sn)
	return m, err
}

// guardedMode is effectiveMode with a Txn condition per mode key it read,
// true only while none of them has changed, so a registration cannot slip
// past a concurrent switch to READONLY. The levels are read in one round
// trip.
func (r *Registry) guardedMode(ctx context.Context, sn subjectName) (string, []clientv3.Cmp, error) {
	keys := []string{r.kMode("", true)}
	if sn.name != "" {
		keys = append(keys, r.kMode(sn.q, false))
	}
	if sn.ctx != defaultContext {
		keys = append(keys, r.kMode(qualify(sn.ctx, ""), false))
	}
	vals, guards, err := r.readGuarded(ctx, keys)
	if err != nil {
		return "", nil, fmt.Errorf("registry: read mode: %w", err)
	}
	g := ModeReadWrite
	if vals[0] != nil {
		g = string(vals[0])
	}
	if g == ModeReadOnlyOverride {
		return g, guards, nil
	}
	for _, v := range vals[1:] { // the subject's own mode, else its context's
		if v != nil {
			return string(v), guards, nil
		}
	}
	return g, guards, nil
}

// GetMode returns the global mode (subject "") or a subject's own; with
// defaultToGlobal the effective one. A subject without its own mode is
// ErrModeNotFound.
func (r *Registry) GetMode(ctx context.Context, subject string, defaultToGlobal bool) (string, error) {
	done, err := r.enter()
	if err != nil {
		return "", err
	}
	defer done()
	if subject == "" {
		m, ok, err := r.readMode(ctx, "", true)
		if err != nil || ok {
			return m, err
		}
		return ModeReadWrite, nil
	}
	sn, err := parseSubject(subject, true)
	if err != nil {
		return "", err
	}
	if sn.q == "" {
		m, ok, err := r.readMode(ctx, "", true)
		if err != nil || ok {
			return m, err
		}
		return ModeReadWrite, nil
	}
	if defaultToGlobal {
		return r.effectiveMode(ctx, sn)
	}
	m, ok, err := r.readMode(ctx, sn.q, false)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", errf(ErrModeNotFound, "Subject '%s' does not have subject-level mode configured", subject)
	}
	return m, nil
}

// SetMode sets the global (subject "") or a subject's mode. IMPORT needs
// an empty registry (or subject) unless force.
func (r *Registry) SetMode(ctx context.Context, subject, mode string, force bool) (string, error) {
	done, err := r.enter()
	if err != nil {
		return "", err
	}
	defer done()
	m, ok := parseMode(mode)
	if !ok {
		return "", errf(ErrInvalidMode, "Invalid mode. Valid values are READWRITE, READONLY, READONLY_OVERRIDE, IMPORT")
	}
	global := subject == ""
	var sn subjectName
	if !global {
		if sn, err = parseSubject(subject, true); err != nil {
			return "", err
		}
		global = sn.q == ""
	}
	if m == ModeImport && !force {
		subs, err := r.listSubjects(ctx)
		if err != nil {
			return "", err
		}
		for q, rec := range subs {
			if len(rec.Versions) == 0 {
				continue
			}
			inScope := global || q == sn.q || (sn.name == "" && contextOf(q) == sn.ctx)
			if inScope {
				return "", errf(ErrNotPermitted, "Cannot import since found existing subjects")
			}
		}
	}
	if _, err := r.cli.Put(ctx, r.kMode(sn.q, global), m); err != nil {
		return "", fmt.Errorf("registry: write mode: %w", err)
	}
	return m, nil
}

// DeleteMode removes a subject's mode (or resets the global one to
// READWRITE) and returns what it was.
func (r *Registry) DeleteMode(ctx context.Context, subject string) (string, error) {
	done, err := r.enter()
	if err != nil {
		return "", err
	}
	defer done()
	global := subject == ""
	var sn subjectName
	if !global {
		if sn, err = parseSubject(subject, true); err != nil {
			return "", err
		}
		global = sn.q == ""
	}
	resp, err := r.cli.Delete(ctx, r.kMode(sn.q, global), clientv3.WithPrevKV())
	if err != nil {
		return "", fmt.Errorf("registry: delete mode: %w", err)
	}
	if len(resp.PrevKvs) == 0 {
		if global {
			return ModeReadWrite, nil
		}
		return "", errf(ErrModeNotFound, "Subject '%s' does not have subject-level mode configured", subject)
	}
	return string(resp.PrevKvs[0].Value), nil
}
