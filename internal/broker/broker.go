package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/runnel-dev/runnel/internal/auth"
	"github.com/runnel-dev/runnel/internal/cluster"
	"github.com/runnel-dev/runnel/internal/config"
	"github.com/runnel-dev/runnel/internal/groups"
	"github.com/runnel-dev/runnel/internal/metadata"
	"github.com/runnel-dev/runnel/internal/objstore"
	"github.com/runnel-dev/runnel/internal/protocol"
	"github.com/runnel-dev/runnel/internal/registry"
	"github.com/runnel-dev/runnel/internal/registry/rules"
	"github.com/runnel-dev/runnel/internal/retry"
	"github.com/runnel-dev/runnel/internal/stream"
	"github.com/runnel-dev/runnel/internal/telemetry/lag"
)

// Broker is one running Runnel broker.
type Broker struct {
	cfg config.Config
	log *slog.Logger

	embedded *metadata.Embedded
	cli      *clientv3.Client
	store    objstore.Store
	engine   *stream.Engine
	cluster  *cluster.Cluster
	groups   *groups.Coordinator
	shares   shareServices      // share groups (share.go)
	retries  *retry.Tables      // parked-keys tables of ordered retry policies (retry.go)
	tables   tableflowServices  // Iceberg tables of topics (tableflow.go)
	gov      governanceServices // catalog, lineage, access, AsyncAPI, portal (governance.go)
	server   *protocol.Server
	registry *prometheus.Registry
	lag      *lag.Tracker // consumer lag of the groups this broker coordinates (lag.go)

	tls       *auth.ServerTLS // nil without a certificate
	sec       security
	listeners []kafkaListener
	httpLn    net.Listener
	httpSrv   *http.Server

	schemas     *registry.Registry
	ruleEngine  *rules.Engine
	registryLn  net.Listener
	registrySrv *http.Server

	// The HTTP listeners' authenticator and authorizer when not those of
	// sec (httpauth.go).
	authn auth.HTTPAuthenticator
	authz auth.HTTPAuthorizer

	tracing       brokerTracing  // tracing.go
	clientMetrics *clientMetrics // KIP-714 (clientmetrics.go)

	wg               sync.WaitGroup
	stopHousekeeping context.CancelFunc
	closeOnce        sync.Once
	closeErr         error
	ready            chan struct{}
}

// Run starts a broker and serves until ctx ends, then shuts down
// gracefully: it stops accepting requests, answers what it accepted and
// leaves the cluster.
func Run(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	if limit := runtimeMemoryLimit(cfg); limit > 0 && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(limit)
	}
	b, err := Start(ctx, cfg, log)
	if err != nil {
		return err
	}
	log.Info("runnel: serving", "kafka", b.listenerAddrs(), "http", b.HTTPAddr(), "registry", b.RegistryAddr(), "data_dir", cfg.DataDir, "object_store", cfg.ObjectStoreURL())
	<-ctx.Done()
	log.Info("runnel: shutting down")
	return b.Close()
}

// runtimeMemoryLimit is the Go runtime's soft memory limit for cfg, 0 for
// none: memory-limit on top of what the broker keeps by design, its read
// cache and its free lists (protocol's frames and responses, the intake's
// slabs, an archival pass's objects).
//
// The free lists are full whenever the broker runs near its top rate. A
// limit below them left the collector less headroom than one flush's worth
// of garbage: 400 MiB against 416 MiB kept by design, and at full rate
// the runtime collected 7 to 13 times a second and handed memory back to
// the kernel only to fault it in again. A max-rate `runnel bench e2e` on
// S3 spent half the broker's CPU on it and its consumer fell behind at
// 41-43 MB/s; on the file store both sides held 110 MB/s.
func runtimeMemoryLimit(cfg config.Config) int64 {
	limit := cfg.RuntimeMemoryLimit()
	if limit <= 0 {
		return 0
	}
	return limit + protocol.PooledBytes() + stream.PooledBytes()
}

// Start brings a broker up and returns once it serves Kafka and HTTP and
// has joined the cluster's live set.
func Start(ctx context.Context, cfg config.Config, log *slog.Logger) (_ *Broker, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := &Broker{cfg: cfg, log: log, registry: prometheus.NewRegistry(), ready: make(chan struct{})}
	defer func() {
		if err != nil {
			b.Close()
		}
	}()
	b.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("broker: data dir: %w", err)
	}
	if len(cfg.Etcd.Endpoints) == 0 {
		b.embedded, err = metadata.StartEmbedded(ctx, metadata.EmbedConfig{
			Dir: filepath.Join(cfg.DataDir, "etcd"), Name: cfg.Etcd.Name,
			ClientAddr: cfg.Etcd.ClientAddr, PeerAddr: cfg.Etcd.PeerAddr,
		}, log)
		if err != nil {
			return nil, fmt.Errorf("broker: embedded etcd: %w", err)
		}
		b.cli = b.embedded.Client()
	} else {
		b.cli, err = metadata.Connect(ctx, cfg.Etcd.Endpoints, log)
		if err != nil {
			return nil, fmt.Errorf("broker: etcd %v: %w", cfg.Etcd.Endpoints, err)
		}
	}
	if err := b.openRegistry(); err != nil {
		return nil, err
	}
	store, err := objstore.Open(ctx, cfg.ObjectStoreURL())
	if err != nil {
		return nil, fmt.Errorf("broker: object store: %w", err)
	}
	// With encryption.keys set, every object is encrypted at rest; without,
	// a store that holds encrypted objects is refused.
	if b.store, err = objstore.OpenEncrypted(ctx, store, cfg.Encryption.Keys); err != nil {
		return nil, fmt.Errorf("broker: encryption at rest: %w", err)
	}
	now := time.Now
	if off := cfg.ClockOffset; off != 0 {
		log.Warn("broker: clock offset injected (a fault for tests, never for production)", "clock_offset", off)
		now = func() time.Time { return time.Now().Add(off) }
	}
	b.engine, err = stream.Open(ctx, stream.Options{
		BrokerID:           cfg.BrokerID,
		Client:             b.cli,
		Store:              b.store,
		Logger:             log,
		Contracts:          newContracts(b.schemas, b.ruleEngine),
		FlushBytes:         int(cfg.Flush.Bytes),
		FlushLinger:        cfg.Flush.Linger,
		CacheBytes:         cfg.CacheBytes(),
		TopicDefaults:      cfg.TopicDefaults,
		DefaultPartitions:  cfg.DefaultPartitions,
		CheckpointInterval: cfg.Checkpoint.Interval,
		CheckpointEntries:  int64(cfg.Checkpoint.Entries),
		ArchiveInterval:    cfg.Archive.Interval,
		ArchiveMinBytes:    cfg.Archive.MinBytes,
		ArchiveMaxAge:      cfg.Archive.MaxAge,
		Grace:              cfg.Archive.Grace,
		MaxUnarchivedBytes: cfg.Archive.MaxUnarchivedBytes,
		CompactEtcd:        true,
		Registerer:         b.metrics(),
		Now:                now,
	})
	if err != nil {
		return nil, fmt.Errorf("broker: storage engine: %w", err)
	}

	if err := b.openTLS(); err != nil {
		return nil, err
	}
	if err := b.openSecurity(ctx); err != nil {
		return nil, err
	}
	if err := b.openListeners(); err != nil {
		return nil, err
	}
	self, err := advertised(cfg, b.listeners)
	if err != nil {
		return nil, err
	}
	b.cluster = cluster.New(cluster.Options{Client: b.cli, Self: self, ClusterID: cfg.ClusterID, Logger: log,
		LeaseTTL: cfg.Etcd.LeaseTTL, CatchUp: b.engine.SyncRead})
	if err := b.cluster.Start(ctx); err != nil {
		return nil, fmt.Errorf("broker: cluster: %w", err)
	}
	if err := b.openShares(ctx); err != nil {
		return nil, err
	}
	if err := b.openTableflow(ctx); err != nil {
		return nil, err
	}
	if err := b.openGovernance(ctx); err != nil {
		return nil, err
	}
	gopts := groups.Options{
		Client:  b.cli,
		Cluster: b.cluster,
		Logger:  log,
		TopicExists: func(topic string, partition int32) bool {
			t, ok := b.engine.Topic(topic)
			return ok && partition >= 0 && partition < t.Partitions
		},
		TopicName: func(id protocol.TopicID) (string, bool) {
			t, ok := b.engine.TopicByID(id)
			return t.Name, ok
		},
		TopicID: func(name string) (protocol.TopicID, bool) {
			t, ok := b.engine.Topic(name)
			return t.ID, ok
		},
		Txns:                      b.engine,
		Topics:                    b.engine.Topics,
		ConsumerHeartbeatInterval: cfg.Groups.ConsumerHeartbeatInterval,
		ConsumerSessionTimeout:    cfg.Groups.ConsumerSessionTimeout,
	}
	b.shares.groupsOptions(&gopts)
	b.groups = groups.New(gopts)
	if err := b.groups.Start(ctx); err != nil {
		return nil, fmt.Errorf("broker: group coordinator: %w", err)
	}
	popts := protocol.Options{
		Log:                logAdapter{b.engine},
		Cluster:            b.cluster,
		Groups:             b.groups,
		Logger:             log,
		MaxRequestBytes:    cfg.MaxRequestBytes,
		AutoCreateTopics:   cfg.AutoCreateTopics,
		DefaultPartitions:  cfg.DefaultPartitions,
		Metrics:            b.metrics(),
		BrokerConfigs:      func() []config.Def { return config.BrokerDefs(cfg) },
		LogDir:             cfg.ObjectStoreURL(),
		ReadBarrierTimeout: readBarrierTimeout(cfg.Etcd.LeaseTTL),
		// The clock LogAppendTime stamps with, so delayed topics are due
		// on the same clock their timestamps came from.
		Now: now,
	}
	b.shares.protocolOptions(&popts, b.groups)
	b.retryOptions(&popts)
	b.lineageProtocolOptions(&popts)
	if cfg.Telemetry.MetricsOn() {
		if err := b.openClientMetrics(ctx, &popts); err != nil {
			return nil, err
		}
	}
	b.sec.protocolOptions(&popts, cfg.SASL.FailureDelay, cfg.SASL.MaxReauth)
	if err := b.startTracing(ctx, &popts); err != nil {
		return nil, err
	}
	b.server = protocol.NewServer(popts)
	b.serveListeners()
	if err := b.startRegistry(); err != nil {
		return nil, err
	}
	if err := b.startHTTP(); err != nil {
		return nil, err
	}
	// Join the live set only once caught up with the log (DESIGN §5a rule 7).
	if err := b.engine.SyncRead(ctx); err != nil {
		return nil, fmt.Errorf("broker: catching up: %w", err)
	}
	if err := b.cluster.Register(ctx); err != nil {
		return nil, fmt.Errorf("broker: registering: %w", err)
	}
	if err := b.cluster.WaitCoordinators(ctx); err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	if err := b.startTableflow(ctx); err != nil {
		return nil, err
	}
	hctx, hcancel := context.WithCancel(context.Background())
	b.stopHousekeeping = hcancel
	b.wg.Add(2)
	go b.watchEtcdSize(hctx)
	go b.guardServing(hctx)
	if err := b.startLag(hctx); err != nil {
		return nil, fmt.Errorf("broker: consumer lag: %w", err)
	}
	close(b.ready)
	return b, nil
}

func (b *Broker) startHTTP() error {
	ln, err := b.listenHTTP(b.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("broker: http listener: %w", err)
	}
	b.httpLn = ln
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-b.ready:
		default:
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		if !b.cluster.Healthy() || b.server.Suspended() {
			http.Error(w, "metadata store unreachable or catching up: not serving", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	// The probes stay anonymous; the rest needs the cluster's DESCRIBE.
	g := b.httpGuard()
	if b.cfg.Telemetry.MetricsOn() {
		mux.Handle("GET /metrics", clusterOnly(g, promhttp.HandlerFor(b.registry, promhttp.HandlerOpts{})))
	} else {
		mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "metrics are off on this broker (telemetry.metrics: false)", http.StatusNotFound)
		})
	}
	mux.Handle("GET /share/groups/{group}", clusterOnly(g, http.HandlerFunc(b.handleShareStates)))
	b.mountTableflow(mux, g)
	b.mountGovernance(mux, g)
	mux.Handle("/debug/pprof/", clusterOnly(g, http.HandlerFunc(pprof.Index)))
	mux.Handle("/debug/pprof/profile", clusterOnly(g, http.HandlerFunc(pprof.Profile)))
	mux.Handle("/debug/pprof/trace", clusterOnly(g, http.HandlerFunc(pprof.Trace)))
	b.httpSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		if err := b.httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			b.log.Error("broker: http server stopped", "err", err)
		}
	}()
	return nil
}

// KafkaAddr is the bound address of the first Kafka listener.
func (b *Broker) KafkaAddr() string { return b.listeners[0].ln.Addr().String() }

// HTTPAddr is the bound HTTP listener address.
func (b *Broker) HTTPAddr() string { return b.httpLn.Addr().String() }

// Engine exposes the storage engine (tests and tools).
func (b *Broker) Engine() *stream.Engine { return b.engine }

// EtcdClientURL is the embedded etcd member's client URL, or "" when the
// broker uses an external etcd.
func (b *Broker) EtcdClientURL() string {
	if b.embedded == nil {
		return ""
	}
	return b.embedded.ClientURL()
}

// Close shuts the broker down: stop taking requests, answer the accepted
// ones (the engine flushes and waits for the sequencer), leave the cluster,
// and close the stores.
func (b *Broker) Close() error {
	b.closeOnce.Do(func() {
		var errs []error
		if b.httpSrv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			b.httpSrv.Shutdown(ctx)
			cancel()
		}
		b.stopRegistryListener()
		if b.server != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			b.server.Shutdown(ctx)
			cancel()
		} else {
			b.closeListeners()
		}
		errs = append(errs, b.stopTracing())
		errs = append(errs, b.clientMetrics.close())
		if b.stopHousekeeping != nil {
			b.stopHousekeeping()
		}
		if b.retries != nil {
			errs = append(errs, b.retries.Close())
		}
		if b.groups != nil {
			errs = append(errs, b.groups.Close())
		}
		errs = append(errs, b.shares.close())
		errs = append(errs, b.tables.close())
		errs = append(errs, b.closeGovernance()...)
		if b.engine != nil {
			errs = append(errs, b.engine.Close())
		}
		if b.schemas != nil {
			errs = append(errs, b.schemas.Close())
		}
		errs = append(errs, b.sec.close()...)
		if b.cluster != nil {
			errs = append(errs, b.cluster.Close())
		}
		b.wg.Wait()
		if b.store != nil {
			errs = append(errs, b.store.Close())
		}
		if b.embedded != nil {
			errs = append(errs, b.embedded.Close())
		} else if b.cli != nil {
			errs = append(errs, b.cli.Close())
		}
		b.closeErr = errors.Join(errs...)
	})
	return b.closeErr
}
