package tableflow

import (
	"sync"
	"time"
)

// States of a table's materialiser (TableStatus.State).
const (
	StateRunning   = "running"
	StateSuspended = "suspended"
	// StateStopped: table.enabled is off, or this broker is not the
	// table's writer; the table is kept.
	StateStopped = "stopped"
	// StateRefused: the table cannot be materialised on this cluster
	// (Reason says why, e.g. encryption at rest).
	StateRefused = "refused"
)

// TableStatus is what GET /tables/{ns}/{name} and runnel table status
// show of one table.
type TableStatus struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Topic     string `json:"topic"`
	Mode      string `json:"mode"`
	State     string `json:"state"`
	// Reason says why a table is suspended or refused.
	Reason string `json:"reason,omitempty"`
	// Writer is the broker materialising the table (-1: none).
	Writer     int32   `json:"writer"`
	LagRecords int64   `json:"lag_records"`
	LagSeconds float64 `json:"lag_seconds"`
	// LastCommitMs and LastSnapshotID describe the table's current
	// snapshot.
	LastCommitMs   int64 `json:"last_commit_ms,omitempty"`
	LastSnapshotID int64 `json:"last_snapshot_id,omitempty"`
	// Commits and Records count what this writer committed since it
	// started.
	Commits int64 `json:"commits"`
	Records int64 `json:"records"`
	// Errors counts records that could not be converted (skipped,
	// dead-lettered or suspending) and failed passes; LastError is the
	// latest.
	Errors    int64  `json:"errors"`
	LastError string `json:"last_error,omitempty"`
	Files     int64  `json:"files"`
	Bytes     int64  `json:"bytes"`
	// Source is table.source for a topic that follows a table.
	Source string `json:"source,omitempty"`
}

// tableStatus is one materialiser's live status.
type tableStatus struct {
	name string // "<namespace>.<name>", the metrics label

	mu sync.Mutex
	st TableStatus
	// caughtUpAt is when the table last covered everything up to the
	// topic's last stable offsets.
	caughtUpAt time.Time
}

func newTableStatus(st TableStatus, now time.Time) *tableStatus {
	st.State = StateRunning
	return &tableStatus{name: st.Namespace + "." + st.Name, st: st, caughtUpAt: now}
}

func (s *tableStatus) get() TableStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st
}

func (s *tableStatus) update(fn func(*TableStatus)) {
	s.mu.Lock()
	fn(&s.st)
	s.mu.Unlock()
}

func (s *tableStatus) setErr(err error) {
	s.update(func(st *TableStatus) { st.Errors++; st.LastError = err.Error() })
}

func (s *tableStatus) recordError(msg string, _ time.Time) {
	s.update(func(st *TableStatus) { st.Errors++; st.LastError = msg })
}

func (s *tableStatus) suspend(reason string) {
	s.update(func(st *TableStatus) {
		st.State, st.Reason = StateSuspended, reason
		st.Errors++
		st.LastError = reason
	})
}

func (s *tableStatus) caughtUp(now time.Time) {
	s.mu.Lock()
	s.caughtUpAt = now
	s.st.LagSeconds = 0
	s.mu.Unlock()
}

// setLag records the lag in records and returns the lag in seconds: zero
// when caught up, else the time since the table last was.
func (s *tableStatus) setLag(records int64, now time.Time) float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.LagRecords = records
	if records == 0 {
		s.caughtUpAt = now
		s.st.LagSeconds = 0
	} else {
		s.st.LagSeconds = now.Sub(s.caughtUpAt).Seconds()
	}
	return s.st.LagSeconds
}

func (s *tableStatus) committed(now time.Time, snapshot int64, rows int) {
	s.update(func(st *TableStatus) {
		st.Commits++
		st.Records += int64(rows)
		st.LastCommitMs = now.UnixMilli()
		st.LastSnapshotID = snapshot
	})
}

func (s *tableStatus) setFiles(snapshot, commitMs, files, bytes int64) {
	s.update(func(st *TableStatus) {
		st.LastSnapshotID, st.LastCommitMs = snapshot, commitMs
		st.Files, st.Bytes = files, bytes
	})
}
