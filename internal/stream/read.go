package stream

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"

	"github.com/runnel-dev/runnel/internal/objstore"
)

// FetchPartition is one partition to read.
type FetchPartition struct {
	TopicID       TopicID
	Partition     int32
	Offset        int64
	MaxBytes      int32
	ReadCommitted bool
}

// AbortedTxn is one entry of a read_committed fetch's aborted list.
type AbortedTxn struct {
	ProducerID  int64
	FirstOffset int64
}

// FetchResult is what one partition read returned.
type FetchResult struct {
	HighWatermark    int64
	LastStableOffset int64
	LogStartOffset   int64
	Records          []byte
	Aborted          []AbortedTxn
}

// Fetch reads whole batches of one partition starting at the batch that
// holds p.Offset, up to p.MaxBytes (the first batch is always whole). It
// never waits for new data.
func (e *Engine) Fetch(ctx context.Context, p FetchPartition) (FetchResult, error) {
	res, err := e.fetchOnce(ctx, p)
	if errors.Is(err, objstore.ErrNotFound) {
		// The extent moved (archived or compacted) between the lookup and
		// the read: look the offset up again (DESIGN §5a rule 8).
		res, err = e.fetchOnce(ctx, p)
	}
	if errors.Is(err, objstore.ErrNotFound) {
		// Still gone: this broker has not applied the entry that moved
		// it (its replay is behind). Catch up and look again.
		if serr := e.SyncRead(ctx); serr == nil {
			res, err = e.fetchOnce(ctx, p)
		}
	}
	if errors.Is(err, objstore.ErrNotFound) {
		// Retriable: the client asks again, here or elsewhere.
		err = fmt.Errorf("%w: %v", ErrStorage, err)
	}
	return res, err
}

func (e *Engine) fetchOnce(ctx context.Context, fp FetchPartition) (FetchResult, error) {
	maxBytes := int64(fp.MaxBytes)
	if maxBytes <= 0 {
		maxBytes = 1
	}
	var res FetchResult
	var out []byte
	lastOut := int64(-1) // last offset of the last batch returned
	// done finishes a read_committed result with the aborted transactions
	// the returned batches overlap.
	done := func(err error) (FetchResult, error) {
		res.Records = out
		if err == nil && fp.ReadCommitted && lastOut >= fp.Offset {
			res.Aborted = e.abortedIn(fp, fp.Offset, lastOut)
		}
		return res, err
	}
	// A read_committed consumer sees nothing at or past the last stable
	// offset.
	limit := int64(math.MaxInt64)
	next := fp.Offset // first offset the next window starts from
	for first := true; ; first = false {
		xs, r, err := e.fetchWindow(fp, next, maxBytes-int64(len(out)), first)
		if first {
			res = r
			if fp.ReadCommitted {
				limit = r.LastStableOffset
			}
		}
		for len(xs) > 0 && xs[len(xs)-1].Base >= limit {
			xs = xs[:len(xs)-1]
		}
		if err != nil || len(xs) == 0 {
			return done(err)
		}
		if out == nil {
			// Size the result once: growing it by appends copied and
			// allocated each fetched byte about twice more.
			var want int64
			for _, x := range xs {
				want += x.Len
			}
			out = make([]byte, 0, min(want, maxBytes))
		}
		full := false
		for _, x := range xs {
			data, err := e.readExtent(ctx, x)
			if err != nil {
				return res, err
			}
			err = forEachBatch(data, func(b []byte, h batchHeader) bool {
				base, last := h.BaseOffset, h.BaseOffset+int64(h.LastOffsetDelta)
				if !x.Segment {
					base, last = x.Base, x.Last
				}
				if last < fp.Offset {
					return true
				}
				if base >= limit {
					full = true
					return false
				}
				if len(out) > 0 && int64(len(out)+len(b)) > maxBytes {
					full = true
					return false
				}
				start := len(out)
				out = append(out, b...)
				if !x.Segment {
					setBaseOffset(out[start:], base)
				}
				setLeaderEpoch(out[start:], 0)
				lastOut = last
				return true
			})
			if err != nil {
				return res, err
			}
			next = x.Last + 1
			if full {
				break
			}
		}
		if full || len(out) > 0 {
			return done(nil)
		}
		// Every batch of the window ended before the offset (a compacted
		// gap): go on with the following extents.
	}
}

// fetchWindow copies, under the read lock, the extents from the one holding
// off until about budget bytes (at least one). On the first window it also
// checks the offset against the partition's range.
func (e *Engine) fetchWindow(fp FetchPartition, off, budget int64, first bool) ([]extent, FetchResult, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	t, ok := e.st.Topics[fp.TopicID]
	if !ok {
		return nil, FetchResult{}, ErrUnknownTopicID
	}
	if fp.Partition < 0 || int(fp.Partition) >= len(t.Parts) {
		return nil, FetchResult{}, ErrUnknownTopicOrPartition
	}
	p := t.Parts[fp.Partition]
	res := FetchResult{HighWatermark: p.Next, LastStableOffset: max(p.lastStable(), p.LogStart), LogStartOffset: p.LogStart}
	if first && (fp.Offset < p.LogStart || fp.Offset > p.Next) {
		return nil, res, fmt.Errorf("%w: offset %d is outside [%d, %d]", ErrOffsetOutOfRange, fp.Offset, p.LogStart, p.Next)
	}
	var xs []extent
	var total int64
	for i := p.findExtent(off); i < len(p.Extents) && (total < budget || len(xs) == 0); i++ {
		xs = append(xs, p.Extents[i])
		total += p.Extents[i].Len
	}
	return xs, res, nil
}

// abortedIn returns the aborted transactions of a partition that overlap
// [from, to].
func (e *Engine) abortedIn(fp FetchPartition, from, to int64) []AbortedTxn {
	e.mu.RLock()
	defer e.mu.RUnlock()
	p, err := e.st.partition(fp.TopicID, fp.Partition)
	if err != nil {
		return nil
	}
	return p.abortedIn(from, to)
}

// forEachBatch walks the batches laid end to end in data.
func forEachBatch(data []byte, fn func(b []byte, h batchHeader) bool) error {
	for len(data) > 0 {
		h, err := parseBatchHeader(data)
		if err != nil {
			return fmt.Errorf("%w: stored batch: %v", ErrStorage, err)
		}
		n := h.totalLen()
		if n < batchHeaderLen || n > len(data) {
			return fmt.Errorf("%w: stored batch of length %d in %d bytes", ErrStorage, n, len(data))
		}
		if !fn(data[:n], h) {
			return nil
		}
		data = data[n:]
	}
	return nil
}

// readExtent returns an extent's bytes: from the cache of recent objects,
// else by a ranged read from the store. The result must not be modified.
func (e *Engine) readExtent(ctx context.Context, x extent) ([]byte, error) {
	return e.readExtentCached(ctx, x, true)
}

// cachedExtent returns x's bytes if the cache holds its object or the
// extent itself.
func (e *Engine) cachedExtent(x extent) ([]byte, bool, error) {
	if whole, ok := e.cache.get(x.Obj); ok {
		if x.Pos+x.Len > int64(len(whole)) {
			return nil, false, fmt.Errorf("%w: extent beyond cached object %s", ErrStorage, x.Obj)
		}
		e.m.cacheHits.Inc()
		return whole[x.Pos : x.Pos+x.Len], true, nil
	}
	if b, ok := e.cache.get(rangeKey(x)); ok && int64(len(b)) == x.Len {
		e.m.cacheHits.Inc()
		return b, true, nil
	}
	return nil, false, nil
}

// rangeKey is the cache key of an extent read by range.
func rangeKey(x extent) string {
	var pos [20]byte
	return x.Obj + "@" + string(strconv.AppendInt(pos[:0], x.Pos, 10))
}

// readExtentNoFill reads like readExtent but leaves the cache as it is.
func (e *Engine) readExtentNoFill(ctx context.Context, x extent) ([]byte, error) {
	return e.readExtentCached(ctx, x, false)
}

func (e *Engine) readExtentCached(ctx context.Context, x extent, fill bool) ([]byte, error) {
	if x.Ctl != nil {
		return markerBatch(x), nil
	}
	if b, ok, err := e.cachedExtent(x); ok || err != nil {
		return b, err
	}
	rk := rangeKey(x)
	e.m.cacheMisses.Inc()
	b, err := e.store.GetRange(ctx, x.Obj, x.Pos, x.Len)
	if err != nil {
		if errors.Is(err, objstore.ErrNotFound) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: reading %s: %v", ErrStorage, x.Obj, err)
	}
	if int64(len(b)) != x.Len {
		return nil, fmt.Errorf("%w: short read of %s", ErrStorage, x.Obj)
	}
	if fill {
		e.cache.put(rk, b)
	}
	return b, nil
}

// Special ListOffsets timestamps.
const (
	TimestampLatest        = -1
	TimestampEarliest      = -2
	TimestampMax           = -3
	TimestampEarliestLocal = -4
	TimestampPendingUpload = -5
)

// OffsetForTimestamp answers ListOffsets for one partition. For ts >= 0 it
// returns the first offset whose record timestamp is >= ts, or -1.
func (e *Engine) OffsetForTimestamp(ctx context.Context, topic string, partition int32, ts int64) (int64, int64, error) {
	e.mu.RLock()
	p, err := e.partByName(topic, partition)
	if err != nil {
		e.mu.RUnlock()
		return 0, 0, err
	}
	logStart, next := p.LogStart, p.Next
	var cands []extent
	switch {
	case ts == TimestampLatest:
		e.mu.RUnlock()
		return next, -1, nil
	case ts == TimestampEarliest || ts == TimestampEarliestLocal:
		e.mu.RUnlock()
		return logStart, -1, nil
	case ts == TimestampPendingUpload:
		e.mu.RUnlock()
		return -1, -1, nil
	case ts == TimestampMax:
		best := -1
		for i, x := range p.Extents {
			if x.Last >= logStart && (best < 0 || x.MaxTS > p.Extents[best].MaxTS) {
				best = i
			}
		}
		if best >= 0 {
			cands = []extent{p.Extents[best]}
		}
	case ts >= 0:
		for i := p.findExtent(logStart); i < len(p.Extents); i++ {
			if p.Extents[i].MaxTS >= ts {
				cands = append(cands, p.Extents[i:min(i+4, len(p.Extents))]...)
				break
			}
		}
	default:
		e.mu.RUnlock()
		return 0, 0, fmt.Errorf("%w: timestamp %d", ErrInvalidRecord, ts)
	}
	e.mu.RUnlock()

	if ts == TimestampMax {
		if len(cands) == 0 {
			return -1, -1, nil
		}
		return e.scanRecords(ctx, cands[0], nil, logStart)
	}
	for _, x := range cands {
		off, t, err := e.scanRecords(ctx, x, func(off, t int64) bool { return t >= ts }, logStart)
		if err != nil {
			return 0, 0, err
		}
		if off >= 0 {
			return off, t, nil
		}
	}
	return -1, -1, nil
}

// scanRecords walks the records of an extent at or after from. It returns
// the first record for which match is true, or -1; with a nil match it
// returns the record with the largest timestamp.
func (e *Engine) scanRecords(ctx context.Context, x extent, match func(off, ts int64) bool, from int64) (int64, int64, error) {
	data, err := e.readExtent(ctx, x)
	if err != nil {
		return 0, 0, err
	}
	bestOff, bestTS := int64(-1), int64(-1)
	found := false
	var scanErr error
	err = forEachBatch(data, func(b []byte, h batchHeader) bool {
		base := h.BaseOffset
		if !x.Segment {
			base = x.Base
		}
		if h.control() {
			return true
		}
		_, recs, err := batchRecordsData(b)
		if err != nil {
			scanErr = fmt.Errorf("%w: %v", ErrStorage, err)
			return false
		}
		err = iterRecords(recs, h.NumRecords, func(_ int32, r *rawRecord) error {
			off := base + int64(r.OffsetDelta)
			t := h.FirstTimestamp + r.TimestampDelta
			if h.logAppendTime() {
				t = h.MaxTimestamp
			}
			if off < from || found {
				return nil
			}
			if match != nil && match(off, t) {
				bestOff, bestTS, found = off, t, true
				return nil
			}
			if t > bestTS {
				bestOff, bestTS = off, t
			}
			return nil
		})
		if err != nil {
			scanErr = fmt.Errorf("%w: %v", ErrStorage, err)
			return false
		}
		return !found
	})
	if err == nil {
		err = scanErr
	}
	if err != nil {
		return 0, 0, err
	}
	if found || match == nil {
		return bestOff, bestTS, nil
	}
	return -1, -1, nil
}

// objCache keeps recently flushed objects and recently read ranges in
// memory, bounded by bytes, least recently used out first.
type objCache struct {
	mu    sync.Mutex
	max   int64
	size  int64
	ll    *list.List
	items map[string]*list.Element
}

type cacheItem struct {
	key  string
	data []byte
}

func newObjCache(max int64) *objCache {
	return &objCache{max: max, ll: list.New(), items: map[string]*list.Element{}}
}

func (c *objCache) get(key string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		return nil, false
	}
	c.ll.MoveToFront(el)
	return el.Value.(*cacheItem).data, true
}

// has reports whether key is cached, without counting as a use.
func (c *objCache) has(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.items[key]
	return ok
}

// put caches data under key. It reports whether the cache holds data itself
// (the caller must then never change it) rather than a copy or nothing.
func (c *objCache) put(key string, data []byte) bool {
	if int64(len(data)) > c.max/4 {
		return false
	}
	own := true
	if cap(data) > len(data)+len(data)/8 {
		// Do not pin a mostly empty buffer: the cache accounts lengths.
		data, own = append([]byte(nil), data...), false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		c.size -= int64(len(el.Value.(*cacheItem).data))
		el.Value.(*cacheItem).data = data
		c.size += int64(len(data))
		c.ll.MoveToFront(el)
	} else {
		c.items[key] = c.ll.PushFront(&cacheItem{key: key, data: data})
		c.size += int64(len(data))
	}
	for c.size > c.max && c.ll.Len() > 0 {
		el := c.ll.Back()
		it := el.Value.(*cacheItem)
		c.ll.Remove(el)
		delete(c.items, it.key)
		c.size -= int64(len(it.data))
	}
	return own
}

func (c *objCache) remove(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		c.size -= int64(len(el.Value.(*cacheItem).data))
		c.ll.Remove(el)
		delete(c.items, key)
	}
}
