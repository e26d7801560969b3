package share

import (
	"context"
	"errors"
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/cluster/clustertest"
)

func testKey(group string, p int32) Key {
	k := Key{Group: group, Partition: p}
	k.Topic[0], k.Topic[15] = 0xab, 0x01
	return k
}

func TestStoreKeys(t *testing.T) {
	s := newStore(nil, "/runnel", slog.New(slog.DiscardHandler))
	for _, k := range []Key{testKey("g", 0), testKey("a/b c%", 12), testKey("", 3)} {
		ek := s.key(k)
		back, ok := s.parseKey(ek)
		if !ok || back != k {
			t.Fatalf("%q parsed as %+v, %v", ek, back, ok)
		}
	}
	if got := s.key(testKey("a/b", 1)); got != "/runnel/share/a%2Fb/ab000000000000000000000000000001/1" {
		t.Fatalf("key %q", got)
	}
	for _, bad := range []string{"/runnel/share/g/ab/1", "/runnel/share/g/ab00000000000000000000000000000001/-1", "/runnel/share/g/x/y/z", "/other/g"} {
		if _, ok := s.parseKey(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}

// Two stores on one etcd: a write conditioned on a stale revision loses,
// the loser's cache then holds the winner's value, and a watch brings the
// other's changes into a cached key.
func TestStoreCompareAndSwap(t *testing.T) {
	etcd := clustertest.Start(t)
	ctx := context.Background()
	a := newStore(etcd.Client(), "/runnel", slog.New(slog.DiscardHandler))
	b := newStore(etcd.Client(), "/runnel", slog.New(slog.DiscardHandler))
	remote := make(chan Key, 10)
	a.onRemote = func(k Key) { remote <- k }
	wctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	rev, _, err := a.loadPending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	go a.follow(wctx, rev)
	k := testKey("g", 0)

	st, mod, err := a.get(ctx, k)
	if err != nil || st != nil || mod != 0 {
		t.Fatalf("missing key: %v %d %v", st, mod, err)
	}
	if err := a.put(ctx, k, NewState(5), 0); err != nil {
		t.Fatal(err)
	}
	// b creates nothing over it.
	if err := b.put(ctx, k, NewState(9), 0); !errors.Is(err, errConflict) {
		t.Fatalf("second create: %v", err)
	}
	st, mod, _ = b.get(ctx, k)
	if st.Start != 5 {
		t.Fatalf("b sees start %d after losing", st.Start)
	}
	st.Reset(7)
	if err := b.put(ctx, k, st, mod); err != nil {
		t.Fatal(err)
	}
	// The watch may report a's own write too (its event can come before
	// the Txn returns); wait for the change to 7.
	for deadline := time.After(5 * time.Second); ; {
		select {
		case got := <-remote:
			if got != k {
				t.Fatalf("remote change of %+v", got)
			}
		case <-deadline:
			t.Fatal("the watch did not bring b's change")
		}
		if st, _, _ := a.get(ctx, k); st.Start == 7 {
			break
		}
	}
	// update retries a lost race on the current value.
	calls := 0
	err = a.update(ctx, k, func(st *State) (*State, bool, error) {
		calls++
		if calls == 1 {
			cur, m, _ := b.get(ctx, k)
			cur.Reset(cur.Start + 10)
			if err := b.put(ctx, k, cur, m); err != nil {
				t.Fatal(err)
			}
		}
		st.Reset(st.Start + 1)
		return st, true, nil
	})
	if err != nil || calls != 2 {
		t.Fatalf("update: %v after %d calls", err, calls)
	}
	fresh := newStore(etcd.Client(), "/runnel", slog.New(slog.DiscardHandler))
	if st, _, _ := fresh.get(ctx, k); st.Start != 18 {
		t.Fatalf("start %d, want 7+10+1", st.Start)
	}
	// createAll writes nothing when one of its keys exists.
	k2 := testKey("g", 2)
	ok, err := a.createAll(ctx, []Key{k2, k}, map[Key]*State{k2: NewState(1), k: NewState(1)})
	if err != nil || ok {
		t.Fatalf("createAll over an existing key: %v %v", ok, err)
	}
	if st, _, _ := fresh.get(ctx, k2); st != nil {
		t.Fatalf("createAll wrote %v", st)
	}
	ok, err = a.createAll(ctx, []Key{k2}, map[Key]*State{k2: NewState(1)})
	fresh = newStore(etcd.Client(), "/runnel", slog.New(slog.DiscardHandler))
	if st, _, _ := fresh.get(ctx, k2); err != nil || !ok || st == nil || st.Start != 1 {
		t.Fatalf("createAll: %v %v %v", ok, err, st)
	}
	// A corrupt value is an error, not a state.
	if _, err := etcd.Client().Put(ctx, a.key(testKey("g", 1)), "\x09junk"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.get(ctx, testKey("g", 1)); !errors.Is(err, errCorrupt) {
		t.Fatalf("corrupt value: %v", err)
	}
}

func TestDecodeCorrupt(t *testing.T) {
	for _, due := range []int64{0, 1234} {
		s := &State{Start: 3, End: 10, Runs: []Run{{First: 3, Last: 5, State: Acquired, DeliveryCount: 1, Member: "m", Deadline: 99}, {First: 6, Last: 9, State: Available, DeliveryCount: 2, Due: due}},
			Letters: []DeadLetter{{Offset: 1, DeliveryCount: 2, Reason: ReasonRejected}}}
		b := s.Encode()
		for i := 0; i < len(b); i++ {
			if _, err := DecodeState(b[:i]); err == nil {
				t.Fatalf("due %d: decoded a %d-byte prefix of %d", due, i, len(b))
			}
		}
		if _, err := DecodeState(append(b, 0)); err == nil {
			t.Fatalf("due %d: decoded trailing bytes", due)
		}
		bad := append([]byte{}, b...)
		bad[0] = 3
		if _, err := DecodeState(bad); !errors.Is(err, errCorrupt) {
			t.Fatalf("version 3: %v", err)
		}
	}
	// A due time on an acquired record is corrupt.
	b := (&State{Start: 0, End: 1, Runs: []Run{{First: 0, Last: 0, State: Available, DeliveryCount: 1, Due: 5}}}).Encode()
	b[6] = byte(Acquired) // version, start, end-start, members, runs, length, state
	if _, err := DecodeState(b); !errors.Is(err, errCorrupt) {
		t.Fatalf("due time on an acquired record: %v", err)
	}
}

// The stored form of version 1 (before retry due times), as brokers wrote
// it, still decodes; a state without due times is still written as
// version 1 (brokers that know only version 1 read it during an upgrade),
// and one with due times as version 2.
func TestDecodeVersion1(t *testing.T) {
	v1 := []byte{0x1, 0x14, 0x6, 0x1, 0x2, 0x6d, 0x31, 0x3, 0x2, 0x0, 0x1, 0x0, 0x0, 0x2, 0x1, 0x2, 0x1, 0x80, 0xa0, 0xab, 0xfe, 0xf9, 0x62, 0x2, 0x2, 0x0, 0x0, 0x0, 0x1, 0x6, 0x2, 0x0}
	want := &State{Start: 10, End: 16, Runs: []Run{
		{First: 10, Last: 11, State: Available, DeliveryCount: 1},
		{First: 12, Last: 13, State: Acquired, DeliveryCount: 2, Member: "m1", Deadline: 1700000000000},
		{First: 14, Last: 15, State: Acknowledged},
	}, Letters: []DeadLetter{{Offset: 3, DeliveryCount: 2, Reason: ReasonRejected}}}
	got, err := DecodeState(v1)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("version 1 decoded as\n%s\nwant\n%s", dumpState(got), dumpState(want))
	}
	if b := got.Encode(); string(b) != string(v1) {
		t.Fatalf("re-encoded as % x", b)
	}
	got.Runs[0].Due = 1700000005000
	b := got.Encode()
	if b[0] != 2 {
		t.Fatalf("a state with a due time is written as version %d", b[0])
	}
	back, err := DecodeState(b)
	if err != nil || !reflect.DeepEqual(back, got) {
		t.Fatalf("version 2 round trip: %v\n%s", err, dumpState(back))
	}
}

// FuzzDecodeState: whatever etcd holds, decoding never panics, and what
// decodes encodes back to the same bytes.
func FuzzDecodeState(f *testing.F) {
	f.Add((&State{Start: 3, End: 10, Runs: []Run{{First: 3, Last: 5, State: Acquired, DeliveryCount: 1, Member: "m", Deadline: 99}, {First: 6, Last: 9, State: Available, DeliveryCount: 2}},
		Letters: []DeadLetter{{Offset: 1, DeliveryCount: 2, Reason: ReasonDeliveryCount}}}).Encode())
	f.Add(NewState(0).Encode())
	f.Add((&State{Start: 0, End: 2, Runs: []Run{{First: 0, Last: 1, State: Available, DeliveryCount: 1, Due: 77}}}).Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := DecodeState(b)
		if err != nil {
			return
		}
		if got := st.Encode(); string(got) != string(b) {
			// Varints have one canonical form only when minimal; a
			// non-minimal input may decode, but must re-decode equal.
			back, err := DecodeState(got)
			if err != nil || !reflect.DeepEqual(back, st) {
				t.Fatalf("re-encoding changed the state: %v", err)
			}
		}
	})
}

// After etcd compacts past the watch, the store reads its cached keys
// again: a change made meanwhile by another broker is not missed.
func TestStoreWatchCompacted(t *testing.T) {
	etcd := clustertest.Start(t)
	ctx := context.Background()
	a := newStore(etcd.Client(), "/runnel", slog.New(slog.DiscardHandler))
	b := newStore(etcd.Client(), "/runnel", slog.New(slog.DiscardHandler))
	k := testKey("g", 0)
	if err := a.put(ctx, k, NewState(1), 0); err != nil {
		t.Fatal(err)
	}
	rev, _, err := a.loadPending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// b changes the key twice and etcd compacts, all before a watches.
	for i := int64(2); i <= 3; i++ {
		st, mod, _ := b.get(ctx, k)
		st.Reset(i)
		if err := b.put(ctx, k, st, mod); err != nil {
			t.Fatal(err)
		}
	}
	cur, err := etcd.Client().Get(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := etcd.Client().Compact(ctx, cur.Header.Revision); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	go a.follow(wctx, rev)
	waitFor(t, "a's cache to show start 3", func() bool {
		st, ok := a.cachedState(k)
		return ok && st.Start == 3
	})
}

// A delivery count past int16 is corrupt, not a negative count.
func TestDecodeDeliveryCountBound(t *testing.T) {
	b := (&State{Start: 0, End: 1, Runs: []Run{{First: 0, Last: 0, State: Available, DeliveryCount: 1}}}).Encode()
	// version, start, end-start, members, runs, length, state, then the count.
	i := 1 + 1 + 1 + 1 + 1 + 1 + 1
	if b[i] != 1 {
		t.Fatalf("layout changed: % x", b)
	}
	bad := append(append(append([]byte{}, b[:i]...), 0x80, 0x80, 0x02), b[i+1:]...) // 32768
	if _, err := DecodeState(bad); !errors.Is(err, errCorrupt) {
		t.Fatalf("delivery count 32768 decoded: %v", err)
	}
}
