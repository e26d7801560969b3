package access

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/runnel-dev/runnel/internal/governance"
)

// AuditPrefix is the etcd prefix of the audit log: one key per event,
// named by its time-ordered id, so key order is time order.
const AuditPrefix = governance.Prefix + "audit/"

// Audit log defaults.
const (
	DefaultAuditMaxEvents = 100_000
	DefaultAuditMaxAge    = 90 * 24 * time.Hour
	defaultAuditTrimEvery = time.Minute
	// auditPage is how many events one etcd read of a listing returns.
	auditPage = 500
)

// ids makes time-ordered ids: lowercase ULIDs, monotonic within the
// process (two ids of one millisecond still sort in creation order).
type ids struct {
	mu      sync.Mutex
	entropy *ulid.MonotonicEntropy
	lastMs  uint64
}

func newIDs() *ids { return &ids{entropy: ulid.Monotonic(rand.Reader, 0)} }

// next returns an id for time t (never earlier than the last one).
func (g *ids) next(t time.Time) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	ms := max(ulid.Timestamp(t), g.lastMs)
	id, err := ulid.New(ms, g.entropy)
	if err != nil {
		// The monotonic entropy overflowed within one millisecond:
		// move to the next one.
		ms++
		id = ulid.MustNew(ms, g.entropy)
	}
	g.lastMs = ms
	return strings.ToLower(id.String())
}

// idBefore is the smallest id of time t: every id made at t or later
// sorts at or after it.
func idBefore(t time.Time) string {
	var id ulid.ULID
	_ = id.SetTime(ulid.Timestamp(t))
	return strings.ToLower(id.String())
}

// AuditOptions configures an Audit.
type AuditOptions struct {
	// Client is the etcd client; required.
	Client *clientv3.Client
	// MaxEvents and MaxAge bound what is kept (DefaultAuditMaxEvents and
	// DefaultAuditMaxAge when zero); older events are trimmed in the
	// background every TrimEvery (1 minute when zero).
	MaxEvents int
	MaxAge    time.Duration
	TrimEvery time.Duration
	// Now is the clock (time.Now when nil).
	Now    func() time.Time
	Logger *slog.Logger
}

// Audit is the governance audit log: it implements governance.Auditor
// for every part, stores each event under its own key and lists them
// newest first. Its trimming goroutine is its own: Close stops it.
type Audit struct {
	o    AuditOptions
	ids  *ids
	stop context.CancelFunc
	wg   sync.WaitGroup
}

// OpenAudit returns the audit log and starts trimming it.
func OpenAudit(o AuditOptions) *Audit {
	if o.MaxEvents <= 0 {
		o.MaxEvents = DefaultAuditMaxEvents
	}
	if o.MaxAge <= 0 {
		o.MaxAge = DefaultAuditMaxAge
	}
	if o.TrimEvery <= 0 {
		o.TrimEvery = defaultAuditTrimEvery
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	a := &Audit{o: o, ids: newIDs()}
	ctx, cancel := context.WithCancel(context.Background())
	a.stop = cancel
	a.wg.Add(1)
	go a.trimLoop(ctx)
	return a
}

// Close stops the trimming.
func (a *Audit) Close() error {
	a.stop()
	a.wg.Wait()
	return nil
}

// Record stores e with a new id and, when e.Time is zero, the current
// time; it returns once the event is in etcd.
func (a *Audit) Record(ctx context.Context, e governance.Event) error {
	op, err := a.put(e)
	if err != nil {
		return err
	}
	if _, err := a.o.Client.Do(ctx, op); err != nil {
		return fmt.Errorf("access: store audit event: %w", err)
	}
	return nil
}

// put is the etcd put storing e with a new id (and the current time
// when e.Time is zero), for a transaction that stores a step and its
// event together.
func (a *Audit) put(e governance.Event) (clientv3.Op, error) {
	if e.Time.IsZero() {
		e.Time = a.o.Now()
	}
	e.Time = e.Time.UTC()
	e.ID = a.ids.next(e.Time)
	b, err := json.Marshal(e)
	if err != nil {
		return clientv3.Op{}, fmt.Errorf("access: encode audit event: %w", err)
	}
	return clientv3.OpPut(AuditPrefix+e.ID, string(b)), nil
}

// AuditFilter selects events: empty fields select everything.
type AuditFilter struct {
	Topic  string
	Actor  string
	Action string
	// Resource selects one resource ("access-request:<id>").
	Resource string
}

func (f AuditFilter) matches(e governance.Event) bool {
	return (f.Topic == "" || e.Topic == f.Topic) &&
		(f.Actor == "" || e.Actor == f.Actor) &&
		(f.Action == "" || e.Action == f.Action) &&
		(f.Resource == "" || e.Resource == f.Resource)
}

// List returns up to limit events f selects and visible accepts, newest
// first, reading etcd page by page (so what was recorded on any broker
// is listed at once). visible may be nil.
func (a *Audit) List(ctx context.Context, f AuditFilter, limit int, visible func(governance.Event) (bool, error)) ([]governance.Event, error) {
	out := []governance.Event{}
	end := clientv3.GetPrefixRangeEnd(AuditPrefix)
	for len(out) < limit {
		resp, err := a.o.Client.Get(ctx, AuditPrefix, clientv3.WithRange(end),
			clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithLimit(auditPage))
		if err != nil {
			return nil, fmt.Errorf("access: read audit log: %w", err)
		}
		for _, kv := range resp.Kvs {
			var e governance.Event
			if err := json.Unmarshal(kv.Value, &e); err != nil {
				a.o.Logger.Warn("access: skipping an unreadable audit event", "key", string(kv.Key), "err", err)
				continue
			}
			if !f.matches(e) {
				continue
			}
			if visible != nil {
				ok, err := visible(e)
				if err != nil {
					return nil, err
				}
				if !ok {
					continue
				}
			}
			out = append(out, e)
			if len(out) == limit {
				break
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		end = string(resp.Kvs[len(resp.Kvs)-1].Key) // exclusive: the next page is older
	}
	return out, nil
}

func (a *Audit) trimLoop(ctx context.Context) {
	defer a.wg.Done()
	t := time.NewTicker(a.o.TrimEvery)
	defer t.Stop()
	for {
		if err := a.Trim(ctx); err != nil && ctx.Err() == nil {
			a.o.Logger.Warn("access: trimming the audit log", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Trim deletes the events older than MaxAge and the oldest beyond
// MaxEvents. Every broker trims; deleting twice is harmless.
func (a *Audit) Trim(ctx context.Context) error {
	cut := AuditPrefix + idBefore(a.o.Now().Add(-a.o.MaxAge))
	if _, err := a.o.Client.Delete(ctx, AuditPrefix, clientv3.WithRange(cut)); err != nil {
		return fmt.Errorf("access: trim audit log by age: %w", err)
	}
	resp, err := a.o.Client.Get(ctx, AuditPrefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return fmt.Errorf("access: count audit events: %w", err)
	}
	excess := resp.Count - int64(a.o.MaxEvents)
	if excess <= 0 {
		return nil
	}
	// The oldest `excess` keys: delete up to and including the last.
	old, err := a.o.Client.Get(ctx, AuditPrefix, clientv3.WithPrefix(), clientv3.WithKeysOnly(),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend), clientv3.WithLimit(excess))
	if err != nil || len(old.Kvs) == 0 {
		return err
	}
	last := string(old.Kvs[len(old.Kvs)-1].Key)
	if _, err := a.o.Client.Delete(ctx, AuditPrefix, clientv3.WithRange(last+"\x00")); err != nil {
		return fmt.Errorf("access: trim audit log by count: %w", err)
	}
	return nil
}
