package clients

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/runnel-dev/runnel/internal/auth/authtest"
	"github.com/runnel-dev/runnel/test/harness"
)

// secured is a broker with a SASL_SSL listener (PLAIN, SCRAM-SHA-256/512,
// OAUTHBEARER) and an SSL listener (client certificates verified when
// given), ACLs on, User:admin a super user, and users admin, alice and bob
// created from a bootstrap users file.
type secured struct {
	b       *harness.Proc
	dir     string
	ca      *authtest.CA
	sasl    string // SASL_SSL listener host:port
	mtls    string // SSL listener host:port
	issuer  string
	jwtKey  *rsa.PrivateKey
	roots   *x509.CertPool
	appCert authtest.Pair // CN=app-mtls, from the trusted CA
	evil    authtest.Pair // CN=app-mtls, from an untrusted CA
}

var securedUsers = map[string]string{"admin": "admin-secret", "alice": "alice-secret", "bob": "bob-secret"}

func startSecured(t *testing.T) *secured {
	t.Helper()
	dir := t.TempDir()
	s := &secured{dir: dir, issuer: "https://idp.runnel.test"}
	s.ca = authtest.NewCA(t, dir, "ca")
	server := s.ca.Server(t, dir, "server")
	s.appCert = s.ca.Client(t, dir, "app", pkix.Name{CommonName: "app-mtls"})
	s.evil = authtest.NewCA(t, dir, "evil").Client(t, dir, "evil", pkix.Name{CommonName: "app-mtls"})
	s.roots = x509.NewCertPool()
	s.roots.AddCert(s.ca.Cert)

	var users strings.Builder
	for _, u := range sortedKeys(securedUsers) {
		fmt.Fprintf(&users, "%s:%s\n", u, securedUsers[u])
	}
	usersFile := filepath.Join(dir, "users")
	writeTestFile(t, usersFile, users.String())
	var err error
	if s.jwtKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	jwks := filepath.Join(dir, "jwks.json")
	writeTestFile(t, jwks, fmt.Sprintf(`{"keys":[{"kty":"RSA","kid":"k1","use":"sig","alg":"RS256","n":%q,"e":%q}]}`,
		b64(s.jwtKey.N.Bytes()), b64(big.NewInt(int64(s.jwtKey.E)).Bytes())))

	s.b = harness.Start(t, harness.Options{
		Listeners: []harness.Listener{{Name: "EXTERNAL", SecurityProtocol: "SASL_SSL"}, {Name: "MTLS", SecurityProtocol: "SSL"}},
		HTTPS:     true,
		Config: fmt.Sprintf(`
tls:
  cert-file: %s
  key-file: %s
  client-ca-file: %s
  client-auth: requested
sasl:
  mechanisms: [PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER]
  bootstrap-users-file: %s
  failure-delay: 50ms
  oauthbearer: {jwks-file: %s, issuer: %s, audience: runnel}
authorization:
  enabled: true
  super-users: [User:admin]
`, server.CertFile, server.KeyFile, s.ca.CertFile, usersFile, jwks, s.issuer),
	})
	s.sasl, s.mtls = s.b.Listeners["EXTERNAL"], s.b.Listeners["MTLS"]
	return s
}

func writeTestFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// token signs an RS256 JWT for sub, valid for ttl (negative: expired).
func (s *secured) token(t *testing.T, sub string, ttl time.Duration) string {
	t.Helper()
	now := time.Now()
	header := b64([]byte(`{"alg":"RS256","typ":"JWT","kid":"k1"}`))
	claims, _ := json.Marshal(map[string]any{"sub": sub, "iss": s.issuer, "aud": "runnel",
		"iat": now.Add(-time.Minute).Unix(), "exp": now.Add(ttl).Unix()})
	signing := header + "." + b64(claims)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, s.jwtKey, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + b64(sig)
}

// client is a franz-go client of the SASL_SSL listener.
func (s *secured) client(t *testing.T, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(s.sasl),
		kgo.DialTLSConfig(&tls.Config{RootCAs: s.roots}),
		kgo.RetryTimeout(5 * time.Second),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func (s *secured) scram(t *testing.T, user string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	return s.client(t, append([]kgo.Opt{kgo.SASL(scram.Auth{User: user, Pass: securedUsers[user]}.AsSha512Mechanism())}, opts...)...)
}

// allow grants principal every operation on topics and groups prefixed
// prefix (as the super user).
func (s *secured) allow(t *testing.T, principal, prefix string) {
	t.Helper()
	adm := kadm.NewClient(s.scram(t, "admin"))
	b := kadm.NewACLs().Allow(principal).AllowHosts("*").
		Topics(prefix).Groups(prefix).TransactionalIDs(prefix).
		ResourcePatternType(kadm.ACLPatternPrefixed).Operations(kadm.OpAll)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	res, err := adm.CreateACLs(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Fatalf("create ACL %+v: %v", r, r.Err)
		}
	}
}

// kcatSecurity are kcat's -X settings for a mechanism over SASL_SSL.
func (s *secured) kcatSASL(mech, user string) []string {
	return []string{"-b", s.sasl, "-X", "security.protocol=SASL_SSL", "-X", "sasl.mechanisms=" + mech,
		"-X", "sasl.username=" + user, "-X", "sasl.password=" + securedUsers[user],
		"-X", "ssl.ca.location=" + s.ca.CertFile}
}

func (s *secured) kcatMTLS(p authtest.Pair) []string {
	return []string{"-b", s.mtls, "-X", "security.protocol=SSL", "-X", "ssl.ca.location=" + s.ca.CertFile,
		"-X", "ssl.certificate.location=" + p.CertFile, "-X", "ssl.key.location=" + p.KeyFile}
}

// kcatRoundTrip produces n records with kcat and reads them back with kcat.
func (s *secured) kcatRoundTrip(t *testing.T, topic string, conn []string) {
	t.Helper()
	const n = 20
	input, want := kcatInput(topic, n, nil)
	run(t, s.b, input, "kcat", append(slices.Clone(conn), "-P", "-t", topic, "-K", ":", "-X", "enable.idempotence=true")...)
	out := run(t, s.b, "", "kcat", append(slices.Clone(conn), "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f", kcatFormat)...)
	got := parseKcat(t, out)
	if len(got) != n {
		t.Fatalf("kcat read %d records, want %d:\n%s", len(got), n, out)
	}
	for i, r := range got {
		w, ok := want[r.key()]
		if !ok || *r.Value != w.Value || r.Offset != int64(i) {
			t.Fatalf("record %d: %+v, want key in the input with value %q at offset %d", i, r, w.Value, i)
		}
	}
}

// TestSecurityClients: real clients produce and consume exactly over every
// listener type and mechanism.
func TestSecurityClients(t *testing.T) {
	requireKcat(t)
	requirePython(t)
	requireKafkaJS(t)
	s := startSecured(t)
	s.allow(t, "User:alice", "sec-")
	s.allow(t, "User:CN=app-mtls", "sec-mtls")
	s.allow(t, "User:carol", "sec-oauth")

	for _, mech := range []string{"SCRAM-SHA-512", "SCRAM-SHA-256"} {
		t.Run("kcat "+mech, func(t *testing.T) {
			s.kcatRoundTrip(t, "sec-kcat-"+strings.ToLower(mech), s.kcatSASL(mech, "alice"))
		})
		t.Run("python "+mech, func(t *testing.T) {
			topic := "sec-py-" + strings.ToLower(mech)
			env := []string{"RUNNEL_CLIENT_CONFIG=" + mustJSON(t, map[string]string{
				"security.protocol": "SASL_SSL", "sasl.mechanisms": mech, "sasl.username": "alice",
				"sasl.password": securedUsers["alice"], "ssl.ca.location": s.ca.CertFile})}
			const n = 15
			placed := parseJSONLines[placement](t, runEnv(t, s.b, env, "", python, "python/client.py", "produce",
				"--bootstrap", s.sasl, "--topic", topic, "--compression", "zstd", "--count", strconv.Itoa(n), "--prefix", topic))
			got := parseJSONLines[rec](t, runEnv(t, s.b, env, "", python, "python/client.py", "consume",
				"--bootstrap", s.sasl, "--topic", topic, "--group", topic+"-g", "--max", strconv.Itoa(n), "--timeout", "60"))
			checkExactly(t, "python "+mech, placed, got, n)
		})
	}
	t.Run("kafkajs PLAIN over TLS", func(t *testing.T) {
		const topic, n = "sec-js-plain", 12
		env := []string{"RUNNEL_CLIENT_SECURITY=" + mustJSON(t, map[string]any{
			"ssl":  map[string]string{"caFile": s.ca.CertFile},
			"sasl": map[string]string{"mechanism": "plain", "username": "alice", "password": securedUsers["alice"]}})}
		placed := parseJSONLines[placement](t, runEnv(t, s.b, env, "", "node", "js/client.js", "produce",
			s.sasl, topic, "gzip", strconv.Itoa(n), topic, "1"))
		got := parseJSONLines[rec](t, runEnv(t, s.b, env, "", "node", "js/client.js", "consume",
			s.sasl, topic, topic+"-g", strconv.Itoa(n), "60000"))
		checkExactly(t, "kafkajs PLAIN", placed, got, n)
	})
	t.Run("kcat mutual TLS", func(t *testing.T) {
		s.kcatRoundTrip(t, "sec-mtls-kcat", s.kcatMTLS(s.appCert))
	})
	t.Run("franz-go OAUTHBEARER", func(t *testing.T) {
		tok := s.token(t, "carol", 10*time.Minute)
		cl := s.client(t, kgo.SASL(oauth.Auth{Token: tok}.AsMechanism()), kgo.ConsumeTopics("sec-oauth"),
			kgo.AllowAutoTopicCreation(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		const n = 10
		for i := range n {
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "sec-oauth", Value: []byte(fmt.Sprintf("oauth-%d", i))}).FirstErr(); err != nil {
				t.Fatalf("produce %d: %v", i, err)
			}
		}
		var got []string
		for len(got) < n && ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			if err := fs.Err(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
				t.Fatal(err)
			}
			fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
		}
		for i := range n {
			if i >= len(got) || got[i] != fmt.Sprintf("oauth-%d", i) {
				t.Fatalf("consumed %v", got)
			}
		}
	})
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// checkExactly asserts that the consumer read each produced record once,
// at the offset the producer was told.
func checkExactly(t *testing.T, what string, placed []placement, got []rec, n int) {
	t.Helper()
	if len(placed) != n || len(got) != n {
		t.Fatalf("%s: produced %d and consumed %d records, want %d each", what, len(placed), len(got), n)
	}
	at := map[string]placement{}
	for _, p := range placed {
		at[p.Key] = p
	}
	for _, r := range got {
		p, ok := at[r.key()]
		if !ok || p.Partition != r.Partition || p.Offset != r.Offset {
			t.Fatalf("%s: consumed %+v, produced at %+v", what, r, p)
		}
		delete(at, r.key())
	}
}

// TestSecurityDenials: each bad client fails cleanly, and the broker keeps
// serving the good ones.
func TestSecurityDenials(t *testing.T) {
	requireKcat(t)
	s := startSecured(t)
	good := s.scram(t, "admin")
	ping := func(t *testing.T) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := good.Ping(ctx); err != nil {
			t.Fatalf("a good client after the bad one: %v", err)
		}
	}
	short := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), 10*time.Second)
	}
	t.Run("wrong password", func(t *testing.T) {
		cl := s.client(t, kgo.SASL(scram.Auth{User: "alice", Pass: "nope"}.AsSha512Mechanism()))
		ctx, cancel := short()
		defer cancel()
		err := cl.Ping(ctx)
		if !errors.Is(err, kerr.SaslAuthenticationFailed) {
			t.Fatalf("ping with a wrong password: %v, want SASL_AUTHENTICATION_FAILED", err)
		}
		out, kerrOut := kcatFails(t, append(s.kcatSASL("SCRAM-SHA-256", "alice")[:8], "-X", "sasl.password=nope", "-X", "ssl.ca.location="+s.ca.CertFile, "-L"))
		if !strings.Contains(strings.ToLower(kerrOut+out), "authentication") {
			t.Fatalf("kcat with a wrong password did not report an authentication failure:\n%s%s", out, kerrOut)
		}
		ping(t)
	})
	t.Run("expired token", func(t *testing.T) {
		cl := s.client(t, kgo.SASL(oauth.Auth{Token: s.token(t, "carol", -time.Minute)}.AsMechanism()))
		ctx, cancel := short()
		defer cancel()
		if err := cl.Ping(ctx); !errors.Is(err, kerr.SaslAuthenticationFailed) {
			t.Fatalf("ping with an expired token: %v, want SASL_AUTHENTICATION_FAILED", err)
		}
		ping(t)
	})
	t.Run("untrusted client certificate", func(t *testing.T) {
		out, errOut := kcatFails(t, append(s.kcatMTLS(s.evil), "-L"))
		if !strings.Contains(strings.ToLower(out+errOut), "ssl") {
			t.Fatalf("kcat with an untrusted certificate:\n%s%s", out, errOut)
		}
		ping(t)
	})
	t.Run("plaintext to a TLS port", func(t *testing.T) {
		for _, addr := range []string{s.sasl, s.mtls} {
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			c.SetDeadline(time.Now().Add(10 * time.Second))
			c.Write(kafkaFrame(kmsg.NewPtrMetadataRequest(), 1))
			buf := make([]byte, 64)
			n, err := io.ReadFull(c, buf[:4])
			c.Close()
			if err == nil && n == 4 && binary.BigEndian.Uint32(buf) < 1<<20 {
				t.Fatalf("%s answered a plaintext Kafka request", addr)
			}
		}
		ping(t)
	})
	t.Run("a Kafka request before SASL", func(t *testing.T) {
		c, err := tls.Dial("tcp", s.sasl, &tls.Config{RootCAs: s.roots})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write(kafkaFrame(kmsg.NewPtrMetadataRequest(), 1)); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, make([]byte, 4)); err == nil {
			t.Fatal("Metadata before authentication was answered")
		}
		ping(t)
	})
}

// kafkaFrame encodes req (v1 header, client id "test") as one frame.
func kafkaFrame(req kmsg.Request, corr int32) []byte {
	req.SetVersion(1)
	var b []byte
	b = binary.BigEndian.AppendUint16(b, uint16(req.Key()))
	b = binary.BigEndian.AppendUint16(b, uint16(req.GetVersion()))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	b = binary.BigEndian.AppendUint16(b, 4)
	b = append(b, "test"...)
	b = req.AppendTo(b)
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...)
}

// kcatFails runs kcat expecting a failure and returns its output.
func kcatFails(t *testing.T, args []string) (string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "kcat", append(args, "-m", "5")...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err == nil {
		t.Fatalf("kcat %v succeeded:\n%s", args, stdout.String())
	}
	return stdout.String(), stderr.String()
}

// TestSecurityACLs: a user without ACLs gets Kafka's authorization errors
// for produce, fetch, group join, transactional produce and admin calls;
// after `runnel acl create` the same client succeeds without reconnecting.
func TestSecurityACLs(t *testing.T) {
	s := startSecured(t)
	adm := kadm.NewClient(s.scram(t, "admin"))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "acl-data"); err != nil {
		t.Fatal(err)
	}
	// bob may see the topic (so his clients get past their metadata look-ups
	// to the calls under test) and nothing else.
	if _, err := adm.CreateACLs(ctx, kadm.NewACLs().Allow("User:bob").AllowHosts("*").Topics("acl-data").Operations(kadm.OpDescribe)); err != nil {
		t.Fatal(err)
	}
	bob := s.scram(t, "bob", kgo.ConsumeTopics("acl-data"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	bobAdm := kadm.NewClient(bob)
	bobTxn := s.scram(t, "bob", kgo.TransactionalID("acl-txn"), kgo.DefaultProduceTopic("acl-data"))
	bobGroup := s.scram(t, "bob", kgo.ConsumerGroup("acl-group"), kgo.ConsumeTopics("acl-data"))

	// Denied: every call gets its Kafka authorization error. An idempotent
	// producer needs IDEMPOTENT_WRITE on the cluster or WRITE on some topic
	// for its producer id; a plain one is refused per topic.
	if err := bob.ProduceSync(ctx, &kgo.Record{Topic: "acl-data", Value: []byte("x")}).FirstErr(); !errors.Is(err, kerr.ClusterAuthorizationFailed) {
		t.Fatalf("idempotent produce without ACLs: %v, want CLUSTER_AUTHORIZATION_FAILED", err)
	}
	bobPlain := s.scram(t, "bob", kgo.DisableIdempotentWrite())
	if err := bobPlain.ProduceSync(ctx, &kgo.Record{Topic: "acl-data", Value: []byte("x")}).FirstErr(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("produce without ACLs: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	fctx, fcancel := context.WithTimeout(ctx, 5*time.Second)
	fs := bob.PollFetches(fctx)
	fcancel()
	if err := fs.Err(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("fetch without ACLs: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	gctx, gcancel := context.WithTimeout(ctx, 5*time.Second)
	fs = bobGroup.PollFetches(gctx)
	gcancel()
	if err := fs.Err(); !errors.Is(err, kerr.GroupAuthorizationFailed) {
		t.Fatalf("group join without ACLs: %v, want GROUP_AUTHORIZATION_FAILED", err)
	}
	// The transactional producer's InitProducerId is refused; the error
	// is fatal to the producer, as in Kafka's clients.
	txnErr := bobTxn.BeginTransaction()
	if txnErr == nil {
		txnErr = bobTxn.ProduceSync(ctx, &kgo.Record{Value: []byte("t")}).FirstErr()
	}
	if !errors.Is(txnErr, kerr.TransactionalIDAuthorizationFailed) {
		t.Fatalf("transactional produce without ACLs: %v, want TRANSACTIONAL_ID_AUTHORIZATION_FAILED", txnErr)
	}
	if res, err := bobAdm.CreateTopic(ctx, 1, 1, nil, "acl-new"); err == nil && !errors.Is(res.Err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("create topic without ACLs: %v, want TOPIC_AUTHORIZATION_FAILED", res.Err)
	}
	if res, err := bobAdm.CreateACLs(ctx, kadm.NewACLs().Allow("User:bob").AllowHosts("*").Topics("x").Operations(kadm.OpAll)); err != nil || len(res) != 1 || !errors.Is(res[0].Err, kerr.ClusterAuthorizationFailed) {
		t.Fatalf("create ACLs as bob: %v %+v, want CLUSTER_AUTHORIZATION_FAILED", err, res)
	}

	// The admin grants bob what he needs with the CLI.
	cli := harness.Binary(t)
	for _, args := range [][]string{
		{"--topic", "acl-data", "--operation", "Write", "--operation", "Read", "--operation", "Describe"},
		{"--group", "acl-group", "--operation", "Read"},
		{"--transactional-id", "acl-txn", "--operation", "Write", "--operation", "Describe"},
	} {
		cmd := exec.CommandContext(ctx, cli, append([]string{"acl", "create", "--brokers", s.sasl,
			"--tls-ca", s.ca.CertFile, "--sasl-mechanism", "SCRAM-SHA-512", "--sasl-user", "admin",
			"--allow-principal", "User:bob"}, args...)...)
		cmd.Env = append(os.Environ(), "RUNNEL_SASL_PASSWORD="+securedUsers["admin"])
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("runnel acl create %v: %v\n%s", args, err, out)
		}
	}
	granted := time.Now()

	// The same clients succeed now, without reconnecting.
	if err := bobPlain.ProduceSync(ctx, &kgo.Record{Topic: "acl-data", Value: []byte("allowed")}).FirstErr(); err != nil {
		t.Fatalf("produce after the grant: %v", err)
	}
	// A refused producer id is fatal to an idempotent producer (as in
	// Kafka's clients); a new one gets its id from WRITE on the topic.
	if err := s.scram(t, "bob").ProduceSync(ctx, &kgo.Record{Topic: "acl-data", Value: []byte("idempotent")}).FirstErr(); err != nil {
		t.Fatalf("idempotent produce after the grant: %v", err)
	}
	if took := time.Since(granted); took > 5*time.Second {
		t.Errorf("the grant took %s to apply", took)
	}
	var got []string
	for len(got) == 0 && ctx.Err() == nil {
		fs := bob.PollFetches(ctx)
		fs.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, kerr.TopicAuthorizationFailed) {
				t.Fatalf("fetch after the grant: %v", err)
			}
		})
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	if len(got) == 0 || got[0] != "allowed" {
		t.Fatalf("fetched %v after the grant", got)
	}
	// A transactional id refused once is fatal to its producer (as in
	// Kafka's clients): a new producer with the same id works now.
	bobTxn = s.scram(t, "bob", kgo.TransactionalID("acl-txn"), kgo.DefaultProduceTopic("acl-data"))
	if err := bobTxn.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := bobTxn.ProduceSync(ctx, &kgo.Record{Value: []byte("in-txn")}).FirstErr(); err != nil {
		t.Fatalf("transactional produce after the grant: %v", err)
	}
	if err := bobTxn.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatalf("commit after the grant: %v", err)
	}
	var joined bool
	for !joined && ctx.Err() == nil {
		fs := bobGroup.PollFetches(ctx)
		fs.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, kerr.GroupAuthorizationFailed) {
				t.Fatalf("group after the grant: %v", err)
			}
		})
		fs.EachRecord(func(*kgo.Record) { joined = true })
	}
	if !joined {
		t.Fatal("the group consumer read nothing after the grant")
	}
}
