package stream

import (
	"context"
	"sync"
)

// prefetchReads bounds the reads one Prefetch has in flight.
const prefetchReads = 8

// Prefetch reads, several at a time, the extents that fetches of ps would
// read from the store, and caches them, so that the Fetch calls that follow
// (one partition after another, each extent after the previous one) find
// them in memory. It reads at most maxBytes in all, and at most a quarter
// of the cache, partitions in order, each up to its own MaxBytes.
//
// A consumer that has fallen behind the cache reads every extent from the
// store. On S3 that is one request per extent of a few hundred KiB, and a
// fetch of 16 partitions made 60 or more of them in a row, one round trip
// each: the consumer's rate was its round trip's, not the store's. Prefetch
// does nothing on a local store, where a read is a system call served from
// the page cache, nor when at most one extent is missing.
//
// Errors are left to Fetch, which reads again what Prefetch could not.
func (e *Engine) Prefetch(ctx context.Context, ps []FetchPartition, maxBytes int64) {
	if !e.remote || len(ps) == 0 {
		return
	}
	// left is what the fetch may return; room is what Prefetch may add to
	// the cache without evicting its own reads before they are used.
	left, room := maxBytes, e.cache.max/4
	var missing []extent
	seen := map[string]bool{}
	for _, p := range ps {
		if left <= 0 || room <= 0 {
			break
		}
		xs, _, err := e.fetchWindow(p, p.Offset, min(int64(p.MaxBytes), left), true)
		if err != nil {
			continue
		}
		for _, x := range xs {
			left -= x.Len
			if x.Ctl != nil || e.cache.has(x.Obj) {
				continue
			}
			k := rangeKey(x)
			if seen[k] || e.cache.has(k) {
				continue
			}
			if room -= x.Len; room < 0 {
				break
			}
			seen[k] = true
			missing = append(missing, x)
		}
	}
	if len(missing) < 2 {
		return
	}
	slots := make(chan struct{}, prefetchReads)
	var wg sync.WaitGroup
	for _, x := range missing {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			_, _ = e.readExtent(ctx, x)
		}()
	}
	wg.Wait()
}
