package objstore

import "sync"

// dirSync coalesces the fsyncs of one directory. A Put's rename is durable
// once an fsync of its directory that started after the rename has
// finished; concurrent Puts into one directory (the intake's overlapping
// uploads) can share such an fsync instead of queueing one each behind the
// device.
type dirSync struct {
	mu      sync.Mutex
	cond    *sync.Cond
	running bool
	started uint64 // generations of fsyncs started
	done    uint64 // generation of the last fsync finished
	err     error  // its error
	waiting int    // callers parked on cond (tests observe it)
}

func newDirSync() *dirSync {
	d := &dirSync{}
	d.cond = sync.NewCond(&d.mu)
	return d
}

// sync returns once an fsync of path that started after the call has
// finished, running it itself if no other caller is, and returns that
// fsync's error.
func (d *dirSync) sync(path string, fsync func(string) error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	// One running now may have started before the caller's rename: only
	// the next generation counts.
	want := d.started + 1
	for d.done < want {
		if d.running {
			d.waiting++
			d.cond.Wait()
			d.waiting--
			continue
		}
		d.running = true
		d.started++
		gen := d.started
		d.mu.Unlock()
		err := fsync(path)
		d.mu.Lock()
		d.running, d.done, d.err = false, gen, err
		d.cond.Broadcast()
	}
	return d.err
}

// dirSyncFor returns dir's coalescer.
func (s *fileStore) dirSyncFor(dir string) *dirSync {
	if d, ok := s.dirSyncs.Load(dir); ok {
		return d.(*dirSync)
	}
	d, _ := s.dirSyncs.LoadOrStore(dir, newDirSync())
	return d.(*dirSync)
}
