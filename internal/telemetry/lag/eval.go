package lag

import "time"

// Status is a partition's health after Burrow's rules. The numeric value
// is what runnel_group_status exports: larger is worse, so max() over
// partitions is the group's worst.
type Status int

// Statuses, in order of severity.
const (
	StatusOK      Status = 0
	StatusWarn    Status = 1 // offsets move but lag does not shrink
	StatusRewind  Status = 2 // the committed offset went backwards
	StatusStalled Status = 3 // commits keep coming but the offset does not move
	StatusStopped Status = 4 // no commit for longer than the window
)

// String is the status name Burrow uses.
func (s Status) String() string {
	switch s {
	case StatusOK:
		return "OK"
	case StatusWarn:
		return "WARN"
	case StatusRewind:
		return "REWIND"
	case StatusStalled:
		return "STALLED"
	case StatusStopped:
		return "STOPPED"
	}
	return "UNKNOWN"
}

// Sample is one evaluation of one group partition.
type Sample struct {
	At       time.Time // when the evaluation ran
	Offset   int64     // committed offset
	End      int64     // high watermark
	CommitAt time.Time // when the committed offset was last committed
}

// Lag is the sample's lag in offsets against the high watermark, never
// negative (a commit can be seen before the end offset that covers it).
func (s Sample) Lag() int64 { return max(s.End-s.Offset, 0) }

// Evaluate applies Burrow's consumer lag evaluation rules to a window of
// samples, oldest first, the way Burrow orders them:
//  1. any zero lag in the window: OK;
//  2. the committed offset went backwards between two samples: REWIND;
//  3. lag and no commit for longer than stopAfter: STOPPED;
//  4. a full window (size samples) in which the offset never moved, the
//     lag never shrank, and the offset was committed again: STALLED;
//  5. a full window in which the offset moved and the lag never shrank:
//     WARN;
//  6. otherwise OK.
//
// Burrow's window moves with each commit; this one moves with each
// evaluation, so "committing" (rule 4) means the commit time advanced
// within the window.
func Evaluate(w []Sample, size int, stopAfter time.Duration, now time.Time) Status {
	if len(w) == 0 {
		return StatusOK
	}
	for _, s := range w {
		if s.Lag() == 0 {
			return StatusOK
		}
	}
	for i := 1; i < len(w); i++ {
		if w[i].Offset < w[i-1].Offset {
			return StatusRewind
		}
	}
	first, last := w[0], w[len(w)-1]
	if now.Sub(last.CommitAt) > stopAfter {
		return StatusStopped
	}
	if len(w) < size || len(w) < 2 {
		return StatusOK
	}
	lagNeverShrank := true
	for i := 1; i < len(w); i++ {
		if w[i].Lag() < w[i-1].Lag() {
			lagNeverShrank = false
			break
		}
	}
	if !lagNeverShrank {
		return StatusOK
	}
	if last.Offset == first.Offset {
		if last.CommitAt.After(first.CommitAt) {
			return StatusStalled
		}
		return StatusOK
	}
	return StatusWarn
}
