package auth

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/xdg-go/scram"

	"github.com/runnel-dev/runnel/internal/cluster/clustertest"
	"github.com/runnel-dev/runnel/internal/config"
)

var allPasswordMechanisms = []string{config.MechanismPlain, config.MechanismSCRAMSHA256, config.MechanismSCRAMSHA512}

func newTestAuthenticator(t *testing.T, creds *Credentials, cfg config.SASLConfig) *Authenticator {
	t.Helper()
	if cfg.SCRAMIterations == 0 {
		cfg.SCRAMIterations = 4096
	}
	a, err := NewAuthenticator(context.Background(), AuthenticatorOptions{Credentials: creds, Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	return a
}

// runSCRAM runs a SCRAM exchange with xdg-go/scram's client and reports the
// server's verdict; the client checks the server's final signature.
func runSCRAM(t *testing.T, a *Authenticator, mech, user, password, authzid string, mutate func(first string) string) (Exchange, error) {
	t.Helper()
	hash := scram.SHA256
	if mech == config.MechanismSCRAMSHA512 {
		hash = scram.SHA512
	}
	cl, err := hash.NewClientUnprepped(user, password, authzid)
	if err != nil {
		t.Fatal(err)
	}
	conv := cl.NewConversation()
	ex, err := a.Start(mech)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	first, err := conv.Step("")
	if err != nil {
		t.Fatal(err)
	}
	if mutate != nil {
		first = mutate(first)
	}
	reply, done, err := ex.Next(ctx, []byte(first))
	if err != nil {
		return ex, err
	}
	if done {
		t.Fatal("done after the client-first message")
	}
	final, err := conv.Step(string(reply))
	if err != nil {
		t.Fatalf("client rejects server-first %q: %v", reply, err)
	}
	reply, done, err = ex.Next(ctx, []byte(final))
	if err != nil {
		return ex, err
	}
	if !done {
		t.Fatal("not done after a valid client-final message")
	}
	if _, err := conv.Step(string(reply)); err != nil || !conv.Valid() {
		t.Fatalf("client rejects the server signature %q: %v", reply, err)
	}
	if _, _, err := ex.Next(ctx, []byte("more")); !errors.Is(err, ErrIllegalSASLState) {
		t.Fatalf("Next after done = %v, want ErrIllegalSASLState", err)
	}
	return ex, nil
}

func TestSCRAMExchange(t *testing.T) {
	creds := memCredentials(t, map[string]string{"alice": "alice-secret", "we,ird=name": "pw"}, 4096)
	a := newTestAuthenticator(t, creds, config.SASLConfig{Mechanisms: allPasswordMechanisms})
	tokenauth := func(first string) string { return first + ",tokenauth=true" }
	for _, mech := range SCRAMMechanisms {
		tests := []struct {
			name, user, password, authzid string
			mutate                        func(string) string
			wantErr                       string // "" for success
		}{
			{"ok", "alice", "alice-secret", "", nil, ""},
			{"escaped name", "we,ird=name", "pw", "", nil, ""},
			{"authzid equal", "alice", "alice-secret", "alice", nil, ""},
			{"wrong password", "alice", "nope", "", nil, "invalid credentials"},
			{"unknown user", "mallory", "alice-secret", "", nil, "invalid credentials"},
			{"authzid differs", "alice", "alice-secret", "bob", nil, "authorization id"},
			{"tokenauth", "alice", "alice-secret", "", tokenauth, "delegation tokens"},
		}
		for _, tt := range tests {
			t.Run(mech+"/"+tt.name, func(t *testing.T) {
				ex, err := runSCRAM(t, a, mech, tt.user, tt.password, tt.authzid, tt.mutate)
				if tt.wantErr == "" {
					if err != nil {
						t.Fatal(err)
					}
					if got := ex.Principal(); got != User(tt.user) {
						t.Fatalf("principal %v, want User:%s", got, tt.user)
					}
					if !ex.Expiry().IsZero() {
						t.Fatalf("expiry %v, want none", ex.Expiry())
					}
					return
				}
				if !errors.Is(err, ErrAuthenticationFailed) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want ErrAuthenticationFailed saying %q", err, tt.wantErr)
				}
				if _, _, err := ex.Next(context.Background(), []byte("again")); !errors.Is(err, ErrIllegalSASLState) {
					t.Fatalf("Next after failure = %v, want ErrIllegalSASLState", err)
				}
			})
		}
	}
}

// TestSCRAMAgainstUpsertedCredential checks the store's derivation against
// a client: the credential comes from a salted password as
// AlterUserScramCredentials carries it.
func TestSCRAMAgainstUpsertedCredential(t *testing.T) {
	etcd := clustertest.Start(t)
	creds := newTestCredentials(t, etcd.Client())
	ctx := testCtx(t)
	for _, mech := range SCRAMMechanisms {
		salted, err := saltPassword(mech, "pencil", []byte("client-salt"), 4096)
		if err != nil {
			t.Fatal(err)
		}
		if err := creds.Upsert(ctx, "user", mech, 4096, []byte("client-salt"), salted); err != nil {
			t.Fatal(err)
		}
	}
	a := newTestAuthenticator(t, creds, config.SASLConfig{Mechanisms: allPasswordMechanisms})
	for _, mech := range SCRAMMechanisms {
		if _, err := runSCRAM(t, a, mech, "user", "pencil", "", nil); err != nil {
			t.Fatalf("%s: %v", mech, err)
		}
	}
	if p, err := a.CheckPassword(ctx, "user", "pencil"); err != nil || p != User("user") {
		t.Fatalf("CheckPassword = %v, %v", p, err)
	}
}

// TestSCRAMUnknownUserLooksLikeWrongPassword: an unknown user gets a
// server-first message of the same shape, and fails with the same error.
func TestSCRAMUnknownUserLooksLikeWrongPassword(t *testing.T) {
	a := newTestAuthenticator(t, memCredentials(t, map[string]string{"alice": "pw"}, 4096),
		config.SASLConfig{Mechanisms: allPasswordMechanisms, SCRAMIterations: 4096})
	first := func(user string) string {
		ex, _ := a.Start(config.MechanismSCRAMSHA256)
		reply, _, err := ex.Next(context.Background(), []byte("n,,n="+user+",r=abc"))
		if err != nil {
			t.Fatal(err)
		}
		return string(reply)
	}
	known, unknown := first("alice"), first("mallory")
	if strings.Count(known, ",") != strings.Count(unknown, ",") || !strings.HasSuffix(unknown, ",i=4096") || len(known) != len(unknown) {
		t.Fatalf("server-first differs: %q vs %q", known, unknown)
	}
	_, errWrong := runSCRAM(t, a, config.MechanismSCRAMSHA256, "alice", "bad", "", nil)
	_, errUnknown := runSCRAM(t, a, config.MechanismSCRAMSHA256, "mallory", "bad", "", nil)
	if errWrong == nil || errUnknown == nil || errWrong.Error() != errUnknown.Error() {
		t.Fatalf("wrong password %v vs unknown user %v", errWrong, errUnknown)
	}
}

func TestPlainExchange(t *testing.T) {
	creds := memCredentials(t, map[string]string{"alice": "alice-secret"}, 4096)
	// bob has only a SCRAM-SHA-256 credential: PLAIN falls back to it.
	salted, _ := saltPassword(config.MechanismSCRAMSHA256, "bob-secret", []byte("s"), 4096)
	creds.users["bob"] = map[string]Credential{config.MechanismSCRAMSHA256: newCredential(config.MechanismSCRAMSHA256, 4096, []byte("s"), salted)}
	a := newTestAuthenticator(t, creds, config.SASLConfig{Mechanisms: []string{config.MechanismPlain}})
	tests := []struct {
		name    string
		msg     string
		want    string // principal name, "" for failure
		wantErr string
	}{
		{"ok", "\x00alice\x00alice-secret", "alice", ""},
		{"authzid equal", "alice\x00alice\x00alice-secret", "alice", ""},
		{"sha-256 only", "\x00bob\x00bob-secret", "bob", ""},
		{"wrong password", "\x00alice\x00nope", "", "invalid username or password"},
		{"unknown user", "\x00mallory\x00alice-secret", "", "invalid username or password"},
		{"authzid differs", "bob\x00alice\x00alice-secret", "", "authorization id"},
		{"two fields", "alice\x00alice-secret", "", "malformed"},
		{"four fields", "\x00alice\x00alice-secret\x00", "", "malformed"},
		{"empty password", "\x00alice\x00", "", "malformed"},
		{"empty user", "\x00\x00pw", "", "malformed"},
		{"bad utf-8", "\x00al\xffice\x00pw", "", "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ex, err := a.Start(config.MechanismPlain)
			if err != nil {
				t.Fatal(err)
			}
			reply, done, err := ex.Next(context.Background(), []byte(tt.msg))
			if tt.want != "" {
				if err != nil || !done || len(reply) != 0 || ex.Principal() != User(tt.want) {
					t.Fatalf("Next = %q, %v, %v; principal %v", reply, done, err, ex.Principal())
				}
			} else if done || !errors.Is(err, ErrAuthenticationFailed) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Next = %v, %v; want ErrAuthenticationFailed saying %q", done, err, tt.wantErr)
			}
			if _, _, err := ex.Next(context.Background(), []byte(tt.msg)); !errors.Is(err, ErrIllegalSASLState) {
				t.Fatalf("second Next = %v, want ErrIllegalSASLState", err)
			}
		})
	}
	ctx := context.Background()
	if _, err := a.CheckPassword(ctx, "alice", "alice-secret"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.CheckPassword(ctx, "alice", "wrong"); !errors.Is(err, ErrAuthenticationFailed) {
		t.Fatalf("CheckPassword wrong = %v", err)
	}
	if _, _, err := a.CheckToken(ctx, "x.y.z"); !errors.Is(err, ErrAuthenticationFailed) {
		t.Fatalf("CheckToken without OAUTHBEARER = %v", err)
	}
}

func TestAuthenticatorMechanisms(t *testing.T) {
	creds := memCredentials(t, nil, 4096)
	a := newTestAuthenticator(t, creds, config.SASLConfig{Mechanisms: []string{config.MechanismSCRAMSHA512, config.MechanismPlain}})
	if got := a.Mechanisms(); strings.Join(got, ",") != "SCRAM-SHA-512,PLAIN" {
		t.Fatalf("Mechanisms = %v", got)
	}
	for _, m := range []string{config.MechanismSCRAMSHA256, "GSSAPI", "", config.MechanismOAuthBearer} {
		if _, err := a.Start(m); !errors.Is(err, ErrUnsupportedMechanism) {
			t.Fatalf("Start(%q) = %v, want ErrUnsupportedMechanism", m, err)
		}
	}
	if _, err := NewAuthenticator(context.Background(), AuthenticatorOptions{Config: config.SASLConfig{Mechanisms: []string{config.MechanismPlain}}}); err == nil {
		t.Fatal("PLAIN without a credential store was accepted")
	}
	if _, err := NewAuthenticator(context.Background(), AuthenticatorOptions{Config: config.SASLConfig{Mechanisms: []string{config.MechanismOAuthBearer}}}); err == nil {
		t.Fatal("OAUTHBEARER without a key set was accepted")
	}
}

// TestCheckPasswordAfterChange: a password accepted once (and remembered)
// stops working as soon as the credential changes or goes.
func TestCheckPasswordAfterChange(t *testing.T) {
	creds := memCredentials(t, map[string]string{"alice": "old"}, 4096)
	a := newTestAuthenticator(t, creds, config.SASLConfig{Mechanisms: allPasswordMechanisms})
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		if _, err := a.CheckPassword(ctx, "alice", "old"); err != nil {
			t.Fatalf("check %d: %v", i, err)
		}
	}
	if _, err := a.CheckPassword(ctx, "alice", "new"); !errors.Is(err, ErrAuthenticationFailed) {
		t.Fatalf("the new password before the change = %v", err)
	}
	next := memCredentials(t, map[string]string{"alice": "new"}, 4096)
	creds.mu.Lock()
	creds.users["alice"] = next.users["alice"]
	creds.mu.Unlock()
	if _, err := a.CheckPassword(ctx, "alice", "old"); !errors.Is(err, ErrAuthenticationFailed) {
		t.Fatalf("the old password after the change = %v", err)
	}
	if _, err := a.CheckPassword(ctx, "alice", "new"); err != nil {
		t.Fatalf("the new password: %v", err)
	}
	creds.mu.Lock()
	delete(creds.users, "alice")
	creds.mu.Unlock()
	if _, err := a.CheckPassword(ctx, "alice", "new"); !errors.Is(err, ErrAuthenticationFailed) {
		t.Fatalf("a deleted user's password = %v", err)
	}
}
