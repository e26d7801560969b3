package broker

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/runnel-dev/runnel/internal/auth"
	"github.com/runnel-dev/runnel/internal/config"
	"github.com/runnel-dev/runnel/internal/governance"
	"github.com/runnel-dev/runnel/internal/governance/access"
)

// topicOwners owns topics by principal, standing in for the catalog.
type topicOwners map[string]string

func (o topicOwners) Owner(_ context.Context, topic string) (string, bool, error) {
	p, ok := o[topic]
	return p, ok, nil
}

func (o topicOwners) Owns(_ context.Context, topic string, p auth.Principal) (bool, error) {
	return o[topic] == p.String(), nil
}

// govCluster is two brokers on one etcd and one object store, each with
// a PLAINTEXT and a SASL_PLAINTEXT (SCRAM) listener, ACLs on, User:admin
// a super user, and bob owning the topics named in owners (nil: the
// stream catalog answers who owns what, as in production).
type govCluster struct {
	t   *testing.T
	ctx context.Context
	b   [2]*Broker
}

func startGovCluster(t *testing.T, owners topicOwners) *govCluster {
	t.Helper()
	dir := t.TempDir()
	users := filepath.Join(dir, "users")
	if err := os.WriteFile(users, []byte("admin:admin-pw\nalice:alice-pw\nbob:bob-pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	shared := "file://" + filepath.Join(dir, "objects")
	c := &govCluster{t: t}
	for i := range 2 {
		for attempt := 0; ; attempt++ {
			cfg := testConfig(t, filepath.Join(dir, fmt.Sprint("b", i, "-", attempt)))
			cfg.BrokerID, cfg.ObjectStore = int32(i+1), shared
			cfg.Listeners = []config.ListenerConfig{
				{Name: "INTERNAL", Addr: freeAddr(t), SecurityProtocol: config.ProtocolPlaintext},
				{Name: "SASL", Addr: freeAddr(t), SecurityProtocol: config.ProtocolSASLPlaintext},
			}
			cfg.SASL.Mechanisms = []string{config.MechanismSCRAMSHA512, config.MechanismSCRAMSHA256}
			cfg.SASL.BootstrapUsersFile = users
			cfg.SASL.SCRAMIterations = 4096
			cfg.SASL.FailureDelay = time.Millisecond
			cfg.Authorization = config.AuthorizationConfig{Enabled: true, SuperUsers: []string{"User:admin"}}
			if i == 1 {
				cfg.Etcd.Endpoints = []string{c.b[0].EtcdClientURL()}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			b, err := Start(ctx, cfg, nil)
			cancel()
			if err == nil {
				t.Cleanup(func() { b.Close() })
				if owners != nil {
					b.gov.access.owners.set(owners)
				}
				c.b[i] = b
				break
			}
			if attempt == 4 || !errors.Is(err, syscall.EADDRINUSE) {
				t.Fatal(err)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	c.ctx = ctx
	return c
}

// client is a franz-go client of user through broker i's SASL listener.
func (c *govCluster) client(i int, user, password string, opts ...kgo.Opt) *kgo.Client {
	c.t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(c.b[i].ListenerAddr("SASL")),
		kgo.SASL(scram.Auth{User: user, Pass: password}.AsSha512Mechanism()),
		kgo.RetryTimeout(3 * time.Second), kgo.DisableClientMetrics(),
	}, opts...)...)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(cl.Close)
	return cl
}

// api calls broker i's HTTP API with HTTP Basic; out receives a 2xx
// answer. It returns the status.
func (c *govCluster) api(i int, user, password, method, path, body string, out any) int {
	c.t.Helper()
	req, err := http.NewRequestWithContext(c.ctx, method, "http://"+c.b[i].HTTPAddr()+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.SetBasicAuth(user, password)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		c.t.Logf("%s %s as %s: %s %s", method, path, user, resp.Status, b)
	} else if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			c.t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
	return resp.StatusCode
}

// produce writes n records to topic as admin.
func (c *govCluster) produce(topic string, n int) {
	c.t.Helper()
	cl := c.client(0, "admin", "admin-pw", kgo.DefaultProduceTopic(topic))
	for i := range n {
		if err := cl.ProduceSync(c.ctx, &kgo.Record{Value: []byte(fmt.Sprint("record-", i))}).FirstErr(); err != nil {
			c.t.Fatal(err)
		}
	}
}

// consume reads topic from the start through broker i as user until want
// records arrived or a fetch failed, for at most 5 s.
func (c *govCluster) consume(i int, user, password, topic string, want int) (int, error) {
	c.t.Helper()
	cl := c.client(i, user, password, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond))
	ctx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
	defer cancel()
	got := 0
	for got < want {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return got, err
		}
		for _, fe := range fs.Errors() {
			return got, fe.Err
		}
		got += fs.NumRecords()
	}
	return got, nil
}

// TestGovAccessRequestGrantsRead: Alice, denied reading orders, requests
// READ through one broker; Bob, its owner, approves through the other;
// Alice then reads it; the audit log shows both steps to Alice.
func TestGovAccessRequestGrantsRead(t *testing.T) {
	c := startGovCluster(t, topicOwners{"orders": "User:bob"})
	admin := kadm.NewClient(c.client(0, "admin", "admin-pw"))
	if resp, err := admin.CreateTopics(c.ctx, 1, -1, nil, "orders"); err != nil || resp.Error() != nil {
		t.Fatal(err)
	}
	c.produce("orders", 10)

	if _, err := c.consume(1, "alice", "alice-pw", "orders", 10); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("alice before any grant: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	var r access.AccessRequest
	if st := c.api(1, "alice", "alice-pw", "POST", "/api/v1/access-requests", `{"topic":"orders","operation":"READ","reason":"fraud dashboards"}`, &r); st != 201 {
		t.Fatalf("request: %d", st)
	}
	if st := c.api(0, "alice", "alice-pw", "POST", "/api/v1/access-requests/"+r.ID+"/approve", "", nil); st != 403 {
		t.Fatalf("alice approving her own request: %d, want 403", st)
	}
	if st := c.api(0, "bob", "bob-pw", "POST", "/api/v1/access-requests/"+r.ID+"/approve", `{"reason":"ok"}`, &r); st != 200 || r.State != access.StateApproved {
		t.Fatalf("bob approves: %d %+v", st, r)
	}
	if n, err := c.consume(1, "alice", "alice-pw", "orders", 10); err != nil || n != 10 {
		t.Fatalf("alice after the approval: %d records, %v", n, err)
	}
	var audit struct{ Items []governance.Event }
	if st := c.api(1, "alice", "alice-pw", "GET", "/api/v1/audit?topic=orders", "", &audit); st != 200 {
		t.Fatalf("audit: %d", st)
	}
	var steps []string
	for _, e := range audit.Items {
		steps = append(steps, e.Action+" by "+e.Actor)
	}
	if want := []string{"access.approve by User:bob", "access.request by User:alice"}; !slices.Equal(steps, want) {
		t.Fatalf("audit seen by alice: %v, want %v", steps, want)
	}
}

// fetchLoop fetches partition 0 of a topic from offset 0 through one
// broker on one authenticated connection every few milliseconds, and
// reports the time of the first TOPIC_AUTHORIZATION_FAILED.
func fetchLoop(ctx context.Context, br *kgo.Broker, topic string, id [16]byte, refused chan<- time.Time, fail func(error)) {
	for ctx.Err() == nil {
		req := kmsg.NewPtrFetchRequest()
		req.MaxWaitMillis, req.MinBytes, req.MaxBytes = 50, 1, 1<<20
		ft := kmsg.NewFetchRequestTopic()
		ft.Topic, ft.TopicID = topic, id
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.PartitionMaxBytes = 1 << 20
		ft.Partitions = append(ft.Partitions, fp)
		req.Topics = append(req.Topics, ft)
		resp, err := req.RequestWith(ctx, br)
		if err != nil {
			if ctx.Err() == nil {
				fail(err)
			}
			return
		}
		code := resp.ErrorCode
		if code == 0 && len(resp.Topics) == 1 && len(resp.Topics[0].Partitions) == 1 {
			code = resp.Topics[0].Partitions[0].ErrorCode
		}
		switch code {
		case 0:
		case kerr.TopicAuthorizationFailed.Code:
			refused <- time.Now()
			return
		default:
			fail(fmt.Errorf("fetch: %v", kerr.ErrorForCode(code)))
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestGovShareRevokedWithinASecond: Bob shares orders; the recipient
// consumes with the minted SCRAM user through the connection details it
// was given; Bob revokes the share and connections the recipient already
// authenticated on both brokers are refused within a second; a new login
// fails.
func TestGovShareRevokedWithinASecond(t *testing.T) {
	c := startGovCluster(t, topicOwners{"orders": "User:bob"})
	admin := kadm.NewClient(c.client(0, "admin", "admin-pw"))
	if resp, err := admin.CreateTopics(c.ctx, 1, -1, nil, "orders"); err != nil || resp.Error() != nil {
		t.Fatal(err)
	}
	c.produce("orders", 5)
	var cs access.CreatedShare
	if st := c.api(0, "bob", "bob-pw", "POST", "/api/v1/shares", `{"topic":"orders","recipient":"ACME","duration":"1h","quota":{"consumerByteRate":10485760}}`, &cs); st != 201 {
		t.Fatalf("share: %d", st)
	}
	wantBootstrap := []string{c.b[0].ListenerAddr("SASL"), c.b[1].ListenerAddr("SASL")}
	gotBootstrap := strings.Split(cs.Connection.BootstrapServers, ",")
	slices.Sort(wantBootstrap)
	slices.Sort(gotBootstrap)
	if !slices.Equal(gotBootstrap, wantBootstrap) || cs.Connection.SecurityProtocol != "SASL_PLAINTEXT" ||
		cs.Connection.SASLMechanism != "SCRAM-SHA-512" || !strings.HasPrefix(cs.Connection.SchemaRegistryURL, "http://") {
		t.Fatalf("connection %+v, want both brokers' SASL listeners %v", cs.Connection, wantBootstrap)
	}
	user, pw := cs.Credentials.Username, cs.Credentials.Password

	// The recipient consumes through what it was told.
	recipient, err := kgo.NewClient(kgo.SeedBrokers(gotBootstrap...), kgo.SASL(scram.Auth{User: user, Pass: pw}.AsSha512Mechanism()),
		kgo.ConsumeTopics("orders"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.ConsumerGroup(user+"-app"),
		kgo.DisableClientMetrics())
	if err != nil {
		t.Fatal(err)
	}
	defer recipient.Close()
	for got := 0; got < 5; {
		fs := recipient.PollFetches(c.ctx)
		if err := fs.Err(); err != nil {
			t.Fatalf("recipient consuming: %v", err)
		}
		got += fs.NumRecords()
	}

	// One authenticated connection per broker, fetching continuously.
	topics, err := admin.ListTopics(c.ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	id := [16]byte(topics["orders"].ID)
	lctx, stop := context.WithCancel(c.ctx)
	defer stop()
	var refused [2]chan time.Time
	var wg sync.WaitGroup
	for i := range 2 {
		refused[i] = make(chan time.Time, 1)
		cl := c.client(i, user, pw)
		br := cl.Broker(int(c.b[i].cfg.BrokerID))
		// Authenticate and fetch once before the revocation.
		if err := cl.Ping(c.ctx); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			fetchLoop(lctx, br, "orders", id, refused[i], func(err error) { t.Errorf("broker %d: %v", i+1, err) })
		}()
	}
	// The recipient's consumer, caught up, waits in a long poll
	// (franz-go waits up to 5 s for data) while the share is revoked and
	// a record arrives: it must be refused, and never get that record.
	type polled struct {
		records int
		err     error
		at      time.Time
	}
	polls := make(chan polled, 64)
	pctx, pstop := context.WithCancel(c.ctx)
	defer pstop()
	go func() {
		for pctx.Err() == nil {
			fs := recipient.PollFetches(pctx)
			if pctx.Err() != nil {
				return
			}
			select {
			case polls <- polled{records: fs.NumRecords(), err: fs.Err(), at: time.Now()}:
			default:
			}
		}
	}()
	time.Sleep(300 * time.Millisecond)
	select {
	case p := <-polls:
		t.Fatalf("the caught-up recipient polled %+v before the revocation", p)
	default:
	}
	select {
	case <-refused[0]:
		t.Fatal("refused before the revocation")
	case <-refused[1]:
		t.Fatal("refused before the revocation")
	default:
	}

	start := time.Now()
	var sh access.Share
	if st := c.api(1, "bob", "bob-pw", "DELETE", "/api/v1/shares/"+cs.Share.ID, "", &sh); st != 200 || sh.State != access.ShareRevoked {
		t.Fatalf("revoke: %d %+v", st, sh)
	}
	c.produce("orders", 1)
	select {
	case p := <-polls:
		d := p.at.Sub(start)
		t.Logf("the recipient's long poll answered %v after the revocation began: %d records, %v", d, p.records, p.err)
		if p.records > 0 {
			t.Fatalf("the recipient got %d records produced after the revocation", p.records)
		}
		if p.err == nil || d > time.Second {
			t.Fatalf("the recipient's poll %v after the revocation: %v, want refused within a second", d, p.err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the recipient's poll was not answered within 3s of the revocation")
	}
	pstop()
	for i := range 2 {
		select {
		case at := <-refused[i]:
			d := at.Sub(start)
			t.Logf("broker %d refused the share's connection %v after the revocation began", i+1, d)
			if d > time.Second {
				t.Errorf("broker %d refused after %v, want within a second", i+1, d)
			}
		case <-time.After(3 * time.Second):
			t.Fatalf("broker %d still serves the revoked share after 3s", i+1)
		}
	}
	stop()
	wg.Wait()

	// A new login with the share's credentials fails.
	late, err := kgo.NewClient(kgo.SeedBrokers(c.b[0].ListenerAddr("SASL")), kgo.SASL(scram.Auth{User: user, Pass: pw}.AsSha512Mechanism()),
		kgo.DisableClientMetrics(), kgo.RetryTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer late.Close()
	if err := late.Ping(c.ctx); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("login after the revocation: %v, want SASL_AUTHENTICATION_FAILED", err)
	}
}

// TestGovGrantExpires: a grant approved for two seconds lets Alice read;
// its ACLs are gone from both brokers shortly after it expires, and her
// reads are refused.
func TestGovGrantExpires(t *testing.T) {
	c := startGovCluster(t, topicOwners{"metrics": "User:bob"})
	admin := kadm.NewClient(c.client(0, "admin", "admin-pw"))
	if resp, err := admin.CreateTopics(c.ctx, 1, -1, nil, "metrics"); err != nil || resp.Error() != nil {
		t.Fatal(err)
	}
	c.produce("metrics", 3)
	var r access.AccessRequest
	if st := c.api(0, "alice", "alice-pw", "POST", "/api/v1/access-requests", `{"topic":"metrics","operation":"READ","reason":"a quick look","duration":"2s"}`, &r); st != 201 {
		t.Fatalf("request: %d", st)
	}
	if st := c.api(1, "bob", "bob-pw", "POST", "/api/v1/access-requests/"+r.ID+"/approve", "", &r); st != 200 || r.ExpiresAt == nil {
		t.Fatalf("approve: %d %+v", st, r)
	}
	if n, err := c.consume(0, "alice", "alice-pw", "metrics", 3); err != nil || n != 3 {
		t.Fatalf("alice during the grant: %d records, %v", n, err)
	}
	aliceACLs := func(i int) int {
		n := 0
		for _, a := range c.b[i].sec.acls.Snapshot().All() {
			if a.Principal == "User:alice" {
				n++
			}
		}
		return n
	}
	for aliceACLs(0)+aliceACLs(1) > 0 {
		if late := time.Since(*r.ExpiresAt); late > 2*time.Second {
			t.Fatalf("alice's ACLs still there %v after the expiry", late)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("ACLs gone from both brokers %v after the expiry", time.Since(*r.ExpiresAt))
	if _, err := c.consume(1, "alice", "alice-pw", "metrics", 3); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("alice after the expiry: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	if st := c.api(1, "alice", "alice-pw", "GET", "/api/v1/access-requests/"+r.ID, "", &r); st != 200 || r.State != access.StateExpired {
		t.Fatalf("the expired grant: %d %+v", st, r)
	}
}

// TestGovShareKcat: the recipient of a share consumes with kcat
// (librdkafka, SASL/SCRAM) from the connection details it was given;
// revoking the share refuses it within a second, and a record written
// after the revocation never reaches it.
func TestGovShareKcat(t *testing.T) {
	if _, err := exec.LookPath("kcat"); err != nil {
		if os.Getenv("RUNNEL_REQUIRE_CLIENTS") != "" {
			t.Fatalf("kcat is required (RUNNEL_REQUIRE_CLIENTS is set): %v", err)
		}
		t.Skipf("kcat not available: %v", err)
	}
	c := startGovCluster(t, topicOwners{"orders": "User:bob"})
	admin := kadm.NewClient(c.client(0, "admin", "admin-pw"))
	if resp, err := admin.CreateTopics(c.ctx, 1, -1, nil, "orders"); err != nil || resp.Error() != nil {
		t.Fatal(err, resp.Error())
	}
	c.produce("orders", 5)
	var cs access.CreatedShare
	if st := c.api(0, "bob", "bob-pw", "POST", "/api/v1/shares", `{"topic":"orders","recipient":"ACME"}`, &cs); st != 201 {
		t.Fatalf("share: %d", st)
	}
	cn := cs.Connection
	cmd := exec.CommandContext(c.ctx, "kcat", "-C", "-u", "-t", "orders", "-o", "beginning", "-f", "%s\n",
		"-b", cn.BootstrapServers, "-X", "security.protocol="+cn.SecurityProtocol, "-X", "sasl.mechanisms="+cn.SASLMechanism,
		"-X", "sasl.username="+cs.Credentials.Username, "-X", "sasl.password="+cs.Credentials.Password)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	var mu sync.Mutex
	cmd.Stderr = writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return stderr.Write(p)
	})
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	for i := range 5 {
		select {
		case l := <-lines:
			if l != fmt.Sprint("record-", i) {
				t.Fatalf("kcat read %q, want record-%d", l, i)
			}
		case <-time.After(10 * time.Second):
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("kcat read %d records in 10s; stderr: %s", i, stderr.String())
		}
	}
	time.Sleep(300 * time.Millisecond) // caught up: kcat is in a long poll

	start := time.Now()
	if st := c.api(1, "bob", "bob-pw", "DELETE", "/api/v1/shares/"+cs.Share.ID, "", nil); st != 200 {
		t.Fatalf("revoke: %d", st)
	}
	c.produce("orders", 1)
	refused := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return strings.Contains(strings.ToLower(stderr.String()), "authoriz")
	}
	for !refused() {
		select {
		case l, ok := <-lines:
			if ok {
				t.Fatalf("kcat read %q after the revocation", l)
			}
		case <-time.After(10 * time.Millisecond):
		}
		if time.Since(start) > 3*time.Second {
			t.Fatal("kcat not refused within 3s of the revocation")
		}
	}
	d := time.Since(start)
	t.Logf("kcat refused %v after the revocation began", d)
	if d > time.Second {
		t.Errorf("kcat refused after %v, want within a second", d)
	}
	select {
	case l, ok := <-lines:
		if ok {
			t.Fatalf("kcat read %q after the revocation", l)
		}
	case <-time.After(200 * time.Millisecond):
	}
}

// writerFunc is an io.Writer of a function.
type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
