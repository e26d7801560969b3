package groups

import "sort"

// CommittedOffset is one partition's committed offset as lag monitoring
// reads it.
type CommittedOffset struct {
	Topic     string
	Partition int32
	Offset    int64
	// CommitMs is when the offset was committed (broker clock, ms); 0 for
	// an offset a committed transaction carries that the coordinator has
	// not yet written to the group store (it then gets the time of that
	// write).
	CommitMs int64
}

// GroupOffsets is one group's committed offsets, by topic then partition.
type GroupOffsets struct {
	Group   string
	Offsets []CommittedOffset
}

// OwnedOffsets returns the committed offsets (transactional ones included)
// of every group in the shards this broker owns and has loaded, by group
// id: each group is reported by its coordinator alone. It reads memory only.
func (c *Coordinator) OwnedOffsets() []GroupOffsets {
	c.mu.RLock()
	var shards []*shard
	for _, sh := range c.shards {
		if !sh.loading && !sh.stale {
			shards = append(shards, sh)
		}
	}
	c.mu.RUnlock()
	var out []GroupOffsets
	for _, sh := range shards {
		for _, g := range sh.list() {
			g.mu.Lock()
			dead, id := g.dead, g.id
			own := make(map[string]map[int32]offsetRecord, len(g.offsets))
			for t, parts := range g.offsets {
				own[t] = make(map[int32]offsetRecord, len(parts))
				for p, r := range parts {
					own[t][p] = r
				}
			}
			g.mu.Unlock()
			if dead {
				continue
			}
			offsets, _ := c.overlayTxnOffsets(id, own)
			gof := GroupOffsets{Group: id}
			for t, parts := range offsets {
				for p, r := range parts {
					if r.Offset >= 0 {
						gof.Offsets = append(gof.Offsets, CommittedOffset{Topic: t, Partition: p, Offset: r.Offset, CommitMs: r.CommitMs})
					}
				}
			}
			if len(gof.Offsets) == 0 {
				continue
			}
			sort.Slice(gof.Offsets, func(i, j int) bool {
				a, b := gof.Offsets[i], gof.Offsets[j]
				return a.Topic < b.Topic || a.Topic == b.Topic && a.Partition < b.Partition
			})
			out = append(out, gof)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Group < out[j].Group })
	return out
}
