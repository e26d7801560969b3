package registry

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// DefaultPrefix is where the registry keeps its state in etcd unless
// Options.Prefix says otherwise.
const DefaultPrefix = "/runnel/registry"

// Options configure a Registry.
type Options struct {
	// Client is the etcd client holding the registry's state (required).
	Client *clientv3.Client
	// Prefix is the etcd key prefix; DefaultPrefix when empty.
	Prefix string
	// Formats are the schema types served (AVRO, PROTOBUF, JSON); at least
	// one, each Type() once.
	Formats []Format
	// DefaultCompatibility is the global compatibility level until one is
	// configured; BACKWARD when empty.
	DefaultCompatibility string
	// Logger receives the registry's logs; discarded when nil.
	Logger *slog.Logger
	// ValidateRules, when set, checks a schema's data contract rule set
	// (after layering) before it is registered; an error refuses the
	// registration as an invalid schema (42201), so a rule that cannot
	// compile never reaches the broker's enforcement.
	ValidateRules func(*RuleSet) error
}

// Registry is the schema registry. Every read goes to etcd (linearizable),
// so a write through one Registry is visible through every other one on
// the same etcd as soon as it returns. Only parsed schemas are cached in
// memory: a schema id's record never changes once written.
type Registry struct {
	cli        *clientv3.Client
	prefix     string
	formats    map[string]Format
	defCompat  string
	validate   func(*RuleSet) error
	log        *slog.Logger
	mu         sync.Mutex
	parsed     map[parsedKey]Schema
	closed     bool
	closeCh    chan struct{}
	inflight   sync.WaitGroup
	maxRetries int
	// beforeCommit, when set (tests only), runs in Register between the
	// reads an attempt is decided on and its Txn, so a test can change
	// state there deterministically.
	beforeCommit func(attempt int)
}

type parsedKey struct {
	ctx string
	id  int
}

// maxParsedCache bounds the parsed-schema cache; it is emptied when full.
const maxParsedCache = 4096

// New builds a Registry on opts.Client.
func New(opts Options) (*Registry, error) {
	if opts.Client == nil {
		return nil, fmt.Errorf("%w: Options.Client is nil", ErrInvalidOptions)
	}
	prefix := strings.TrimRight(opts.Prefix, "/")
	if opts.Prefix == "" {
		prefix = DefaultPrefix
	}
	if prefix == "" {
		return nil, fmt.Errorf("%w: Options.Prefix %q is only slashes", ErrInvalidOptions, opts.Prefix)
	}
	if len(opts.Formats) == 0 {
		return nil, fmt.Errorf("%w: no schema formats", ErrInvalidOptions)
	}
	formats := make(map[string]Format, len(opts.Formats))
	for _, f := range opts.Formats {
		if f == nil {
			return nil, fmt.Errorf("%w: nil format", ErrInvalidOptions)
		}
		t := f.Type()
		if t == "" || t != strings.ToUpper(t) {
			return nil, fmt.Errorf("%w: format type %q must be non-empty upper case", ErrInvalidOptions, t)
		}
		if _, dup := formats[t]; dup {
			return nil, fmt.Errorf("%w: format %s given twice", ErrInvalidOptions, t)
		}
		formats[t] = f
	}
	compat := CompatBackward
	if opts.DefaultCompatibility != "" {
		c, ok := parseCompatibility(opts.DefaultCompatibility)
		if !ok {
			return nil, fmt.Errorf("%w: DefaultCompatibility %q is not a compatibility level", ErrInvalidOptions, opts.DefaultCompatibility)
		}
		compat = c
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Registry{
		cli:        opts.Client,
		prefix:     prefix,
		formats:    formats,
		defCompat:  compat,
		validate:   opts.ValidateRules,
		log:        log,
		parsed:     make(map[parsedKey]Schema),
		closeCh:    make(chan struct{}),
		maxRetries: 64,
	}, nil
}

// Close stops the registry: calls in flight finish, later ones fail with
// ErrClosed. It does not close the etcd client, which the caller owns.
func (r *Registry) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	close(r.closeCh)
	r.mu.Unlock()
	r.inflight.Wait()
	return nil
}

// enter marks a call in flight; the returned func ends it.
func (r *Registry) enter() (func(), error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, ErrClosed
	}
	r.inflight.Add(1)
	return r.inflight.Done, nil
}

// Types lists the schema types served, sorted.
func (r *Registry) Types() []string {
	out := make([]string, 0, len(r.formats))
	for t := range r.formats {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// Reference is a schema's reference to a schema registered under another
// subject.
type Reference struct {
	Name    string `json:"name"`
	Subject string `json:"subject"`
	Version int    `json:"version"`
}

// Metadata is a data contract's metadata: tags per field path, free
// properties and the sensitive field names.
type Metadata struct {
	Tags       map[string][]string `json:"tags,omitempty"`
	Properties map[string]string   `json:"properties,omitempty"`
	Sensitive  []string            `json:"sensitive,omitempty"`
}

// Rule is one data contract rule, with Confluent's fields.
type Rule struct {
	Name      string            `json:"name"`
	Doc       string            `json:"doc,omitempty"`
	Kind      string            `json:"kind,omitempty"`
	Mode      string            `json:"mode,omitempty"`
	Type      string            `json:"type,omitempty"`
	Tags      []string          `json:"tags,omitempty"`
	Params    map[string]string `json:"params,omitempty"`
	Expr      string            `json:"expr,omitempty"`
	OnSuccess string            `json:"onSuccess,omitempty"`
	OnFailure string            `json:"onFailure,omitempty"`
	Disabled  bool              `json:"disabled,omitempty"`
	// Extra holds fields this registry does not know, so a rule is stored
	// and served back verbatim.
	Extra map[string]json.RawMessage `json:"-"`
}

// ruleFields is Rule without its methods, for the default JSON coding.
type ruleFields Rule

// UnmarshalJSON decodes a rule, keeping unknown fields in Extra.
func (r *Rule) UnmarshalJSON(b []byte) error {
	var known ruleFields
	if err := json.Unmarshal(b, &known); err != nil {
		return err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return err
	}
	for _, k := range ruleKeys {
		delete(all, k)
	}
	known.Extra = nil
	if len(all) > 0 {
		known.Extra = all
	}
	*r = Rule(known)
	return nil
}

// MarshalJSON encodes a rule with its unknown fields.
func (r Rule) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(ruleFields(r))
	if err != nil || len(r.Extra) == 0 {
		return b, err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return nil, err
	}
	for k, v := range r.Extra {
		if _, known := all[k]; !known {
			all[k] = v
		}
	}
	return json.Marshal(all)
}

// ruleKeys are the JSON names of Rule's known fields.
var ruleKeys = []string{"name", "doc", "kind", "mode", "type", "tags", "params", "expr", "onSuccess", "onFailure", "disabled"}

// RuleSet is a data contract's rules.
type RuleSet struct {
	MigrationRules []Rule `json:"migrationRules,omitempty"`
	DomainRules    []Rule `json:"domainRules,omitempty"`
	EncodingRules  []Rule `json:"encodingRules,omitempty"`
}

// StoredSchema is a schema as registered under its id.
type StoredSchema struct {
	// ID is unique within the schema's context.
	ID int `json:"-"`
	// GUID identifies the schema's content (text, references and data
	// contract) in every context (see guids.go); derived from the stored
	// identity hash, never stored on its own.
	GUID string `json:"-"`
	// Type is the format's type (AVRO, PROTOBUF, JSON).
	Type string `json:"type"`
	// Schema is the text as registered (normalized if asked).
	Schema     string      `json:"schema"`
	References []Reference `json:"references,omitempty"`
	Metadata   *Metadata   `json:"metadata,omitempty"`
	RuleSet    *RuleSet    `json:"ruleSet,omitempty"`
}

// SubjectVersion names one version of a subject.
type SubjectVersion struct {
	Subject string
	Version int
	// Deleted is true for a soft-deleted version.
	Deleted bool
}

// SchemaInfo is a schema with the subject versions that use it.
type SchemaInfo struct {
	StoredSchema
	// Context is the schema context of the id ("." is the default one).
	Context string
	// Usages are the subject versions registered with this id, soft-deleted
	// ones included (marked), sorted by subject then version.
	Usages []SubjectVersion
}

// SubjectSchema is one version of a subject.
type SubjectSchema struct {
	// Subject is the qualified subject name (":.ctx:name" outside the
	// default context).
	Subject string
	Version int
	Deleted bool
	StoredSchema
}

// Sentinel errors; each maps to one Confluent error code (see errorTable).
var (
	ErrInvalidOptions        = errors.New("registry: invalid options")
	ErrClosed                = errors.New("registry: closed")
	ErrSubjectNotFound       = errors.New("registry: subject not found")
	ErrVersionNotFound       = errors.New("registry: version not found")
	ErrSchemaNotFound        = errors.New("registry: schema not found")
	ErrSubjectSoftDeleted    = errors.New("registry: subject soft-deleted")
	ErrSubjectNotSoftDeleted = errors.New("registry: subject not soft-deleted")
	ErrVersionSoftDeleted    = errors.New("registry: version soft-deleted")
	ErrVersionNotSoftDeleted = errors.New("registry: version not soft-deleted")
	ErrConfigNotFound        = errors.New("registry: subject has no compatibility config")
	ErrModeNotFound          = errors.New("registry: subject has no mode")
	ErrInvalidVersion        = errors.New("registry: invalid version")
	ErrInvalidCompatibility  = errors.New("registry: invalid compatibility level")
	ErrInvalidMode           = errors.New("registry: invalid mode")
	ErrNotPermitted          = errors.New("registry: operation not permitted")
	ErrReferenceExists       = errors.New("registry: version is referenced")
	ErrIncompatible          = errors.New("registry: incompatible schema")
	ErrInvalidRequest        = errors.New("registry: invalid request")
	ErrConflict              = errors.New("registry: too many concurrent writes")
	ErrContextNotFound       = errors.New("registry: context not found")
	ErrContextNotEmpty       = errors.New("registry: context not empty")
)

// apiError carries a Confluent-style message for a sentinel error.
type apiError struct {
	err error
	msg string
	// messages are the compatibility messages of an ErrIncompatible.
	messages []string
}

func (e *apiError) Error() string { return e.msg }
func (e *apiError) Unwrap() error { return e.err }

func errf(sentinel error, format string, args ...any) error {
	return &apiError{err: sentinel, msg: fmt.Sprintf(format, args...)}
}

// IncompatibilityMessages returns the messages of an ErrIncompatible error.
func IncompatibilityMessages(err error) []string {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.messages
	}
	return nil
}

// Compatibility levels.
const (
	CompatNone               = "NONE"
	CompatBackward           = "BACKWARD"
	CompatBackwardTransitive = "BACKWARD_TRANSITIVE"
	CompatForward            = "FORWARD"
	CompatForwardTransitive  = "FORWARD_TRANSITIVE"
	CompatFull               = "FULL"
	CompatFullTransitive     = "FULL_TRANSITIVE"
)

func parseCompatibility(s string) (string, bool) {
	u := strings.ToUpper(strings.TrimSpace(s))
	switch u {
	case CompatNone, CompatBackward, CompatBackwardTransitive, CompatForward, CompatForwardTransitive, CompatFull, CompatFullTransitive:
		return u, true
	}
	return "", false
}

// Modes.
const (
	ModeReadWrite        = "READWRITE"
	ModeReadOnly         = "READONLY"
	ModeReadOnlyOverride = "READONLY_OVERRIDE"
	ModeImport           = "IMPORT"
)

func parseMode(s string) (string, bool) {
	u := strings.ToUpper(strings.TrimSpace(s))
	switch u {
	case ModeReadWrite, ModeReadOnly, ModeReadOnlyOverride, ModeImport:
		return u, true
	}
	return "", false
}

// defaultContext is the name of the default schema context.
const defaultContext = "."

// subjectName is a parsed subject: its context and the qualified name under
// which it is stored (the bare name in the default context).
type subjectName struct {
	ctx  string
	name string
	q    string
}

// parseSubject parses ":.ctx:name" (or a bare name in the default
// context). An empty name is allowed only when allowEmpty (a context's own
// config or mode).
func parseSubject(s string, allowEmpty bool) (subjectName, error) {
	ctx, name := defaultContext, s
	if strings.HasPrefix(s, ":.") {
		rest := s[1:]
		i := strings.IndexByte(rest, ':')
		if i < 0 {
			return subjectName{}, errf(ErrInvalidRequest, "Invalid subject %q: a context prefix is written :.context:subject", s)
		}
		ctx, name = rest[:i], rest[i+1:]
	}
	if name == "" && !allowEmpty {
		return subjectName{}, errf(ErrInvalidRequest, "Invalid subject %q: the subject name is empty", s)
	}
	for _, c := range s {
		if c < 0x20 || c == 0x7f {
			return subjectName{}, errf(ErrInvalidRequest, "Invalid subject %q: control characters are not allowed", s)
		}
	}
	return subjectName{ctx: ctx, name: name, q: qualify(ctx, name)}, nil
}

func qualify(ctx, name string) string {
	if ctx == defaultContext {
		return name
	}
	return ":" + ctx + ":" + name
}

// contextOf returns the context a qualified subject belongs to.
func contextOf(q string) string {
	sn, err := parseSubject(q, true)
	if err != nil {
		return defaultContext
	}
	return sn.ctx
}
