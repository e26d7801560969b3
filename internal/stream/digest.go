package stream

import (
	"encoding/binary"
	"fmt"
)

// Digests of the sequencer state (DESIGN §5a rule 1: checkpoints carry a
// state digest that brokers compare).
//
// A checkpoint starts with a checkpoint-mark entry. Every broker that
// applies the mark records the digest of its state right after it; the
// maintainer writes its state at the mark with that digest (in the object
// and the pointer) and then appends a digest entry, which every broker
// compares with its own record. A mismatch is divergence: an alarm
// (runnel_state_digest_mismatch_total and an error log), not a silent
// difference in offsets. Loading a checkpoint verifies its digest too.
//
// The digest covers everything the sequencer derives. Maps are combined
// order-independently (a sum of per-entry hashes), so computing it neither
// sorts nor allocates: it runs under the engine's lock on every broker.

// fnvHash is the digest's hash: FNV-1a's step taken over 64-bit words
// instead of bytes (a bijection of each input word, so changing any one
// value always changes the hash; four times fewer steps than bytes), fed
// fixed-width integers and length-prefixed strings, and finished with
// murmur3's mixer wherever hashes are summed or returned.
type fnvHash uint64

const (
	fnvOffset fnvHash = 14695981039346656037
	fnvPrime  fnvHash = 1099511628211
)

func (h fnvHash) u64(v uint64) fnvHash { return (h ^ fnvHash(v)) * fnvPrime }

func (h fnvHash) i64(v int64) fnvHash { return h.u64(uint64(v)) }

func (h fnvHash) bool(b bool) fnvHash {
	if b {
		return h.u64(1)
	}
	return h.u64(0)
}

func (h fnvHash) str(s string) fnvHash {
	h = h.u64(uint64(len(s)))
	for len(s) >= 8 {
		h = h.u64(uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
			uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56)
		s = s[8:]
	}
	var w uint64
	for i := 0; i < len(s); i++ {
		w |= uint64(s[i]) << (8 * i)
	}
	return h.u64(w)
}

func (h fnvHash) id(id TopicID) fnvHash {
	return h.u64(binary.LittleEndian.Uint64(id[:8])).u64(binary.LittleEndian.Uint64(id[8:]))
}

// fin mixes the hash's bits (murmur3's fmix64), so that sums of hashes of
// similar entries do not cancel.
func (h fnvHash) fin() fnvHash {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// mixMap mixes a map into h order-independently: its length, then the sum
// of each entry's finished hash.
func mixMap[K comparable, V any](h fnvHash, m map[K]V, entry func(K, V) fnvHash) fnvHash {
	var sum fnvHash
	for k, v := range m {
		sum += entry(k, v).fin()
	}
	return h.u64(uint64(len(m))).u64(uint64(sum))
}

// digest fingerprints the whole state. Two brokers that applied the same
// entries from the same start have the same digest; nil and empty maps or
// slices count alike (a checkpoint round trip turns one into the other).
func (s *state) digest() uint64 {
	h := fnvOffset.i64(s.Rev).i64(s.Clock).i64(s.Entries).i64(s.LastExpiry)
	h = mixMap(h, s.Topics, func(_ TopicID, t *topicState) fnvHash { return t.digest() })
	h = mixMap(h, s.ByName, func(name string, id TopicID) fnvHash { return fnvOffset.str(name).id(id) })
	h = mixMap(h, s.Producers, func(pid int64, ep int16) fnvHash { return fnvOffset.i64(pid).i64(int64(ep)) })
	h = mixMap(h, s.ProducerSeen, func(pid int64, seen int64) fnvHash { return fnvOffset.i64(pid).i64(seen) })
	h = mixMap(h, s.ObjRefs, func(obj string, n int32) fnvHash { return fnvOffset.str(obj).i64(int64(n)) })
	h = h.u64(uint64(len(s.Garbage)))
	for _, g := range s.Garbage {
		h = h.str(g.Obj).i64(g.Rev).i64(g.Clock)
	}
	h = mixMap(h, s.Txns, func(id string, tx *txnState) fnvHash { return fnvOffset.str(id).u64(tx.digest()) })
	h = mixMap(h, s.TxnByPID, func(pid int64, id string) fnvHash { return fnvOffset.i64(pid).str(id) })
	h = h.u64(uint64(len(s.TxnOffsets)))
	for _, c := range s.TxnOffsets {
		h = h.str(c.Group).i64(c.Rev).u64(digestOffsets(c.Offsets))
	}
	h = mixMap(h, s.BrokerClocks, func(id int32, bc *brokerClock) fnvHash { return fnvOffset.i64(int64(id)).i64(bc.Off).i64(bc.At) })
	return uint64(h.fin())
}

func (t *topicState) digest() fnvHash {
	h := fnvOffset.id(t.ID).str(t.Name).i64(t.CreatedRev)
	h = mixMap(h, t.Configs, func(k string, v string) fnvHash { return fnvOffset.str(k).str(v) })
	h = h.u64(uint64(len(t.Parts)))
	for _, p := range t.Parts {
		h = h.u64(uint64(p.digest()))
	}
	return h
}

func (p *partState) digest() fnvHash {
	if p == nil {
		p = newPart()
	}
	h := fnvOffset.i64(p.LogStart).i64(p.Next).i64(p.Bytes).i64(int64(p.Epoch))
	h = h.u64(uint64(len(p.Extents)))
	for i := range p.Extents {
		x := &p.Extents[i]
		h = h.i64(x.Base).i64(x.Last).str(x.Obj).i64(x.Pos).i64(x.Len).i64(x.MaxTS).bool(x.Segment).bool(x.Ctl != nil)
		if x.Ctl != nil {
			h = h.bool(x.Ctl.Commit).i64(x.Ctl.ProducerID).i64(int64(x.Ctl.Epoch))
		}
	}
	h = mixMap(h, p.Producers, func(pid int64, ps *prodState) fnvHash {
		e := fnvOffset.i64(pid).i64(int64(ps.Epoch)).i64(ps.LastSeen).u64(uint64(len(ps.Recent)))
		for _, r := range ps.Recent {
			e = e.i64(int64(r.First)).i64(int64(r.Last)).i64(r.Base).i64(int64(r.Count))
		}
		return e
	})
	h = mixMap(h, p.Open, func(pid int64, first int64) fnvHash { return fnvOffset.i64(pid).i64(first) })
	h = h.u64(uint64(len(p.Aborted)))
	for _, a := range p.Aborted {
		h = h.i64(a.ProducerID).i64(a.First).i64(a.Last)
	}
	return h
}

func (tx *txnState) digest() uint64 {
	h := fnvOffset.str(tx.ID).i64(tx.ProducerID).i64(int64(tx.Epoch)).i64(tx.PrevProducerID).i64(int64(tx.PrevEpoch)).
		i64(int64(tx.TimeoutMs)).i64(int64(tx.Phase)).i64(tx.Started).i64(tx.LastSeen)
	h = h.u64(uint64(len(tx.Parts)))
	for _, p := range tx.Parts {
		h = h.id(p.Topic).i64(int64(p.Partition))
	}
	h = h.u64(uint64(len(tx.Groups)))
	for _, g := range tx.Groups {
		h = h.str(g)
	}
	h = mixMap(h, tx.Offsets, func(g string, offs []TxnOffset) fnvHash { return fnvOffset.str(g).u64(digestOffsets(offs)) })
	return uint64(h.fin())
}

func digestOffsets(offs []TxnOffset) uint64 {
	h := fnvOffset.u64(uint64(len(offs)))
	for _, o := range offs {
		h = h.str(o.Topic).i64(int64(o.Partition)).i64(o.Offset).i64(int64(o.LeaderEpoch)).str(o.Metadata)
	}
	return uint64(h.fin())
}

// markDigest is this broker's state digest right after a checkpoint mark.
type markDigest struct {
	rev    int64
	digest uint64
}

// keptDigests is how many marks' digests a broker keeps: a digest entry
// follows its mark within one checkpoint, so a few cover overlapping
// checkpointers.
const keptDigests = 8

// onDigestEntry handles a checkpoint mark or digest entry just applied to
// st at rev: at a mark it records the state's digest (and hands the
// proposer a copy of the state, exactly as of the mark); at a digest entry
// it compares the checkpointer's digest with its own record.
func (e *Engine) onDigestEntry(st *state, key string, rev int64, ent *entry, res *applyResult) {
	switch ent.Kind {
	case kindCheckpointMark:
		d := st.digest()
		e.digestMu.Lock()
		if len(e.digests) == keptDigests {
			e.digests = append(e.digests[:0], e.digests[1:]...)
		}
		e.digests = append(e.digests, markDigest{rev: rev, digest: d})
		e.digestMu.Unlock()
		e.waitMu.Lock()
		_, proposed := e.waiters[key]
		e.waitMu.Unlock()
		if proposed {
			res.snap, res.digest = st.clone(), d
		}
	case kindCheckpointDigest:
		e.m.checkpointMs.Store(st.Clock) // a checkpoint was taken (metrics: its age)
		own, ok := e.digestAt(ent.MarkRev)
		if !ok {
			return // the mark is older than this broker's start or its record
		}
		e.m.digestChecks.Inc()
		if own != ent.Digest {
			e.m.digestMismatches.Inc()
			e.log.Error("stream: state digest mismatch: this broker's state differs from the checkpointer's at the same revision",
				"revision", ent.MarkRev, "digest", fmt.Sprintf("%016x", own),
				"checkpoint_digest", fmt.Sprintf("%016x", ent.Digest), "checkpointer", ent.Broker)
		}
	}
}

// digestAt returns this broker's digest at the mark of revision rev.
func (e *Engine) digestAt(rev int64) (uint64, bool) {
	e.digestMu.Lock()
	defer e.digestMu.Unlock()
	for _, d := range e.digests {
		if d.rev == rev {
			return d.digest, true
		}
	}
	return 0, false
}
