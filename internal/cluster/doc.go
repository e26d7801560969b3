// Package cluster owns broker membership and coordinator shard ownership,
// both kept in etcd under the broker's lease (DESIGN §5).
//
// A broker grants a lease at Start, keeps it alive, and watches the live
// broker set; Register puts the broker's key under the lease once the broker
// has caught up (DESIGN §5a rule 7). A broker whose lease is lost (etcd
// did not hear from it for the TTL) is unhealthy until it has a new lease,
// has caught up again (Options.CatchUp) and is back in the live set. Partition leaders and the preferred owner
// of each coordinator shard are rendezvous hashes over the live set, so every
// broker computes the same answer without coordination. Shards are owned
// through create-only keys under the lease; the owner key's create revision
// is the fence every durable write of a shard must be conditioned on.
//
// This package never serves Kafka requests and never writes anything but its
// own keys (brokers/<id> and coordinators/<shard>).
package cluster
