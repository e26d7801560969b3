package auth

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/config"
)

// fixedACLs is an ACLSource over a fixed list.
type fixedACLs []ACL

func (f fixedACLs) Snapshot() *ACLSet { return NewACLSet(f) }

const (
	topic   = kmsg.ACLResourceTypeTopic
	group   = kmsg.ACLResourceTypeGroup
	cluster = kmsg.ACLResourceTypeCluster
	txnID   = kmsg.ACLResourceTypeTransactionalId
	literal = kmsg.ACLResourcePatternTypeLiteral
	prefix  = kmsg.ACLResourcePatternTypePrefixed
	allow   = kmsg.ACLPermissionTypeAllow
	deny    = kmsg.ACLPermissionTypeDeny

	opRead      = kmsg.ACLOperationRead
	opWrite     = kmsg.ACLOperationWrite
	opDescribe  = kmsg.ACLOperationDescribe
	opAll       = kmsg.ACLOperationAll
	opDelete    = kmsg.ACLOperationDelete
	opAlter     = kmsg.ACLOperationAlter
	opCreate    = kmsg.ACLOperationCreate
	opDescCfg   = kmsg.ACLOperationDescribeConfigs
	opAlterCfg  = kmsg.ACLOperationAlterConfigs
	opIdempWr   = kmsg.ACLOperationIdempotentWrite
	alice       = "User:alice"
	aliceHost   = "10.0.0.1"
	otherHost   = "10.0.0.2"
	bobName     = "bob"
	wildcardAll = "*"
)

func acl(typ kmsg.ACLResourceType, name string, pt kmsg.ACLResourcePatternType, principal, host string, op kmsg.ACLOperation, perm kmsg.ACLPermissionType) ACL {
	return ACL{ResourceType: typ, ResourceName: name, PatternType: pt, Principal: principal, Host: host, Operation: op, Permission: perm}
}

func TestAuthorize(t *testing.T) {
	on := config.AuthorizationConfig{Enabled: true, SuperUsers: []string{"User:admin"}}
	type check struct {
		who  string
		host string
		op   kmsg.ACLOperation
		typ  kmsg.ACLResourceType
		name string
		want bool
	}
	cases := []struct {
		name   string
		cfg    config.AuthorizationConfig
		acls   []ACL
		checks []check
	}{
		{"disabled allows everything", config.AuthorizationConfig{}, []ACL{
			acl(topic, "t", literal, alice, "*", opAll, deny),
		}, []check{{"alice", aliceHost, opWrite, topic, "t", true}, {"bob", aliceHost, opDelete, cluster, ClusterName, true}}},
		{"no ACL denies", on, nil, []check{{"alice", aliceHost, opRead, topic, "t", false}}},
		{"no ACL on the resource with allow-everyone allows", config.AuthorizationConfig{Enabled: true, AllowEveryoneIfNoACL: true}, []ACL{
			acl(topic, "other", literal, "User:bob", "*", opRead, allow),
		}, []check{
			{"alice", aliceHost, opRead, topic, "t", true},
			{"alice", aliceHost, opRead, topic, "other", false}, // an ACL exists there, for bob only
		}},
		{"super user allowed despite deny", on, []ACL{
			acl(topic, "t", literal, "User:admin", "*", opAll, deny),
		}, []check{{"admin", aliceHost, opWrite, topic, "t", true}, {"admin", aliceHost, opAlter, cluster, ClusterName, true}}},
		{"literal allow", on, []ACL{
			acl(topic, "t", literal, alice, "*", opRead, allow),
		}, []check{
			{"alice", aliceHost, opRead, topic, "t", true},
			{"alice", aliceHost, opRead, topic, "t2", false},
			{"alice", aliceHost, opWrite, topic, "t", false},
			{"bob", aliceHost, opRead, topic, "t", false},
			{"alice", aliceHost, opRead, group, "t", false},
		}},
		{"deny wins over allow", on, []ACL{
			acl(topic, "*", literal, "User:*", "*", opAll, allow),
			acl(topic, "secret", literal, alice, "*", opRead, deny),
		}, []check{
			{"alice", aliceHost, opRead, topic, "secret", false},
			{"alice", aliceHost, opWrite, topic, "secret", true},
			{"alice", aliceHost, opDescribe, topic, "secret", true}, // a DENY of READ does not deny DESCRIBE
			{"bob", aliceHost, opRead, topic, "secret", true},
		}},
		{"deny of ALL denies everything", on, []ACL{
			acl(topic, "t", literal, alice, "*", opRead, allow),
			acl(topic, "t", prefix, alice, "*", opAll, deny),
		}, []check{{"alice", aliceHost, opRead, topic, "t", false}, {"alice", aliceHost, opDescribe, topic, "tail", false}}},
		{"ALL allows every operation", on, []ACL{
			acl(group, "g", literal, alice, "*", opAll, allow),
		}, []check{{"alice", aliceHost, opRead, group, "g", true}, {"alice", aliceHost, opDelete, group, "g", true}, {"alice", aliceHost, opDescribe, group, "g", true}}},
		{"implied describe", on, []ACL{
			acl(topic, "r", literal, alice, "*", opRead, allow),
			acl(topic, "w", literal, alice, "*", opWrite, allow),
			acl(topic, "d", literal, alice, "*", opDelete, allow),
			acl(topic, "a", literal, alice, "*", opAlter, allow),
			acl(topic, "c", literal, alice, "*", opCreate, allow),
			acl(topic, "ac", literal, alice, "*", opAlterCfg, allow),
		}, []check{
			{"alice", aliceHost, opDescribe, topic, "r", true},
			{"alice", aliceHost, opDescribe, topic, "w", true},
			{"alice", aliceHost, opDescribe, topic, "d", true},
			{"alice", aliceHost, opDescribe, topic, "a", true},
			{"alice", aliceHost, opDescribe, topic, "c", false},
			{"alice", aliceHost, opDescCfg, topic, "ac", true},
			{"alice", aliceHost, opDescribe, topic, "ac", false},
			{"alice", aliceHost, opRead, topic, "w", false},
		}},
		{"wildcard principal and host", on, []ACL{
			acl(topic, "pub", literal, "User:*", "*", opRead, allow),
			acl(topic, "pinned", literal, alice, aliceHost, opRead, allow),
		}, []check{
			{"anyone", otherHost, opRead, topic, "pub", true},
			{"alice", aliceHost, opRead, topic, "pinned", true},
			{"alice", otherHost, opRead, topic, "pinned", false},
		}},
		{"host deny", on, []ACL{
			acl(topic, "t", literal, alice, "*", opRead, allow),
			acl(topic, "t", literal, alice, otherHost, opRead, deny),
		}, []check{{"alice", aliceHost, opRead, topic, "t", true}, {"alice", otherHost, opRead, topic, "t", false}}},
		{"prefixed and wildcard patterns", on, []ACL{
			acl(topic, "orders.", prefix, alice, "*", opWrite, allow),
			acl(group, "*", literal, alice, "*", opRead, allow),
			acl(topic, "*", prefix, alice, "*", opRead, allow), // a prefixed "*" is a prefix, not a wildcard
		}, []check{
			{"alice", aliceHost, opWrite, topic, "orders.eu", true},
			{"alice", aliceHost, opWrite, topic, "orders.", true},
			{"alice", aliceHost, opWrite, topic, "orders", false},
			{"alice", aliceHost, opRead, group, "anything", true},
			{"alice", aliceHost, opRead, topic, "x", false},
			{"alice", aliceHost, opRead, topic, "*x", true},
		}},
		{"cluster and transactional id", on, []ACL{
			acl(cluster, ClusterName, literal, alice, "*", opCreate, allow),
			acl(txnID, "tx-", prefix, alice, "*", opWrite, allow),
		}, []check{
			{"alice", aliceHost, opCreate, cluster, ClusterName, true},
			{"alice", aliceHost, opAlter, cluster, ClusterName, false},
			{"alice", aliceHost, opWrite, txnID, "tx-1", true},
			{"alice", aliceHost, opDescribe, txnID, "tx-1", true},
			{"alice", aliceHost, opWrite, topic, "tx-1", false},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := NewAuthorizer(c.cfg, fixedACLs(c.acls))
			for _, ch := range c.checks {
				if got := a.Authorize(User(ch.who), ch.host, ch.op, ch.typ, ch.name); got != ch.want {
					t.Errorf("User:%s from %s %s %s %q = %v, want %v", ch.who, ch.host, ch.op, ch.typ, ch.name, got, ch.want)
				}
			}
		})
	}
}

func TestAuthorizeAny(t *testing.T) {
	on := config.AuthorizationConfig{Enabled: true, SuperUsers: []string{"User:admin"}}
	cases := []struct {
		name string
		cfg  config.AuthorizationConfig
		acls []ACL
		who  string
		want bool
	}{
		{"no ACL", on, nil, "alice", false},
		{"super user", on, nil, "admin", true},
		{"disabled", config.AuthorizationConfig{}, nil, "alice", true},
		{"literal write", on, []ACL{acl(topic, "t", literal, alice, "*", opWrite, allow)}, "alice", true},
		{"other principal's write", on, []ACL{acl(topic, "t", literal, "User:bob", "*", opWrite, allow)}, "alice", false},
		{"read is not write", on, []ACL{acl(topic, "t", literal, alice, "*", opRead, allow)}, "alice", false},
		{"ALL counts", on, []ACL{acl(topic, "t", literal, alice, "*", opAll, allow)}, "alice", true},
		{"literal allow denied literally", on, []ACL{
			acl(topic, "t", literal, alice, "*", opWrite, allow),
			acl(topic, "t", literal, alice, "*", opWrite, deny),
		}, "alice", false},
		{"literal allow denied by prefix", on, []ACL{
			acl(topic, "team.t", literal, alice, "*", opWrite, allow),
			acl(topic, "team.", prefix, alice, "*", opWrite, deny),
		}, "alice", false},
		{"prefix allow under a shorter deny prefix", on, []ACL{
			acl(topic, "team.a", prefix, alice, "*", opWrite, allow),
			acl(topic, "team.", prefix, alice, "*", opWrite, deny),
		}, "alice", false},
		{"prefix allow beside an unrelated deny", on, []ACL{
			acl(topic, "team.a", prefix, alice, "*", opWrite, allow),
			acl(topic, "team.b", prefix, alice, "*", opWrite, deny),
		}, "alice", true},
		{"wildcard deny", on, []ACL{
			acl(topic, "t", literal, alice, "*", opWrite, allow),
			acl(topic, "*", literal, "User:*", "*", opWrite, deny),
		}, "alice", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := NewAuthorizer(c.cfg, fixedACLs(c.acls))
			if got := a.AuthorizeAny(User(c.who), aliceHost, opWrite, topic); got != c.want {
				t.Errorf("AuthorizeAny = %v, want %v", got, c.want)
			}
		})
	}
}

func TestAuthorizedOperations(t *testing.T) {
	a := NewAuthorizer(config.AuthorizationConfig{Enabled: true}, fixedACLs{
		acl(topic, "t", literal, alice, "*", opRead, allow),
		acl(topic, "t", literal, alice, "*", opAlterCfg, allow),
	})
	got := a.AuthorizedOperations(User("alice"), aliceHost, topic, "t")
	want := int32(1<<opRead | 1<<opDescribe | 1<<opDescCfg | 1<<opAlterCfg)
	if got != want {
		t.Fatalf("authorized operations = %b, want %b", got, want)
	}
	if got := a.AuthorizedOperations(User(bobName), aliceHost, topic, "t"); got != 0 {
		t.Fatalf("bob's operations = %b, want none", got)
	}
}

func TestFilterMatches(t *testing.T) {
	s := func(v string) *string { return &v }
	lit := acl(topic, "orders", literal, alice, "*", opRead, allow)
	wild := acl(topic, wildcardAll, literal, alice, "*", opRead, allow)
	pre := acl(topic, "ord", prefix, alice, "*", opRead, allow)
	other := acl(group, "orders", literal, "User:bob", aliceHost, opWrite, deny)
	all := []ACL{lit, wild, pre, other}
	anyF := Filter{ResourceType: kmsg.ACLResourceTypeAny, PatternType: kmsg.ACLResourcePatternTypeAny, Operation: kmsg.ACLOperationAny, Permission: kmsg.ACLPermissionTypeAny}
	cases := []struct {
		name string
		mod  func(*Filter)
		want []ACL
	}{
		{"any", func(*Filter) {}, all},
		{"type", func(f *Filter) { f.ResourceType = topic }, []ACL{lit, wild, pre}},
		{"any pattern by name is exact", func(f *Filter) { f.ResourceName = s("orders") }, []ACL{lit, other}},
		{"literal", func(f *Filter) { f.PatternType = literal }, []ACL{lit, wild, other}},
		{"prefixed by name", func(f *Filter) { f.PatternType, f.ResourceName = prefix, s("ord") }, []ACL{pre}},
		{"match", func(f *Filter) {
			f.ResourceType, f.PatternType, f.ResourceName = topic, kmsg.ACLResourcePatternTypeMatch, s("orders")
		}, []ACL{lit, wild, pre}},
		{"match other name", func(f *Filter) {
			f.ResourceType, f.PatternType, f.ResourceName = topic, kmsg.ACLResourcePatternTypeMatch, s("x")
		}, []ACL{wild}},
		{"principal", func(f *Filter) { f.Principal = s("User:bob") }, []ACL{other}},
		{"host", func(f *Filter) { f.Host = s(aliceHost) }, []ACL{other}},
		{"operation", func(f *Filter) { f.Operation = opWrite }, []ACL{other}},
		{"permission", func(f *Filter) { f.Permission = deny }, []ACL{other}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := anyF
			c.mod(&f)
			var got []ACL
			for _, a := range all {
				if f.Matches(a) {
					got = append(got, a)
				}
			}
			if len(got) != len(c.want) {
				t.Fatalf("matched %v, want %v", got, c.want)
			}
			for i := range got {
				if got[i] != c.want[i] {
					t.Fatalf("matched %v, want %v", got, c.want)
				}
			}
		})
	}
}

func TestACLValidate(t *testing.T) {
	good := acl(topic, "t", literal, alice, "*", opRead, allow)
	if err := good.Validate(); err != nil {
		t.Fatalf("valid ACL: %v", err)
	}
	bad := map[string]func(*ACL){
		"any type":         func(a *ACL) { a.ResourceType = kmsg.ACLResourceTypeAny },
		"match pattern":    func(a *ACL) { a.PatternType = kmsg.ACLResourcePatternTypeMatch },
		"empty name":       func(a *ACL) { a.ResourceName = "" },
		"cluster name":     func(a *ACL) { a.ResourceType, a.ResourceName = cluster, "other" },
		"any operation":    func(a *ACL) { a.Operation = kmsg.ACLOperationAny },
		"any permission":   func(a *ACL) { a.Permission = kmsg.ACLPermissionTypeAny },
		"bad principal":    func(a *ACL) { a.Principal = "alice" },
		"empty host":       func(a *ACL) { a.Host = "" },
		"unknown resource": func(a *ACL) { a.ResourceType = 42 },
	}
	for name, mod := range bad {
		t.Run(name, func(t *testing.T) {
			a := good
			mod(&a)
			if err := a.Validate(); err == nil {
				t.Fatalf("%v validated", a)
			}
		})
	}
}
