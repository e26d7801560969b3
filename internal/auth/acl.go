package auth

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ClusterName is the name of the one CLUSTER resource, as Kafka names it.
const ClusterName = "kafka-cluster"

// Wildcard is the resource name (LITERAL pattern) and host that match
// everything.
const Wildcard = "*"

// WildcardPrincipal is the principal that matches every user.
const WildcardPrincipal = "User:*"

// ACL is one access control binding, in Kafka's terms: a resource pattern
// (type, name, LITERAL or PREFIXED; the LITERAL name "*" matches every
// resource of the type) and an entry (principal "User:alice" or "User:*",
// host "*" or an exact IP, operation, ALLOW or DENY).
type ACL struct {
	ResourceType kmsg.ACLResourceType        `json:"resource_type"`
	ResourceName string                      `json:"resource_name"`
	PatternType  kmsg.ACLResourcePatternType `json:"pattern_type"`
	Principal    string                      `json:"principal"`
	Host         string                      `json:"host"`
	Operation    kmsg.ACLOperation           `json:"operation"`
	Permission   kmsg.ACLPermissionType      `json:"permission"`
}

// ErrInvalidACL means a binding cannot be stored (Kafka's INVALID_REQUEST).
var ErrInvalidACL = errors.New("auth: invalid ACL")

// Validate checks a binding before it is created, as Kafka's controller
// does: concrete resource type, pattern type, operation and permission
// (never ANY, MATCH or UNKNOWN), a non-empty name ("kafka-cluster" for the
// cluster), a parsable principal and a host.
func (a ACL) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidACL, fmt.Sprintf(format, args...))
	}
	switch a.ResourceType {
	case kmsg.ACLResourceTypeTopic, kmsg.ACLResourceTypeGroup, kmsg.ACLResourceTypeCluster,
		kmsg.ACLResourceTypeTransactionalId, kmsg.ACLResourceTypeDelegationToken, kmsg.ACLResourceTypeUser:
	default:
		return bad("resource type %s", a.ResourceType)
	}
	switch a.PatternType {
	case kmsg.ACLResourcePatternTypeLiteral, kmsg.ACLResourcePatternTypePrefixed:
	default:
		return bad("pattern type %s: must be LITERAL or PREFIXED", a.PatternType)
	}
	switch {
	case a.ResourceName == "":
		return bad("empty resource name")
	case a.ResourceType == kmsg.ACLResourceTypeCluster && a.ResourceName != ClusterName:
		return bad("the only valid name for the CLUSTER resource is %s", ClusterName)
	case a.Operation <= kmsg.ACLOperationAny || a.Operation > kmsg.ACLOperationDescribeTokens:
		return bad("operation %s", a.Operation)
	case a.Permission != kmsg.ACLPermissionTypeAllow && a.Permission != kmsg.ACLPermissionTypeDeny:
		return bad("permission type %s", a.Permission)
	case a.Host == "":
		return bad("empty host (use * for every host)")
	}
	if _, err := ParsePrincipal(a.Principal); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidACL, err)
	}
	return nil
}

// key is the binding's store key below the ACL prefix: every field,
// escaped, so storing the same binding twice writes one key.
func (a ACL) key() string {
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

// String is the binding in kafka-acls' words.
func (a ACL) String() string {
	return fmt.Sprintf("(%s %s %s: principal=%s, host=%s, operation=%s, permission=%s)",
		a.ResourceType, a.PatternType, a.ResourceName, a.Principal, a.Host, a.Operation, a.Permission)
}

// Filter selects bindings for DescribeAcls and DeleteAcls, with Kafka's
// semantics: ANY type, operation and permission match everything; a nil
// name, principal or host matches everything; pattern type ANY matches
// both pattern types by exact name, and MATCH matches every binding that
// applies to the named resource (the literal name, the literal "*" and
// every prefix of it).
type Filter struct {
	ResourceType kmsg.ACLResourceType
	ResourceName *string
	PatternType  kmsg.ACLResourcePatternType
	Principal    *string
	Host         *string
	Operation    kmsg.ACLOperation
	Permission   kmsg.ACLPermissionType
}

// Validate rejects filters Kafka rejects: UNKNOWN anywhere.
func (f Filter) Validate() error {
	switch {
	case f.ResourceType == kmsg.ACLResourceTypeUnknown || f.ResourceType > kmsg.ACLResourceTypeUser:
		return fmt.Errorf("%w filter: resource type %s", ErrInvalidACL, f.ResourceType)
	case f.PatternType == kmsg.ACLResourcePatternTypeUnknown || f.PatternType > kmsg.ACLResourcePatternTypePrefixed:
		return fmt.Errorf("%w filter: pattern type %s", ErrInvalidACL, f.PatternType)
	case f.Operation == kmsg.ACLOperationUnknown || f.Operation > kmsg.ACLOperationDescribeTokens:
		return fmt.Errorf("%w filter: operation %s", ErrInvalidACL, f.Operation)
	case f.Permission == kmsg.ACLPermissionTypeUnknown || f.Permission > kmsg.ACLPermissionTypeAllow:
		return fmt.Errorf("%w filter: permission type %s", ErrInvalidACL, f.Permission)
	}
	return nil
}

// Matches reports whether the filter selects a.
func (f Filter) Matches(a ACL) bool {
	return f.matchesPattern(a) &&
		(f.Principal == nil || *f.Principal == a.Principal) &&
		(f.Host == nil || *f.Host == a.Host) &&
		(f.Operation == kmsg.ACLOperationAny || f.Operation == a.Operation) &&
		(f.Permission == kmsg.ACLPermissionTypeAny || f.Permission == a.Permission)
}

func (f Filter) matchesPattern(a ACL) bool {
	if f.ResourceType != kmsg.ACLResourceTypeAny && f.ResourceType != a.ResourceType {
		return false
	}
	if f.PatternType != kmsg.ACLResourcePatternTypeAny && f.PatternType != kmsg.ACLResourcePatternTypeMatch && f.PatternType != a.PatternType {
		return false
	}
	if f.ResourceName == nil {
		return true
	}
	name := *f.ResourceName
	if f.PatternType != kmsg.ACLResourcePatternTypeMatch {
		return name == a.ResourceName
	}
	if a.PatternType == kmsg.ACLResourcePatternTypePrefixed {
		return strings.HasPrefix(name, a.ResourceName)
	}
	return name == a.ResourceName || a.ResourceName == Wildcard
}

// resourceOps are the operations each resource type supports, the bits of
// an authorized-operations set (KIP-430).
var resourceOps = map[kmsg.ACLResourceType][]kmsg.ACLOperation{
	kmsg.ACLResourceTypeTopic: {kmsg.ACLOperationRead, kmsg.ACLOperationWrite, kmsg.ACLOperationCreate,
		kmsg.ACLOperationDescribe, kmsg.ACLOperationDelete, kmsg.ACLOperationAlter,
		kmsg.ACLOperationDescribeConfigs, kmsg.ACLOperationAlterConfigs},
	kmsg.ACLResourceTypeGroup: {kmsg.ACLOperationRead, kmsg.ACLOperationDescribe, kmsg.ACLOperationDelete,
		kmsg.ACLOperationDescribeConfigs, kmsg.ACLOperationAlterConfigs},
	kmsg.ACLResourceTypeCluster: {kmsg.ACLOperationCreate, kmsg.ACLOperationClusterAction,
		kmsg.ACLOperationDescribeConfigs, kmsg.ACLOperationAlterConfigs, kmsg.ACLOperationIdempotentWrite,
		kmsg.ACLOperationAlter, kmsg.ACLOperationDescribe},
	kmsg.ACLResourceTypeTransactionalId: {kmsg.ACLOperationDescribe, kmsg.ACLOperationWrite},
	kmsg.ACLResourceTypeDelegationToken: {kmsg.ACLOperationDescribe},
	kmsg.ACLResourceTypeUser:            {kmsg.ACLOperationCreateTokens, kmsg.ACLOperationDescribeTokens},
}

// SupportedOperations returns the operations a resource type supports.
func SupportedOperations(typ kmsg.ACLResourceType) []kmsg.ACLOperation {
	return resourceOps[typ]
}
