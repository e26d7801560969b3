package share

import (
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/runnel-dev/runnel/internal/config"
	"github.com/runnel-dev/runnel/internal/stream"
)

// The share-partition state is a pure value: every change is a method that
// reads no clock (now is passed in, in unix milliseconds) and does no I/O,
// so the engine can apply it to a freshly loaded copy and retry after a
// lost compare-and-swap, and scripts can test it step by step.

// RecordState is the state of an in-flight record, with Kafka's numbering
// (as DescribeShareGroupOffsets and the share-group state topic use it).
type RecordState uint8

// Record states.
const (
	Available    RecordState = 0
	Acquired     RecordState = 1
	Acknowledged RecordState = 2
	Archived     RecordState = 4
)

// String is the state's name in lower case, as tools print it.
func (s RecordState) String() string {
	switch s {
	case Available:
		return "available"
	case Acquired:
		return "acquired"
	case Acknowledged:
		return "acknowledged"
	case Archived:
		return "archived"
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// Run is a run of consecutive offsets in one state. Member and Deadline
// (unix ms) are set only while Acquired; DeliveryCount only while Available
// or Acquired; Due only while Available: a record released or timed out
// under a retry policy may not be acquired before Due (unix ms; 0 = at
// once).
type Run struct {
	First, Last   int64
	State         RecordState
	DeliveryCount int16
	Member        string
	Deadline      int64
	Due           int64
}

// State is one share partition's state. Offsets below Start are done
// (acknowledged, archived or skipped); Runs cover [Start, End) exactly,
// sorted and merged, and never begin with a done run; offsets from End on
// have never been acquired.
type State struct {
	Start int64
	End   int64
	Runs  []Run
	// Letters are dead letters archived but not yet written to the
	// group's dead-letter topic, sorted by offset.
	Letters []DeadLetter
}

// Policy is what the state needs of a group's configuration.
type Policy struct {
	LockMs        int64
	DeliveryLimit int16
	MaxLocks      int64
	RecordLimit   bool
	RenewEnabled  bool
	// DeadLetters: archived rejected and over-delivered records become dead
	// letters (the group has a dead-letter topic).
	DeadLetters bool
	// RetryDelaysMs is the group's retry policy (errors.retry.delays.ms):
	// a record released or timed out after its n-th delivery waits
	// RetryDelaysMs[min(n, len)-1] before it may be acquired again. Empty:
	// it is acquirable at once.
	RetryDelaysMs []int64
}

// waiting reports whether a record due at due must still wait at now. A
// group whose retry policy was removed lets its waiting records go at once.
func (p Policy) waiting(due, now int64) bool {
	return due > now && len(p.RetryDelaysMs) > 0
}

// retryDue is when a record released at the given time after count
// deliveries may be acquired again (0: at once).
func (p Policy) retryDue(count int16, at int64) int64 {
	if len(p.RetryDelaysMs) == 0 || count < 1 {
		return 0
	}
	return at + p.RetryDelaysMs[min(int(count), len(p.RetryDelaysMs))-1]
}

// throttleLimit is the delivery count from which records are delivered in
// ever smaller numbers: half the limit rounded up, at least 2.
func (p Policy) throttleLimit() int16 { return max(2, (p.DeliveryLimit+1)/2) }

// PolicyOf derives a Policy from a resolved share group configuration.
func PolicyOf(cfg config.ShareGroup) Policy {
	return Policy{
		LockMs:        cfg.LockDuration.Milliseconds(),
		DeliveryLimit: int16(cfg.DeliveryCountLimit),
		MaxLocks:      int64(cfg.MaxRecordLocks),
		RecordLimit:   cfg.RecordLimit,
		RenewEnabled:  cfg.RenewEnabled,
		DeadLetters:   cfg.DLQTopic != "",
		RetryDelaysMs: retryDelaysMs(cfg.RetryDelays),
	}
}

func retryDelaysMs(ds []time.Duration) []int64 {
	var out []int64
	for _, d := range ds {
		out = append(out, d.Milliseconds())
	}
	return out
}

// Archive reasons counted by Stats (and the archived metric's label).
const (
	archRejected      = iota // REJECT
	archDeliveryLimit        // released or timed out at the delivery count limit
	archGap                  // GAP acknowledgement
	archUnreadable           // control batch, aborted transaction or compacted offset
	numArchReasons
)

var archReasonNames = [numArchReasons]string{"rejected", "delivery_limit", "gap", "not_delivered"}

// Stats counts what one change did, for the metrics; the engine adds them
// only once the change is persisted.
type Stats struct {
	Acquired    int64
	Redelivered int64
	Acked       [AckRenew + 1]int64
	Timeouts    int64
	Archived    [numArchReasons]int64
}

func (st *Stats) add(o Stats) {
	st.Acquired += o.Acquired
	st.Redelivered += o.Redelivered
	st.Timeouts += o.Timeouts
	for i := range st.Acked {
		st.Acked[i] += o.Acked[i]
	}
	for i := range st.Archived {
		st.Archived[i] += o.Archived[i]
	}
}

// Batch is what acquisition needs of one record batch read from the log.
type Batch struct {
	Base, Last    int64
	Control       bool
	Transactional bool
	ProducerID    int64
}

// NewState is the state of a share partition starting at start.
func NewState(start int64) *State { return &State{Start: start, End: start} }

// Clone returns a deep copy.
func (s *State) Clone() *State {
	c := *s
	c.Runs = slices.Clone(s.Runs)
	c.Letters = slices.Clone(s.Letters)
	return &c
}

// find returns the index of the run holding off, or -1.
func (s *State) find(off int64) int {
	if off < s.Start || off >= s.End {
		return -1
	}
	i := sort.Search(len(s.Runs), func(i int) bool { return s.Runs[i].Last >= off })
	if i == len(s.Runs) {
		return -1
	}
	return i
}

// split makes off the first offset of a run, if it lies inside one.
func (s *State) split(off int64) {
	i := s.find(off)
	if i < 0 || s.Runs[i].First == off {
		return
	}
	b := s.Runs[i]
	b.First = off
	s.Runs[i].Last = off - 1
	s.Runs = slices.Insert(s.Runs, i+1, b)
}

// update applies fn to the runs covering [first, last] ∩ [Start, End),
// split at the bounds. Call normalize afterwards.
func (s *State) update(first, last int64, fn func(r *Run)) {
	first, last = max(first, s.Start), min(last, s.End-1)
	if first > last {
		return
	}
	s.split(first)
	s.split(last + 1)
	for i := s.find(first); i >= 0 && i < len(s.Runs) && s.Runs[i].First <= last; i++ {
		fn(&s.Runs[i])
	}
}

// appendRun adds a run at End.
func (s *State) appendRun(r Run) {
	r.First = s.End
	s.Runs = append(s.Runs, r)
	s.End = r.Last + 1
}

func done(st RecordState) bool { return st == Acknowledged || st == Archived }

func sameRun(a, b Run) bool {
	return a.State == b.State && a.DeliveryCount == b.DeliveryCount && a.Member == b.Member && a.Deadline == b.Deadline && a.Due == b.Due
}

// normalize merges equal neighbouring runs and moves Start past the done
// prefix.
func (s *State) normalize() {
	out := s.Runs[:0]
	for _, r := range s.Runs {
		if done(r.State) {
			r.DeliveryCount, r.Member, r.Deadline, r.Due = 0, "", 0, 0
		}
		if n := len(out); n > 0 && sameRun(out[n-1], r) && out[n-1].Last+1 == r.First {
			out[n-1].Last = r.Last
			continue
		}
		out = append(out, r)
	}
	i := 0
	for i < len(out) && done(out[i].State) {
		i++
	}
	if i > 0 {
		s.Start = out[i-1].Last + 1
		out = append(out[:0], out[i:]...)
	}
	if len(out) == 0 {
		s.Start = s.End
		out = nil
	}
	s.Runs = out
}

// addLetters records dead letters for the offsets of r.
func (s *State) addLetters(r Run, count int16, reason string) {
	for off := r.First; off <= r.Last; off++ {
		i := sort.Search(len(s.Letters), func(i int) bool { return s.Letters[i].Offset >= off })
		if i < len(s.Letters) && s.Letters[i].Offset == off {
			continue
		}
		s.Letters = slices.Insert(s.Letters, i, DeadLetter{Offset: off, DeliveryCount: count, Reason: reason})
	}
}

// release makes an acquired run available again, from due on (0: at
// once), or archives it (a dead letter with a DLQ) when its delivery count
// has reached the limit.
func (s *State) release(r *Run, p Policy, st *Stats, due int64) {
	if r.DeliveryCount >= p.DeliveryLimit {
		if p.DeadLetters {
			s.addLetters(*r, r.DeliveryCount, ReasonDeliveryCount)
		}
		st.Archived[archDeliveryLimit] += r.Last - r.First + 1
		*r = Run{First: r.First, Last: r.Last, State: Archived}
		return
	}
	*r = Run{First: r.First, Last: r.Last, State: Available, DeliveryCount: r.DeliveryCount, Due: due}
}

// Expire ends the locks whose deadline is at or before now. Under a retry
// policy the delay counts from the deadline, when the lock ended, however
// late the expiry is noticed.
func (s *State) Expire(now int64, p Policy) Stats {
	var st Stats
	for i := range s.Runs {
		r := &s.Runs[i]
		if r.State == Acquired && r.Deadline <= now {
			st.Timeouts += r.Last - r.First + 1
			s.release(r, p, &st, p.retryDue(r.DeliveryCount, r.Deadline))
		}
	}
	s.normalize()
	return st
}

// NextDeadline is the earliest lock deadline, or 0 when nothing is acquired.
func (s *State) NextDeadline() int64 {
	var d int64
	for _, r := range s.Runs {
		if r.State == Acquired && (d == 0 || r.Deadline < d) {
			d = r.Deadline
		}
	}
	return d
}

// NextDue is the earliest time after now at which a record waiting out a
// retry delay becomes acquirable, or 0 when none waits.
func (s *State) NextDue(now int64) int64 {
	var d int64
	for _, r := range s.Runs {
		if r.State == Available && r.Due > now && (d == 0 || r.Due < d) {
			d = r.Due
		}
	}
	return d
}

// ReleaseMember releases every record member holds (its share session
// closed or it left the group). The records did not fail, so no retry
// delay applies: they are acquirable at once, their delivery counts kept.
func (s *State) ReleaseMember(member string, p Policy) Stats {
	var st Stats
	for i := range s.Runs {
		r := &s.Runs[i]
		if r.State == Acquired && r.Member == member {
			s.release(r, p, &st, 0)
		}
	}
	s.normalize()
	return st
}

// Truncate drops what lies below the log start offset.
func (s *State) Truncate(logStart int64) {
	if logStart <= s.Start {
		return
	}
	s.Start = logStart
	if s.End <= logStart {
		s.End, s.Runs = logStart, nil
		return
	}
	s.split(logStart)
	i := sort.Search(len(s.Runs), func(i int) bool { return s.Runs[i].First >= logStart })
	s.Runs = append(s.Runs[:0], s.Runs[i:]...)
	s.normalize()
}

// Reset moves the start offset to off, discarding the in-flight records
// (AlterShareGroupOffsets). Pending dead letters stay: they are owed.
func (s *State) Reset(off int64) {
	s.Start, s.End, s.Runs = off, off, nil
}

// MaxPendingLetters bounds the dead letters a share partition keeps while
// its dead-letter topic cannot be written: at the bound nothing more is
// acquired until the writer catches up, so the state (one etcd value)
// stays small and no letter is dropped.
const MaxPendingLetters = 20000

// FetchOffset is where the next acquisition reads the log from at now: the
// first available in-flight record not waiting out a retry delay, else End
// while fewer than MaxLocks records are in flight; ok is false when
// nothing can be acquired (also while MaxPendingLetters dead letters wait
// to be written).
func (s *State) FetchOffset(p Policy, now int64) (int64, bool) {
	if len(s.Letters) >= MaxPendingLetters {
		return 0, false
	}
	for _, r := range s.Runs {
		if r.State == Available && !p.waiting(r.Due, now) {
			return r.First, true
		}
	}
	if s.End-s.Start < p.MaxLocks {
		return s.End, true
	}
	return 0, false
}

// AcquireInput is one acquisition: the batches read from the log from
// FetchOffset on, in offset order, and the offset below which records may
// be delivered (the high watermark, or the last stable offset for
// read_committed; then Aborted lists the aborted transactions the batches
// overlap).
type AcquireInput struct {
	Batches    []Batch
	Limit      int64
	Aborted    []stream.AbortedTxn
	Member     string
	Now        int64
	MaxRecords int
}

// Acquire acquires records for a member from the batches read: available
// in-flight records and new ones, in offset order; records waiting out a
// retry delay are passed over, not waited for. Control batches,
// aborted transactions' batches and offsets with no batch are archived,
// never delivered. It returns the ranges acquired, merged by delivery
// count.
func (s *State) Acquire(in AcquireInput, p Policy) ([]AcquiredRange, Stats) {
	var st Stats
	want := int64(in.MaxRecords)
	if want <= 0 {
		want = 500
	}
	from, ok := s.FetchOffset(p, in.Now)
	if !ok {
		return nil, st
	}
	aborted := slices.Clone(in.Aborted)
	slices.SortFunc(aborted, func(a, b stream.AbortedTxn) int { return cmpInt(a.FirstOffset, b.FirstOffset) })
	active := map[int64]bool{}
	deadline := in.Now + p.LockMs
	newCap := s.Start + p.MaxLocks // offsets from here on may not be acquired new
	var out []AcquiredRange
	var got int64
	cursor := from
	// acquireRange acquires the available and new offsets of [lo, hi] (in
	// a log batch of size records), at most budget of them; it returns
	// false when acquisition must stop: the in-flight cap is reached, or
	// records were throttled.
	acquireRange := func(lo, hi, budget, size int64) bool {
		// In-flight part.
		type seg struct {
			first, last int64
			count       int16
			due         int64
		}
		var avail []seg
		for i := s.find(lo); i >= 0 && i < len(s.Runs) && s.Runs[i].First <= hi; i++ {
			if r := s.Runs[i]; r.State == Available {
				avail = append(avail, seg{max(r.First, lo), min(r.Last, hi), r.DeliveryCount, r.Due})
			}
		}
		for _, a := range avail {
			if budget <= 0 {
				return true
			}
			if a.count >= p.DeliveryLimit {
				// The limit was lowered since: never deliver again.
				s.update(a.first, a.last, func(r *Run) { s.release(r, p, &st, 0) })
				continue
			}
			if p.waiting(a.due, in.Now) {
				continue // waiting out a retry delay
			}
			take := min(a.last-a.first+1, budget)
			throttled := a.count >= p.throttleLimit()
			if throttled {
				// Records delivered often are isolated (Kafka 4.2): a
				// request that already has records stops before them;
				// otherwise it takes a share of the batch halved with
				// every delivery past the threshold, and on the last
				// delivery one record alone.
				if got > 0 {
					return false
				}
				most := max(1, size>>(a.count-p.throttleLimit()+1))
				if p.DeliveryLimit > 2 && a.count == p.DeliveryLimit-1 {
					most = 1
				}
				take = min(take, most)
			}
			s.update(a.first, a.first+take-1, func(r *Run) {
				n := r.Last - r.First + 1
				*r = Run{First: r.First, Last: r.Last, State: Acquired, DeliveryCount: r.DeliveryCount + 1, Member: in.Member, Deadline: deadline}
				out = appendRange(out, AcquiredRange{First: r.First, Last: r.Last, DeliveryCount: r.DeliveryCount})
				st.Acquired += n
				st.Redelivered += n
				budget -= n
				got += n
			})
			if throttled {
				return false
			}
		}
		// New part.
		lo = max(lo, s.End)
		if lo > hi || budget <= 0 {
			return true
		}
		last := min(hi, lo+budget-1, newCap-1)
		if last >= lo {
			s.appendRun(Run{Last: last, State: Acquired, DeliveryCount: 1, Member: in.Member, Deadline: deadline})
			out = appendRange(out, AcquiredRange{First: lo, Last: last, DeliveryCount: 1})
			st.Acquired += last - lo + 1
			got += last - lo + 1
		}
		return last == hi
	}
	// unreadable archives [lo, hi] where it is new or available.
	unreadable := func(lo, hi int64) {
		s.update(lo, hi, func(r *Run) {
			if r.State == Available {
				st.Archived[archUnreadable] += r.Last - r.First + 1
				*r = Run{First: r.First, Last: r.Last, State: Archived}
			}
		})
		if lo = max(lo, s.End); lo <= hi {
			s.appendRun(Run{Last: hi, State: Archived})
			st.Archived[archUnreadable] += hi - lo + 1
		}
	}
	for _, b := range in.Batches {
		for len(aborted) > 0 && aborted[0].FirstOffset <= b.Last {
			active[aborted[0].ProducerID] = true
			aborted = aborted[1:]
		}
		skip := b.Control || (b.Transactional && active[b.ProducerID])
		if b.Control {
			// The marker ends the producer's transaction.
			delete(active, b.ProducerID)
		}
		if b.Last < cursor {
			continue
		}
		if b.Base >= in.Limit || got >= want {
			break
		}
		if b.Base > cursor {
			if b.Base > newCap && cursor >= s.End {
				break
			}
			unreadable(cursor, b.Base-1) // compacted away
			cursor = b.Base
		}
		lo, hi := cursor, min(b.Last, in.Limit-1)
		cursor = hi + 1
		if skip {
			unreadable(lo, hi)
			continue
		}
		budget := int64(1) << 62
		if p.RecordLimit {
			budget = want - got
		}
		if !acquireRange(lo, hi, budget, b.Last-b.Base+1) {
			break
		}
	}
	s.normalize()
	return out, st
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// appendRange appends r to ranges, merging it into the last one when they
// touch and share a delivery count.
func appendRange(ranges []AcquiredRange, r AcquiredRange) []AcquiredRange {
	if n := len(ranges); n > 0 && ranges[n-1].Last+1 == r.First && ranges[n-1].DeliveryCount == r.DeliveryCount {
		ranges[n-1].Last = r.Last
		return ranges
	}
	return append(ranges, r)
}

// ValidateAcks checks acknowledgement batches for shape alone: First <=
// Last, ascending and not overlapping, one type or one per offset, known
// types. Errors wrap ErrInvalidRequest (or are ErrRenewDisabled).
func ValidateAcks(acks []AckBatch, renewEnabled bool) error {
	prev := int64(-1)
	for i, b := range acks {
		if b.First < 0 || b.First > b.Last {
			return fmt.Errorf("%w: batch %d: first offset %d, last offset %d", ErrInvalidRequest, i, b.First, b.Last)
		}
		if i > 0 && b.First <= prev {
			return fmt.Errorf("%w: batch %d starts at %d, not after %d", ErrInvalidRequest, i, b.First, prev)
		}
		prev = b.Last
		if n := b.Last - b.First + 1; len(b.Types) != 1 && int64(len(b.Types)) != n {
			return fmt.Errorf("%w: batch %d: %d acknowledge types for %d offsets", ErrInvalidRequest, i, len(b.Types), n)
		}
		for _, t := range b.Types {
			if t < AckGap || t > AckRenew {
				return fmt.Errorf("%w: batch %d: acknowledge type %d", ErrInvalidRequest, i, t)
			}
			if t == AckRenew && !renewEnabled {
				return ErrRenewDisabled
			}
		}
	}
	return nil
}

// ClipAcks drops what acks say of offsets below from (validated batches in
// order; a batch with one type per offset keeps the types of the offsets
// left).
func ClipAcks(acks []AckBatch, from int64) []AckBatch {
	out := acks[:0:0]
	for _, b := range acks {
		if b.Last < from {
			continue
		}
		if b.First < from {
			types := b.Types
			if len(types) > 1 {
				types = types[from-b.First:]
			}
			b = AckBatch{First: from, Last: b.Last, Types: types}
		}
		out = append(out, b)
	}
	return out
}

// Acknowledge applies a member's acknowledgements, all or nothing: every
// offset named must be acquired by member (else ErrInvalidRecordState and
// nothing changes).
func (s *State) Acknowledge(member string, acks []AckBatch, now int64, p Policy) (Stats, error) {
	var st Stats
	if err := ValidateAcks(acks, p.RenewEnabled); err != nil {
		return st, err
	}
	for _, b := range acks {
		if b.First < s.Start || b.Last >= s.End {
			return st, fmt.Errorf("%w: offsets %d-%d are outside the in-flight records %d-%d", ErrInvalidRecordState, b.First, b.Last, s.Start, s.End-1)
		}
		for i := s.find(b.First); i < len(s.Runs) && s.Runs[i].First <= b.Last; i++ {
			r := s.Runs[i]
			if r.State != Acquired || r.Member != member {
				return st, fmt.Errorf("%w: offsets %d-%d are %s", ErrInvalidRecordState, max(r.First, b.First), min(r.Last, b.Last), r.State)
			}
		}
	}
	for _, b := range acks {
		for lo := b.First; lo <= b.Last; {
			t, hi := b.Types[0], b.Last
			if len(b.Types) > 1 {
				t = b.Types[lo-b.First]
				hi = lo
				for hi < b.Last && b.Types[hi+1-b.First] == t {
					hi++
				}
			}
			st.Acked[t] += hi - lo + 1
			s.update(lo, hi, func(r *Run) {
				switch t {
				case AckAccept:
					*r = Run{First: r.First, Last: r.Last, State: Acknowledged}
				case AckRelease:
					s.release(r, p, &st, p.retryDue(r.DeliveryCount, now))
				case AckReject:
					if p.DeadLetters {
						s.addLetters(*r, r.DeliveryCount, ReasonRejected)
					}
					st.Archived[archRejected] += r.Last - r.First + 1
					*r = Run{First: r.First, Last: r.Last, State: Archived}
				case AckGap:
					st.Archived[archGap] += r.Last - r.First + 1
					*r = Run{First: r.First, Last: r.Last, State: Archived}
				case AckRenew:
					r.Deadline = now + p.LockMs
				}
			})
			lo = hi + 1
		}
	}
	s.normalize()
	return st, nil
}

// RemoveLetters drops the pending dead letters written (matched by offset).
func (s *State) RemoveLetters(written []DeadLetter) {
	if len(written) == 0 {
		return
	}
	gone := make(map[int64]bool, len(written))
	for _, l := range written {
		gone[l.Offset] = true
	}
	s.Letters = slices.DeleteFunc(s.Letters, func(l DeadLetter) bool { return gone[l.Offset] })
	if len(s.Letters) == 0 {
		s.Letters = nil
	}
}

// Check verifies the structural invariants; a failure means a bug.
func (s *State) Check(p Policy) error {
	if s.End < s.Start {
		return fmt.Errorf("end %d before start %d", s.End, s.Start)
	}
	next := s.Start
	for i, r := range s.Runs {
		if r.First != next || r.Last < r.First {
			return fmt.Errorf("run %d is %d-%d, want it to start at %d", i, r.First, r.Last, next)
		}
		next = r.Last + 1
		if i == 0 && done(r.State) {
			return fmt.Errorf("first run %d-%d is %s: start did not advance", r.First, r.Last, r.State)
		}
		if i > 0 && sameRun(s.Runs[i-1], r) {
			return fmt.Errorf("runs %d and %d are not merged", i-1, i)
		}
		switch r.State {
		case Acquired:
			if r.Member == "" || r.Deadline == 0 || r.DeliveryCount < 1 || r.Due != 0 {
				return fmt.Errorf("acquired run %d-%d without member, deadline or delivery", r.First, r.Last)
			}
		case Available, Acknowledged, Archived:
			if r.Member != "" || r.Deadline != 0 {
				return fmt.Errorf("%s run %d-%d holds a lock", r.State, r.First, r.Last)
			}
			if r.State != Available && r.Due != 0 {
				return fmt.Errorf("%s run %d-%d has a retry due time", r.State, r.First, r.Last)
			}
		default:
			return fmt.Errorf("run %d-%d in unknown state %d", r.First, r.Last, r.State)
		}
		if r.DeliveryCount > p.DeliveryLimit || r.DeliveryCount < 0 {
			return fmt.Errorf("run %d-%d delivered %d times, limit %d", r.First, r.Last, r.DeliveryCount, p.DeliveryLimit)
		}
		if r.State == Available && r.DeliveryCount >= p.DeliveryLimit {
			return fmt.Errorf("available run %d-%d at the delivery limit", r.First, r.Last)
		}
	}
	if next != s.End {
		return fmt.Errorf("runs end at %d, state at %d", next, s.End)
	}
	for i := 1; i < len(s.Letters); i++ {
		if s.Letters[i].Offset <= s.Letters[i-1].Offset {
			return fmt.Errorf("dead letters not sorted at %d", i)
		}
	}
	return nil
}

// nowMs is t in unix milliseconds.
func nowMs(t time.Time) int64 { return t.UnixMilli() }
