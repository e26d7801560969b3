package registry

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Authorization of the REST API (SecureHandler). The registry has no ACLs
// of its own: a subject is authorized through the Kafka ACLs of the topic
// it belongs to, and global settings through the cluster's.
//
// A subject's topic (SubjectTopic) is read from its name without its
// context prefix (":.ctx:orders-value" is "orders-value"):
//
//   - "<topic>-key" and "<topic>-value" (TopicNameStrategy, the
//     serializers' default) belong to <topic>;
//   - any other subject (RecordNameStrategy's "com.example.Order",
//     TopicRecordNameStrategy's "orders-com.example.Order", hand-picked
//     names) is authorized as a topic named like the subject itself, so a
//     literal ACL on that name or a prefixed one ("orders-", "com.example.")
//     covers it.
//
// The second rule cannot guess the topic a record-name subject serves
// (the name does not say, and one record type may serve many topics), so
// it asks for rights on a name the operator controls instead of on some
// topic the caller may have rights to for other reasons.
//
// Operations, on that topic (Kafka's implications apply: READ, WRITE,
// DELETE and ALTER imply DESCRIBE; ALTER_CONFIGS implies DESCRIBE_CONFIGS):
//
//	read a subject's versions and schemas, referencedby,
//	  compatibility checks                       DESCRIBE
//	register a schema, look a schema up          WRITE
//	delete a version or a subject                DELETE
//	read a subject's config or mode              DESCRIBE_CONFIGS
//	set or delete a subject's config or mode     ALTER_CONFIGS
//
// and on the cluster ("kafka-cluster"): DESCRIBE_CONFIGS to read the
// global or a context's config and mode, ALTER_CONFIGS to change them,
// ALTER to delete a context. Reads that follow a subject's alias need
// DESCRIBE on the aliased subject's topic too. Listings (GET /subjects,
// /schemas, /contexts, /schemas/ids/{id}/subjects and /versions) show only
// what the caller may DESCRIBE; a schema by id or GUID is readable by a
// caller who may DESCRIBE some subject that uses it (Confluent's
// SCHEMA_READ). A refusal is 403 with error_code 40301; /, /schemas/types
// need only authentication.

// Authorizer decides whether the caller of a request may perform op on the
// Kafka resource (typ, name). ctx is the request's context, which carries
// the caller's identity (put there by the HTTP layer that authenticated
// it).
type Authorizer interface {
	Authorized(ctx context.Context, op kmsg.ACLOperation, typ kmsg.ACLResourceType, name string) bool
}

// ErrForbidden means the caller may not perform the operation (403, 40301).
var ErrForbidden = errors.New("registry: forbidden")

// clusterName is the cluster resource's name in Kafka ACLs.
const clusterName = "kafka-cluster"

// SubjectTopic returns the topic whose ACLs authorize subject (see the
// mapping above).
func SubjectTopic(subject string) string {
	name := subject
	if sn, err := parseSubject(subject, true); err == nil {
		name = sn.name
	}
	for _, suffix := range []string{"-key", "-value"} {
		if t, ok := strings.CutSuffix(name, suffix); ok && t != "" {
			return t
		}
	}
	return name
}

// SecureHandler is Handler with every request authorized by a.
func (r *Registry) SecureHandler(a Authorizer) http.Handler { return r.handler(a) }

// access authorizes the requests of one handler.
type access struct {
	r *Registry
	a Authorizer
}

type accessKey struct{}

// accessOf returns the access checks of req, nil when the handler
// authorizes nothing.
func accessOf(req *http.Request) *access {
	a, _ := req.Context().Value(accessKey{}).(*access)
	return a
}

// accessRule authorizes one route before its handler runs.
type accessRule func(a *access, req *http.Request) error

// accessRules holds every route's rule; a route without one is refused
// when the handler authorizes (handler panics at construction).
var accessRules = map[string]accessRule{
	"GET /{$}":                                      open,
	"GET /subjects":                                 open, // filtered
	"POST /subjects/{s}":                            onSubject(kmsg.ACLOperationWrite, true),
	"DELETE /subjects/{s}":                          onSubject(kmsg.ACLOperationDelete, false),
	"GET /subjects/{s}/versions":                    onSubject(kmsg.ACLOperationDescribe, true),
	"POST /subjects/{s}/versions":                   onSubject(kmsg.ACLOperationWrite, false),
	"GET /subjects/{s}/versions/{v}":                onSubject(kmsg.ACLOperationDescribe, true),
	"DELETE /subjects/{s}/versions/{v}":             onSubject(kmsg.ACLOperationDelete, false),
	"GET /subjects/{s}/versions/{v}/schema":         onSubject(kmsg.ACLOperationDescribe, true),
	"GET /subjects/{s}/versions/{v}/referencedby":   onSubject(kmsg.ACLOperationDescribe, true),
	"GET /schemas":                                  open, // filtered
	"GET /schemas/types":                            open,
	"GET /schemas/ids/{id}":                         onSchemaID,
	"GET /schemas/ids/{id}/schema":                  onSchemaID,
	"GET /schemas/ids/{id}/subjects":                onSchemaID, // and filtered
	"GET /schemas/ids/{id}/versions":                onSchemaID, // and filtered
	"GET /schemas/guids/{guid}":                     onGUID,
	"GET /schemas/guids/{guid}/ids":                 onGUID,
	"GET /contexts":                                 open, // filtered
	"DELETE /contexts/{context}":                    onCluster(kmsg.ACLOperationAlter),
	"GET /config":                                   onSettings(kmsg.ACLOperationDescribeConfigs),
	"PUT /config":                                   onSettings(kmsg.ACLOperationAlterConfigs),
	"DELETE /config":                                onSettings(kmsg.ACLOperationAlterConfigs),
	"GET /config/{s}":                               onSettings(kmsg.ACLOperationDescribeConfigs),
	"PUT /config/{s}":                               onSettings(kmsg.ACLOperationAlterConfigs),
	"DELETE /config/{s}":                            onSettings(kmsg.ACLOperationAlterConfigs),
	"GET /mode":                                     onSettings(kmsg.ACLOperationDescribeConfigs),
	"PUT /mode":                                     onSettings(kmsg.ACLOperationAlterConfigs),
	"DELETE /mode":                                  onSettings(kmsg.ACLOperationAlterConfigs),
	"GET /mode/{s}":                                 onSettings(kmsg.ACLOperationDescribeConfigs),
	"PUT /mode/{s}":                                 onSettings(kmsg.ACLOperationAlterConfigs),
	"DELETE /mode/{s}":                              onSettings(kmsg.ACLOperationAlterConfigs),
	"POST /compatibility/subjects/{s}/versions":     onSubject(kmsg.ACLOperationDescribe, true),
	"POST /compatibility/subjects/{s}/versions/{v}": onSubject(kmsg.ACLOperationDescribe, true),
}

// authorize runs the rule of the route pattern for req; a handler without
// an Authorizer allows everything.
func authorize(pattern string, req *http.Request) error {
	a := accessOf(req)
	if a == nil {
		return nil
	}
	rule, ok := accessRules[pattern]
	if !ok {
		return errf(ErrForbidden, "No access rule for %s", pattern)
	}
	return rule(a, req)
}

func open(*access, *http.Request) error { return nil }

// onSubject needs op on the topic of the request's subject and, when the
// route reads through the subject's alias, DESCRIBE on the aliased
// subject's topic.
func onSubject(op kmsg.ACLOperation, followsAlias bool) accessRule {
	return func(a *access, req *http.Request) error {
		sn, err := parseSubject(req.PathValue("s"), false)
		if err != nil {
			return err
		}
		if err := a.subject(req.Context(), op, sn.q); err != nil {
			return err
		}
		if !followsAlias {
			return nil
		}
		target, err := a.r.resolveAlias(req.Context(), sn)
		if err != nil || target.q == sn.q {
			return err
		}
		return a.subject(req.Context(), kmsg.ACLOperationDescribe, target.q)
	}
}

// onSettings authorizes a config or mode route: a subject's on its topic,
// the global one's and a context's (":.ctx:") on the cluster.
func onSettings(op kmsg.ACLOperation) accessRule {
	return func(a *access, req *http.Request) error {
		sn, err := parseSubject(req.PathValue("s"), true)
		if err != nil {
			return err
		}
		if sn.name == "" {
			return a.cluster(req.Context(), op)
		}
		return a.subject(req.Context(), op, sn.q)
	}
}

func onCluster(op kmsg.ACLOperation) accessRule {
	return func(a *access, req *http.Request) error { return a.cluster(req.Context(), op) }
}

// onSchemaID lets a schema id be read by a caller who may read a subject
// that uses it.
func onSchemaID(a *access, req *http.Request) error {
	info, err := a.r.byID(req)
	if err != nil {
		return err
	}
	return a.someSubject(req.Context(), info.Usages, "Schema", req.PathValue("id"))
}

// onGUID lets a schema GUID be read by a caller who may read a subject, in
// any context, that uses it.
func onGUID(a *access, req *http.Request) error {
	_, ids, err := a.r.SchemaByGUID(req.Context(), req.PathValue("guid"))
	if err != nil {
		return err
	}
	var usages []SubjectVersion
	for _, id := range ids {
		info, err := a.r.SchemaInfo(req.Context(), id.Context, id.ID)
		if err != nil && !errors.Is(err, ErrSchemaNotFound) {
			return err
		}
		usages = append(usages, info.Usages...)
	}
	return a.someSubject(req.Context(), usages, "Schema", req.PathValue("guid"))
}

func (a *access) someSubject(ctx context.Context, usages []SubjectVersion, what, name string) error {
	for _, u := range usages {
		if a.visible(ctx, u.Subject) {
			return nil
		}
	}
	return errf(ErrForbidden, "User is denied operation Read on %s: %s", what, name)
}

// subject needs op on the topic of qualified subject q.
func (a *access) subject(ctx context.Context, op kmsg.ACLOperation, q string) error {
	topic := SubjectTopic(q)
	if a.a.Authorized(ctx, op, kmsg.ACLResourceTypeTopic, topic) {
		return nil
	}
	return errf(ErrForbidden, "User is denied operation %s on Subject: %s (topic %s)", opName(op), q, topic)
}

func (a *access) cluster(ctx context.Context, op kmsg.ACLOperation) error {
	if a.a.Authorized(ctx, op, kmsg.ACLResourceTypeCluster, clusterName) {
		return nil
	}
	return errf(ErrForbidden, "User is denied operation %s on Cluster: %s", opName(op), clusterName)
}

// visible reports whether the caller may read subject q.
func (a *access) visible(ctx context.Context, q string) bool {
	return a.a.Authorized(ctx, kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTopic, SubjectTopic(q))
}

// visibleOnly keeps the elements of xs whose subject the caller of req
// may read (all of them when the handler authorizes nothing).
func visibleOnly[T any](req *http.Request, xs []T, subject func(T) string) []T {
	a := accessOf(req)
	if a == nil {
		return xs
	}
	out := xs[:0:0]
	for _, x := range xs {
		if a.visible(req.Context(), subject(x)) {
			out = append(out, x)
		}
	}
	return out
}

// visibleContexts keeps the default context and the contexts in which the
// caller of req may read some subject.
func (r *Registry) visibleContexts(req *http.Request, contexts []string) ([]string, error) {
	if accessOf(req) == nil {
		return contexts, nil
	}
	subjects, err := r.Subjects(req.Context(), ListOptions{Prefix: ":*:", Deleted: true})
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{defaultContext: true}
	for _, q := range visibleOnly(req, subjects, func(s string) string { return s }) {
		seen[contextOf(q)] = true
	}
	out := []string{}
	for _, c := range contexts {
		if seen[c] {
			out = append(out, c)
		}
	}
	return out, nil
}

// opName is op in Kafka's spelling ("Write", "DescribeConfigs").
func opName(op kmsg.ACLOperation) string {
	var b strings.Builder
	for _, w := range strings.Split(strings.ToLower(op.String()), "_") {
		if w != "" {
			b.WriteString(strings.ToUpper(w[:1]) + w[1:])
		}
	}
	return b.String()
}
