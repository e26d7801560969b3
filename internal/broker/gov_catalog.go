package broker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/runnel-dev/runnel/internal/auth"
	"github.com/runnel-dev/runnel/internal/governance"
	"github.com/runnel-dev/runnel/internal/governance/catalog"
	"github.com/runnel-dev/runnel/internal/stream"
)

// govCatalog is the broker's catalog part of governance (governance.go):
// the stream catalog over the engine's topics and the registry's schemas.
type govCatalog struct {
	cat *catalog.Catalog
	// auditor records the catalog's writes; the access part sets it
	// (nil records nothing).
	auditor governance.Auditor
}

func (b *Broker) openCatalog(ctx context.Context) error {
	o := catalog.Options{
		Client:     b.cli,
		Log:        catalogLog{b.engine},
		Authorizer: b.govAuthorizer(),
		Auditor:    auditorFunc(func() governance.Auditor { return b.gov.catalog.auditor }),
		Logger:     b.log.With("component", "catalog"),
	}
	if b.schemas != nil {
		o.Registry = b.schemas
	}
	cat, err := catalog.New(ctx, o)
	if err != nil {
		return fmt.Errorf("broker: stream catalog: %w", err)
	}
	b.gov.catalog.cat = cat
	return nil
}

func (b *Broker) mountCatalog(mux *http.ServeMux, g *auth.Guard) {
	if b.gov.catalog.cat == nil {
		return
	}
	b.gov.catalog.cat.Mount(mux, func(h http.Handler) http.Handler { return govAuthenticated(g, h) })
}

func (b *Broker) closeCatalog() error {
	if b.gov.catalog.cat == nil {
		return nil
	}
	return b.gov.catalog.cat.Close()
}

// auditorFunc records through the auditor its function returns when an
// event comes, so an auditor wired after the catalog opened is used; a
// nil one records nothing.
type auditorFunc func() governance.Auditor

func (f auditorFunc) Record(ctx context.Context, e governance.Event) error {
	if a := f(); a != nil {
		return a.Record(ctx, e)
	}
	return nil
}

// catalogLog is the engine as the catalog reads it.
type catalogLog struct{ e *stream.Engine }

func (l catalogLog) Topics() []catalog.Topic {
	ts := l.e.Topics()
	out := make([]catalog.Topic, len(ts))
	for i, t := range ts {
		out[i] = catalog.Topic{Name: t.Name, Partitions: t.Partitions, Internal: t.Internal}
	}
	return out
}

func (l catalogLog) Changed() <-chan struct{} { return l.e.Changed() }

// sampleReadBytes bounds what one partition's sample reads.
const sampleReadBytes = 4 << 20

// Newest reads the last n committed records of a partition: from n
// offsets before its last stable offset to it, read_committed (control
// batches and aborted transactions' batches left out, so fewer than n
// may come back when the newest offsets hold them).
func (l catalogLog) Newest(ctx context.Context, topic string, partition int32, n int) ([]catalog.Record, error) {
	t, ok := l.e.Topic(topic)
	if !ok {
		return nil, fmt.Errorf("%w: topic %q was deleted", governance.ErrNotFound, topic)
	}
	st, err := l.e.State(topic, partition)
	if errors.Is(err, stream.ErrUnknownTopicOrPartition) {
		return nil, fmt.Errorf("%w: %v", governance.ErrNotFound, err)
	}
	if err != nil {
		return nil, err
	}
	end := st.LastStableOffset
	off := max(st.LogStartOffset, end-int64(n))
	var out []catalog.Record
	var read int64
	for off < end && read < sampleReadBytes {
		res, err := l.e.Fetch(ctx, stream.FetchPartition{TopicID: t.ID, Partition: partition, Offset: off,
			MaxBytes: 1 << 20, ReadCommitted: true})
		if errors.Is(err, stream.ErrOffsetOutOfRange) && res.LogStartOffset > off {
			off = res.LogStartOffset // retention moved the start meanwhile
			continue
		}
		if err != nil {
			return nil, err
		}
		if len(res.Records) == 0 {
			break
		}
		read += int64(len(res.Records))
		batches, err := stream.DecodeBatches(res.Records)
		if err != nil {
			return nil, err
		}
		f := stream.NewCommittedFilter(res.Aborted)
		next := off
		for _, bt := range batches {
			next = max(next, bt.LastOffset+1)
			if f.Skip(bt) {
				continue
			}
			for _, r := range bt.Records {
				if r.Offset < off || r.Offset >= end {
					continue
				}
				out = append(out, catalog.Record{Partition: partition, Offset: r.Offset,
					Timestamp: time.UnixMilli(r.Timestamp), Key: r.Key, Value: r.Value})
			}
		}
		if next <= off {
			break
		}
		off = next
	}
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return out, nil
}
