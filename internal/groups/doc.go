// Package groups is the group coordinator: the classic protocol (JoinGroup,
// SyncGroup, Heartbeat, LeaveGroup) with Kafka's GroupCoordinator semantics
// for any protocol type (consumer, connect, ...); the KIP-848 consumer
// protocol with broker-side assignment (consumer.go, assign.go,
// consumer_api.go) and online conversion between the two (convert.go);
// offset commit/fetch/delete, the group side of transactional offsets
// (txn.go), and group administration. KIP-932 share groups (share.go,
// share_api.go, share_offsets.go) have their membership and assignment
// here; their share-partition state lives in internal/share, reached
// through the ShareStates interface. The GROUP config store
// (groupconfigs.go) keeps per group config overrides, cached on every
// broker.
//
// Groups are spread over the fixed coordinator shards of internal/cluster
// (hash of the group id). A Coordinator serves only the groups of shards this
// broker owns; for any other group it answers NOT_COORDINATOR, and while a
// newly gained shard is being read from etcd, COORDINATOR_LOAD_IN_PROGRESS.
//
// Durable state lives in etcd under <prefix>/groups/<shard>/<group>/: a meta
// key (protocol type, generation, leader, members with their subscriptions
// and assignments; for a consumer group its epochs, members and target
// assignment) and one offsets/<topic> key per committed topic. Every
// write is a Txn conditioned on the shard owner key's create revision, so a
// broker that has lost a shard (even one that has not noticed yet) can never
// overwrite the new owner's state. An assignment is persisted before
// SyncGroup answers.
//
// The package never reads or writes record data and never blocks in a
// polling loop: rebalances and session expiry run on timers and channels.
package groups
