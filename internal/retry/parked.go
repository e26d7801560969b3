package retry

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strconv"
)

// The parked-keys table of an ordered group: the compacted topic
// retry.<group>.parked (one partition), written by the group's coordinator
// broker and read by the group's consumers from the start.
//
//   - key "park/<topic>/<partition>/<hex of the record key>": one origin
//     key with records in the group's retry topics. Value: a ParkedKey
//     (JSON). A tombstone once none of its records is left.
//   - key "progress": a Progress (JSON): how far the table has read every
//     retry partition. It is written after the park records it covers.
//   - keys "release/<topic>/<partition>/<hex key>" and "discard/..."
//     (written by runnel retry release|discard): a Mark (JSON).
//
// A record of a retry topic of the group counts as parked while it sits at
// or past the group's committed offset of its partition. Its origin (the
// runnel.retry.origin.* headers) and key name its entry.
const (
	parkPrefix    = "park/"
	releasePrefix = "release/"
	discardPrefix = "discard/"
	progressKey   = "progress"
)

// ParkedKey is the value of a park/ record.
type ParkedKey struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Key       []byte `json:"key"` // base64 in JSON
	// Parked lists the origin offsets of the key's records waiting in a
	// retry topic that hold back later records of the key, ascending.
	Parked []int64 `json:"parked"`
	// Released and Discarded are the marks of runnel retry release and
	// discard (-1 when none): records at or below them no longer hold the
	// key back; discarded ones are sent to the dead-letter topic by the
	// consumer that meets them instead of being processed.
	Released  int64 `json:"released"`
	Discarded int64 `json:"discarded"`
}

// Blocks reports whether a record of this key at origin offset o must be
// parked behind an earlier one.
func (k ParkedKey) Blocks(o int64) bool {
	return len(k.Parked) > 0 && k.Parked[0] < o
}

// Progress is the value of the progress record: for every retry topic and
// partition, the offset up to which the table reflects it.
type Progress struct {
	Ends map[string]map[int32]int64 `json:"ends"`
}

// Covers reports whether the table reflects topic/partition up to and
// including offset.
func (p Progress) Covers(topic string, partition int32, offset int64) bool {
	return p.Ends[topic][partition] > offset
}

// Mark is the value of a release/ or discard/ record.
type Mark struct {
	// UpTo is the highest origin offset the mark covers.
	UpTo int64 `json:"up_to"`
}

// Origin names one key of one origin partition.
type Origin struct {
	Topic     string
	Partition int32
	Key       []byte
}

// id is the origin's table key suffix: <topic>/<partition>/<hex key>.
func (o Origin) id() string {
	return o.Topic + "/" + strconv.Itoa(int(o.Partition)) + "/" + hex.EncodeToString(o.Key)
}

// ParkKey, ReleaseKey and DiscardKey are the table keys of an origin.
func ParkKey(o Origin) string    { return parkPrefix + o.id() }
func ReleaseKey(o Origin) string { return releasePrefix + o.id() }
func DiscardKey(o Origin) string { return discardPrefix + o.id() }

// ProgressKey is the key of the progress record.
const ProgressKey = progressKey

// parkedRecord is one record of a retry topic: its origin and origin
// offset.
type parkedRecord struct {
	Origin Origin
	Offset int64
}

// marks are the release and discard marks by origin id.
type marks struct {
	released, discarded map[string]int64
}

func (m marks) get(table map[string]int64, id string) int64 {
	if v, ok := table[id]; ok {
		return v
	}
	return -1
}

// buildTable computes the table's park records from the records waiting
// in the retry topics and the marks: one ParkedKey per origin key with a
// waiting record, its offsets above both marks listed as parked.
func buildTable(waiting []parkedRecord, m marks) map[string]ParkedKey {
	out := map[string]ParkedKey{}
	for _, r := range waiting {
		id := r.Origin.id()
		k, ok := out[parkPrefix+id]
		if !ok {
			k = ParkedKey{Topic: r.Origin.Topic, Partition: r.Origin.Partition, Key: r.Origin.Key,
				Released: m.get(m.released, id), Discarded: m.get(m.discarded, id)}
		}
		if r.Offset > k.Released && r.Offset > k.Discarded && !slices.Contains(k.Parked, r.Offset) {
			k.Parked = append(k.Parked, r.Offset)
		}
		out[parkPrefix+id] = k
	}
	for key, k := range out {
		slices.Sort(k.Parked)
		if k.Parked == nil {
			k.Parked = []int64{}
		}
		out[key] = k
	}
	return out
}

// diffTable returns the records that turn the published table into want:
// changed values, and nil values (tombstones) for keys no longer wanted,
// sorted by key.
func diffTable(published map[string][]byte, want map[string]ParkedKey) (keys []string, values [][]byte) {
	next := map[string][]byte{}
	for k, v := range want {
		b, _ := json.Marshal(v)
		next[k] = b
	}
	for k, b := range next {
		if old, ok := published[k]; !ok || !bytes.Equal(old, b) {
			keys = append(keys, k)
		}
	}
	for k := range published {
		if _, ok := next[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		values = append(values, next[k])
	}
	return keys, values
}
