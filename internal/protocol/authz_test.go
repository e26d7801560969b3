package protocol

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/auth"
	"github.com/runnel-dev/runnel/internal/config"
	"github.com/runnel-dev/runnel/internal/stream"
)

// memACLs is an in-memory ACL store for the real auth.Authorizer.
type memACLs struct {
	mu   sync.Mutex
	acls []auth.ACL
}

func (m *memACLs) Snapshot() *auth.ACLSet {
	m.mu.Lock()
	defer m.mu.Unlock()
	return auth.NewACLSet(slices.Clone(m.acls))
}

func (m *memACLs) Create(_ context.Context, acls []auth.ACL) []error {
	m.mu.Lock()
	defer m.mu.Unlock()
	errs := make([]error, len(acls))
	for i, a := range acls {
		if errs[i] = a.Validate(); errs[i] == nil && !slices.Contains(m.acls, a) {
			m.acls = append(m.acls, a)
		}
	}
	return errs
}

func (m *memACLs) Describe(f auth.Filter) []auth.ACL {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []auth.ACL
	for _, a := range m.acls {
		if f.Matches(a) {
			out = append(out, a)
		}
	}
	return out
}

func (m *memACLs) Delete(_ context.Context, filters []auth.Filter) ([][]auth.ACL, []error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([][]auth.ACL, len(filters))
	for i, f := range filters {
		m.acls = slices.DeleteFunc(m.acls, func(a auth.ACL) bool {
			if f.Matches(a) {
				out[i] = append(out[i], a)
				return true
			}
			return false
		})
	}
	return out, make([]error, len(filters))
}

// allow grants the test client (User:ANONYMOUS from anywhere) op on a
// resource; a name ending in "*" (other than "*" itself) is a prefix.
func (m *memACLs) allow(typ kmsg.ACLResourceType, name string, ops ...kmsg.ACLOperation) {
	m.add(kmsg.ACLPermissionTypeAllow, typ, name, ops...)
}

func (m *memACLs) deny(typ kmsg.ACLResourceType, name string, ops ...kmsg.ACLOperation) {
	m.add(kmsg.ACLPermissionTypeDeny, typ, name, ops...)
}

func (m *memACLs) add(perm kmsg.ACLPermissionType, typ kmsg.ACLResourceType, name string, ops ...kmsg.ACLOperation) {
	pt := kmsg.ACLResourcePatternTypeLiteral
	if len(name) > 1 && name[len(name)-1] == '*' {
		pt, name = kmsg.ACLResourcePatternTypePrefixed, name[:len(name)-1]
	}
	for _, op := range ops {
		a := auth.ACL{ResourceType: typ, ResourceName: name, PatternType: pt, Principal: auth.Anonymous.String(), Host: "*", Operation: op, Permission: perm}
		if err := m.Create(context.Background(), []auth.ACL{a})[0]; err != nil {
			panic(err)
		}
	}
}

// authzGroups answers every item it is asked about with no error, so that
// what the handlers refuse is told apart from what reaches the coordinator.
type authzGroups struct {
	fakeGroups
	mu   sync.Mutex
	seen []string // group ids and topics that reached the coordinator
}

func (g *authzGroups) saw(items ...string) {
	g.mu.Lock()
	g.seen = append(g.seen, items...)
	g.mu.Unlock()
}

func (g *authzGroups) reached() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := g.seen
	g.seen = nil
	return out
}

func (g *authzGroups) JoinGroup(_ context.Context, r *kmsg.JoinGroupRequest) *kmsg.JoinGroupResponse {
	g.saw(r.Group)
	resp := r.ResponseKind().(*kmsg.JoinGroupResponse)
	resp.MemberID, resp.Generation = "m", 1
	return resp
}

func (g *authzGroups) OffsetCommit(_ context.Context, r *kmsg.OffsetCommitRequest) *kmsg.OffsetCommitResponse {
	resp := r.ResponseKind().(*kmsg.OffsetCommitResponse)
	for _, t := range r.Topics {
		g.saw(t.Topic)
		rt := kmsg.NewOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetCommitResponseTopicPartition()
			rp.Partition = p.Partition
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// OffsetFetch answers offset 7 for partition 0 of every named topic, or of
// topics "a" and "b" when asked for all.
func (g *authzGroups) OffsetFetch(_ context.Context, r *kmsg.OffsetFetchRequest) *kmsg.OffsetFetchResponse {
	resp := r.ResponseKind().(*kmsg.OffsetFetchResponse)
	names := func(named []string, all bool) []string {
		if all {
			return []string{"a", "b"}
		}
		return named
	}
	if r.Version < 8 {
		var named []string
		for _, t := range r.Topics {
			named = append(named, t.Topic)
		}
		g.saw(r.Group)
		for _, n := range names(named, r.Topics == nil) {
			rt := kmsg.NewOffsetFetchResponseTopic()
			rt.Topic = n
			rp := kmsg.NewOffsetFetchResponseTopicPartition()
			rp.Offset = 7
			rt.Partitions = append(rt.Partitions, rp)
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	}
	for _, rg := range r.Groups {
		g.saw(rg.Group)
		out := kmsg.NewOffsetFetchResponseGroup()
		out.Group = rg.Group
		var named []string
		for _, t := range rg.Topics {
			named = append(named, t.Topic)
		}
		for _, n := range names(named, rg.Topics == nil) {
			rt := kmsg.NewOffsetFetchResponseGroupTopic()
			rt.Topic = n
			rp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
			rp.Offset = 7
			rt.Partitions = append(rt.Partitions, rp)
			out.Topics = append(out.Topics, rt)
		}
		resp.Groups = append(resp.Groups, out)
	}
	return resp
}

func (g *authzGroups) DescribeGroups(_ context.Context, r *kmsg.DescribeGroupsRequest) *kmsg.DescribeGroupsResponse {
	resp := r.ResponseKind().(*kmsg.DescribeGroupsResponse)
	for _, id := range r.Groups {
		g.saw(id)
		rg := kmsg.NewDescribeGroupsResponseGroup()
		rg.Group, rg.State = id, "Stable"
		resp.Groups = append(resp.Groups, rg)
	}
	return resp
}

func (g *authzGroups) ListGroups(_ context.Context, r *kmsg.ListGroupsRequest) *kmsg.ListGroupsResponse {
	resp := r.ResponseKind().(*kmsg.ListGroupsResponse)
	for _, id := range []string{"g1", "g2"} {
		lg := kmsg.NewListGroupsResponseGroup()
		lg.Group = id
		resp.Groups = append(resp.Groups, lg)
	}
	return resp
}

func (g *authzGroups) DeleteGroups(_ context.Context, r *kmsg.DeleteGroupsRequest) *kmsg.DeleteGroupsResponse {
	resp := r.ResponseKind().(*kmsg.DeleteGroupsResponse)
	for _, id := range r.Groups {
		g.saw(id)
		rg := kmsg.NewDeleteGroupsResponseGroup()
		rg.Group = id
		resp.Groups = append(resp.Groups, rg)
	}
	return resp
}

func (g *authzGroups) ConsumerGroupHeartbeat(_ context.Context, r *kmsg.ConsumerGroupHeartbeatRequest) *kmsg.ConsumerGroupHeartbeatResponse {
	g.saw(r.Group)
	resp := r.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
	resp.MemberID, resp.MemberEpoch = strp("m"), 1
	return resp
}

func (g *authzGroups) ConsumerGroupDescribe(_ context.Context, r *kmsg.ConsumerGroupDescribeRequest) *kmsg.ConsumerGroupDescribeResponse {
	resp := r.ResponseKind().(*kmsg.ConsumerGroupDescribeResponse)
	for _, id := range r.Groups {
		g.saw(id)
		rg := kmsg.NewConsumerGroupDescribeResponseGroup()
		rg.Group, rg.State = id, "stable"
		m := kmsg.NewConsumerGroupDescribeResponseGroupMember()
		tp := kmsg.NewAssignmentTopicPartition()
		tp.Topic, tp.Partitions = "a", []int32{0}
		m.Assignment.TopicPartitions = append(m.Assignment.TopicPartitions, tp)
		rg.Members = append(rg.Members, m)
		resp.Groups = append(resp.Groups, rg)
	}
	return resp
}

type authzBroker struct {
	*testBroker
	acls   *memACLs
	groups *authzGroups
}

// startAuthz starts a server whose authorizer is enabled, with no ACLs.
func startAuthz(t *testing.T) *authzBroker {
	t.Helper()
	acls := &memACLs{}
	groups := &authzGroups{}
	b := startServer(t, func(o *Options) {
		groups.c = o.Cluster.(*fakeCluster)
		o.Groups = groups
		o.Authorizer = auth.NewAuthorizer(config.AuthorizationConfig{Enabled: true, SuperUsers: []string{"User:admin"}}, acls)
	})
	for _, name := range []string{"a", "b"} {
		if _, err := b.log.CreateTopic(context.Background(), name, 1, nil, false); err != nil {
			t.Fatal(err)
		}
	}
	return &authzBroker{testBroker: b, acls: acls, groups: groups}
}

// do sends req at version v on a fresh connection and decodes the answer.
func do[R kmsg.Response](t *testing.T, addr string, req kmsg.Request, v int16) R {
	t.Helper()
	req.SetVersion(v)
	c := dialRaw(t, addr)
	c.sendReq(req, 1)
	_, body, err := c.recv()
	if err != nil {
		t.Fatalf("%s v%d: %v", kmsg.NameForKey(req.Key()), v, err)
	}
	resp := req.ResponseKind()
	resp.SetVersion(v)
	if resp.IsFlexible() {
		body = body[1:] // empty response header tags
	}
	if err := resp.ReadFrom(body); err != nil {
		t.Fatalf("decode %s v%d: %v", kmsg.NameForKey(req.Key()), v, err)
	}
	return resp.(R)
}

func wantCode(t *testing.T, what string, got int16, want *kerr.Error) {
	t.Helper()
	wantCode := int16(0)
	if want != nil {
		wantCode = want.Code
	}
	if got != wantCode {
		t.Errorf("%s: error %v, want %v", what, kerr.ErrorForCode(got), want)
	}
}

const (
	opRead     = kmsg.ACLOperationRead
	opWrite    = kmsg.ACLOperationWrite
	opDescribe = kmsg.ACLOperationDescribe
	opCreate   = kmsg.ACLOperationCreate
	opDelete   = kmsg.ACLOperationDelete
	opAlter    = kmsg.ACLOperationAlter
	rTopic     = kmsg.ACLResourceTypeTopic
	rGroup     = kmsg.ACLResourceTypeGroup
	rCluster   = kmsg.ACLResourceTypeCluster
	rTxn       = kmsg.ACLResourceTypeTransactionalId
)

func produceReq(topic string, batch []byte, txnID *string) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis, req.TransactionID = -1, 5000, txnID
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

func TestAuthzProduceFetch(t *testing.T) {
	b := startAuthz(t)
	ctx := testCtx(t)

	// A real client: denied, then, once WRITE is granted, the same client
	// produces without reconnecting.
	prod := newClient(t, b.addr, kgo.DisableIdempotentWrite(), kgo.DefaultProduceTopic("a"), kgo.RecordRetries(1))
	if err := prod.ProduceSync(ctx, kgo.StringRecord("x")).FirstErr(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("produce without ACL: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	b.acls.allow(rTopic, "a", opWrite)
	if err := prod.ProduceSync(ctx, kgo.StringRecord("x")).FirstErr(); err != nil {
		t.Fatalf("produce with WRITE: %v", err)
	}

	// Raw: per partition, before existence is disclosed.
	resp := do[*kmsg.ProduceResponse](t, b.addr, produceReq("b", oneBatch(), nil), 9)
	wantCode(t, "produce to b", resp.Topics[0].Partitions[0].ErrorCode, kerr.TopicAuthorizationFailed)
	resp = do[*kmsg.ProduceResponse](t, b.addr, produceReq("missing", oneBatch(), nil), 9)
	wantCode(t, "produce to a missing topic", resp.Topics[0].Partitions[0].ErrorCode, kerr.TopicAuthorizationFailed)

	// Fetch needs READ; WRITE implies DESCRIBE (ListOffsets), not READ.
	fetch := func() int16 {
		req := kmsg.NewPtrFetchRequest()
		req.MaxWaitMillis, req.MaxBytes, req.SessionEpoch = 0, 1<<20, -1
		ft := kmsg.NewFetchRequestTopic()
		ft.Topic = "a"
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.PartitionMaxBytes = 1 << 20
		ft.Partitions = append(ft.Partitions, fp)
		req.Topics = append(req.Topics, ft)
		return do[*kmsg.FetchResponse](t, b.addr, req, 12).Topics[0].Partitions[0].ErrorCode
	}
	wantCode(t, "fetch without READ", fetch(), kerr.TopicAuthorizationFailed)
	listOffsets := func(topic string) int16 {
		req := kmsg.NewPtrListOffsetsRequest()
		lt := kmsg.NewListOffsetsRequestTopic()
		lt.Topic = topic
		lp := kmsg.NewListOffsetsRequestTopicPartition()
		lp.Timestamp = -1
		lt.Partitions = append(lt.Partitions, lp)
		req.Topics = append(req.Topics, lt)
		return do[*kmsg.ListOffsetsResponse](t, b.addr, req, 7).Topics[0].Partitions[0].ErrorCode
	}
	wantCode(t, "list offsets of a (WRITE implies DESCRIBE)", listOffsets("a"), nil)
	wantCode(t, "list offsets of b", listOffsets("b"), kerr.TopicAuthorizationFailed)
	epoch := kmsg.NewPtrOffsetForLeaderEpochRequest()
	et := kmsg.NewOffsetForLeaderEpochRequestTopic()
	et.Topic = "b"
	et.Partitions = append(et.Partitions, kmsg.NewOffsetForLeaderEpochRequestTopicPartition())
	epoch.Topics = append(epoch.Topics, et)
	wantCode(t, "offset for leader epoch of b", do[*kmsg.OffsetForLeaderEpochResponse](t, b.addr, epoch, 4).Topics[0].Partitions[0].ErrorCode, kerr.TopicAuthorizationFailed)

	b.acls.allow(rTopic, "a", opRead)
	wantCode(t, "fetch with READ", fetch(), nil)
	cons := newClient(t, b.addr, kgo.ConsumeTopics("a"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	fs := cons.PollFetches(ctx)
	if err := fs.Err0(); err != nil || fs.NumRecords() == 0 {
		t.Fatalf("consume with READ: %v, %d records", err, fs.NumRecords())
	}

	// A deny wins over the allow.
	b.acls.deny(rTopic, "a", opRead)
	wantCode(t, "fetch with READ denied", fetch(), kerr.TopicAuthorizationFailed)
	// Transactional batches need WRITE on the transactional id.
	txn := oneBatch()
	txn[22] |= 0x10
	resp = do[*kmsg.ProduceResponse](t, b.addr, produceReq("a", txn, strp("tx")), 9)
	wantCode(t, "transactional produce", resp.Topics[0].Partitions[0].ErrorCode, kerr.TransactionalIDAuthorizationFailed)
	resp = do[*kmsg.ProduceResponse](t, b.addr, produceReq("a", txn, nil), 9)
	wantCode(t, "transactional batch without an id", resp.Topics[0].Partitions[0].ErrorCode, kerr.TransactionalIDAuthorizationFailed)
	b.acls.allow(rTxn, "tx", opWrite)
	resp = do[*kmsg.ProduceResponse](t, b.addr, produceReq("a", txn, strp("tx")), 9)
	if c := resp.Topics[0].Partitions[0].ErrorCode; c == kerr.TransactionalIDAuthorizationFailed.Code || c == kerr.TopicAuthorizationFailed.Code {
		t.Fatalf("transactional produce with WRITE on id and topic: %v", kerr.ErrorForCode(c))
	}
}

func TestAuthzMetadata(t *testing.T) {
	b := startAuthz(t)
	ctx := testCtx(t)
	adm := kadm.NewClient(newClient(t, b.addr))
	b.acls.allow(rTopic, "a", opDescribe)

	topics, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if names := topics.Names(); !slices.Equal(names, []string{"a"}) {
		t.Fatalf("listed %v, want only a", names)
	}

	meta := func(allowCreate bool, names ...string) *kmsg.MetadataResponse {
		req := kmsg.NewPtrMetadataRequest()
		req.AllowAutoTopicCreation, req.IncludeTopicAuthorizedOperations = allowCreate, true
		for _, n := range names {
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = strp(n)
			req.Topics = append(req.Topics, rt)
		}
		return do[*kmsg.MetadataResponse](t, b.addr, req, 12)
	}
	m := meta(false, "a", "b", "nope")
	wantCode(t, "metadata a", m.Topics[0].ErrorCode, nil)
	if got, want := m.Topics[0].AuthorizedOperations, int32(1<<opDescribe); got != want {
		t.Errorf("authorized operations of a = %b, want %b", got, want)
	}
	wantCode(t, "metadata b", m.Topics[1].ErrorCode, kerr.TopicAuthorizationFailed)
	wantCode(t, "metadata of a missing topic", m.Topics[2].ErrorCode, kerr.TopicAuthorizationFailed)

	// Auto-creation needs CREATE on the cluster or the topic.
	b.acls.allow(rTopic, "new*", opDescribe)
	wantCode(t, "auto-create without CREATE", meta(true, "new1").Topics[0].ErrorCode, kerr.TopicAuthorizationFailed)
	if _, ok := b.log.Topic("new1"); ok {
		t.Fatal("created without CREATE")
	}
	b.acls.allow(rTopic, "new1", opCreate)
	wantCode(t, "auto-create with CREATE on the topic", meta(true, "new1").Topics[0].ErrorCode, nil)
	b.acls.allow(rCluster, auth.ClusterName, opCreate)
	wantCode(t, "auto-create with CREATE on the cluster", meta(true, "new2").Topics[0].ErrorCode, nil)
	if _, ok := b.log.Topic("new2"); !ok {
		t.Fatal("new2 not created")
	}

	// By id: the id is echoed, the name withheld.
	tb, _ := b.log.Topic("b")
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.TopicID = tb.ID
	req.Topics = append(req.Topics, rt)
	byID := do[*kmsg.MetadataResponse](t, b.addr, req, 12)
	if mt := byID.Topics[0]; mt.ErrorCode != kerr.TopicAuthorizationFailed.Code || mt.Topic != nil || mt.TopicID != tb.ID {
		t.Fatalf("metadata of b by id = %v %v %x", kerr.ErrorForCode(mt.ErrorCode), mt.Topic, mt.TopicID)
	}
}

func TestAuthzAdmin(t *testing.T) {
	b := startAuthz(t)
	ctx := testCtx(t)
	adm := kadm.NewClient(newClient(t, b.addr))

	created, err := adm.CreateTopics(ctx, 1, 1, nil, "c1")
	if err != nil || !errors.Is(created["c1"].Err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("create without CREATE: %v %v", err, created["c1"].Err)
	}
	b.acls.allow(rTopic, "c*", opCreate)
	if created, err = adm.CreateTopics(ctx, 1, 1, nil, "c1"); err != nil || created["c1"].Err != nil {
		t.Fatalf("create with CREATE: %v %v", err, created["c1"].Err)
	}

	b.acls.allow(rTopic, "c1", opDescribe) // for kadm's own metadata look-up
	cp, err := adm.CreatePartitions(ctx, 2, "c1")
	if err != nil || !errors.Is(cp["c1"].Err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("create partitions without ALTER: %v %v", err, cp["c1"].Err)
	}
	b.acls.allow(rTopic, "c1", opAlter)
	if cp, err = adm.CreatePartitions(ctx, 2, "c1"); err != nil || cp["c1"].Err != nil {
		t.Fatalf("create partitions with ALTER: %v %v", err, cp["c1"].Err)
	}

	dr := kmsg.NewPtrDeleteRecordsRequest()
	drt := kmsg.NewDeleteRecordsRequestTopic()
	drt.Topic = "c1"
	drp := kmsg.NewDeleteRecordsRequestTopicPartition()
	drp.Offset = -1
	drt.Partitions = append(drt.Partitions, drp)
	dr.Topics = append(dr.Topics, drt)
	wantCode(t, "delete records without DELETE", do[*kmsg.DeleteRecordsResponse](t, b.addr, dr, 2).Topics[0].Partitions[0].ErrorCode, kerr.TopicAuthorizationFailed)

	// Configs: topic on the topic, broker on the cluster.
	describeConfigs := func(typ kmsg.ConfigResourceType, name string) int16 {
		req := kmsg.NewPtrDescribeConfigsRequest()
		rr := kmsg.NewDescribeConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = typ, name
		req.Resources = append(req.Resources, rr)
		return do[*kmsg.DescribeConfigsResponse](t, b.addr, req, 4).Resources[0].ErrorCode
	}
	wantCode(t, "describe configs without DESCRIBE_CONFIGS", describeConfigs(kmsg.ConfigResourceTypeTopic, "c1"), kerr.TopicAuthorizationFailed)
	wantCode(t, "describe broker configs", describeConfigs(kmsg.ConfigResourceTypeBroker, "1"), kerr.ClusterAuthorizationFailed)
	b.acls.allow(rTopic, "c1", kmsg.ACLOperationAlterConfigs)
	if rcs, err := adm.DescribeTopicConfigs(ctx, "c1"); err != nil || rcs[0].Err != nil {
		t.Fatalf("describe configs with ALTER_CONFIGS: %v %+v", err, rcs)
	}
	alt, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "retention.ms", Value: kadm.StringPtr("1000")}}, "c1", "a")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range alt {
		want := error(nil)
		if r.Name == "a" {
			want = kerr.TopicAuthorizationFailed
		}
		if !errors.Is(r.Err, want) && r.Err != want {
			t.Errorf("alter configs of %s: %v, want %v", r.Name, r.Err, want)
		}
	}

	// DescribeLogDirs needs DESCRIBE on the cluster.
	ld := kmsg.NewPtrDescribeLogDirsRequest()
	ldr := do[*kmsg.DescribeLogDirsResponse](t, b.addr, ld, 4)
	if ldr.ErrorCode != kerr.ClusterAuthorizationFailed.Code || len(ldr.Dirs) != 0 {
		t.Fatalf("describe log dirs: %v, %d dirs", kerr.ErrorForCode(ldr.ErrorCode), len(ldr.Dirs))
	}

	// DescribeCluster is open, its authorized operations are not.
	dc := kmsg.NewPtrDescribeClusterRequest()
	dc.IncludeClusterAuthorizedOperations = true
	if r := do[*kmsg.DescribeClusterResponse](t, b.addr, dc, 1); r.ErrorCode != 0 || r.ClusterAuthorizedOperations != 0 {
		t.Fatalf("describe cluster without DESCRIBE: %v, operations %b", kerr.ErrorForCode(r.ErrorCode), r.ClusterAuthorizedOperations)
	}
	b.acls.allow(rCluster, auth.ClusterName, opDescribe)
	if r := do[*kmsg.DescribeClusterResponse](t, b.addr, dc, 1); r.ClusterAuthorizedOperations != 1<<opDescribe {
		t.Fatalf("cluster operations %b, want DESCRIBE", r.ClusterAuthorizedOperations)
	}
	if ldr = do[*kmsg.DescribeLogDirsResponse](t, b.addr, ld, 4); ldr.ErrorCode != 0 || len(ldr.Dirs) != 1 {
		t.Fatalf("describe log dirs with DESCRIBE: %v", kerr.ErrorForCode(ldr.ErrorCode))
	}

	// DeleteTopics needs DELETE.
	del, err := adm.DeleteTopics(ctx, "c1")
	if err != nil || !errors.Is(del["c1"].Err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("delete without DELETE: %v %+v", err, del)
	}
	b.acls.allow(rTopic, "c1", opDelete)
	if del, err = adm.DeleteTopics(ctx, "c1"); err != nil || del["c1"].Err != nil {
		t.Fatalf("delete with DELETE: %v %+v", err, del)
	}
}

func TestAuthzGroups(t *testing.T) {
	b := startAuthz(t)

	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorKeys = []string{"g1", "g2"}
	b.acls.allow(rGroup, "g1", opRead)
	r := do[*kmsg.FindCoordinatorResponse](t, b.addr, fc, 4)
	wantCode(t, "find coordinator g1", r.Coordinators[0].ErrorCode, nil)
	wantCode(t, "find coordinator g2", r.Coordinators[1].ErrorCode, kerr.GroupAuthorizationFailed)
	fc.CoordinatorType, fc.CoordinatorKeys = 1, []string{"tx"}
	wantCode(t, "find transaction coordinator", do[*kmsg.FindCoordinatorResponse](t, b.addr, fc, 4).Coordinators[0].ErrorCode, kerr.TransactionalIDAuthorizationFailed)

	join := func(group string) int16 {
		req := kmsg.NewPtrJoinGroupRequest()
		req.Group, req.ProtocolType, req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = group, "consumer", 10000, 10000
		return do[*kmsg.JoinGroupResponse](t, b.addr, req, 9).ErrorCode
	}
	wantCode(t, "join g1", join("g1"), nil)
	wantCode(t, "join g2", join("g2"), kerr.GroupAuthorizationFailed)
	if got := b.groups.reached(); !slices.Equal(got, []string{"g1"}) {
		t.Fatalf("the coordinator saw %v, want only g1", got)
	}
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group = "g2"
	wantCode(t, "heartbeat g2", do[*kmsg.HeartbeatResponse](t, b.addr, hb, 4).ErrorCode, kerr.GroupAuthorizationFailed)

	// OffsetCommit: READ on the group, then per topic.
	commit := func(group string) *kmsg.OffsetCommitResponse {
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Group, req.Generation = group, -1
		for _, n := range []string{"a", "b"} {
			rt := kmsg.NewOffsetCommitRequestTopic()
			rt.Topic = n
			rt.Partitions = append(rt.Partitions, kmsg.NewOffsetCommitRequestTopicPartition())
			req.Topics = append(req.Topics, rt)
		}
		return do[*kmsg.OffsetCommitResponse](t, b.addr, req, 9)
	}
	oc := commit("g2")
	wantCode(t, "commit to g2 (a)", oc.Topics[0].Partitions[0].ErrorCode, kerr.GroupAuthorizationFailed)
	b.acls.allow(rTopic, "a", opRead)
	oc = commit("g1")
	codes := map[string]int16{}
	for _, tp := range oc.Topics {
		codes[tp.Topic] = tp.Partitions[0].ErrorCode
	}
	wantCode(t, "commit a", codes["a"], nil)
	wantCode(t, "commit b", codes["b"], kerr.TopicAuthorizationFailed)
	if got := b.groups.reached(); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("the coordinator saw topics %v, want only a", got)
	}

	// OffsetFetch: DESCRIBE on the group; all topics are filtered, named
	// ones refused.
	b.acls.allow(rGroup, "g2", opDescribe)
	of := kmsg.NewPtrOffsetFetchRequest()
	of.Group, of.Topics = "g2", nil
	ofr := do[*kmsg.OffsetFetchResponse](t, b.addr, of, 7)
	if ofr.ErrorCode != 0 || len(ofr.Topics) != 1 || ofr.Topics[0].Topic != "a" {
		t.Fatalf("fetch all offsets of g2: %v %+v", kerr.ErrorForCode(ofr.ErrorCode), ofr.Topics)
	}
	ofb := kmsg.NewOffsetFetchRequestTopic()
	ofb.Topic, ofb.Partitions = "b", []int32{0}
	of.Topics = []kmsg.OffsetFetchRequestTopic{ofb}
	ofr = do[*kmsg.OffsetFetchResponse](t, b.addr, of, 7)
	if len(ofr.Topics) != 1 || ofr.Topics[0].Partitions[0].ErrorCode != kerr.TopicAuthorizationFailed.Code || ofr.Topics[0].Partitions[0].Offset != -1 {
		t.Fatalf("fetch offsets of b: %+v", ofr.Topics)
	}
	// A refused group: the top-level code from v2, per partition before.
	of.Group = "g3"
	if r := do[*kmsg.OffsetFetchResponse](t, b.addr, of, 7); r.ErrorCode != kerr.GroupAuthorizationFailed.Code || len(r.Topics) != 0 {
		t.Fatalf("fetch offsets of g3 (v7): %v %+v", kerr.ErrorForCode(r.ErrorCode), r.Topics)
	}
	if r := do[*kmsg.OffsetFetchResponse](t, b.addr, of, 1); len(r.Topics) != 1 || r.Topics[0].Partitions[0].ErrorCode != kerr.GroupAuthorizationFailed.Code {
		t.Fatalf("fetch offsets of g3 (v1): %+v", r.Topics)
	}
	of8 := kmsg.NewPtrOffsetFetchRequest()
	for _, id := range []string{"g3", "g2"} {
		rg := kmsg.NewOffsetFetchRequestGroup()
		rg.Group = id
		of8.Groups = append(of8.Groups, rg)
	}
	of8r := do[*kmsg.OffsetFetchResponse](t, b.addr, of8, 8)
	if len(of8r.Groups) != 2 || of8r.Groups[0].ErrorCode != kerr.GroupAuthorizationFailed.Code ||
		of8r.Groups[1].ErrorCode != 0 || len(of8r.Groups[1].Topics) != 1 || of8r.Groups[1].Topics[0].Topic != "a" {
		t.Fatalf("batched offset fetch: %+v", of8r.Groups)
	}

	// DescribeGroups, ListGroups, DeleteGroups.
	dg := kmsg.NewPtrDescribeGroupsRequest()
	dg.Groups, dg.IncludeAuthorizedOperations = []string{"g1", "g3"}, true
	dgr := do[*kmsg.DescribeGroupsResponse](t, b.addr, dg, 5)
	wantCode(t, "describe g1 (READ implies DESCRIBE)", dgr.Groups[0].ErrorCode, nil)
	if got, want := dgr.Groups[0].AuthorizedOperations, int32(1<<opRead|1<<opDescribe); got != want {
		t.Errorf("g1 operations %b, want %b", got, want)
	}
	wantCode(t, "describe g3", dgr.Groups[1].ErrorCode, kerr.GroupAuthorizationFailed)
	lg := do[*kmsg.ListGroupsResponse](t, b.addr, kmsg.NewPtrListGroupsRequest(), 4)
	if len(lg.Groups) != 2 {
		t.Fatalf("listed %d groups, want g1 and g2", len(lg.Groups))
	}
	b.acls.deny(rGroup, "g2", opDescribe)
	if lg = do[*kmsg.ListGroupsResponse](t, b.addr, kmsg.NewPtrListGroupsRequest(), 4); len(lg.Groups) != 1 || lg.Groups[0].Group != "g1" {
		t.Fatalf("listed %+v, want only g1", lg.Groups)
	}
	b.acls.allow(rCluster, auth.ClusterName, opDescribe)
	if lg = do[*kmsg.ListGroupsResponse](t, b.addr, kmsg.NewPtrListGroupsRequest(), 4); len(lg.Groups) != 2 {
		t.Fatalf("with DESCRIBE on the cluster listed %d groups, want 2", len(lg.Groups))
	}
	b.groups.reached()
	dl := kmsg.NewPtrDeleteGroupsRequest()
	dl.Groups = []string{"g1"}
	wantCode(t, "delete g1 without DELETE", do[*kmsg.DeleteGroupsResponse](t, b.addr, dl, 2).Groups[0].ErrorCode, kerr.GroupAuthorizationFailed)
	od := kmsg.NewPtrOffsetDeleteRequest()
	od.Group = "g1"
	wantCode(t, "offset delete without DELETE", do[*kmsg.OffsetDeleteResponse](t, b.addr, od, 0).ErrorCode, kerr.GroupAuthorizationFailed)
	if got := b.groups.reached(); len(got) != 0 {
		t.Fatalf("refused deletions reached the coordinator: %v", got)
	}

	// KIP-848: READ on the group and DESCRIBE on every subscribed topic.
	cgh := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	cgh.Group, cgh.SubscribedTopicNames = "g1", []string{"a", "b"}
	wantCode(t, "consumer heartbeat subscribing to b", do[*kmsg.ConsumerGroupHeartbeatResponse](t, b.addr, cgh, 0).ErrorCode, kerr.TopicAuthorizationFailed)
	cgh.SubscribedTopicNames = []string{"a"}
	wantCode(t, "consumer heartbeat subscribing to a", do[*kmsg.ConsumerGroupHeartbeatResponse](t, b.addr, cgh, 0).ErrorCode, nil)
	cgh.Group = "g3"
	wantCode(t, "consumer heartbeat in g3", do[*kmsg.ConsumerGroupHeartbeatResponse](t, b.addr, cgh, 0).ErrorCode, kerr.GroupAuthorizationFailed)
	cgd := kmsg.NewPtrConsumerGroupDescribeRequest()
	cgd.Groups = []string{"g1", "g3"}
	cgdr := do[*kmsg.ConsumerGroupDescribeResponse](t, b.addr, cgd, 0)
	wantCode(t, "consumer describe g1", cgdr.Groups[0].ErrorCode, nil)
	wantCode(t, "consumer describe g3", cgdr.Groups[1].ErrorCode, kerr.GroupAuthorizationFailed)
	b.acls.deny(rTopic, "a", opDescribe)
	cgdr = do[*kmsg.ConsumerGroupDescribeResponse](t, b.addr, cgd, 0)
	if g := cgdr.Groups[0]; g.ErrorCode != kerr.TopicAuthorizationFailed.Code || len(g.Members) != 0 {
		t.Fatalf("consumer describe of a group assigned a hidden topic: %v, %d members", kerr.ErrorForCode(g.ErrorCode), len(g.Members))
	}
}

func TestAuthzTransactions(t *testing.T) {
	b := startAuthz(t)

	ipid := kmsg.NewPtrInitProducerIDRequest()
	ipid.TransactionalID, ipid.TransactionTimeoutMillis = strp("tx"), 10000
	wantCode(t, "init transactional producer", do[*kmsg.InitProducerIDResponse](t, b.addr, ipid, 4).ErrorCode, kerr.TransactionalIDAuthorizationFailed)
	ipid.TransactionalID = nil
	wantCode(t, "init idempotent producer", do[*kmsg.InitProducerIDResponse](t, b.addr, ipid, 4).ErrorCode, kerr.ClusterAuthorizationFailed)
	b.acls.allow(rTopic, "some-topic", opWrite)
	wantCode(t, "init idempotent producer with WRITE on a topic", do[*kmsg.InitProducerIDResponse](t, b.addr, ipid, 4).ErrorCode, nil)

	addParts := func() *kmsg.AddPartitionsToTxnResponse {
		req := kmsg.NewPtrAddPartitionsToTxnRequest()
		req.TransactionalID = "tx"
		for _, n := range []string{"a", "b"} {
			rt := kmsg.NewAddPartitionsToTxnRequestTopic()
			rt.Topic, rt.Partitions = n, []int32{0}
			req.Topics = append(req.Topics, rt)
		}
		return do[*kmsg.AddPartitionsToTxnResponse](t, b.addr, req, 3)
	}
	ap := addParts()
	wantCode(t, "add partitions without WRITE on the id", ap.Topics[0].Partitions[0].ErrorCode, kerr.TransactionalIDAuthorizationFailed)
	b.acls.allow(rTxn, "tx", opWrite)
	b.acls.allow(rTopic, "a", opWrite)
	ap = addParts()
	wantCode(t, "add partition of a", ap.Topics[0].Partitions[0].ErrorCode, kerr.OperationNotAttempted)
	wantCode(t, "add partition of b", ap.Topics[1].Partitions[0].ErrorCode, kerr.TopicAuthorizationFailed)
	apv4 := kmsg.NewPtrAddPartitionsToTxnRequest()
	wantCode(t, "broker add partitions (v4) without CLUSTER_ACTION", do[*kmsg.AddPartitionsToTxnResponse](t, b.addr, apv4, 4).ErrorCode, kerr.ClusterAuthorizationFailed)

	ao := kmsg.NewPtrAddOffsetsToTxnRequest()
	ao.TransactionalID, ao.Group = "tx", "g"
	wantCode(t, "add offsets without READ on the group", do[*kmsg.AddOffsetsToTxnResponse](t, b.addr, ao, 3).ErrorCode, kerr.GroupAuthorizationFailed)
	ao.TransactionalID = "other"
	wantCode(t, "add offsets without WRITE on the id", do[*kmsg.AddOffsetsToTxnResponse](t, b.addr, ao, 3).ErrorCode, kerr.TransactionalIDAuthorizationFailed)

	end := kmsg.NewPtrEndTxnRequest()
	end.TransactionalID = "other"
	wantCode(t, "end txn without WRITE on the id", do[*kmsg.EndTxnResponse](t, b.addr, end, 4).ErrorCode, kerr.TransactionalIDAuthorizationFailed)
	end.TransactionalID = "tx"
	wantCode(t, "end txn with WRITE on the id", do[*kmsg.EndTxnResponse](t, b.addr, end, 4).ErrorCode, kerr.InvalidProducerIDMapping)

	toc := kmsg.NewPtrTxnOffsetCommitRequest()
	toc.TransactionalID, toc.Group = "tx", "g"
	tt := kmsg.NewTxnOffsetCommitRequestTopic()
	tt.Topic = "a"
	tt.Partitions = append(tt.Partitions, kmsg.NewTxnOffsetCommitRequestTopicPartition())
	toc.Topics = append(toc.Topics, tt)
	wantCode(t, "txn offset commit without READ on the group", do[*kmsg.TxnOffsetCommitResponse](t, b.addr, toc, 3).Topics[0].Partitions[0].ErrorCode, kerr.GroupAuthorizationFailed)
	toc.TransactionalID = "other"
	wantCode(t, "txn offset commit without WRITE on the id", do[*kmsg.TxnOffsetCommitResponse](t, b.addr, toc, 3).Topics[0].Partitions[0].ErrorCode, kerr.TransactionalIDAuthorizationFailed)

	dt := kmsg.NewPtrDescribeTransactionsRequest()
	dt.TransactionalIDs = []string{"tx", "other"}
	dtr := do[*kmsg.DescribeTransactionsResponse](t, b.addr, dt, 0)
	wantCode(t, "describe tx (WRITE implies DESCRIBE)", dtr.TransactionStates[0].ErrorCode, kerr.TransactionalIDNotFound)
	wantCode(t, "describe other", dtr.TransactionStates[1].ErrorCode, kerr.TransactionalIDAuthorizationFailed)

	dp := kmsg.NewPtrDescribeProducersRequest()
	for _, n := range []string{"a", "b"} {
		rt := kmsg.NewDescribeProducersRequestTopic()
		rt.Topic, rt.Partitions = n, []int32{0}
		dp.Topics = append(dp.Topics, rt)
	}
	dpr := do[*kmsg.DescribeProducersResponse](t, b.addr, dp, 0)
	wantCode(t, "describe producers of a without READ", dpr.Topics[0].Partitions[0].ErrorCode, kerr.TopicAuthorizationFailed)
	b.acls.allow(rTopic, "a", opRead)
	dpr = do[*kmsg.DescribeProducersResponse](t, b.addr, dp, 0)
	wantCode(t, "describe producers of a with READ", dpr.Topics[0].Partitions[0].ErrorCode, nil)
	wantCode(t, "describe producers of b", dpr.Topics[1].Partitions[0].ErrorCode, kerr.TopicAuthorizationFailed)
}

func TestACLAPIs(t *testing.T) {
	ctx := testCtx(t)
	off := startServer(t, nil)
	anyACL := kmsg.NewPtrDescribeACLsRequest()
	anyACL.ResourceType, anyACL.ResourcePatternType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny
	anyACL.Operation, anyACL.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
	wantCode(t, "describe ACLs without an authorizer", do[*kmsg.DescribeACLsResponse](t, off.addr, anyACL, 3).ErrorCode, kerr.SecurityDisabled)
	delAny := kmsg.NewPtrDeleteACLsRequest()
	df := kmsg.NewDeleteACLsRequestFilter()
	df.ResourceType, df.ResourcePatternType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny
	df.Operation, df.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
	delAny.Filters = append(delAny.Filters, df)
	wantCode(t, "delete ACLs without an authorizer", do[*kmsg.DeleteACLsResponse](t, off.addr, delAny, 3).Results[0].ErrorCode, kerr.SecurityDisabled)

	b := startAuthz(t)
	adm := kadm.NewClient(newClient(t, b.addr))
	create := kadm.NewACLs().Topics("orders").ResourcePatternType(kadm.ACLPatternPrefixed).
		Allow("User:alice").AllowHosts().Operations(kadm.OpRead, kadm.OpDescribe)
	res, err := adm.CreateACLs(ctx, create)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if !errors.Is(r.Err, kerr.ClusterAuthorizationFailed) {
			t.Fatalf("create without ALTER on the cluster: %v", r.Err)
		}
	}
	wantCode(t, "describe without DESCRIBE on the cluster", do[*kmsg.DescribeACLsResponse](t, b.addr, anyACL, 3).ErrorCode, kerr.ClusterAuthorizationFailed)

	b.acls.allow(rCluster, auth.ClusterName, opAlter) // ALTER implies DESCRIBE
	if res, err = adm.CreateACLs(ctx, create); err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Fatalf("create %+v: %v", r, r.Err)
		}
	}
	described, err := adm.DescribeACLs(ctx, kadm.NewACLs().Topics("orders.eu").ResourcePatternType(kadm.ACLPatternMatch).
		Allow().AllowHosts().Deny().DenyHosts().Operations())
	if err != nil {
		t.Fatal(err)
	}
	if n := len(described[0].Described); n != 2 {
		t.Fatalf("MATCH on orders.eu describes %d ACLs, want 2: %+v", n, described[0].Described)
	}

	// A cluster ACL on another name is refused by itself.
	bad := kmsg.NewPtrCreateACLsRequest()
	c := kmsg.NewCreateACLsRequestCreation()
	c.ResourceType, c.ResourceName, c.ResourcePatternType = rCluster, "other", kmsg.ACLResourcePatternTypeLiteral
	c.Principal, c.Host, c.Operation, c.PermissionType = "User:alice", "*", opAlter, kmsg.ACLPermissionTypeAllow
	bad.Creations = append(bad.Creations, c)
	wantCode(t, "cluster ACL on another name", do[*kmsg.CreateACLsResponse](t, b.addr, bad, 3).Results[0].ErrorCode, kerr.InvalidRequest)

	deleted, err := adm.DeleteACLs(ctx, kadm.NewACLs().Topics("orders").ResourcePatternType(kadm.ACLPatternPrefixed).
		Allow("User:alice").AllowHosts().Operations(kadm.OpRead))
	if err != nil {
		t.Fatal(err)
	}
	if len(deleted) != 1 || len(deleted[0].Deleted) != 1 || deleted[0].Deleted[0].Operation != kadm.OpRead {
		t.Fatalf("deleted %+v, want the READ ACL", deleted)
	}
	if got := len(b.acls.Describe(auth.Filter{ResourceType: rTopic, PatternType: kmsg.ACLResourcePatternTypeAny, Operation: kmsg.ACLOperationAny, Permission: kmsg.ACLPermissionTypeAny})); got != 1 {
		t.Fatalf("%d topic ACLs left, want 1", got)
	}
}

// TestAuthzDisabledIsOff: an authorizer configured off is no authorizer:
// nothing is checked, authorized operations stay "not requested" and the
// ACL APIs answer SECURITY_DISABLED, as without one.
func TestAuthzDisabledIsOff(t *testing.T) {
	acls := &memACLs{}
	b := startServer(t, func(o *Options) {
		o.Authorizer = auth.NewAuthorizer(config.AuthorizationConfig{Enabled: false}, acls)
	})
	if _, err := b.log.CreateTopic(context.Background(), "a", 1, nil, false); err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrMetadataRequest()
	req.IncludeTopicAuthorizedOperations = true
	m := do[*kmsg.MetadataResponse](t, b.addr, req, 12)
	if len(m.Topics) != 1 || m.Topics[0].AuthorizedOperations != notRequestedOps {
		t.Fatalf("metadata: %+v", m.Topics)
	}
	resp := do[*kmsg.ProduceResponse](t, b.addr, produceReq("a", oneBatch(), nil), 9)
	wantCode(t, "produce", resp.Topics[0].Partitions[0].ErrorCode, nil)
	anyACL := kmsg.NewPtrDescribeACLsRequest()
	anyACL.ResourceType, anyACL.ResourcePatternType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny
	anyACL.Operation, anyACL.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
	wantCode(t, "describe ACLs", do[*kmsg.DescribeACLsResponse](t, b.addr, anyACL, 3).ErrorCode, kerr.SecurityDisabled)
}

// txnLog is the fake log with two transactions to list and describe.
type txnLog struct{ *fakeLog }

func (txnLog) Transactions() []TxnInfo {
	return []TxnInfo{
		{ID: "tx", ProducerID: 1, State: "Ongoing", StartMs: -1,
			Partitions: []stream.TxnPartitionName{{Topic: "a", Partition: 0}, {Topic: "b", Partition: 0}}},
		{ID: "other", ProducerID: 2, State: "Empty", StartMs: -1},
	}
}

func TestAuthzListDescribeTransactions(t *testing.T) {
	acls := &memACLs{}
	b := startServer(t, func(o *Options) {
		o.Log = txnLog{o.Log.(*fakeLog)}
		o.Authorizer = auth.NewAuthorizer(config.AuthorizationConfig{Enabled: true}, acls)
	})
	lt := kmsg.NewPtrListTransactionsRequest()
	if r := do[*kmsg.ListTransactionsResponse](t, b.addr, lt, 1); r.ErrorCode != 0 || len(r.TransactionStates) != 0 {
		t.Fatalf("list without DESCRIBE: %v %+v", kerr.ErrorForCode(r.ErrorCode), r.TransactionStates)
	}
	acls.allow(rTxn, "tx", opDescribe)
	if r := do[*kmsg.ListTransactionsResponse](t, b.addr, lt, 1); len(r.TransactionStates) != 1 || r.TransactionStates[0].TransactionalID != "tx" {
		t.Fatalf("list with DESCRIBE on tx: %+v", r.TransactionStates)
	}

	// Describe: the transaction's partitions of topics without DESCRIBE
	// are left out.
	acls.allow(rTopic, "a", opDescribe)
	dt := kmsg.NewPtrDescribeTransactionsRequest()
	dt.TransactionalIDs = []string{"tx", "other"}
	r := do[*kmsg.DescribeTransactionsResponse](t, b.addr, dt, 0)
	if st := r.TransactionStates[0]; st.ErrorCode != 0 || len(st.Topics) != 1 || st.Topics[0].Topic != "a" {
		t.Fatalf("describe tx: %v %+v", kerr.ErrorForCode(st.ErrorCode), st.Topics)
	}
	wantCode(t, "describe other", r.TransactionStates[1].ErrorCode, kerr.TransactionalIDAuthorizationFailed)
}

// The broker wires internal/auth's Authorizer in: it must keep serving
// both interfaces and the switch.
var (
	_ Authorizer = (*auth.Authorizer)(nil)
	_ ACLAdmin   = (*auth.Authorizer)(nil)
	_ switchable = (*auth.Authorizer)(nil)
)
