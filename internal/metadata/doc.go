// Package metadata owns Runnel's connection to etcd: it starts the embedded
// etcd member used by single-node deployments (and by brokers that are also
// quorum members), connects to external etcd clusters, and provides the
// maintenance operations (compaction, defragmentation, size) the storage
// engine's housekeeping needs so that etcd never fills its quota (DESIGN §10).
// Mirror keeps an in-memory copy of an etcd prefix (load, watch, reload
// after a broken watch, wait for a revision) for the stores that cache
// their state on every broker.
//
// The package knows nothing about Runnel's keys or entries: a Mirror reads
// only the prefix its owner names and decodes through its owner's function,
// and nothing here writes application data. It imports no other Runnel
// package, so every service may use it. Fsync stays on: turning it off
// would lose acknowledged intake entries.
package metadata
