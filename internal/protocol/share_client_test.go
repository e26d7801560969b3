package protocol

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// assigningShareGroups is a one-member share coordinator: every member is
// assigned every partition of the topics it subscribes to.
type assigningShareGroups struct {
	fakeShareGroups
	log *fakeLog

	mu     sync.Mutex
	topics []string
	epochs map[string]int32
}

func (g *assigningShareGroups) ShareGroupHeartbeat(_ context.Context, r *kmsg.ShareGroupHeartbeatRequest) *kmsg.ShareGroupHeartbeatResponse {
	g.mu.Lock()
	defer g.mu.Unlock()
	resp := r.ResponseKind().(*kmsg.ShareGroupHeartbeatResponse)
	resp.MemberID, resp.HeartbeatIntervalMillis = strp(r.MemberID), 200
	if r.MemberEpoch == -1 {
		resp.MemberEpoch = -1
		return resp
	}
	if g.epochs == nil {
		g.epochs = map[string]int32{}
	}
	if r.SubscribedTopicNames != nil {
		g.topics = r.SubscribedTopicNames
	}
	g.epochs[r.MemberID]++
	resp.MemberEpoch = g.epochs[r.MemberID]
	a := kmsg.NewShareGroupHeartbeatResponseAssignment()
	for _, name := range g.topics {
		ti, ok := g.log.Topic(name)
		if !ok {
			continue
		}
		tp := kmsg.NewShareGroupHeartbeatResponseAssignmentTopicPartition()
		tp.TopicID = ti.ID
		for p := int32(0); p < ti.Partitions; p++ {
			tp.Partitions = append(tp.Partitions, p)
		}
		a.TopicPartitions = append(a.TopicPartitions, tp)
	}
	resp.Assignment = &a
	return resp
}

// TestShareGroupClientConsumes runs franz-go's share consumer against the
// handlers: it must find ShareFetch and ShareAcknowledge v2 advertised,
// open and advance a share session, receive every record once, and on
// close acknowledge what it polled and end its session.
func TestShareGroupClientConsumes(t *testing.T) {
	var sg *assigningShareGroups
	b := startShare(t, func(o *Options) {
		sg = &assigningShareGroups{log: o.Log.(*fakeLog)}
		o.ShareGroups = sg
	})
	ctx := testCtx(t)
	const n = 20
	prod := newClient(t, b.addr, kgo.DefaultProduceTopic("q"))
	for i := 0; i < n; i++ {
		if err := prod.ProduceSync(ctx, kgo.StringRecord(fmt.Sprint(i))).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	// Three records a fetch: many fetches on one session, each at the next
	// epoch; the logger catches any top-level error the client met.
	logs := &errLogger{}
	cons, err := kgo.NewClient(kgo.SeedBrokers(b.addr), kgo.ShareGroup("g"), kgo.ConsumeTopics("q"),
		kgo.FetchMaxWait(500*time.Millisecond), kgo.ShareMaxRecords(3), kgo.ShareMaxRecordsStrict(), kgo.WithLogger(logs))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for len(seen) < n {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("got %d of %d records", len(seen), n)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Errorf("%s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			seen[string(r.Value)]++
			r.Ack(kgo.AckAccept)
		})
	}
	cons.Close() // flushes the acknowledgements and ends the session
	for v, c := range seen {
		if c != 1 {
			t.Errorf("record %s delivered %d times", v, c)
		}
	}
	for p := int32(0); p < 2; p++ {
		b.log.mu.Lock()
		hwm := b.log.topics["q"].parts[p].hwm
		b.log.mu.Unlock()
		for o := int64(0); o < hwm; o++ {
			if m, done := b.shares.holder(b.key(p), o); !done {
				t.Errorf("partition %d offset %d not accepted (held by %q)", p, o, m)
			}
		}
	}
	if n := b.srv.shareSessions.len(); n != 0 {
		t.Errorf("%d share sessions left after the consumer closed", n)
	}
	if msgs := logs.errors(); len(msgs) > 0 {
		t.Errorf("the client logged errors: %v", msgs)
	}
}

// errLogger keeps what a client logs about failed share requests.
type errLogger struct {
	mu   sync.Mutex
	msgs []string
}

func (l *errLogger) Level() kgo.LogLevel { return kgo.LogLevelInfo }

func (l *errLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	if level > kgo.LogLevelWarn && !strings.Contains(msg, "error") && !strings.Contains(msg, "reset") {
		return
	}
	l.mu.Lock()
	l.msgs = append(l.msgs, fmt.Sprint(msg, keyvals))
	l.mu.Unlock()
}

func (l *errLogger) errors() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.msgs
}
