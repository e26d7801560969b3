// Package metadata owns Runnel's connection to etcd: it starts the embedded
// etcd member used by single-node deployments (and by brokers that are also
// quorum members), connects to external etcd clusters, and provides the
// maintenance operations (compaction, defragmentation, size) the storage
// engine's housekeeping needs so that etcd never fills its quota (DESIGN §10).
//
// The package knows nothing about Runnel's keys or entries; it must never
// read or write application data. Fsync stays on: turning it off would lose
// acknowledged intake entries.
package metadata
