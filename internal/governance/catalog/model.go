package catalog

import (
	"fmt"
	"maps"
	"math"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/runnel-dev/runnel/internal/auth"
	"github.com/runnel-dev/runnel/internal/governance"
)

// Lifecycle states of a product.
const (
	LifecycleDraft      = "draft"
	LifecycleActive     = "active"
	LifecycleDeprecated = "deprecated"
	LifecycleRetired    = "retired"
)

var lifecycles = []string{LifecycleDraft, LifecycleActive, LifecycleDeprecated, LifecycleRetired}

// TagPII is the tag whose fields a sample masks even without a tag
// definition saying so.
const TagPII = "PII"

// Attribute types of business metadata.
var attributeTypes = []string{"string", "int", "bool", "enum", "date", "url"}

// Bounds on what a product, team or tag definition may hold, so one
// object stays well under etcd's value limit.
const (
	maxDescription = 16 << 10
	maxShort       = 256 // owner, domain, link titles, attribute names
	maxTags        = 64
	maxLinks       = 32
	maxFieldTags   = 512
	maxBusiness    = 64
	maxMembers     = 1024
	maxAttributes  = 64
	maxEnumValues  = 256
)

// Link is a titled URL of a product (a runbook, a dashboard).
type Link struct {
	Title string `json:"title"`
	URL   string `json:"url"`
}

// ProductCore is what a product answer and a search result share.
type ProductCore struct {
	Topic       string `json:"topic"`
	Exists      bool   `json:"exists"`
	Partitions  int32  `json:"partitions"`
	Owner       string `json:"owner"`
	Description string `json:"description"`
	Domain      string `json:"domain"`
	// Tags are the product's own tags and every tag of its fields.
	Tags []string `json:"tags"`
	// OwnTags are the tags stored on the product itself (what a PUT
	// sets), without those its fields bring.
	OwnTags          []string            `json:"ownTags"`
	Lifecycle        string              `json:"lifecycle"`
	BusinessMetadata map[string]any      `json:"businessMetadata"`
	Links            []Link              `json:"links"`
	FieldTags        map[string][]string `json:"fieldTags"`
	CreatedAt        string              `json:"createdAt,omitempty"`
	UpdatedAt        string              `json:"updatedAt,omitempty"`
	UpdatedBy        string              `json:"updatedBy,omitempty"`
	// Version is the stored metadata's version, 0 when there is none.
	Version int64 `json:"version"`
}

// Product is a data product as GET /api/v1/products/{topic} answers it.
type Product struct {
	ProductCore
	Schema    *Schema   `json:"schema"`
	KeySchema *Schema   `json:"keySchema"`
	Contract  *Contract `json:"contract"`
}

// ProductSummary is a product in a listing.
type ProductSummary struct {
	ProductCore
	// MatchedFields are the schema fields the query matched by name.
	MatchedFields []string `json:"matchedFields,omitempty"`
}

// Schema is the registry schema of a product's value or key: the latest
// version of its subject and its fields.
type Schema struct {
	Subject string  `json:"subject"`
	Version int     `json:"version"`
	ID      int     `json:"id"`
	Type    string  `json:"type"`
	Fields  []Field `json:"fields"`
}

// Field is one field of a schema: its dotted path through nested
// records, messages and objects, its type, doc and tags.
type Field struct {
	Path string   `json:"path"`
	Type string   `json:"type"`
	Doc  string   `json:"doc,omitempty"`
	Tags []string `json:"tags"`
}

// Contract summarises the rule set of a product's value subject.
type Contract struct {
	Rules []ContractRule `json:"rules"`
}

// ContractRule is one data contract rule.
type ContractRule struct {
	Name      string `json:"name"`
	Kind      string `json:"kind,omitempty"`
	Mode      string `json:"mode,omitempty"`
	Type      string `json:"type,omitempty"`
	Expr      string `json:"expr,omitempty"`
	OnFailure string `json:"onFailure,omitempty"`
	Disabled  bool   `json:"disabled,omitempty"`
}

// ProductUpdate is the body of PUT /api/v1/products/{topic}: the whole
// metadata, replacing what is stored. Version is the stored version the
// write is based on: 0 (or absent) creates.
type ProductUpdate struct {
	Owner            string              `json:"owner"`
	Description      string              `json:"description"`
	Domain           string              `json:"domain"`
	Tags             []string            `json:"tags"`
	Lifecycle        string              `json:"lifecycle"`
	BusinessMetadata map[string]any      `json:"businessMetadata"`
	Links            []Link              `json:"links"`
	FieldTags        map[string][]string `json:"fieldTags"`
	Version          int64               `json:"version"`
}

// storedProduct is a product's metadata as kept in etcd.
type storedProduct struct {
	Topic            string              `json:"topic"`
	Owner            string              `json:"owner,omitempty"`
	Description      string              `json:"description,omitempty"`
	Domain           string              `json:"domain,omitempty"`
	Tags             []string            `json:"tags,omitempty"`
	Lifecycle        string              `json:"lifecycle"`
	BusinessMetadata map[string]any      `json:"businessMetadata,omitempty"`
	Links            []Link              `json:"links,omitempty"`
	FieldTags        map[string][]string `json:"fieldTags,omitempty"`
	CreatedAt        time.Time           `json:"createdAt"`
	UpdatedAt        time.Time           `json:"updatedAt"`
	UpdatedBy        string              `json:"updatedBy"`
	Version          int64               `json:"version"`
}

// Team is a named set of principals that may own products.
type Team struct {
	Name        string   `json:"name"`
	Members     []string `json:"members"`
	Description string   `json:"description"`
	UpdatedAt   string   `json:"updatedAt,omitempty"`
	UpdatedBy   string   `json:"updatedBy,omitempty"`
	Version     int64    `json:"version"`
}

// TeamUpdate is the body of PUT /api/v1/teams/{name}. A non-zero
// Version makes the write conditional on it.
type TeamUpdate struct {
	Members     []string `json:"members"`
	Description string   `json:"description"`
	Version     int64    `json:"version"`
}

// Attribute is a business metadata attribute a tag defines: products with
// the tag may (or, when Required, must) carry it, with a value of Type.
type Attribute struct {
	Name     string   `json:"name"`
	Type     string   `json:"type"`
	Values   []string `json:"values,omitempty"` // the allowed values of an enum
	Required bool     `json:"required"`
}

// TagDef is a tag definition.
type TagDef struct {
	Name        string      `json:"name"`
	Description string      `json:"description"`
	Attributes  []Attribute `json:"attributes"`
	// Mask makes a sample mask the fields with this tag; PII masks unless
	// its definition says "mask": false.
	Mask      *bool  `json:"mask,omitempty"`
	UpdatedAt string `json:"updatedAt,omitempty"`
	UpdatedBy string `json:"updatedBy,omitempty"`
	Version   int64  `json:"version"`
}

// TagUpdate is the body of PUT /api/v1/tags/{name}. A non-zero Version
// makes the write conditional on it.
type TagUpdate struct {
	Description string      `json:"description"`
	Attributes  []Attribute `json:"attributes"`
	Mask        *bool       `json:"mask,omitempty"`
	Version     int64       `json:"version"`
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", governance.ErrInvalid, fmt.Sprintf(format, args...))
}

var (
	topicRE = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)
	tagRE   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$`)
	nameRE  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)
	attrRE  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]{0,63}$`)
)

// ValidTopic checks a topic name as Kafka does.
func ValidTopic(name string) error {
	if !topicRE.MatchString(name) || name == "." || name == ".." {
		return invalid("%q is not a valid topic name (1 to 249 of a-z, A-Z, 0-9, '.', '_', '-')", name)
	}
	return nil
}

func validTag(where, t string) error {
	if !tagRE.MatchString(t) {
		return invalid("%s: %q is not a valid tag (a letter or digit, then up to 63 of letters, digits, '_', '.', ':', '-')", where, t)
	}
	return nil
}

func validName(what, n string) error {
	if !nameRE.MatchString(n) {
		return invalid("%q is not a valid %s name (a letter or digit, then up to 127 of letters, digits, '_', '.', '-')", n, what)
	}
	return nil
}

func validText(field, s string, max int) error {
	if len(s) > max {
		return invalid("%s is longer than %d bytes", field, max)
	}
	if !utf8.ValidString(s) {
		return invalid("%s is not valid UTF-8", field)
	}
	return nil
}

// validOwner checks an owner: "", "User:<name>" or "Team:<name>".
func validOwner(o string) error {
	if o == "" {
		return nil
	}
	typ, name, ok := strings.Cut(o, ":")
	switch {
	case !ok || name == "":
		return invalid("owner %q: want User:<name> or Team:<name>", o)
	case typ == "Team":
		return validName("team", name)
	case typ == auth.UserType:
		return validText("owner", o, maxShort)
	}
	return invalid("owner %q: want User:<name> or Team:<name>", o)
}

func validPrincipal(p string) error {
	pr, err := auth.ParsePrincipal(p)
	if err != nil || pr.Type != auth.UserType || pr.Name == "" {
		return invalid("member %q: want User:<name>", p)
	}
	return validText("member", p, maxShort)
}

func validURL(field, s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return invalid("%s: %q is not an absolute http(s) URL", field, s)
	}
	return validText(field, s, 2048)
}

// normTags validates, sorts and deduplicates tags.
func normTags(where string, tags []string) ([]string, error) {
	if len(tags) > maxTags {
		return nil, invalid("%s: more than %d tags", where, maxTags)
	}
	for _, t := range tags {
		if err := validTag(where, t); err != nil {
			return nil, err
		}
	}
	out := slices.Clone(tags)
	slices.Sort(out)
	return slices.Compact(out), nil
}

// validateProduct checks an update and returns it normalised (tags sorted
// and unique, lifecycle defaulted). defs are the tag definitions; the
// business metadata must satisfy those of the product's tags.
func validateProduct(u ProductUpdate, defs map[string]*TagDef) (ProductUpdate, error) {
	var err error
	if err = validOwner(u.Owner); err != nil {
		return u, err
	}
	if err = validText("description", u.Description, maxDescription); err != nil {
		return u, err
	}
	if err = validText("domain", u.Domain, maxShort); err != nil {
		return u, err
	}
	if u.Tags, err = normTags("tags", u.Tags); err != nil {
		return u, err
	}
	if u.Lifecycle == "" {
		u.Lifecycle = LifecycleActive
	}
	if !slices.Contains(lifecycles, u.Lifecycle) {
		return u, invalid("lifecycle %q: want one of %s", u.Lifecycle, strings.Join(lifecycles, ", "))
	}
	if len(u.Links) > maxLinks {
		return u, invalid("links: more than %d", maxLinks)
	}
	for i, l := range u.Links {
		if l.Title == "" {
			return u, invalid("links[%d]: a title is required", i)
		}
		if err := validText(fmt.Sprintf("links[%d].title", i), l.Title, maxShort); err != nil {
			return u, err
		}
		if err := validURL(fmt.Sprintf("links[%d].url", i), l.URL); err != nil {
			return u, err
		}
	}
	if len(u.FieldTags) > maxFieldTags {
		return u, invalid("fieldTags: more than %d fields", maxFieldTags)
	}
	ft := make(map[string][]string, len(u.FieldTags))
	for path, tags := range u.FieldTags {
		if path == "" || strings.HasPrefix(path, ".") || strings.HasSuffix(path, ".") || strings.Contains(path, "..") {
			return u, invalid("fieldTags: %q is not a dotted field path", path)
		}
		if err := validText("fieldTags path", path, maxShort); err != nil {
			return u, err
		}
		nt, err := normTags("fieldTags."+path, tags)
		if err != nil {
			return u, err
		}
		if len(nt) > 0 {
			ft[path] = nt
		}
	}
	u.FieldTags = ft
	if len(u.BusinessMetadata) > maxBusiness {
		return u, invalid("businessMetadata: more than %d attributes", maxBusiness)
	}
	for k, v := range u.BusinessMetadata {
		if !attrRE.MatchString(k) {
			return u, invalid("businessMetadata: %q is not a valid attribute name", k)
		}
		switch x := v.(type) {
		case string:
			if err := validText("businessMetadata."+k, x, maxShort*4); err != nil {
				return u, err
			}
		case float64, bool:
		default:
			return u, invalid("businessMetadata.%s: a value must be a string, number or boolean", k)
		}
	}
	// Every tag the product carries itself (product tags and field tags)
	// brings its definition's attributes.
	own := slices.Clone(u.Tags)
	for _, tags := range ft {
		own = append(own, tags...)
	}
	slices.Sort(own)
	own = slices.Compact(own)
	for _, t := range own {
		d := defs[t]
		if d == nil {
			continue
		}
		for _, a := range d.Attributes {
			v, ok := u.BusinessMetadata[a.Name]
			if !ok {
				if a.Required {
					return u, invalid("businessMetadata.%s is required by tag %s", a.Name, t)
				}
				continue
			}
			if err := checkAttribute(a, v); err != nil {
				return u, invalid("businessMetadata.%s (tag %s): %v", a.Name, t, err)
			}
		}
	}
	return u, nil
}

// checkAttribute checks a business metadata value against its type.
func checkAttribute(a Attribute, v any) error {
	switch a.Type {
	case "string":
		if _, ok := v.(string); !ok {
			return fmt.Errorf("want a string, got %v", v)
		}
	case "int":
		f, ok := v.(float64)
		if !ok || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
			return fmt.Errorf("want an integer, got %v", v)
		}
	case "bool":
		if _, ok := v.(bool); !ok {
			return fmt.Errorf("want true or false, got %v", v)
		}
	case "enum":
		s, ok := v.(string)
		if !ok || !slices.Contains(a.Values, s) {
			return fmt.Errorf("want one of %s, got %v", strings.Join(a.Values, ", "), v)
		}
	case "date":
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("want a date (YYYY-MM-DD), got %v", v)
		}
		if _, err := time.Parse(time.DateOnly, s); err != nil {
			return fmt.Errorf("want a date (YYYY-MM-DD), got %q", s)
		}
	case "url":
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("want a URL, got %v", v)
		}
		if err := validURL("value", s); err != nil {
			return fmt.Errorf("want an absolute http(s) URL, got %q", s)
		}
	}
	return nil
}

// validateTeam checks and normalises a team update.
func validateTeam(u TeamUpdate) (TeamUpdate, error) {
	if err := validText("description", u.Description, maxDescription); err != nil {
		return u, err
	}
	if len(u.Members) > maxMembers {
		return u, invalid("members: more than %d", maxMembers)
	}
	for _, m := range u.Members {
		if err := validPrincipal(m); err != nil {
			return u, err
		}
	}
	u.Members = slices.Clone(u.Members)
	slices.Sort(u.Members)
	u.Members = slices.Compact(u.Members)
	if u.Members == nil {
		u.Members = []string{}
	}
	return u, nil
}

// validateTag checks and normalises a tag definition update.
func validateTag(u TagUpdate) (TagUpdate, error) {
	if err := validText("description", u.Description, maxDescription); err != nil {
		return u, err
	}
	if len(u.Attributes) > maxAttributes {
		return u, invalid("attributes: more than %d", maxAttributes)
	}
	seen := map[string]bool{}
	for i, a := range u.Attributes {
		where := fmt.Sprintf("attributes[%d]", i)
		if !attrRE.MatchString(a.Name) {
			return u, invalid("%s: %q is not a valid attribute name", where, a.Name)
		}
		if seen[a.Name] {
			return u, invalid("%s: attribute %q is defined twice", where, a.Name)
		}
		seen[a.Name] = true
		if !slices.Contains(attributeTypes, a.Type) {
			return u, invalid("%s (%s): type %q: want one of %s", where, a.Name, a.Type, strings.Join(attributeTypes, ", "))
		}
		switch {
		case a.Type == "enum" && len(a.Values) == 0:
			return u, invalid("%s (%s): an enum needs values", where, a.Name)
		case a.Type != "enum" && len(a.Values) > 0:
			return u, invalid("%s (%s): only an enum has values", where, a.Name)
		case len(a.Values) > maxEnumValues:
			return u, invalid("%s (%s): more than %d values", where, a.Name, maxEnumValues)
		}
		for _, v := range a.Values {
			if v == "" {
				return u, invalid("%s (%s): an empty enum value", where, a.Name)
			}
			if err := validText(where+".values", v, maxShort); err != nil {
				return u, err
			}
		}
	}
	if u.Attributes == nil {
		u.Attributes = []Attribute{}
	}
	return u, nil
}

// masks reports whether a tag masks fields in samples.
func masks(tag string, defs map[string]*TagDef) bool {
	if d := defs[tag]; d != nil && d.Mask != nil {
		return *d.Mask
	}
	return tag == TagPII
}

// core builds the shared part of a product's answer from its stored
// metadata (nil: none) and its topic.
func core(topic string, sp *storedProduct, t *topicState) ProductCore {
	c := ProductCore{Topic: topic, Lifecycle: LifecycleActive, Tags: []string{},
		BusinessMetadata: map[string]any{}, Links: []Link{}, FieldTags: map[string][]string{}}
	if t != nil {
		c.Exists, c.Partitions = true, t.partitions
	}
	if sp != nil {
		c.Owner, c.Description, c.Domain, c.Lifecycle = sp.Owner, sp.Description, sp.Domain, sp.Lifecycle
		c.Tags = slices.Clone(sp.Tags)
		c.OwnTags = slices.Clone(sp.Tags)
		if sp.BusinessMetadata != nil {
			c.BusinessMetadata = maps.Clone(sp.BusinessMetadata)
		}
		if sp.Links != nil {
			c.Links = slices.Clone(sp.Links)
		}
		for k, v := range sp.FieldTags {
			c.FieldTags[k] = slices.Clone(v)
		}
		c.CreatedAt = sp.CreatedAt.UTC().Format(time.RFC3339)
		c.UpdatedAt = sp.UpdatedAt.UTC().Format(time.RFC3339)
		c.UpdatedBy, c.Version = sp.UpdatedBy, sp.Version
	}
	if c.Tags == nil {
		c.Tags = []string{}
	}
	if c.OwnTags == nil {
		c.OwnTags = []string{}
	}
	return c
}
