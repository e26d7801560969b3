package stream

import (
	"context"
	"encoding/json"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// waitDigestChecks waits until e has compared n checkpoint digests.
func waitDigestChecks(t *testing.T, e *Engine, n float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for testutil.ToFloat64(e.m.digestChecks) < n {
		if time.Now().After(deadline) {
			t.Fatalf("broker %d compared %v checkpoint digests, want %v", e.opts.BrokerID, testutil.ToFloat64(e.m.digestChecks), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestDigestMismatchRaisesAlarm: a broker whose state differs from the
// checkpointer's at a checkpoint's mark counts a mismatch; the
// checkpointer, whose state is its own, does not.
func TestDigestMismatchRaisesAlarm(t *testing.T) {
	v := newEnv(t)
	a := v.open(t)
	o := v.opts
	o.BrokerID = 2
	b := v.openWith(t, o)
	mustCreate(t, a, "t", 2, nil)
	for i := range 4 {
		if r := produce(t, a, "t", int32(i%2), makeBatch(-1, -1, -1, 2, int64(1000+i), CodecNone)); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	if err := b.SyncRead(context.Background()); err != nil {
		t.Fatal(err)
	}
	// b's sequencer goes wrong: one partition's high watermark drifts.
	b.mu.Lock()
	for _, tp := range b.st.Topics {
		tp.Parts[1].Next++
	}
	b.mu.Unlock()
	if _, err := a.Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitDigestChecks(t, a, 1)
	waitDigestChecks(t, b, 1)
	if n := testutil.ToFloat64(b.m.digestMismatches); n != 1 {
		t.Fatalf("the diverged broker counted %v digest mismatches, want 1", n)
	}
	if n := testutil.ToFloat64(a.m.digestMismatches); n != 0 {
		t.Fatalf("the checkpointer counted %v digest mismatches, want 0", n)
	}
}

// TestDigestsAgree: in normal operation (a watching broker, a broker
// started from a checkpoint, transactions, archival, retention and garbage
// collection between checkpoints) every broker's digest matches.
func TestDigestsAgree(t *testing.T) {
	v := newEnv(t)
	a := v.open(t)
	o := v.opts
	o.BrokerID = 2
	b := v.openWith(t, o)
	ctx := context.Background()
	ti := mustCreate(t, a, "t", 3, nil)
	pid, ep, err := a.InitProducerID(ctx, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 9 {
		if r := produce(t, b, "t", int32(i%3), makeBatch(pid, ep, int32(i/3*2), 2, int64(1000+i), CodecNone)); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	if _, err := a.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	o.BrokerID = 3
	c := v.openWith(t, o) // starts from the checkpoint
	if err := a.ArchiveAll(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := a.DeleteRecords(ctx, "t", 0, 2); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if r := produce(t, c, "t", int32(i), makeBatch(-1, -1, -1, 1, int64(5000+i), CodecNone)); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	if err := a.CollectGarbage(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	for _, e := range []*Engine{a, b} {
		waitDigestChecks(t, e, 2)
	}
	waitDigestChecks(t, c, 1)
	for _, e := range []*Engine{a, b, c} {
		if n := testutil.ToFloat64(e.m.digestMismatches); n != 0 {
			t.Fatalf("broker %d counted %v digest mismatches", e.opts.BrokerID, n)
		}
	}
	_ = ti
}

// TestOpenRefusesWrongDigest: a checkpoint whose state does not match the
// digest its pointer carries is refused at start-up, and every truncation
// of a version 3 checkpoint fails to decode.
func TestOpenRefusesWrongDigest(t *testing.T) {
	v := newEnv(t)
	a := v.open(t)
	mustCreate(t, a, "t", 1, nil)
	if r := produce(t, a, "t", 0, makeBatch(-1, -1, -1, 2, 1000, CodecNone)); r.Err != nil {
		t.Fatal(r.Err)
	}
	ctx := context.Background()
	if _, err := a.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	resp, err := v.cli.Get(ctx, a.ptrKey)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := decodePointer(resp.Kvs[0].Value)
	data, err := v.store.Get(ctx, p.Object)
	if err != nil {
		t.Fatal(err)
	}
	for n := 1; n < len(data); n++ {
		if n < len(data)-64 && n%7 != 0 {
			continue // every cut near the end, where a clean stream boundary is likeliest; a sample before
		}
		if _, err := decodeState(data[:n]); err == nil {
			t.Fatalf("checkpoint cut to %d of %d bytes decoded", n, len(data))
		}
	}
	p.Digest++
	val, _ := json.Marshal(p)
	if _, err := v.cli.Put(ctx, a.ptrKey, string(val)); err != nil {
		t.Fatal(err)
	}
	if c, err := Open(ctx, withClient(v.opts, v.cli, v.store)); err == nil {
		c.Close()
		t.Fatal("opened a checkpoint whose digest differs from its pointer's")
	} else if !strings.Contains(err.Error(), "digest") {
		t.Fatalf("open: %v", err)
	}
}

// TestDigestCoversEveryField: the digest must cover every field of the
// state; a field added to any of these types needs a line in digest.go and
// here.
func TestDigestCoversEveryField(t *testing.T) {
	want := map[string]string{
		"state":            "BrokerClocks ByName Clock Entries Garbage LastExpiry ObjRefs ProducerSeen Producers Rev Topics TxnByPID TxnOffsets Txns",
		"brokerClock":      "At Off",
		"topicState":       "Configs CreatedRev ID Name Parts",
		"partState":        "Aborted Bytes Epoch Extents LogStart Next Open Producers",
		"extent":           "Base Ctl Last Len MaxTS Obj Pos Segment",
		"ctlMarker":        "Commit Epoch ProducerID",
		"prodState":        "Epoch LastSeen Recent",
		"seqRange":         "Base Count First Last",
		"abortedTxn":       "First Last ProducerID",
		"garbageObj":       "Clock Obj Rev",
		"txnState":         "Epoch Groups ID LastSeen Offsets Parts Phase PrevEpoch PrevProducerID ProducerID Started TimeoutMs",
		"TxnPartition":     "Partition Topic",
		"TxnOffset":        "LeaderEpoch Metadata Offset Partition Topic",
		"committedOffsets": "Group Offsets Rev",
	}
	for _, v := range []any{state{}, brokerClock{}, topicState{}, partState{}, extent{}, ctlMarker{}, prodState{}, seqRange{}, abortedTxn{}, garbageObj{}, txnState{}, TxnPartition{}, TxnOffset{}, committedOffsets{}} {
		rt := reflect.TypeOf(v)
		var names []string
		for i := range rt.NumField() {
			// Unexported fields are limits set by code, not state derived
			// from the log (gob does not encode them either).
			if rt.Field(i).IsExported() {
				names = append(names, rt.Field(i).Name)
			}
		}
		sort.Strings(names)
		if got := strings.Join(names, " "); got != want[rt.Name()] {
			t.Errorf("%s has fields %q; the digest covers %q", rt.Name(), got, want[rt.Name()])
		}
	}
	// Every field changes the digest.
	st := benchState(1)
	st.Garbage = st.Garbage[:3]
	d := st.digest()
	for name, mutate := range map[string]func(s *state){
		"clock":      func(s *state) { s.Clock++ },
		"extent pos": func(s *state) { s.Topics[firstTopic(s)].Parts[3].Extents[2].Pos++ },
		"config":     func(s *state) { s.Topics[firstTopic(s)].Configs["retention.ms"] = "1" },
		"producer":   func(s *state) { s.Producers[7] = 1 },
		"objrefs":    func(s *state) { s.ObjRefs["x"] = 1 },
		"garbage":    func(s *state) { s.Garbage[1].Clock++ },
		"open txn":   func(s *state) { s.Topics[firstTopic(s)].Parts[0].Open = map[int64]int64{1: 2} },
		"txn":        func(s *state) { s.Txns["x"] = &txnState{ID: "x"} },
		"broker clock": func(s *state) {
			s.BrokerClocks[3] = &brokerClock{Off: 1}
		},
	} {
		c := st.clone()
		mutate(c)
		if c.digest() == d {
			t.Errorf("%s: digest unchanged", name)
		}
	}
	if st.clone().digest() != d {
		t.Error("a clone has another digest")
	}
}

func firstTopic(s *state) TopicID {
	for id := range s.Topics {
		return id
	}
	return TopicID{}
}
