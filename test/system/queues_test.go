package system

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/test/harness"
)

// This file is the Jepsen-style check for share groups (queues): two brokers
// share one etcd (embedded in broker 1) and one object store; a producer
// writes unique values to one topic while share consumers (franz-go's
// kgo.ShareGroup) accept, release or reject each record at random, some
// records are always released or always rejected, a consumer now and then
// holds its records past the acquisition lock, consumers are killed (their
// connections cut, nothing acknowledged) and replaced, and broker 2 is
// killed with SIGKILL and restarted, at times only after its partitions
// have moved to broker 1. The group's lock is short (2 s), its
// delivery limit 3, and it has a dead-letter topic. At the end a clean
// consumer accepts whatever is left; the checker then holds the history
// (every delivery each consumer saw, every acknowledgement with whether the
// broker confirmed it) against the whole log, the group's start offsets and
// the dead-letter topic: every record ends accepted exactly once or in the
// dead-letter topic exactly once, none is lost, none is delivered after a
// confirmed accept or reject, and no delivery count passes the limit.

const (
	queueTopic      = "queue-jobs"
	queuePartitions = 3
	queueGroup      = "queue-workers"
	queueDLQ        = "dlq.queue-jobs"
	queueLimit      = 3
	queueLockMs     = 2000
)

// qpo is a record's place in the queue topic.
type qpo struct {
	Partition int32
	Offset    int64
}

func (p qpo) String() string { return fmt.Sprintf("%s/%d@%d", queueTopic, p.Partition, p.Offset) }

// qDelivery is one delivery of a record to a consumer; at is when the
// consumer polled it (since the run started).
type qDelivery struct {
	consumer string
	count    int32
	value    string
	at       time.Duration
}

func (d qDelivery) String() string {
	return fmt.Sprintf("{%s count %d at %v}", d.consumer, d.count, d.at.Round(time.Millisecond))
}

// qAck is one acknowledgement a consumer sent; confirmed says the broker
// answered it without error (otherwise its outcome is unknown).
type qAck struct {
	consumer  string
	count     int32 // the delivery count of the delivery it acknowledges
	status    kgo.AckStatus
	confirmed bool
	at        time.Duration // when its outcome was known
}

func (a qAck) String() string {
	outcome := "unknown"
	if a.confirmed {
		outcome = "confirmed"
	}
	return fmt.Sprintf("{%s %s of count %d %s at %v}", a.consumer, a.status, a.count, outcome, a.at.Round(time.Millisecond))
}

// qDead is one record of the dead-letter topic, as its headers name it.
type qDead struct {
	at     qpo
	topic  string
	count  int32
	reason string
	dlqAt  tpo
}

// Dead-letter reasons, as the checker understands them.
const (
	reasonRejected = "rejected"
	reasonLimit    = "delivery count exceeded"
)

// queueHistory is everything the clients did and saw.
type queueHistory struct {
	start      time.Time
	mu         sync.Mutex
	produced   map[string]qpo // acknowledged produces
	unknown    map[string]error
	deliveries map[qpo][]qDelivery
	acks       map[qpo][]qAck
	faults     []string
	violations *violations
}

func newQueueHistory() *queueHistory {
	return &queueHistory{
		start:      time.Now(),
		produced:   map[string]qpo{},
		unknown:    map[string]error{},
		deliveries: map[qpo][]qDelivery{},
		acks:       map[qpo][]qAck{},
		violations: &violations{byKind: map[string]*violationKind{}},
	}
}

func (h *queueHistory) produceDone(r *kgo.Record, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil {
		h.unknown[string(r.Value)] = err
		return
	}
	h.produced[string(r.Value)] = qpo{r.Partition, r.Offset}
}

func (h *queueHistory) delivered(consumer string, r *kgo.Record) {
	h.mu.Lock()
	defer h.mu.Unlock()
	at := qpo{r.Partition, r.Offset}
	h.deliveries[at] = append(h.deliveries[at], qDelivery{consumer: consumer, count: r.DeliveryCount(), value: string(r.Value), at: time.Since(h.start)})
}

func (h *queueHistory) acked(consumer string, r *kgo.Record, status kgo.AckStatus, confirmed bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	at := qpo{r.Partition, r.Offset}
	h.acks[at] = append(h.acks[at], qAck{consumer: consumer, count: r.DeliveryCount(), status: status, confirmed: confirmed, at: time.Since(h.start)})
}

func (h *queueHistory) fault(format string, args ...any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.faults = append(h.faults, fmt.Sprintf(format, args...))
}

// queueCounts are the figures of a run.
type queueCounts struct {
	produced, deliveries, redeliveries, unknownAcks int
	confirmed                                       map[kgo.AckStatus]int
}

// counts reports the produced values, the deliveries (and those with a
// delivery count above 1), the confirmed acknowledgements per status and
// the acknowledgements whose outcome is unknown.
func (h *queueHistory) counts() queueCounts {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := queueCounts{produced: len(h.produced), confirmed: map[kgo.AckStatus]int{}}
	for _, ds := range h.deliveries {
		c.deliveries += len(ds)
		for _, d := range ds {
			if d.count > 1 {
				c.redeliveries++
			}
		}
	}
	for _, as := range h.acks {
		for _, a := range as {
			if a.confirmed {
				c.confirmed[a.status]++
			} else {
				c.unknownAcks++
			}
		}
	}
	return c
}

// queueFinal is the state read at the end of the run.
type queueFinal struct {
	records map[qpo]string  // the whole queue topic
	ends    map[int32]int64 // its high watermarks
	starts  map[int32]int64 // the group's share-partition start offsets
	dead    []qDead         // the whole dead-letter topic
}

// Violation kinds of the queue checker.
const (
	vQLostWrite       = "acknowledged produce missing from the log"
	vQLost            = "record neither accepted nor dead-lettered"
	vQAcceptedTwice   = "accepted twice"
	vQAcceptedAndDead = "accepted and dead-lettered"
	vQDeadTwice       = "dead-lettered twice"
	vQOverLimit       = "delivery count above the limit"
	vQSameCount       = "delivered twice with one delivery count"
	vQAfterDone       = "delivered after a confirmed accept or reject"
	vQDeadUnexplained = "dead letter with no reject and under the limit"
	vQUnknownRecord   = "record that is not in the log"
	vQUnfinished      = "start offset short of the end"
)

// checkQueue checks the history against the final state, adding what it
// finds to h.violations.
func checkQueue(h *queueHistory, f queueFinal, limit int32) {
	h.mu.Lock()
	defer h.mu.Unlock()
	v := h.violations

	for value, at := range h.produced {
		if got, ok := f.records[at]; !ok || got != value {
			v.add(vQLostWrite, "%q acknowledged at %v, the log has %q there", value, at, got)
		}
	}
	for _, p := range sortedPartitions(f.ends) {
		if s, ok := f.starts[p]; !ok || s < f.ends[p] {
			v.add(vQUnfinished, "partition %d: start offset %v (known %v), end %d", p, s, ok, f.ends[p])
		}
	}

	// Deliveries: within the limit, each count once, of real records,
	// none after a confirmed accept or reject.
	done := map[qpo]int32{}    // lowest delivery count a confirmed accept or reject acknowledged
	doneBy := map[qpo]string{} // the consumer whose acknowledgement that was
	accepted := map[qpo]int{}
	acceptTried := map[qpo]bool{}
	rejectTried := map[qpo]bool{}
	for at, as := range h.acks {
		for _, a := range as {
			switch a.status {
			case kgo.AckAccept:
				acceptTried[at] = true
				if a.confirmed {
					accepted[at]++
				}
			case kgo.AckReject:
				rejectTried[at] = true
			}
			if a.confirmed && (a.status == kgo.AckAccept || a.status == kgo.AckReject) {
				if c, ok := done[at]; !ok || a.count < c {
					done[at] = a.count
					doneBy[at] = a.consumer
				}
			}
		}
	}
	for _, at := range sortedPlaces(h.deliveries) {
		seen := map[int32]string{}
		for _, d := range h.deliveries[at] {
			if value, ok := f.records[at]; !ok || value != d.value {
				v.add(vQUnknownRecord, "%s was delivered %q at %v; the log has %q", d.consumer, d.value, at, value)
			}
			if d.count > limit || d.count < 1 {
				v.add(vQOverLimit, "%s got %v with delivery count %d (limit %d)", d.consumer, at, d.count, limit)
			}
			if prev, ok := seen[d.count]; ok {
				v.add(vQSameCount, "%v delivered with count %d to %s and to %s", at, d.count, prev, d.consumer)
			}
			seen[d.count] = d.consumer
			// An acknowledgement names offsets and a member, not a
			// delivery: when the member holds the record again (its lock
			// ran out while the client buffered it, or a session it closed
			// elsewhere released it), the broker rightly applies it to
			// that later delivery, which then reaches the same consumer.
			// A second confirmed accept of it is caught as accepted twice.
			if c, ok := done[at]; ok && d.count > c && d.consumer != doneBy[at] {
				v.add(vQAfterDone, "%v delivered to %s with count %d after an acknowledgement of delivery %d was confirmed: deliveries %v, acknowledgements %v",
					at, d.consumer, d.count, c, h.deliveries[at], h.acks[at])
			}
		}
	}
	for _, at := range sortedPlaces(accepted) {
		if accepted[at] > 1 {
			v.add(vQAcceptedTwice, "%v: %d confirmed accepts %v", at, accepted[at], h.acks[at])
		}
	}

	// Dead letters: each once, of real records, explained, never of an
	// accepted record.
	dead := map[qpo]int{}
	for _, d := range f.dead {
		if d.topic != queueTopic {
			v.add(vQUnknownRecord, "dead letter at %v names topic %q", d.dlqAt, d.topic)
			continue
		}
		if _, ok := f.records[d.at]; !ok {
			v.add(vQUnknownRecord, "dead letter at %v names %v", d.dlqAt, d.at)
			continue
		}
		dead[d.at]++
		if accepted[d.at] > 0 {
			v.add(vQAcceptedAndDead, "%v: dead letter at %v (%s, count %d) after a confirmed accept %v", d.at, d.dlqAt, d.reason, d.count, h.acks[d.at])
		}
		switch {
		case d.reason == reasonRejected && rejectTried[d.at]:
		case d.reason == reasonLimit && d.count >= limit:
		default:
			v.add(vQDeadUnexplained, "%v: dead letter at %v with reason %q and count %d; acknowledgements %v", d.at, d.dlqAt, d.reason, d.count, h.acks[d.at])
		}
		if d.count > limit {
			v.add(vQOverLimit, "dead letter at %v says %v was delivered %d times (limit %d)", d.dlqAt, d.at, d.count, limit)
		}
	}
	for _, at := range sortedPlaces(dead) {
		if dead[at] > 1 {
			v.add(vQDeadTwice, "%v is %d times in the dead-letter topic", at, dead[at])
		}
	}

	// Every record of the log ends accepted or dead-lettered.
	for _, at := range sortedPlaces(f.records) {
		if dead[at] == 0 && accepted[at] == 0 && !acceptTried[at] {
			v.add(vQLost, "%v (%q): deliveries %v, acknowledgements %v, not in the dead-letter topic",
				at, f.records[at], h.deliveries[at], h.acks[at])
		}
	}
}

// sortedPlaces returns m's keys in partition and offset order.
func sortedPlaces[V any](m map[qpo]V) []qpo {
	out := make([]qpo, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Partition != out[j].Partition {
			return out[i].Partition < out[j].Partition
		}
		return out[i].Offset < out[j].Offset
	})
	return out
}

// queueConfig sizes one run.
type queueConfig struct {
	duration   time.Duration
	preload    int
	rate       int // records per second during the run
	consumers  int
	killBroker []int // brokers killed in turn (2, and 1 in the soak form)
}

// TestJepsenQueues is the checker described at the top of this file. The
// default run takes under a minute; RUNNEL_SOAK=1 runs for minutes with more
// consumers and SIGKILLs of both brokers.
func TestJepsenQueues(t *testing.T) {
	cfg := queueConfig{duration: 20 * time.Second, preload: 600, rate: 60, consumers: 4, killBroker: []int{2}}
	if soak() {
		cfg = queueConfig{duration: 3 * time.Minute, preload: 3000, rate: 200, consumers: 8, killBroker: []int{2, 1}}
	}
	started := time.Now()
	objects := filepath.Join(t.TempDir(), "objects")
	b1 := harness.Start(t, harness.Options{BrokerID: 1, ObjectStore: objects})
	// Broker 2's lease is short, so when it stays down a little longer
	// its partitions move to broker 1 (which then serves their share
	// partitions from etcd, honouring broker 2's locks) and back again.
	b2 := harness.Start(t, harness.Options{BrokerID: 2, ObjectStore: objects, EtcdEndpoints: b1.EtcdURL, Config: "etcd:\n  lease-ttl: 2s\n"})
	procs := map[int]*harness.Proc{1: b1, 2: b2}
	seeds := []string{b1.Kafka, b2.Kafka}
	t.Logf("brokers up after %v", time.Since(started).Round(time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), cfg.duration+3*time.Minute)
	defer cancel()

	admin := newClient(t, seeds, kgo.RetryTimeout(time.Minute))
	createTopic(ctx, t, admin, queueTopic, queuePartitions, nil)
	createTopic(ctx, t, admin, queueDLQ, 1, map[string]*string{"errors.deadletterqueue.group.enable": kmsg.StringPtr("true")})
	setGroupConfigs(ctx, t, admin, queueGroup, map[string]string{
		"share.auto.offset.reset":           "earliest",
		"share.record.lock.duration.ms":     strconv.Itoa(queueLockMs),
		"share.delivery.count.limit":        strconv.Itoa(queueLimit),
		"errors.deadletterqueue.topic.name": queueDLQ,
	})

	h := newQueueHistory()
	h.start = started
	producer := newClient(t, seeds,
		kgo.DefaultProduceTopic(queueTopic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordRetries(math.MaxInt32),
		kgo.RecordDeliveryTimeout(2*time.Minute),
		kgo.RetryTimeout(2*time.Minute),
		kgo.ProducerLinger(5*time.Millisecond),
	)
	var seq atomic.Int64
	produce := func(n int) {
		for range n {
			producer.Produce(ctx, kgo.StringRecord(fmt.Sprintf("q-%06d", seq.Add(1))), h.produceDone)
		}
	}
	t.Logf("topics and group configs after %v", time.Since(started).Round(time.Millisecond))
	produce(cfg.preload)
	if err := producer.Flush(ctx); err != nil {
		t.Fatalf("preload: %v", err)
	}
	setup := time.Since(started)
	prodCtx, stopProducing := context.WithCancel(ctx)
	var producing sync.WaitGroup
	producing.Add(1)
	go func() {
		defer producing.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-prodCtx.Done():
				return
			case <-tick.C:
				produce(max(cfg.rate/10, 1))
			}
		}
	}()

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 12))
	pool := &queueConsumers{t: t, ctx: ctx, seeds: seeds, h: h}
	for range cfg.consumers {
		pool.start(rng.Uint64())
	}

	end := time.Now().Add(cfg.duration)
	kills := 0
	for step := 0; time.Now().Before(end); step++ {
		time.Sleep(time.Duration(1500+rng.IntN(1500)) * time.Millisecond)
		if step%3 == 1 {
			id := cfg.killBroker[kills%len(cfg.killBroker)]
			kills++
			b := procs[id]
			down := time.Duration(200+rng.IntN(1000)) * time.Millisecond
			if kills%2 == 0 {
				down = time.Duration(3000+rng.IntN(1000)) * time.Millisecond // past broker 2's lease
			}
			h.fault("SIGKILL broker %d at %v, down %v", id, time.Since(started).Round(time.Millisecond), down)
			b.Kill()
			time.Sleep(down)
			b.Restart()
			for _, p := range procs {
				p.WaitReady(2 * time.Minute)
			}
			continue
		}
		name := pool.kill(rng.IntN(cfg.consumers))
		h.fault("killed %s at %v", name, time.Since(started).Round(time.Millisecond))
		pool.start(rng.Uint64())
	}
	stopProducing()
	producing.Wait()
	if err := producer.Flush(ctx); err != nil {
		t.Logf("producer: flush: %v (its unfinished records count as unknown)", err)
	}
	runDone := time.Since(started)
	pool.stopAll()
	stopped := time.Since(started)

	// The killed consumers are still members until their session times
	// out (45 s at the least) and keep their share of the partitions: leave
	// the group on their behalf, as their session timeout would. Then a
	// clean consumer accepts whatever is left (records released, or whose
	// locks a killed consumer held), until every start offset reaches the
	// end of its partition.
	evictMembers(ctx, t, admin, pool.killedClients())
	ends := endOffsets(ctx, t, admin, queueTopic)
	starts := drainQueue(ctx, t, seeds, h, ends)
	drained := time.Since(started)
	dead := readDeadLetters(ctx, t, admin, seeds)
	records := map[qpo]string{}
	for p, recs := range consumeAll(ctx, t, seeds, queueTopic, ends) {
		for _, r := range recs {
			records[qpo{p, r.Offset}] = r.Value
		}
	}
	checkQueue(h, queueFinal{records: records, ends: ends, starts: starts, dead: dead}, queueLimit)

	c := h.counts()
	confirmed := c.confirmed
	reasons := map[string]int{}
	for _, d := range dead {
		reasons[d.reason]++
	}
	h.mu.Lock()
	t.Logf("records: %d in the log (%d produced with acknowledgement, %d unknown); %d deliveries (%d redeliveries); acknowledgements: %d accept, %d release, %d reject confirmed, %d unknown (failed, or cut off by a kill; the drain's included); dead letters: %v",
		len(records), c.produced, len(h.unknown), c.deliveries, c.redeliveries, confirmed[kgo.AckAccept], confirmed[kgo.AckRelease], confirmed[kgo.AckReject], c.unknownAcks, reasons)
	t.Logf("faults injected (%d): %s", len(h.faults), strings.Join(h.faults, "; "))
	h.mu.Unlock()
	t.Logf("durations: set-up %v, run %v, consumers stopped %v, drained %v, total %v", setup.Round(time.Millisecond), runDone.Round(time.Millisecond),
		stopped.Round(time.Millisecond), drained.Round(time.Millisecond), time.Since(started).Round(time.Millisecond))
	if reasons[reasonRejected] == 0 || reasons[reasonLimit] == 0 || confirmed[kgo.AckAccept] == 0 || confirmed[kgo.AckRelease] == 0 {
		t.Errorf("the run must accept, release, reject and exceed the delivery limit for the check to mean anything (dead letters %v, confirmed %v)", reasons, confirmed)
	}
	if t.Failed() || h.violations.total() > 0 {
		t.Logf("log tails:\n%s", logTails(procs, 40))
	}
	h.violations.report(t)
}

// setGroupConfigs sets a group's configs (IncrementalAlterConfigs on the
// GROUP resource) and fails the test unless the broker accepted them.
func setGroupConfigs(ctx context.Context, t testing.TB, cl *kgo.Client, group string, configs map[string]string) {
	t.Helper()
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	res := kmsg.NewIncrementalAlterConfigsRequestResource()
	res.ResourceType = kmsg.ConfigResourceTypeGroupConfig
	res.ResourceName = group
	for _, name := range sortedKeys(configs) {
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Name, c.Op, c.Value = name, 0, kmsg.StringPtr(configs[name])
		res.Configs = append(res.Configs, c)
	}
	req.Resources = append(req.Resources, res)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("set group configs of %s: %v", group, err)
	}
	for _, r := range resp.Resources {
		if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
			t.Fatalf("set group configs of %s: %v (%v)", group, err, r.ErrorMessage)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// queueConsumers runs the share consumers; each has its own dialer, so
// killing one cuts its connections without a word to the brokers.
type queueConsumers struct {
	t     *testing.T
	ctx   context.Context
	seeds []string
	h     *queueHistory

	mu     sync.Mutex
	n      int
	live   []*queueConsumer
	killed []string       // client ids of the killed consumers
	closed sync.WaitGroup // killed and stopped clients closing
}

// clientID is the client id of consumer name.
func queueClientID(name string) string { return "runnel-queues-" + name }

func (q *queueConsumers) killedClients() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return slices.Clone(q.killed)
}

// queueConsumer is one share consumer.
type queueConsumer struct {
	name   string
	cl     *kgo.Client
	dialer *killableDialer
	stop   chan struct{}
	done   chan struct{}

	resMu   sync.Mutex
	results kgo.ShareAckResults
}

func (q *queueConsumers) start(seed uint64) {
	q.mu.Lock()
	q.n++
	c := &queueConsumer{name: fmt.Sprintf("consumer-%d", q.n), dialer: &killableDialer{conns: map[net.Conn]bool{}},
		stop: make(chan struct{}), done: make(chan struct{})}
	q.live = append(q.live, c)
	q.mu.Unlock()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(q.seeds...),
		kgo.ClientID(queueClientID(c.name)),
		kgo.ConsumeTopics(queueTopic),
		kgo.ShareGroup(queueGroup),
		kgo.ShareMaxRecords(25),
		kgo.ShareAckCallback(func(_ *kgo.Client, rs kgo.ShareAckResults) {
			c.resMu.Lock()
			c.results = append(c.results, rs...)
			c.resMu.Unlock()
		}),
		kgo.Dialer(c.dialer.dial),
		kgo.MetadataMinAge(100*time.Millisecond),
		kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond }),
		kgo.RetryTimeout(10*time.Second),
	)
	if err != nil {
		q.t.Fatalf("%s: %v", c.name, err)
	}
	c.cl = cl
	go c.run(q.ctx, q.h, seed)
}

// kill cuts the connections of the i-th live consumer and replaces nothing;
// it returns its name.
func (q *queueConsumers) kill(i int) string {
	q.mu.Lock()
	c := q.live[i%len(q.live)]
	q.live = append(q.live[:i%len(q.live)], q.live[i%len(q.live)+1:]...)
	q.killed = append(q.killed, queueClientID(c.name))
	q.mu.Unlock()
	c.dialer.kill()
	close(c.stop)
	<-c.done
	q.closed.Add(1)
	go func() { defer q.closed.Done(); c.cl.Close() }() // it can no longer reach anyone
	return c.name
}

// stopAll stops every live consumer after its current poll (all its
// acknowledgements sent) and closes it.
func (q *queueConsumers) stopAll() {
	q.mu.Lock()
	live := q.live
	q.live = nil
	q.mu.Unlock()
	for _, c := range live {
		close(c.stop)
	}
	for _, c := range live {
		<-c.done
		c.cl.Close()
	}
	q.closed.Wait()
}

// run polls and acknowledges until stop: records whose number is a multiple
// of 53 are always released (they reach the delivery limit), of 41 always
// rejected; the others are accepted (75%), released (17%) or rejected. Now
// and then the consumer sleeps past the lock before acknowledging. After
// each poll it flushes its acknowledgements and records, per partition,
// whether the broker confirmed them (an acknowledgement sent in time and
// answered without error for its partition is confirmed).
func (c *queueConsumer) run(ctx context.Context, h *queueHistory, seed uint64) {
	defer close(c.done)
	rng := rand.New(rand.NewPCG(seed, 53))
	for {
		select {
		case <-c.stop:
			return
		case <-ctx.Done():
			return
		default:
		}
		pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		fs := c.cl.PollRecords(pctx, 50)
		cancel()
		recs := fs.Records()
		if len(recs) == 0 {
			continue
		}
		if c.dialer.dead() {
			return // killed while polling: nothing more is sent
		}
		statuses := make([]kgo.AckStatus, len(recs))
		for i, r := range recs {
			h.delivered(c.name, r)
			n, _ := strconv.Atoi(strings.TrimPrefix(string(r.Value), "q-"))
			switch x := rng.IntN(100); {
			case n%53 == 0:
				statuses[i] = kgo.AckRelease
			case n%41 == 0:
				statuses[i] = kgo.AckReject
			case x < 75:
				statuses[i] = kgo.AckAccept
			case x < 92:
				statuses[i] = kgo.AckRelease
			default:
				statuses[i] = kgo.AckReject
			}
		}
		// Now and then the consumer holds its records past the lock. Its
		// acknowledgements then count as unknown even when the broker
		// takes them: the records may meanwhile have been acquired again
		// by this same member (the client fetches in the background),
		// and an acknowledgement names offsets and a member, not a
		// delivery, so the broker rightly applies it to that delivery.
		late := rng.IntN(40) == 0
		if late {
			time.Sleep(queueLockMs*time.Millisecond + 700*time.Millisecond)
		}
		c.resMu.Lock()
		c.results = nil
		c.resMu.Unlock()
		for i, r := range recs {
			r.Ack(statuses[i])
		}
		fctx, fcancel := context.WithTimeout(ctx, 10*time.Second)
		err := c.cl.FlushAcks(fctx)
		fcancel()
		c.resMu.Lock()
		ok, bad := map[int32]bool{}, map[int32]bool{}
		for _, res := range c.results {
			if res.Topic != queueTopic {
				continue
			}
			if res.Err != nil {
				bad[res.Partition] = true
			} else {
				ok[res.Partition] = true
			}
		}
		c.resMu.Unlock()
		for i, r := range recs {
			h.acked(c.name, r, statuses[i], !late && err == nil && ok[r.Partition] && !bad[r.Partition])
		}
	}
}

// killableDialer dials TCP until killed; then it closes every connection it
// made and refuses to dial.
type killableDialer struct {
	mu     sync.Mutex
	killed bool
	conns  map[net.Conn]bool
}

func (d *killableDialer) dial(ctx context.Context, network, host string) (net.Conn, error) {
	var nd net.Dialer
	conn, err := nd.DialContext(ctx, network, host)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.killed {
		conn.Close()
		return nil, errors.New("consumer killed")
	}
	d.conns[conn] = true
	return conn, nil
}

func (d *killableDialer) kill() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.killed = true
	for c := range d.conns {
		c.Close()
	}
}

func (d *killableDialer) dead() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.killed
}

// evictMembers makes the queue group's members with the given client ids
// leave (a ShareGroupHeartbeat with member epoch -1 for each).
func evictMembers(ctx context.Context, t *testing.T, admin *kgo.Client, clientIDs []string) {
	t.Helper()
	ds, err := kadm.NewClient(admin).DescribeShareGroups(ctx, queueGroup)
	if err != nil || ds[queueGroup].Err != nil {
		t.Fatalf("describe share group %s: %v %v", queueGroup, err, ds[queueGroup].Err)
	}
	for _, m := range ds[queueGroup].Members {
		if !slices.Contains(clientIDs, m.ClientID) {
			continue
		}
		req := kmsg.NewPtrShareGroupHeartbeatRequest()
		req.GroupID, req.MemberID, req.MemberEpoch = queueGroup, m.MemberID, -1
		resp, err := req.RequestWith(ctx, admin)
		if err == nil {
			err = kerr.ErrorForCode(resp.ErrorCode)
		}
		if err != nil && !errors.Is(err, kerr.UnknownMemberID) {
			t.Fatalf("leave for %s (%s): %v", m.MemberID, m.ClientID, err)
		}
	}
}

// drainQueue accepts every record left until the group's start offsets
// reach ends (or a minute passes) and returns the start offsets it saw
// last.
func drainQueue(ctx context.Context, t *testing.T, seeds []string, h *queueHistory, ends map[int32]int64) map[int32]int64 {
	t.Helper()
	cl := newClient(t, seeds, kgo.ConsumeTopics(queueTopic), kgo.ShareGroup(queueGroup))
	adm := kadm.NewClient(newClient(t, seeds))
	starts := map[int32]int64{}
	deadline := time.Now().Add(time.Minute)
	for next := time.Now(); ; {
		if time.Now().After(next) {
			next = time.Now().Add(300 * time.Millisecond)
			starts = shareStarts(ctx, t, adm)
			finished := true
			for p, e := range ends {
				if starts[p] < e {
					finished = false
				}
			}
			if finished || time.Now().After(deadline) {
				break
			}
		}
		pctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		fs := cl.PollRecords(pctx, 100)
		cancel()
		recs := fs.Records()
		for _, r := range recs {
			h.delivered("drain", r)
			r.Ack(kgo.AckAccept)
		}
		if len(recs) == 0 {
			continue
		}
		fctx, fcancel := context.WithTimeout(ctx, 10*time.Second)
		err := cl.FlushAcks(fctx)
		fcancel()
		for _, r := range recs {
			// The drain consumer's acknowledgements count as tried, not
			// confirmed: it has no callback, and a lost accept here
			// shows as a start offset short of the end.
			h.acked("drain", r, kgo.AckAccept, false)
		}
		if err != nil {
			t.Logf("drain: flush acknowledgements: %v", err)
		}
	}
	cl.Close()
	return starts
}

// shareStarts is the queue group's start offset per partition of the
// queue topic (DescribeShareGroupOffsets).
func shareStarts(ctx context.Context, t *testing.T, adm *kadm.Client) map[int32]int64 {
	t.Helper()
	out := map[int32]int64{}
	ds, err := adm.DescribeShareGroupOffsets(ctx, queueGroup)
	if err != nil {
		t.Logf("describe share group offsets: %v", err)
		return out
	}
	d, ok := ds[queueGroup]
	if !ok || d.Err != nil {
		t.Logf("describe share group offsets: %v", d.Err)
		return out
	}
	d.Offsets.Each(func(o kadm.ShareOffset) {
		if o.Topic == queueTopic && o.Err == nil {
			out[o.Partition] = o.StartOffset
		}
	})
	return out
}

// readDeadLetters reads the whole dead-letter topic once its end has not
// moved for two seconds (dead letters are written after the records are
// archived).
func readDeadLetters(ctx context.Context, t *testing.T, admin *kgo.Client, seeds []string) []qDead {
	t.Helper()
	var ends map[int32]int64
	for stable := time.Now(); time.Since(stable) < 2*time.Second; time.Sleep(250 * time.Millisecond) {
		now := endOffsets(ctx, t, admin, queueDLQ)
		if fmt.Sprint(now) != fmt.Sprint(ends) {
			ends, stable = now, time.Now()
		}
	}
	var out []qDead
	consume(ctx, t, seeds, queueDLQ, ends, func(r *kgo.Record) {
		d, err := parseDeadLetter(r)
		if err != nil {
			t.Errorf("dead letter %s/%d@%d: %v", r.Topic, r.Partition, r.Offset, err)
			return
		}
		out = append(out, d)
	})
	return out
}

// parseDeadLetter reads a dead letter's headers (KIP-1191).
func parseDeadLetter(r *kgo.Record) (qDead, error) {
	d := qDead{dlqAt: tpo{r.Topic, r.Partition, r.Offset}}
	hs := map[string]string{}
	for _, h := range r.Headers {
		hs[h.Key] = string(h.Value)
	}
	var err error
	get := func(key string) string {
		v, ok := hs[key]
		if !ok && err == nil {
			err = fmt.Errorf("no header %s (headers %v)", key, hs)
		}
		return v
	}
	num := func(key string) int64 {
		n, perr := strconv.ParseInt(get(key), 10, 64)
		if perr != nil && err == nil {
			err = fmt.Errorf("header %s: %v", key, perr)
		}
		return n
	}
	d.topic = get(dlqHeaderTopic)
	d.at = qpo{int32(num(dlqHeaderPartition)), num(dlqHeaderOffset)}
	d.count = int32(num(dlqHeaderDeliveryCount))
	switch msg := get(dlqHeaderMessage); msg {
	case "Offset rejected by client.":
		d.reason = reasonRejected
	case "Offset delivery count exceeded the threshold.":
		d.reason = reasonLimit
	default:
		d.reason = msg
	}
	if g := get(dlqHeaderGroup); g != queueGroup && err == nil {
		err = fmt.Errorf("header %s is %q, want %q", dlqHeaderGroup, g, queueGroup)
	}
	return d, err
}

// The dead-letter headers the checker reads (KIP-1191, as Kafka writes
// them: the reason is Kafka's message text).
const (
	dlqHeaderTopic         = "__dlq.errors.topic"
	dlqHeaderPartition     = "__dlq.errors.partition"
	dlqHeaderOffset        = "__dlq.errors.offset"
	dlqHeaderGroup         = "__dlq.errors.group"
	dlqHeaderDeliveryCount = "__dlq.errors.delivery.count"
	dlqHeaderMessage       = "__dlq.errors.message"
)

// TestQueueCheckerFindsViolations feeds the queue checker a made-up history
// with one of each violation, so a checker that stopped looking fails here
// rather than passing every real run.
func TestQueueCheckerFindsViolations(t *testing.T) {
	h := newQueueHistory()
	rec := func(p int32, off int64) qpo { return qpo{p, off} }
	f := queueFinal{
		records: map[qpo]string{},
		ends:    map[int32]int64{0: 12, 1: 3},
		starts:  map[int32]int64{0: 12, 1: 2}, // partition 1 unfinished
	}
	for off := range int64(12) {
		f.records[rec(0, off)] = fmt.Sprintf("v%d", off)
	}
	for off := range int64(3) {
		f.records[rec(1, off)] = fmt.Sprintf("w%d", off)
	}
	deliver := func(at qpo, consumer string, count int32, value string) {
		h.deliveries[at] = append(h.deliveries[at], qDelivery{consumer: consumer, count: count, value: value})
	}
	ack := func(at qpo, consumer string, count int32, s kgo.AckStatus, confirmed bool) {
		h.acks[at] = append(h.acks[at], qAck{consumer: consumer, count: count, status: s, confirmed: confirmed})
	}
	deadAt := func(at qpo, count int32, reason string, off int64) qDead {
		return qDead{at: at, topic: queueTopic, count: count, reason: reason, dlqAt: tpo{queueDLQ, 0, off}}
	}
	// Good records: v0 accepted (and delivered once more to the same
	// consumer, whose accept the broker applied to that delivery, so the
	// second accept fails), v1 rejected and dead, v2 released to the limit
	// and dead, v3 accepted with an unknown outcome.
	deliver(rec(0, 0), "a", 1, "v0")
	ack(rec(0, 0), "a", 1, kgo.AckAccept, true)
	deliver(rec(0, 0), "a", 2, "v0")
	ack(rec(0, 0), "a", 2, kgo.AckAccept, false)
	deliver(rec(0, 1), "a", 1, "v1")
	ack(rec(0, 1), "a", 1, kgo.AckReject, true)
	for c := int32(1); c <= 3; c++ {
		deliver(rec(0, 2), "a", c, "v2")
		ack(rec(0, 2), "a", c, kgo.AckRelease, true)
	}
	deliver(rec(0, 3), "b", 1, "v3")
	ack(rec(0, 3), "b", 1, kgo.AckAccept, false)
	f.dead = append(f.dead, deadAt(rec(0, 1), 1, reasonRejected, 0), deadAt(rec(0, 2), 3, reasonLimit, 1))
	// v4: accepted by two consumers, both confirmed.
	deliver(rec(0, 4), "a", 1, "v4")
	ack(rec(0, 4), "a", 1, kgo.AckAccept, true)
	deliver(rec(0, 4), "b", 2, "v4") // also delivered after the accept
	ack(rec(0, 4), "b", 2, kgo.AckAccept, true)
	// v5: accepted and dead.
	deliver(rec(0, 5), "a", 1, "v5")
	ack(rec(0, 5), "a", 1, kgo.AckAccept, true)
	f.dead = append(f.dead, deadAt(rec(0, 5), 1, reasonRejected, 2))
	// v6: dead twice (rejected once, confirmed).
	deliver(rec(0, 6), "a", 1, "v6")
	ack(rec(0, 6), "a", 1, kgo.AckReject, true)
	f.dead = append(f.dead, deadAt(rec(0, 6), 1, reasonRejected, 3), deadAt(rec(0, 6), 1, reasonRejected, 4))
	// v7: delivered past the limit, and twice with count 2.
	deliver(rec(0, 7), "a", 2, "v7")
	deliver(rec(0, 7), "b", 2, "v7")
	deliver(rec(0, 7), "a", 4, "v7")
	ack(rec(0, 7), "a", 4, kgo.AckAccept, true)
	// v8: dead with no reason to be.
	deliver(rec(0, 8), "a", 1, "v8")
	ack(rec(0, 8), "a", 1, kgo.AckRelease, true)
	f.dead = append(f.dead, deadAt(rec(0, 8), 1, reasonLimit, 5))
	// v9: never accepted, not dead: lost.
	deliver(rec(0, 9), "a", 1, "v9")
	ack(rec(0, 9), "a", 1, kgo.AckRelease, true)
	// v10: delivered with a value the log does not have; v11 a dead letter
	// for an offset the log does not have.
	deliver(rec(0, 10), "a", 1, "zz")
	ack(rec(0, 10), "a", 1, kgo.AckAccept, true)
	deliver(rec(0, 11), "a", 1, "v11")
	ack(rec(0, 11), "a", 1, kgo.AckAccept, true)
	f.dead = append(f.dead, deadAt(rec(0, 99), 1, reasonRejected, 6))
	// Partition 1: w0..w2 accepted; an acknowledged produce of "w9" at
	// 1@1 that the log has as w1.
	for off := range int64(3) {
		at := rec(1, off)
		deliver(at, "a", 1, f.records[at])
		ack(at, "a", 1, kgo.AckAccept, true)
	}
	h.produced["w9"] = rec(1, 1)
	h.produced["v0"] = rec(0, 0)

	checkQueue(h, f, 3)
	want := map[string]int{
		vQAcceptedTwice:   1, // v4
		vQAfterDone:       1, // v4 delivered with count 2 after the confirmed accept of 1
		vQAcceptedAndDead: 1, // v5
		vQDeadTwice:       1, // v6
		vQOverLimit:       1, // v7 count 4
		vQSameCount:       1, // v7 count 2 twice
		vQDeadUnexplained: 2, // v5 (rejected, never rejected), v8 (limit, count 1)
		vQLost:            1, // v9
		vQUnknownRecord:   2, // zz, dead letter at 0@99
		vQLostWrite:       1, // w9
		vQUnfinished:      1, // partition 1
	}
	for kind, n := range want {
		k := h.violations.byKind[kind]
		if k == nil || k.count != n {
			got := 0
			var ex []string
			if k != nil {
				got, ex = k.count, k.examples
			}
			t.Errorf("%s: %d found, want %d %v", kind, got, n, ex)
		}
	}
	for kind, k := range h.violations.byKind {
		if _, ok := want[kind]; !ok {
			t.Errorf("unexpected %s: %v", kind, k.examples)
		}
	}
}
