package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/auth"
	"github.com/runnel-dev/runnel/internal/tableflow"
)

// Tableflow (DESIGN §7): the etcd catalog over the broker's object store,
// the service materialising this broker's share of the tables, the
// read-only Iceberg REST catalog under /iceberg and the table status
// endpoints (GET /tables, GET /tables/{ns}/{name}).

// tableflowServices is the broker's Tableflow.
type tableflowServices struct {
	catalog *tableflow.Catalog
	service *tableflow.Service
	// ioProps are the file IO properties outside engines need to read
	// the store (S3 endpoint and region; none for a file store).
	ioProps map[string]string
}

// openTableflow opens the catalog and builds the service (started by
// startTableflow once the broker is in the live set).
func (b *Broker) openTableflow(ctx context.Context) error {
	base, props, err := warehouseBase(b.cfg.ObjectStoreURL())
	if err != nil {
		return fmt.Errorf("broker: tableflow: %w", err)
	}
	cat, err := tableflow.OpenCatalog(ctx, tableflow.CatalogOptions{Client: b.cli, IO: tableflow.NewFileIO(b.store, base),
		Logger: b.log.With("component", "tableflow")})
	if err != nil {
		return fmt.Errorf("broker: tableflow catalog: %w", err)
	}
	o := tableflow.Options{
		Client:   b.cli,
		Log:      b.engine,
		Catalog:  cat,
		Cluster:  b.cluster,
		BrokerID: b.cfg.BrokerID,
		// Outside engines could not read encrypted files.
		Encrypted: len(b.cfg.Encryption.Keys) > 0,
		Metrics:   b.metrics(),
		Logger:    b.log.With("component", "tableflow"),
		LeaseTTL:  b.cfg.Etcd.LeaseTTL,
	}
	if b.schemas != nil {
		o.Schemas = b.schemas
	}
	b.tables = tableflowServices{catalog: cat, service: tableflow.New(o), ioProps: props}
	return nil
}

func (b *Broker) startTableflow(ctx context.Context) error {
	if err := b.tables.service.Start(ctx); err != nil {
		return fmt.Errorf("broker: tableflow: %w", err)
	}
	return nil
}

func (s *tableflowServices) close() error {
	if s.service == nil {
		return nil
	}
	return s.service.Close()
}

// warehouseBase returns the URL outside engines know the store's root by
// (the object store URL without its query) and the file IO properties
// they need for it.
func warehouseBase(raw string) (string, map[string]string, error) {
	raw = strings.TrimPrefix(raw, "fault+")
	if !strings.Contains(raw, "://") {
		raw = "file://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", nil, err
	}
	props := map[string]string{}
	if u.Scheme == "s3" {
		q := u.Query()
		if v := q.Get("endpoint"); v != "" {
			props["s3.endpoint"] = v
		}
		if v := q.Get("region"); v != "" {
			props["s3.region"] = v
		}
		if v := q.Get("use_path_style"); v == "true" {
			props["s3.path-style-access"] = "true"
		}
	}
	u.RawQuery, u.Fragment = "", ""
	return strings.TrimRight(u.String(), "/"), props, nil
}

// mountTableflow adds the table endpoints to the HTTP mux: the status
// endpoints are operator endpoints (the cluster's DESCRIBE, like
// /metrics); the REST catalog authorizes per topic.
func (b *Broker) mountTableflow(mux *http.ServeMux, g *auth.Guard) {
	mux.Handle("GET /tables", clusterOnly(g, http.HandlerFunc(b.handleTables)))
	mux.Handle("GET /tables/{ns}/{name}", clusterOnly(g, http.HandlerFunc(b.handleTable)))
	var rest http.Handler = http.StripPrefix("/iceberg", b.tables.catalog.Handler(tableflow.RESTOptions{
		Authorize: topicAuthorizer(g), IOProperties: b.tables.ioProps}))
	if g != nil {
		rest = g.Authenticate(rest)
	}
	mux.Handle("/iceberg/", rest)
}

// handleTables serves GET /tables: every table's status.
func (b *Broker) handleTables(w http.ResponseWriter, r *http.Request) {
	if b.tables.service == nil {
		http.Error(w, "tableflow is starting", http.StatusServiceUnavailable)
		return
	}
	st, err := b.tables.service.Tables(r.Context())
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if st == nil {
		st = []tableflow.TableStatus{}
	}
	writeJSON(w, st)
}

// handleTable serves GET /tables/{ns}/{name}: one table's status.
func (b *Broker) handleTable(w http.ResponseWriter, r *http.Request) {
	if b.tables.service == nil {
		http.Error(w, "tableflow is starting", http.StatusServiceUnavailable)
		return
	}
	st, err := b.tables.service.Table(r.Context(), r.PathValue("ns"), r.PathValue("name"))
	switch {
	case errors.Is(err, tableflow.ErrNoSuchTable), errors.Is(err, tableflow.ErrNoSuchNamespace):
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	case err != nil:
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeJSON(w, st)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// topicAuthorizer is the REST catalog's per-topic check: READ to load a
// table, and no writes (refused by the catalog whatever the ACLs).
func topicAuthorizer(g *auth.Guard) func(r *http.Request, topic string, write bool) bool {
	if g == nil {
		return nil
	}
	return func(r *http.Request, topic string, write bool) bool {
		op := kmsg.ACLOperationRead
		if write {
			op = kmsg.ACLOperationWrite
		}
		return g.Authorized(r.Context(), op, kmsg.ACLResourceTypeTopic, topic)
	}
}
