package broker

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// readAll consumes topic from the start until it has want records or the
// partitions' end offsets are reached twice in a row with nothing new.
func readAll(t *testing.T, ctx context.Context, addr, topic string, isolation kgo.IsolationLevel, want int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(isolation),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	idle := 0
	for len(out) < want || idle < 2 {
		pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		fs := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records of %s: %v", len(out), want, topic, ctx.Err())
		}
		fs.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("fetch %s/%d: %v", topic, p, err)
			}
		})
		n := 0
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r); n++ })
		if n == 0 && len(out) >= want {
			idle++
		}
	}
	return out
}

func values(rs []*kgo.Record) []string {
	var out []string
	for _, r := range rs {
		out = append(out, string(r.Value))
	}
	sort.Strings(out)
	return out
}

// TestTransactionsCommitAbortAndReadCommitted runs franz-go's transactional
// producer and checks what read_committed and read_uncommitted consumers
// see, the last stable offset while a transaction is open, and fencing of a
// zombie producer: with Transactions V2 (which this broker advertises) and,
// with request versions capped as an older client would, V1.
func TestTransactionsCommitAbortAndReadCommitted(t *testing.T) {
	t.Run("v2", func(t *testing.T) { testTransactions(t) })
	t.Run("v1", func(t *testing.T) { testTransactions(t, kgo.MaxVersions(kversion.V3_8_0())) })
}

func testTransactions(t *testing.T, opts ...kgo.Opt) {
	env := newTestEnv(t, 90*time.Second, nil, 3, "tx")
	cfg, b, ctx, admin := &env.cfg, env.b, env.ctx, env.admin

	newProducer := func() *kgo.Client {
		cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(b.KafkaAddr()), kgo.DefaultProduceTopic("tx"),
			kgo.TransactionalID("tx-producer"), kgo.TransactionTimeout(20 * time.Second)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		return cl
	}
	prod := newProducer()
	defer prod.Close()
	produce := func(cl *kgo.Client, prefix string, n int) {
		t.Helper()
		for i := range n {
			if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte(strconv.Itoa(i)), Value: []byte(fmt.Sprintf("%s-%03d", prefix, i))}).FirstErr(); err != nil {
				t.Fatalf("produce %s-%d: %v", prefix, i, err)
			}
		}
	}
	end := func(cl *kgo.Client, commit kgo.TransactionEndTry) {
		t.Helper()
		if err := cl.EndTransaction(ctx, commit); err != nil {
			t.Fatalf("end transaction: %v", err)
		}
	}

	if err := prod.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	produce(prod, "committed", 30)
	end(prod, kgo.TryCommit)

	if err := prod.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	produce(prod, "aborted", 20)
	end(prod, kgo.TryAbort)

	// An open transaction holds the last stable offset back.
	if err := prod.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	produce(prod, "open", 10)
	lso, err := admin.ListCommittedOffsets(ctx, "tx")
	if err != nil {
		t.Fatal(err)
	}
	hwm, err := admin.ListEndOffsets(ctx, "tx")
	if err != nil {
		t.Fatal(err)
	}
	var lsoSum, hwmSum int64
	lso.Each(func(o kadm.ListedOffset) { lsoSum += o.Offset })
	hwm.Each(func(o kadm.ListedOffset) { hwmSum += o.Offset })
	// 30 committed + 20 aborted records, a marker per partition for each of
	// the two ended transactions, then the 10 open ones.
	if hwmSum != 30+20+2*3+10 || lsoSum >= hwmSum {
		t.Fatalf("high watermarks sum to %d (want %d), last stable offsets to %d (want less)", hwmSum, 30+20+2*3+10, lsoSum)
	}
	if got := values(readAll(t, ctx, b.KafkaAddr(), "tx", kgo.ReadCommitted(), 30)); len(got) != 30 || got[0] != "committed-000" || got[29] != "committed-029" {
		t.Fatalf("read_committed during an open transaction saw %d records: %v", len(got), got)
	}

	// A second producer with the same transactional id fences the first and
	// aborts its open transaction.
	zombie := prod
	prod = newProducer()
	defer prod.Close()
	if err := prod.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	produce(prod, "second", 5)
	end(prod, kgo.TryCommit)
	err = zombie.ProduceSync(ctx, &kgo.Record{Value: []byte("zombie")}).FirstErr()
	if err == nil {
		t.Fatal("the fenced producer could still produce")
	}
	if err := zombie.EndTransaction(ctx, kgo.TryCommit); err == nil {
		t.Fatal("the fenced producer could commit")
	}

	committed := values(readAll(t, ctx, b.KafkaAddr(), "tx", kgo.ReadCommitted(), 35))
	if len(committed) != 35 {
		t.Fatalf("read_committed saw %d records, want 35: %v", len(committed), committed)
	}
	for _, v := range committed {
		if v[:6] == "abort" || v[:4] == "open" || v == "zombie" {
			t.Fatalf("read_committed saw %q", v)
		}
	}
	uncommitted := values(readAll(t, ctx, b.KafkaAddr(), "tx", kgo.ReadUncommitted(), 65))
	if len(uncommitted) != 65 {
		t.Fatalf("read_uncommitted saw %d records, want 65 (30 committed, 20 aborted, 10 open-then-aborted, 5 second)", len(uncommitted))
	}

	// The broker describes what it holds.
	txs, err := admin.DescribeTransactions(ctx, "tx-producer")
	if err != nil {
		t.Fatal(err)
	}
	d, ok := txs["tx-producer"]
	if !ok || d.State != "CompleteCommit" || d.ProducerID < 0 {
		t.Fatalf("DescribeTransactions = %+v", txs)
	}
	listed, err := admin.ListTransactions(ctx, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := listed["tx-producer"]; !ok {
		t.Fatalf("ListTransactions = %+v", listed)
	}
	producers, err := admin.DescribeProducers(ctx, kadm.TopicsSet{"tx": {0: {}, 1: {}, 2: {}}})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	producers.EachProducer(func(p kadm.DescribedProducer) { n++ })
	if n == 0 {
		t.Fatal("DescribeProducers found no producer state")
	}

	// Everything survives a restart: markers, the aborted index, state.
	b.Close()
	b = startBroker(t, cfg)
	again := values(readAll(t, ctx, b.KafkaAddr(), "tx", kgo.ReadCommitted(), 35))
	if fmt.Sprint(again) != fmt.Sprint(committed) {
		t.Fatalf("after restart read_committed saw %d records, want the same 35", len(again))
	}
}

// TestTransactionalConsumeTransformProduce runs franz-go's
// GroupTransactSession as an exactly-once pipeline across a broker restart:
// the output holds every input record exactly once.
func TestTransactionalConsumeTransformProduce(t *testing.T) {
	env := newTestEnv(t, 120*time.Second, nil, 3, "in", "out")
	cfg, b, ctx := &env.cfg, env.b, env.ctx
	const n = 600
	prod, err := kgo.NewClient(kgo.SeedBrokers(b.KafkaAddr()), kgo.DefaultProduceTopic("in"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		prod.Produce(ctx, &kgo.Record{Value: []byte(fmt.Sprintf("r%04d", i))}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce: %v", err)
			}
		})
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	prod.Close()

	// run moves records from in to out until stop records were handled in
	// this session, one transaction per poll.
	run := func(addr string, stop int) int {
		sess, err := kgo.NewGroupTransactSession(kgo.SeedBrokers(addr), kgo.TransactionalID("pipeline"),
			kgo.ConsumerGroup("pipeline-group"), kgo.ConsumeTopics("in"), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DefaultProduceTopic("out"),
			kgo.TransactionTimeout(20*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		defer sess.Close()
		handled := 0
		for handled < stop {
			pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
			fs := sess.PollRecords(pctx, 50)
			pcancel()
			if ctx.Err() != nil {
				t.Fatalf("pipeline handled %d: %v", handled, ctx.Err())
			}
			if fs.NumRecords() == 0 {
				continue
			}
			if err := sess.Begin(); err != nil {
				t.Fatal(err)
			}
			fs.EachRecord(func(r *kgo.Record) {
				sess.Produce(ctx, &kgo.Record{Value: append([]byte("out-"), r.Value...)}, func(_ *kgo.Record, err error) {
					if err != nil {
						t.Errorf("pipeline produce: %v", err)
					}
				})
			})
			committed, err := sess.End(ctx, kgo.TryCommit)
			if err != nil {
				t.Fatalf("end: %v", err)
			}
			if committed {
				handled += fs.NumRecords()
			}
		}
		return handled
	}
	first := run(b.KafkaAddr(), n/2)
	if first >= n {
		t.Fatalf("the first session handled all %d records; the restart is not exercised", first)
	}
	b.Close()
	b = startBroker(t, cfg)
	if first < n {
		run(b.KafkaAddr(), n-first)
	}
	out := values(readAll(t, ctx, b.KafkaAddr(), "out", kgo.ReadCommitted(), n))
	if len(out) != n {
		t.Fatalf("output has %d records, want %d", len(out), n)
	}
	for i, v := range out {
		if want := fmt.Sprintf("out-r%04d", i); v != want {
			t.Fatalf("output record %d is %q, want %q (duplicates or losses)", i, v, want)
		}
	}
}

// TestDelayedEndTxnCannotEndLaterTransaction sends, over raw requests, an
// EndTxn v5 that arrives after its transaction was ended and the producer
// began the next one (KAFKA-17754): it must leave the next one open.
func TestDelayedEndTxnCannotEndLaterTransaction(t *testing.T) {
	env := newTestEnv(t, 60*time.Second, nil, 1, "late")
	ctx, cl := env.ctx, env.cl
	init := kmsg.NewPtrInitProducerIDRequest()
	id := "late-txn"
	init.TransactionalID, init.TransactionTimeoutMillis = &id, 30000
	ir, err := init.RequestWith(ctx, cl)
	if err != nil || ir.ErrorCode != 0 {
		t.Fatalf("InitProducerId: %v %v", err, kerr.ErrorForCode(ir.ErrorCode))
	}
	pid, epoch := ir.ProducerID, ir.ProducerEpoch
	addPart := func(epoch int16) {
		t.Helper()
		req := kmsg.NewPtrAddPartitionsToTxnRequest()
		req.Version = 3
		req.TransactionalID, req.ProducerID, req.ProducerEpoch = id, pid, epoch
		tp := kmsg.NewAddPartitionsToTxnRequestTopic()
		tp.Topic, tp.Partitions = "late", []int32{0}
		req.Topics = append(req.Topics, tp)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil || resp.Topics[0].Partitions[0].ErrorCode != 0 {
			t.Fatalf("AddPartitionsToTxn: %v %+v", err, resp)
		}
	}
	endTxn := func(epoch int16, commit bool) *kmsg.EndTxnResponse {
		t.Helper()
		req := kmsg.NewPtrEndTxnRequest()
		req.Version = 5
		req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit = id, pid, epoch, commit
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	addPart(epoch)
	first := endTxn(epoch, true)
	if first.ErrorCode != 0 || first.ProducerEpoch != epoch+1 {
		t.Fatalf("EndTxn: %v, epoch %d", kerr.ErrorForCode(first.ErrorCode), first.ProducerEpoch)
	}
	// A retry before the next transaction is answered as the same outcome.
	if r := endTxn(epoch, true); r.ErrorCode != 0 || r.ProducerEpoch != epoch+1 {
		t.Fatalf("retried EndTxn: %v, epoch %d", kerr.ErrorForCode(r.ErrorCode), r.ProducerEpoch)
	}
	addPart(epoch + 1)
	// The delayed copy arrives now, asking for an abort or a commit: the
	// new transaction must stay open.
	for _, commit := range []bool{false, true} {
		if r := endTxn(epoch, commit); r.ErrorCode != kerr.ProducerFenced.Code {
			t.Fatalf("delayed EndTxn(commit=%v) = %v, want PRODUCER_FENCED", commit, kerr.ErrorForCode(r.ErrorCode))
		}
	}
	txs, err := kadm.NewClient(cl).DescribeTransactions(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if st := txs[id].State; st != "Ongoing" {
		t.Fatalf("after the delayed EndTxn the transaction is %q, want Ongoing", st)
	}

	// AddPartitionsToTxn v4+ VerifyOnly: a partition of the open
	// transaction verifies, an unknown one fails alone, the others are not
	// attempted.
	verify := kmsg.NewPtrAddPartitionsToTxnRequest()
	verify.Version = 5
	tx := kmsg.NewAddPartitionsToTxnRequestTransaction()
	tx.TransactionalID, tx.ProducerID, tx.ProducerEpoch, tx.VerifyOnly = id, pid, epoch+1, true
	tp := kmsg.NewAddPartitionsToTxnRequestTransactionTopic()
	tp.Topic, tp.Partitions = "late", []int32{0}
	tx.Topics = append(tx.Topics, tp)
	verify.Transactions = append(verify.Transactions, tx)
	vr, err := verify.RequestWith(ctx, cl)
	if err != nil || vr.Transactions[0].Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("VerifyOnly of a partition in the transaction: %v %+v", err, vr)
	}
	verify.Transactions[0].Topics[0].Partitions = []int32{0, 7}
	if vr, err = verify.RequestWith(ctx, cl); err != nil {
		t.Fatal(err)
	}
	if ps := vr.Transactions[0].Topics[0].Partitions; ps[0].ErrorCode != kerr.OperationNotAttempted.Code || ps[1].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("VerifyOnly with an unknown partition: %+v", ps)
	}

	// ListTransactions refuses a bad pattern and reports unknown states.
	lt := kmsg.NewPtrListTransactionsRequest()
	lt.Version = 2
	lt.TransactionalIDPattern = kmsg.StringPtr("late-(")
	if r, err := lt.RequestWith(ctx, cl); err != nil || r.ErrorCode != kerr.InvalidRegularExpression.Code {
		t.Fatalf("ListTransactions with a bad pattern: %v %+v", err, r)
	}
	lt.TransactionalIDPattern, lt.StateFilters = kmsg.StringPtr("late-.*"), []string{"Ongoing", "Sleeping"}
	if r, err := lt.RequestWith(ctx, cl); err != nil || len(r.TransactionStates) != 1 || len(r.UnknownStateFilters) != 1 {
		t.Fatalf("ListTransactions by pattern and state: %v %+v", err, r)
	}

	// TxnOffsetCommit for a partition that does not exist fails it alone.
	toc := kmsg.NewPtrTxnOffsetCommitRequest()
	toc.TransactionalID, toc.Group, toc.ProducerID, toc.ProducerEpoch, toc.Generation = id, "late-group", pid, epoch+1, -1
	tt := kmsg.NewTxnOffsetCommitRequestTopic()
	tt.Topic = "late"
	for _, p := range []int32{0, 9} {
		pp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
		pp.Partition, pp.Offset = p, 1
		tt.Partitions = append(tt.Partitions, pp)
	}
	toc.Topics = append(toc.Topics, tt)
	tr, err := toc.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if ps := tr.Topics[0].Partitions; ps[0].ErrorCode != kerr.OperationNotAttempted.Code || ps[1].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("TxnOffsetCommit with an unknown partition: %+v", ps)
	}
}

// TestTransactionTimeoutAborts leaves a transaction open past its
// transaction.timeout.ms: the broker aborts it (the last stable offset moves
// past it, read_committed sees none of it) and fences the producer.
func TestTransactionTimeoutAborts(t *testing.T) {
	env := newTestEnv(t, 60*time.Second, nil, 1, "slow")
	ctx := env.ctx
	prod, err := kgo.NewClient(kgo.SeedBrokers(env.b.KafkaAddr()), kgo.DefaultProduceTopic("slow"),
		kgo.TransactionalID("slow-txn"), kgo.TransactionTimeout(1500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	if err := prod.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	for {
		lso, err := env.admin.ListCommittedOffsets(ctx, "slow")
		if err != nil {
			t.Fatal(err)
		}
		if o, _ := lso.Lookup("slow", 0); o.Offset == 6 { // 5 records and the abort marker
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the timed-out transaction was not aborted")
		case <-time.After(200 * time.Millisecond):
		}
	}
	if got := readAll(t, ctx, env.b.KafkaAddr(), "slow", kgo.ReadCommitted(), 0); len(got) != 0 {
		t.Fatalf("read_committed saw %d records of an aborted transaction", len(got))
	}
	txs, err := env.admin.DescribeTransactions(ctx, "slow-txn")
	if err != nil {
		t.Fatal(err)
	}
	if st := txs["slow-txn"].State; st != "CompleteAbort" {
		t.Fatalf("transaction state %q, want CompleteAbort", st)
	}
	if err := prod.EndTransaction(ctx, kgo.TryCommit); err == nil {
		t.Fatal("the producer committed a transaction the broker had aborted")
	}
}
