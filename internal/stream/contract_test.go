package stream

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/config"
)

// stalledRegistry is a contract checker whose registry does not answer:
// each check waits until the request's context ends, or its own bound
// (the broker's per-batch lookup bound), and then fails every record.
type stalledRegistry struct {
	bound time.Duration
	calls atomic.Int32
}

func (c *stalledRegistry) CheckRecords(ctx context.Context, _ string, _ config.Topic, recs []ContractRecord) []ContractVerdict {
	c.calls.Add(1)
	select {
	case <-ctx.Done():
	case <-time.After(c.bound):
	}
	out := make([]ContractVerdict, len(recs))
	for i := range out {
		out[i] = ContractVerdict{Index: int32(i), Message: "the value's schema id 1 could not be looked up: registry unavailable"}
	}
	return out
}

// TestProduceContractCheckEndsWithRequest: a produce to a validated topic
// whose contract check is stuck on the registry returns when the request's
// context ends (its timeout, or the client going away), answered
// REQUEST_TIMED_OUT (ErrTimeout), with nothing written; it used to hold
// its connection for the checker's whole bound.
func TestProduceContractCheckEndsWithRequest(t *testing.T) {
	v := newEnv(t)
	checker := &stalledRegistry{bound: 5 * time.Second}
	v.opts.Contracts = checker
	e := v.open(t)
	ti := mustCreate(t, e, "validated", 1, map[string]string{"confluent.value.schema.validation": "true"})
	tests := []struct {
		name   string
		ctx    func() (context.Context, context.CancelFunc)
		checks int32 // contract checks the produce starts
	}{
		{"produce timeout", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 100*time.Millisecond)
		}, 1},
		{"client gone", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(100*time.Millisecond, cancel)
			return ctx, cancel
		}, 1},
		{"gone before the produce", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx, cancel
		}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := tt.ctx()
			defer cancel()
			before := checker.calls.Load()
			start := time.Now()
			res := e.Produce(ctx, []ProduceBatch{{Topic: "validated", Partition: 0, Records: makeBatch(-1, -1, -1, 2, 1000, CodecNone)}})
			if took := time.Since(start); took > 2*time.Second {
				t.Fatalf("produce took %v after its context ended at 100ms", took)
			}
			if !errorsIs(res[0].Err, ErrTimeout) || len(res[0].RecordErrors) != 0 {
				t.Fatalf("result %+v, want ErrTimeout and no record errors", res[0])
			}
			if got := checker.calls.Load() - before; got != tt.checks {
				t.Fatalf("%d contract checks, want %d", got, tt.checks)
			}
		})
	}
	if got := readAll(t, e, ti.ID, 0); len(got) != 0 {
		t.Fatalf("records written: %v", got)
	}
}
