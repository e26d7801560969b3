package auth

import (
	"context"
	"errors"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/runnel-dev/runnel/internal/cluster/clustertest"
)

func startQuotas(t *testing.T, cli *clientv3.Client, broker int32) *Quotas {
	t.Helper()
	q := NewQuotas(QuotaOptions{Client: cli, BrokerID: broker, PublishInterval: 100 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := q.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.Close() })
	return q
}

func userEntity(name string) []QuotaComponent {
	return []QuotaComponent{{Type: QuotaEntityUser, Name: &name}}
}

func alter(t *testing.T, q *Quotas, alts ...QuotaAlteration) []error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	errs, err := q.Alter(ctx, alts, false)
	if err != nil {
		t.Fatal(err)
	}
	return errs
}

func cached(q *Quotas, key QuotaKey, user string) bool {
	_, _, ok := (*q.configs.Load()).resolve(key, user, "c")
	return ok
}

func TestQuotaChangeReachesEveryBroker(t *testing.T) {
	e := clustertest.Start(t)
	q1 := startQuotas(t, e.Client(), 1)
	q2 := startQuotas(t, e.Client(), 2)

	if errs := alter(t, q1, QuotaAlteration{Entity: userEntity("alice"), Ops: []QuotaOp{{Key: "producer_byte_rate", Value: 100}}}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	// 100 B/s over a padded 10 s window: 2000 bytes is twice the quota.
	waitFor(t, "broker 2 throttles alice", func() bool { return q2.Record(ProducerByteRate, "alice", "any", 1000) > 0 })
	if d := q2.Record(ProducerByteRate, "bob", "any", 1e9); d != 0 {
		t.Fatalf("bob has no quota but was throttled %v", d)
	}

	// Removing the last quota removes the entity; broker 2 stops throttling.
	if errs := alter(t, q1, QuotaAlteration{Entity: userEntity("alice"), Ops: []QuotaOp{{Key: "producer_byte_rate", Remove: true}}}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	waitFor(t, "broker 2 forgets alice's quota", func() bool { return q2.Record(ProducerByteRate, "alice", "any", 1000) == 0 })
	got, err := q2.Describe(context.Background(), QuotaFilter{})
	if err != nil || len(got) != 0 {
		t.Fatalf("describe after removal = %+v, %v", got, err)
	}
}

func TestQuotaAlterAndDescribe(t *testing.T) {
	e := clustertest.Start(t)
	q := startQuotas(t, e.Client(), 1)
	ctx := context.Background()
	app := "app"
	errs := alter(t, q,
		QuotaAlteration{Entity: userEntity("alice"), Ops: []QuotaOp{{Key: "producer_byte_rate", Value: 1048576}, {Key: "request_percentage", Value: 50}}},
		QuotaAlteration{Entity: []QuotaComponent{{Type: QuotaEntityUser}, {Type: QuotaEntityClientID, Name: &app}}, Ops: []QuotaOp{{Key: "consumer_byte_rate", Value: 2048}}},
		QuotaAlteration{Entity: userEntity("bob"), Ops: []QuotaOp{{Key: "producer_byte_rate", Value: -1}}},
		QuotaAlteration{Entity: userEntity("carol"), Ops: []QuotaOp{{Key: "bogus", Value: 1}}},
		QuotaAlteration{Entity: userEntity("alice"), Ops: []QuotaOp{{Key: "consumer_byte_rate", Value: 1}}},
	)
	for i, want := range []bool{false, false, true, true, true} {
		if (errs[i] != nil) != want || (errs[i] != nil && !errors.Is(errs[i], ErrInvalidQuota)) {
			t.Fatalf("alteration %d: err = %v, want failure %v", i, errs[i], want)
		}
	}
	got, err := q.Describe(ctx, QuotaFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Entity.String() != "user=<default>, client-id=app" || got[0].Values[ConsumerByteRate] != 2048 ||
		got[1].Entity.String() != "user=alice" || got[1].Values[ProducerByteRate] != 1048576 || got[1].Values[RequestPercentage] != 50 || len(got[1].Values) != 2 {
		t.Fatalf("describe = %+v", got)
	}

	// validate-only writes nothing.
	vErrs, err := q.Alter(ctx, []QuotaAlteration{{Entity: userEntity("dave"), Ops: []QuotaOp{{Key: "producer_byte_rate", Value: 5}}}}, true)
	if err != nil || vErrs[0] != nil {
		t.Fatalf("validate-only: %v %v", vErrs, err)
	}
	got, _ = q.Describe(ctx, QuotaFilter{Components: []QuotaFilterComponent{{Type: QuotaEntityUser, Match: QuotaMatchExact, Name: strp("dave")}}})
	if len(got) != 0 {
		t.Fatalf("validate-only wrote %+v", got)
	}

	// Partial removal keeps the other key.
	if errs := alter(t, q, QuotaAlteration{Entity: userEntity("alice"), Ops: []QuotaOp{{Key: "request_percentage", Remove: true}}}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	got, _ = q.Describe(ctx, QuotaFilter{Components: []QuotaFilterComponent{{Type: QuotaEntityUser, Match: QuotaMatchExact, Name: strp("alice")}}, Strict: true})
	if len(got) != 1 || len(got[0].Values) != 1 || got[0].Values[ProducerByteRate] != 1048576 {
		t.Fatalf("after removal: %+v", got)
	}
}

func TestQuotaRatesAddUpAcrossBrokers(t *testing.T) {
	e := clustertest.Start(t)
	q1 := startQuotas(t, e.Client(), 1)
	q2 := startQuotas(t, e.Client(), 2)
	if errs := alter(t, q1, QuotaAlteration{Entity: userEntity("alice"), Ops: []QuotaOp{{Key: "producer_byte_rate", Value: 1000}}}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	waitFor(t, "both brokers know the quota", func() bool { return cached(q1, ProducerByteRate, "alice") && cached(q2, ProducerByteRate, "alice") })
	// Broker 1 sees 20 kB in its window: 2 kB/s against 1 kB/s.
	if d := q1.Record(ProducerByteRate, "alice", "c", 20000); d == 0 {
		t.Fatal("broker 1 did not throttle alice")
	}
	// Broker 2 has seen a single byte, but broker 1's published rate counts.
	waitFor(t, "broker 2 counts broker 1's rate", func() bool { return q2.Record(ProducerByteRate, "alice", "c", 1) > 0 })

	// A closed broker withdraws its rates.
	_ = q1.Close()
	waitFor(t, "broker 2 drops broker 1's rate", func() bool { return q2.Record(ProducerByteRate, "alice", "c", 0) == 0 })
	resp, err := e.Client().Get(context.Background(), "/runnel/security/quota-usage/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	if resp.Count > 1 {
		t.Fatalf("%d brokers publish usage, want at most broker 2", resp.Count)
	}
}

func TestMutationQuotaStrictAndPermissive(t *testing.T) {
	e := clustertest.Start(t)
	q := startQuotas(t, e.Client(), 1)
	now := time.Unix(5000, 0)
	q.opts.Now = func() time.Time { return now }
	if errs := alter(t, q, QuotaAlteration{Entity: userEntity("alice"), Ops: []QuotaOp{{Key: "controller_mutation_rate", Value: 1}}}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	waitFor(t, "quota cached", func() bool { return cached(q, ControllerMutationRate, "alice") })
	// Burst is 1 × 11 × 1 s = 11 partitions: a first request of 15 goes
	// through (the bucket was not below zero) and leaves it at -4.
	if d, ok := q.RecordMutations("alice", "c", 15, true); !ok || d != 4*time.Second {
		t.Fatalf("first = %v %v, want accepted, 4s", d, ok)
	}
	if d, ok := q.RecordMutations("alice", "c", 1, true); ok || d != 4*time.Second {
		t.Fatalf("strict second = %v %v, want refused, 4s", d, ok)
	}
	if d, ok := q.RecordMutations("alice", "c", 1, false); !ok || d != 5*time.Second {
		t.Fatalf("permissive = %v %v, want accepted, 5s", d, ok)
	}
	now = now.Add(5 * time.Second)
	if d, ok := q.RecordMutations("alice", "c", 1, true); !ok || d != time.Second {
		t.Fatalf("after refill = %v %v, want accepted, 1s", d, ok)
	}
	if d, ok := q.RecordMutations("bob", "c", 1000, true); !ok || d != 0 {
		t.Fatalf("no quota = %v %v", d, ok)
	}
}
