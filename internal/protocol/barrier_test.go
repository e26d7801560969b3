package protocol

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/stream"
)

// TestReadBarrierFailureIsRetriable: when the read barrier cannot complete
// (etcd answers an error, or does not answer at all), a fetch past the
// local high watermark, ListOffsets and OffsetForLeaderEpoch are answered
// NOT_LEADER_OR_FOLLOWER within the barrier timeout: never
// OFFSET_OUT_OF_RANGE (the consumer would reset its position), never a
// stale offset, and never a request left hanging.
func TestReadBarrierFailureIsRetriable(t *testing.T) {
	const barrier = 200 * time.Millisecond
	barriers := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"etcd error", func(context.Context) error { return fmt.Errorf("%w: etcdserver: request timed out", stream.ErrStorage) }},
		{"etcd unreachable", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }},
	}
	for _, bt := range barriers {
		t.Run(bt.name, func(t *testing.T) {
			b := startServer(t, func(o *Options) { o.ReadBarrierTimeout = barrier })
			ti, err := b.log.CreateTopic(context.Background(), "t", 1, nil, false)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 3; i++ {
				b.log.Produce(context.Background(), []ProduceBatch{{Topic: "t", Partition: 0, Records: oneBatch()}})
			}
			b.log.mu.Lock()
			b.log.syncRead = bt.fn
			b.log.mu.Unlock()
			ctx := testCtx(t)
			cl := newClient(t, b.addr)
			if _, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl); err != nil {
				t.Fatal(err)
			}
			br := cl.Broker(1)

			// Each request gets a few barrier timeouts to answer, not the
			// test's whole budget: a hanging request is a failure.
			send := func(t *testing.T, req kmsg.Request) kmsg.Response {
				t.Helper()
				rctx, cancel := context.WithTimeout(ctx, 10*barrier)
				defer cancel()
				start := time.Now()
				resp, err := br.Request(rctx, req)
				if err != nil {
					t.Fatalf("%s: no answer after %s: %v", kmsg.NameForKey(req.Key()), time.Since(start).Round(time.Millisecond), err)
				}
				return resp
			}
			want := kerr.NotLeaderForPartition.Code

			t.Run("fetch past the high watermark", func(t *testing.T) {
				f := kmsg.NewPtrFetchRequest()
				f.MaxWaitMillis, f.MaxBytes = 100, 1<<20
				ft := kmsg.NewFetchRequestTopic()
				ft.Topic, ft.TopicID = "t", ti.ID
				for _, off := range []int64{0, 10} { // 0 is readable, 10 is past the high watermark (3)
					fp := kmsg.NewFetchRequestTopicPartition()
					fp.FetchOffset, fp.PartitionMaxBytes = off, 1<<20
					ft.Partitions = append(ft.Partitions, fp)
				}
				f.Topics = append(f.Topics, ft)
				// Two partition entries for one partition: the first is
				// served from local state, the second needs the barrier.
				r := send(t, f).(*kmsg.FetchResponse)
				ps := r.Topics[0].Partitions
				if len(ps) != 2 {
					t.Fatalf("partitions answered: %+v", ps)
				}
				if ps[0].ErrorCode != 0 || len(ps[0].RecordBatches) == 0 {
					t.Fatalf("readable offset: error %d, %d bytes", ps[0].ErrorCode, len(ps[0].RecordBatches))
				}
				if ps[1].ErrorCode != want {
					t.Fatalf("offset past the high watermark: error %d (%s), want NOT_LEADER_OR_FOLLOWER", ps[1].ErrorCode, kerr.ErrorForCode(ps[1].ErrorCode))
				}
			})
			t.Run("list offsets", func(t *testing.T) {
				req := kmsg.NewPtrListOffsetsRequest()
				rt := kmsg.NewListOffsetsRequestTopic()
				rt.Topic = "t"
				rp := kmsg.NewListOffsetsRequestTopicPartition()
				rp.Timestamp = -1
				rt.Partitions = append(rt.Partitions, rp)
				req.Topics = append(req.Topics, rt)
				r := send(t, req).(*kmsg.ListOffsetsResponse)
				if p := r.Topics[0].Partitions[0]; p.ErrorCode != want || p.Offset != -1 {
					t.Fatalf("error %d (%s) offset %d, want NOT_LEADER_OR_FOLLOWER and -1", p.ErrorCode, kerr.ErrorForCode(p.ErrorCode), p.Offset)
				}
			})
			t.Run("offset for leader epoch", func(t *testing.T) {
				req := kmsg.NewPtrOffsetForLeaderEpochRequest()
				rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
				rt.Topic = "t"
				rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
				rp.LeaderEpoch = 0
				rt.Partitions = append(rt.Partitions, rp)
				req.Topics = append(req.Topics, rt)
				r := send(t, req).(*kmsg.OffsetForLeaderEpochResponse)
				if p := r.Topics[0].Partitions[0]; p.ErrorCode != want || p.EndOffset != -1 {
					t.Fatalf("error %d (%s) end offset %d, want NOT_LEADER_OR_FOLLOWER and -1", p.ErrorCode, kerr.ErrorForCode(p.ErrorCode), p.EndOffset)
				}
			})

			// Once the barrier completes again, the same fetch is out of
			// range for real.
			b.log.mu.Lock()
			b.log.syncRead = nil
			b.log.mu.Unlock()
			f := kmsg.NewPtrFetchRequest()
			f.MaxBytes = 1 << 20
			ft := kmsg.NewFetchRequestTopic()
			ft.Topic, ft.TopicID = "t", ti.ID
			fp := kmsg.NewFetchRequestTopicPartition()
			fp.FetchOffset, fp.PartitionMaxBytes = 10, 1<<20
			ft.Partitions = append(ft.Partitions, fp)
			f.Topics = append(f.Topics, ft)
			if p := send(t, f).(*kmsg.FetchResponse).Topics[0].Partitions[0]; p.ErrorCode != kerr.OffsetOutOfRange.Code {
				t.Fatalf("after the barrier recovered: error %d, want OFFSET_OUT_OF_RANGE", p.ErrorCode)
			}
		})
	}
}

// TestSuspendClosesConnections: a suspended server closes its connections,
// ends the requests they were waiting on and closes every new connection
// at once, and serves again after Resume.
func TestSuspendClosesConnections(t *testing.T) {
	b := startServer(t, func(o *Options) { o.ReadBarrierTimeout = time.Hour })
	ctx := testCtx(t)
	c := dialRaw(t, b.addr)
	c.sendReq(kmsg.NewPtrApiVersionsRequest(), 1)
	if _, _, err := c.recv(); err != nil {
		t.Fatal(err)
	}
	// A ListOffsets waits on a read barrier that etcd does not answer.
	entered, returned := make(chan struct{}), make(chan struct{})
	b.log.mu.Lock()
	b.log.syncRead = func(ctx context.Context) error {
		close(entered)
		<-ctx.Done()
		close(returned)
		return ctx.Err()
	}
	b.log.mu.Unlock()
	lo := kmsg.NewPtrListOffsetsRequest()
	lo.SetVersion(4)
	c.sendReq(lo, 2)
	select {
	case <-entered:
	case <-ctx.Done():
		t.Fatal("ListOffsets did not reach the read barrier")
	}

	b.srv.Suspend()
	select {
	case <-returned:
	case <-time.After(5 * time.Second):
		t.Fatal("a request waiting on etcd did not end when the server was suspended")
	}
	b.log.mu.Lock()
	b.log.syncRead = nil
	b.log.mu.Unlock()
	if !b.srv.Suspended() {
		t.Fatal("not suspended")
	}
	closed := func(what string, nc net.Conn) {
		t.Helper()
		_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		// A response already on its way (the cancelled request's) may
		// still arrive: read to the end, which must come before the
		// deadline.
		if _, err := io.Copy(io.Discard, nc); err != nil && isTimeout(err) {
			t.Fatalf("%s was not closed: %v", what, err)
		}
	}
	closed("a connection open before Suspend", c.Conn)
	nc, err := net.DialTimeout("tcp", b.addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	closed("a connection made while suspended", nc)

	b.srv.Resume()
	cl := newClient(t, b.addr, kgo.RetryTimeout(5*time.Second))
	if _, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl); err != nil {
		t.Fatalf("after Resume: %v", err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
