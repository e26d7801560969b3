package tableflow

// Upsert tables: the message key is the row identity. One commit is one
// RowDelta: an equality delete on _key for every key the commit touches
// plus data files holding the newest row of each key still alive. Equality
// deletes apply only to data files with a smaller data sequence number, so
// they remove the key's older rows and never the rows committed beside
// them. (Equality deletes rather than position deletes: no key index to
// keep and writes stay O(batch); compaction in maintain.go folds them
// away.)

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
)

// ErrUnsupportedSpec is returned for an upsert table whose partition spec
// would let a key's equality delete land in another partition than the
// key's older rows.
var ErrUnsupportedSpec = errors.New("tableflow: partition spec not supported for an upsert table")

// Tombstone is a record with a null value in an upsert table's topic: it
// deletes its key's row. Key is never nil (a null key cannot be upserted).
type Tombstone struct {
	Key       []byte
	Partition int32
	Offset    int64
}

// UpsertSchema returns sc with _key as its identifier field (required, so
// non-null, as the Iceberg spec wants of identifier fields): the schema an
// upsert table is created with, which tells outside engines what a row's
// identity is.
func UpsertSchema(sc *iceberg.Schema) (*iceberg.Schema, error) {
	key, ok := sc.FindFieldByName(ColKey)
	if !ok {
		return nil, fmt.Errorf("tableflow: upsert schema has no %s column", ColKey)
	}
	if !key.Type.Equals(iceberg.PrimitiveTypes.Binary) {
		return nil, fmt.Errorf("tableflow: upsert schema's %s is %s, not binary", ColKey, key.Type)
	}
	fields := sc.Fields()
	for i := range fields {
		if fields[i].ID == key.ID {
			fields[i].Required = true
		}
	}
	return iceberg.NewSchemaWithIdentifiers(sc.ID, []int{key.ID}, fields...), nil
}

// CheckUpsertSpec reports whether spec suits an upsert table of schema sc:
// unpartitioned, or partitioned only by transforms of _key (bucket(N,
// _key) being the useful one). Any other source column is refused with
// ErrUnsupportedSpec: the equality delete of a key lands in the partition
// of the key's NEW row, and with day(_timestamp) the key's older rows may
// sit in another day's partition, which a partition-scoped delete does not
// reach, so the old row would stay visible. A function of the key alone
// puts all of a key's rows and deletes in one partition.
func CheckUpsertSpec(sc *iceberg.Schema, spec iceberg.PartitionSpec) error {
	key, ok := sc.FindFieldByName(ColKey)
	if !ok {
		return fmt.Errorf("tableflow: upsert schema has no %s column", ColKey)
	}
	for _, f := range spec.Fields() {
		if _, void := f.Transform.(iceberg.VoidTransform); void {
			continue // always null: one partition
		}
		for _, id := range f.SourceIDs {
			if id != key.ID {
				name, _ := sc.FindColumnName(id)
				return fmt.Errorf("%w: %s(%s): a key's rows would be spread over partitions; partition by bucket(N, %s) or not at all",
					ErrUnsupportedSpec, f.Transform, name, ColKey)
			}
		}
	}
	return nil
}

// Upsert stages on txn, in ONE snapshot (a RowDelta whose summary carries
// props, which hold SummaryOffsets), the upsert of rows and tombstones:
// an equality delete on _key for every key they touch and data files with
// the newest row of every key whose newest record is not a tombstone.
//
// rows carry the fixed columns (ColKey, ColPartition, ColOffset, ...) and
// no null key. Several records of one key are reduced to the newest by
// (partition, offset): within a partition the higher offset wins. A key
// seen in two partitions of one commit (a producer that does not use the
// default partitioner) has no order between its partitions in the log;
// the higher partition wins, so the outcome is deterministic for a given
// commit, but across commits the later commit wins whatever the partition,
// so such a key's final row depends on where commits cut the log. Keep a
// key in one partition to get the log's order.
//
// With no rows and no tombstones Upsert stages nothing. Data files written
// before a failed commit are orphans for maintenance to remove.
func Upsert(ctx context.Context, txn *table.Transaction, rows arrow.Record, tombstones []Tombstone, props iceberg.Properties) error {
	staged, err := txn.StagedTable()
	if err != nil {
		return err
	}
	sc := staged.Schema()
	key, ok := sc.FindFieldByName(ColKey)
	if !ok {
		return fmt.Errorf("tableflow: upsert table has no %s column", ColKey)
	}
	if !slices.Equal(sc.IdentifierFieldIDs, []int{key.ID}) {
		return fmt.Errorf("tableflow: upsert table's identifier fields are %v, not %s (create it with UpsertSchema)", sc.IdentifierFieldIDs, ColKey)
	}
	if err := CheckUpsertSpec(sc, staged.Spec()); err != nil {
		return err
	}

	versions, err := upsertVersions(rows, tombstones)
	if err != nil {
		return err
	}
	live, deleted := planUpsert(versions)
	if len(deleted) == 0 {
		return nil
	}

	delSchema, err := sc.Select(true, ColKey)
	if err != nil {
		return err
	}
	delArrow, err := table.SchemaToArrowSchema(delSchema, nil, true, false)
	if err != nil {
		return err
	}
	delRec, err := keyRecord(delArrow, deleted)
	if err != nil {
		return err
	}
	defer delRec.Release()
	delFiles, err := txn.WriteEqualityDeletes(ctx, []int{key.ID}, one(delRec))
	if err != nil {
		return fmt.Errorf("tableflow: write equality deletes: %w", err)
	}

	rd := txn.NewRowDelta(props).AddDeletes(delFiles...)
	if len(live) > 0 {
		liveRec, err := takeRows(ctx, rows, live)
		if err != nil {
			return err
		}
		defer liveRec.Release()
		for df, err := range table.WriteRecords(ctx, staged.Table, liveRec.Schema(), one(liveRec)) {
			if err != nil {
				return fmt.Errorf("tableflow: write upserted rows: %w", err)
			}
			rd.AddRows(df)
		}
	}
	return rd.Commit(ctx)
}

// upsertVersion is one record of a key: a row of the input (row >= 0) or
// a tombstone (row < 0).
type upsertVersion struct {
	key       []byte
	partition int32
	offset    int64
	row       int
}

// newer orders two records of one key: higher partition first, then
// higher offset (see Upsert for why partitions compare at all).
func (v upsertVersion) newer(o upsertVersion) bool {
	if v.partition != o.partition {
		return v.partition > o.partition
	}
	return v.offset > o.offset
}

// planUpsert reduces the records to the newest of each key. It returns the
// input rows to write (ordered by partition and offset) and every key
// touched (sorted), which all get an equality delete.
func planUpsert(versions []upsertVersion) (live []int, keys [][]byte) {
	newest := make(map[string]upsertVersion, len(versions))
	for _, v := range versions {
		if cur, ok := newest[string(v.key)]; !ok || v.newer(cur) {
			newest[string(v.key)] = v
		}
	}
	winners := make([]upsertVersion, 0, len(newest))
	for _, v := range newest {
		winners = append(winners, v)
		keys = append(keys, v.key)
	}
	slices.SortFunc(keys, bytes.Compare)
	slices.SortFunc(winners, func(a, b upsertVersion) int {
		return cmp.Or(cmp.Compare(a.partition, b.partition), cmp.Compare(a.offset, b.offset))
	})
	for _, v := range winners {
		if v.row >= 0 {
			live = append(live, v.row)
		}
	}
	return live, keys
}

// upsertVersions lists the records of rows and tombstones.
func upsertVersions(rows arrow.Record, tombstones []Tombstone) ([]upsertVersion, error) {
	var out []upsertVersion
	if rows != nil && rows.NumRows() > 0 {
		keys, parts, offs, err := upsertKeyColumns(rows)
		if err != nil {
			return nil, err
		}
		for i := range int(rows.NumRows()) {
			if keys.IsNull(i) || parts.IsNull(i) || offs.IsNull(i) {
				return nil, fmt.Errorf("tableflow: upsert row %d has a null %s, %s or %s", i, ColKey, ColPartition, ColOffset)
			}
			out = append(out, upsertVersion{key: keys.Value(i), partition: parts.Value(i), offset: offs.Value(i), row: i})
		}
	}
	for _, t := range tombstones {
		if t.Key == nil {
			return nil, fmt.Errorf("tableflow: tombstone at %d/%d has a null key", t.Partition, t.Offset)
		}
		out = append(out, upsertVersion{key: t.Key, partition: t.Partition, offset: t.Offset, row: -1})
	}
	return out, nil
}

// binaryColumn is what *array.Binary and *array.LargeBinary share.
type binaryColumn interface {
	Value(int) []byte
	IsNull(int) bool
}

func upsertKeyColumns(rows arrow.Record) (binaryColumn, *array.Int32, *array.Int64, error) {
	col := func(name string) (arrow.Array, error) {
		idx := rows.Schema().FieldIndices(name)
		if len(idx) != 1 {
			return nil, fmt.Errorf("tableflow: upsert rows have no %s column", name)
		}
		return rows.Column(idx[0]), nil
	}
	k, err := col(ColKey)
	if err != nil {
		return nil, nil, nil, err
	}
	p, err := col(ColPartition)
	if err != nil {
		return nil, nil, nil, err
	}
	o, err := col(ColOffset)
	if err != nil {
		return nil, nil, nil, err
	}
	keys, ok1 := k.(binaryColumn)
	parts, ok2 := p.(*array.Int32)
	offs, ok3 := o.(*array.Int64)
	if !ok1 || !ok2 || !ok3 {
		return nil, nil, nil, fmt.Errorf("tableflow: upsert rows' %s, %s, %s are %s, %s, %s (want binary, int32, int64)",
			ColKey, ColPartition, ColOffset, k.DataType(), p.DataType(), o.DataType())
	}
	return keys, parts, offs, nil
}

// takeRows returns the rows at idx, with _key declared non-null (it is the
// required identifier field).
func takeRows(ctx context.Context, rows arrow.Record, idx []int) (arrow.Record, error) {
	b := array.NewInt64Builder(memory.DefaultAllocator)
	defer b.Release()
	for _, i := range idx {
		b.Append(int64(i))
	}
	indices := b.NewArray()
	defer indices.Release()

	fields := slices.Clone(rows.Schema().Fields())
	cols := make([]arrow.Array, 0, len(fields))
	defer func() {
		for _, c := range cols {
			c.Release()
		}
	}()
	for i := range fields {
		if fields[i].Name == ColKey {
			fields[i].Nullable = false
		}
		c, err := compute.TakeArray(ctx, rows.Column(i), indices)
		if err != nil {
			return nil, fmt.Errorf("tableflow: select upserted rows: %w", err)
		}
		cols = append(cols, c)
	}
	md := rows.Schema().Metadata()
	return array.NewRecord(arrow.NewSchema(fields, &md), cols, int64(len(idx))), nil
}

// keyRecord builds the equality-delete record of keys.
func keyRecord(sc *arrow.Schema, keys [][]byte) (arrow.Record, error) {
	rb := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer rb.Release()
	kb, ok := rb.Field(0).(*array.BinaryBuilder)
	if !ok {
		return nil, fmt.Errorf("tableflow: equality delete column is %s, not binary", sc.Field(0).Type)
	}
	for _, k := range keys {
		kb.Append(k)
	}
	return rb.NewRecord(), nil
}

// one yields rec once, retained first: the writers release what they
// consume, and rec stays the caller's.
func one(rec arrow.Record) func(func(arrow.RecordBatch, error) bool) {
	return func(yield func(arrow.RecordBatch, error) bool) {
		rec.Retain()
		yield(rec, nil)
	}
}
