package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/runnel-dev/runnel/internal/cluster/clustertest"
	"github.com/runnel-dev/runnel/internal/config"
)

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newTestCredentials(t *testing.T, cl *clientv3.Client) *Credentials {
	t.Helper()
	c, err := NewCredentials(testCtx(t), CredentialsOptions{Client: cl})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// eventually fails the test unless cond holds within d.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestCredentialsSharedAcrossBrokers(t *testing.T) {
	etcd := clustertest.Start(t)
	b1 := newTestCredentials(t, etcd.Client())
	b2 := newTestCredentials(t, etcd.Client())
	ctx := testCtx(t)

	if err := b1.SetPassword(ctx, "alice", "alice-secret", SCRAMMechanisms, 4096); err != nil {
		t.Fatal(err)
	}
	// The writer reads its own write at once.
	if _, ok := b1.Lookup("alice", config.MechanismSCRAMSHA512); !ok {
		t.Fatal("writer does not see its own credential")
	}
	eventually(t, time.Second, "b2 sees alice", func() bool {
		_, ok := b2.Lookup("alice", config.MechanismSCRAMSHA256)
		return ok
	})
	c1, _ := b1.Lookup("alice", config.MechanismSCRAMSHA256)
	c2, _ := b2.Lookup("alice", config.MechanismSCRAMSHA256)
	if string(c1.StoredKey) != string(c2.StoredKey) || c2.Iterations != 4096 {
		t.Fatalf("brokers disagree: %+v vs %+v", c1, c2)
	}

	salted, err := saltPassword(config.MechanismSCRAMSHA256, "bob-secret", []byte("salt"), 8192)
	if err != nil {
		t.Fatal(err)
	}
	if err := b2.Upsert(ctx, "team/bob", config.MechanismSCRAMSHA256, 8192, []byte("salt"), salted); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Second, "b1 sees team/bob", func() bool {
		_, ok := b1.Lookup("team/bob", config.MechanismSCRAMSHA256)
		return ok
	})
	got := b1.Describe(nil)
	want := []UserCredentials{
		{User: "alice", Mechanisms: []MechanismInfo{{config.MechanismSCRAMSHA256, 4096}, {config.MechanismSCRAMSHA512, 4096}}},
		{User: "team/bob", Mechanisms: []MechanismInfo{{config.MechanismSCRAMSHA256, 8192}}},
	}
	if !equalUserCredentials(got, want) {
		t.Fatalf("Describe(nil) = %+v, want %+v", got, want)
	}
	if got := b1.Describe([]string{"nobody", "team/bob"}); len(got) != 1 || got[0].User != "team/bob" {
		t.Fatalf("Describe(nobody, team/bob) = %+v", got)
	}

	if err := b2.Delete(ctx, "alice", config.MechanismSCRAMSHA512); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Second, "b1 sees the deletion", func() bool {
		_, ok := b1.Lookup("alice", config.MechanismSCRAMSHA512)
		return !ok
	})
	if _, ok := b1.Lookup("alice", config.MechanismSCRAMSHA256); !ok {
		t.Fatal("deleting one mechanism removed the other")
	}
	if err := b1.Delete(ctx, "alice", config.MechanismSCRAMSHA512); !errors.Is(err, ErrCredentialNotFound) {
		t.Fatalf("second delete: %v, want ErrCredentialNotFound", err)
	}

	// A broker started later loads what exists.
	b3 := newTestCredentials(t, etcd.Client())
	if got := b3.Describe(nil); !equalUserCredentials(got, []UserCredentials{
		{User: "alice", Mechanisms: []MechanismInfo{{config.MechanismSCRAMSHA256, 4096}}},
		want[1],
	}) {
		t.Fatalf("late broker Describe = %+v", got)
	}
}

func equalUserCredentials(a, b []UserCredentials) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].User != b[i].User || len(a[i].Mechanisms) != len(b[i].Mechanisms) {
			return false
		}
		for j := range a[i].Mechanisms {
			if a[i].Mechanisms[j] != b[i].Mechanisms[j] {
				return false
			}
		}
	}
	return true
}

func TestCredentialsStoreNoPassword(t *testing.T) {
	etcd := clustertest.Start(t)
	cl := etcd.Client()
	c := newTestCredentials(t, cl)
	ctx := testCtx(t)
	const password = "correct-horse-battery-staple"
	if err := c.SetPassword(ctx, "carol", password, SCRAMMechanisms, 4096); err != nil {
		t.Fatal(err)
	}
	resp, err := cl.Get(ctx, "/runnel/security/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, kv := range resp.Kvs {
		keys = append(keys, string(kv.Key))
		if strings.Contains(string(kv.Value), password) {
			t.Fatalf("%s holds the password: %s", kv.Key, kv.Value)
		}
		for _, field := range []string{`"salt"`, `"iterations":4096`, `"stored_key"`, `"server_key"`} {
			if !strings.Contains(string(kv.Value), field) {
				t.Fatalf("%s = %s, missing %s", kv.Key, kv.Value, field)
			}
		}
	}
	want := "/runnel/security/scram/carol/SCRAM-SHA-256 /runnel/security/scram/carol/SCRAM-SHA-512"
	if strings.Join(keys, " ") != want {
		t.Fatalf("keys = %v, want %s", keys, want)
	}
	c256, _ := c.Lookup("carol", config.MechanismSCRAMSHA256)
	c512, _ := c.Lookup("carol", config.MechanismSCRAMSHA512)
	if string(c256.Salt) == string(c512.Salt) || len(c256.Salt) != saltBytes {
		t.Fatal("each mechanism needs its own random salt")
	}
}

func TestCredentialsValidation(t *testing.T) {
	etcd := clustertest.Start(t)
	c := newTestCredentials(t, etcd.Client())
	ctx := testCtx(t)
	salt, salted := []byte("salt"), []byte("salted-password")
	tests := []struct {
		name       string
		user, mech string
		iterations int
		salt       []byte
		want       error
	}{
		{"empty user", "", config.MechanismSCRAMSHA256, 4096, salt, ErrUnacceptableCredential},
		{"too few iterations", "u", config.MechanismSCRAMSHA256, 4095, salt, ErrUnacceptableCredential},
		{"too many iterations", "u", config.MechanismSCRAMSHA512, 16385, salt, ErrUnacceptableCredential},
		{"SCRAM-SHA-1", "u", "SCRAM-SHA-1", 4096, salt, ErrUnsupportedMechanism},
		{"PLAIN", "u", config.MechanismPlain, 4096, salt, ErrUnsupportedMechanism},
		{"empty salt", "u", config.MechanismSCRAMSHA256, 4096, nil, ErrUnacceptableCredential},
		{"lowest", "u", config.MechanismSCRAMSHA256, 4096, salt, nil},
		{"highest", "u", config.MechanismSCRAMSHA512, 16384, salt, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := c.Upsert(ctx, tt.user, tt.mech, tt.iterations, tt.salt, salted)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Upsert = %v, want %v", err, tt.want)
			}
		})
	}
	if err := c.SetPassword(ctx, "u", "pw", nil, 4096); !errors.Is(err, ErrUnsupportedMechanism) {
		t.Fatalf("SetPassword without mechanisms = %v", err)
	}
	if err := c.SetPassword(ctx, "u", "", SCRAMMechanisms, 4096); !errors.Is(err, ErrUnacceptableCredential) {
		t.Fatalf("SetPassword with an empty password = %v", err)
	}
	if err := c.Delete(ctx, "", config.MechanismSCRAMSHA256); !errors.Is(err, ErrUnacceptableCredential) {
		t.Fatalf("Delete of an empty user = %v", err)
	}
}

// memCredentials is a credential store without etcd, for exchange tests:
// only Lookup and Describe work on it.
func memCredentials(t *testing.T, users map[string]string, iterations int) *Credentials {
	t.Helper()
	c := &Credentials{users: map[string]map[string]Credential{}, changed: make(chan struct{})}
	for u, pw := range users {
		c.users[u] = map[string]Credential{}
		for _, m := range SCRAMMechanisms {
			sum := sha256.Sum256([]byte(u + m))
			salt := sum[:]
			salted, err := saltPassword(m, pw, salt, iterations)
			if err != nil {
				t.Fatal(err)
			}
			c.users[u][m] = newCredential(m, iterations, salt, salted)
		}
	}
	return c
}

// TestCredentialsOnlyIfAbsentKeepsExisting: creating a credential only if
// absent (what bootstrapping does) when another broker created it meanwhile
// keeps that one and returns at once, even though etcd's revision has moved
// on through other keys and no watch event will come for a write that did
// not happen.
func TestCredentialsOnlyIfAbsentKeepsExisting(t *testing.T) {
	e := clustertest.Start(t)
	one, two := newTestCredentials(t, e.Client()), newTestCredentials(t, e.Client())
	if err := one.SetPassword(testCtx(t), "alice", "first", SCRAMMechanisms, 4096); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Second, "the second store sees alice", func() bool { return two.hasUser("alice") })
	want, _ := two.Lookup("alice", config.MechanismSCRAMSHA256)
	if _, err := e.Client().Put(testCtx(t), "/elsewhere", "1"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := two.setPassword(ctx, "alice", "second", SCRAMMechanisms, 4096, true); err != nil {
		t.Fatalf("creating an existing credential only if absent: %v", err)
	}
	if got, _ := two.Lookup("alice", config.MechanismSCRAMSHA256); string(got.StoredKey) != string(want.StoredKey) {
		t.Fatal("the existing credential was replaced")
	}
}
