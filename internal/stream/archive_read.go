package stream

import (
	"context"
	"fmt"
	"sort"
	"sync"
)

// archivePrefetchers is how many whole-object reads one pass keeps in
// flight ahead of the segments being built.
const archivePrefetchers = 4

// passReads serves one archival pass the intake extents the cache does not
// hold.
//
// An intake object holds a batch of every partition produced to during one
// flush, so the plans of a pass all need the same objects, one extent each.
// Read extent by extent, a pass cost one ranged read per extent: on S3, 16
// partitions at 50 MB/s meant some 3,000 sequential GETs a second, more
// than the maintainer could do, and archival fell behind for good (the
// maintainer of a cluster reads every other broker's objects this way).
// Here each object is read whole once per pass, ahead of need, in the
// order the plans use them, and dropped when the pass has read the last
// of its extents.
//
// On a local store (Engine.remote false) a pass reads by range: a
// ranged read is a system call served from the page cache, and whole
// objects, allocated and zeroed, took a broker's maximum end-to-end rate
// from 134-147 MB/s down to 69-88 MB/s in back-to-back runs.
type passReads struct {
	e      *Engine
	budget int64
	ranged bool // read every extent by range

	mu   sync.Mutex
	cond *sync.Cond // signalled when held shrinks or the pass ends
	held int64      // bytes of objects read or being read
	objs map[string]*passObject
	// refs counts, per object, the pass's extents still to be read from
	// it (those of cached objects too: the cache may drop one).
	refs  map[string]int
	order []string // objects by first need
	ended bool
	wg    sync.WaitGroup
}

type passObject struct {
	ready chan struct{}
	size  int64 // reserved before the read, the object's length after
	data  []byte
	err   error
}

// newPassReads prepares the reads of plans and starts reading ahead.
func (e *Engine) newPassReads(ctx context.Context, plans []archivePlan, budget int64) *passReads {
	if !e.remote {
		return &passReads{e: e, ranged: true}
	}
	r := &passReads{e: e, budget: budget, objs: map[string]*passObject{}, refs: map[string]int{}}
	r.cond = sync.NewCond(&r.mu)
	ends := map[string]int64{} // the furthest extent end seen per object: its least size
	for _, p := range plans {
		for _, x := range p.extents {
			if x.Ctl != nil {
				continue
			}
			if r.refs[x.Obj] == 0 && !e.cache.has(x.Obj) {
				r.order = append(r.order, x.Obj)
			}
			r.refs[x.Obj]++
			ends[x.Obj] = max(ends[x.Obj], x.Pos+x.Len)
		}
	}
	// Intake object names sort by their writer's clock (a ULID after the
	// broker): the plans walk their partitions' extents in that order.
	sort.SliceStable(r.order, func(i, j int) bool { return objectOrder(r.order[i]) < objectOrder(r.order[j]) })
	next := 0
	for range min(archivePrefetchers, len(r.order)) {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			for {
				r.mu.Lock()
				for !r.ended && next < len(r.order) && (r.objs[r.order[next]] != nil || r.refs[r.order[next]] == 0) {
					next++ // being read on demand, or no longer needed
				}
				if r.ended || next >= len(r.order) {
					r.mu.Unlock()
					return
				}
				obj := r.order[next]
				if r.held > 0 && r.held+ends[obj] > r.budget {
					r.cond.Wait()
					r.mu.Unlock()
					continue
				}
				next++
				o := r.startLocked(obj, ends[obj])
				r.mu.Unlock()
				r.read(ctx, obj, o)
			}
		}()
	}
	return r
}

// objectOrder is the part of an object's name that orders it in time.
func objectOrder(obj string) string {
	if len(obj) < 26 {
		return obj
	}
	return obj[len(obj)-26:]
}

// startLocked reserves size bytes for reading obj and records the read.
func (r *passReads) startLocked(obj string, size int64) *passObject {
	o := &passObject{ready: make(chan struct{}), size: size}
	r.objs[obj] = o
	r.held += size
	return o
}

func (r *passReads) read(ctx context.Context, obj string, o *passObject) {
	data, err := r.e.store.Get(ctx, obj)
	r.mu.Lock()
	o.data, o.err = data, err
	r.held += int64(len(data)) - o.size
	o.size = int64(len(data))
	if r.refs[obj] == 0 { // every extent was read while this read ran
		r.dropLocked(obj)
	}
	r.mu.Unlock()
	close(o.ready)
}

func (r *passReads) dropLocked(obj string) {
	if o := r.objs[obj]; o != nil {
		r.held -= o.size
		o.data = nil
		delete(r.objs, obj)
		r.cond.Broadcast()
	}
}

// extent returns x's bytes, from the cache, a whole object this pass read,
// or (an object the budget left unread, or whose whole read failed) a
// ranged read. The bytes are shared: callers copy them, never change them.
func (r *passReads) extent(ctx context.Context, x extent) ([]byte, error) {
	if x.Ctl != nil {
		return markerBatch(x), nil
	}
	if r.ranged {
		return r.e.readExtentNoFill(ctx, x)
	}
	defer r.release(x.Obj)
	r.mu.Lock()
	o := r.objs[x.Obj]
	r.mu.Unlock()
	if o == nil {
		if b, ok, err := r.e.cachedExtent(x); ok || err != nil {
			return b, err
		}
		r.mu.Lock()
		if o = r.objs[x.Obj]; o == nil && (r.held == 0 || r.held+x.Pos+x.Len <= r.budget) {
			// Needed before the readers ahead got to it, or dropped by
			// the cache since the pass began: read it here.
			o = r.startLocked(x.Obj, x.Pos+x.Len)
			r.mu.Unlock()
			r.read(ctx, x.Obj, o)
		} else {
			r.mu.Unlock()
		}
	}
	if o == nil {
		return r.e.readExtentNoFill(ctx, x)
	}
	select {
	case <-o.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if o.err != nil {
		return r.e.readExtentNoFill(ctx, x)
	}
	if x.Pos+x.Len > int64(len(o.data)) {
		return nil, fmt.Errorf("%w: extent beyond object %s", ErrStorage, x.Obj)
	}
	return o.data[x.Pos : x.Pos+x.Len], nil
}

// release counts one extent of obj as read; the object is dropped after
// its last one.
func (r *passReads) release(obj string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refs[obj]--
	if r.refs[obj] > 0 {
		return
	}
	delete(r.refs, obj)
	if o := r.objs[obj]; o != nil {
		select {
		case <-o.ready:
			r.dropLocked(obj)
		default: // dropped by its read when it completes
		}
	}
}

// end stops reading ahead and waits for the reads in flight.
func (r *passReads) end() {
	if r.ranged {
		return
	}
	r.mu.Lock()
	r.ended = true
	r.cond.Broadcast()
	r.mu.Unlock()
	r.wg.Wait()
}
