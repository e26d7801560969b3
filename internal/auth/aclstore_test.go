package auth

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/cluster/clustertest"
	"github.com/runnel-dev/runnel/internal/config"
)

func openStore(t *testing.T, e *clustertest.Etcd) *ACLStore {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := OpenACLStore(ctx, e.Client(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestACLStoreSharedAcrossBrokers: an ACL created through one broker's
// store is enforced by another broker's authorizer within a second, and
// its deletion too.
func TestACLStoreSharedAcrossBrokers(t *testing.T) {
	e := clustertest.Start(t)
	one, two := openStore(t, e), openStore(t, e)
	cfg := config.AuthorizationConfig{Enabled: true}
	authTwo := NewAuthorizer(cfg, two)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	a := acl(topic, "orders.", prefix, alice, "*", opWrite, allow)
	if authTwo.Authorize(User("alice"), aliceHost, opWrite, topic, "orders.eu") {
		t.Fatal("allowed before any ACL")
	}
	for _, err := range one.Create(ctx, []ACL{a, a}) { // twice: idempotent
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := one.Describe(Filter{ResourceType: kmsg.ACLResourceTypeAny, PatternType: kmsg.ACLResourcePatternTypeAny, Operation: kmsg.ACLOperationAny, Permission: kmsg.ACLPermissionTypeAny}); len(got) != 1 || got[0] != a {
		t.Fatalf("creating store describes %v, want just %v", got, a)
	}
	waitFor(t, "the other broker to allow", func() bool {
		return authTwo.Authorize(User("alice"), aliceHost, opWrite, topic, "orders.eu")
	})

	// Deleting through the second store (a MATCH filter on a topic name)
	// revokes on the first.
	name := "orders.us"
	deleted, errs := two.Delete(ctx, []Filter{{ResourceType: topic, ResourceName: &name, PatternType: kmsg.ACLResourcePatternTypeMatch,
		Operation: kmsg.ACLOperationAny, Permission: kmsg.ACLPermissionTypeAny}})
	if errs[0] != nil || len(deleted[0]) != 1 || deleted[0][0] != a {
		t.Fatalf("delete = %v, %v", deleted, errs)
	}
	authOne := NewAuthorizer(cfg, one)
	waitFor(t, "the first broker to deny", func() bool {
		return !authOne.Authorize(User("alice"), aliceHost, opWrite, topic, "orders.eu")
	})

	// A store opened later loads what exists.
	if err := one.Create(ctx, []ACL{acl(group, "g", literal, alice, "*", opRead, allow)})[0]; err != nil {
		t.Fatal(err)
	}
	if n := len(openStore(t, e).Snapshot().All()); n != 1 {
		t.Fatalf("a new store loads %d ACLs, want 1", n)
	}
}

func TestACLStoreRejectsInvalid(t *testing.T) {
	e := clustertest.Start(t)
	s := openStore(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errs := s.Create(ctx, []ACL{
		acl(cluster, "not-the-cluster", literal, alice, "*", opAlter, allow),
		acl(topic, "t", literal, alice, "*", opRead, allow),
	})
	if !errors.Is(errs[0], ErrInvalidACL) || errs[1] != nil {
		t.Fatalf("create = %v", errs)
	}
	if n := len(s.Snapshot().All()); n != 1 {
		t.Fatalf("%d ACLs stored, want 1", n)
	}
}

// waitFor polls cond for up to one second: the promise is that a change
// applies on every broker within a second.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited a second for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
