package auth

import (
	"context"
	"errors"
	"slices"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/config"
)

// ACLSource provides the current ACLs; *ACLStore is one.
type ACLSource interface {
	Snapshot() *ACLSet
}

// ACLAdmin changes and lists stored ACLs; *ACLStore is one.
type ACLAdmin interface {
	Create(ctx context.Context, acls []ACL) []error
	Describe(f Filter) []ACL
	Delete(ctx context.Context, filters []Filter) ([][]ACL, []error)
}

// Authorizer decides, with Kafka's semantics (StandardAuthorizer), whether a
// principal connected from a host may perform an operation on a resource:
//   - when authorization is disabled, everything is allowed;
//   - super users are allowed everything;
//   - a matching DENY wins over any ALLOW;
//   - an ACL matches when its principal is the principal or "User:*", its
//     host is the host or "*", and its pattern covers the resource (the
//     literal name, the literal "*", or a PREFIXED name the resource
//     starts with);
//   - an ALLOW of ALL allows every operation; an ALLOW of READ, WRITE,
//     DELETE or ALTER also allows DESCRIBE, and ALTER_CONFIGS allows
//     DESCRIBE_CONFIGS; DENY ACLs imply nothing (ALL excepted);
//   - with no ACL at all on the resource, the answer is
//     AllowEveryoneIfNoACL; otherwise it is a denial.
//
// It is safe for concurrent use; it reads the ACLs afresh on every call.
type Authorizer struct {
	enabled   bool
	superUser map[string]bool
	allowNone bool
	src       ACLSource
	admin     ACLAdmin
}

// NewAuthorizer builds an Authorizer over src. When src also implements
// ACLAdmin (as *ACLStore does) the Authorizer serves the ACL APIs.
func NewAuthorizer(cfg config.AuthorizationConfig, src ACLSource) *Authorizer {
	a := &Authorizer{enabled: cfg.Enabled, superUser: make(map[string]bool), allowNone: cfg.AllowEveryoneIfNoACL, src: src}
	for _, u := range cfg.SuperUsers {
		if p, err := ParsePrincipal(u); err == nil {
			a.superUser[p.String()] = true
		}
	}
	a.admin, _ = src.(ACLAdmin)
	return a
}

// Enabled reports whether ACLs are checked at all.
func (a *Authorizer) Enabled() bool { return a.enabled }

// ACLsChanged returns a channel closed when the ACLs next change, or nil
// (never ready) when the source cannot tell.
func (a *Authorizer) ACLsChanged() <-chan struct{} {
	if c, ok := a.src.(interface{ Changed() <-chan struct{} }); ok {
		return c.Changed()
	}
	return nil
}

// Authorize reports whether p, connected from host, may perform op on the
// resource typ/name.
func (a *Authorizer) Authorize(p Principal, host string, op kmsg.ACLOperation, typ kmsg.ACLResourceType, name string) bool {
	if !a.enabled || a.superUser[p.String()] {
		return true
	}
	ps := p.String()
	var hasACLs, allowed, denied bool
	a.src.Snapshot().Matching(typ, name, func(acl ACL) bool {
		hasACLs = true
		switch entryResult(acl, ps, host, op) {
		case kmsg.ACLPermissionTypeDeny:
			denied = true
			return false
		case kmsg.ACLPermissionTypeAllow:
			allowed = true
		}
		return true
	})
	switch {
	case denied:
		return false
	case allowed:
		return true
	}
	return !hasACLs && a.allowNone
}

// AuthorizeAny reports whether p may perform op on at least one resource
// of type typ (Kafka's authorizeByResourceType, used for idempotent
// producers that hold WRITE on some topic): an ALLOW for op (or ALL) on a
// pattern that no DENY for p covers, unless a DENY on the literal "*"
// forbids the whole type. Super users, and Authorize on any name, allow.
func (a *Authorizer) AuthorizeAny(p Principal, host string, op kmsg.ACLOperation, typ kmsg.ACLResourceType) bool {
	// As Kafka does, a fixed name first: super users, disabled
	// authorization and allow-everyone-if-no-ACL answer here.
	if a.Authorize(p, host, op, typ, "hardcode") {
		return true
	}
	ps := p.String()
	var denyLiteral, denyPrefix, allowLiteral, allowPrefix []string
	wildAllow, wildDeny := false, false
	a.src.Snapshot().OfType(typ, func(acl ACL) {
		if (acl.Principal != ps && acl.Principal != WildcardPrincipal) || (acl.Host != host && acl.Host != Wildcard) {
			return
		}
		if acl.Operation != op && acl.Operation != kmsg.ACLOperationAll {
			return
		}
		literal := acl.PatternType == kmsg.ACLResourcePatternTypeLiteral
		switch {
		case acl.Permission == kmsg.ACLPermissionTypeDeny && literal && acl.ResourceName == Wildcard:
			wildDeny = true
		case acl.Permission == kmsg.ACLPermissionTypeDeny && literal:
			denyLiteral = append(denyLiteral, acl.ResourceName)
		case acl.Permission == kmsg.ACLPermissionTypeDeny:
			denyPrefix = append(denyPrefix, acl.ResourceName)
		case literal && acl.ResourceName == Wildcard:
			wildAllow = true
		case literal:
			allowLiteral = append(allowLiteral, acl.ResourceName)
		default:
			allowPrefix = append(allowPrefix, acl.ResourceName)
		}
	})
	if wildDeny {
		return false
	}
	if wildAllow {
		return true
	}
	deniedByPrefix := func(name string) bool {
		return slices.ContainsFunc(denyPrefix, func(d string) bool { return len(name) >= len(d) && name[:len(d)] == d })
	}
	for _, n := range allowLiteral {
		if !slices.Contains(denyLiteral, n) && !deniedByPrefix(n) {
			return true
		}
	}
	for _, n := range allowPrefix {
		if !deniedByPrefix(n) {
			return true
		}
	}
	return false
}

// AuthorizedOperations returns the KIP-430 bit set (bit i for operation
// code i) of the operations p may perform on a resource.
func (a *Authorizer) AuthorizedOperations(p Principal, host string, typ kmsg.ACLResourceType, name string) int32 {
	var bits int32
	for _, op := range SupportedOperations(typ) {
		if a.Authorize(p, host, op, typ, name) {
			bits |= 1 << uint(op)
		}
	}
	return bits
}

// entryResult is what acl says about principal ps on host doing op: ALLOW,
// DENY, or UNKNOWN when it does not apply.
func entryResult(acl ACL, ps, host string, op kmsg.ACLOperation) kmsg.ACLPermissionType {
	if acl.Principal != ps && acl.Principal != WildcardPrincipal {
		return kmsg.ACLPermissionTypeUnknown
	}
	if acl.Host != Wildcard && acl.Host != host {
		return kmsg.ACLPermissionTypeUnknown
	}
	if acl.Operation != kmsg.ACLOperationAll && acl.Operation != op {
		if acl.Permission != kmsg.ACLPermissionTypeAllow || !implies(acl.Operation, op) {
			return kmsg.ACLPermissionTypeUnknown
		}
	}
	return acl.Permission
}

// implies reports whether an ALLOW of granted also allows op.
func implies(granted, op kmsg.ACLOperation) bool {
	switch op {
	case kmsg.ACLOperationDescribe:
		switch granted {
		case kmsg.ACLOperationRead, kmsg.ACLOperationWrite, kmsg.ACLOperationDelete, kmsg.ACLOperationAlter:
			return true
		}
	case kmsg.ACLOperationDescribeConfigs:
		return granted == kmsg.ACLOperationAlterConfigs
	}
	return false
}

// ErrNoACLStore is returned by the ACL calls of an Authorizer whose ACLs
// come from a source that cannot be changed.
var ErrNoACLStore = errors.New("auth: ACLs cannot be changed here")

// CreateACLs stores bindings (see ACLStore.Create), one error per binding.
func (a *Authorizer) CreateACLs(ctx context.Context, acls []ACL) []error {
	if a.admin == nil {
		errs := make([]error, len(acls))
		for i := range errs {
			errs[i] = ErrNoACLStore
		}
		return errs
	}
	return a.admin.Create(ctx, acls)
}

// DescribeACLs lists the bindings f selects.
func (a *Authorizer) DescribeACLs(f Filter) []ACL {
	if a.admin == nil {
		var out []ACL
		for _, acl := range a.src.Snapshot().All() {
			if f.Matches(acl) {
				out = append(out, acl)
			}
		}
		return out
	}
	return a.admin.Describe(f)
}

// DeleteACLs removes the bindings each filter selects (see
// ACLStore.Delete).
func (a *Authorizer) DeleteACLs(ctx context.Context, filters []Filter) ([][]ACL, []error) {
	if a.admin == nil {
		errs := make([]error, len(filters))
		for i := range errs {
			errs[i] = ErrNoACLStore
		}
		return make([][]ACL, len(filters)), errs
	}
	return a.admin.Delete(ctx, filters)
}
