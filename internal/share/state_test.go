package share

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"

	"github.com/runnel-dev/runnel/internal/stream"
)

// The share-partition state is a deterministic state machine, tested with
// scripts in testdata/state. Rewrite expectations with
//
//	go test ./internal/share -run TestStateScripts -rewrite
//
// and review the diff. Commands:
//
//	policy delivery=N locks=N lock=MS [dlq] [record-limit] [no-renew] [retry=(MS,...)]
//	reset start=N                         AlterShareGroupOffsets / initial state
//	acquire member=m now=MS [max=N] limit=HWM
//	    input: batches "B-L [control] [txn pid=N]", "aborted pid=N first=F"
//	ack member=m now=MS                   input: "F-L type[,type...]" or "F type"
//	expire now=MS
//	release member=m
//	truncate log-start=N
//	letters-written offsets=(a,b)
//	restart                               the state as a broker loads it (encode, decode)
//	state
//
// After every command the harness checks the structural invariants
// (State.Check), that the state survives encoding, that no offset is
// accepted twice or acquired after it was accepted, and that the delivery
// counts reported match the acquisitions seen and never pass the limit.
func TestStateScripts(t *testing.T) {
	datadriven.Walk(t, filepath.Join("testdata", "state"), func(t *testing.T, path string) {
		h := newStateHarness()
		datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
			out, err := h.run(td)
			if err != nil {
				t.Fatalf("%s: %v", td.Pos, err)
			}
			return out
		})
	})
}

type stateHarness struct {
	s        *State
	p        Policy
	accepted map[int64]bool
	acquired map[int64]int16 // acquisitions seen per offset
}

func newStateHarness() *stateHarness {
	return &stateHarness{
		s:        NewState(0),
		p:        Policy{LockMs: 1000, DeliveryLimit: 5, MaxLocks: 2000, RenewEnabled: true},
		accepted: map[int64]bool{},
		acquired: map[int64]int16{},
	}
}

func argInt(td *datadriven.TestData, key string, def int64) int64 {
	for _, a := range td.CmdArgs {
		if a.Key == key && len(a.Vals) > 0 {
			n, err := strconv.ParseInt(a.Vals[0], 10, 64)
			if err != nil {
				panic(fmt.Sprintf("%s: %s=%s", td.Pos, key, a.Vals[0]))
			}
			return n
		}
	}
	return def
}

func argStr(td *datadriven.TestData, key string) string {
	for _, a := range td.CmdArgs {
		if a.Key == key && len(a.Vals) > 0 {
			return a.Vals[0]
		}
	}
	return ""
}

func parseRange(s string) (int64, int64, error) {
	a, b, ok := strings.Cut(s, "-")
	first, err := strconv.ParseInt(a, 10, 64)
	if err != nil {
		return 0, 0, err
	}
	if !ok {
		return first, first, nil
	}
	last, err := strconv.ParseInt(b, 10, 64)
	return first, last, err
}

var ackTypeNames = map[string]int8{"gap": AckGap, "accept": AckAccept, "release": AckRelease, "reject": AckReject, "renew": AckRenew}

func (h *stateHarness) run(td *datadriven.TestData) (string, error) {
	var res string
	switch td.Cmd {
	case "policy":
		h.p = Policy{
			LockMs:        argInt(td, "lock", 1000),
			DeliveryLimit: int16(argInt(td, "delivery", 5)),
			MaxLocks:      argInt(td, "locks", 2000),
			DeadLetters:   td.HasArg("dlq"),
			RecordLimit:   td.HasArg("record-limit"),
			RenewEnabled:  !td.HasArg("no-renew"),
		}
		for _, a := range td.CmdArgs {
			if a.Key == "retry" {
				for _, v := range a.Vals {
					n, err := strconv.ParseInt(v, 10, 64)
					if err != nil {
						return "", fmt.Errorf("retry=%s", v)
					}
					h.p.RetryDelaysMs = append(h.p.RetryDelaysMs, n)
				}
			}
		}
		return "ok\n", nil
	case "reset":
		h.s.Reset(argInt(td, "start", 0))
		h.accepted, h.acquired = map[int64]bool{}, map[int64]int16{}
	case "acquire":
		in := AcquireInput{Member: argStr(td, "member"), Now: argInt(td, "now", 0), MaxRecords: int(argInt(td, "max", 500)), Limit: argInt(td, "limit", 1<<40)}
		for _, line := range strings.Split(strings.TrimSpace(td.Input), "\n") {
			f := strings.Fields(line)
			if len(f) == 0 {
				continue
			}
			if f[0] == "aborted" {
				var a stream.AbortedTxn
				for _, kv := range f[1:] {
					k, v, _ := strings.Cut(kv, "=")
					n, _ := strconv.ParseInt(v, 10, 64)
					switch k {
					case "pid":
						a.ProducerID = n
					case "first":
						a.FirstOffset = n
					}
				}
				in.Aborted = append(in.Aborted, a)
				continue
			}
			first, last, err := parseRange(f[0])
			if err != nil {
				return "", err
			}
			b := Batch{Base: first, Last: last, ProducerID: -1}
			for _, w := range f[1:] {
				switch {
				case w == "control":
					b.Control = true
				case w == "txn":
					b.Transactional = true
				case strings.HasPrefix(w, "pid="):
					b.ProducerID, _ = strconv.ParseInt(w[4:], 10, 64)
				default:
					return "", fmt.Errorf("unknown batch word %q", w)
				}
			}
			in.Batches = append(in.Batches, b)
		}
		before := h.s.Clone()
		ranges, st := h.s.Acquire(in, h.p)
		if err := checkDue(before, ranges, in.Now, h.p); err != nil {
			return "", err
		}
		var parts []string
		var n int64
		for _, r := range ranges {
			parts = append(parts, fmt.Sprintf("%d-%d@%d", r.First, r.Last, r.DeliveryCount))
			for off := r.First; off <= r.Last; off++ {
				if h.accepted[off] {
					return "", fmt.Errorf("offset %d acquired after it was accepted", off)
				}
				h.acquired[off]++
				if h.acquired[off] != r.DeliveryCount {
					return "", fmt.Errorf("offset %d acquired %d times, reported delivery count %d", off, h.acquired[off], r.DeliveryCount)
				}
				if r.DeliveryCount > h.p.DeliveryLimit {
					return "", fmt.Errorf("offset %d delivered %d times, limit %d", off, r.DeliveryCount, h.p.DeliveryLimit)
				}
			}
			n += r.Last - r.First + 1
		}
		if n != st.Acquired {
			return "", fmt.Errorf("stats say %d acquired, ranges hold %d", st.Acquired, n)
		}
		if len(parts) == 0 {
			parts = []string{"none"}
		}
		res = "acquired " + strings.Join(parts, " ") + statsLine(st)
	case "ack":
		var acks []AckBatch
		for _, line := range strings.Split(strings.TrimSpace(td.Input), "\n") {
			f := strings.Fields(line)
			if len(f) != 2 {
				return "", fmt.Errorf("ack line %q", line)
			}
			first, last, err := parseRange(f[0])
			if err != nil {
				return "", err
			}
			b := AckBatch{First: first, Last: last}
			for _, name := range strings.Split(f[1], ",") {
				t, ok := ackTypeNames[name]
				if !ok {
					n, err := strconv.Atoi(name)
					if err != nil {
						return "", fmt.Errorf("ack type %q", name)
					}
					t = int8(n)
				}
				b.Types = append(b.Types, t)
			}
			acks = append(acks, b)
		}
		before := h.s.Clone()
		st, err := h.s.Acknowledge(argStr(td, "member"), acks, argInt(td, "now", 0), h.p)
		if err != nil {
			if !reflect.DeepEqual(before, h.s) {
				return "", fmt.Errorf("a refused acknowledgement changed the state")
			}
			res = "error: " + err.Error()
			break
		}
		for _, b := range acks {
			for off := b.First; off <= b.Last; off++ {
				t := b.Types[0]
				if len(b.Types) > 1 {
					t = b.Types[off-b.First]
				}
				if t == AckAccept {
					if h.accepted[off] {
						return "", fmt.Errorf("offset %d accepted twice", off)
					}
					h.accepted[off] = true
				}
			}
		}
		res = "ok" + statsLine(st)
	case "expire":
		res = "ok" + statsLine(h.s.Expire(argInt(td, "now", 0), h.p))
	case "release":
		res = "ok" + statsLine(h.s.ReleaseMember(argStr(td, "member"), h.p))
	case "truncate":
		h.s.Truncate(argInt(td, "log-start", 0))
	case "letters-written":
		var written []DeadLetter
		for _, a := range td.CmdArgs {
			if a.Key == "offsets" {
				for _, v := range a.Vals {
					n, _ := strconv.ParseInt(v, 10, 64)
					written = append(written, DeadLetter{Offset: n})
				}
			}
		}
		h.s.RemoveLetters(written)
	case "restart":
		back, err := DecodeState(h.s.Encode())
		if err != nil {
			return "", err
		}
		h.s = back
	case "state":
	default:
		return "", fmt.Errorf("unknown command %q", td.Cmd)
	}
	if err := h.check(); err != nil {
		return "", err
	}
	if res != "" {
		res += "\n"
	}
	return res + dumpState(h.s), nil
}

// check verifies the invariants and the encoding round trip.
func (h *stateHarness) check() error {
	if err := h.s.Check(h.p); err != nil {
		return fmt.Errorf("invariant: %v\n%s", err, dumpState(h.s))
	}
	back, err := DecodeState(h.s.Encode())
	if err != nil {
		return fmt.Errorf("decode: %v", err)
	}
	if !reflect.DeepEqual(back, h.s) {
		return fmt.Errorf("round trip changed the state:\n%s\nvs\n%s", dumpState(h.s), dumpState(back))
	}
	for off := range h.accepted {
		if i := h.s.find(off); i >= 0 && h.s.Runs[i].State != Acknowledged {
			return fmt.Errorf("accepted offset %d is %s", off, h.s.Runs[i].State)
		}
	}
	return nil
}

// checkDue fails when ranges hold a record that, in before, was waiting
// out a retry delay past now (while the policy has one).
func checkDue(before *State, ranges []AcquiredRange, now int64, p Policy) error {
	for _, r := range ranges {
		for off := r.First; off <= r.Last; off++ {
			if i := before.find(off); i >= 0 && before.Runs[i].Due > now && len(p.RetryDelaysMs) > 0 {
				return fmt.Errorf("offset %d acquired at %d, due at %d", off, now, before.Runs[i].Due)
			}
		}
	}
	return nil
}

func statsLine(st Stats) string {
	var parts []string
	if st.Redelivered > 0 {
		parts = append(parts, fmt.Sprintf("redelivered=%d", st.Redelivered))
	}
	if st.Timeouts > 0 {
		parts = append(parts, fmt.Sprintf("timeouts=%d", st.Timeouts))
	}
	for i, n := range st.Archived {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("archived.%s=%d", archReasonNames[i], n))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, " ") + ")"
}

func dumpState(s *State) string {
	var b strings.Builder
	fmt.Fprintf(&b, "start=%d end=%d\n", s.Start, s.End)
	for _, r := range s.Runs {
		fmt.Fprintf(&b, "  %d-%d %s", r.First, r.Last, r.State)
		if r.DeliveryCount > 0 {
			fmt.Fprintf(&b, " count=%d", r.DeliveryCount)
		}
		if r.State == Acquired {
			fmt.Fprintf(&b, " member=%s deadline=%d", r.Member, r.Deadline)
		}
		if r.Due != 0 {
			fmt.Fprintf(&b, " due=%d", r.Due)
		}
		b.WriteByte('\n')
	}
	for _, l := range s.Letters {
		fmt.Fprintf(&b, "  letter %d count=%d %s\n", l.Offset, l.DeliveryCount, l.Reason)
	}
	return b.String()
}

// TestStateRandom drives the state with random steps from several members
// and checks the same invariants as the scripts after each one.
func TestStateRandom(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		rng := rand.New(rand.NewPCG(seed, 7))
		h := newStateHarness()
		h.p = Policy{LockMs: 50, DeliveryLimit: 3, MaxLocks: 40, RecordLimit: seed%2 == 0, RenewEnabled: true, DeadLetters: seed%3 == 0}
		if seed%4 == 1 {
			h.p.RetryDelaysMs = []int64{15, 40}
		}
		// The log: batches of 1-5 records, some control, some aborted.
		var log []Batch
		var aborted []stream.AbortedTxn
		for off := int64(0); off < 300; {
			n := 1 + rng.Int64N(5)
			b := Batch{Base: off, Last: off + n - 1, ProducerID: -1}
			switch rng.IntN(10) {
			case 0:
				b.Control = true
				b.Last = off
			case 1:
				b.Transactional, b.ProducerID = true, 9
				aborted = append(aborted, stream.AbortedTxn{ProducerID: 9, FirstOffset: off})
			case 2:
				off += 2 // a compacted gap
				b.Base, b.Last = off, off+n-1
			}
			log = append(log, b)
			off = b.Last + 1
			if b.Transactional {
				log = append(log, Batch{Base: off, Last: off, Control: true, ProducerID: 9})
				off++
			}
		}
		members := []string{"a", "b", "c"}
		held := map[string][]AcquiredRange{}
		now := int64(0)
		for step := 0; step < 400; step++ {
			now += rng.Int64N(20)
			m := members[rng.IntN(len(members))]
			var err error
			switch k := rng.IntN(10); {
			case k < 4:
				from, ok := h.s.FetchOffset(h.p, now)
				if !ok {
					continue
				}
				var in []Batch
				for _, b := range log {
					if b.Last >= from && len(in) < 6 {
						in = append(in, b)
					}
				}
				before := h.s.Clone()
				ranges, _ := h.s.Acquire(AcquireInput{Batches: in, Limit: 300, Aborted: aborted, Member: m, Now: now, MaxRecords: 1 + rng.IntN(8)}, h.p)
				if err := checkDue(before, ranges, now, h.p); err != nil {
					t.Fatalf("seed %d step %d: %v", seed, step, err)
				}
				for _, r := range ranges {
					for off := r.First; off <= r.Last; off++ {
						if h.accepted[off] {
							t.Fatalf("seed %d step %d: offset %d acquired after it was accepted", seed, step, off)
						}
						h.acquired[off]++
						if h.acquired[off] != r.DeliveryCount || r.DeliveryCount > h.p.DeliveryLimit {
							t.Fatalf("seed %d step %d: offset %d acquired %d times, count %d", seed, step, off, h.acquired[off], r.DeliveryCount)
						}
					}
				}
				held[m] = append(held[m], ranges...)
			case k < 8:
				if len(held[m]) == 0 {
					continue
				}
				r := held[m][0]
				held[m] = held[m][1:]
				types := make([]int8, r.Last-r.First+1)
				for i := range types {
					types[i] = []int8{AckAccept, AckAccept, AckRelease, AckReject, AckRenew, AckGap}[rng.IntN(6)]
				}
				before := h.s.Clone()
				_, err = h.s.Acknowledge(m, []AckBatch{{First: r.First, Last: r.Last, Types: types}}, now, h.p)
				if err == nil {
					for i, ty := range types {
						if ty == AckAccept {
							off := r.First + int64(i)
							if h.accepted[off] {
								t.Fatalf("seed %d step %d: offset %d accepted twice", seed, step, off)
							}
							h.accepted[off] = true
						}
					}
				} else if !reflect.DeepEqual(before, h.s) {
					t.Fatalf("seed %d step %d: refused acknowledgement changed the state", seed, step)
				}
			case k < 9:
				h.s.Expire(now, h.p)
			default:
				h.s.ReleaseMember(m, h.p)
				held[m] = nil
			}
			if err := h.check(); err != nil {
				t.Fatalf("seed %d step %d: %v", seed, step, err)
			}
		}
	}
}

// While MaxPendingLetters dead letters wait for the writer, nothing more is
// acquired (redeliveries included); once they are written, acquisition
// resumes. The stored form of that many letters stays small.
func TestStatePendingLettersBound(t *testing.T) {
	p := Policy{LockMs: 100, DeliveryLimit: 5, MaxLocks: 100, DeadLetters: true}
	s := NewState(0)
	n := int64(MaxPendingLetters)
	s.Start, s.End = n, n
	for off := int64(0); off < n; off++ {
		s.Letters = append(s.Letters, DeadLetter{Offset: off, DeliveryCount: 1, Reason: ReasonRejected})
	}
	in := AcquireInput{Batches: []Batch{{Base: n, Last: n + 9, ProducerID: -1}}, Limit: n + 10, Member: "m", Now: 1}
	if got, _ := s.Acquire(in, p); len(got) != 0 {
		t.Fatalf("acquired %v with %d letters pending", got, len(s.Letters))
	}
	if size := len(s.Encode()); size > 4*MaxPendingLetters {
		t.Fatalf("%d pending letters take %d bytes", MaxPendingLetters, size)
	}
	s.RemoveLetters(s.Letters[:10])
	if got, _ := s.Acquire(in, p); len(got) != 1 {
		t.Fatalf("acquired %v after the letters were written", got)
	}
}
