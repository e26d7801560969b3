// Package tableflow materialises topics as Apache Iceberg tables and
// streams Iceberg tables into topics (DESIGN §7).
//
// A topic with table.enabled=true gets a table in Runnel's own object store
// (under warehouse/<namespace>/<table>/), written with iceberg-go and
// committed through a catalog kept in etcd, where a commit is a
// compare-and-swap of the table's metadata location. Every snapshot carries
// the per-partition offsets it covers in its summary (SummaryOffsets), so a
// writer that crashes or loses a commit race resumes from the table's own
// record and no record is written twice or missed. The same catalog is
// served read-only to outside engines as an Iceberg REST catalog.
package tableflow

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/apache/iceberg-go/table"

	"github.com/runnel-dev/runnel/internal/config"
	"github.com/runnel-dev/runnel/internal/registry"
	"github.com/runnel-dev/runnel/internal/stream"
)

// Log is the log as Tableflow reads and writes it (the stream engine).
type Log interface {
	Topics() []stream.TopicInfo
	Topic(name string) (stream.TopicInfo, bool)
	TopicByID(id stream.TopicID) (stream.TopicInfo, bool)
	TopicConfig(name string) (config.Topic, error)
	State(topic string, partition int32) (stream.PartitionState, error)
	// Fetch reads whole batches from the batch holding p.Offset on.
	Fetch(ctx context.Context, p stream.FetchPartition) (stream.FetchResult, error)
	// Changed is closed when the log moved on (new records, configs).
	Changed() <-chan struct{}
	Produce(ctx context.Context, batches []stream.ProduceBatch) []stream.ProduceResult
	InitProducerID(ctx context.Context, producerID int64, epoch int16) (int64, int16, error)
}

var _ Log = (*stream.Engine)(nil)

// Schemas is the schema registry as Tableflow reads it.
type Schemas interface {
	// SchemaByID returns the schema of a wire-format id (default context).
	SchemaByID(ctx context.Context, id int) (registry.Schema, registry.SchemaInfo, error)
	// LatestForSubject returns a subject's newest version.
	LatestForSubject(ctx context.Context, subject string) (registry.Schema, registry.SubjectSchema, error)
}

var _ Schemas = (*registry.Registry)(nil)

// Names of the columns every table has, and of the value column of a topic
// without a value schema.
const (
	ColPartition = "_partition" // int: the record's partition
	ColOffset    = "_offset"    // long: the record's offset
	ColTimestamp = "_timestamp" // timestamptz: the record's timestamp
	ColKey       = "_key"       // binary: the record key (null for a null key)
	ColHeaders   = "_headers"   // map<string, binary>: the record headers (null when none)
	ColValue     = "_value"     // binary: the value, when the topic has no value schema
)

// Keys Runnel keeps in Iceberg metadata.
const (
	// SummaryOffsets is the snapshot summary property holding the offsets
	// the table covers: a JSON object from partition to the next offset to
	// read, for every partition seen so far.
	SummaryOffsets = "runnel.offsets"
	// PropTopicID is the table property naming the topic (its id, in hex)
	// the table materialises.
	PropTopicID = "runnel.topic-id"
)

// Offsets maps a partition to the next offset to read from it.
type Offsets map[int32]int64

// ParseOffsets reads a SummaryOffsets value; an empty string is no
// offsets.
func ParseOffsets(s string) (Offsets, error) {
	out := Offsets{}
	if s == "" {
		return out, nil
	}
	var raw map[string]int64
	if err := json.Unmarshal([]byte(s), &raw); err != nil {
		return nil, fmt.Errorf("tableflow: %s %q: %w", SummaryOffsets, s, err)
	}
	for k, v := range raw {
		p, err := strconv.ParseInt(k, 10, 32)
		if err != nil || p < 0 || v < 0 {
			return nil, fmt.Errorf("tableflow: %s %q: bad entry %q: %d", SummaryOffsets, s, k, v)
		}
		out[int32(p)] = v
	}
	return out, nil
}

// String encodes o as a SummaryOffsets value, partitions in order.
func (o Offsets) String() string {
	b := []byte{'{'}
	for i, p := range slices.Sorted(maps.Keys(o)) {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendQuote(b, strconv.Itoa(int(p)))
		b = append(b, ':')
		b = strconv.AppendInt(b, o[p], 10)
	}
	return string(append(b, '}'))
}

// Clone returns a copy of o.
func (o Offsets) Clone() Offsets { return maps.Clone(o) }

// Behind reports whether o is behind other for some partition: a commit
// that would move a partition's offset backwards must never happen.
func (o Offsets) Behind(other Offsets) bool {
	for p, n := range other {
		if o[p] < n {
			return true
		}
	}
	return false
}

// OffsetsOf returns the offsets a table's current snapshot covers: none
// for a table without snapshots. A snapshot without SummaryOffsets is an
// error: the table was not written by Tableflow (or a commit dropped the
// record), and resuming from the log start would write records twice.
func OffsetsOf(meta table.Metadata) (Offsets, error) {
	snap := meta.CurrentSnapshot()
	if snap == nil {
		return Offsets{}, nil
	}
	if snap.Summary == nil {
		return nil, fmt.Errorf("tableflow: snapshot %d has no summary, so no %s", snap.SnapshotID, SummaryOffsets)
	}
	v, ok := snap.Summary.Properties[SummaryOffsets]
	if !ok {
		return nil, fmt.Errorf("tableflow: snapshot %d (%s) has no %s", snap.SnapshotID, snap.Summary.Operation, SummaryOffsets)
	}
	return ParseOffsets(v)
}
