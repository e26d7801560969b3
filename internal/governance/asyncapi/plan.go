package asyncapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/runnel-dev/runnel/internal/governance"
)

// The actions of an import's steps.
const (
	ActionCreate       = "create"       // topic, product
	ActionExists       = "exists"       // topic, subject
	ActionConflict     = "conflict"     // topic
	ActionRegister     = "register"     // subject
	ActionIncompatible = "incompatible" // subject
	ActionUpdate       = "update"       // product
	ActionUnchanged    = "unchanged"    // product
)

// Result is an import's plan (a dry run) or what it did (an apply).
type Result struct {
	DryRun   bool          `json:"dryRun"`
	Topics   []TopicStep   `json:"topics"`
	Subjects []SubjectStep `json:"subjects"`
	Products []ProductStep `json:"products"`
	// ErrorCode and Message say why an apply stopped or was refused;
	// the steps marked applied were done.
	ErrorCode int    `json:"error_code,omitempty"`
	Message   string `json:"message,omitempty"`
}

// TopicStep is what an import does with a topic.
type TopicStep struct {
	Name       string            `json:"name"`
	Action     string            `json:"action"` // create, exists, conflict
	Partitions int32             `json:"partitions"`
	Configs    map[string]string `json:"configs"`
	Reason     string            `json:"reason,omitempty"`
	Applied    bool              `json:"applied,omitempty"`
}

// SubjectStep is what an import does with a subject.
type SubjectStep struct {
	Subject string `json:"subject"`
	Topic   string `json:"topic"`
	Type    string `json:"type"`
	Action  string `json:"action"` // register, exists, incompatible
	Reason  string `json:"reason,omitempty"`
	// Version and ID are the registered schema's, once applied.
	Version int  `json:"version,omitempty"`
	ID      int  `json:"id,omitempty"`
	Applied bool `json:"applied,omitempty"`
	schema  Schema
}

// ProductStep is what an import does with a topic's catalog metadata.
type ProductStep struct {
	Topic   string `json:"topic"`
	Action  string `json:"action"` // create, update, unchanged
	Reason  string `json:"reason,omitempty"`
	Applied bool   `json:"applied,omitempty"`
	product Product
}

// Import reads an AsyncAPI 3 document and plans it against the cluster;
// unless dryRun it then applies the plan: topics, then subjects, then
// products. A document that does not validate is a 400 error and
// changes nothing. A plan with a conflict or an incompatible schema is
// not applied (409, the plan says why). When a step fails the result
// says which steps were applied and the error why it stopped.
func (s *Service) Import(ctx context.Context, a governance.Actor, data []byte, dryRun bool) (*Result, error) {
	if len(data) > MaxImportBytes {
		return nil, &governance.Error{Status: http.StatusRequestEntityTooLarge, Code: 41301,
			Message: fmt.Sprintf("the document is larger than %d bytes", MaxImportBytes)}
	}
	specs, err := readDocument(data)
	if err != nil {
		return nil, err
	}
	res, err := s.plan(ctx, specs)
	if err != nil {
		return nil, err
	}
	res.DryRun = dryRun
	if dryRun {
		return res, nil
	}
	if why := res.blocked(); why != "" {
		e := governance.Errorf(http.StatusConflict, "nothing was applied: %s", why)
		res.ErrorCode, res.Message = e.Code, e.Message
		return res, e
	}
	if s.opts.Auditor != nil {
		ev := governance.NewEvent(a, "asyncapi.import", "asyncapi:import", "", "", nil, res.changes())
		if err := s.opts.Auditor.Record(ctx, ev); err != nil {
			e := governance.Errorf(http.StatusInternalServerError, "nothing was applied: the import could not be audited: %v", err)
			res.ErrorCode, res.Message = e.Code, e.Message
			return res, e
		}
	}
	if err := s.apply(ctx, a, res); err != nil {
		e := stepError(err)
		res.ErrorCode, res.Message = e.Code, e.Message
		return res, e
	}
	return res, nil
}

// plan compares what the document asks with what the cluster has.
func (s *Service) plan(ctx context.Context, specs []channelSpec) (*Result, error) {
	res := &Result{Topics: []TopicStep{}, Subjects: []SubjectStep{}, Products: []ProductStep{}}
	for _, sp := range specs {
		st, err := s.planTopic(ctx, sp)
		if err != nil {
			return nil, err
		}
		res.Topics = append(res.Topics, st)
	}
	for _, sp := range specs {
		for _, sub := range []struct {
			suffix string
			schema *Schema
		}{{"-key", sp.key}, {"-value", sp.value}} {
			if sub.schema == nil {
				continue
			}
			st, err := s.planSubject(ctx, sp.topic, sp.topic+sub.suffix, *sub.schema)
			if err != nil {
				return nil, err
			}
			res.Subjects = append(res.Subjects, st)
		}
	}
	if s.opts.Catalog == nil {
		return res, nil
	}
	for _, sp := range specs {
		if sp.product == nil {
			continue
		}
		st, err := s.planProduct(ctx, sp.topic, sp.product)
		if err != nil {
			return nil, err
		}
		res.Products = append(res.Products, st)
	}
	return res, nil
}

func (s *Service) planTopic(ctx context.Context, sp channelSpec) (TopicStep, error) {
	st := TopicStep{Name: sp.topic, Partitions: sp.partitions, Configs: sp.configs}
	t, ok := s.opts.Topics.Get(sp.topic)
	if !ok {
		n, err := s.opts.Topics.Create(ctx, sp.topic, sp.partitions, sp.configs, true)
		if err != nil {
			return st, err
		}
		st.Action, st.Partitions = ActionCreate, n
		return st, nil
	}
	st.Action = ActionExists
	var diffs []string
	if sp.partitions != 0 && sp.partitions != t.Partitions {
		diffs = append(diffs, fmt.Sprintf("partitions: %d on the cluster, %d in the document", t.Partitions, sp.partitions))
	}
	st.Partitions = t.Partitions
	for _, k := range sortedKeys(sp.configs) {
		have := t.Effective[k]
		if normalConfig(k, have) != normalConfig(k, sp.configs[k]) {
			diffs = append(diffs, fmt.Sprintf("%s: %q on the cluster, %q in the document", k, have, sp.configs[k]))
		}
	}
	if len(diffs) > 0 {
		st.Action, st.Reason = ActionConflict, "the topic exists with other settings: "+strings.Join(diffs, "; ")
	}
	return st, nil
}

func (s *Service) planSubject(ctx context.Context, topic, subject string, sc Schema) (SubjectStep, error) {
	st := SubjectStep{Subject: subject, Topic: topic, Type: sc.Type, schema: sc}
	ok, err := s.opts.Schemas.Registered(ctx, subject, sc)
	if err != nil {
		return st, fmt.Errorf("asyncapi: looking %s up: %w", subject, err)
	}
	if ok {
		st.Action = ActionExists
		return st, nil
	}
	msgs, err := s.opts.Schemas.Incompatible(ctx, subject, sc)
	if err != nil {
		return st, fmt.Errorf("asyncapi: checking %s: %w", subject, err)
	}
	if len(msgs) > 0 {
		st.Action, st.Reason = ActionIncompatible, strings.Join(msgs, "; ")
		return st, nil
	}
	st.Action = ActionRegister
	return st, nil
}

func (s *Service) planProduct(ctx context.Context, topic string, ps *productSpec) (ProductStep, error) {
	st := ProductStep{Topic: topic}
	cur, stored, err := s.opts.Catalog.Product(ctx, topic)
	if err != nil {
		return st, fmt.Errorf("asyncapi: the catalog's product of %q: %w", topic, err)
	}
	want := cur
	if ps.description != nil {
		want.Description = *ps.description
	}
	if ps.owner != nil {
		want.Owner = *ps.owner
	}
	if ps.domain != nil {
		want.Domain = *ps.domain
	}
	if ps.hasTags {
		want.Tags = ps.tags
	}
	if ps.hasLinks {
		want.Links = ps.links
	}
	want.Tags = sortedSet(want.Tags)
	st.product = want
	diffs := productDiff(cur, want)
	switch {
	case !stored:
		st.Action = ActionCreate
	case len(diffs) == 0:
		st.Action = ActionUnchanged
	default:
		st.Action, st.Reason = ActionUpdate, "changes "+strings.Join(diffs, ", ")
	}
	return st, nil
}

// productDiff names the fields in which two products differ.
func productDiff(a, b Product) []string {
	var d []string
	if a.Description != b.Description {
		d = append(d, "description")
	}
	if a.Owner != b.Owner {
		d = append(d, "owner")
	}
	if a.Domain != b.Domain {
		d = append(d, "domain")
	}
	if !slices.Equal(sortedSet(a.Tags), sortedSet(b.Tags)) {
		d = append(d, "tags")
	}
	if !slices.Equal(a.Links, b.Links) {
		d = append(d, "links")
	}
	return d
}

// blocked says why a plan cannot be applied, "" when it can.
func (r *Result) blocked() string {
	var why []string
	for _, t := range r.Topics {
		if t.Action == ActionConflict {
			why = append(why, fmt.Sprintf("topic %s: %s", t.Name, t.Reason))
		}
	}
	for _, s := range r.Subjects {
		if s.Action == ActionIncompatible {
			why = append(why, fmt.Sprintf("subject %s is incompatible: %s", s.Subject, s.Reason))
		}
	}
	return strings.Join(why, "; ")
}

// importChanges is what an import is about to do, as its audit event
// says.
type importChanges struct {
	CreateTopics     []string `json:"createTopics"`
	RegisterSubjects []string `json:"registerSubjects"`
	SetProducts      []string `json:"setProducts"`
}

func (r *Result) changes() importChanges {
	c := importChanges{CreateTopics: []string{}, RegisterSubjects: []string{}, SetProducts: []string{}}
	for _, t := range r.Topics {
		if t.Action == ActionCreate {
			c.CreateTopics = append(c.CreateTopics, t.Name)
		}
	}
	for _, s := range r.Subjects {
		if s.Action == ActionRegister {
			c.RegisterSubjects = append(c.RegisterSubjects, s.Subject)
		}
	}
	for _, p := range r.Products {
		if p.Action == ActionCreate || p.Action == ActionUpdate {
			c.SetProducts = append(c.SetProducts, p.Topic)
		}
	}
	return c
}

// apply carries a plan out in order, marking each step it did.
func (s *Service) apply(ctx context.Context, a governance.Actor, res *Result) error {
	for i := range res.Topics {
		t := &res.Topics[i]
		if t.Action != ActionCreate {
			continue
		}
		n, err := s.opts.Topics.Create(ctx, t.Name, t.Partitions, t.Configs, false)
		if err != nil {
			return fmt.Errorf("creating topic %s: %w", t.Name, err)
		}
		t.Partitions, t.Applied = n, true
	}
	for i := range res.Subjects {
		sub := &res.Subjects[i]
		if sub.Action != ActionRegister {
			continue
		}
		v, id, err := s.opts.Schemas.Register(ctx, sub.Subject, sub.schema)
		if err != nil {
			return fmt.Errorf("registering %s: %w", sub.Subject, err)
		}
		sub.Version, sub.ID, sub.Applied = v, id, true
	}
	for i := range res.Products {
		p := &res.Products[i]
		if p.Action != ActionCreate && p.Action != ActionUpdate {
			continue
		}
		if err := s.opts.Catalog.SetProduct(ctx, a, p.Topic, p.product); err != nil {
			return fmt.Errorf("setting the product of %s: %w", p.Topic, err)
		}
		p.Applied = true
	}
	return nil
}

// stepError is the API error of a failed step: the step's own when it
// is an API error (a catalog refusing an owner), else 500.
func stepError(err error) *governance.Error {
	var e *governance.Error
	if errors.As(err, &e) {
		return &governance.Error{Status: e.Status, Code: e.Code, Message: err.Error()}
	}
	for _, m := range []struct {
		sentinel     error
		status, code int
	}{
		{governance.ErrNotFound, http.StatusNotFound, 40401},
		{governance.ErrConflict, http.StatusConflict, 40901},
		{governance.ErrForbidden, http.StatusForbidden, 40301},
		{governance.ErrInvalid, http.StatusBadRequest, 40001},
	} {
		if errors.Is(err, m.sentinel) {
			return &governance.Error{Status: m.status, Code: m.code, Message: err.Error()}
		}
	}
	return &governance.Error{Status: http.StatusInternalServerError, Code: 50001, Message: err.Error()}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
