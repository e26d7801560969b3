package stream

// OffsetTime is what the partition index knows of the time of one offset.
type OffsetTime struct {
	// MaxTimestamp is the largest record timestamp (ms) of the indexed
	// extent holding the offset: one client batch before archival, one
	// segment chunk (a run of whole batches, about Options.ChunkBytes)
	// after. -1 when the extent carries no timestamp.
	MaxTimestamp int64
	// Base and Last are that extent's first and last offsets: the offset's
	// record is somewhere in this run, so its own timestamp is at most
	// MaxTimestamp.
	Base, Last int64
}

// TimeAt returns the index's timestamp for the extent holding offset, from
// memory only: it never reads record data. ok is false when the offset is
// below the log start or at or past the high watermark.
func (e *Engine) TimeAt(topic string, partition int32, offset int64) (OffsetTime, bool) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	p, err := e.partByName(topic, partition)
	if err != nil || offset < p.LogStart || offset >= p.Next {
		return OffsetTime{}, false
	}
	i := p.findExtent(offset)
	if i == len(p.Extents) || p.Extents[i].Base > offset {
		return OffsetTime{}, false
	}
	x := p.Extents[i]
	return OffsetTime{MaxTimestamp: x.MaxTS, Base: x.Base, Last: x.Last}, true
}
