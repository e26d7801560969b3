package auth

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/runnel-dev/runnel/internal/config"
)

// runClient drives an exchange with a Kafka client's own mechanism (the
// bytes a franz-go client sends) and reports the server's verdict.
func runClient(t *testing.T, a *Authenticator, m sasl.Mechanism) (Exchange, error) {
	t.Helper()
	ctx := context.Background()
	sess, msg, err := m.Authenticate(ctx, "127.0.0.1:9092")
	if err != nil {
		t.Fatal(err)
	}
	ex, err := a.Start(m.Name())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		reply, done, err := ex.Next(ctx, msg)
		if err != nil {
			return ex, err
		}
		clientDone, next, cerr := sess.Challenge(reply)
		if cerr != nil {
			t.Fatalf("client rejects the server's reply %q: %v", reply, cerr)
		}
		if done {
			if !clientDone {
				t.Fatal("server done, client not")
			}
			return ex, nil
		}
		msg = next
	}
	t.Fatal("exchange did not finish")
	return nil, nil
}

func TestFranzGoClientMechanisms(t *testing.T) {
	es := newTestKey(t, "es", jose.ES256)
	file := filepath.Join(t.TempDir(), "jwks.json")
	writeFile(t, file, jwksJSON(t, es))
	cfg := oauthConfig(file)
	cfg.Mechanisms = []string{config.MechanismPlain, config.MechanismSCRAMSHA256, config.MechanismSCRAMSHA512, config.MechanismOAuthBearer}
	now := time.Now()
	a, err := NewAuthenticator(context.Background(), AuthenticatorOptions{
		Credentials: memCredentials(t, map[string]string{"alice": "alice-secret"}, 4096),
		Config:      cfg,
		Now:         func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	token := es.sign(t, claimsAt(now, nil))
	tests := []struct {
		name string
		m    sasl.Mechanism
		ok   bool
	}{
		{"PLAIN", plain.Auth{User: "alice", Pass: "alice-secret"}.AsMechanism(), true},
		{"PLAIN wrong password", plain.Auth{User: "alice", Pass: "x"}.AsMechanism(), false},
		{"SCRAM-SHA-256", scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha256Mechanism(), true},
		{"SCRAM-SHA-512", scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha512Mechanism(), true},
		{"SCRAM-SHA-512 wrong password", scram.Auth{User: "alice", Pass: "x"}.AsSha512Mechanism(), false},
		{"SCRAM delegation token", scram.Auth{User: "alice", Pass: "alice-secret", IsToken: true}.AsSha256Mechanism(), false},
		{"OAUTHBEARER", oauth.Auth{Token: token, Extensions: map[string]string{"logicalCluster": "lc-1"}}.AsMechanism(), true},
		{"OAUTHBEARER authzid", oauth.Auth{Zid: "alice", Token: token}.AsMechanism(), true},
		{"OAUTHBEARER bad token", oauth.Auth{Token: token + "x"}.AsMechanism(), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ex, err := runClient(t, a, tt.m)
			if !tt.ok {
				if !errors.Is(err, ErrAuthenticationFailed) {
					t.Fatalf("err = %v, want ErrAuthenticationFailed", err)
				}
				return
			}
			if err != nil || ex.Principal() != User("alice") {
				t.Fatalf("err %v, principal %v", err, ex.Principal())
			}
		})
	}
}
