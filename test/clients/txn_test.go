package clients

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/test/harness"
)

// The transaction phases the Python and JS txn-produce programs run, in
// order: a committed transaction, an aborted one, a committed one.
const (
	phaseCommit1 = "c1"
	phaseAbort   = "ab"
	phaseCommit2 = "c2"
)

// txnPlacement is where a transactional producer was told a record landed.
type txnPlacement struct {
	Key       string `json:"key"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Phase     string `json:"phase"`
}

// want is one record a consumer must see, where the producer placed it.
type want struct {
	Key       string
	Value     string
	Headers   [][2]string
	Partition int32
	Offset    int64
}

// txnValue is the value the txn-produce programs write for key index i.
func txnValue(prefix, phase string, i int) string { return fmt.Sprintf("%s-%s-v%d", prefix, phase, i) }

// checkTxnPlacements asserts that the producer reported exactly the
// records of each phase (count per phase, record i of a phase in partition
// i % parts, each key once), that within a partition each phase's records
// are consecutive and follow the previous phase's after exactly one
// transaction marker, and returns the records as they must be consumed.
func checkTxnPlacements(t *testing.T, what, prefix string, got []txnPlacement, counts map[string]int, parts int32) map[string][]want {
	t.Helper()
	byPhase := map[string][]want{}
	seen := map[string]bool{}
	for _, pl := range got {
		if seen[pl.Key] {
			t.Errorf("%s: key %s reported twice", what, pl.Key)
			continue
		}
		seen[pl.Key] = true
		var i int
		if _, err := fmt.Sscanf(pl.Key, prefix+"-"+pl.Phase+"-k%d", &i); err != nil {
			t.Fatalf("%s: unexpected key %q in phase %q", what, pl.Key, pl.Phase)
		}
		if pl.Partition != int32(i)%parts {
			t.Errorf("%s: key %s in partition %d, want %d", what, pl.Key, pl.Partition, int32(i)%parts)
		}
		byPhase[pl.Phase] = append(byPhase[pl.Phase], want{
			Key: pl.Key, Value: txnValue(prefix, pl.Phase, i),
			Headers:   [][2]string{{"h-index", strconv.Itoa(i)}},
			Partition: pl.Partition, Offset: pl.Offset,
		})
	}
	for phase, n := range counts {
		if len(byPhase[phase]) != n {
			t.Fatalf("%s: %d delivery reports in phase %s, want %d", what, len(byPhase[phase]), phase, n)
		}
	}
	// next is, per partition, the offset the next phase must start at.
	next := map[int32]int64{}
	for _, phase := range []string{phaseCommit1, phaseAbort, phaseCommit2} {
		offs := map[int32][]int64{}
		for _, w := range byPhase[phase] {
			offs[w.Partition] = append(offs[w.Partition], w.Offset)
		}
		for p, os := range offs {
			slices.Sort(os)
			if start := next[p]; os[0] != start || os[len(os)-1] != start+int64(len(os))-1 {
				t.Errorf("%s: phase %s partition %d offsets %v, want %d consecutive from %d (after one marker)",
					what, phase, p, os, len(os), start)
			}
			next[p] = os[len(os)-1] + 2 // the commit or abort marker takes one offset
		}
	}
	return byPhase
}

// checkSequence asserts that got holds exactly the records of wants, in
// offset order per partition, with the producer's offsets, values and
// headers.
func checkSequence(t *testing.T, what string, got []rec, wants []want) {
	t.Helper()
	wantBy := map[int32][]want{}
	for _, w := range wants {
		wantBy[w.Partition] = append(wantBy[w.Partition], w)
	}
	gotBy := map[int32][]rec{}
	for _, r := range got {
		gotBy[r.Partition] = append(gotBy[r.Partition], r)
	}
	for p := range gotBy {
		if _, ok := wantBy[p]; !ok {
			t.Errorf("%s: %d records from partition %d, want none: %+v", what, len(gotBy[p]), p, gotBy[p])
		}
	}
	for p, ws := range wantBy {
		sort.Slice(ws, func(i, j int) bool { return ws[i].Offset < ws[j].Offset })
		gs := gotBy[p]
		if len(gs) != len(ws) {
			t.Errorf("%s: partition %d: consumed %d records, want %d", what, p, len(gs), len(ws))
		}
		for i := range min(len(gs), len(ws)) {
			g, w := gs[i], ws[i]
			if g.key() != w.Key || deref(g.Value) != any(w.Value) || g.Offset != w.Offset || !headersEqual(g.Headers, w.Headers) {
				t.Errorf("%s: partition %d record %d = key %s value %v offset %d headers %v, want key %s value %s offset %d headers %v",
					what, p, i, g.key(), deref(g.Value), g.Offset, g.Headers, w.Key, w.Value, w.Offset, w.Headers)
			}
		}
	}
}

// endOffsets returns the high watermarks and last stable offsets of topic.
func endOffsets(t *testing.T, addr, topic string) (hwm, lso map[int32]int64) {
	t.Helper()
	adm, _ := admin(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conv := func(l kadm.ListedOffsets, err error) map[int32]int64 {
		if err != nil {
			t.Fatalf("list offsets of %s: %v", topic, err)
		}
		if err := l.Error(); err != nil {
			t.Fatalf("list offsets of %s: %v", topic, err)
		}
		m := map[int32]int64{}
		l.Each(func(o kadm.ListedOffset) { m[o.Partition] = o.Offset })
		return m
	}
	return conv(adm.ListEndOffsets(ctx, topic)), conv(adm.ListCommittedOffsets(ctx, topic))
}

// checkEndOffsets asserts every partition's high watermark and last stable
// offset equal want: no transaction is left open.
func checkEndOffsets(t *testing.T, b *harness.Proc, topic string, want map[int32]int64) {
	t.Helper()
	hwm, lso := endOffsets(t, b.Kafka, topic)
	if fmt.Sprint(hwm) != fmt.Sprint(want) || fmt.Sprint(lso) != fmt.Sprint(want) {
		t.Errorf("%s: high watermarks %v, last stable offsets %v, want both %v", topic, hwm, lso, want)
	}
}

// checkTxnState asserts that the broker describes and lists transactional
// id as ended in state (CompleteCommit or CompleteAbort), with no partition
// still in a transaction, and returns its producer epoch.
func checkTxnState(t *testing.T, addr, id, state string) int16 {
	t.Helper()
	adm, _ := admin(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	described, err := adm.DescribeTransactions(ctx, id)
	if err != nil {
		t.Fatalf("describe transaction %s: %v", id, err)
	}
	d, ok := described[id]
	if !ok || d.Err != nil || d.State != state || d.ProducerID < 0 || len(d.Topics) != 0 {
		t.Errorf("DescribeTransactions(%s) = %+v, want state %s, a producer id and no partitions", id, d, state)
	}
	listed, err := adm.ListTransactions(ctx, nil, nil)
	if err != nil {
		t.Fatalf("list transactions: %v", err)
	}
	if l, ok := listed[id]; !ok || l.State != state || l.ProducerID != d.ProducerID {
		t.Errorf("ListTransactions has %s as %+v, want state %s and producer id %d", id, l, state, d.ProducerID)
	}
	return d.ProducerEpoch
}

// pyRead reads topic to its end with the Python program at isolation.
func pyRead(t *testing.T, b *harness.Proc, topic string, parts int32, isolation string) []rec {
	t.Helper()
	return parseJSONLines[rec](t, run(t, b, "", python, "python/client.py", "read", "--bootstrap", b.Kafka,
		"--topic", topic, "--partitions", strconv.Itoa(int(parts)), "--isolation", isolation))
}

// TestPythonTransactions runs confluent-kafka's transactional producer
// (commit, abort, commit) and reads the topic back with read_committed and
// read_uncommitted consumers.
func TestPythonTransactions(t *testing.T) {
	requirePython(t)
	b := startBroker(t)
	const topic, prefix, parts = "py-txn", "py", 3
	counts := map[string]int{phaseCommit1: 12, phaseAbort: 9, phaseCommit2: 6}
	createTopic(t, b.Kafka, topic, parts)

	out := run(t, b, "", python, "python/client.py", "txn-produce", "--bootstrap", b.Kafka,
		"--topic", topic, "--txn-id", "py-txn-producer", "--prefix", prefix, "--partitions", strconv.Itoa(parts),
		"--commit", strconv.Itoa(counts[phaseCommit1]), "--abort", strconv.Itoa(counts[phaseAbort]),
		"--commit-after", strconv.Itoa(counts[phaseCommit2]))
	byPhase := checkTxnPlacements(t, "python txn-produce", prefix, parseJSONLines[txnPlacement](t, out), counts, parts)
	// Each partition holds 4+3+2 records and three markers.
	checkEndOffsets(t, b, topic, map[int32]int64{0: 12, 1: 12, 2: 12})
	checkTxnState(t, b.Kafka, "py-txn-producer", "CompleteCommit")

	committed := append(slices.Clone(byPhase[phaseCommit1]), byPhase[phaseCommit2]...)
	all := append(slices.Clone(committed), byPhase[phaseAbort]...)
	checkSequence(t, "python read_committed", pyRead(t, b, topic, parts, "read_committed"), committed)
	checkSequence(t, "python read_uncommitted", pyRead(t, b, topic, parts, "read_uncommitted"), all)
}

// produceInput writes n records to topic with franz-go, record i with key
// "<prefix>-k<i>" and value "<prefix>-v<i>" to partition i % parts, and
// returns them as they must be consumed.
func produceInput(t *testing.T, addr, topic, prefix string, n int, parts int32) []want {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []want
	for i := range n {
		r := &kgo.Record{Topic: topic, Partition: int32(i) % parts,
			Key:     fmt.Appendf(nil, "%s-k%d", prefix, i),
			Value:   fmt.Appendf(nil, "%s-v%d", prefix, i),
			Headers: []kgo.RecordHeader{{Key: "h-index", Value: []byte(strconv.Itoa(i))}}}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce input %d: %v", i, err)
		}
		out = append(out, want{Key: string(r.Key), Value: string(r.Value),
			Headers: [][2]string{{"h-index", strconv.Itoa(i)}}, Partition: r.Partition, Offset: r.Offset})
	}
	return out
}

// pipelineStep is one transaction of a consume-transform-produce program.
type pipelineStep struct {
	Step    string `json:"step"`
	Records int    `json:"records"`
}

// checkPipelineOutput asserts the output topic holds, for read_committed
// consumers, exactly every input record once, transformed, in input order
// per partition; and that the group committed exactly the input's end
// offsets.
// checkPipelineSteps checks a pipeline's transactions: first one aborted,
// then commits of n records in all. It returns the aborted records.
func checkPipelineSteps(t *testing.T, steps []pipelineStep, n int) int {
	t.Helper()
	if len(steps) < 2 || steps[0].Step != "abort" || steps[0].Records == 0 {
		t.Fatalf("pipeline steps %+v: want an aborted transaction first, then commits", steps)
	}
	committed := 0
	for _, s := range steps[1:] {
		if s.Step != "commit" {
			t.Fatalf("pipeline steps %+v: only the first transaction aborts", steps)
		}
		committed += s.Records
	}
	if committed != n {
		t.Fatalf("pipeline committed %d records, want %d: %+v", committed, n, steps)
	}
	return steps[0].Records
}

func checkPipelineOutput(t *testing.T, what string, b *harness.Proc, got []rec, input []want, inTopic, group string) {
	t.Helper()
	gotBy := map[int32][]rec{}
	for _, r := range got {
		gotBy[r.Partition] = append(gotBy[r.Partition], r)
	}
	inBy := map[int32][]want{}
	for _, w := range input {
		inBy[w.Partition] = append(inBy[w.Partition], w)
	}
	n := 0
	for p, rs := range gotBy {
		n += len(rs)
		ws := inBy[p]
		for i, r := range rs {
			if i >= len(ws) {
				t.Errorf("%s: output partition %d has extra record %s=%v at %d", what, p, r.key(), deref(r.Value), r.Offset)
				continue
			}
			w := ws[i]
			if r.key() != w.Key || deref(r.Value) != any("out-"+w.Value) || !headersEqual(r.Headers, w.Headers) {
				t.Errorf("%s: output partition %d record %d = %s=%v %v, want %s=out-%s %v",
					what, p, i, r.key(), deref(r.Value), r.Headers, w.Key, w.Value, w.Headers)
			}
			if i > 0 && r.Offset <= rs[i-1].Offset {
				t.Errorf("%s: output partition %d offsets out of order: %d after %d", what, p, r.Offset, rs[i-1].Offset)
			}
		}
	}
	if n != len(input) {
		t.Errorf("%s: read_committed output has %d records, want %d (each input record exactly once)", what, n, len(input))
	}

	adm, _ := admin(t, b.Kafka)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fetched, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatalf("%s: fetch offsets of %s: %v", what, group, err)
	}
	if err := fetched.Error(); err != nil {
		t.Fatalf("%s: fetch offsets of %s: %v", what, group, err)
	}
	hwm, _ := endOffsets(t, b.Kafka, inTopic)
	committed := map[int32]int64{}
	fetched.Each(func(o kadm.OffsetResponse) {
		if o.Topic != inTopic {
			t.Errorf("%s: group %s committed an offset for topic %s", what, group, o.Topic)
			return
		}
		committed[o.Partition] = o.At
	})
	if fmt.Sprint(committed) != fmt.Sprint(hwm) {
		t.Errorf("%s: group %s committed %v, want the input's end offsets %v", what, group, committed, hwm)
	}
}

// TestPythonTransactionalPipeline runs a consume-transform-produce loop
// with confluent-kafka's send_offsets_to_transaction; its first
// transaction is aborted and replayed.
func TestPythonTransactionalPipeline(t *testing.T) {
	requirePython(t)
	b := startBroker(t)
	const in, outTopic, group, parts, n = "py-pipe-in", "py-pipe-out", "py-pipe-group", 3, 30
	createTopic(t, b.Kafka, in, parts)
	createTopic(t, b.Kafka, outTopic, parts)
	input := produceInput(t, b.Kafka, in, "pipe", n, parts)

	out := run(t, b, "", python, "python/client.py", "txn-pipeline", "--bootstrap", b.Kafka,
		"--input", in, "--output", outTopic, "--group", group, "--txn-id", "py-pipe-txn", "--count", strconv.Itoa(n))
	aborted := checkPipelineSteps(t, parseJSONLines[pipelineStep](t, out), n)

	checkPipelineOutput(t, "python pipeline", b, pyRead(t, b, outTopic, parts, "read_committed"), input, in, group)
	if got := pyRead(t, b, outTopic, parts, "read_uncommitted"); len(got) != n+aborted {
		t.Errorf("read_uncommitted output has %d records, want %d committed + %d aborted", len(got), n, aborted)
	}
}

// fenceStep is one line of the txn-fence programs' output.
type fenceStep struct {
	Step     string   `json:"step"`
	Error    *string  `json:"error"`
	Fatal    bool     `json:"fatal"`
	Delivery []string `json:"delivery"`
}

// TestPythonTransactionFencing runs two confluent-kafka producers with one
// transactional id: the second's init_transactions fences the first, whose
// later produce and commit fail, and whose open transaction is aborted.
func TestPythonTransactionFencing(t *testing.T) {
	requirePython(t)
	b := startBroker(t)
	const topic = "py-fence"
	createTopic(t, b.Kafka, topic, 1)
	out := run(t, b, "", python, "python/client.py", "txn-fence", "--bootstrap", b.Kafka,
		"--topic", topic, "--txn-id", "py-fence-txn")
	steps := parseJSONLines[fenceStep](t, out)
	var names []string
	by := map[string]fenceStep{}
	for _, s := range steps {
		names = append(names, s.Step)
		by[s.Step] = s
	}
	if want := []string{"a-produce", "b-init", "a-produce-after-fence", "a-commit", "b-commit"}; !slices.Equal(names, want) {
		t.Fatalf("fence steps %v, want %v\n%s", names, want, out)
	}
	// librdkafka reports the fence either through the record's delivery
	// report or, once it has become fatal, from flush.
	if s := by["a-produce-after-fence"]; !(s.Error != nil && *s.Error == "_FENCED" && s.Fatal) &&
		!(len(s.Delivery) == 1 && s.Delivery[0] != "") {
		t.Errorf("the fenced producer's record was delivered: delivery %v, flush error %v", s.Delivery, deref(s.Error))
	}
	if c := by["a-commit"]; c.Error == nil || *c.Error != "_FENCED" || !c.Fatal {
		t.Errorf("the fenced producer's commit: error %v fatal %v, want fatal _FENCED", deref(c.Error), c.Fatal)
	}

	// The second producer's init_transactions bumped the epoch the first
	// one had.
	if epoch := checkTxnState(t, b.Kafka, "py-fence-txn", "CompleteCommit"); epoch < 1 {
		t.Errorf("producer epoch after fencing = %d, want at least 1", epoch)
	}
	// a-0 is in the log, aborted by the fence; a-1 must never have been
	// written. Each record's value is its key.
	for _, c := range []struct {
		isolation string
		want      []string
	}{
		{"read_committed", []string{"b-0"}},
		{"read_uncommitted", []string{"a-0", "b-0"}},
	} {
		var got []string
		for _, r := range pyRead(t, b, topic, 1, c.isolation) {
			got = append(got, fmt.Sprintf("%s=%v", r.key(), deref(r.Value)))
		}
		var want []string
		for _, k := range c.want {
			want = append(want, k+"="+k)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s after fencing = %v, want %v", c.isolation, got, want)
		}
	}
}

// jsRead reads max records of topic with a kafkajs group consumer at
// isolation.
func jsRead(t *testing.T, b *harness.Proc, topic, group string, max int, isolation string) []rec {
	t.Helper()
	return parseJSONLines[rec](t, run(t, b, "", "node", "js/client.js", "read", b.Kafka, topic, group,
		strconv.Itoa(max), "20000", isolation))
}

// TestKafkaJSTransactions runs kafkajs' transactional producer (commit,
// abort, commit) and reads the topic back with kafkajs consumers, by
// default read_committed, and read_uncommitted. The last committed
// transaction comes after the aborted one, so a consumer that let an
// aborted record through would count it instead of a committed one.
func TestKafkaJSTransactions(t *testing.T) {
	requireKafkaJS(t)
	b := startBroker(t)
	const topic, prefix, parts = "js-txn", "js", 2
	counts := map[string]int{phaseCommit1: 8, phaseAbort: 6, phaseCommit2: 4}
	createTopic(t, b.Kafka, topic, parts)

	out := run(t, b, "", "node", "js/client.js", "txn-produce", b.Kafka, topic, "js-txn-producer", prefix,
		strconv.Itoa(parts), strconv.Itoa(counts[phaseCommit1]), strconv.Itoa(counts[phaseAbort]), strconv.Itoa(counts[phaseCommit2]))
	byPhase := checkTxnPlacements(t, "kafkajs txn-produce", prefix, parseJSONLines[txnPlacement](t, out), counts, parts)
	// Each partition holds 4+3+2 records and three markers.
	checkEndOffsets(t, b, topic, map[int32]int64{0: 12, 1: 12})

	committed := append(slices.Clone(byPhase[phaseCommit1]), byPhase[phaseCommit2]...)
	all := append(slices.Clone(committed), byPhase[phaseAbort]...)
	checkSequence(t, "kafkajs read_committed", jsRead(t, b, topic, "js-txn-rc", len(committed), "read_committed"), committed)
	checkSequence(t, "kafkajs read_uncommitted", jsRead(t, b, topic, "js-txn-ru", len(all), "read_uncommitted"), all)
}

// TestKafkaJSTransactionalPipeline runs a consume-transform-produce loop
// with kafkajs' txn.sendOffsets; its first transaction is aborted and the
// pipeline restarted.
func TestKafkaJSTransactionalPipeline(t *testing.T) {
	requireKafkaJS(t)
	b := startBroker(t)
	const in, outTopic, group, parts, n = "js-pipe-in", "js-pipe-out", "js-pipe-group", 2, 20
	createTopic(t, b.Kafka, in, parts)
	createTopic(t, b.Kafka, outTopic, parts)
	input := produceInput(t, b.Kafka, in, "pipe", n, parts)

	out := run(t, b, "", "node", "js/client.js", "txn-pipeline", b.Kafka, in, outTopic, group, "js-pipe-txn",
		strconv.Itoa(n), "30000")
	aborted := checkPipelineSteps(t, parseJSONLines[pipelineStep](t, out), n)
	checkPipelineOutput(t, "kafkajs pipeline", b, jsRead(t, b, outTopic, "js-pipe-rc", n, "read_committed"), input, in, group)
	if got := jsRead(t, b, outTopic, "js-pipe-ru", n+aborted, "read_uncommitted"); len(got) != n+aborted {
		t.Errorf("read_uncommitted output has %d records, want %d committed + %d aborted", len(got), n, aborted)
	}
}

// TestKcatReadCommitted writes committed, aborted and still-open
// transactions with franz-go and reads them with kcat (librdkafka) as a
// read_committed consumer: it must see only committed records and, while a
// transaction is open, stop at the last stable offset.
func TestKcatReadCommitted(t *testing.T) {
	requireKcat(t)
	b := startBroker(t)
	const topic, prefix, parts = "kcat-txn", "kc", 2
	createTopic(t, b.Kafka, topic, parts)
	prod, err := kgo.NewClient(kgo.SeedBrokers(b.Kafka), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.TransactionalID("kcat-txn-producer"),
		kgo.TransactionTimeout(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// txn produces n records of phase in one transaction, leaving it open.
	txn := func(phase string, n int) []want {
		t.Helper()
		if err := prod.BeginTransaction(); err != nil {
			t.Fatalf("begin %s: %v", phase, err)
		}
		var out []want
		for i := range n {
			r := &kgo.Record{Partition: int32(i) % parts,
				Key: fmt.Appendf(nil, "%s-%s-k%d", prefix, phase, i), Value: []byte(txnValue(prefix, phase, i))}
			if err := prod.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatalf("produce %s %d: %v", phase, i, err)
			}
			out = append(out, want{Key: string(r.Key), Value: string(r.Value), Partition: r.Partition, Offset: r.Offset})
		}
		return out
	}
	end := func(phase string, commit kgo.TransactionEndTry) {
		t.Helper()
		if err := prod.EndTransaction(ctx, commit); err != nil {
			t.Fatalf("end %s: %v", phase, err)
		}
	}
	c1 := txn(phaseCommit1, 6)
	end(phaseCommit1, kgo.TryCommit)
	ab := txn(phaseAbort, 4)
	end(phaseAbort, kgo.TryAbort)
	c2 := txn(phaseCommit2, 4)
	end(phaseCommit2, kgo.TryCommit)
	open := txn("open", 4)

	kcat := func(isolation string) []rec {
		return parseKcat(t, run(t, b, "", "kcat", "-b", b.Kafka, "-C", "-t", topic, "-o", "beginning", "-e", "-q",
			"-X", "isolation.level="+isolation, "-f", kcatFormat))
	}
	committed := append(slices.Clone(c1), c2...)
	// While "open" is open, -e ends at the last stable offset.
	checkSequence(t, "kcat read_committed, transaction open", kcat("read_committed"), committed)
	all := append(append(slices.Clone(committed), ab...), open...)
	checkSequence(t, "kcat read_uncommitted, transaction open", kcat("read_uncommitted"), all)

	end("open", kgo.TryCommit)
	checkSequence(t, "kcat read_committed", kcat("read_committed"), append(committed, open...))
	// Per partition: 3+2+2+2 records and four markers.
	checkEndOffsets(t, b, topic, map[int32]int64{0: 13, 1: 13})
}
