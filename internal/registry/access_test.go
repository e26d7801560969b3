package registry

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/auth"
)

func TestSubjectTopic(t *testing.T) {
	for _, c := range []struct{ subject, topic string }{
		{"orders-value", "orders"},
		{"orders-key", "orders"},
		{"my.orders-v2-value", "my.orders-v2"},
		{":.prod:orders-value", "orders"},
		{":.prod:orders-key", "orders"},
		{"com.example.Order", "com.example.Order"},               // RecordNameStrategy
		{"orders-com.example.Order", "orders-com.example.Order"}, // TopicRecordNameStrategy
		{":.prod:com.example.Order", "com.example.Order"},
		{"orders", "orders"},
		{"a-key-value", "a-key"}, // one suffix only
		{"-value", "-value"},     // no topic before the suffix
		{"-key", "-key"},
		{"value", "value"},
		{"orders-values", "orders-values"},
	} {
		if got := SubjectTopic(c.subject); got != c.topic {
			t.Errorf("SubjectTopic(%q) = %q, want %q", c.subject, got, c.topic)
		}
	}
}

// TestAccessRulesCoverRoutes: every route of the API has an access rule
// and every rule names a route (SecureHandler panics otherwise).
func TestAccessRulesCoverRoutes(t *testing.T) {
	r := newRegistry(t, startEtcd(t))
	defer func() {
		if p := recover(); p != nil {
			t.Fatal(p)
		}
	}()
	r.SecureHandler(aclFake{})
}

// acl is one grant of aclFake: principal, operation, resource type and
// name (a name ending in "*" is a prefixed pattern).
type acl struct {
	principal string
	op        kmsg.ACLOperation
	typ       kmsg.ACLResourceType
	name      string
}

// aclFake authorizes with allow-only ACLs, User:admin as super user and
// Kafka's implications (READ, WRITE, DELETE, ALTER imply DESCRIBE;
// ALTER_CONFIGS implies DESCRIBE_CONFIGS).
type aclFake []acl

func (f aclFake) Authorize(p auth.Principal, _ string, op kmsg.ACLOperation, typ kmsg.ACLResourceType, name string) bool {
	if p.String() == "User:admin" {
		return true
	}
	implied := map[kmsg.ACLOperation][]kmsg.ACLOperation{
		kmsg.ACLOperationDescribe:        {kmsg.ACLOperationRead, kmsg.ACLOperationWrite, kmsg.ACLOperationDelete, kmsg.ACLOperationAlter},
		kmsg.ACLOperationDescribeConfigs: {kmsg.ACLOperationAlterConfigs},
	}
	for _, a := range f {
		if a.principal != p.String() || a.typ != typ {
			continue
		}
		if a.name != name && !(strings.HasSuffix(a.name, "*") && strings.HasPrefix(name, strings.TrimSuffix(a.name, "*"))) {
			continue
		}
		if a.op == op || a.op == kmsg.ACLOperationAll {
			return true
		}
		for _, o := range implied[op] {
			if a.op == o {
				return true
			}
		}
	}
	return false
}

// Authorized lets aclFake stand in as a registry Authorizer directly.
func (f aclFake) Authorized(ctx context.Context, op kmsg.ACLOperation, typ kmsg.ACLResourceType, name string) bool {
	p, host, _ := auth.RequestPrincipal(ctx)
	return f.Authorize(p, host, op, typ, name)
}

// passwords checks every user's password "pw".
type passwords struct{}

func (passwords) CheckPassword(_ context.Context, user, password string) (auth.Principal, error) {
	if password != "pw" {
		return auth.Principal{}, errors.New("bad password")
	}
	return auth.User(user), nil
}

func (passwords) CheckToken(context.Context, string) (auth.Principal, time.Time, error) {
	return auth.Principal{}, time.Time{}, errors.New("no tokens")
}

func as(user string) []string {
	return []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":pw"))}
}

// TestSecureHandler runs the API behind the HTTP guard with ACLs on
// topics and the cluster: 401 without credentials, 403 without the
// operation's right on the subject's topic, listings filtered.
func TestSecureHandler(t *testing.T) {
	r := newRegistry(t, startEtcd(t))
	T, C := kmsg.ACLResourceTypeTopic, kmsg.ACLResourceTypeCluster
	acls := aclFake{
		{"User:alice", kmsg.ACLOperationWrite, T, "orders"},
		{"User:bob", kmsg.ACLOperationDescribe, T, "payments"},
		{"User:dave", kmsg.ACLOperationRead, T, "com.acme.*"},
		{"User:eve", kmsg.ACLOperationDescribe, T, "mirror"},
		{"User:erin", kmsg.ACLOperationDescribe, T, "mirror"},
		{"User:erin", kmsg.ACLOperationDescribe, T, "payments"},
		{"User:ops", kmsg.ACLOperationAlterConfigs, C, "kafka-cluster"},
		{"User:owner", kmsg.ACLOperationAlterConfigs, T, "orders"},
		{"User:owner", kmsg.ACLOperationDelete, T, "orders"},
	}
	guard := auth.NewGuard(auth.GuardOptions{Authenticator: passwords{}, Authorizer: acls, Required: true})
	h := guard.Authenticate(r.SecureHandler(guard))

	steps := []step{
		{name: "no credentials", method: "GET", path: "/subjects", status: 401, code: 40101},
		{name: "wrong password", method: "GET", path: "/subjects", hdr: []string{"Authorization", "Basic YWxpY2U6bm9wZQ=="}, status: 401, code: 40101},
		{name: "admin registers orders", method: "POST", path: "/subjects/orders-value/versions", body: schemaJSON(t, sA, nil), hdr: as("admin"), status: 200, contains: `"id":1,`},
		{name: "admin registers payments (same schema)", method: "POST", path: "/subjects/payments-value/versions", body: schemaJSON(t, sA, nil), hdr: as("admin"), status: 200, contains: `"id":1,`},
		{name: "admin registers a record-name subject", method: "POST", path: "/subjects/com.acme.Thing/versions", body: schemaJSON(t, sC, nil), hdr: as("admin"), status: 200, contains: `"id":2,`},
		{name: "admin registers in a context", method: "POST", path: "/subjects/:.prod:orders-value/versions", body: schemaJSON(t, sC, nil), hdr: as("admin"), status: 200, contains: `"id":1,`},
		{name: "writer registers", method: "POST", path: "/subjects/orders-value/versions", body: schemaJSON(t, sAB, nil), hdr: as("alice"), status: 200, contains: `"id":3,`},
		{name: "writer looks a schema up", method: "POST", path: "/subjects/orders-value", body: schemaJSON(t, sAB, nil), hdr: as("alice"), status: 200, contains: `"version":2`},
		{name: "reader may not look up", method: "POST", path: "/subjects/payments-value", body: schemaJSON(t, sA, nil), hdr: as("bob"), status: 403, code: 40301},
		{name: "no rights, no register", method: "POST", path: "/subjects/orders-value/versions", body: schemaJSON(t, sAB, nil), hdr: as("carol"), status: 403, code: 40301,
			contains: "User is denied operation Write on Subject: orders-value (topic orders)"},
		{name: "no rights on the other topic", method: "POST", path: "/subjects/payments-value/versions", body: schemaJSON(t, sAB, nil), hdr: as("alice"), status: 403, code: 40301},
		{name: "context maps by the unqualified subject", method: "POST", path: "/subjects/:.prod:orders-value/versions", body: schemaJSON(t, sC, nil), hdr: as("alice"), status: 200, contains: `"id":1,`},

		{name: "writer lists its subjects", method: "GET", path: "/subjects", hdr: as("alice"), status: 200, want: `[":.prod:orders-value","orders-value"]`},
		{name: "reader lists its subjects", method: "GET", path: "/subjects", hdr: as("bob"), status: 200, want: `["payments-value"]`},
		{name: "prefixed ACL covers record-name subjects", method: "GET", path: "/subjects", hdr: as("dave"), status: 200, want: `["com.acme.Thing"]`},
		{name: "nothing to list", method: "GET", path: "/subjects", hdr: as("carol"), status: 200, want: `[]`},
		{name: "paging after filtering", method: "GET", path: "/subjects?offset=1&limit=1", hdr: as("alice"), status: 200, want: `["orders-value"]`},
		{name: "schemas listing filtered", method: "GET", path: "/schemas?latestOnly=true", hdr: as("bob"), status: 200, contains: `"subject":"payments-value"`},
		{name: "contexts filtered", method: "GET", path: "/contexts", hdr: as("bob"), status: 200, want: `["."]`},
		{name: "contexts of a writer", method: "GET", path: "/contexts", hdr: as("alice"), status: 200, want: `[".",".prod"]`},

		{name: "reader reads versions", method: "GET", path: "/subjects/payments-value/versions", hdr: as("bob"), status: 200, want: `[1]`},
		{name: "reader reads latest", method: "GET", path: "/subjects/payments-value/versions/latest", hdr: as("bob"), status: 200, contains: `"id":1`},
		{name: "reader reads raw schema", method: "GET", path: "/subjects/payments-value/versions/1/schema", hdr: as("bob"), status: 200, want: sA},
		{name: "reader checks compatibility", method: "POST", path: "/compatibility/subjects/payments-value/versions/latest", body: schemaJSON(t, sAB, nil), hdr: as("bob"), status: 200, want: `{"is_compatible":true}`},
		{name: "reader of another topic", method: "GET", path: "/subjects/orders-value/versions", hdr: as("bob"), status: 403, code: 40301},
		{name: "compatibility needs read rights", method: "POST", path: "/compatibility/subjects/orders-value/versions/latest", body: schemaJSON(t, sAB, nil), hdr: as("bob"), status: 403, code: 40301},
		{name: "reader may not delete", method: "DELETE", path: "/subjects/payments-value", hdr: as("bob"), status: 403, code: 40301},
		{name: "writer may not delete", method: "DELETE", path: "/subjects/orders-value/versions/2", hdr: as("alice"), status: 403, code: 40301},

		{name: "schema by id through a readable subject", method: "GET", path: "/schemas/ids/1", hdr: as("bob"), status: 200, want: `{"schema":` + jsonString(sA) + `}`},
		{name: "schema by id through no readable subject", method: "GET", path: "/schemas/ids/3", hdr: as("bob"), status: 403, code: 40301},
		{name: "schema text by id", method: "GET", path: "/schemas/ids/3/schema", hdr: as("alice"), status: 200, want: sAB},
		{name: "missing schema stays 404", method: "GET", path: "/schemas/ids/99", hdr: as("bob"), status: 404, code: 40403},
		{name: "subjects of a shared schema filtered", method: "GET", path: "/schemas/ids/1/subjects", hdr: as("bob"), status: 200, want: `["payments-value"]`},
		{name: "versions of a shared schema filtered", method: "GET", path: "/schemas/ids/1/versions", hdr: as("alice"), status: 200, want: `[{"subject":"orders-value","version":1}]`},
		{name: "schema in a context by id", method: "GET", path: "/schemas/ids/1?subject=:.prod:", hdr: as("bob"), status: 403, code: 40301},

		{name: "global config needs the cluster", method: "GET", path: "/config", hdr: as("alice"), status: 403, code: 40301},
		{name: "global config read", method: "GET", path: "/config", hdr: as("ops"), status: 200},
		{name: "global config set", method: "PUT", path: "/config", body: `{"compatibility":"FULL"}`, hdr: as("ops"), status: 200},
		{name: "global mode needs the cluster", method: "PUT", path: "/mode", body: `{"mode":"READONLY"}`, hdr: as("owner"), status: 403, code: 40301},
		{name: "context config is cluster-level", method: "PUT", path: "/config/:.prod:", body: `{"compatibility":"NONE"}`, hdr: as("owner"), status: 403, code: 40301},
		{name: "subject config needs DESCRIBE_CONFIGS", method: "GET", path: "/config/orders-value?defaultToGlobal=true", hdr: as("alice"), status: 403, code: 40301},
		{name: "subject config set by the topic's owner", method: "PUT", path: "/config/orders-value", body: `{"compatibility":"NONE"}`, hdr: as("owner"), status: 200},
		{name: "subject config read by the topic's owner", method: "GET", path: "/config/orders-value", hdr: as("owner"), status: 200, contains: `"compatibilityLevel":"NONE"`},
		{name: "subject mode set by the topic's owner", method: "PUT", path: "/mode/orders-value", body: `{"mode":"READWRITE"}`, hdr: as("owner"), status: 200},
		{name: "subject mode of another topic", method: "PUT", path: "/mode/payments-value", body: `{"mode":"READONLY"}`, hdr: as("owner"), status: 403, code: 40301},
		{name: "context delete needs the cluster", method: "DELETE", path: "/contexts/.prod", hdr: as("owner"), status: 403, code: 40301},

		{name: "alias set", method: "PUT", path: "/config/mirror-value", body: `{"alias":"payments-value"}`, hdr: as("admin"), status: 200},
		{name: "reading through an alias needs the target", method: "GET", path: "/subjects/mirror-value/versions", hdr: as("eve"), status: 403, code: 40301,
			contains: "on Subject: payments-value (topic payments)"},
		{name: "reading through an alias with both", method: "GET", path: "/subjects/mirror-value/versions", hdr: as("erin"), status: 200, want: `[1]`},

		{name: "owner deletes", method: "DELETE", path: "/subjects/orders-value/versions/2", hdr: as("owner"), status: 200, want: `2`},
		{name: "types need only authentication", method: "GET", path: "/schemas/types", hdr: as("carol"), status: 200},
	}
	for _, s := range steps {
		status, body, _ := call(t, h, s.method, s.path, s.body, s.hdr...)
		if status != s.status {
			t.Fatalf("%s: %s %s = %d %s, want status %d", s.name, s.method, s.path, status, body, s.status)
		}
		if s.code != 0 && errorCode(body) != s.code {
			t.Fatalf("%s: error_code in %s, want %d", s.name, body, s.code)
		}
		if s.want != "" && !jsonSame(body, []byte(s.want)) {
			t.Fatalf("%s: body %s, want %s", s.name, body, s.want)
		}
		if s.contains != "" && !strings.Contains(string(body), s.contains) {
			t.Fatalf("%s: body %s does not contain %s", s.name, body, s.contains)
		}
	}
}

// TestHandlerUnguarded: without an authorizer every request is allowed,
// whoever sends it (today's behaviour).
func TestHandlerUnguarded(t *testing.T) {
	r := newRegistry(t, startEtcd(t))
	h := r.Handler()
	for _, s := range []step{
		{method: "POST", path: "/subjects/orders-value/versions", body: schemaJSON(t, sA, nil), status: 200},
		{method: "GET", path: "/subjects", status: 200, want: `["orders-value"]`},
		{method: "PUT", path: "/config", body: `{"compatibility":"FULL"}`, status: 200},
		{method: "GET", path: "/schemas/ids/1/subjects", status: 200, want: `["orders-value"]`},
	} {
		status, body, _ := call(t, h, s.method, s.path, s.body)
		if status != s.status || (s.want != "" && !jsonSame(body, []byte(s.want))) {
			t.Fatalf("%s %s = %d %s", s.method, s.path, status, body)
		}
	}
}
