package stream

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
)

// entryKind says what a log entry does. Every change the sequencer orders
// against data is an entry (DESIGN §4, §5a rule 1).
type entryKind uint8

const (
	kindIntake           entryKind = 1  // batches in an intake object
	kindCreateTopic      entryKind = 2  // a new topic
	kindDeleteTopic      entryKind = 3  // a topic and its data go away
	kindCreatePartitions entryKind = 4  // a topic grows
	kindAlterConfigs     entryKind = 5  // topic config overrides change
	kindInitProducer     entryKind = 6  // a producer id is allocated or bumped
	kindTrim             entryKind = 7  // the log start offset moves (DeleteRecords, retention)
	kindArchive          entryKind = 8  // intake extents are replaced by a segment
	kindCompact          entryKind = 9  // segment chunks are replaced by compacted ones
	kindCollect          entryKind = 10 // garbage objects were deleted from the store
	kindAddPartitions    entryKind = 11 // partitions join a transaction
	kindAddOffsets       entryKind = 12 // a consumer group joins a transaction
	kindTxnOffsets       entryKind = 13 // offsets committed inside a transaction
	kindEndTxn           entryKind = 14 // a transaction commits or aborts
	kindTxnPublished     entryKind = 15 // a committed transaction's offsets reached the group store
	kindTick             entryKind = 32 // the maintainer's clock, while the log is quiet
	// A checkpoint's mark and its digest change nothing but the revision,
	// entry count and log clock every entry moves, so a broker of an older
	// version that does not know them derives the same state (it answers
	// their proposer with an error no one waits for) and they need no
	// sequencer-version switch (DESIGN §5a rule 1).
	kindCheckpointMark   entryKind = 16 // every broker records its state digest here
	kindCheckpointDigest entryKind = 17 // the checkpointer's digest at a mark, for everyone to compare
)

// batchDesc describes one batch of an intake object: where it is and what
// the sequencer needs to order it.
type batchDesc struct {
	Topic      TopicID
	Partition  int32
	Pos        uint32
	Len        uint32
	Count      int32 // lastOffsetDelta + 1
	MaxTS      int64
	ProducerID int64
	Epoch      int16
	BaseSeq    int32
	Attrs      int16
}

// chunk is one piece of a segment object: a run of whole batches with final
// offsets. The partition index keeps one extent per chunk, so the chunk list
// is the segment's sparse offset and time index.
type chunk struct {
	Base  int64 `json:"b"`
	Last  int64 `json:"l"`
	Pos   int64 `json:"p"`
	Len   int64 `json:"n"`
	MaxTS int64 `json:"t"`
}

// entry is one decoded log entry. Fields are used according to Kind.
type entry struct {
	Kind   entryKind `json:"-"`
	Broker int32     `json:"br"`
	Time   int64     `json:"ts"` // proposing broker's clock (ms): feeds the log clock

	// kindIntake
	Object     string      `json:"-"`
	ObjectTime int64       `json:"-"`
	Batches    []batchDesc `json:"-"`

	// topic entries
	Topic      TopicID           `json:"tid,omitempty"`
	Name       string            `json:"name,omitempty"`
	Partitions int32             `json:"np,omitempty"`
	Configs    map[string]string `json:"cfg,omitempty"`
	Deletes    []string          `json:"del,omitempty"`
	Replace    bool              `json:"rep,omitempty"`

	// kindInitProducer and the transaction entries
	ProducerID int64          `json:"pid,omitempty"`
	Epoch      int16          `json:"ep,omitempty"`
	TxnID      string         `json:"txn,omitempty"`
	TimeoutMs  int32          `json:"tmo,omitempty"`
	TxnParts   []TxnPartition `json:"tps,omitempty"`
	Group      string         `json:"grp,omitempty"`
	TxnOffsets []TxnOffset    `json:"tof,omitempty"`
	Commit     bool           `json:"commit,omitempty"`
	// Bump ends the transaction with an epoch bump (Transactions V2);
	// Timeout marks the maintainer's abort of a timed-out transaction.
	Bump    bool `json:"bump,omitempty"`
	Timeout bool `json:"timeout,omitempty"`
	// Implicit: TxnOffsetCommit v5+ adds its group to the transaction
	// (Transactions V2) instead of needing AddOffsetsToTxn first.
	Implicit bool `json:"implicit,omitempty"`

	// kindTrim, kindArchive, kindCompact
	Partition int32 `json:"p,omitempty"`
	Offset    int64 `json:"off,omitempty"`
	Retention bool  `json:"ret,omitempty"`
	// Replaced names the extents an archive or compaction replaces: the
	// first base offset, the last offset and how many extents lie between.
	ReplacedFirst int64 `json:"rf,omitempty"`
	ReplacedLast  int64 `json:"rl,omitempty"`
	ReplacedCount int   `json:"rc,omitempty"`
	// ReplacedDigest identifies exactly which extents (objects and
	// positions) the plan read, so a plan made from an older view of the
	// same offsets is rejected too.
	ReplacedDigest uint64  `json:"rd,omitempty"`
	Segment        string  `json:"seg,omitempty"`
	Chunks         []chunk `json:"ch,omitempty"`
	// SegmentTime is when the proposing broker wrote the segment (its
	// clock, like an intake entry's ObjectTime).
	SegmentTime int64 `json:"st,omitempty"`

	// kindCollect
	Objects []string `json:"objs,omitempty"`

	// kindCheckpointDigest: the revision of the mark and the digest of the
	// checkpointer's state there.
	MarkRev int64  `json:"mrev,omitempty"`
	Digest  uint64 `json:"dig,omitempty"`
}

const batchDescLen = 16 + 4 + 4 + 4 + 4 + 8 + 8 + 2 + 4 + 2

// encode renders an entry: a kind byte, then a compact binary body for
// intake entries (the hot path) and JSON for the rest.
func (e *entry) encode() []byte {
	if e.Kind != kindIntake {
		b, _ := json.Marshal(e)
		return append([]byte{byte(e.Kind)}, b...)
	}
	out := make([]byte, 0, 1+4+8+8+2+len(e.Object)+4+len(e.Batches)*batchDescLen)
	out = append(out, byte(kindIntake))
	out = binary.BigEndian.AppendUint32(out, uint32(e.Broker))
	out = binary.BigEndian.AppendUint64(out, uint64(e.Time))
	out = binary.BigEndian.AppendUint64(out, uint64(e.ObjectTime))
	out = binary.BigEndian.AppendUint16(out, uint16(len(e.Object)))
	out = append(out, e.Object...)
	out = binary.BigEndian.AppendUint32(out, uint32(len(e.Batches)))
	for _, b := range e.Batches {
		out = append(out, b.Topic[:]...)
		out = binary.BigEndian.AppendUint32(out, uint32(b.Partition))
		out = binary.BigEndian.AppendUint32(out, b.Pos)
		out = binary.BigEndian.AppendUint32(out, b.Len)
		out = binary.BigEndian.AppendUint32(out, uint32(b.Count))
		out = binary.BigEndian.AppendUint64(out, uint64(b.MaxTS))
		out = binary.BigEndian.AppendUint64(out, uint64(b.ProducerID))
		out = binary.BigEndian.AppendUint16(out, uint16(b.Epoch))
		out = binary.BigEndian.AppendUint32(out, uint32(b.BaseSeq))
		out = binary.BigEndian.AppendUint16(out, uint16(b.Attrs))
	}
	return out
}

// decodeEntry parses an encoded entry. A malformed entry is an error; the
// sequencer skips it deterministically on every broker.
func decodeEntry(b []byte) (*entry, error) {
	if len(b) < 1 {
		return nil, fmt.Errorf("stream: empty log entry")
	}
	kind := entryKind(b[0])
	if kind != kindIntake {
		e := &entry{}
		if err := json.Unmarshal(b[1:], e); err != nil {
			return nil, fmt.Errorf("stream: log entry kind %d: %w", kind, err)
		}
		e.Kind = kind
		return e, nil
	}
	be := binary.BigEndian
	b = b[1:]
	if len(b) < 4+8+8+2 {
		return nil, fmt.Errorf("stream: short intake entry")
	}
	e := &entry{Kind: kindIntake}
	e.Broker = int32(be.Uint32(b))
	e.Time = int64(be.Uint64(b[4:]))
	e.ObjectTime = int64(be.Uint64(b[12:]))
	n := int(be.Uint16(b[20:]))
	b = b[22:]
	if len(b) < n+4 {
		return nil, fmt.Errorf("stream: short intake entry")
	}
	e.Object = string(b[:n])
	b = b[n:]
	count := int(be.Uint32(b))
	b = b[4:]
	if count < 0 || len(b) != count*batchDescLen {
		return nil, fmt.Errorf("stream: intake entry with %d batches has %d bytes", count, len(b))
	}
	e.Batches = make([]batchDesc, count)
	for i := range e.Batches {
		d := &e.Batches[i]
		copy(d.Topic[:], b)
		d.Partition = int32(be.Uint32(b[16:]))
		d.Pos = be.Uint32(b[20:])
		d.Len = be.Uint32(b[24:])
		d.Count = int32(be.Uint32(b[28:]))
		d.MaxTS = int64(be.Uint64(b[32:]))
		d.ProducerID = int64(be.Uint64(b[40:]))
		d.Epoch = int16(be.Uint16(b[48:]))
		d.BaseSeq = int32(be.Uint32(b[50:]))
		d.Attrs = int16(be.Uint16(b[54:]))
		b = b[batchDescLen:]
	}
	return e, nil
}
