package protocol

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/config"
)

type testBroker struct {
	addr string
	log  *fakeLog
	srv  *Server
}

func startServer(t *testing.T, mod func(*Options)) *testBroker {
	t.Helper()
	return startServerOn(t, mod, Listener{Name: DefaultListener})
}

// startServerOn serves one listener configured as l.
func startServerOn(t *testing.T, mod func(*Options), l Listener) *testBroker {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host, portS, _ := net.SplitHostPort(ln.Addr().String())
	port, _ := strconv.Atoi(portS)
	cl := &fakeCluster{self: Broker{NodeID: 1, Host: host, Port: int32(port)}}
	fl := newFakeLog()
	opts := Options{
		Log: fl, Cluster: cl, Groups: &fakeGroups{c: cl},
		Logger:            slog.New(slog.DiscardHandler),
		AutoCreateTopics:  true,
		DefaultPartitions: 2,
		Metrics:           prometheus.NewRegistry(),
		BrokerConfigs: func() []config.Def {
			return []config.Def{
				{Name: "log.retention.ms", Type: config.TypeLong, Default: "3600000", Doc: "retention"},
				{Name: "num.partitions", Type: config.TypeInt, Default: "2", Doc: "partitions"},
			}
		},
		MaxRequestBytes: 1 << 20,
	}
	if mod != nil {
		mod(&opts)
	}
	srv := NewServer(opts)
	done := make(chan error, 1)
	go func() { done <- srv.ServeListener(context.Background(), ln, l) }()
	t.Cleanup(func() {
		_ = srv.Close()
		if err := <-done; err != nil && !errors.Is(err, ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	return &testBroker{addr: ln.Addr().String(), log: fl, srv: srv}
}

func newClient(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestProduceConsumeAutoCreate(t *testing.T) {
	b := startServer(t, nil)
	ctx := testCtx(t)
	prod := newClient(t, b.addr, kgo.AllowAutoTopicCreation(), kgo.DefaultProduceTopic("auto"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	cons := newClient(t, b.addr, kgo.ConsumeTopics("auto"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(2*time.Second))

	const n = 50
	for i := 0; i < n; i++ {
		r := &kgo.Record{Value: []byte(strconv.Itoa(i)), Partition: int32(i % 2)}
		if err := prod.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
		if want := int64(i / 2); r.Offset != want {
			t.Fatalf("record %d offset %d, want %d", i, r.Offset, want)
		}
	}
	ti, ok := b.log.Topic("auto")
	if !ok || ti.Partitions != 2 {
		t.Fatalf("auto-created topic = %+v, %v", ti, ok)
	}
	got := map[int32][]string{}
	total := 0
	for total < n {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d: %v", total, n, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			got[r.Partition] = append(got[r.Partition], string(r.Value))
			total++
		})
	}
	for p := int32(0); p < 2; p++ {
		for i, v := range got[p] {
			if want := strconv.Itoa(i*2 + int(p)); v != want {
				t.Fatalf("partition %d record %d = %s, want %s", p, i, v, want)
			}
		}
	}

	// Long poll: a consumer waiting at the end is woken by a new record.
	done := make(chan string, 1)
	go func() {
		for {
			fs := cons.PollFetches(ctx)
			if ctx.Err() != nil {
				done <- ""
				return
			}
			var v string
			fs.EachRecord(func(r *kgo.Record) { v = string(r.Value) })
			if v != "" {
				done <- v
				return
			}
		}
	}()
	if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte("late"), Partition: 1}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if v := <-done; v != "late" {
		t.Fatalf("long poll got %q", v)
	}
}

func TestAdminAPIs(t *testing.T) {
	b := startServer(t, nil)
	ctx := testCtx(t)
	adm := kadm.NewClient(newClient(t, b.addr))

	// Create: good, duplicate, bad config, bad replication factor.
	resp, err := adm.CreateTopics(ctx, 3, 1, map[string]*string{"retention.ms": kadm.StringPtr("1000")}, "t1")
	if err != nil || resp["t1"].Err != nil {
		t.Fatalf("create: %v %v", err, resp["t1"].Err)
	}
	if resp["t1"].ID == (kadm.TopicID{}) {
		t.Fatal("no topic id")
	}
	if r, _ := adm.CreateTopics(ctx, 3, 1, nil, "t1"); !errors.Is(r["t1"].Err, kerr.TopicAlreadyExists) {
		t.Fatalf("duplicate: %v", r["t1"].Err)
	}
	if r, _ := adm.CreateTopics(ctx, 1, 1, map[string]*string{"retention.ms": kadm.StringPtr("soon")}, "t2"); !errors.Is(r["t2"].Err, kerr.InvalidConfig) {
		t.Fatalf("bad config: %v", r["t2"].Err)
	}
	if r, _ := adm.CreateTopics(ctx, 1, 3, nil, "t3"); !errors.Is(r["t3"].Err, kerr.InvalidReplicationFactor) {
		t.Fatalf("rf 3 on one broker: %v", r["t3"].Err)
	}
	if r, _ := adm.ValidateCreateTopics(ctx, 1, 1, nil, "t4"); r["t4"].Err != nil {
		t.Fatalf("validate only: %v", r["t4"].Err)
	}
	if _, ok := b.log.Topic("t4"); ok {
		t.Fatal("validate-only created a topic")
	}
	if r, _ := adm.CreateTopics(ctx, 1, 1, nil, "bad/name"); !errors.Is(r["bad/name"].Err, kerr.InvalidTopicException) {
		t.Fatalf("bad name: %v", r["bad/name"].Err)
	}

	// Describe configs: override and default with broker synonym.
	rcs, err := adm.DescribeTopicConfigs(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On("t1", nil)
	if err != nil || rc.Err != nil {
		t.Fatal(err, rc.Err)
	}
	vals := map[string]kadm.Config{}
	for _, c := range rc.Configs {
		vals[c.Key] = c
	}
	if c := vals["retention.ms"]; c.MaybeValue() != "1000" || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
		t.Fatalf("retention.ms = %+v", c)
	}
	if c := vals["cleanup.policy"]; c.MaybeValue() != "delete" || c.Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("cleanup.policy = %+v", c)
	}

	// Incremental alter: APPEND to a list, SET, DELETE, bad value.
	ar, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{
		{Op: kadm.AppendConfig, Name: "cleanup.policy", Value: kadm.StringPtr("compact")},
		{Op: kadm.SetConfig, Name: "segment.bytes", Value: kadm.StringPtr("1048576")},
		{Op: kadm.DeleteConfig, Name: "retention.ms"},
	}, "t1")
	if err != nil || ar[0].Err != nil {
		t.Fatalf("alter: %v %v", err, ar)
	}
	ti, _ := b.log.Topic("t1")
	if ti.Configs["cleanup.policy"] != "delete,compact" || ti.Configs["segment.bytes"] != "1048576" || ti.Configs["retention.ms"] != "" {
		t.Fatalf("configs after alter = %v", ti.Configs)
	}
	ar, _ = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SubtractConfig, Name: "cleanup.policy", Value: kadm.StringPtr("delete")}}, "t1")
	if ar[0].Err != nil {
		t.Fatal(ar[0].Err)
	}
	if ti, _ = b.log.Topic("t1"); ti.Configs["cleanup.policy"] != "compact" {
		t.Fatalf("after subtract: %v", ti.Configs)
	}
	ar, _ = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.AppendConfig, Name: "retention.ms", Value: kadm.StringPtr("5")}}, "t1")
	if !errors.Is(ar[0].Err, kerr.InvalidConfig) {
		t.Fatalf("append to non-list: %v", ar[0].Err)
	}
	ar, _ = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "no.such", Value: kadm.StringPtr("5")}}, "t1")
	if !errors.Is(ar[0].Err, kerr.InvalidConfig) {
		t.Fatalf("unknown config: %v", ar[0].Err)
	}
	// Non-incremental alter replaces all overrides.
	ar, err = adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "retention.ms", Value: kadm.StringPtr("77")}}, "t1")
	if err != nil || ar[0].Err != nil {
		t.Fatalf("alter state: %v %v", err, ar)
	}
	if ti, _ = b.log.Topic("t1"); len(ti.Configs) != 1 || ti.Configs["retention.ms"] != "77" {
		t.Fatalf("after replace: %v", ti.Configs)
	}

	// Broker configs are described and read-only.
	bcs, err := adm.DescribeBrokerConfigs(ctx, 1)
	if err != nil || len(bcs) != 1 || len(bcs[0].Configs) != 2 {
		t.Fatalf("broker configs: %v %+v", err, bcs)
	}
	bar, _ := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "num.partitions", Value: kadm.StringPtr("3")}}, 1)
	if len(bar) != 1 || !errors.Is(bar[0].Err, kerr.InvalidConfig) {
		t.Fatalf("alter broker config: %+v", bar)
	}

	// Produce some records, then list offsets and delete records.
	cl := newClient(t, b.addr, kgo.DefaultProduceTopic("t1"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for i := 0; i < 10; i++ {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("v"), Partition: 0}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	ends, err := adm.ListEndOffsets(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := ends.Lookup("t1", 0); o.Offset != 10 || o.Err != nil {
		t.Fatalf("end offset = %+v", o)
	}
	dr, err := adm.DeleteRecords(ctx, kadm.Offsets{"t1": {0: {Topic: "t1", Partition: 0, At: 4}}})
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := dr.Lookup("t1", 0); d.Err != nil || d.LowWatermark != 4 {
		t.Fatalf("delete records = %+v", d)
	}
	starts, err := adm.ListStartOffsets(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := starts.Lookup("t1", 0); o.Offset != 4 {
		t.Fatalf("start offset = %+v", o)
	}
	if b.log.syncReads == 0 {
		t.Fatal("ListOffsets did not sync the log")
	}

	// Partitions, log dirs, cluster, delete by name.
	cp, err := adm.CreatePartitions(ctx, 2, "t1")
	if err != nil || cp["t1"].Err != nil {
		t.Fatalf("create partitions: %v %+v", err, cp)
	}
	if ti, _ = b.log.Topic("t1"); ti.Partitions != 5 {
		t.Fatalf("partitions = %d", ti.Partitions)
	}
	dirs, err := adm.DescribeAllLogDirs(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var size int64
	dirs.Each(func(d kadm.DescribedLogDir) {
		d.Topics.Each(func(p kadm.DescribedLogDirPartition) { size += p.Size })
	})
	if size == 0 {
		t.Fatal("log dirs report no size")
	}
	meta, err := adm.BrokerMetadata(ctx)
	if err != nil || meta.Cluster != "fake-cluster" || len(meta.Brokers) != 1 {
		t.Fatalf("cluster: %v %+v", err, meta)
	}
	del, err := adm.DeleteTopics(ctx, "t1", "missing")
	if err != nil {
		t.Fatal(err)
	}
	if del["t1"].Err != nil || !errors.Is(del["missing"].Err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("delete: %+v", del)
	}
}

// rawConn speaks the wire protocol directly.
type rawConn struct {
	t *testing.T
	net.Conn
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawConn{t, c}
}

func (r *rawConn) send(frame []byte) {
	r.t.Helper()
	if _, err := r.Write(frame); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rawConn) sendReq(req kmsg.Request, corr int32) {
	r.t.Helper()
	var b []byte
	b = binary.BigEndian.AppendUint16(b, uint16(req.Key()))
	b = binary.BigEndian.AppendUint16(b, uint16(req.GetVersion()))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	b = binary.BigEndian.AppendUint16(b, 4)
	b = append(b, "test"...)
	if req.IsFlexible() {
		b = append(b, 0)
	}
	b = req.AppendTo(b)
	r.send(append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...))
}

// recv reads one response frame and returns correlation id and the rest.
func (r *rawConn) recv() (int32, []byte, error) {
	var sz [4]byte
	if _, err := io.ReadFull(r, sz[:]); err != nil {
		return 0, nil, err
	}
	buf := make([]byte, binary.BigEndian.Uint32(sz[:]))
	if _, err := io.ReadFull(r, buf); err != nil {
		return 0, nil, err
	}
	return int32(binary.BigEndian.Uint32(buf)), buf[4:], nil
}

func (r *rawConn) expectClosed() {
	r.t.Helper()
	if _, _, err := r.recv(); err == nil {
		r.t.Fatal("connection still open, want closed")
	}
}

func metadataReq(v int16) *kmsg.MetadataRequest {
	m := kmsg.NewPtrMetadataRequest()
	m.SetVersion(v)
	return m
}

func TestBadInputClosesOnlyThatConnection(t *testing.T) {
	b := startServer(t, nil)
	hdr := func(key, ver int16) []byte {
		var h []byte
		h = binary.BigEndian.AppendUint16(h, uint16(key))
		h = binary.BigEndian.AppendUint16(h, uint16(ver))
		h = binary.BigEndian.AppendUint32(h, 1)
		return binary.BigEndian.AppendUint16(h, 0xffff)
	}
	framed := func(b []byte) []byte { return append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...) }
	tests := []struct {
		name  string
		frame []byte
	}{
		{"garbage", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")},
		{"oversized", binary.BigEndian.AppendUint32(nil, 1<<30)},
		{"negative size", []byte{0x80, 0, 0, 0}},
		{"truncated header", framed([]byte{0, 3, 0})},
		{"unknown api key", framed(hdr(9999, 0))},
		{"known key not served", framed(hdr(4, 0))},
		{"unsupported metadata version", framed(hdr(3, 99))},
		{"truncated body", framed(append(hdr(3, 4), 0, 0, 0, 5))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dialRaw(t, b.addr)
			c.send(tt.frame)
			c.expectClosed()
			// Another connection still works.
			ok := dialRaw(t, b.addr)
			ok.sendReq(metadataReq(1), 5)
			corr, body, err := ok.recv()
			if err != nil || corr != 5 {
				t.Fatalf("healthy connection: %v corr %d", err, corr)
			}
			m := kmsg.NewPtrMetadataResponse()
			m.SetVersion(1)
			if err := m.ReadFrom(body); err != nil || len(m.Brokers) != 1 {
				t.Fatalf("metadata: %v %+v", err, m)
			}
		})
	}
}

func TestApiVersionsUnsupportedVersion(t *testing.T) {
	b := startServer(t, nil)
	c := dialRaw(t, b.addr)
	// Version 99 of ApiVersions, flexible header, empty body.
	var h []byte
	h = binary.BigEndian.AppendUint16(h, 18)
	h = binary.BigEndian.AppendUint16(h, 99)
	h = binary.BigEndian.AppendUint32(h, 77)
	h = binary.BigEndian.AppendUint16(h, 0xffff)
	h = append(h, 0, 0)
	c.send(append(binary.BigEndian.AppendUint32(nil, uint32(len(h))), h...))
	corr, body, err := c.recv()
	if err != nil || corr != 77 {
		t.Fatalf("recv: %v corr %d", err, corr)
	}
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.SetVersion(0)
	if err := resp.ReadFrom(body); err != nil {
		t.Fatal(err)
	}
	// KIP-511, as Kafka: only ApiVersions' range, so the client retries
	// with a version it then fills in (software name and version).
	if resp.ErrorCode != kerr.UnsupportedVersion.Code || len(resp.ApiKeys) != 1 || resp.ApiKeys[0].ApiKey != 18 || resp.ApiKeys[0].MaxVersion != 4 {
		t.Fatalf("response = %+v", resp)
	}
	// The connection stays usable: a v3 request now works, header v0.
	req := kmsg.NewPtrApiVersionsRequest()
	req.SetVersion(3)
	req.ClientSoftwareName, req.ClientSoftwareVersion = "test", "1.0"
	c.sendReq(req, 78)
	corr, body, err = c.recv()
	if err != nil || corr != 78 {
		t.Fatalf("recv: %v corr %d", err, corr)
	}
	resp = kmsg.NewPtrApiVersionsResponse()
	resp.SetVersion(3)
	if err := resp.ReadFrom(body); err != nil || resp.ErrorCode != 0 {
		t.Fatalf("v3: %v %+v", err, resp)
	}
	// Advertised == served.
	for _, k := range resp.ApiKeys {
		a, ok := b.srv.apis[k.ApiKey]
		if !ok || a.min != k.MinVersion || a.max != k.MaxVersion {
			t.Fatalf("advertised %+v not in dispatch table", k)
		}
		if max := kmsg.RequestForKey(k.ApiKey).MaxVersion(); k.MaxVersion > max {
			t.Fatalf("key %d advertised v%d beyond kmsg v%d", k.ApiKey, k.MaxVersion, max)
		}
	}
	if len(resp.ApiKeys) != len(b.srv.apis) {
		t.Fatalf("advertised %d keys, serve %d", len(resp.ApiKeys), len(b.srv.apis))
	}
}

func TestAcksZeroNoResponseAndOrder(t *testing.T) {
	b := startServer(t, nil)
	if _, err := b.log.CreateTopic(context.Background(), "z", 1, nil, false); err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, b.addr)
	p := kmsg.NewPtrProduceRequest()
	p.SetVersion(7)
	p.Acks = 0
	p.TimeoutMillis = 1000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "z"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = oneBatch()
	rt.Partitions = append(rt.Partitions, rp)
	p.Topics = append(p.Topics, rt)
	c.sendReq(p, 1)
	c.sendReq(metadataReq(1), 2)
	corr, _, err := c.recv()
	if err != nil || corr != 2 {
		t.Fatalf("first response corr %d err %v, want metadata's 2", corr, err)
	}
	if st, _ := b.log.State("z", 0); st.HighWatermark != 1 {
		t.Fatalf("acks=0 record not written: %+v", st)
	}
	// Bad acks value gets INVALID_REQUIRED_ACKS.
	p.Acks = 2
	c.sendReq(p, 3)
	corr, body, err := c.recv()
	if err != nil || corr != 3 {
		t.Fatal(err, corr)
	}
	pr := kmsg.NewPtrProduceResponse()
	pr.SetVersion(7)
	if err := pr.ReadFrom(body); err != nil || pr.Topics[0].Partitions[0].ErrorCode != kerr.InvalidRequiredAcks.Code {
		t.Fatalf("bad acks: %v %+v", err, pr)
	}
}

// oneBatch builds a valid one-record magic-2 batch with the client library.
func oneBatch() []byte {
	rec := kmsg.NewRecord()
	rec.Value = []byte("x")
	recBytes := rec.AppendTo(nil)
	b := kmsg.NewRecordBatch()
	b.Magic = 2
	b.NumRecords = 1
	b.ProducerID, b.ProducerEpoch, b.FirstSequence = -1, -1, -1
	b.Records = recBytes
	b.Length = int32(len(b.AppendTo(nil)) - 12)
	return b.AppendTo(nil)
}

func TestFetchSessions(t *testing.T) {
	b := startServer(t, nil)
	ti, err := b.log.CreateTopic(context.Background(), "s", 2, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, b.addr)
	fetch := func(corr, session, epoch int32, parts []int32, forget []int32) *kmsg.FetchResponse {
		t.Helper()
		f := kmsg.NewPtrFetchRequest()
		f.SetVersion(13)
		f.MaxBytes, f.MinBytes, f.MaxWaitMillis = 1<<20, 0, 0
		f.SessionID, f.SessionEpoch = session, epoch
		if len(parts) > 0 {
			ft := kmsg.NewFetchRequestTopic()
			ft.TopicID = ti.ID
			for _, p := range parts {
				fp := kmsg.NewFetchRequestTopicPartition()
				fp.Partition, fp.FetchOffset, fp.PartitionMaxBytes = p, 0, 1<<20
				ft.Partitions = append(ft.Partitions, fp)
			}
			f.Topics = append(f.Topics, ft)
		}
		if len(forget) > 0 {
			fg := kmsg.NewFetchRequestForgottenTopic()
			fg.TopicID, fg.Partitions = ti.ID, forget
			f.ForgottenTopics = append(f.ForgottenTopics, fg)
		}
		c.sendReq(f, corr)
		got, body, err := c.recv()
		if err != nil || got != corr {
			t.Fatalf("recv: %v corr %d", err, got)
		}
		body = body[1:] // flexible response header: empty tag section
		r := kmsg.NewPtrFetchResponse()
		r.SetVersion(13)
		if err := r.ReadFrom(body); err != nil {
			t.Fatal(err)
		}
		return r
	}
	count := func(r *kmsg.FetchResponse) int {
		n := 0
		for _, t := range r.Topics {
			n += len(t.Partitions)
		}
		return n
	}
	full := fetch(1, 0, 0, []int32{0, 1}, nil)
	if full.SessionID == 0 || count(full) != 2 {
		t.Fatalf("full fetch: session %d, %d partitions", full.SessionID, count(full))
	}
	sid := full.SessionID
	if r := fetch(2, sid, 1, nil, nil); r.ErrorCode != 0 || count(r) != 0 {
		t.Fatalf("unchanged incremental: err %d, %d partitions", r.ErrorCode, count(r))
	}
	b.log.Produce(context.Background(), []ProduceBatch{{Topic: "s", Partition: 1, Records: oneBatch()}})
	r := fetch(3, sid, 2, nil, nil)
	if count(r) != 1 || r.Topics[0].Partitions[0].Partition != 1 || len(r.Topics[0].Partitions[0].RecordBatches) == 0 {
		t.Fatalf("incremental after produce: %+v", r.Topics)
	}
	if r := fetch(4, sid, 2, nil, nil); r.ErrorCode != kerr.InvalidFetchSessionEpoch.Code {
		t.Fatalf("stale epoch: %d", r.ErrorCode)
	}
	if r := fetch(5, sid+100, 1, nil, nil); r.ErrorCode != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("unknown session: %d", r.ErrorCode)
	}
	// Forget partition 1: a new record there is no longer reported.
	fetch(6, sid, 3, nil, []int32{1})
	b.log.Produce(context.Background(), []ProduceBatch{{Topic: "s", Partition: 1, Records: oneBatch()}})
	if r := fetch(7, sid, 4, nil, nil); count(r) != 0 {
		t.Fatalf("forgotten partition reported: %+v", r.Topics)
	}
	// Out of range, after one SyncRead.
	before := b.log.syncReads
	f := kmsg.NewPtrFetchRequest()
	f.SetVersion(12)
	f.SessionEpoch = -1
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "s"
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.FetchOffset, fp.PartitionMaxBytes = 50, 1000
	ft.Partitions = append(ft.Partitions, fp)
	f.Topics = append(f.Topics, ft)
	c.sendReq(f, 8)
	_, body, err := c.recv()
	if err != nil {
		t.Fatal(err)
	}
	body = body[1:] // flexible response header
	fr := kmsg.NewPtrFetchResponse()
	fr.SetVersion(12)
	if err := fr.ReadFrom(body); err != nil || fr.Topics[0].Partitions[0].ErrorCode != kerr.OffsetOutOfRange.Code {
		t.Fatalf("out of range: %v %+v", err, fr)
	}
	if b.log.syncReads != before+1 {
		t.Fatalf("sync reads %d -> %d, want one", before, b.log.syncReads)
	}
}

func TestSessionCacheEviction(t *testing.T) {
	c := newSessionCache(2)
	a := c.create(nil)
	b := c.create(nil)
	if _, code := c.update(a, 1, nil, nil); code != 0 { // a is now most recent
		t.Fatal(code)
	}
	c.create(nil) // evicts b
	if c.len() != 2 {
		t.Fatalf("len = %d", c.len())
	}
	if _, code := c.update(b, 1, nil, nil); code != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("evicted session: %d", code)
	}
	if _, code := c.update(a, 2, nil, nil); code != 0 {
		t.Fatalf("kept session: %d", code)
	}
}

func TestFindCoordinatorAndTransactionBasics(t *testing.T) {
	b := startServer(t, nil)
	ctx := testCtx(t)
	cl := newClient(t, b.addr)
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.CoordinatorKeys = []string{"g1", "g2"}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil || len(resp.Coordinators) != 2 || resp.Coordinators[0].NodeID != 1 || resp.Coordinators[0].ErrorCode != 0 {
		t.Fatalf("find coordinator: %v %+v", err, resp)
	}
	// Any live broker fronts a transaction; an empty id is invalid.
	req = kmsg.NewPtrFindCoordinatorRequest()
	req.CoordinatorType = 1
	req.CoordinatorKeys = []string{"tx", ""}
	resp, err = req.RequestWith(ctx, cl)
	if err != nil || len(resp.Coordinators) != 2 {
		t.Fatalf("find transaction coordinator: %v %+v", err, resp)
	}
	for _, c := range resp.Coordinators {
		if (c.Key == "tx" && (c.NodeID != 1 || c.ErrorCode != 0)) || (c.Key == "" && c.ErrorCode != kerr.InvalidRequest.Code) {
			t.Fatalf("find transaction coordinator %q: %+v", c.Key, c)
		}
	}
	ip := kmsg.NewPtrInitProducerIDRequest()
	ip.TransactionalID = kmsg.StringPtr("")
	ip.TransactionTimeoutMillis = 1000
	raw, err := cl.Broker(1).Request(ctx, ip) // straight to the broker: no coordinator lookup
	ipr, _ := raw.(*kmsg.InitProducerIDResponse)
	if err != nil || ipr.ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("init with an empty transactional id: %v %+v", err, ipr)
	}
	ip = kmsg.NewPtrInitProducerIDRequest()
	ipr, err = ip.RequestWith(ctx, cl)
	if err != nil || ipr.ErrorCode != 0 || ipr.ProducerID < 0 {
		t.Fatalf("idempotent init: %v %+v", err, ipr)
	}
	// Transactions V2 is advertised as a finalized feature.
	av, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, cl)
	if err != nil || len(av.FinalizedFeatures) != 1 || av.FinalizedFeatures[0].Name != "transaction.version" || av.FinalizedFeatures[0].MaxVersionLevel != 2 {
		t.Fatalf("ApiVersions features: %v %+v", err, av.FinalizedFeatures)
	}
}

func TestCloseStopsConnections(t *testing.T) {
	b := startServer(t, nil)
	c := dialRaw(t, b.addr)
	c.sendReq(metadataReq(1), 1)
	if _, _, err := c.recv(); err != nil {
		t.Fatal(err)
	}
	if err := b.srv.Close(); err != nil {
		t.Fatal(err)
	}
	c.expectClosed()
}

// librdkafka rejects a null records field ("invalid MessageSetSize -1"):
// an empty partition must carry zero-length records in Fetch v4-v11.
func TestEmptyFetchEncodesEmptyRecords(t *testing.T) {
	b := startServer(t, nil)
	if _, err := b.log.CreateTopic(context.Background(), "empty", 1, nil, false); err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, b.addr)
	f := kmsg.NewPtrFetchRequest()
	f.SetVersion(11)
	f.MaxBytes, f.MinBytes, f.MaxWaitMillis = 1<<20, 0, 0
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "empty"
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.Partition, fp.FetchOffset, fp.PartitionMaxBytes = 0, 0, 1<<20
	ft.Partitions = append(ft.Partitions, fp)
	f.Topics = append(f.Topics, ft)
	c.sendReq(f, 7)
	_, body, err := c.recv()
	if err != nil {
		t.Fatal(err)
	}
	resp := kmsg.NewPtrFetchResponse()
	resp.SetVersion(11)
	if err := resp.ReadFrom(body); err != nil {
		t.Fatal(err)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("unexpected response shape: %+v", resp)
	}
	if p := resp.Topics[0].Partitions[0]; p.ErrorCode != 0 || p.RecordBatches == nil {
		t.Fatalf("partition error %d, records nil=%v: want no error and an empty, non-null records field", p.ErrorCode, p.RecordBatches == nil)
	}
}
