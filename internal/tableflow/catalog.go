package tableflow

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	iceio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/runnel-dev/runnel/internal/objstore"
	"github.com/runnel-dev/runnel/internal/stream"
)

// Catalog errors. ErrNoSuchTable and ErrNoSuchNamespace also match
// iceberg-go's catalog.ErrNoSuchTable and catalog.ErrNoSuchNamespace;
// ErrCommitConflict also matches table.ErrCommitFailed, which is what
// tells iceberg-go that nothing was committed.
var (
	ErrNoSuchTable     = fmt.Errorf("tableflow: %w", catalog.ErrNoSuchTable)
	ErrNoSuchNamespace = fmt.Errorf("tableflow: %w", catalog.ErrNoSuchNamespace)
	// ErrTableConflict means the table name is taken by a table of
	// another topic.
	ErrTableConflict = errors.New("tableflow: table belongs to another topic")
	// ErrCommitConflict means the table changed since the commit's base
	// (another commit won): nothing was committed; reload and re-check.
	ErrCommitConflict = fmt.Errorf("tableflow: commit conflict: %w", table.ErrCommitFailed)
	// ErrInvalidIdentifier means a namespace or table name Tableflow
	// cannot keep (empty, or not a single object store path segment).
	ErrInvalidIdentifier = errors.New("tableflow: invalid table identifier")
)

// Table properties every table gets.
const (
	// propManifestMerge keeps the manifest count bounded between
	// maintenance runs (DESIGN §10).
	propManifestMerge = "commit.manifest-merge.enabled"
	// Commits are never retried inside iceberg-go: its retry replays the
	// snapshot onto the new base, offsets summary included, which would
	// record offsets another writer already moved. A conflict reaches the
	// caller, which reloads and decides.
	propCommitRetries = table.CommitNumRetriesKey
)

// CatalogOptions configures OpenCatalog.
type CatalogOptions struct {
	Client *clientv3.Client
	// Prefix is the cluster's etcd prefix (default "/runnel"); the
	// catalog lives under <Prefix>/tableflow/.
	Prefix string
	// IO is the object store the tables live in.
	IO     *FileIO
	Logger *slog.Logger
}

// Catalog is the Iceberg catalog kept in etcd (DESIGN §7): per table the
// location of its current metadata file, swapped by compare-and-swap on
// the key's revision. It implements iceberg-go's table.CatalogIO, so
// iceberg-go transactions commit through it. Safe for concurrent use;
// tables survive restarts (all state is in etcd and the object store).
type Catalog struct {
	cli    *clientv3.Client
	prefix string // <Prefix>/tableflow/
	io     *FileIO
	log    *slog.Logger

	// beforeSwap, if set, runs between writing a commit's metadata file
	// and the compare-and-swap (tests).
	beforeSwap func()
}

var _ table.CatalogIO = (*Catalog)(nil)

// TableSpec describes a table to create.
type TableSpec struct {
	Namespace, Name string
	Topic           string
	TopicID         stream.TopicID
	Schema          *iceberg.Schema
	Spec            iceberg.PartitionSpec
	Properties      iceberg.Properties
}

// TableEntry is a table as the catalog lists it.
type TableEntry struct {
	Namespace, Name  string
	Topic            string
	TopicID          stream.TopicID
	MetadataLocation string
}

// tableRecord is the JSON value of a table key.
type tableRecord struct {
	Topic            string `json:"topic"`
	TopicID          string `json:"topic_id"`
	MetadataLocation string `json:"metadata_location"`
	CreatedMs        int64  `json:"created_ms"`
}

// OpenCatalog returns the catalog kept under opts.Prefix.
func OpenCatalog(ctx context.Context, opts CatalogOptions) (*Catalog, error) {
	if opts.Client == nil || opts.IO == nil {
		return nil, errors.New("tableflow: catalog needs an etcd client and a FileIO")
	}
	prefix := opts.Prefix
	if prefix == "" {
		prefix = "/runnel"
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return &Catalog{
		cli:    opts.Client,
		prefix: strings.TrimRight(prefix, "/") + "/tableflow/",
		io:     opts.IO,
		log:    log,
	}, nil
}

// IO returns the FileIO the tables are read and written through.
func (c *Catalog) IO() *FileIO { return c.io }

func (c *Catalog) tableKey(ns, name string) string { return c.prefix + "tables/" + ns + "/" + name }
func (c *Catalog) nsKey(ns string) string          { return c.prefix + "namespaces/" + ns }

// tableDir is the store key prefix of a table's files.
func tableDir(ns, name string) string { return "warehouse/" + ns + "/" + name }

// checkName reports whether s can be a namespace or table name: one
// object store path segment, no separator of multi-level namespaces.
func checkName(kind, s string) error {
	if s == "" || strings.ContainsAny(s, "/\x1f") {
		return fmt.Errorf("%w: %s %q", ErrInvalidIdentifier, kind, s)
	}
	if err := objstore.ValidateKey(s); err != nil {
		return fmt.Errorf("%w: %s %q: %w", ErrInvalidIdentifier, kind, s, err)
	}
	return nil
}

func splitIdent(ident table.Identifier) (ns, name string, err error) {
	if len(ident) != 2 {
		return "", "", fmt.Errorf("%w: %q: want namespace and table name", ErrNoSuchTable, strings.Join(ident, "."))
	}
	return ident[0], ident[1], nil
}

// CreateTable creates the table of a topic, or returns the existing one
// when it already belongs to the same topic id (so enabling a topic twice,
// or on two brokers at once, is harmless). A table of the same name bound
// to another topic id is an error wrapping ErrTableConflict.
func (c *Catalog) CreateTable(ctx context.Context, spec TableSpec) (*table.Table, error) {
	if err := checkName("namespace", spec.Namespace); err != nil {
		return nil, err
	}
	if err := checkName("table", spec.Name); err != nil {
		return nil, err
	}
	if spec.Schema == nil {
		return nil, fmt.Errorf("tableflow: create %s.%s: no schema", spec.Namespace, spec.Name)
	}
	ident := table.Identifier{spec.Namespace, spec.Name}
	if tbl, err := c.existing(ctx, ident, spec.TopicID); err == nil || !errors.Is(err, ErrNoSuchTable) {
		return tbl, err
	}

	props := maps.Clone(spec.Properties)
	if props == nil {
		props = iceberg.Properties{}
	}
	props[PropTopicID] = hex.EncodeToString(spec.TopicID[:])
	props[propManifestMerge] = "true"
	props[propCommitRetries] = "0"
	props[table.PropertyFormatVersion] = "2"
	dir := tableDir(spec.Namespace, spec.Name)
	partSpec := spec.Spec
	meta, err := table.NewMetadata(spec.Schema, &partSpec, table.UnsortedSortOrder, c.io.Location(dir), props)
	if err != nil {
		return nil, fmt.Errorf("tableflow: create %s.%s: %w", spec.Namespace, spec.Name, err)
	}
	loc, err := c.writeMetadata(dir, 0, meta)
	if err != nil {
		return nil, err
	}
	rec, err := json.Marshal(tableRecord{
		Topic:            spec.Topic,
		TopicID:          hex.EncodeToString(spec.TopicID[:]),
		MetadataLocation: loc,
		CreatedMs:        time.Now().UnixMilli(),
	})
	if err != nil {
		return nil, err
	}
	key, nsKey := c.tableKey(spec.Namespace, spec.Name), c.nsKey(spec.Namespace)
	resp, err := c.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(rec)),
			clientv3.OpTxn([]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(nsKey), "=", 0)},
				[]clientv3.Op{clientv3.OpPut(nsKey, "{}")}, nil)).
		Commit()
	if err != nil {
		// The table may or may not exist now; its metadata file is
		// referenced if it does, so it stays.
		return nil, fmt.Errorf("tableflow: create %s.%s: %w", spec.Namespace, spec.Name, err)
	}
	if !resp.Succeeded {
		// Created concurrently: ours is unreferenced.
		c.removeFile(loc)
		return c.existing(ctx, ident, spec.TopicID)
	}
	c.log.Info("table created", "table", spec.Namespace+"."+spec.Name, "topic", spec.Topic, "metadata", loc)
	return table.New(ident, meta, loc, c.fsys, c), nil
}

// existing loads ident if it exists and belongs to topicID.
func (c *Catalog) existing(ctx context.Context, ident table.Identifier, topicID stream.TopicID) (*table.Table, error) {
	entry, _, _, err := c.entry(ctx, ident[0], ident[1])
	if err != nil {
		return nil, err
	}
	if entry.TopicID != topicID {
		return nil, fmt.Errorf("%w: %s.%s is the table of topic %q (id %x)", ErrTableConflict, ident[0], ident[1], entry.Topic, entry.TopicID)
	}
	return c.LoadTable(ctx, ident)
}

func (c *Catalog) fsys(context.Context) (iceio.IO, error) { return c.io, nil }

// Table returns the catalog entry of one table.
func (c *Catalog) Table(ctx context.Context, ns, name string) (TableEntry, error) {
	e, _, _, err := c.entry(ctx, ns, name)
	return e, err
}

// entry reads a table key: the entry, its record and the key's revision.
func (c *Catalog) entry(ctx context.Context, ns, name string) (TableEntry, tableRecord, int64, error) {
	if checkName("namespace", ns) != nil || checkName("table", name) != nil {
		return TableEntry{}, tableRecord{}, 0, fmt.Errorf("%w: %s.%s", ErrNoSuchTable, ns, name)
	}
	resp, err := c.cli.Get(ctx, c.tableKey(ns, name))
	if err != nil {
		return TableEntry{}, tableRecord{}, 0, fmt.Errorf("tableflow: read table %s.%s: %w", ns, name, err)
	}
	if len(resp.Kvs) == 0 {
		return TableEntry{}, tableRecord{}, 0, fmt.Errorf("%w: %s.%s", ErrNoSuchTable, ns, name)
	}
	e, rec, err := decodeEntry(ns, name, resp.Kvs[0].Value)
	return e, rec, resp.Kvs[0].ModRevision, err
}

func decodeEntry(ns, name string, value []byte) (TableEntry, tableRecord, error) {
	var rec tableRecord
	if err := json.Unmarshal(value, &rec); err != nil {
		return TableEntry{}, rec, fmt.Errorf("tableflow: table %s.%s: bad catalog record: %w", ns, name, err)
	}
	e := TableEntry{Namespace: ns, Name: name, Topic: rec.Topic, MetadataLocation: rec.MetadataLocation}
	id, err := hex.DecodeString(rec.TopicID)
	if err != nil || len(id) != len(e.TopicID) {
		return TableEntry{}, rec, fmt.Errorf("tableflow: table %s.%s: bad topic id %q", ns, name, rec.TopicID)
	}
	copy(e.TopicID[:], id)
	return e, rec, nil
}

// LoadTable loads a table's current metadata.
func (c *Catalog) LoadTable(ctx context.Context, ident table.Identifier) (*table.Table, error) {
	ns, name, err := splitIdent(ident)
	if err != nil {
		return nil, err
	}
	entry, _, _, err := c.entry(ctx, ns, name)
	if err != nil {
		return nil, err
	}
	meta, err := c.readMetadata(entry.MetadataLocation)
	if err != nil {
		return nil, err
	}
	return table.New(table.Identifier{ns, name}, meta, entry.MetadataLocation, c.fsys, c), nil
}

// Metadata reads the metadata file of an entry.
func (c *Catalog) Metadata(entry TableEntry) (table.Metadata, error) {
	return c.readMetadata(entry.MetadataLocation)
}

func (c *Catalog) readMetadata(loc string) (table.Metadata, error) {
	data, err := c.io.ReadFile(loc)
	if err != nil {
		return nil, fmt.Errorf("tableflow: read table metadata: %w", err)
	}
	meta, err := table.ParseMetadataBytes(data)
	if err != nil {
		return nil, fmt.Errorf("tableflow: parse table metadata %s: %w", loc, err)
	}
	return meta, nil
}

// CommitTable applies updates to a table whose current metadata meets
// reqs: it writes the new metadata file, then swaps the table's metadata
// location if the table key has not changed since it was read. A lost
// race (or requirements the current metadata fails) returns an error
// wrapping ErrCommitConflict, and the new metadata file is deleted.
func (c *Catalog) CommitTable(ctx context.Context, ident table.Identifier, reqs []table.Requirement, updates []table.Update) (table.Metadata, string, error) {
	ns, name, err := splitIdent(ident)
	if err != nil {
		return nil, "", err
	}
	entry, rec, rev, err := c.entry(ctx, ns, name)
	if err != nil {
		return nil, "", err
	}
	current, err := c.readMetadata(entry.MetadataLocation)
	if err != nil {
		return nil, "", err
	}
	for _, r := range reqs {
		if err := r.Validate(current); err != nil {
			return nil, "", fmt.Errorf("%w: %s.%s: %w", ErrCommitConflict, ns, name, err)
		}
	}
	updated, err := table.UpdateTableMetadata(current, updates, entry.MetadataLocation)
	if err != nil {
		return nil, "", fmt.Errorf("tableflow: commit %s.%s: %w", ns, name, err)
	}
	if updated.Location() != current.Location() {
		return nil, "", fmt.Errorf("tableflow: commit %s.%s: the table location cannot change", ns, name)
	}
	if updated.Properties()[PropTopicID] != current.Properties()[PropTopicID] {
		return nil, "", fmt.Errorf("tableflow: commit %s.%s: %s cannot change", ns, name, PropTopicID)
	}
	loc, err := c.writeMetadata(tableDir(ns, name), metadataVersion(entry.MetadataLocation)+1, updated)
	if err != nil {
		return nil, "", err
	}
	if c.beforeSwap != nil {
		c.beforeSwap()
	}
	rec.MetadataLocation = loc
	value, err := json.Marshal(rec)
	if err != nil {
		return nil, "", err
	}
	key := c.tableKey(ns, name)
	resp, err := c.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
		Then(clientv3.OpPut(key, string(value))).
		Commit()
	if err != nil {
		// Unknown outcome: the file may be the table's metadata now.
		return nil, "", fmt.Errorf("tableflow: commit %s.%s: %w", ns, name, err)
	}
	if !resp.Succeeded {
		c.removeFile(loc)
		c.log.Info("table commit lost a race", "table", ns+"."+name, "base", entry.MetadataLocation)
		return nil, "", fmt.Errorf("%w: %s.%s changed since %s", ErrCommitConflict, ns, name, entry.MetadataLocation)
	}
	c.log.Debug("table committed", "table", ns+"."+name, "metadata", loc)
	return updated, loc, nil
}

// writeMetadata writes meta as a new metadata file of version v under a
// table directory: metadata/<5-digit version>-<uuid>.metadata.json, a
// name never used before, so no file is ever overwritten.
func (c *Catalog) writeMetadata(dir string, v int, meta table.Metadata) (string, error) {
	data, err := json.Marshal(meta)
	if err != nil {
		return "", fmt.Errorf("tableflow: encode table metadata: %w", err)
	}
	loc := c.io.Location(fmt.Sprintf("%s/metadata/%05d-%s.metadata.json", dir, v, newUUID()))
	if err := c.io.WriteFile(loc, data); err != nil {
		return "", fmt.Errorf("tableflow: write table metadata: %w", err)
	}
	return loc, nil
}

func (c *Catalog) removeFile(loc string) {
	if err := c.io.Remove(loc); err != nil {
		c.log.Warn("cannot remove an unreferenced metadata file", "file", loc, "err", err)
	}
}

// metadataVersion reads the version of a metadata file name
// (<version>-<uuid>.metadata.json); -1 when it has none.
func metadataVersion(loc string) int {
	base := path.Base(loc)
	v, _, ok := strings.Cut(base, "-")
	if !ok {
		return -1
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return -1
	}
	return n
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// Namespaces returns the namespaces, in order.
func (c *Catalog) Namespaces(ctx context.Context) ([]string, error) {
	p := c.prefix + "namespaces/"
	resp, err := c.cli.Get(ctx, p, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, fmt.Errorf("tableflow: list namespaces: %w", err)
	}
	out := make([]string, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		out = append(out, strings.TrimPrefix(string(kv.Key), p))
	}
	slices.Sort(out)
	return out, nil
}

// Namespace returns a namespace's properties; a missing namespace is an
// error wrapping ErrNoSuchNamespace.
func (c *Catalog) Namespace(ctx context.Context, ns string) (map[string]string, error) {
	if checkName("namespace", ns) != nil {
		return nil, fmt.Errorf("%w: %q", ErrNoSuchNamespace, ns)
	}
	resp, err := c.cli.Get(ctx, c.nsKey(ns))
	if err != nil {
		return nil, fmt.Errorf("tableflow: read namespace %s: %w", ns, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, fmt.Errorf("%w: %q", ErrNoSuchNamespace, ns)
	}
	props := map[string]string{}
	if err := json.Unmarshal(resp.Kvs[0].Value, &props); err != nil {
		return nil, fmt.Errorf("tableflow: namespace %s: bad catalog record: %w", ns, err)
	}
	return props, nil
}

// Tables returns the tables of a namespace, by name; a missing namespace
// is an error wrapping ErrNoSuchNamespace.
func (c *Catalog) Tables(ctx context.Context, ns string) ([]TableEntry, error) {
	if _, err := c.Namespace(ctx, ns); err != nil {
		return nil, err
	}
	return c.list(ctx, c.prefix+"tables/"+ns+"/")
}

// TableByTopic returns the table of a topic; ok is false when it has none.
func (c *Catalog) TableByTopic(ctx context.Context, topicID stream.TopicID) (TableEntry, bool, error) {
	all, err := c.list(ctx, c.prefix+"tables/")
	if err != nil {
		return TableEntry{}, false, err
	}
	for _, e := range all {
		if e.TopicID == topicID {
			return e, true, nil
		}
	}
	return TableEntry{}, false, nil
}

func (c *Catalog) list(ctx context.Context, p string) ([]TableEntry, error) {
	resp, err := c.cli.Get(ctx, p, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return nil, fmt.Errorf("tableflow: list tables: %w", err)
	}
	tp := c.prefix + "tables/"
	out := make([]TableEntry, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		ns, name, ok := strings.Cut(strings.TrimPrefix(string(kv.Key), tp), "/")
		if !ok {
			continue
		}
		e, _, err := decodeEntry(ns, name, kv.Value)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}
