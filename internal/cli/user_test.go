package cli

import (
	"bytes"
	"context"
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/json"
	"errors"
	"hash"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	kwire "github.com/runnel-dev/runnel/internal/wire"
)

// fakeSCRAMBroker is a Kafka endpoint answering only what the user
// commands send: ApiVersions, Metadata and the two SCRAM APIs, over an
// in-memory credential map. Like Kafka it refuses two changes of one user
// in one request.
type fakeSCRAMBroker struct {
	addr string

	mu     sync.Mutex
	creds  map[string]map[int8]fakeCredential
	alters int
}

type fakeCredential struct {
	iterations   int32
	salt, salted []byte
}

func startFakeSCRAMBroker(t *testing.T) *fakeSCRAMBroker {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &fakeSCRAMBroker{addr: ln.Addr().String(), creds: map[string]map[int8]fakeCredential{}}
	var wg sync.WaitGroup
	var conns sync.Map
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Store(c, true)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				b.serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		conns.Range(func(c, _ any) bool { _ = c.(net.Conn).Close(); return true })
		wg.Wait()
	})
	return b
}

func (b *fakeSCRAMBroker) serve(c net.Conn) {
	for {
		frame, err := kwire.ReadFrame(c, 1<<20)
		if err != nil {
			return
		}
		h, body, err := kwire.ParseRequestHeader(frame)
		if err != nil {
			return
		}
		req := kmsg.RequestForKey(h.APIKey)
		req.SetVersion(h.APIVersion)
		if err := req.ReadFrom(body); err != nil {
			return
		}
		resp := b.handle(req)
		if resp == nil {
			return
		}
		resp.SetVersion(h.APIVersion)
		if _, err := c.Write(kwire.AppendResponse(nil, h.CorrelationID, resp)); err != nil {
			return
		}
	}
}

func (b *fakeSCRAMBroker) handle(req kmsg.Request) kmsg.Response {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch r := req.(type) {
	case *kmsg.ApiVersionsRequest:
		resp := r.ResponseKind().(*kmsg.ApiVersionsResponse)
		for _, key := range []int16{3, 18, 50, 51} {
			k := kmsg.NewApiVersionsResponseApiKey()
			k.ApiKey, k.MaxVersion = key, kmsg.RequestForKey(key).MaxVersion()
			resp.ApiKeys = append(resp.ApiKeys, k)
		}
		return resp
	case *kmsg.MetadataRequest:
		resp := r.ResponseKind().(*kmsg.MetadataResponse)
		host, port, _ := net.SplitHostPort(b.addr)
		p, _ := strconv.Atoi(port)
		br := kmsg.NewMetadataResponseBroker()
		br.NodeID, br.Host, br.Port = 1, host, int32(p)
		resp.Brokers, resp.ControllerID = []kmsg.MetadataResponseBroker{br}, 1
		return resp
	case *kmsg.DescribeUserSCRAMCredentialsRequest:
		resp := r.ResponseKind().(*kmsg.DescribeUserSCRAMCredentialsResponse)
		var users []string
		for _, u := range r.Users {
			users = append(users, u.Name)
		}
		if len(users) == 0 {
			for u := range b.creds {
				users = append(users, u)
			}
		}
		for _, u := range users {
			res := kmsg.NewDescribeUserSCRAMCredentialsResponseResult()
			res.User = u
			if len(b.creds[u]) == 0 {
				res.ErrorCode = kerr.ResourceNotFound.Code
			}
			for _, m := range []int8{1, 2} {
				if c, ok := b.creds[u][m]; ok {
					ci := kmsg.NewDescribeUserSCRAMCredentialsResponseResultCredentialInfo()
					ci.Mechanism, ci.Iterations = m, c.iterations
					res.CredentialInfos = append(res.CredentialInfos, ci)
				}
			}
			resp.Results = append(resp.Results, res)
		}
		return resp
	case *kmsg.AlterUserSCRAMCredentialsRequest:
		b.alters++
		resp := r.ResponseKind().(*kmsg.AlterUserSCRAMCredentialsResponse)
		result := func(user string, code int16) {
			res := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
			res.User, res.ErrorCode = user, code
			resp.Results = append(resp.Results, res)
		}
		if len(r.Deletions)+len(r.Upsertions) > 1 {
			for _, d := range r.Deletions {
				result(d.Name, kerr.DuplicateResource.Code)
			}
			for _, u := range r.Upsertions {
				result(u.Name, kerr.DuplicateResource.Code)
			}
			return resp
		}
		for _, d := range r.Deletions {
			if _, ok := b.creds[d.Name][d.Mechanism]; !ok {
				result(d.Name, kerr.ResourceNotFound.Code)
				continue
			}
			delete(b.creds[d.Name], d.Mechanism)
			if len(b.creds[d.Name]) == 0 {
				delete(b.creds, d.Name)
			}
			result(d.Name, 0)
		}
		for _, u := range r.Upsertions {
			if b.creds[u.Name] == nil {
				b.creds[u.Name] = map[int8]fakeCredential{}
			}
			b.creds[u.Name][u.Mechanism] = fakeCredential{iterations: u.Iterations, salt: u.Salt, salted: u.SaltedPassword}
			result(u.Name, 0)
		}
		return resp
	}
	return nil
}

func (b *fakeSCRAMBroker) credential(user string, mech int8) (fakeCredential, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, ok := b.creds[user][mech]
	return c, ok
}

// runUser runs the CLI against addr with stdin.
func runUser(t *testing.T, addr, stdin string, args ...string) (string, error) {
	t.Helper()
	t.Setenv(envBrokers, addr)
	root := NewRootCommand()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := root.ExecuteContext(ctx)
	return out.String(), err
}

// checkSalted fails unless c holds password salted as SCRAM does
// (PBKDF2 with the mechanism's hash, as long as the hash).
func checkSalted(t *testing.T, c fakeCredential, mech int8, password string) {
	t.Helper()
	h := sha256.New
	if mech == 2 {
		h = sha512.New
	}
	want, err := pbkdf2.Key(func() hash.Hash { return h() }, password, c.salt, int(c.iterations), h().Size())
	if err != nil {
		t.Fatal(err)
	}
	if len(c.salt) == 0 || !bytes.Equal(c.salted, want) {
		t.Fatalf("mechanism %d: the salted password does not derive from the password", mech)
	}
}

func TestUserSetListDelete(t *testing.T) {
	b := startFakeSCRAMBroker(t)

	out, err := runUser(t, b.addr, "alice secret\n", "user", "set", "alice", "--password-stdin")
	if err != nil {
		t.Fatalf("set alice: %v\n%s", err, out)
	}
	if !strings.Contains(out, `Set the SCRAM-SHA-256 credential of user "alice" (8192 iterations).`) ||
		!strings.Contains(out, `Set the SCRAM-SHA-512 credential of user "alice"`) {
		t.Fatalf("set output:\n%s", out)
	}
	for _, m := range []int8{1, 2} {
		c, ok := b.credential("alice", m)
		if !ok || c.iterations != 8192 {
			t.Fatalf("alice mechanism %d = %+v, %v", m, c, ok)
		}
		checkSalted(t, c, m, "alice secret")
	}
	b.mu.Lock()
	alters := b.alters
	b.mu.Unlock()
	if alters != 2 {
		t.Fatalf("%d alter requests, want one per mechanism", alters)
	}

	t.Setenv("BOB_PASSWORD", "bob-pw")
	if out, err := runUser(t, b.addr, "", "user", "set", "bob", "--mechanism", "scram-sha-512", "--iterations", "4096", "--password-env", "BOB_PASSWORD"); err != nil {
		t.Fatalf("set bob: %v\n%s", err, out)
	}
	c, ok := b.credential("bob", 2)
	if _, has256 := b.credential("bob", 1); !ok || has256 || c.iterations != 4096 {
		t.Fatalf("bob = %+v, %v (has SCRAM-SHA-256: %v)", c, ok, has256)
	}
	checkSalted(t, c, 2, "bob-pw")

	out, err = runUser(t, b.addr, "", "user", "list")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	want := [][]string{{"USER", "MECHANISM", "ITERATIONS"}, {"alice", "SCRAM-SHA-256", "8192"}, {"alice", "SCRAM-SHA-512", "8192"}, {"bob", "SCRAM-SHA-512", "4096"}}
	if len(lines) != len(want) {
		t.Fatalf("list:\n%s", out)
	}
	for i, w := range want {
		if got := strings.Fields(lines[i]); strings.Join(got, " ") != strings.Join(w, " ") {
			t.Fatalf("list line %d = %q, want %q", i, lines[i], w)
		}
	}
	out, err = runUser(t, b.addr, "", "user", "list", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var js []userJSON
	if err := json.Unmarshal([]byte(out), &js); err != nil {
		t.Fatalf("list --json: %v\n%s", err, out)
	}
	if len(js) != 2 || js[0].User != "alice" || len(js[0].Credentials) != 2 || js[1].Credentials[0] != (credentialJSON{"SCRAM-SHA-512", 4096}) {
		t.Fatalf("list --json = %+v", js)
	}

	if out, err := runUser(t, b.addr, "", "user", "delete", "alice", "--mechanism", "SCRAM-SHA-256"); err != nil || !strings.Contains(out, `Deleted the SCRAM-SHA-256 credential of user "alice".`) {
		t.Fatalf("delete one mechanism: %v\n%s", err, out)
	}
	// Both by default: deletes the one alice still has.
	if out, err := runUser(t, b.addr, "", "user", "delete", "alice"); err != nil || !strings.Contains(out, "SCRAM-SHA-512") {
		t.Fatalf("delete the rest: %v\n%s", err, out)
	}
	if _, err := runUser(t, b.addr, "", "user", "delete", "alice"); err == nil || !strings.Contains(err.Error(), `user "alice" has no SCRAM credentials`) {
		t.Fatalf("delete of a deleted user = %v", err)
	}
	if _, err := runUser(t, b.addr, "", "user", "delete", "bob", "--mechanism", "SCRAM-SHA-256"); err == nil || !strings.Contains(err.Error(), `user "bob" has no SCRAM-SHA-256 credential`) {
		t.Fatalf("delete of a missing mechanism = %v", err)
	}
}

// TestUserUsageErrors checks bad invocations fail before any network
// access (the brokers point at a closed port).
func TestUserUsageErrors(t *testing.T) {
	t.Setenv("EMPTY_PW", "")
	tests := []struct {
		name    string
		stdin   string
		args    []string
		wantErr string
	}{
		{"no password", "", []string{"user", "set", "a"}, "--password-stdin or --password-env"},
		{"both sources", "pw\n", []string{"user", "set", "a", "--password-stdin", "--password-env", "X"}, "not both"},
		{"empty stdin", "\n", []string{"user", "set", "a", "--password-stdin"}, "empty"},
		{"unset env", "", []string{"user", "set", "a", "--password-env", "RUNNEL_TEST_UNSET_PASSWORD"}, "not set or empty"},
		{"empty env", "", []string{"user", "set", "a", "--password-env", "EMPTY_PW"}, "not set or empty"},
		{"bad mechanism", "pw\n", []string{"user", "set", "a", "--password-stdin", "--mechanism", "PLAIN"}, "--mechanism"},
		{"few iterations", "pw\n", []string{"user", "set", "a", "--password-stdin", "--iterations", "1000"}, "--iterations 1000"},
		{"many iterations", "pw\n", []string{"user", "set", "a", "--password-stdin", "--iterations", "20000"}, "--iterations 20000"},
		{"empty name", "pw\n", []string{"user", "set", "", "--password-stdin"}, "must not be empty"},
		{"set without name", "", []string{"user", "set"}, "takes 1 argument(s) (NAME)"},
		{"delete bad mechanism", "", []string{"user", "delete", "a", "--mechanism", "SCRAM-SHA-1"}, "--mechanism"},
		{"list with args", "", []string{"user", "list", "x"}, "unknown command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runCLI(t, tt.stdin, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatal("reached the network")
			}
		})
	}
}
