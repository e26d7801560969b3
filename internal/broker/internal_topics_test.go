package broker

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestInternalTopics checks Kafka's internal topics as clients see them:
// __consumer_offsets and __transaction_state appear in Metadata, flagged
// internal, once a group or transaction coordinator was looked up; other
// names starting with "__" are ordinary topics; producing to an internal
// topic is refused; offsets of one can be listed; and a KIP-848 regex
// subscription resolves against it, as Kafka's coordinator does.
func TestInternalTopics(t *testing.T) {
	env := newTestEnv(t, 60*time.Second, fastConsumerGroups, 1, "__private", "orders")
	ctx, cl := env.ctx, env.cl

	metadata := func() map[string]kmsg.MetadataResponseTopic {
		t.Helper()
		resp, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]kmsg.MetadataResponseTopic{}
		for _, mt := range resp.Topics {
			out[*mt.Topic] = mt
		}
		return out
	}
	findCoordinator := func(typ int8, key string) {
		t.Helper()
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.CoordinatorType, req.CoordinatorKeys = typ, []string{key}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil || len(resp.Coordinators) != 1 || resp.Coordinators[0].ErrorCode != 0 {
			t.Fatalf("FindCoordinator(type %d, %q): %v %+v", typ, key, err, resp)
		}
	}

	md := metadata()
	if mt, ok := md["__private"]; !ok || mt.IsInternal {
		t.Fatalf("__private: listed %v, internal %v; want an ordinary topic", ok, mt.IsInternal)
	}
	for _, name := range []string{"__consumer_offsets", "__transaction_state"} {
		if _, ok := md[name]; ok {
			t.Fatalf("%s is listed before any coordinator look-up", name)
		}
	}

	findCoordinator(0, "some-group")
	findCoordinator(1, "some-txn")
	md = metadata()
	for _, name := range []string{"__consumer_offsets", "__transaction_state"} {
		mt, ok := md[name]
		if !ok || !mt.IsInternal || len(mt.Partitions) != 50 {
			t.Fatalf("%s after FindCoordinator: listed %v, internal %v, %d partitions; want internal with 50",
				name, ok, mt.IsInternal, len(mt.Partitions))
		}
	}
	findCoordinator(0, "another-group") // the topic exists: nothing to do

	// Clients may not append to an internal topic.
	prod := kmsg.NewPtrProduceRequest()
	prod.Acks, prod.TimeoutMillis = -1, 5000
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic = "__consumer_offsets"
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Records = recordBatch(t, [][]byte{[]byte("v")})
	pt.Partitions = append(pt.Partitions, pp)
	prod.Topics = append(prod.Topics, pt)
	pr, err := prod.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if code := pr.Topics[0].Partitions[0].ErrorCode; code != kerr.InvalidTopicException.Code {
		t.Fatalf("produce to __consumer_offsets: %v, want INVALID_TOPIC_EXCEPTION", kerr.ErrorForCode(code))
	}

	// Tools list its offsets like any topic's.
	ends, err := env.admin.ListEndOffsets(ctx, "__consumer_offsets", "__transaction_state")
	if err != nil || ends.Error() != nil {
		t.Fatalf("ListEndOffsets: %v %v", err, ends.Error())
	}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset != 0 {
			t.Errorf("%s/%d end offset %d, want 0", o.Topic, o.Partition, o.Offset)
		}
	})

	// A KIP-848 member whose regex names the internal topic gets its
	// partitions, as from Kafka's coordinator.
	offsetsID := md["__consumer_offsets"].TopicID
	hb := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	hb.Version = 1
	hb.Group, hb.MemberID, hb.MemberEpoch = "regex-group", "member-1", 0
	hb.RebalanceTimeoutMillis = 30000
	hb.SubscribedTopicRegex = kmsg.StringPtr("__consumer_.*|orders")
	hb.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	var assigned map[[16]byte]int
	for {
		resp, err := hb.RequestWith(ctx, cl)
		if err != nil {
			t.Fatalf("ConsumerGroupHeartbeat: %v", err)
		}
		if resp.ErrorCode != 0 {
			t.Fatalf("ConsumerGroupHeartbeat: %v", kerr.ErrorForCode(resp.ErrorCode))
		}
		if resp.MemberID != nil {
			hb.MemberID = *resp.MemberID
		}
		hb.MemberEpoch = resp.MemberEpoch
		if resp.Assignment != nil { // sent only when it changed
			assigned = map[[16]byte]int{}
			for _, tp := range resp.Assignment.Topics {
				assigned[tp.TopicID] = len(tp.Partitions)
			}
		}
		if assigned[offsetsID] == 50 && assigned[md["orders"].TopicID] == 1 && len(assigned) == 2 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("regex member never assigned __consumer_offsets and orders; last assignment %v", assigned)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
