// Package stream is Runnel's partitioned log: the intake buffer and its
// flushes into intake objects, the intake log in etcd, the sequencer that
// replays that log into the partition index (offsets, idempotence, topic
// metadata), the read path, checkpoints, archival into per-partition
// segments, retention, compaction and garbage collection of objects
// (DESIGN.md §2–5a).
//
// Everything the sequencer decides comes from the log alone: state.apply
// reads no clock, no randomness and no local configuration, so every broker
// derives the same offsets. Maintenance (archival, retention, compaction,
// garbage collection, checkpoints) runs on one elected broker and only ever
// proposes entries that the sequencer validates. This package must never
// acknowledge a write before its object is durable and its entry applied,
// and never delete an object a checkpoint or a reader may still need.
package stream
