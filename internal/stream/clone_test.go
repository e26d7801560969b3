package stream

import "testing"

// A checkpoint is encoded from a clone taken under the lock; the clone must
// equal the state and share nothing the sequencer goes on mutating.
func TestCloneIsDeepAndEqual(t *testing.T) {
	st, rev, _ := fuzzPrelude(t)
	c := st.clone()
	before := dumpState(st, nil)
	if got := dumpState(c, nil); got != before {
		t.Fatalf("clone differs:\n%s\nwant:\n%s", got, before)
	}
	// Mutate the original through the sequencer: trims, new batches, an
	// expiry sweep far in the future.
	for _, e := range []*entry{
		{Kind: kindTrim, Time: st.Clock + 1, Topic: scriptTopicID(1), Partition: 0, Offset: -1},
		{Kind: kindInitProducer, Time: st.Clock + 2, ProducerID: -1},
		{Kind: kindCollect, Time: st.Clock + 3 + producerExpiryMs*2, Objects: []string{"anything"}},
	} {
		rev++
		st.apply(rev, e)
	}
	if dumpState(st, nil) == before {
		t.Fatal("the entries did not change the state; the test proves nothing")
	}
	if got := dumpState(c, nil); got != before {
		t.Fatalf("clone changed with the original:\n%s\nwant:\n%s", got, before)
	}
}
