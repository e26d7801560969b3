package protocol

// Authorization: the interface the handlers check ACLs through, and the
// helpers they share. Each handler checks exactly what Kafka's KafkaApis
// checks for its API (see each handler file); a nil Options.Authorizer
// turns every check off, and then every handler answers as it would
// without ACLs (authorized-operation sets keep their "not requested"
// value, and the ACL APIs answer SECURITY_DISABLED, as a Kafka broker
// without an authorizer does).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/auth"
)

// Authorizer decides ACL checks; internal/auth's Authorizer implements it.
// Both calls must be cheap (they run per topic of a request) and safe for
// concurrent use.
type Authorizer interface {
	// Authorize reports whether principal p, connected from host, may
	// perform op on the resource typ/name.
	Authorize(p auth.Principal, host string, op kmsg.ACLOperation, typ kmsg.ACLResourceType, name string) bool
	// AuthorizeAny reports whether p may perform op on at least one
	// resource of type typ (Kafka's authorizeByResourceType).
	AuthorizeAny(p auth.Principal, host string, op kmsg.ACLOperation, typ kmsg.ACLResourceType) bool
}

// ACLWatcher is the optional capability of an Authorizer that tells when
// the ACLs change: ACLsChanged returns a channel closed at the next
// change. A long-poll fetch waits on it too, so a revoked READ refuses a
// waiting consumer at once instead of when its wait would have ended.
type ACLWatcher interface {
	ACLsChanged() <-chan struct{}
}

// ACLAdmin is the optional capability of an Authorizer that serves
// CreateAcls, DescribeAcls and DeleteAcls (acls.go). Errors wrapping
// auth.ErrInvalidACL are answered INVALID_REQUEST.
type ACLAdmin interface {
	// CreateACLs stores bindings, returning one error per binding.
	CreateACLs(ctx context.Context, acls []auth.ACL) []error
	// DescribeACLs returns the bindings a filter selects.
	DescribeACLs(f auth.Filter) []auth.ACL
	// DeleteACLs removes the bindings each filter selects and returns them,
	// with one error per filter.
	DeleteACLs(ctx context.Context, filters []auth.Filter) ([][]auth.ACL, []error)
}

// switchable is the optional capability of an Authorizer that can be
// configured off (authorization.enabled: false).
type switchable interface{ Enabled() bool }

// activeAuthorizer is a, or nil when a is configured off: a disabled
// authorizer is no authorizer, so every answer stays what it is without
// ACLs (the ACL APIs included: SECURITY_DISABLED).
func activeAuthorizer(a Authorizer) Authorizer {
	if sw, ok := a.(switchable); ok && !sw.Enabled() {
		return nil
	}
	return a
}

// notRequestedOps is the authorized-operations value of a response that
// was not asked for them (KIP-430's INT32_MIN).
const notRequestedOps int32 = -2147483648

// authorized reports whether the request's principal may perform op on a
// resource; always true without an Authorizer.
func (s *Server) authorized(rc *reqCtx, op kmsg.ACLOperation, typ kmsg.ACLResourceType, name string) bool {
	if s.opts.Authorizer == nil {
		return true
	}
	if s.opts.Authorizer.Authorize(rc.sess.principal, rc.sess.host, op, typ, name) {
		return true
	}
	rc.log.Debug("authorization denied", "principal", rc.sess.principal.String(), "host", rc.sess.host,
		"operation", op.String(), "resource_type", typ.String(), "resource", name)
	return false
}

// authorizedCluster reports whether the request's principal may perform op
// on the cluster. Handlers of cluster-level APIs (the SCRAM credential
// APIs included: DESCRIBE to describe, ALTER to alter) answer
// CLUSTER_AUTHORIZATION_FAILED when it is false.
func (s *Server) authorizedCluster(rc *reqCtx, op kmsg.ACLOperation) bool {
	return s.authorized(rc, op, kmsg.ACLResourceTypeCluster, auth.ClusterName)
}

// authorizedTopic reports whether the request's principal may perform op
// on a topic.
func (s *Server) authorizedTopic(rc *reqCtx, op kmsg.ACLOperation, topic string) bool {
	return s.authorized(rc, op, kmsg.ACLResourceTypeTopic, topic)
}

// authorizedGroup reports whether the request's principal may perform op
// on a group.
func (s *Server) authorizedGroup(rc *reqCtx, op kmsg.ACLOperation, group string) bool {
	return s.authorized(rc, op, kmsg.ACLResourceTypeGroup, group)
}

// authorizedTxn reports whether the request's principal may perform op on
// a transactional id.
func (s *Server) authorizedTxn(rc *reqCtx, op kmsg.ACLOperation, id string) bool {
	return s.authorized(rc, op, kmsg.ACLResourceTypeTransactionalId, id)
}

// topicChecker memoizes one operation's topic checks within a request
// (Kafka's filterByAuthorized: one decision per distinct name).
type topicChecker struct {
	s    *Server
	rc   *reqCtx
	op   kmsg.ACLOperation
	seen map[string]bool
}

func (s *Server) topicChecker(rc *reqCtx, op kmsg.ACLOperation) *topicChecker {
	return &topicChecker{s: s, rc: rc, op: op}
}

// ok reports whether the operation is allowed on topic.
func (c *topicChecker) ok(topic string) bool {
	if c.s.opts.Authorizer == nil {
		return true
	}
	if v, hit := c.seen[topic]; hit {
		return v
	}
	if c.seen == nil {
		c.seen = make(map[string]bool)
	}
	v := c.s.authorizedTopic(c.rc, c.op, topic)
	c.seen[topic] = v
	return v
}

// authorizedOps is the KIP-430 bit set of the operations the request's
// principal may perform on a resource, or notRequestedOps without an
// Authorizer.
func (s *Server) authorizedOps(rc *reqCtx, typ kmsg.ACLResourceType, name string) int32 {
	if s.opts.Authorizer == nil {
		return notRequestedOps
	}
	var bits int32
	for _, op := range auth.SupportedOperations(typ) {
		if s.opts.Authorizer.Authorize(rc.sess.principal, rc.sess.host, op, typ, name) { // not a denial to log
			bits |= 1 << uint(op)
		}
	}
	return bits
}
