package protocol

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/auth"
	"github.com/runnel-dev/runnel/internal/cluster/clustertest"
	"github.com/runnel-dev/runnel/internal/config"
)

// startSCRAMServer starts a server whose SCRAM APIs manage a real
// credential store on an embedded etcd.
func startSCRAMServer(t *testing.T) (*testBroker, *auth.Credentials) {
	t.Helper()
	creds, err := auth.NewCredentials(testCtx(t), auth.CredentialsOptions{Client: clustertest.Start(t).Client()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = creds.Close() })
	return startServer(t, func(o *Options) { o.SCRAM = creds }), creds
}

func advertisedKeys(t *testing.T, addr string) map[int16]bool {
	t.Helper()
	resp, err := kmsg.NewPtrApiVersionsRequest().RequestWith(testCtx(t), newClient(t, addr))
	if err != nil {
		t.Fatal(err)
	}
	keys := map[int16]bool{}
	for _, k := range resp.ApiKeys {
		keys[k.ApiKey] = true
	}
	return keys
}

func TestSCRAMAPIsServedOnlyWithAStore(t *testing.T) {
	if keys := advertisedKeys(t, startServer(t, nil).addr); keys[50] || keys[51] {
		t.Fatalf("SCRAM APIs advertised without a store: %v", keys)
	}
	b, _ := startSCRAMServer(t)
	if keys := advertisedKeys(t, b.addr); !keys[50] || !keys[51] {
		t.Fatalf("SCRAM APIs not advertised with a store: %v", keys)
	}
}

func TestAlterAndDescribeUserSCRAMs(t *testing.T) {
	b, creds := startSCRAMServer(t)
	ctx := testCtx(t)
	adm := kadm.NewClient(newClient(t, b.addr))

	altered, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{
		{User: "alice", Mechanism: kadm.ScramSha256, Iterations: 8192, Password: "alice-secret"},
		{User: "bob", Mechanism: kadm.ScramSha512, Iterations: 4096, Password: "bob-secret"},
	})
	if err != nil || !altered.Ok() || len(altered) != 2 {
		t.Fatalf("AlterUserSCRAMs = %+v, %v", altered, err)
	}
	// The salted password the client computed verifies the password.
	a, err := auth.NewAuthenticator(ctx, auth.AuthenticatorOptions{Credentials: creds,
		Config: config.SASLConfig{Mechanisms: []string{config.MechanismPlain}, SCRAMIterations: 4096}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := a.CheckPassword(ctx, "alice", "alice-secret"); err != nil {
		t.Fatalf("alice's password: %v", err)
	}
	if _, err := a.CheckPassword(ctx, "bob", "alice-secret"); err == nil {
		t.Fatal("bob accepted alice's password")
	}

	described, err := adm.DescribeUserSCRAMs(ctx)
	if err != nil || !described.Ok() {
		t.Fatalf("DescribeUserSCRAMs = %+v, %v", described, err)
	}
	want := map[string]kadm.CredInfo{"alice": {Mechanism: kadm.ScramSha256, Iterations: 8192}, "bob": {Mechanism: kadm.ScramSha512, Iterations: 4096}}
	if len(described) != len(want) {
		t.Fatalf("described %+v", described)
	}
	for user, ci := range want {
		if d := described[user]; len(d.CredInfos) != 1 || d.CredInfos[0] != ci {
			t.Fatalf("%s described as %+v, want %+v", user, d, ci)
		}
	}

	// One request per mechanism, as kafka-configs sends them.
	if altered, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: "alice", Mechanism: kadm.ScramSha512, Password: "alice-secret"}}); err != nil || !altered.Ok() {
		t.Fatalf("second mechanism: %+v, %v", altered, err)
	}
	if altered, err := adm.AlterUserSCRAMs(ctx, []kadm.DeleteSCRAM{{User: "alice", Mechanism: kadm.ScramSha256}}, nil); err != nil || !altered.Ok() {
		t.Fatalf("delete: %+v, %v", altered, err)
	}
	described, err = adm.DescribeUserSCRAMs(ctx, "alice", "nobody")
	if err != nil {
		t.Fatal(err)
	}
	if d := described["alice"]; d.Err != nil || len(d.CredInfos) != 1 || d.CredInfos[0].Mechanism != kadm.ScramSha512 {
		t.Fatalf("alice after the changes: %+v", d)
	}
	if d := described["nobody"]; !errors.Is(d.Err, kerr.ResourceNotFound) {
		t.Fatalf("nobody: %+v, want RESOURCE_NOT_FOUND", d)
	}
}

func TestAlterUserSCRAMErrors(t *testing.T) {
	b, creds := startSCRAMServer(t)
	ctx := testCtx(t)
	cl := newClient(t, b.addr)
	if err := creds.SetPassword(ctx, "erin", "erin-secret", auth.SCRAMMechanisms, 4096); err != nil {
		t.Fatal(err)
	}
	salt, salted := []byte("salt"), []byte("salted-password")
	upsert := func(name string, mech int8, iterations int32) kmsg.AlterUserSCRAMCredentialsRequestUpsertion {
		u := kmsg.NewAlterUserSCRAMCredentialsRequestUpsertion()
		u.Name, u.Mechanism, u.Iterations, u.Salt, u.SaltedPassword = name, mech, iterations, salt, salted
		return u
	}
	deletion := func(name string, mech int8) kmsg.AlterUserSCRAMCredentialsRequestDeletion {
		d := kmsg.NewAlterUserSCRAMCredentialsRequestDeletion()
		d.Name, d.Mechanism = name, mech
		return d
	}
	req := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
	req.Deletions = []kmsg.AlterUserSCRAMCredentialsRequestDeletion{
		deletion("dave", 1),  // no such credential
		deletion("erin", 1),  // then upserted too: duplicate
		deletion("", 2),      // empty name
		deletion("frank", 0), // UNKNOWN mechanism
	}
	req.Upsertions = []kmsg.AlterUserSCRAMCredentialsRequestUpsertion{
		upsert("few", 1, 4095),
		upsert("many", 2, 16385),
		upsert("sha1", 3, 4096),
		upsert("carol", 1, 4096),
		upsert("carol", 2, 4096), // the same user twice
		upsert("erin", 2, 4096),
		upsert("frank", 1, 4096), // keeps its first error
		upsert("ok", 2, 16384),
		upsert("dave", 1, 4096), // keeps RESOURCE_NOT_FOUND
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		user string
		err  *kerr.Error
	}{
		{"dave", kerr.ResourceNotFound},
		{"erin", kerr.DuplicateResource},
		{"", kerr.UnacceptableCredential},
		{"frank", kerr.UnsupportedSaslMechanism},
		{"few", kerr.UnacceptableCredential},
		{"many", kerr.UnacceptableCredential},
		{"sha1", kerr.UnsupportedSaslMechanism},
		{"carol", kerr.DuplicateResource},
		{"ok", nil},
	}
	if len(resp.Results) != len(want) {
		t.Fatalf("%d results, want %d: %+v", len(resp.Results), len(want), resp.Results)
	}
	for i, w := range want {
		r := resp.Results[i]
		var code int16
		if w.err != nil {
			code = w.err.Code
		}
		if r.User != w.user || r.ErrorCode != code || (code != 0) != (r.ErrorMessage != nil) {
			t.Errorf("result %d = %q %d, want %q %v", i, r.User, r.ErrorCode, w.user, w.err)
		}
	}
	// Nothing of a rejected user was applied; the accepted one was.
	if got := creds.Describe([]string{"carol", "few", "many", "sha1"}); len(got) != 0 {
		t.Fatalf("rejected users stored: %+v", got)
	}
	if got := creds.Describe([]string{"erin"}); len(got) != 1 || len(got[0].Mechanisms) != 2 {
		t.Fatalf("erin changed by a rejected request: %+v", got)
	}
	if got := creds.Describe([]string{"ok"}); len(got) != 1 || got[0].Mechanisms[0].Iterations != 16384 {
		t.Fatalf("ok = %+v", got)
	}
}

func TestDescribeUserSCRAMDuplicates(t *testing.T) {
	b, creds := startSCRAMServer(t)
	ctx := testCtx(t)
	if err := creds.SetPassword(ctx, "alice", "pw", []string{config.MechanismSCRAMSHA512}, 4096); err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrDescribeUserSCRAMCredentialsRequest()
	for _, u := range []string{"alice", "ghost", "alice"} {
		ru := kmsg.NewDescribeUserSCRAMCredentialsRequestUser()
		ru.Name = u
		req.Users = append(req.Users, ru)
	}
	resp, err := req.RequestWith(ctx, newClient(t, b.addr))
	if err != nil {
		t.Fatal(err)
	}
	if resp.ErrorCode != 0 || len(resp.Results) != 2 ||
		resp.Results[0].User != "alice" || resp.Results[0].ErrorCode != kerr.DuplicateResource.Code || len(resp.Results[0].CredentialInfos) != 0 ||
		resp.Results[1].User != "ghost" || resp.Results[1].ErrorCode != kerr.ResourceNotFound.Code {
		t.Fatalf("describe = %+v", resp)
	}
	// An empty list is every user.
	resp, err = kmsg.NewPtrDescribeUserSCRAMCredentialsRequest().RequestWith(ctx, newClient(t, b.addr))
	if err != nil || len(resp.Results) != 1 || resp.Results[0].User != "alice" ||
		len(resp.Results[0].CredentialInfos) != 1 || resp.Results[0].CredentialInfos[0].Mechanism != 2 {
		t.Fatalf("describe all = %+v, %v", resp, err)
	}
}

func TestPlanSCRAMAlterations(t *testing.T) {
	del := func(name string, mech int8) kmsg.AlterUserSCRAMCredentialsRequestDeletion {
		d := kmsg.NewAlterUserSCRAMCredentialsRequestDeletion()
		d.Name, d.Mechanism = name, mech
		return d
	}
	up := func(name string, mech int8, iterations int32) kmsg.AlterUserSCRAMCredentialsRequestUpsertion {
		u := kmsg.NewAlterUserSCRAMCredentialsRequestUpsertion()
		u.Name, u.Mechanism, u.Iterations = name, mech, iterations
		return u
	}
	exists := func(user, mech string) bool { return user == "has256" && mech == config.MechanismSCRAMSHA256 }
	tests := []struct {
		name string
		dels []kmsg.AlterUserSCRAMCredentialsRequestDeletion
		ups  []kmsg.AlterUserSCRAMCredentialsRequestUpsertion
		want string // user=outcome, in order; outcome is "ok" or the Kafka error name
	}{
		{"one upsert", nil, []kmsg.AlterUserSCRAMCredentialsRequestUpsertion{up("a", 1, 4096)}, "a=ok"},
		{"delete existing", []kmsg.AlterUserSCRAMCredentialsRequestDeletion{del("has256", 1)}, nil, "has256=ok"},
		{"delete missing mechanism", []kmsg.AlterUserSCRAMCredentialsRequestDeletion{del("has256", 2)}, nil, "has256=RESOURCE_NOT_FOUND"},
		{"two upserts", nil, []kmsg.AlterUserSCRAMCredentialsRequestUpsertion{up("a", 1, 4096), up("a", 2, 4096)}, "a=DUPLICATE_RESOURCE"},
		{"three upserts stay duplicate", nil, []kmsg.AlterUserSCRAMCredentialsRequestUpsertion{up("a", 1, 4096), up("a", 2, 4096), up("a", 1, 4096)}, "a=DUPLICATE_RESOURCE"},
		{"delete then upsert", []kmsg.AlterUserSCRAMCredentialsRequestDeletion{del("has256", 1)}, []kmsg.AlterUserSCRAMCredentialsRequestUpsertion{up("has256", 1, 4096)}, "has256=DUPLICATE_RESOURCE"},
		{"first error sticks", nil, []kmsg.AlterUserSCRAMCredentialsRequestUpsertion{up("a", 1, 1), up("a", 1, 4096)}, "a=UNACCEPTABLE_CREDENTIAL"},
		{"unknown mechanism", []kmsg.AlterUserSCRAMCredentialsRequestDeletion{del("a", 0)}, []kmsg.AlterUserSCRAMCredentialsRequestUpsertion{up("b", 3, 4096)}, "a=UNSUPPORTED_SASL_MECHANISM b=UNSUPPORTED_SASL_MECHANISM"},
		{"empty name", nil, []kmsg.AlterUserSCRAMCredentialsRequestUpsertion{up("", 2, 4096)}, "=UNACCEPTABLE_CREDENTIAL"},
		{"order of first sight", []kmsg.AlterUserSCRAMCredentialsRequestDeletion{del("z", 1)}, []kmsg.AlterUserSCRAMCredentialsRequestUpsertion{up("b", 1, 16385), up("a", 2, 16384)}, "z=RESOURCE_NOT_FOUND b=UNACCEPTABLE_CREDENTIAL a=ok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
			req.Deletions, req.Upsertions = tt.dels, tt.ups
			order, verdicts := planSCRAMAlterations(req, exists)
			var got []string
			for _, user := range order {
				v := verdicts[user]
				outcome := "ok"
				if v.err != nil {
					if v.change != nil {
						t.Fatalf("%s has both a change and an error", user)
					}
					outcome = kerr.ErrorForCode(errorCode(nil, v.err)).(*kerr.Error).Message
				} else if v.change == nil {
					t.Fatalf("%s has neither a change nor an error", user)
				}
				got = append(got, user+"="+outcome)
			}
			if g := strings.Join(got, " "); g != tt.want {
				t.Fatalf("plan = %s, want %s", g, tt.want)
			}
		})
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// memSCRAM is an in-memory SCRAMCredentials for the fuzz test.
type memSCRAM struct{ m map[string]map[string]int }

func (s *memSCRAM) Describe(users []string) []auth.UserCredentials {
	if users == nil {
		for u := range s.m {
			users = append(users, u)
		}
	}
	var out []auth.UserCredentials
	for _, u := range users {
		if len(s.m[u]) == 0 {
			continue
		}
		uc := auth.UserCredentials{User: u}
		for _, m := range auth.SCRAMMechanisms {
			if it, ok := s.m[u][m]; ok {
				uc.Mechanisms = append(uc.Mechanisms, auth.MechanismInfo{Mechanism: m, Iterations: it})
			}
		}
		out = append(out, uc)
	}
	return out
}

func (s *memSCRAM) Upsert(_ context.Context, user, mech string, iterations int, salt, salted []byte) error {
	if err := auth.ValidSCRAMUser(user, mech); err != nil {
		return err
	}
	if err := auth.ValidSCRAMIterations(iterations); err != nil {
		return err
	}
	if s.m[user] == nil {
		s.m[user] = map[string]int{}
	}
	s.m[user][mech] = iterations
	return nil
}

func (s *memSCRAM) Delete(_ context.Context, user, mech string) error {
	if _, ok := s.m[user][mech]; !ok {
		return auth.ErrCredentialNotFound
	}
	delete(s.m[user], mech)
	return nil
}

// FuzzSCRAMHandlers: any decodable Describe or Alter request is answered
// with one result per distinct user and only Kafka's codes for these APIs.
func FuzzSCRAMHandlers(f *testing.F) {
	alter := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
	alter.Deletions = []kmsg.AlterUserSCRAMCredentialsRequestDeletion{{Name: "a", Mechanism: 1}}
	alter.Upsertions = []kmsg.AlterUserSCRAMCredentialsRequestUpsertion{{Name: "a", Mechanism: 2, Iterations: 4096, Salt: []byte("s"), SaltedPassword: []byte("p")}, {Name: "b", Mechanism: 9}}
	describe := kmsg.NewPtrDescribeUserSCRAMCredentialsRequest()
	describe.Users = []kmsg.DescribeUserSCRAMCredentialsRequestUser{{Name: "a"}, {Name: "a"}, {Name: ""}}
	f.Add(true, alter.AppendTo(nil))
	f.Add(false, describe.AppendTo(nil))
	allowed := map[int16]bool{0: true, kerr.DuplicateResource.Code: true, kerr.ResourceNotFound.Code: true,
		kerr.UnacceptableCredential.Code: true, kerr.UnsupportedSaslMechanism.Code: true}
	f.Fuzz(func(t *testing.T, isAlter bool, body []byte) {
		store := &memSCRAM{m: map[string]map[string]int{"a": {config.MechanismSCRAMSHA256: 4096}}}
		s := &Server{log: discardLogger(), opts: Options{SCRAM: store}}
		ctx := context.Background()
		distinct := map[string]bool{}
		var codes []int16
		if isAlter {
			req := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
			if req.ReadFrom(body) != nil {
				return
			}
			for _, d := range req.Deletions {
				distinct[d.Name] = true
			}
			for _, u := range req.Upsertions {
				distinct[u.Name] = true
			}
			resp, err := handleAlterUserSCRAMCredentials(ctx, s, nil, req)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range resp.(*kmsg.AlterUserSCRAMCredentialsResponse).Results {
				codes = append(codes, r.ErrorCode)
			}
		} else {
			req := kmsg.NewPtrDescribeUserSCRAMCredentialsRequest()
			if req.ReadFrom(body) != nil {
				return
			}
			for _, u := range req.Users {
				distinct[u.Name] = true
			}
			if len(req.Users) == 0 {
				distinct = map[string]bool{"a": true}
			}
			resp, err := handleDescribeUserSCRAMCredentials(ctx, s, nil, req)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range resp.(*kmsg.DescribeUserSCRAMCredentialsResponse).Results {
				codes = append(codes, r.ErrorCode)
			}
		}
		if len(codes) != len(distinct) {
			t.Fatalf("%d results for %d distinct users", len(codes), len(distinct))
		}
		for _, c := range codes {
			if !allowed[c] {
				t.Fatalf("error code %d", c)
			}
		}
	})
}

// TestSCRAMAPIsNeedClusterRights: with ACLs on, describing credentials needs
// DESCRIBE on the cluster and altering them ALTER, as in Kafka; a refused
// alteration changes nothing.
func TestSCRAMAPIsNeedClusterRights(t *testing.T) {
	acls := &memACLs{}
	store := &memSCRAM{m: map[string]map[string]int{"alice": {"SCRAM-SHA-256": 4096}}}
	b := startServer(t, func(o *Options) {
		o.SCRAM = store
		o.Authorizer = auth.NewAuthorizer(config.AuthorizationConfig{Enabled: true}, acls)
	})
	d := do[*kmsg.DescribeUserSCRAMCredentialsResponse](t, b.addr, kmsg.NewPtrDescribeUserSCRAMCredentialsRequest(), 0)
	wantCode(t, "describe without DESCRIBE", d.ErrorCode, kerr.ClusterAuthorizationFailed)
	if len(d.Results) != 0 {
		t.Fatalf("refused describe listed %d users", len(d.Results))
	}
	alter := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
	del := kmsg.NewAlterUserSCRAMCredentialsRequestDeletion()
	del.Name, del.Mechanism = "alice", 1
	alter.Deletions = append(alter.Deletions, del)
	a := do[*kmsg.AlterUserSCRAMCredentialsResponse](t, b.addr, alter, 0)
	if len(a.Results) != 1 {
		t.Fatalf("alter results %+v", a.Results)
	}
	wantCode(t, "alter without ALTER", a.Results[0].ErrorCode, kerr.ClusterAuthorizationFailed)
	if len(store.Describe([]string{"alice"})) != 1 {
		t.Fatal("a refused deletion removed the credential")
	}
	acls.allow(rCluster, auth.ClusterName, opDescribe, kmsg.ACLOperationAlter)
	d = do[*kmsg.DescribeUserSCRAMCredentialsResponse](t, b.addr, kmsg.NewPtrDescribeUserSCRAMCredentialsRequest(), 0)
	wantCode(t, "describe with DESCRIBE", d.ErrorCode, nil)
	a = do[*kmsg.AlterUserSCRAMCredentialsResponse](t, b.addr, alter, 0)
	wantCode(t, "alter with ALTER", a.Results[0].ErrorCode, nil)
}
