package stream

import (
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/gob"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"time"

	"github.com/klauspost/compress/s2"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/runnel-dev/runnel/internal/objstore"
)

// pointer is the value of the checkpoint pointer key: the newest
// checkpoint and the revision its state covers.
type pointer struct {
	Rev    int64  `json:"rev"`
	Object string `json:"object"`
	// Digest is the state's digest at Rev and Entries its entry count
	// (both zero in pointers written before checkpoints carried them).
	Digest  uint64 `json:"digest,omitempty"`
	Entries int64  `json:"entries,omitempty"`
}

func decodePointer(b []byte) (pointer, error) {
	var p pointer
	if err := json.Unmarshal(b, &p); err != nil {
		return p, fmt.Errorf("%w: checkpoint pointer: %v", ErrStorage, err)
	}
	return p, nil
}

// etcdCompactEvery is how often checkpoints also compact etcd's revisions.
const etcdCompactEvery = 5 * time.Minute

// checkpointVersion is bumped when the checkpoint encoding changes.
//
// Version 2, inside one s2 stream (klauspost/compress: several times
// faster than flate, which took half a checkpoint's time): the state without its extents as one
// gob message, then the number of partitions with extents and, for each,
// its topic id (16 bytes), partition index (uvarint), and its packed
// extents (uvarint length, packExtents); then the garbage list
// (packGarbage), which older version 2 checkpoints kept in the gob message.
// The extents and the garbage list (intake objects waiting out their grace
// period: tens of thousands under load) are most of a checkpoint; gob spent
// most of its time and size on their repeated object names. Version 1
// (plain gob, extents included) is still read.
//
// Version 3 is version 2 with the garbage list always present and prefixed
// by its length (uvarint), followed by the state's digest (8 bytes, big
// endian) and nothing else. Loading recomputes the digest, so a checkpoint
// cut short anywhere, even where a version 2 one still decoded (at an s2
// block boundary before its garbage list), or decoded wrongly, is refused.
const checkpointVersion = 3

// encodeState encodes st with its own digest; see encodeStateDigest.
func encodeState(st *state) ([]byte, error) { return encodeStateDigest(st, st.digest()) }

// encodeStateDigest encodes st, which it borrows, with digest, the digest
// the state it was copied from had: each partition's extents are left out of
// the gob message and put back before it returns.
func encodeStateDigest(st *state, digest uint64) ([]byte, error) {
	return encodeStateAs(st, digest, checkpointVersion)
}

// encodeStateAs encodes st in a given version, 2 or 3 (tests write version
// 2 to prove it still loads).
func encodeStateAs(st *state, digest uint64, version byte) ([]byte, error) {
	type section struct {
		topic  TopicID
		part   int
		packed []byte
	}
	var sections []section
	ids := make([]TopicID, 0, len(st.Topics))
	for id := range st.Topics {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return bytes.Compare(ids[i][:], ids[j][:]) < 0 })
	var saved [][]extent
	var owners []*partState
	for _, id := range ids {
		for i, p := range st.Topics[id].Parts {
			if len(p.Extents) == 0 {
				continue
			}
			sections = append(sections, section{id, i, packExtents(p.Extents)})
			saved, owners = append(saved, p.Extents), append(owners, p)
			p.Extents = nil
		}
	}
	garbage := st.Garbage
	st.Garbage = nil
	defer func() {
		for i, p := range owners {
			p.Extents = saved[i]
		}
		st.Garbage = garbage
	}()
	var buf bytes.Buffer
	buf.WriteByte(version)
	zw := s2.NewWriter(&buf, s2.WriterConcurrency(1))
	if err := gob.NewEncoder(zw).Encode(st); err != nil {
		return nil, err
	}
	var hdr []byte
	hdr = binary.AppendUvarint(hdr, uint64(len(sections)))
	for _, sec := range sections {
		hdr = append(hdr, sec.topic[:]...)
		hdr = binary.AppendUvarint(hdr, uint64(sec.part))
		hdr = binary.AppendUvarint(hdr, uint64(len(sec.packed)))
		if _, err := zw.Write(hdr); err != nil {
			return nil, err
		}
		if _, err := zw.Write(sec.packed); err != nil {
			return nil, err
		}
		hdr = hdr[:0]
	}
	if len(sections) == 0 {
		if _, err := zw.Write(hdr); err != nil {
			return nil, err
		}
	}
	packed := packGarbage(garbage)
	if version >= 3 {
		if _, err := zw.Write(binary.AppendUvarint(nil, uint64(len(packed)))); err != nil {
			return nil, err
		}
	}
	if _, err := zw.Write(packed); err != nil {
		return nil, err
	}
	if version >= 3 {
		if _, err := zw.Write(binary.BigEndian.AppendUint64(nil, digest)); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func decodeState(b []byte) (*state, error) {
	st, _, err := decodeStateDigest(b)
	return st, err
}

// decodeStateDigest decodes a checkpoint and returns the digest it carries
// (0 before version 3), already checked against the state decoded.
func decodeStateDigest(b []byte) (*state, uint64, error) {
	if len(b) < 1 || b[0] < 1 || b[0] > checkpointVersion {
		return nil, 0, fmt.Errorf("%w: unknown checkpoint version", ErrStorage)
	}
	// A bufio.Reader is an io.ByteReader, so gob reads exactly its message
	// and the sections after it stay in r.
	var zr io.Reader = s2.NewReader(bytes.NewReader(b[1:]))
	if b[0] == 1 {
		zr = flate.NewReader(bytes.NewReader(b[1:]))
	}
	r := bufio.NewReader(zr)
	st := newState()
	// io.EOF included: a stream without the state's message is not an
	// empty state.
	if err := gob.NewDecoder(r).Decode(st); err != nil {
		return nil, 0, fmt.Errorf("%w: decoding checkpoint: %v", ErrStorage, err)
	}
	var digest uint64
	switch b[0] {
	case 3:
		if err := readExtentSections(r, st); err != nil {
			return nil, 0, fmt.Errorf("%w: decoding checkpoint: %v", ErrStorage, err)
		}
		var err error
		if st.Garbage, digest, err = readTail(r); err != nil {
			return nil, 0, fmt.Errorf("%w: decoding checkpoint: %v", ErrStorage, err)
		}
	case 2:
		if err := readExtentSections(r, st); err != nil {
			return nil, 0, fmt.Errorf("%w: decoding checkpoint: %v", ErrStorage, err)
		}
		// The garbage list ends the stream; a version 2 checkpoint without
		// it kept the list in its gob message.
		rest, err := io.ReadAll(r)
		if err != nil {
			return nil, 0, fmt.Errorf("%w: decoding checkpoint: %v", ErrStorage, err)
		}
		if len(rest) > 0 {
			if st.Garbage, err = unpackGarbage(rest); err != nil {
				return nil, 0, fmt.Errorf("%w: decoding checkpoint: %v", ErrStorage, err)
			}
		}
	}
	if st.ProducerSeen == nil {
		st.ProducerSeen = map[int64]int64{}
	}
	for _, t := range st.Topics {
		if t.Configs == nil {
			t.Configs = map[string]string{}
		}
		for i, p := range t.Parts {
			if p == nil {
				t.Parts[i] = newPart()
			}
		}
	}
	if b[0] >= 3 {
		if got := st.digest(); got != digest {
			return nil, 0, fmt.Errorf("%w: decoding checkpoint: the state decoded has digest %016x, the checkpoint says %016x", ErrStorage, got, digest)
		}
	}
	return st, digest, nil
}

// readTail reads the end of a version 3 checkpoint: the packed garbage list
// with its length, then the digest, then nothing.
func readTail(r *bufio.Reader) ([]garbageObj, uint64, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, 0, fmt.Errorf("garbage list: %w", err)
	}
	if n > math.MaxInt64 {
		return nil, 0, fmt.Errorf("garbage list of %d bytes", n)
	}
	// Grow with what arrives: a corrupt length must not allocate.
	var packed bytes.Buffer
	if _, err := io.CopyN(&packed, r, int64(n)); err != nil {
		return nil, 0, fmt.Errorf("garbage list: %w", err)
	}
	gs, err := unpackGarbage(packed.Bytes())
	if err != nil {
		return nil, 0, err
	}
	var d [8]byte
	if _, err := io.ReadFull(r, d[:]); err != nil {
		return nil, 0, fmt.Errorf("digest: %w", err)
	}
	if _, err := r.ReadByte(); err != io.EOF {
		return nil, 0, fmt.Errorf("trailing bytes after the digest (%v)", err)
	}
	return gs, binary.BigEndian.Uint64(d[:]), nil
}

// readExtentSections reads a version 2 checkpoint's extent sections into
// the partitions of st.
func readExtentSections(r *bufio.Reader, st *state) error {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return fmt.Errorf("extent sections: %w", err)
	}
	for range n {
		var id TopicID
		if _, err := io.ReadFull(r, id[:]); err != nil {
			return fmt.Errorf("extent section: %w", err)
		}
		part, err := binary.ReadUvarint(r)
		if err != nil {
			return fmt.Errorf("extent section: %w", err)
		}
		size, err := binary.ReadUvarint(r)
		if err != nil {
			return fmt.Errorf("extent section: %w", err)
		}
		t, ok := st.Topics[id]
		if !ok || part >= uint64(len(t.Parts)) || size > 1<<31 {
			return fmt.Errorf("extent section for unknown partition %x/%d (%d bytes)", id[:], part, size)
		}
		packed := make([]byte, size)
		if _, err := io.ReadFull(r, packed); err != nil {
			return fmt.Errorf("extent section: %w", err)
		}
		if t.Parts[part] == nil {
			t.Parts[part] = newPart()
		}
		if t.Parts[part].Extents, err = unpackExtents(packed); err != nil {
			return fmt.Errorf("topic %s partition %d: %w", t.Name, part, err)
		}
	}
	return nil
}

// packGarbage encodes the garbage list: its length, then per object its
// name and its revision and log clock as deltas from the one before.
func packGarbage(gs []garbageObj) []byte {
	size := binary.MaxVarintLen64
	for _, g := range gs {
		size += len(g.Obj) + 3*binary.MaxVarintLen64
	}
	b := make([]byte, 0, size)
	b = binary.AppendUvarint(b, uint64(len(gs)))
	var prevRev, prevClock int64
	for _, g := range gs {
		b = binary.AppendUvarint(b, uint64(len(g.Obj)))
		b = append(b, g.Obj...)
		b = binary.AppendVarint(b, g.Rev-prevRev)
		b = binary.AppendVarint(b, g.Clock-prevClock)
		prevRev, prevClock = g.Rev, g.Clock
	}
	return b
}

// unpackGarbage decodes what packGarbage wrote.
func unpackGarbage(b []byte) ([]garbageObj, error) {
	r := packReader{b: b, what: "garbage list"}
	n := r.uvarint()
	if n > uint64(len(b)) {
		return nil, errors.New("packed garbage list: bad object count")
	}
	gs := make([]garbageObj, 0, n)
	var prevRev, prevClock int64
	for range n {
		name := r.str()
		prevRev += r.varint()
		prevClock += r.varint()
		gs = append(gs, garbageObj{Obj: name, Rev: prevRev, Clock: prevClock})
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail("trailing bytes")
	}
	if r.err != nil {
		return nil, r.err
	}
	return gs, nil
}

// packExtents encodes a partition's extents compactly, for checkpoints:
// the object names once each (the chunks of a segment share one), then per
// extent its name's index and its numbers as varints, offsets and times
// relative to the extent before. Gob spent most of a checkpoint's time and
// size on the repeated names.
func packExtents(xs []extent) []byte {
	if len(xs) == 0 {
		return nil
	}
	// Extents of one object are mostly adjacent: look a name up only when
	// it changes.
	idx := map[string]uint64{}
	refs := make([]uint64, len(xs))
	var names []string
	size := 0
	prevObj, prevRef := "", uint64(0)
	for i, x := range xs {
		if x.Obj != prevObj {
			ref, ok := idx[x.Obj]
			if !ok {
				ref = uint64(len(names)) + 1
				idx[x.Obj] = ref
				names = append(names, x.Obj)
				size += len(x.Obj) + binary.MaxVarintLen64
			}
			prevObj, prevRef = x.Obj, ref
		}
		if x.Obj != "" {
			refs[i] = prevRef
		}
	}
	b := make([]byte, 0, 2*binary.MaxVarintLen64+size+len(xs)*(6*binary.MaxVarintLen64+1))
	b = binary.AppendUvarint(b, uint64(len(names)))
	for _, n := range names {
		b = binary.AppendUvarint(b, uint64(len(n)))
		b = append(b, n...)
	}
	b = binary.AppendUvarint(b, uint64(len(xs)))
	var prevNext, prevTS int64
	for i, x := range xs {
		b = binary.AppendUvarint(b, refs[i])
		b = binary.AppendVarint(b, x.Base-prevNext)
		b = binary.AppendVarint(b, x.Last-x.Base)
		b = binary.AppendVarint(b, x.Pos)
		b = binary.AppendVarint(b, x.Len)
		b = binary.AppendVarint(b, x.MaxTS-prevTS)
		var flags byte
		if x.Segment {
			flags |= 1
		}
		if x.Ctl != nil {
			flags |= 2
			if x.Ctl.Commit {
				flags |= 4
			}
		}
		b = append(b, flags)
		if x.Ctl != nil {
			b = binary.AppendVarint(b, x.Ctl.ProducerID)
			b = binary.AppendVarint(b, int64(x.Ctl.Epoch))
		}
		prevNext, prevTS = x.Last+1, x.MaxTS
	}
	return b
}

// unpackExtents decodes what packExtents wrote (nil for no extents).
func unpackExtents(b []byte) ([]extent, error) {
	if len(b) == 0 {
		return nil, nil
	}
	r := packReader{b: b}
	nNames := r.uvarint()
	if nNames > uint64(len(b)) {
		return nil, errors.New("packed extents: bad name count")
	}
	names := make([]string, nNames)
	for i := range names {
		names[i] = r.str()
	}
	n := r.uvarint()
	if n > uint64(len(b)) {
		return nil, errors.New("packed extents: bad extent count")
	}
	var xs []extent
	if n > 0 {
		xs = make([]extent, n)
	}
	var prevNext, prevTS int64
	for i := range xs {
		x := &xs[i]
		switch ni := r.uvarint(); {
		case ni > nNames:
			r.fail("name index out of range")
		case ni > 0:
			x.Obj = names[ni-1]
		}
		x.Base = prevNext + r.varint()
		x.Last = x.Base + r.varint()
		x.Pos = r.varint()
		x.Len = r.varint()
		x.MaxTS = prevTS + r.varint()
		flags := r.byte()
		x.Segment = flags&1 != 0
		if flags&2 != 0 {
			x.Ctl = &ctlMarker{Commit: flags&4 != 0, ProducerID: r.varint(), Epoch: int16(r.varint())}
		}
		prevNext, prevTS = x.Last+1, x.MaxTS
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail("trailing bytes")
	}
	if r.err != nil {
		return nil, r.err
	}
	return xs, nil
}

// packReader reads varints and strings, remembering the first error.
type packReader struct {
	b    []byte
	what string // what is being read, for errors ("extents" when empty)
	err  error
}

func (r *packReader) fail(msg string) {
	if r.err == nil {
		what := r.what
		if what == "" {
			what = "extents"
		}
		r.err = errors.New("packed " + what + ": " + msg)
	}
	r.b = nil
}

func (r *packReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("truncated")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *packReader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail("truncated")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *packReader) byte() byte {
	if len(r.b) == 0 {
		r.fail("truncated")
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *packReader) str() string {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail("truncated name")
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

// loadCheckpoint loads a checkpoint and returns the digest it carries
// (checked against the state; 0 before version 3).
func loadCheckpoint(ctx context.Context, store objstore.Store, key string) (*state, uint64, error) {
	b, err := store.Get(ctx, key)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: loading checkpoint %s: %w", ErrStorage, key, err)
	}
	return decodeStateDigest(b)
}

// loadNewest reads the checkpoint pointer and loads the checkpoint it
// names. It returns that state (empty if there is no pointer), the pointer
// and the revision it read the pointer at. A checkpoint deleted between
// reading the pointer and loading it (a new one was written and the
// maintainer removed the one before) is found by reading the pointer
// again; a pointer naming an object the store does not have is an error,
// never an empty state.
func (e *Engine) loadNewest(ctx context.Context) (*state, pointer, int64, error) {
	var missing string
	for {
		resp, err := e.cli.Get(ctx, e.ptrKey)
		if err != nil {
			return nil, pointer{}, 0, fmt.Errorf("%w: reading checkpoint pointer: %v", ErrStorage, err)
		}
		at := resp.Header.Revision
		if len(resp.Kvs) == 0 {
			return newState(), pointer{}, at, nil
		}
		ptr, err := decodePointer(resp.Kvs[0].Value)
		if err != nil {
			return nil, pointer{}, 0, err
		}
		if ptr.Object == missing {
			return nil, pointer{}, 0, fmt.Errorf("%w: checkpoint %s (revision %d), named by the checkpoint pointer, is missing from the object store",
				ErrStorage, ptr.Object, ptr.Rev)
		}
		st, digest, err := loadCheckpoint(ctx, e.store, ptr.Object)
		if errors.Is(err, objstore.ErrNotFound) {
			e.log.Warn("stream: checkpoint gone while loading it; reading the pointer again", "object", ptr.Object)
			missing = ptr.Object
			continue
		}
		if err != nil {
			return nil, pointer{}, 0, err
		}
		// The object's digest was checked against the state decoded.
		if ptr.Digest != 0 && digest != ptr.Digest {
			return nil, pointer{}, 0, fmt.Errorf("%w: checkpoint %s has digest %016x, its pointer says %016x", ErrStorage, ptr.Object, digest, ptr.Digest)
		}
		return st, ptr, at, nil
	}
}

// checkpoint writes the current state to the store, moves the pointer
// forward (compare-and-swap) and deletes the log entries it covers
// (DESIGN §4, §5a rule 6). It returns the covered revision. With
// background set, the deletion runs on its own goroutine (at most one at a
// time; a checkpoint taken meanwhile leaves its entries to the next one),
// so the maintainer's other passes do not wait out its paced second or
// two and then catch up in a burst.
func (e *Engine) checkpoint(ctx context.Context, background bool) (int64, error) {
	cur, err := e.cli.Get(ctx, e.ptrKey)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrStorage, err)
	}
	var old pointer
	var oldMod int64
	if len(cur.Kvs) == 1 {
		if old, err = decodePointer(cur.Kvs[0].Value); err != nil {
			return 0, err
		}
		oldMod = cur.Kvs[0].ModRevision
	}
	e.mu.RLock()
	rev, entries := e.st.Rev, e.st.Entries
	e.mu.RUnlock()
	// Nothing new since the pointer's checkpoint but its digest entry.
	if rev <= old.Rev || (old.Entries > 0 && entries <= old.Entries+1) {
		return old.Rev, nil
	}
	// The mark fixes the revision: every broker records its digest there,
	// and applying it hands back a copy of this broker's state at it,
	// taken under the lock, encoded outside it (a reader holding the lock
	// while a writer waits blocks every other reader, produce and fetch).
	t0 := time.Now()
	res, err := e.propose(ctx, &entry{Kind: kindCheckpointMark})
	if err != nil {
		return 0, err
	}
	if res.snap == nil {
		return 0, fmt.Errorf("%w: checkpoint mark answered without a state (%v)", ErrStorage, res.Err)
	}
	snap, digest := res.snap, res.digest
	rev = snap.Rev
	tClone := time.Since(t0)
	data, err := encodeStateDigest(snap, digest)
	tEncode := time.Since(t0) - tClone
	if err != nil {
		return 0, fmt.Errorf("%w: encoding checkpoint: %v", ErrStorage, err)
	}
	key := checkpointName(rev, e.opts.BrokerID)
	if err := e.store.Put(ctx, key, data); err != nil {
		return 0, fmt.Errorf("%w: writing checkpoint: %v", ErrStorage, err)
	}
	if e.opts.ckptHook != nil {
		e.opts.ckptHook(key)
	}
	val, _ := json.Marshal(pointer{Rev: rev, Object: key, Digest: digest, Entries: snap.Entries})
	cmp := clientv3.Compare(clientv3.ModRevision(e.ptrKey), "=", oldMod)
	if oldMod == 0 {
		cmp = clientv3.Compare(clientv3.CreateRevision(e.ptrKey), "=", 0)
	}
	resp, err := e.cli.Txn(ctx).If(cmp).Then(clientv3.OpPut(e.ptrKey, string(val))).Commit()
	if err != nil {
		return 0, fmt.Errorf("%w: moving checkpoint pointer: %v", ErrStorage, err)
	}
	if !resp.Succeeded {
		// Another checkpointer moved it first; ours, under a name no other
		// attempt uses, is garbage.
		_ = e.store.Delete(ctx, key)
		return old.Rev, nil
	}
	e.ckptRev.Store(rev)
	e.m.checkpoints.Inc()
	e.log.Info("stream: checkpoint written", "revision", rev, "bytes", len(data), "digest", fmt.Sprintf("%016x", digest),
		"mark", tClone.Round(time.Microsecond), "encode", tEncode.Round(time.Microsecond), "total", time.Since(t0).Round(time.Microsecond))
	// Every broker compares its own digest at the mark with this one.
	if _, err := e.propose(ctx, &entry{Kind: kindCheckpointDigest, MarkRev: rev, Digest: digest}); err != nil {
		e.log.Warn("stream: appending the checkpoint digest", "revision", rev, "err", err)
	}
	switch {
	case !background:
		if err := e.deleteCovered(ctx, rev); err != nil {
			e.log.Warn("stream: deleting covered log entries", "err", err)
		}
	case e.deleting.CompareAndSwap(false, true):
		e.wg.Add(1)
		go func() { // owned by the engine: Close cancels e.ctx and waits
			defer e.wg.Done()
			defer e.deleting.Store(false)
			ctx, cancel := context.WithTimeout(e.ctx, 5*time.Minute)
			defer cancel()
			if err := e.deleteCovered(ctx, rev); err != nil && e.ctx.Err() == nil {
				e.log.Warn("stream: deleting covered log entries", "err", err)
			}
		}()
	}
	if e.opts.CompactEtcd && old.Rev > 0 && time.Since(e.lastCompact) >= etcdCompactEvery {
		// Compaction holds etcd's backend in batches; once every few
		// minutes keeps the database small without stalling puts often.
		// It stops at the previous checkpoint's revision, not this one's:
		// a broker whose watch lags by less than a checkpoint interval
		// keeps its watch instead of reloading from a checkpoint.
		e.lastCompact = time.Now()
		if _, err := e.cli.Compact(ctx, old.Rev); err != nil && !errors.Is(err, rpctypes.ErrCompacted) {
			e.log.Warn("stream: compacting etcd", "revision", old.Rev, "err", err)
		}
	}
	if old.Object != "" && old.Object != key {
		// Older checkpoints are kept one interval, so a broker that read the
		// old pointer can still load it.
		e.deleteOldCheckpoints(ctx, old.Object)
	}
	return rev, nil
}

// deleteCovered deletes the log entries a checkpoint at rev covers, in
// transactions of bounded size.
func (e *Engine) deleteCovered(ctx context.Context, rev int64) error {
	resp, err := e.cli.Get(ctx, e.logKey, clientv3.WithPrefix(), clientv3.WithKeysOnly(), clientv3.WithMaxModRev(rev))
	if err != nil {
		return err
	}
	ops := make([]clientv3.Op, 0, 100)
	flush := func() error {
		if len(ops) == 0 {
			return nil
		}
		_, err := e.cli.Txn(ctx).Then(ops...).Commit()
		ops = ops[:0]
		return err
	}
	for _, kv := range resp.Kvs {
		ops = append(ops, clientv3.OpDelete(string(kv.Key)))
		if len(ops) == 100 {
			if err := flush(); err != nil {
				return err
			}
			// Pace the deletions: a burst of transactions queues the
			// intake's puts behind it in etcd. Nothing waits for them.
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	return flush()
}

// checkpointName names a new checkpoint object at revision rev. Names sort
// by revision (deleteOldCheckpoints relies on it) and are unique per
// attempt: two checkpointers at one revision never write one object, so the
// loser of the pointer's compare-and-swap deletes only its own (DESIGN §5a
// rule 6).
func checkpointName(rev int64, broker int32) string {
	var nonce [8]byte
	_, _ = rand.Read(nonce[:])
	return fmt.Sprintf("checkpoints/%020d-%08x-%s", rev, uint32(broker), hex.EncodeToString(nonce[:]))
}

// deleteOldCheckpoints removes checkpoint objects older than keep, the
// object the pointer named before this checkpoint moved it: no pointer can
// name them again, since it only moves forward.
func (e *Engine) deleteOldCheckpoints(ctx context.Context, keep string) {
	var old []string
	_ = e.store.List(ctx, "checkpoints/", func(o objstore.ObjectInfo) error {
		if o.Key < keep {
			old = append(old, o.Key)
		}
		return nil
	})
	if len(old) == 0 || checkMaintainer(ctx) != nil {
		return
	}
	for _, k := range old {
		_ = e.store.Delete(ctx, k)
	}
}
