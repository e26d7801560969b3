package protocol

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/auth"
	"github.com/runnel-dev/runnel/internal/cluster/clustertest"
	"github.com/runnel-dev/runnel/internal/share"
)

type shareBroker struct {
	*testBroker
	shares  *fakeShares
	groups  *fakeShareGroups
	configs *fakeGroupConfigs
	topic   TopicInfo // "q", two partitions
}

// startShare starts a server with fake share engine, share coordinator and
// group config store, and a topic "q" of two partitions.
func startShare(t *testing.T, mod func(*Options)) *shareBroker {
	t.Helper()
	sb := &shareBroker{groups: &fakeShareGroups{}, configs: &fakeGroupConfigs{}}
	sb.testBroker = startServer(t, func(o *Options) {
		sb.shares = newFakeShares(o.Log.(*fakeLog))
		o.Shares, o.ShareGroups, o.GroupConfigs = sb.shares, sb.groups, sb.configs
		if mod != nil {
			mod(o)
		}
	})
	ti, err := sb.log.CreateTopic(context.Background(), "q", 2, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	sb.topic = ti
	return sb
}

// produce appends n one-record batches to partition p of "q".
func (b *shareBroker) produce(t *testing.T, p int32, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		for _, r := range b.log.Produce(context.Background(), []ProduceBatch{{Topic: "q", Partition: p, Records: oneBatch()}})() {
			if r.Err != nil {
				t.Fatal(r.Err)
			}
		}
	}
}

func (b *shareBroker) key(p int32) share.Key {
	return share.Key{Group: "g", Topic: b.topic.ID, Partition: p}
}

// shareConn is one client connection: share sessions belong to the
// connection that opened them.
type shareConn struct {
	t    *testing.T
	c    *rawConn
	corr int32
}

func (b *shareBroker) conn(t *testing.T) *shareConn {
	return &shareConn{t: t, c: dialRaw(t, b.addr)}
}

// do sends req at version v and decodes the answer.
func (c *shareConn) do(req kmsg.Request, v int16) kmsg.Response {
	c.t.Helper()
	resp, err := c.try(req, v)
	if err != nil {
		c.t.Fatalf("%s v%d: %v", kmsg.NameForKey(req.Key()), v, err)
	}
	return resp
}

// try is do for any goroutine: it returns errors instead of failing.
func (c *shareConn) try(req kmsg.Request, v int16) (kmsg.Response, error) {
	req.SetVersion(v)
	c.corr++
	var b []byte
	b = append(b, byte(req.Key()>>8), byte(req.Key()), byte(v>>8), byte(v))
	b = append(b, byte(c.corr>>24), byte(c.corr>>16), byte(c.corr>>8), byte(c.corr), 0, 4)
	b = append(b, "test"...)
	b = append(b, 0) // flexible header tags
	b = req.AppendTo(b)
	n := len(b)
	if _, err := c.c.Write(append([]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}, b...)); err != nil {
		return nil, err
	}
	_, body, err := c.c.recv()
	if err != nil {
		return nil, err
	}
	resp := req.ResponseKind()
	resp.SetVersion(v)
	if err := resp.ReadFrom(body[1:]); err != nil {
		return nil, err
	}
	return resp, nil
}

func (c *shareConn) fetch(req *kmsg.ShareFetchRequest) *kmsg.ShareFetchResponse {
	c.t.Helper()
	return c.do(req, 2).(*kmsg.ShareFetchResponse)
}

// sfReq is a ShareFetch of group "g" that fetches the partitions of topic
// without waiting.
func sfReq(member string, epoch int32, topic TopicID, parts ...int32) *kmsg.ShareFetchRequest {
	r := kmsg.NewPtrShareFetchRequest()
	r.GroupID, r.MemberID, r.ShareSessionEpoch = strp("g"), strp(member), epoch
	r.MaxBytes, r.MaxRecords, r.BatchSize = 1<<20, 500, 500
	if len(parts) > 0 {
		t := kmsg.NewShareFetchRequestTopic()
		t.TopicID = topic
		for _, p := range parts {
			rp := kmsg.NewShareFetchRequestTopicPartition()
			rp.Partition = p
			t.Partitions = append(t.Partitions, rp)
		}
		r.Topics = append(r.Topics, t)
	}
	return r
}

// withAck adds an acknowledgement batch for partition p of topic.
func withAck(r *kmsg.ShareFetchRequest, topic TopicID, p int32, first, last int64, types ...int8) *kmsg.ShareFetchRequest {
	ti := slices.IndexFunc(r.Topics, func(t kmsg.ShareFetchRequestTopic) bool { return t.TopicID == topic })
	if ti < 0 {
		t := kmsg.NewShareFetchRequestTopic()
		t.TopicID = topic
		r.Topics = append(r.Topics, t)
		ti = len(r.Topics) - 1
	}
	t := &r.Topics[ti]
	pi := slices.IndexFunc(t.Partitions, func(rp kmsg.ShareFetchRequestTopicPartition) bool { return rp.Partition == p })
	if pi < 0 {
		rp := kmsg.NewShareFetchRequestTopicPartition()
		rp.Partition = p
		t.Partitions = append(t.Partitions, rp)
		pi = len(t.Partitions) - 1
	}
	b := kmsg.NewShareFetchRequestTopicPartitionAcknowledgementBatch()
	b.FirstOffset, b.LastOffset, b.AcknowledgeTypes = first, last, types
	t.Partitions[pi].AcknowledgementBatches = append(t.Partitions[pi].AcknowledgementBatches, b)
	return r
}

func saReq(member string, epoch int32, topic TopicID, p int32, first, last int64, types ...int8) *kmsg.ShareAcknowledgeRequest {
	r := kmsg.NewPtrShareAcknowledgeRequest()
	r.GroupID, r.MemberID, r.ShareSessionEpoch = strp("g"), strp(member), epoch
	t := kmsg.NewShareAcknowledgeRequestTopic()
	t.TopicID = topic
	rp := kmsg.NewShareAcknowledgeRequestTopicPartition()
	rp.Partition = p
	b := kmsg.NewShareAcknowledgeRequestTopicPartitionAcknowledgementBatch()
	b.FirstOffset, b.LastOffset, b.AcknowledgeTypes = first, last, types
	rp.AcknowledgementBatches = append(rp.AcknowledgementBatches, b)
	t.Partitions = append(t.Partitions, rp)
	r.Topics = append(r.Topics, t)
	return r
}

// sfPart returns the response's entry for partition p (nil if absent).
func sfPart(r *kmsg.ShareFetchResponse, p int32) *kmsg.ShareFetchResponseTopicPartition {
	for i := range r.Topics {
		for j := range r.Topics[i].Partitions {
			if r.Topics[i].Partitions[j].Partition == p {
				return &r.Topics[i].Partitions[j]
			}
		}
	}
	return nil
}

// acquired lists the acquired offsets of partition p, with their delivery
// counts.
func acquired(r *kmsg.ShareFetchResponse, p int32) map[int64]int16 {
	out := map[int64]int16{}
	if rp := sfPart(r, p); rp != nil {
		for _, a := range rp.AcquiredRecords {
			for o := a.FirstOffset; o <= a.LastOffset; o++ {
				out[o] = a.DeliveryCount
			}
		}
	}
	return out
}

func TestShareFetchSessionEpochs(t *testing.T) {
	b := startShare(t, nil)
	id := b.topic.ID
	b.produce(t, 0, 3)
	c := b.conn(t)

	r := c.fetch(sfReq("m1", 0, id, 0))
	wantCode(t, "open", r.ErrorCode, nil)
	if r.AcquisitionLockTimeoutMillis != 15000 {
		t.Errorf("AcquisitionLockTimeoutMillis = %d, want the group's lock duration 15000", r.AcquisitionLockTimeoutMillis)
	}
	if got := acquired(r, 0); len(got) != 3 || got[0] != 1 || got[2] != 1 {
		t.Fatalf("open: acquired %v, want offsets 0..2 delivered once", got)
	}
	if rp := sfPart(r, 0); len(rp.Records) == 0 || rp.CurrentLeader.LeaderID != -1 {
		t.Fatalf("open: records %d bytes, current leader %d", len(rp.Records), rp.CurrentLeader.LeaderID)
	}
	if v, _ := sample(t, b.srv.opts.Metrics.(*prometheus.Registry), "runnel_topic_records_out_total", map[string]string{"topic": "q"}); v != 3 {
		t.Errorf("records out of q: %v, want 3", v)
	}
	// The next epoch is 1; an unchanged partition without records is left
	// out of an incremental response.
	r = c.fetch(sfReq("m1", 1, id))
	wantCode(t, "epoch 1", r.ErrorCode, nil)
	if len(r.Topics) != 0 {
		t.Fatalf("incremental without news: %+v", r.Topics)
	}
	wantCode(t, "epoch 1 again", c.fetch(sfReq("m1", 1, id)).ErrorCode, kerr.InvalidShareSessionEpoch)
	wantCode(t, "another member", c.fetch(sfReq("m2", 1, id)).ErrorCode, kerr.ShareSessionNotFound)
	wantCode(t, "no member id", c.fetch(sfReq("", 0, id, 0)).ErrorCode, kerr.InvalidRequest)
	sa := c.do(saReq("m1", 0, id, 0, 0, 0, share.AckAccept), 2).(*kmsg.ShareAcknowledgeResponse)
	wantCode(t, "acknowledge at epoch 0", sa.ErrorCode, kerr.InvalidShareSessionEpoch)
	// Acknowledging in the request that opens a session is refused, and
	// leaves the session as it was.
	wantCode(t, "acks at epoch 0", c.fetch(withAck(sfReq("m1", 0, id, 0), id, 0, 0, 0, share.AckAccept)).ErrorCode, kerr.InvalidRequest)

	sa = c.do(saReq("m1", 2, id, 0, 0, 1, share.AckAccept), 2).(*kmsg.ShareAcknowledgeResponse)
	wantCode(t, "acknowledge at epoch 2", sa.ErrorCode, nil)
	wantCode(t, "acknowledged partition", sa.Topics[0].Partitions[0].ErrorCode, nil)
	if sa.AcquisitionLockTimeoutMillis != 15000 {
		t.Errorf("ShareAcknowledge v2 AcquisitionLockTimeoutMillis = %d", sa.AcquisitionLockTimeoutMillis)
	}
	for _, o := range []int64{0, 1} {
		if _, done := b.shares.holder(b.key(0), o); !done {
			t.Fatalf("offset %d not acknowledged", o)
		}
	}
	wantCode(t, "acknowledge at a stale epoch", c.do(saReq("m1", 2, id, 0, 2, 2, share.AckAccept), 2).(*kmsg.ShareAcknowledgeResponse).ErrorCode, kerr.InvalidShareSessionEpoch)

	// Epoch -1 acknowledges, acquires nothing, closes the session and
	// releases the member's records.
	b.produce(t, 0, 1)
	r = c.fetch(withAck(sfReq("m1", -1, id, 0), id, 0, 2, 2, share.AckRelease))
	wantCode(t, "close", r.ErrorCode, nil)
	if rp := sfPart(r, 0); rp == nil || rp.AcknowledgeErrorCode != 0 || len(rp.AcquiredRecords) != 0 {
		t.Fatalf("close: %+v", rp)
	}
	if got := b.shares.releases(); !slices.Equal(got, []string{"m1@0"}) {
		t.Fatalf("released %v, want m1@0", got)
	}
	wantCode(t, "after close", c.fetch(sfReq("m1", 3, id)).ErrorCode, kerr.ShareSessionNotFound)
	wantCode(t, "close again", c.fetch(sfReq("m1", -1, id)).ErrorCode, kerr.ShareSessionNotFound)
	wantCode(t, "acknowledge-close without a session", c.do(saReq("m1", -1, id, 0, 3, 3, share.AckAccept), 2).(*kmsg.ShareAcknowledgeResponse).ErrorCode, kerr.ShareSessionNotFound)
}

func TestShareFetchAcknowledgements(t *testing.T) {
	b := startShare(t, nil)
	id := b.topic.ID
	b.produce(t, 0, 4)
	c1, c2 := b.conn(t), b.conn(t)
	if got := acquired(c1.fetch(sfReq("m1", 0, id, 0)), 0); len(got) != 4 {
		t.Fatalf("m1 acquired %v", got)
	}
	r := c2.fetch(sfReq("m2", 0, id, 0))
	if rp := sfPart(r, 0); rp == nil || rp.ErrorCode != 0 || len(rp.AcquiredRecords) != 0 {
		t.Fatalf("m2 open: the full response lists the partition, with nothing acquired: %+v", r.Topics)
	}

	// A record another member holds.
	r = c2.fetch(withAck(sfReq("m2", 1, id), id, 0, 0, 0, share.AckAccept))
	if rp := sfPart(r, 0); rp == nil || rp.AcknowledgeErrorCode != kerr.InvalidRecordState.Code {
		t.Fatalf("m2 acknowledging m1's record: %+v", rp)
	}
	// Accept 0, release 1: the release is applied before acquiring, so
	// m1 gets offset 1 again in the same response.
	r = c1.fetch(withAck(withAck(sfReq("m1", 1, id), id, 0, 0, 0, share.AckAccept), id, 0, 1, 1, share.AckRelease))
	rp := sfPart(r, 0)
	if rp == nil || rp.AcknowledgeErrorCode != 0 || rp.ErrorCode != 0 {
		t.Fatalf("piggybacked acks: %+v", rp)
	}
	if got := acquired(r, 0); len(got) != 1 || got[1] != 2 {
		t.Fatalf("after releasing offset 1: acquired %v, want offset 1 delivered twice", got)
	}
	if _, done := b.shares.holder(b.key(0), 0); !done {
		t.Fatal("offset 0 not accepted")
	}

	bad := []struct {
		name        string
		first, last int64
		types       []int8
	}{
		{"first after last", 3, 2, []int8{share.AckAccept}},
		{"no types", 2, 2, nil},
		{"types not one per offset", 2, 3, []int8{1, 1, 1}},
		{"unknown type", 2, 2, []int8{5}},
		{"renew without IsRenewAck", 2, 2, []int8{share.AckRenew}},
	}
	epoch := int32(2)
	for _, tc := range bad {
		r := c1.fetch(withAck(sfReq("m1", epoch, id), id, 0, tc.first, tc.last, tc.types...))
		epoch++
		if rp := sfPart(r, 0); rp == nil || rp.AcknowledgeErrorCode != kerr.InvalidRequest.Code {
			t.Errorf("%s: %+v", tc.name, rp)
		}
		if m, done := b.shares.holder(b.key(0), 2); m != "m1" || done {
			t.Fatalf("%s: offset 2 changed: holder %q done %v", tc.name, m, done)
		}
	}
	// Overlapping batches.
	r = c1.fetch(withAck(withAck(sfReq("m1", epoch, id), id, 0, 2, 3, share.AckAccept), id, 0, 3, 3, share.AckAccept))
	if rp := sfPart(r, 0); rp == nil || rp.AcknowledgeErrorCode != kerr.InvalidRequest.Code {
		t.Errorf("overlapping batches: %+v", rp)
	}
	// An unknown topic id.
	r = c1.fetch(withAck(sfReq("m1", epoch+1, id), TopicID{9}, 0, 2, 2, share.AckAccept))
	if len(r.Topics) != 1 || r.Topics[0].TopicID != (TopicID{9}) || r.Topics[0].Partitions[0].AcknowledgeErrorCode != kerr.UnknownTopicID.Code {
		t.Errorf("unknown topic id: %+v", r.Topics)
	}
}

func TestShareFetchLongPollWakes(t *testing.T) {
	b := startShare(t, nil)
	id := b.topic.ID
	c1, c2 := b.conn(t), b.conn(t)
	c1.fetch(sfReq("m1", 0, id, 0))
	c2.fetch(sfReq("m2", 0, id, 0))

	poll := func(c *shareConn, member string, epoch int32) <-chan *kmsg.ShareFetchResponse {
		req := sfReq(member, epoch, id)
		req.MaxWaitMillis, req.MinBytes = 8000, 1
		out := make(chan *kmsg.ShareFetchResponse, 1)
		go func() {
			resp, err := c.try(req, 2)
			if err != nil {
				t.Error(err)
				out <- nil
				return
			}
			out <- resp.(*kmsg.ShareFetchResponse)
		}()
		return out
	}

	// New log data wakes a waiting fetch.
	start := time.Now()
	got := poll(c1, "m1", 1)
	time.Sleep(100 * time.Millisecond)
	b.produce(t, 0, 1)
	r := <-got
	if r == nil || len(acquired(r, 0)) != 1 {
		t.Fatalf("woken by new data: %+v", r)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("waited %v for new data", d)
	}

	// A release by another member wakes a waiting fetch without new data.
	start = time.Now()
	got = poll(c2, "m2", 1)
	time.Sleep(100 * time.Millisecond)
	sa := c1.do(saReq("m1", 2, id, 0, 0, 0, share.AckRelease), 2).(*kmsg.ShareAcknowledgeResponse)
	wantCode(t, "release", sa.Topics[0].Partitions[0].ErrorCode, nil)
	r = <-got
	if r == nil || acquired(r, 0)[0] != 2 {
		t.Fatalf("woken by a release: %+v", r)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("waited %v for a released record", d)
	}

	// Nothing to acquire: the fetch waits MaxWaitMillis and answers empty.
	req := sfReq("m2", 2, id)
	req.MaxWaitMillis, req.MinBytes = 200, 1
	start = time.Now()
	if r := c2.fetch(req); r.ErrorCode != 0 || len(r.Topics) != 0 || time.Since(start) < 150*time.Millisecond {
		t.Fatalf("idle fetch: %+v after %v", r, time.Since(start))
	}
}

func TestShareFetchRenewOnly(t *testing.T) {
	b := startShare(t, nil)
	id := b.topic.ID
	b.produce(t, 0, 2)
	c := b.conn(t)
	c.fetch(sfReq("m1", 0, id, 0))
	b.produce(t, 0, 1) // offset 2: acquirable

	renew := withAck(sfReq("m1", 1, id), id, 0, 0, 0, share.AckRenew)
	renew.IsRenewAck = true
	renew.MaxWaitMillis = 100
	wantCode(t, "renew with fetch parameters", c.fetch(renew).ErrorCode, kerr.InvalidRequest)

	renew.MaxWaitMillis, renew.MaxBytes, renew.MaxRecords = 0, 0, 0
	r := c.fetch(renew)
	wantCode(t, "renew", r.ErrorCode, nil)
	rp := sfPart(r, 0)
	if rp == nil || rp.AcknowledgeErrorCode != 0 || len(rp.AcquiredRecords) != 0 {
		t.Fatalf("renew-only: %+v", rp)
	}
	if m, _ := b.shares.holder(b.key(0), 2); m != "" {
		t.Fatalf("a renew-only request acquired offset 2 for %q", m)
	}
	if n := len(b.shares.acquireCalls()); n != 1 {
		t.Fatalf("%d acquisitions, want only the opening one", n)
	}

	sa := saReq("m1", 2, id, 0, 1, 1, share.AckRenew)
	sa.IsRenewAck = true
	r2 := c.do(sa, 2).(*kmsg.ShareAcknowledgeResponse)
	wantCode(t, "ShareAcknowledge renew", r2.Topics[0].Partitions[0].ErrorCode, nil)
	r2 = c.do(saReq("m1", 3, id, 0, 1, 1, share.AckRenew), 1).(*kmsg.ShareAcknowledgeResponse)
	wantCode(t, "ShareAcknowledge v1 renew", r2.Topics[0].Partitions[0].ErrorCode, kerr.InvalidRequest)
}

func TestShareFetchBudgetsAndForget(t *testing.T) {
	b := startShare(t, nil)
	id := b.topic.ID
	b.produce(t, 0, 3)
	b.produce(t, 1, 3)
	c := b.conn(t)

	req := sfReq("m1", 0, id, 0, 1)
	req.ShareAcquireMode = 7
	wantCode(t, "unknown acquire mode", c.fetch(req).ErrorCode, kerr.InvalidRequest)

	req = sfReq("m1", 0, id, 0, 1)
	req.MaxRecords, req.ShareAcquireMode = 4, 1
	r := c.fetch(req)
	if n0, n1 := len(acquired(r, 0)), len(acquired(r, 1)); n0 != 3 || n1 != 1 {
		t.Fatalf("MaxRecords 4 across partitions: acquired %d + %d", n0, n1)
	}
	for _, a := range b.shares.acquireCalls() {
		if !a.RecordLimit {
			t.Fatalf("record_limit not passed on: %+v", a)
		}
	}

	// Forget partition 0: only partition 1 is fetched from now on.
	b.shares.mu.Lock()
	b.shares.acquires = nil
	b.shares.mu.Unlock()
	req = sfReq("m1", 1, id)
	fg := kmsg.NewShareFetchRequestForgottenTopicsData()
	fg.TopicID, fg.Partitions = id, []int32{0}
	req.ForgottenTopicsData = append(req.ForgottenTopicsData, fg)
	b.produce(t, 0, 1)
	r = c.fetch(req)
	if len(acquired(r, 0)) != 0 || len(acquired(r, 1)) != 2 {
		t.Fatalf("after forgetting partition 0: %+v", r.Topics)
	}
	for _, a := range b.shares.acquireCalls() {
		if a.Partition == 0 {
			t.Fatalf("forgotten partition acquired: %+v", a)
		}
	}
}

func TestShareSessionClosedWithConnection(t *testing.T) {
	b := startShare(t, nil)
	id := b.topic.ID
	b.produce(t, 0, 2)
	c1 := b.conn(t)
	if got := acquired(c1.fetch(sfReq("m1", 0, id, 0)), 0); len(got) != 2 {
		t.Fatalf("acquired %v", got)
	}
	// m2's session moves from c2 to c3: closing c2 leaves it alone.
	c2, c3 := b.conn(t), b.conn(t)
	c2.fetch(sfReq("m2", 0, id, 1))
	c3.fetch(sfReq("m2", 0, id, 1))
	_ = c2.c.Close()
	_ = c1.c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for !slices.Contains(b.shares.releases(), "m1@0") {
		if time.Now().After(deadline) {
			t.Fatalf("closing the connection released %v, want m1@0", b.shares.releases())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if m, _ := b.shares.holder(b.key(0), 0); m != "" {
		t.Fatalf("offset 0 still held by %q", m)
	}
	wantCode(t, "m2 on its new connection", c3.fetch(sfReq("m2", 1, id)).ErrorCode, nil)
	c4 := b.conn(t)
	wantCode(t, "m1 after its connection closed", c4.fetch(sfReq("m1", 1, id)).ErrorCode, kerr.ShareSessionNotFound)
	if got := b.shares.releases(); slices.ContainsFunc(got, func(s string) bool { return s[:2] == "m2" }) {
		t.Fatalf("m2's records released: %v", got)
	}
}

func TestShareSessionLimit(t *testing.T) {
	b := startShare(t, func(o *Options) { o.ShareSessions = 1 })
	id := b.topic.ID
	c := b.conn(t)
	wantCode(t, "first session", c.fetch(sfReq("m1", 0, id, 0)).ErrorCode, nil)
	// Refused after MaxWaitMillis: a client retrying at once does not spin.
	req := sfReq("m2", 0, id, 0)
	req.MaxWaitMillis = 200
	start := time.Now()
	wantCode(t, "second session", c.fetch(req).ErrorCode, kerr.ShareSessionLimitReached)
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("refused after %v, want MaxWaitMillis", d)
	}
	wantCode(t, "reopening the first", c.fetch(sfReq("m1", 0, id, 0)).ErrorCode, nil)
	wantCode(t, "first, next epoch", c.fetch(sfReq("m1", 1, id)).ErrorCode, nil)
	if n := b.srv.shareSessions.len(); n != 1 {
		t.Fatalf("%d sessions", n)
	}
}

func TestShareFetchNotLeader(t *testing.T) {
	other := Broker{NodeID: 2, Host: "10.0.0.2", Port: 9092}
	b := startShare(t, func(o *Options) {
		cl := o.Cluster.(*fakeCluster)
		cl.others = []Broker{other}
		cl.leader = func(_ TopicID, p int32) int32 {
			if p == 1 {
				return 2
			}
			return cl.self.NodeID
		}
	})
	id := b.topic.ID
	b.produce(t, 0, 1)
	b.produce(t, 1, 1)
	c := b.conn(t)
	r := c.fetch(sfReq("m1", 0, id, 0, 1))
	if len(acquired(r, 0)) != 1 {
		t.Fatalf("partition 0: %+v", sfPart(r, 0))
	}
	rp := sfPart(r, 1)
	if rp == nil || rp.ErrorCode != kerr.NotLeaderForPartition.Code || rp.CurrentLeader.LeaderID != 2 || rp.CurrentLeader.LeaderEpoch < 0 || len(rp.AcquiredRecords) != 0 {
		t.Fatalf("partition 1: %+v", rp)
	}
	if len(r.NodeEndpoints) != 1 || r.NodeEndpoints[0].NodeID != 2 || r.NodeEndpoints[0].Host != other.Host {
		t.Fatalf("node endpoints %+v", r.NodeEndpoints)
	}
}

func TestShareFetchAcquireError(t *testing.T) {
	b := startShare(t, nil)
	id := b.topic.ID
	c := b.conn(t)
	b.shares.mu.Lock()
	b.shares.acquireErr = share.ErrUnavailable
	b.shares.mu.Unlock()
	req := sfReq("m1", 0, id, 0)
	req.MaxWaitMillis = 5000
	start := time.Now()
	rp := sfPart(c.fetch(req), 0)
	if rp == nil || rp.ErrorCode != kerr.RequestTimedOut.Code || time.Since(start) > 2*time.Second {
		t.Fatalf("failed acquisition: %+v after %v", rp, time.Since(start))
	}
}

func TestShareApisAdvertised(t *testing.T) {
	versions := func(b *testBroker) map[int16][2]int16 {
		r := do[*kmsg.ApiVersionsResponse](t, b.addr, kmsg.NewPtrApiVersionsRequest(), 2)
		out := map[int16][2]int16{}
		for _, k := range r.ApiKeys {
			out[k.ApiKey] = [2]int16{k.MinVersion, k.MaxVersion}
		}
		return out
	}
	want := map[int16][2]int16{76: {1, 1}, 77: {1, 1}, 78: {1, 2}, 79: {1, 2}, 90: {0, 1}, 91: {0, 0}, 92: {0, 0}}
	got := versions(startShare(t, nil).testBroker)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("api %d: advertised %v, want %v", k, got[k], v)
		}
	}
	got = versions(startServer(t, nil))
	for k := range want {
		if _, ok := got[k]; ok {
			t.Errorf("api %d advertised without share groups", k)
		}
	}
}

func describeGroupConfigs(t *testing.T, addr, group string, names ...string) kmsg.DescribeConfigsResponseResource {
	t.Helper()
	req := kmsg.NewPtrDescribeConfigsRequest()
	rr := kmsg.NewDescribeConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeGroupConfig, group
	if names != nil {
		rr.ConfigNames = names
	}
	req.Resources = append(req.Resources, rr)
	req.IncludeSynonyms, req.IncludeDocumentation = true, true
	return do[*kmsg.DescribeConfigsResponse](t, addr, req, 4).Resources[0]
}

func incrementalGroupConfig(t *testing.T, addr, group string, validateOnly bool, ops ...kmsg.IncrementalAlterConfigsRequestResourceConfig) kmsg.IncrementalAlterConfigsResponseResource {
	t.Helper()
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	req.ValidateOnly = validateOnly
	rr := kmsg.NewIncrementalAlterConfigsRequestResource()
	rr.ResourceType, rr.ResourceName, rr.Configs = kmsg.ConfigResourceTypeGroupConfig, group, ops
	req.Resources = append(req.Resources, rr)
	return do[*kmsg.IncrementalAlterConfigsResponse](t, addr, req, 1).Resources[0]
}

func groupOp(op kmsg.IncrementalAlterConfigOp, name string, value *string) kmsg.IncrementalAlterConfigsRequestResourceConfig {
	c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
	c.Op, c.Name, c.Value = op, name, value
	return c
}

func configEntry(r kmsg.DescribeConfigsResponseResource, name string) *kmsg.DescribeConfigsResponseResourceConfig {
	for i := range r.Configs {
		if r.Configs[i].Name == name {
			return &r.Configs[i]
		}
	}
	return nil
}

func TestGroupConfigRoundTrip(t *testing.T) {
	b := startShare(t, nil)
	const lock = "share.record.lock.duration.ms"

	// Before any override: every group config, at its default.
	r := describeGroupConfigs(t, b.addr, "g")
	wantCode(t, "describe", r.ErrorCode, nil)
	if len(r.Configs) != len(configGroupDefs()) {
		t.Fatalf("%d configs described, want %d", len(r.Configs), len(configGroupDefs()))
	}
	c := configEntry(r, lock)
	if c == nil || *c.Value != "30000" || c.Source != kmsg.ConfigSourceDefaultConfig ||
		c.ConfigType != kmsg.ConfigTypeInt || c.Documentation == nil || len(c.ConfigSynonyms) != 1 ||
		c.ConfigSynonyms[0].Name != "group.share.record.lock.duration.ms" {
		t.Fatalf("default %s: %+v", lock, c)
	}

	// SET: validate-only changes nothing, then the override is described
	// as a group config.
	wantCode(t, "validate only", incrementalGroupConfig(t, b.addr, "g", true, groupOp(kmsg.IncrementalAlterConfigOpSet, lock, strp("60000"))).ErrorCode, nil)
	if b.configs.GroupConfig("g") != nil {
		t.Fatal("validate-only stored an override")
	}
	wantCode(t, "set", incrementalGroupConfig(t, b.addr, "g", false,
		groupOp(kmsg.IncrementalAlterConfigOpSet, lock, strp("60000")),
		groupOp(kmsg.IncrementalAlterConfigOpSet, "share.auto.offset.reset", strp("earliest"))).ErrorCode, nil)
	r = describeGroupConfigs(t, b.addr, "g", lock)
	if len(r.Configs) != 1 {
		t.Fatalf("named describe returned %d configs", len(r.Configs))
	}
	if c := r.Configs[0]; *c.Value != "60000" || c.Source != kmsg.ConfigSourceGroupConfig ||
		len(c.ConfigSynonyms) != 2 || c.ConfigSynonyms[0].Source != kmsg.ConfigSourceGroupConfig {
		t.Fatalf("override: %+v", c)
	}
	if v := configEntry(describeGroupConfigs(t, b.addr, "other"), lock).Value; *v != "30000" {
		t.Fatalf("another group sees %s", *v)
	}

	// Refusals, each leaving the stored overrides as they were.
	bad := []struct {
		name string
		ops  []kmsg.IncrementalAlterConfigsRequestResourceConfig
		want *kerr.Error
		msg  string
	}{
		{"unknown name", []kmsg.IncrementalAlterConfigsRequestResourceConfig{groupOp(kmsg.IncrementalAlterConfigOpSet, "no.such", strp("1"))}, kerr.InvalidConfig, "Unknown group config name: no.such"},
		{"below the minimum", []kmsg.IncrementalAlterConfigsRequestResourceConfig{groupOp(kmsg.IncrementalAlterConfigOpSet, lock, strp("10"))}, kerr.InvalidConfig, ""},
		{"not a number", []kmsg.IncrementalAlterConfigsRequestResourceConfig{groupOp(kmsg.IncrementalAlterConfigOpSet, lock, strp("soon"))}, kerr.InvalidConfig, ""},
		{"set without a value", []kmsg.IncrementalAlterConfigsRequestResourceConfig{groupOp(kmsg.IncrementalAlterConfigOpSet, lock, nil)}, kerr.InvalidConfig, ""},
		{"append", []kmsg.IncrementalAlterConfigsRequestResourceConfig{groupOp(kmsg.IncrementalAlterConfigOpAppend, lock, strp("1"))}, kerr.InvalidRequest, ""},
		{"subtract", []kmsg.IncrementalAlterConfigsRequestResourceConfig{groupOp(kmsg.IncrementalAlterConfigOpSubtract, lock, strp("1"))}, kerr.InvalidRequest, ""},
		{"named twice", []kmsg.IncrementalAlterConfigsRequestResourceConfig{groupOp(kmsg.IncrementalAlterConfigOpSet, lock, strp("40000")), groupOp(kmsg.IncrementalAlterConfigOpDelete, lock, nil)}, kerr.InvalidRequest, ""},
	}
	for _, tc := range bad {
		res := incrementalGroupConfig(t, b.addr, "g", false, tc.ops...)
		wantCode(t, tc.name, res.ErrorCode, tc.want)
		if tc.msg != "" && (res.ErrorMessage == nil || *res.ErrorMessage != tc.msg) {
			t.Errorf("%s: message %v, want %q", tc.name, res.ErrorMessage, tc.msg)
		}
		if got := b.configs.GroupConfig("g")[lock]; got != "60000" {
			t.Fatalf("%s: override now %q", tc.name, got)
		}
	}
	wantCode(t, "no group name", incrementalGroupConfig(t, b.addr, "", false, groupOp(kmsg.IncrementalAlterConfigOpSet, lock, strp("60000"))).ErrorCode, kerr.InvalidRequest)

	// DELETE reverts to the default.
	wantCode(t, "delete", incrementalGroupConfig(t, b.addr, "g", false, groupOp(kmsg.IncrementalAlterConfigOpDelete, lock, nil)).ErrorCode, nil)
	if c := configEntry(describeGroupConfigs(t, b.addr, "g"), lock); *c.Value != "30000" || c.Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("after delete: %+v", c)
	}

	// AlterConfigs replaces every override.
	ac := kmsg.NewPtrAlterConfigsRequest()
	rr := kmsg.NewAlterConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeGroupConfig, "g"
	cfg := kmsg.NewAlterConfigsRequestResourceConfig()
	cfg.Name, cfg.Value = "share.delivery.count.limit", strp("3")
	rr.Configs = append(rr.Configs, cfg)
	ac.Resources = append(ac.Resources, rr)
	wantCode(t, "alter configs", do[*kmsg.AlterConfigsResponse](t, b.addr, ac, 2).Resources[0].ErrorCode, nil)
	if got := b.configs.GroupConfig("g"); len(got) != 1 || got["share.delivery.count.limit"] != "3" {
		t.Fatalf("after AlterConfigs: %v", got)
	}
	cfg.Name = "no.such"
	ac.Resources[0].Configs[0] = cfg
	wantCode(t, "alter configs, unknown name", do[*kmsg.AlterConfigsResponse](t, b.addr, ac, 2).Resources[0].ErrorCode, kerr.InvalidConfig)
}

func TestGroupConfigWithoutStore(t *testing.T) {
	b := startServer(t, nil)
	wantCode(t, "describe", describeGroupConfigs(t, b.addr, "g").ErrorCode, kerr.InvalidRequest)
	wantCode(t, "alter", incrementalGroupConfig(t, b.addr, "g", false, groupOp(kmsg.IncrementalAlterConfigOpSet, "share.record.lock.duration.ms", strp("60000"))).ErrorCode, kerr.InvalidRequest)
}

func TestShareAcknowledgeCloses(t *testing.T) {
	b := startShare(t, nil)
	id := b.topic.ID
	b.produce(t, 0, 3)
	b.produce(t, 1, 1)
	c := b.conn(t)
	c.fetch(sfReq("m1", 0, id, 0, 1))

	// A partition named twice in one request is refused, nothing applied.
	dup := saReq("m1", 1, id, 0, 0, 0, share.AckAccept)
	dup.Topics[0].Partitions = append(dup.Topics[0].Partitions, dup.Topics[0].Partitions[0])
	r := c.do(dup, 2).(*kmsg.ShareAcknowledgeResponse)
	if len(r.Topics[0].Partitions) != 2 || r.Topics[0].Partitions[1].ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("partition named twice: %+v", r.Topics)
	}

	// Epoch -1: the acknowledgements are applied whatever the session's
	// epoch, the session ends and every partition's records are released.
	r = c.do(saReq("m1", -1, id, 0, 1, 1, share.AckAccept), 2).(*kmsg.ShareAcknowledgeResponse)
	wantCode(t, "close", r.ErrorCode, nil)
	wantCode(t, "close, partition", r.Topics[0].Partitions[0].ErrorCode, nil)
	if _, done := b.shares.holder(b.key(0), 1); !done {
		t.Fatal("offset 1 not accepted")
	}
	got := b.shares.releases()
	slices.Sort(got)
	if !slices.Equal(got, []string{"m1@0", "m1@1"}) {
		t.Fatalf("released %v", got)
	}
	if m, _ := b.shares.holder(b.key(0), 2); m != "" {
		t.Fatalf("offset 2 still held by %q", m)
	}
	wantCode(t, "after close", c.fetch(sfReq("m1", 2, id)).ErrorCode, kerr.ShareSessionNotFound)
}

// TestShareAcknowledgePartitionErrors: every partition named is answered,
// one without batches too, each with its topic's error.
func TestShareAcknowledgePartitionErrors(t *testing.T) {
	b := startShare(t, nil)
	id := b.topic.ID
	c := b.conn(t)
	c.fetch(sfReq("m1", 0, id, 0))
	req := saReq("m1", 1, TopicID{9}, 0, 0, 0, share.AckAccept)
	req.Topics[0].Partitions[0].AcknowledgementBatches = nil
	known := saReq("m1", 1, id, 5, 0, 0, share.AckAccept)
	req.Topics = append(req.Topics, known.Topics[0])
	r := c.do(req, 2).(*kmsg.ShareAcknowledgeResponse)
	wantCode(t, "request", r.ErrorCode, nil)
	if len(r.Topics) != 2 {
		t.Fatalf("topics %+v", r.Topics)
	}
	wantCode(t, "unknown topic id, no batches", r.Topics[0].Partitions[0].ErrorCode, kerr.UnknownTopicID)
	wantCode(t, "partition past the topic's", r.Topics[1].Partitions[0].ErrorCode, kerr.UnknownTopicOrPartition)
	if p := r.Topics[1].Partitions[0].CurrentLeader; p.LeaderID != -1 || p.LeaderEpoch != -1 {
		t.Errorf("current leader %+v, want none", p)
	}
}

func TestShareSessionEpochWraps(t *testing.T) {
	if got := nextShareEpoch(1<<31 - 1); got != 1 {
		t.Fatalf("after MaxInt32: %d, want 1", got)
	}
	if got := nextShareEpoch(7); got != 8 {
		t.Fatalf("after 7: %d", got)
	}
}

func TestShareFetchBoundedByQuotaWindow(t *testing.T) {
	e := clustertest.Start(t)
	q := auth.NewQuotas(auth.QuotaOptions{Client: e.Client(), BrokerID: 1, Window: time.Second, Samples: 11})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := q.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.Close() })
	b := startShare(t, func(o *Options) { o.Quotas = q })
	id := b.topic.ID
	for i := 0; i < 20; i++ { // 20 batches of about 2 kB
		rec := kmsg.NewRecord()
		rec.Value = make([]byte, 2000)
		batch := kmsg.NewRecordBatch()
		batch.Magic, batch.NumRecords = 2, 1
		batch.ProducerID, batch.ProducerEpoch, batch.FirstSequence = -1, -1, -1
		batch.Records = rec.AppendTo(nil)
		batch.Length = int32(len(batch.AppendTo(nil)) - 12)
		b.log.Produce(context.Background(), []ProduceBatch{{Topic: "q", Partition: 0, Records: batch.AppendTo(nil)}})()
	}
	setQuota(t, kadm.NewClient(newClient(t, b.addr)), q, "consumer_byte_rate", 1000, "client-id", "test") // 10 kB per window
	c := b.conn(t)
	r := c.fetch(sfReq("m1", 0, id, 0))
	n := shareFetchBytes(r)
	if n == 0 || n > 10000 {
		t.Fatalf("acquired %d bytes, want some and at most 10000", n)
	}
	// A renew-only request keeps its zero MaxBytes.
	renew := withAck(sfReq("m1", 1, id), id, 0, 0, 0, share.AckRenew)
	renew.IsRenewAck, renew.MaxBytes, renew.MaxRecords = true, 0, 0
	wantCode(t, "renew under a quota", c.fetch(renew).ErrorCode, nil)
	// The next 10 kB put the client over its rate: throttled.
	r = c.fetch(sfReq("m1", 2, id))
	if n := shareFetchBytes(r); n == 0 || n > 10000 || r.ThrottleMillis <= 0 {
		t.Fatalf("second fetch: %d bytes, throttled %d ms", n, r.ThrottleMillis)
	}
}

// TestShareFetchIncrementalTopics: a later request adds the partitions it
// names to the session; a partition named only for its acknowledgements
// and forgotten in the same request has them applied and is not fetched
// (franz-go sends an unassigned partition's last acknowledgements so).
func TestShareFetchIncrementalTopics(t *testing.T) {
	b := startShare(t, nil)
	id := b.topic.ID
	b.produce(t, 0, 2)
	b.produce(t, 1, 2)
	c := b.conn(t)
	if got := acquired(c.fetch(sfReq("m1", 0, id, 0)), 0); len(got) != 2 {
		t.Fatalf("open: %v", got)
	}
	r := c.fetch(sfReq("m1", 1, id, 1))
	if len(acquired(r, 1)) != 2 {
		t.Fatalf("partition 1 added at epoch 1: %+v", r.Topics)
	}
	b.produce(t, 0, 1)
	req := withAck(sfReq("m1", 2, id), id, 0, 0, 1, share.AckAccept)
	fg := kmsg.NewShareFetchRequestForgottenTopicsData()
	fg.TopicID, fg.Partitions = id, []int32{0}
	req.ForgottenTopicsData = append(req.ForgottenTopicsData, fg)
	r = c.fetch(req)
	rp := sfPart(r, 0)
	if rp == nil || rp.AcknowledgeErrorCode != 0 || len(rp.AcquiredRecords) != 0 {
		t.Fatalf("acknowledged and forgotten partition: %+v", rp)
	}
	if _, done := b.shares.holder(b.key(0), 1); !done {
		t.Fatal("offset 1 not accepted")
	}
	if m, _ := b.shares.holder(b.key(0), 2); m != "" {
		t.Fatalf("forgotten partition 0 acquired offset 2 for %q", m)
	}
}
