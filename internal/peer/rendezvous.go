package peer

import (
	"encoding/binary"
	"hash/fnv"
)

// Owner returns the broker key is placed on: of brokers, the one with the
// highest rendezvous (highest random weight) score for key, ties going to
// the lower node id. Every broker that sees the same set computes the same
// owner, whatever the set's order, and when a broker joins or leaves only
// the keys it gains or held move. ok is false when brokers is empty.
//
// Partition leaders, coordinator shard owners and transaction coordinators
// are all placed with it; brokers of one cluster must agree on it, so a
// change to score moves every key at an upgrade.
func Owner(key []byte, brokers []Broker) (b Broker, ok bool) {
	var best uint64
	for i, c := range brokers {
		s := score(key, c.NodeID)
		if i == 0 || s > best || (s == best && c.NodeID < b.NodeID) {
			b, best = c, s
		}
	}
	return b, len(brokers) > 0
}

// score is FNV-1a of the key and the big-endian node id, through the
// splitmix64 finaliser: FNV alone leaves the high bits nearly equal for
// node ids that differ only in their last byte, which gives some brokers
// far more keys than others.
func score(key []byte, node int32) uint64 {
	h := fnv.New64a()
	_, _ = h.Write(key)
	var id [4]byte
	binary.BigEndian.PutUint32(id[:], uint32(node))
	_, _ = h.Write(id[:])
	return mix64(h.Sum64())
}

// mix64 is the splitmix64 finaliser.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
