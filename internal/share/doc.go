// Package share is the record side of KIP-932 share groups: the state of
// every share partition (which records of a partition a share group has
// acquired, acknowledged, released or rejected, with delivery counts and
// acquisition locks), the acquisition of records for ShareFetch, the
// acknowledgements of ShareFetch and ShareAcknowledge, lock timeouts, the
// share-partition start offset, and the dead-letter topic of KIP-1191.
//
// Membership of share groups (ShareGroupHeartbeat, assignments) belongs to
// internal/groups; the Kafka front end (share sessions, request decoding)
// to internal/protocol. This package reaches the log only through the small
// Log interface it defines, and never imports protocol, groups or broker.
//
// Durable state lives in etcd, one key per share partition; every change is
// a compare-and-swap on that key's revision, so two brokers that both
// believe they serve a share partition can never both apply a change: the
// loser reloads and tries again. A record's delivery count is persisted
// when it is acquired, so no crash lets a record be delivered more often
// than the group's delivery count limit. Under a retry policy
// (errors.retry.delays.ms) a released or timed-out record's due time is in
// the state too, so the wait survives a restart or a move.
//
// Files: state.go is the share-partition state machine (pure: no I/O, no
// clock; now is passed in), codec.go its stored form, store.go the etcd
// keys with their cache and watch, engine.go the Engine the front end and
// the coordinator call, sweep.go its one background goroutine (lock
// expiry, dead letters, and waking long polls when a record's retry delay
// ends), deadletters.go the writer contract and dlq*.go
// the KIP-1191 writer. Dead letters are persisted in the state before they
// are handed to the writer and removed only after it succeeded, so a crash
// can repeat a write but never lose one; the writer is idempotent.
package share
