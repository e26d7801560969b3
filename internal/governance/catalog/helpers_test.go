package catalog

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/runnel-dev/runnel/internal/auth"
	"github.com/runnel-dev/runnel/internal/cluster/clustertest"
	"github.com/runnel-dev/runnel/internal/governance"
	"github.com/runnel-dev/runnel/internal/registry"
	"github.com/runnel-dev/runnel/internal/registry/avro"
	"github.com/runnel-dev/runnel/internal/registry/jsonschema"
	"github.com/runnel-dev/runnel/internal/registry/protobuf"
)

// fakeLog is a log of topics and records set by the test.
type fakeLog struct {
	mu      sync.Mutex
	topics  []Topic
	records map[string]map[int32][]Record // topic → partition → records, oldest first
	ch      chan struct{}
}

func newFakeLog(topics ...Topic) *fakeLog {
	return &fakeLog{topics: topics, records: map[string]map[int32][]Record{}, ch: make(chan struct{})}
}

func (l *fakeLog) Topics() []Topic {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Topic(nil), l.topics...)
}

func (l *fakeLog) Changed() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ch
}

// setTopics replaces the topics and signals the change.
func (l *fakeLog) setTopics(topics ...Topic) {
	l.mu.Lock()
	l.topics = topics
	close(l.ch)
	l.ch = make(chan struct{})
	l.mu.Unlock()
}

func (l *fakeLog) append(topic string, rs ...Record) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.records[topic] == nil {
		l.records[topic] = map[int32][]Record{}
	}
	for _, r := range rs {
		l.records[topic][r.Partition] = append(l.records[topic][r.Partition], r)
	}
}

func (l *fakeLog) Newest(_ context.Context, topic string, partition int32, n int) ([]Record, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	rs := l.records[topic][partition]
	if len(rs) > n {
		rs = rs[len(rs)-n:]
	}
	return append([]Record(nil), rs...), nil
}

// fakeAuditor records events; fail makes Record fail.
type fakeAuditor struct {
	mu     sync.Mutex
	events []governance.Event
	fail   bool
}

func (a *fakeAuditor) Record(_ context.Context, e governance.Event) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fail {
		return errors.New("audit store down")
	}
	a.events = append(a.events, e)
	return nil
}

func (a *fakeAuditor) actions() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, e := range a.events {
		out = append(out, e.Action+" "+e.Resource+" "+e.Actor)
	}
	return out
}

// grants allows "principal OPERATION RESOURCE-TYPE name" entries, and
// everything to User:admin.
type grants map[string]bool

func (g grants) Authorize(p auth.Principal, _ string, op kmsg.ACLOperation, typ kmsg.ACLResourceType, name string) bool {
	return p.String() == "User:admin" || g[p.String()+" "+op.String()+" "+typ.String()+" "+name]
}

// env is a catalog on an embedded etcd with a real registry, a fake log
// and its API on a test server (the Basic auth user name is the
// principal; no credentials is 401).
type env struct {
	t     *testing.T
	ctx   context.Context
	etcd  *clustertest.Etcd
	cli   *clientv3.Client
	reg   *registry.Registry
	log   *fakeLog
	audit *fakeAuditor
	authz governance.Authorizer
	cat   *Catalog
	srv   *httptest.Server
}

func newEnv(t *testing.T, authz governance.Authorizer, topics ...Topic) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	etcd := clustertest.Start(t)
	cli := etcd.Client()
	reg, err := registry.New(registry.Options{Client: cli, Formats: []registry.Format{avro.New(), protobuf.New(), jsonschema.New()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	e := &env{t: t, ctx: ctx, etcd: etcd, cli: cli, reg: reg, log: newFakeLog(topics...), audit: &fakeAuditor{}, authz: authz}
	e.cat = e.open(cli)
	mux := http.NewServeMux()
	e.cat.Mount(mux, basicPrincipal)
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	return e
}

// open opens a catalog on the env's etcd (through cli), registry and
// log: another one is another broker.
func (e *env) open(cli *clientv3.Client) *Catalog {
	e.t.Helper()
	c, err := New(e.ctx, Options{Client: cli, Log: e.log, Registry: e.reg, Authorizer: e.authz, Auditor: e.audit,
		TopicsEvery: 5 * time.Millisecond})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	return c
}

// basicPrincipal authenticates a request as the user of its Basic
// credentials (any password).
func basicPrincipal(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if user, _, ok := r.BasicAuth(); ok {
			r = r.WithContext(auth.WithRequestPrincipal(r.Context(), auth.User(user), "127.0.0.1"))
		}
		h.ServeHTTP(w, r)
	})
}

// call sends a request as user ("" unauthenticated) and decodes a JSON
// answer into out when it is not nil.
func (e *env) call(user, method, path string, body any, out any) (int, string) {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(e.ctx, method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if user != "" {
		req.SetBasicAuth(user, "pw")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
	return resp.StatusCode, string(b)
}

// actor is the API caller name as the catalog's methods see it.
func (e *env) actor(name string) governance.Actor {
	r := httptest.NewRequest("GET", "/", nil)
	r = r.WithContext(auth.WithRequestPrincipal(r.Context(), auth.User(name), "127.0.0.1"))
	a, _ := governance.ActorOf(r, e.authz)
	return a
}

// register registers a schema under subject and returns its id.
func (e *env) register(subject, typ, schema string, md *registry.Metadata, rs *registry.RuleSet) int {
	e.t.Helper()
	ss, err := e.reg.Register(e.ctx, registry.RegisterRequest{Subject: subject, Type: typ, Schema: schema, Metadata: md, RuleSet: rs})
	if err != nil {
		e.t.Fatalf("register %s: %v", subject, err)
	}
	return ss.ID
}

// waitFor polls cond until it holds or a few seconds pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// wire frames a payload in the registry's wire format.
func wire(id int, payload []byte) []byte {
	b := []byte{0, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[1:], uint32(id))
	return append(b, payload...)
}

// search lists products matching the query string qs ("q=x&tag=y").
func (e *env) search(qs string) SearchResult {
	e.t.Helper()
	var res SearchResult
	if status, body := e.call("alice", "GET", "/api/v1/products?"+qs, nil, &res); status != 200 {
		e.t.Fatalf("search %s: %d %s", qs, status, body)
	}
	return res
}

func topics(res SearchResult) []string {
	out := []string{}
	for _, p := range res.Items {
		out = append(out, p.Topic)
	}
	return out
}
