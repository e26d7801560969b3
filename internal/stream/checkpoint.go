package stream

import (
	"bytes"
	"compress/flate"
	"context"
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/runnel-dev/runnel/internal/objstore"
)

// pointer is the value of the checkpoint pointer key: the newest
// checkpoint and the revision its state covers.
type pointer struct {
	Rev    int64  `json:"rev"`
	Object string `json:"object"`
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
const checkpointVersion = 1

func encodeState(st *state) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte(checkpointVersion)
	zw, _ := flate.NewWriter(&buf, flate.BestSpeed)
	if err := gob.NewEncoder(zw).Encode(st); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func decodeState(b []byte) (*state, error) {
	if len(b) < 1 || b[0] != checkpointVersion {
		return nil, fmt.Errorf("%w: unknown checkpoint version", ErrStorage)
	}
	st := newState()
	if err := gob.NewDecoder(flate.NewReader(bytes.NewReader(b[1:]))).Decode(st); err != nil && err != io.EOF {
		return nil, fmt.Errorf("%w: decoding checkpoint: %v", ErrStorage, err)
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
	return st, nil
}

func loadCheckpoint(ctx context.Context, store objstore.Store, key string) (*state, error) {
	b, err := store.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("%w: loading checkpoint %s: %v", ErrStorage, key, err)
	}
	return decodeState(b)
}

// checkpoint writes the current state to the store, moves the pointer
// forward (compare-and-swap) and deletes the log entries it covers
// (DESIGN §4, §5a rule 6). It returns the covered revision.
func (e *Engine) checkpoint(ctx context.Context) (int64, error) {
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
	t0 := time.Now()
	e.mu.RLock()
	rev := e.st.Rev
	if rev <= old.Rev {
		e.mu.RUnlock()
		return old.Rev, nil
	}
	// Copy under the lock, encode outside it: a reader holding the lock
	// while a writer waits blocks every other reader (produce, fetch) too.
	snap := e.st.clone()
	e.mu.RUnlock()
	tClone := time.Since(t0)
	data, err := encodeState(snap)
	tEncode := time.Since(t0) - tClone
	if err != nil {
		return 0, fmt.Errorf("%w: encoding checkpoint: %v", ErrStorage, err)
	}
	key := fmt.Sprintf("checkpoints/%020d", rev)
	if err := e.store.Put(ctx, key, data); err != nil {
		return 0, fmt.Errorf("%w: writing checkpoint: %v", ErrStorage, err)
	}
	val, _ := json.Marshal(pointer{Rev: rev, Object: key})
	cmp := clientv3.Compare(clientv3.ModRevision(e.ptrKey), "=", oldMod)
	if oldMod == 0 {
		cmp = clientv3.Compare(clientv3.CreateRevision(e.ptrKey), "=", 0)
	}
	resp, err := e.cli.Txn(ctx).If(cmp).Then(clientv3.OpPut(e.ptrKey, string(val))).Commit()
	if err != nil {
		return 0, fmt.Errorf("%w: moving checkpoint pointer: %v", ErrStorage, err)
	}
	if !resp.Succeeded {
		// Another checkpointer moved it first; ours is garbage.
		_ = e.store.Delete(ctx, key)
		return old.Rev, nil
	}
	e.ckptRev.Store(rev)
	e.m.checkpoints.Inc()
	e.log.Info("stream: checkpoint written", "revision", rev, "bytes", len(data),
		"clone", tClone.Round(time.Microsecond), "encode", tEncode.Round(time.Microsecond), "total", time.Since(t0).Round(time.Microsecond))
	if err := e.deleteCovered(ctx, rev); err != nil {
		e.log.Warn("stream: deleting covered log entries", "err", err)
	}
	if e.opts.CompactEtcd && time.Since(e.lastCompact) >= etcdCompactEvery {
		// Compaction holds etcd's backend in batches; once every few
		// minutes keeps the database small without stalling puts often.
		e.lastCompact = time.Now()
		if _, err := e.cli.Compact(ctx, rev); err != nil && !errors.Is(err, rpctypes.ErrCompacted) {
			e.log.Warn("stream: compacting etcd", "revision", rev, "err", err)
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

// deleteOldCheckpoints removes checkpoint objects older than keep.
func (e *Engine) deleteOldCheckpoints(ctx context.Context, keep string) {
	var old []string
	_ = e.store.List(ctx, "checkpoints/", func(o objstore.ObjectInfo) error {
		if o.Key < keep {
			old = append(old, o.Key)
		}
		return nil
	})
	for _, k := range old {
		_ = e.store.Delete(ctx, k)
	}
}
