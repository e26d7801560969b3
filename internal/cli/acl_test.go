package cli

import (
	"context"
	"encoding/json"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/auth"
	"github.com/runnel-dev/runnel/internal/cluster/clustertest"
	"github.com/runnel-dev/runnel/internal/config"
	"github.com/runnel-dev/runnel/internal/peer"
	"github.com/runnel-dev/runnel/internal/protocol"
)

func TestACLFlags(t *testing.T) {
	tests := []struct {
		name    string
		create  bool
		f       aclFlags
		wantErr string
	}{
		{"create", true, aclFlags{allowPrincipals: []string{"User:a"}, operations: []string{"read"}, topics: []string{"t"}, pattern: "literal"}, ""},
		{"create without resource", true, aclFlags{allowPrincipals: []string{"User:a"}, operations: []string{"read"}, pattern: "literal"}, "name a resource"},
		{"create without principal", true, aclFlags{operations: []string{"read"}, topics: []string{"t"}, pattern: "literal"}, "name a principal"},
		{"create without operation", true, aclFlags{allowPrincipals: []string{"User:a"}, topics: []string{"t"}, pattern: "literal"}, "name an operation"},
		{"create with any operation", true, aclFlags{allowPrincipals: []string{"User:a"}, operations: []string{"any"}, topics: []string{"t"}, pattern: "literal"}, "unknown operation"},
		{"create with match", true, aclFlags{allowPrincipals: []string{"User:a"}, operations: []string{"read"}, topics: []string{"t"}, pattern: "match"}, "literal or prefixed"},
		{"bad principal", true, aclFlags{allowPrincipals: []string{"alice"}, operations: []string{"read"}, topics: []string{"t"}, pattern: "literal"}, "want Type:name"},
		{"host without principal", true, aclFlags{denyPrincipals: []string{"User:a"}, allowHosts: []string{"1.2.3.4"}, operations: []string{"read"}, topics: []string{"t"}, pattern: "literal"}, "--allow-host needs"},
		{"bad pattern", false, aclFlags{pattern: "fuzzy"}, "want literal, prefixed, match or any"},
		{"list everything", false, aclFlags{pattern: "any"}, ""},
		{"list by operation name with dashes", false, aclFlags{operations: []string{"describe-configs"}, pattern: "any"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.f.builder(tt.create)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// aclLog is a Log with no topics: the ACL commands need nothing else.
type aclLog struct{ protocol.Log }

func (aclLog) Topics() []protocol.TopicInfo            { return nil }
func (aclLog) Topic(string) (protocol.TopicInfo, bool) { return protocol.TopicInfo{}, false }
func (aclLog) TopicByID(protocol.TopicID) (protocol.TopicInfo, bool) {
	return protocol.TopicInfo{}, false
}

type aclCluster struct{ self peer.Broker }

func (c aclCluster) ClusterID() string                    { return "acl-test" }
func (c aclCluster) Self() peer.Broker                    { return c.self }
func (c aclCluster) Brokers() []peer.Broker               { return []peer.Broker{c.self} }
func (c aclCluster) Leader(protocol.TopicID, int32) int32 { return c.self.NodeID }
func (c aclCluster) ControllerID() int32                  { return c.self.NodeID }

// startACLServer serves the Kafka protocol with ACLs kept in an embedded
// etcd, the test's client (User:ANONYMOUS) a super user; it returns the
// address and the store.
func startACLServer(t *testing.T) (string, *auth.ACLStore) {
	t.Helper()
	e := clustertest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	store, err := auth.OpenACLStore(ctx, e.Client(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host, portS, _ := net.SplitHostPort(ln.Addr().String())
	port, _ := strconv.Atoi(portS)
	srv := protocol.NewServer(protocol.Options{
		Log:        aclLog{},
		Cluster:    aclCluster{self: peer.Broker{NodeID: 1, Host: host, Port: int32(port)}},
		Authorizer: auth.NewAuthorizer(config.AuthorizationConfig{Enabled: true, SuperUsers: []string{auth.Anonymous.String()}}, store),
	})
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(context.Background(), ln) }()
	t.Cleanup(func() { _ = srv.Close(); <-done })
	return ln.Addr().String(), store
}

func TestACLCommands(t *testing.T) {
	addr, store := startACLServer(t)

	out, _, err := runLive(t, addr, "acl", "create", "--allow-principal", "User:alice", "--operation", "write", "--operation", "read",
		"--topic", "orders.", "--resource-pattern-type", "prefixed")
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if n := strings.Count(out, "Created ACL"); n != 2 {
		t.Fatalf("create printed %d ACLs, want 2:\n%s", n, out)
	}
	if _, _, err := runLive(t, addr, "acl", "create", "--deny-principal", "User:bob", "--deny-host", "10.0.0.9",
		"--operation", "read", "--group", "billing"); err != nil {
		t.Fatalf("create deny: %v", err)
	}
	if n := len(store.Snapshot().All()); n != 3 {
		t.Fatalf("store holds %d ACLs, want 3", n)
	}
	if !auth.NewAuthorizer(config.AuthorizationConfig{Enabled: true}, store).Authorize(auth.User("alice"), "1.2.3.4", kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTopic, "orders.eu") {
		t.Fatal("the created ACL does not allow alice to write orders.eu")
	}

	// list --json: everything.
	out, _, err = runLive(t, addr, "acl", "list", "--json")
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	var listed []map[string]string
	if err := json.Unmarshal([]byte(out), &listed); err != nil {
		t.Fatalf("list --json: %v\n%s", err, out)
	}
	if len(listed) != 3 {
		t.Fatalf("listed %d ACLs, want 3: %s", len(listed), out)
	}
	// match on a topic name: what applies to it.
	out, _, err = runLive(t, addr, "acl", "list", "--topic", "orders.eu", "--resource-pattern-type", "match")
	if err != nil || strings.Count(out, "User:alice") != 2 || strings.Contains(out, "billing") {
		t.Fatalf("list match orders.eu: %v\n%s", err, out)
	}
	// A literal filter on the prefix name finds nothing.
	out, _, err = runLive(t, addr, "acl", "list", "--topic", "orders.", "--resource-pattern-type", "literal")
	if err != nil || strings.Contains(out, "User:alice") {
		t.Fatalf("list literal orders.: %v\n%s", err, out)
	}
	out, _, err = runLive(t, addr, "acl", "list", "--deny-host", "10.0.0.9")
	if err != nil || !strings.Contains(out, "billing") || strings.Contains(out, "alice") {
		t.Fatalf("list DENY bindings for 10.0.0.9: %v\n%s", err, out)
	}
	out, _, err = runLive(t, addr, "acl", "list", "--allow-principal", "User:bob")
	if err != nil || strings.Contains(out, "User:") {
		t.Fatalf("list bob's ALLOW bindings (none): %v\n%s", err, out)
	}
	out, _, err = runLive(t, addr, "acl", "list", "--principal", "User:bob")
	if err != nil || !strings.Contains(out, "billing") || strings.Contains(out, "alice") {
		t.Fatalf("list bob: %v\n%s", err, out)
	}

	// delete one operation, then the whole group.
	out, _, err = runLive(t, addr, "acl", "delete", "--allow-principal", "User:alice", "--operation", "write",
		"--topic", "orders.", "--resource-pattern-type", "prefixed")
	if err != nil || strings.Count(out, "Deleted ACL") != 1 {
		t.Fatalf("delete write: %v\n%s", err, out)
	}
	out, _, err = runLive(t, addr, "acl", "delete", "--group", "billing")
	if err != nil || strings.Count(out, "Deleted ACL") != 1 {
		t.Fatalf("delete billing: %v\n%s", err, out)
	}
	if _, _, err := runLive(t, addr, "acl", "delete", "--operation", "read"); err == nil || !strings.Contains(err.Error(), "name a resource") {
		t.Fatalf("delete without a resource: %v", err)
	}
	all := store.Snapshot().All()
	if len(all) != 1 || all[0].Operation != kmsg.ACLOperationRead || all[0].Principal != "User:alice" {
		t.Fatalf("left %v, want alice's READ", all)
	}
}
