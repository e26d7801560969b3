package stream

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
)

// The sequencer is a deterministic state machine (state.apply), so it is
// tested with scripts: each file in testdata/sequencer is a list of log
// entries written as commands, and after each one the expected apply result
// or a canonical dump of the state. Rewrite expectations with
//
//	go test ./internal/stream -run TestSequencerScripts -rewrite
//
// and review the diff: every changed line is a change in what brokers agree on.
//
// Commands (every entry command accepts time=MS, which becomes the current
// broker time carried by this and later entries):
//
//	create-topic name=t id=1 partitions=2        input: config lines k=v
//	delete-topic name=t
//	create-partitions name=t partitions=4
//	alter-configs name=t [replace]               input: k=v sets, -k deletes
//	init-producer [pid=N epoch=E]
//	bump-producer pid=N epoch=E times=K          K init-producer entries, prints the last
//	intake obj=o1 [objtime=MS]                   input: t/0 count=3 [pid= epoch= seq=] [maxts=] [len=]
//	trim t/0 offset=N
//	archive t/0 first=F last=L count=C seg=s1 digest=current|wrong   input: chunks B-L [len=] [maxts=]
//	compact t/0 ... (as archive)
//	collect objs=(a,b)
//	state                                        full canonical dump
//	partition t/0                                one partition's dump
//	init-txn id=x timeout=MS [pid=N epoch=E]     InitProducerId with a transactional id
//	add-partitions id=x pid=N epoch=E parts=(t/0,t/1)
//	add-offsets id=x pid=N epoch=E group=g
//	txn-offsets id=x pid=N epoch=E group=g [implicit]   input: t/0 offset=N
//	end-txn id=x pid=N epoch=E commit|abort [bump] [timeout]
//	txn-published group=g rev=N
//	txns                                         the transaction state
//
// Intake batch lines also take txn (the transactional attribute), implicit
// (Transactions V2's implicit add) and companion=N (a dead-letter batch that
// goes with the entry's batch N).
//
// Every entry's revision is the previous one plus one, as with etcd puts.
// After every entry the structural invariants (checkInvariants) must hold.
func TestSequencerScripts(t *testing.T) {
	datadriven.Walk(t, filepath.Join("testdata", "sequencer"), func(t *testing.T, path string) {
		h := newSeqHarness()
		datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
			return h.run(t, td)
		})
	})
}

// seqHarness drives one state through scripted entries.
type seqHarness struct {
	st     *state
	rev    int64
	now    int64
	broker int32              // the broker scripted entries come from (broker=)
	ids    map[string]TopicID // topic name -> id, kept after deletion
}

func newSeqHarness() *seqHarness {
	return &seqHarness{st: newState(), ids: map[string]TopicID{}}
}

// topicID returns the id a script name stands for: the one it was created
// with, or a fixed id no topic has.
func (h *seqHarness) topicID(name string) TopicID {
	if id, ok := h.ids[name]; ok {
		return id
	}
	var id TopicID
	f := fnv.New64a()
	f.Write([]byte(name))
	copy(id[:], f.Sum(nil))
	id[15] = 0xee
	return id
}

func scriptTopicID(n int) TopicID {
	var id TopicID
	id[14], id[15] = byte(n>>8), byte(n)
	return id
}

// apply applies one entry at the next revision and checks the invariants.
func (h *seqHarness) apply(t testing.TB, e *entry) applyResult {
	t.Helper()
	h.rev++
	if e.Time == 0 {
		e.Time = h.now
	}
	if e.Broker == 0 {
		e.Broker = h.broker
	}
	res := h.st.apply(h.rev, e)
	if err := checkInvariants(h.st); err != nil {
		t.Fatalf("after rev %d: %v", h.rev, err)
	}
	return res
}

func (h *seqHarness) run(t *testing.T, td *datadriven.TestData) string {
	t.Helper()
	if td.HasArg("time") {
		td.ScanArgs(t, "time", &h.now)
	}
	if td.HasArg("broker") {
		var b int
		td.ScanArgs(t, "broker", &b)
		h.broker = int32(b)
	}
	switch td.Cmd {
	case "tick":
		h.apply(t, &entry{Kind: kindTick})
		return fmt.Sprintf("clock=%d\n", h.st.Clock)
	case "create-topic":
		var name string
		var id, parts int
		td.ScanArgs(t, "name", &name)
		td.ScanArgs(t, "id", &id)
		td.ScanArgs(t, "partitions", &parts)
		e := &entry{Kind: kindCreateTopic, Name: name, Partitions: int32(parts), Configs: parseConfigLines(t, td.Input, nil)}
		if id != 0 {
			e.Topic = scriptTopicID(id)
		}
		res := h.apply(t, e)
		if res.Err == nil {
			h.ids[name] = e.Topic
		}
		return errOrOK(res.Err)
	case "delete-topic":
		res := h.apply(t, &entry{Kind: kindDeleteTopic, Topic: h.topicID(argString(t, td, "name"))})
		return errOrOK(res.Err)
	case "create-partitions":
		var parts int
		td.ScanArgs(t, "partitions", &parts)
		res := h.apply(t, &entry{Kind: kindCreatePartitions, Topic: h.topicID(argString(t, td, "name")), Partitions: int32(parts)})
		return errOrOK(res.Err)
	case "alter-configs":
		var dels []string
		cfg := parseConfigLines(t, td.Input, &dels)
		res := h.apply(t, &entry{Kind: kindAlterConfigs, Topic: h.topicID(argString(t, td, "name")), Configs: cfg, Deletes: dels, Replace: td.HasArg("replace")})
		return errOrOK(res.Err)
	case "init-producer":
		e := &entry{Kind: kindInitProducer, ProducerID: -1}
		if td.HasArg("pid") {
			var epoch int
			td.ScanArgs(t, "pid", &e.ProducerID)
			td.ScanArgs(t, "epoch", &epoch)
			e.Epoch = int16(epoch)
		}
		return producerResult(h.apply(t, e))
	case "bump-producer":
		var pid int64
		var epoch, times int
		td.ScanArgs(t, "pid", &pid)
		td.ScanArgs(t, "epoch", &epoch)
		td.ScanArgs(t, "times", &times)
		var res applyResult
		for i := 0; i < times; i++ {
			res = h.apply(t, &entry{Kind: kindInitProducer, ProducerID: pid, Epoch: int16(epoch)})
			if res.Err != nil {
				return fmt.Sprintf("bump %d: %s", i+1, producerResult(res))
			}
			pid, epoch = res.ProducerID, int(res.Epoch)
		}
		return producerResult(res)
	case "intake":
		return h.intake(t, td)
	case "trim":
		id, p := h.partArg(t, td)
		var off int64
		td.ScanArgs(t, "offset", &off)
		res := h.apply(t, &entry{Kind: kindTrim, Topic: id, Partition: p, Offset: off})
		if res.Err != nil {
			return "error: " + res.Err.Error() + "\n"
		}
		return fmt.Sprintf("logstart=%d\n", res.Offset)
	case "archive", "compact":
		return h.replace(t, td)
	case "collect":
		var objs []string
		if arg, ok := td.Arg("objs"); ok {
			objs = arg.Vals
		}
		res := h.apply(t, &entry{Kind: kindCollect, Objects: objs})
		return errOrOK(res.Err)
	case "init-txn":
		e := &entry{Kind: kindInitProducer, TxnID: argString(t, td, "id"), ProducerID: -1, Epoch: -1}
		td.ScanArgs(t, "timeout", &e.TimeoutMs)
		if td.HasArg("pid") {
			td.ScanArgs(t, "pid", &e.ProducerID)
			td.ScanArgs(t, "epoch", &e.Epoch)
		}
		return producerResult(h.apply(t, e))
	case "add-partitions":
		e := h.txnEntry(t, td, kindAddPartitions)
		if arg, ok := td.Arg("parts"); ok {
			for _, v := range arg.Vals {
				id, p := h.parsePart(t, v)
				e.TxnParts = append(e.TxnParts, TxnPartition{Topic: id, Partition: p})
			}
		}
		return errOrOK(h.apply(t, e).Err)
	case "add-offsets":
		e := h.txnEntry(t, td, kindAddOffsets)
		e.Group = argString(t, td, "group")
		return errOrOK(h.apply(t, e).Err)
	case "txn-offsets":
		e := h.txnEntry(t, td, kindTxnOffsets)
		e.Group = argString(t, td, "group")
		e.Implicit = td.HasArg("implicit")
		for _, line := range strings.Split(td.Input, "\n") {
			fields := strings.Fields(line)
			if len(fields) == 0 {
				continue
			}
			name, ps, _ := strings.Cut(fields[0], "/")
			p, _ := strconv.Atoi(ps)
			m := kvFields(t, fields[1:])
			e.TxnOffsets = append(e.TxnOffsets, TxnOffset{Topic: name, Partition: int32(p), Offset: intField(t, m, "offset", 0)})
			noMoreFields(t, m)
		}
		return errOrOK(h.apply(t, e).Err)
	case "end-txn":
		e := h.txnEntry(t, td, kindEndTxn)
		e.Commit = td.HasArg("commit")
		e.Bump = td.HasArg("bump")
		e.Timeout = td.HasArg("timeout")
		return producerResult(h.apply(t, e))
	case "txn-published":
		e := &entry{Kind: kindTxnPublished, Group: argString(t, td, "group")}
		td.ScanArgs(t, "rev", &e.Offset)
		return errOrOK(h.apply(t, e).Err)
	case "txns":
		var b strings.Builder
		dumpTxns(&b, h.st, h.ids)
		return b.String()
	case "state":
		return dumpState(h.st, h.ids)
	case "partition":
		id, p := h.partArg(t, td)
		pt, err := h.st.partition(id, p)
		if err != nil {
			return "error: " + err.Error() + "\n"
		}
		var b strings.Builder
		dumpPart(&b, "", pt)
		return b.String()
	}
	td.Fatalf(t, "unknown command %q", td.Cmd)
	return ""
}

// txnEntry starts a transaction entry from id=, pid= and epoch=.
func (h *seqHarness) txnEntry(t *testing.T, td *datadriven.TestData, kind entryKind) *entry {
	t.Helper()
	e := &entry{Kind: kind, TxnID: argString(t, td, "id")}
	td.ScanArgs(t, "pid", &e.ProducerID)
	td.ScanArgs(t, "epoch", &e.Epoch)
	return e
}

func argString(t *testing.T, td *datadriven.TestData, key string) string {
	t.Helper()
	var s string
	td.ScanArgs(t, key, &s)
	return s
}

// partArg reads the first positional argument, "topic/partition".
func (h *seqHarness) partArg(t *testing.T, td *datadriven.TestData) (TopicID, int32) {
	t.Helper()
	if len(td.CmdArgs) == 0 || len(td.CmdArgs[0].Vals) != 0 {
		td.Fatalf(t, "%s needs topic/partition first", td.Cmd)
	}
	return h.parsePart(t, td.CmdArgs[0].Key)
}

func (h *seqHarness) parsePart(t testing.TB, s string) (TopicID, int32) {
	t.Helper()
	name, ps, ok := strings.Cut(s, "/")
	if !ok {
		t.Fatalf("%q is not topic/partition", s)
	}
	p, err := strconv.ParseInt(ps, 10, 32)
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return h.topicID(name), int32(p)
}

// kvFields parses "k=v k=v" into a map.
func kvFields(t testing.TB, fields []string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, f := range fields {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			t.Fatalf("field %q is not key=value", f)
		}
		m[k] = v
	}
	return m
}

func intField(t testing.TB, m map[string]string, key string, def int64) int64 {
	t.Helper()
	v, ok := m[key]
	if !ok {
		return def
	}
	delete(m, key)
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		t.Fatalf("%s=%q: %v", key, v, err)
	}
	return n
}

func noMoreFields(t testing.TB, m map[string]string) {
	t.Helper()
	for k := range m {
		t.Fatalf("unknown field %q", k)
	}
}

func parseConfigLines(t *testing.T, input string, dels *[]string) map[string]string {
	t.Helper()
	cfg := map[string]string{}
	for _, line := range strings.Split(input, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, "-") && dels != nil {
			*dels = append(*dels, line[1:])
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("config line %q is not key=value", line)
		}
		cfg[k] = v
	}
	return cfg
}

func (h *seqHarness) intake(t *testing.T, td *datadriven.TestData) string {
	t.Helper()
	e := &entry{Kind: kindIntake, Object: argString(t, td, "obj"), ObjectTime: h.now}
	if td.HasArg("objtime") {
		td.ScanArgs(t, "objtime", &e.ObjectTime)
	}
	var labels []string
	var pos uint32
	for _, line := range strings.Split(td.Input, "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		id, p := h.parsePart(t, fields[0])
		var attrs int16
		var rest []string
		for _, f := range fields[1:] {
			switch f {
			case "txn":
				attrs |= attrTransactional
			case "implicit":
				attrs |= attrImplicitAdd
			default:
				rest = append(rest, f)
			}
		}
		m := kvFields(t, rest)
		d := batchDesc{
			Attrs:      attrs,
			Topic:      id,
			Partition:  p,
			Pos:        pos,
			Len:        uint32(intField(t, m, "len", 100)),
			Count:      int32(intField(t, m, "count", 1)),
			MaxTS:      intField(t, m, "maxts", h.now),
			ProducerID: intField(t, m, "pid", -1),
			Epoch:      int16(intField(t, m, "epoch", -1)),
			BaseSeq:    int32(intField(t, m, "seq", -1)),
		}
		if c := intField(t, m, "companion", -1); c >= 0 {
			d.Attrs |= attrCompanion
			d.BaseSeq = int32(c)
		}
		noMoreFields(t, m)
		pos += d.Len
		e.Batches = append(e.Batches, d)
		labels = append(labels, fields[0])
	}
	res := h.apply(t, e)
	var b strings.Builder
	for i, r := range res.Batches {
		if r.Err != nil {
			fmt.Fprintf(&b, "%s: error: %v\n", labels[i], r.Err)
			continue
		}
		fmt.Fprintf(&b, "%s: base=%d logstart=%d\n", labels[i], r.Base, r.LogStart)
	}
	if len(res.Batches) == 0 {
		b.WriteString("no batches\n")
	}
	return b.String()
}

// replace builds an archive or compaction entry. digest=current fingerprints
// the named extents as the partition holds them now; digest=wrong does not.
func (h *seqHarness) replace(t *testing.T, td *datadriven.TestData) string {
	t.Helper()
	id, p := h.partArg(t, td)
	kind := kindArchive
	if td.Cmd == "compact" {
		kind = kindCompact
	}
	e := &entry{Kind: kind, Topic: id, Partition: p}
	td.ScanArgs(t, "first", &e.ReplacedFirst)
	td.ScanArgs(t, "last", &e.ReplacedLast)
	td.ScanArgs(t, "count", &e.ReplacedCount)
	td.ScanArgs(t, "seg", &e.Segment)
	switch d := argString(t, td, "digest"); d {
	case "current":
		if pt, err := h.st.partition(id, p); err == nil {
			i := sort.Search(len(pt.Extents), func(i int) bool { return pt.Extents[i].Base >= e.ReplacedFirst })
			j := min(i+e.ReplacedCount, len(pt.Extents))
			e.ReplacedDigest = extentsDigest(pt.Extents[i:j])
		}
	case "wrong":
		e.ReplacedDigest = 12345
	default:
		td.Fatalf(t, "digest=%q: want current or wrong", d)
	}
	var pos int64
	for _, line := range strings.Split(td.Input, "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		bs, ls, ok := strings.Cut(fields[0], "-")
		base, err1 := strconv.ParseInt(bs, 10, 64)
		last, err2 := strconv.ParseInt(ls, 10, 64)
		if !ok || err1 != nil || err2 != nil {
			td.Fatalf(t, "chunk %q is not base-last", fields[0])
		}
		m := kvFields(t, fields[1:])
		c := chunk{Base: base, Last: last, Pos: pos, Len: intField(t, m, "len", 100), MaxTS: intField(t, m, "maxts", h.now)}
		noMoreFields(t, m)
		pos += c.Len
		e.Chunks = append(e.Chunks, c)
	}
	return errOrOK(h.apply(t, e).Err)
}

func errOrOK(err error) string {
	if err != nil {
		return "error: " + err.Error() + "\n"
	}
	return "ok\n"
}

func producerResult(res applyResult) string {
	if res.Err != nil {
		return "error: " + res.Err.Error() + "\n"
	}
	return fmt.Sprintf("pid=%d epoch=%d\n", res.ProducerID, res.Epoch)
}

// dumpState renders a state canonically: everything sorted, one fact per
// line, so two states are equal exactly when their dumps are.
func dumpState(s *state, names map[string]TopicID) string {
	var b strings.Builder
	fmt.Fprintf(&b, "rev=%d clock=%d entries=%d last-expiry=%d\n", s.Rev, s.Clock, s.Entries, s.LastExpiry)
	brokers := make([]int32, 0, len(s.BrokerClocks))
	for id := range s.BrokerClocks {
		brokers = append(brokers, id)
	}
	slices.Sort(brokers)
	for _, id := range brokers {
		fmt.Fprintf(&b, "broker %d clock-offset=%d at=%d\n", id, s.BrokerClocks[id].Off, s.BrokerClocks[id].At)
	}
	tnames := make([]string, 0, len(s.ByName))
	for n := range s.ByName {
		tnames = append(tnames, n)
	}
	sort.Strings(tnames)
	for _, n := range tnames {
		t := s.Topics[s.ByName[n]]
		fmt.Fprintf(&b, "topic %s id=%x created=%d partitions=%d\n", n, t.ID[:], t.CreatedRev, len(t.Parts))
		keys := make([]string, 0, len(t.Configs))
		for k := range t.Configs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "  config %s=%s\n", k, t.Configs[k])
		}
		for i, p := range t.Parts {
			fmt.Fprintf(&b, "  %s/%d:\n", n, i)
			dumpPart(&b, "    ", p)
		}
	}
	if len(s.Topics) != len(s.ByName) {
		fmt.Fprintf(&b, "BROKEN: %d topics, %d names\n", len(s.Topics), len(s.ByName))
	}
	pids := sortedKeys(s.Producers)
	b.WriteString("producers:")
	for _, pid := range pids {
		fmt.Fprintf(&b, " %d@%d", pid, s.Producers[pid])
	}
	b.WriteString("\nrefs:")
	objs := make([]string, 0, len(s.ObjRefs))
	for o := range s.ObjRefs {
		objs = append(objs, o)
	}
	sort.Strings(objs)
	for _, o := range objs {
		fmt.Fprintf(&b, " %s=%d", o, s.ObjRefs[o])
	}
	// The garbage list is in the order objects became garbage; that order
	// is part of the state.
	b.WriteString("\ngarbage:")
	for _, g := range s.Garbage {
		fmt.Fprintf(&b, " %s(rev=%d,clock=%d)", g.Obj, g.Rev, g.Clock)
	}
	b.WriteString("\n")
	dumpTxns(&b, s, names)
	return b.String()
}

// dumpTxns renders the transactional ids and the committed offsets awaiting
// publication.
func dumpTxns(b *strings.Builder, s *state, names map[string]TopicID) {
	name := func(id TopicID) string {
		for n, v := range names {
			if v == id {
				return n
			}
		}
		return fmt.Sprintf("%x", id[:])
	}
	ids := make([]string, 0, len(s.Txns))
	for id := range s.Txns {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		t := s.Txns[id]
		fmt.Fprintf(b, "txn %s pid=%d epoch=%d prev=%d/%d timeout=%d %s started=%d last-seen=%d", id, t.ProducerID, t.Epoch, t.PrevProducerID, t.PrevEpoch, t.TimeoutMs, t.Phase, t.Started, t.LastSeen)
		if s.TxnByPID[t.ProducerID] != id {
			b.WriteString(" BROKEN:pid-index")
		}
		b.WriteString("\n")
		for _, tp := range t.Parts {
			fmt.Fprintf(b, "  part %s/%d\n", name(tp.Topic), tp.Partition)
		}
		for _, g := range t.Groups {
			fmt.Fprintf(b, "  group %s", g)
			for _, o := range t.Offsets[g] {
				fmt.Fprintf(b, " %s/%d@%d", o.Topic, o.Partition, o.Offset)
			}
			b.WriteString("\n")
		}
	}
	if len(s.TxnByPID) != len(s.Txns) {
		fmt.Fprintf(b, "BROKEN: %d transactional ids, %d producer ids\n", len(s.Txns), len(s.TxnByPID))
	}
	for _, c := range s.TxnOffsets {
		fmt.Fprintf(b, "committed-offsets group=%s rev=%d:", c.Group, c.Rev)
		for _, o := range c.Offsets {
			fmt.Fprintf(b, " %s/%d@%d", o.Topic, o.Partition, o.Offset)
		}
		b.WriteString("\n")
	}
}

func sortedKeys[V any](m map[int64]V) []int64 {
	ks := make([]int64, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool { return ks[i] < ks[j] })
	return ks
}

func dumpPart(b *strings.Builder, indent string, p *partState) {
	fmt.Fprintf(b, "%slogstart=%d next=%d bytes=%d epoch=%d\n", indent, p.LogStart, p.Next, p.Bytes, p.Epoch)
	for _, x := range p.Extents {
		if x.Ctl != nil {
			kind := "abort"
			if x.Ctl.Commit {
				kind = "commit"
			}
			fmt.Fprintf(b, "%s%d-%d marker=%s pid=%d epoch=%d len=%d maxts=%d\n", indent, x.Base, x.Last, kind, x.Ctl.ProducerID, x.Ctl.Epoch, x.Len, x.MaxTS)
			continue
		}
		kind := "obj"
		if x.Segment {
			kind = "seg"
		}
		fmt.Fprintf(b, "%s%d-%d %s=%s pos=%d len=%d maxts=%d\n", indent, x.Base, x.Last, kind, x.Obj, x.Pos, x.Len, x.MaxTS)
	}
	if len(p.Open) > 0 {
		fmt.Fprintf(b, "%sopen:", indent)
		for _, pid := range sortedKeys(p.Open) {
			fmt.Fprintf(b, " %d@%d", pid, p.Open[pid])
		}
		fmt.Fprintf(b, " lso=%d\n", p.lastStable())
	}
	for _, a := range p.Aborted {
		fmt.Fprintf(b, "%saborted pid=%d %d-%d\n", indent, a.ProducerID, a.First, a.Last)
	}
	for _, pid := range sortedKeys(p.Producers) {
		ps := p.Producers[pid]
		fmt.Fprintf(b, "%sproducer %d epoch=%d last-seen=%d recent=", indent, pid, ps.Epoch, ps.LastSeen)
		for i, r := range ps.Recent {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(b, "[%d..%d]@%d", r.First, r.Last, r.Base)
		}
		b.WriteString("\n")
	}
}

// checkInvariants checks what must hold after every entry, whatever the
// entry was: per partition, extents sorted, non-overlapping, non-empty,
// below the high watermark and not wholly below the log start; byte
// counts and object reference counts match the extents.
func checkInvariants(s *state) error {
	refs := map[string]int32{}
	ids := make([]TopicID, 0, len(s.Topics))
	for id := range s.Topics {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return string(ids[i][:]) < string(ids[j][:]) })
	for _, id := range ids {
		t := s.Topics[id]
		if s.ByName[t.Name] != id {
			return fmt.Errorf("topic %q: name index points elsewhere", t.Name)
		}
		for pi, p := range t.Parts {
			where := fmt.Sprintf("%s/%d", t.Name, pi)
			if p.LogStart > p.Next {
				return fmt.Errorf("%s: log start %d past next %d", where, p.LogStart, p.Next)
			}
			var bytes int64
			for i, x := range p.Extents {
				if x.Last < x.Base {
					return fmt.Errorf("%s: extent %d [%d, %d] is empty", where, i, x.Base, x.Last)
				}
				if x.Last >= p.Next {
					return fmt.Errorf("%s: extent %d [%d, %d] reaches next offset %d", where, i, x.Base, x.Last, p.Next)
				}
				if x.Last < p.LogStart {
					return fmt.Errorf("%s: extent %d [%d, %d] lies below log start %d", where, i, x.Base, x.Last, p.LogStart)
				}
				if i > 0 && p.Extents[i-1].Last >= x.Base {
					return fmt.Errorf("%s: extents %d and %d overlap or are out of order", where, i-1, i)
				}
				if x.Obj != "" {
					refs[x.Obj]++
				} else if x.Ctl == nil || x.Base != x.Last || x.Len != markerLen {
					return fmt.Errorf("%s: extent %d [%d, %d] has no object and is not a marker", where, i, x.Base, x.Last)
				}
				bytes += x.Len
			}
			if bytes != p.Bytes {
				return fmt.Errorf("%s: bytes %d, extents hold %d", where, p.Bytes, bytes)
			}
			for pid, first := range p.Open {
				tx := s.Txns[s.TxnByPID[pid]]
				if tx == nil || tx.Phase != txnOngoing || !tx.hasPart(TxnPartition{Topic: id, Partition: int32(pi)}) {
					return fmt.Errorf("%s: producer %d has an open transaction here that its transactional id does not", where, pid)
				}
				if first >= p.Next {
					return fmt.Errorf("%s: open transaction of %d starts at %d, past next %d", where, pid, first, p.Next)
				}
			}
			for i, a := range p.Aborted {
				if a.First > a.Last || (i > 0 && p.Aborted[i-1].Last >= a.Last) {
					return fmt.Errorf("%s: aborted index entry %d (%d-%d) is malformed or out of order", where, i, a.First, a.Last)
				}
			}
		}
	}
	if len(s.ByName) != len(s.Topics) {
		return fmt.Errorf("%d names for %d topics", len(s.ByName), len(s.Topics))
	}
	if !reflect.DeepEqual(refs, s.ObjRefs) && !(len(refs) == 0 && len(s.ObjRefs) == 0) {
		return fmt.Errorf("object refcounts %v, extents reference %v", s.ObjRefs, refs)
	}
	return nil
}

// randomEntries generates a plausible log: it plans each entry against its
// own state so that most entries are accepted (valid sequences, current
// archive digests), with some stale or wrong ones mixed in.
func randomEntries(seed uint64, n int) []*entry {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	plan := newState()
	var out []*entry
	now := int64(1_000_000)
	seq := map[[2]int64]int32{} // (pid, topic idx*100+partition) -> next seq
	var pids []int64
	names := []string{"a", "b", "c"}
	objN := 0
	for rev := int64(1); len(out) < n; rev++ {
		now += r.Int64N(20_000)
		if r.IntN(200) == 0 {
			now += producerExpiryMs
		}
		e := &entry{Time: now, Broker: int32(r.IntN(3))}
		ti := r.IntN(len(names))
		tid := scriptTopicID(ti + 1)
		t := plan.Topics[tid]
		if t != nil && r.IntN(100) < 20 {
			randomTxnEntry(r, plan, e, tid, t, seq, ti)
			plan.apply(rev, e)
			out = append(out, e)
			continue
		}
		switch k := r.IntN(100); {
		case t == nil || k < 2:
			if t != nil {
				e.Kind, e.Topic = kindDeleteTopic, tid
				break
			}
			e.Kind, e.Topic, e.Name, e.Partitions = kindCreateTopic, tid, names[ti], int32(1+r.IntN(3))
			e.Configs = map[string]string{"retention.ms": strconv.Itoa(r.IntN(1000))}
		case k < 5:
			e.Kind, e.Topic, e.Partitions = kindCreatePartitions, tid, int32(len(t.Parts)+r.IntN(2))
		case k < 8:
			e.Kind, e.Topic, e.Replace = kindAlterConfigs, tid, r.IntN(2) == 0
			e.Configs = map[string]string{"segment.ms": strconv.Itoa(r.IntN(100))}
			e.Deletes = []string{"retention.ms"}
		case k < 14:
			e.Kind, e.ProducerID = kindInitProducer, -1
			if len(pids) > 0 && r.IntN(2) == 0 {
				e.ProducerID = pids[r.IntN(len(pids))]
				e.Epoch = plan.Producers[e.ProducerID]
			}
		case k < 70:
			objN++
			e.Kind, e.Object, e.ObjectTime = kindIntake, fmt.Sprintf("intake/%d", objN), now-r.Int64N(objectMaxAge+objectMaxAge/10)
			var pos uint32
			for range 1 + r.IntN(4) {
				p := int32(r.IntN(len(t.Parts) + 1)) // sometimes a partition that does not exist
				d := batchDesc{Topic: tid, Partition: p, Pos: pos, Len: uint32(1 + r.IntN(500)), Count: int32(1 + r.IntN(10)), MaxTS: now, ProducerID: -1, Epoch: -1, BaseSeq: -1}
				if len(pids) > 0 && r.IntN(2) == 0 {
					d.ProducerID = pids[r.IntN(len(pids))]
					d.Epoch = plan.Producers[d.ProducerID]
					key := [2]int64{d.ProducerID, int64(ti*100) + int64(p)}
					d.BaseSeq = seq[key]
					switch r.IntN(10) {
					case 0:
						d.BaseSeq += 7 // gap
					case 1:
						d.BaseSeq = max(0, d.BaseSeq-d.Count) // maybe a duplicate
					default:
						seq[key] = addSeq(d.BaseSeq, d.Count)
					}
				}
				pos += d.Len
				e.Batches = append(e.Batches, d)
			}
		case k < 78:
			p := int32(r.IntN(len(t.Parts)))
			pt := t.Parts[p]
			e.Kind, e.Topic, e.Partition = kindTrim, tid, p
			e.Offset = pt.LogStart + r.Int64N(pt.Next-pt.LogStart+2) - 1
		case k < 95:
			p := int32(r.IntN(len(t.Parts)))
			pt := t.Parts[p]
			e.Kind, e.Topic, e.Partition = kindArchive, tid, p
			objN++
			e.Segment = fmt.Sprintf("seg/%d", objN)
			// Archive a run of intake extents, or compact a run of segment ones.
			i := 0
			if len(pt.Extents) > 0 {
				i = r.IntN(len(pt.Extents))
			}
			j := i
			for j < len(pt.Extents) && j-i < 4 && pt.Extents[j].Segment == pt.Extents[i].Segment {
				j++
			}
			if j > i {
				run := pt.Extents[i:j]
				if run[0].Segment {
					e.Kind = kindCompact
				}
				e.ReplacedFirst, e.ReplacedLast, e.ReplacedCount = run[0].Base, run[len(run)-1].Last, len(run)
				e.ReplacedDigest = extentsDigest(run)
				if r.IntN(8) == 0 {
					e.ReplacedDigest++ // a stale plan
				}
				var cpos int64
				for _, x := range run {
					if e.Kind == kindCompact && r.IntN(3) == 0 {
						continue // compacted away
					}
					e.Chunks = append(e.Chunks, chunk{Base: x.Base, Last: x.Last, Pos: cpos, Len: x.Len, MaxTS: x.MaxTS})
					cpos += x.Len
				}
			} else {
				e.ReplacedFirst, e.ReplacedLast, e.ReplacedCount = 0, 0, 1
			}
		default:
			e.Kind = kindCollect
			for _, g := range plan.Garbage {
				if r.IntN(2) == 0 {
					e.Objects = append(e.Objects, g.Obj)
				}
			}
		}
		res := plan.apply(rev, e)
		if e.Kind == kindInitProducer && res.Err == nil && res.ProducerID != e.ProducerID {
			pids = append(pids, res.ProducerID)
		}
		out = append(out, e)
	}
	return out
}

// randomTxnEntry fills e with a transaction step for one of two
// transactional ids, planned against plan: mostly valid, sometimes with a
// stale epoch, an unknown partition or an early timeout.
func randomTxnEntry(r *rand.Rand, plan *state, e *entry, tid TopicID, t *topicState, seq map[[2]int64]int32, ti int) {
	id := []string{"x", "y"}[r.IntN(2)]
	tx := plan.Txns[id]
	if tx == nil || r.IntN(12) == 0 {
		e.Kind, e.TxnID, e.TimeoutMs, e.ProducerID, e.Epoch = kindInitProducer, id, int32(1000+r.IntN(100_000)), -1, -1
		if r.IntN(20) == 0 {
			e.TimeoutMs = -1
		}
		if tx != nil && r.IntN(3) == 0 {
			e.ProducerID, e.Epoch = tx.ProducerID, tx.Epoch-int16(r.IntN(2))
		}
		return
	}
	e.TxnID, e.ProducerID, e.Epoch = id, tx.ProducerID, tx.Epoch
	if r.IntN(15) == 0 {
		e.Epoch-- // a zombie
	}
	switch k := r.IntN(10); {
	case k < 2:
		e.Kind = kindAddPartitions
		for range 1 + r.IntN(2) {
			e.TxnParts = append(e.TxnParts, TxnPartition{Topic: tid, Partition: int32(r.IntN(len(t.Parts) + 1))})
		}
	case k < 3:
		e.Kind, e.Group = kindAddOffsets, []string{"g1", "g2"}[r.IntN(2)]
	case k < 4:
		e.Kind, e.Group, e.Implicit = kindTxnOffsets, []string{"g1", "g2"}[r.IntN(2)], r.IntN(2) == 0
		e.TxnOffsets = []TxnOffset{{Topic: t.Name, Partition: 0, Offset: r.Int64N(1000)}}
	case k < 6:
		e.Kind, e.Commit, e.Bump = kindEndTxn, r.IntN(2) == 0, r.IntN(2) == 0
		if r.IntN(4) == 0 {
			e.Timeout, e.Bump, e.Commit = true, true, false
		}
		if r.IntN(5) == 0 && tx.PrevEpoch >= 0 {
			e.ProducerID, e.Epoch = tx.PrevProducerID, tx.PrevEpoch // a retry or a delayed copy
		}
	case k < 7 && len(plan.TxnOffsets) > 0:
		c := plan.TxnOffsets[r.IntN(len(plan.TxnOffsets))]
		e.Kind, e.Group, e.Offset = kindTxnPublished, c.Group, c.Rev
	default:
		p := int32(r.IntN(len(t.Parts)))
		key := [2]int64{tx.ProducerID, int64(ti*100) + int64(p)}
		d := batchDesc{Topic: tid, Partition: p, Len: uint32(1 + r.IntN(500)), Count: int32(1 + r.IntN(5)), MaxTS: e.Time,
			ProducerID: tx.ProducerID, Epoch: e.Epoch, BaseSeq: seq[key], Attrs: attrTransactional}
		if r.IntN(2) == 0 {
			d.Attrs |= attrImplicitAdd
		}
		if ps := t.Parts[p].Producers[tx.ProducerID]; ps == nil || ps.Epoch != tx.Epoch {
			d.BaseSeq = 0
		}
		seq[key] = addSeq(d.BaseSeq, d.Count)
		e.Kind, e.Object, e.ObjectTime, e.Batches = kindIntake, fmt.Sprintf("txn-intake/%d", e.Time), e.Time, []batchDesc{d}
	}
}

// dumpResult renders an apply result canonically.
func dumpResult(res applyResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "err=%v pid=%d epoch=%d offset=%d", res.Err, res.ProducerID, res.Epoch, res.Offset)
	for _, br := range res.Batches {
		fmt.Fprintf(&b, " [%d %d %v]", br.Base, br.LogStart, br.Err)
	}
	return b.String()
}

// TestSequencerDeterminism applies the same random log to two fresh states
// and to one that is checkpointed halfway (encodeState/decodeState) and
// continued from the decoded copy: results and final states must be
// identical, as every broker's must be.
func TestSequencerDeterminism(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3, 42, 1 << 40} {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			log := randomEntries(seed, 1500)
			// Each run re-decodes the entries from their encoding, as a
			// broker reading them from etcd does.
			enc := make([][]byte, len(log))
			for i, e := range log {
				enc[i] = e.encode()
			}
			replay := func(t *testing.T, st *state, from, to int) ([]string, *state) {
				t.Helper()
				var out []string
				for i := from; i < to; i++ {
					e, err := decodeEntry(enc[i])
					if err != nil {
						t.Fatalf("entry %d: %v", i, err)
					}
					out = append(out, dumpResult(st.apply(int64(i+1), e)))
					if err := checkInvariants(st); err != nil {
						t.Fatalf("entry %d (kind %d): %v", i, e.Kind, err)
					}
				}
				return out, st
			}
			resA, a := replay(t, newState(), 0, len(log))
			resB, b := replay(t, newState(), 0, len(log))
			mid := len(log) / 2
			resC1, c := replay(t, newState(), 0, mid)
			data, err := encodeState(c)
			if err != nil {
				t.Fatal(err)
			}
			if c, err = decodeState(data); err != nil {
				t.Fatal(err)
			}
			if got, want := dumpState(c, nil), dumpState(a0(t, enc[:mid]), nil); got != want {
				t.Fatalf("checkpoint round trip changed the state:\n%s", diffLines(want, got))
			}
			resC2, c := replay(t, c, mid, len(log))
			resC := append(resC1, resC2...)
			for i := range resA {
				if resA[i] != resB[i] || resA[i] != resC[i] {
					t.Fatalf("entry %d answered differently:\n fresh: %s\n again: %s\n ckpt:  %s", i, resA[i], resB[i], resC[i])
				}
			}
			if a.digest() != b.digest() || a.digest() != c.digest() {
				t.Fatalf("state digests differ: fresh %016x, again %016x, through a checkpoint %016x", a.digest(), b.digest(), c.digest())
			}
			da, db, dc := dumpState(a, nil), dumpState(b, nil), dumpState(c, nil)
			if da != db {
				t.Fatalf("two fresh replays differ:\n%s", diffLines(da, db))
			}
			if da != dc {
				t.Fatalf("replay through a checkpoint differs:\n%s", diffLines(da, dc))
			}
			// The log must exercise the sequencer, not just bounce off it.
			var accepted, rejected int
			byKind := map[entryKind]int{}
			for i, r := range resA {
				if strings.HasPrefix(r, "err=<nil>") && !strings.Contains(r, " stream: ") {
					accepted++
					byKind[log[i].Kind]++
				} else {
					rejected++
				}
			}
			t.Logf("%d entries fully accepted (by kind %v), %d with errors; final: %d topics, %d objects referenced, %d garbage", accepted, byKind, rejected, len(a.Topics), len(a.ObjRefs), len(a.Garbage))
			if accepted < len(log)/3 || rejected == 0 || byKind[kindArchive] == 0 || byKind[kindCompact] == 0 || len(a.Topics) == 0 ||
				byKind[kindEndTxn] == 0 || byKind[kindAddPartitions] == 0 || byKind[kindTxnOffsets] == 0 {
				t.Fatalf("random log is not representative: %d accepted, %d rejected, %d topics", accepted, rejected, len(a.Topics))
			}
		})
	}
}

// a0 replays encoded entries into a fresh state.
func a0(t *testing.T, enc [][]byte) *state {
	t.Helper()
	st := newState()
	for i, b := range enc {
		e, err := decodeEntry(b)
		if err != nil {
			t.Fatal(err)
		}
		st.apply(int64(i+1), e)
	}
	return st
}

// diffLines shows the first differing line of two dumps.
func diffLines(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < max(len(al), len(bl)); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			return fmt.Sprintf("line %d:\n- %s\n+ %s", i+1, x, y)
		}
	}
	return "(equal)"
}
