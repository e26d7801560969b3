package metadata

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.etcd.io/etcd/server/v3/etcdserver"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3client"
)

// Sentinel errors.
var (
	// ErrInvalidConfig means an EmbedConfig or endpoint list is unusable.
	ErrInvalidConfig = errors.New("metadata: invalid configuration")
	// ErrUnavailable means etcd could not be reached or did not become ready.
	ErrUnavailable = errors.New("metadata: etcd unavailable")
)

// Backend quotas: the embedded member's, and etcd's default that an
// external cluster has unless its operator raised it. etcd turns read-only
// at its quota.
const (
	EmbeddedQuotaBytes = 8 << 30
	DefaultQuotaBytes  = 2 << 30
)

// Limits and timings of the embedded member (DESIGN §10).
const (
	tickMs          = 10
	electionMs      = 100
	maxTxnOps       = 1024
	maxRequestBytes = 8 << 20
	// compactionBatchLimit is the revisions etcd deletes per compaction
	// batch (its default is 1,000).
	compactionBatchLimit = 100
	// clientMaxSend leaves room for gRPC framing above the server's request cap.
	clientMaxSend      = maxRequestBytes + 512<<10
	defaultDialTimeout = 5 * time.Second
)

// EmbedConfig configures the embedded etcd member.
type EmbedConfig struct {
	// Dir is the member's data directory (created if missing).
	Dir string
	// Name is the member's name in the cluster.
	Name string
	// ClientAddr and PeerAddr are host:port to listen on, e.g. "127.0.0.1:2379".
	ClientAddr string
	PeerAddr   string
}

func (c EmbedConfig) validate() error {
	var errs []error
	if strings.TrimSpace(c.Dir) == "" {
		errs = append(errs, fmt.Errorf("%w: Dir must not be empty", ErrInvalidConfig))
	}
	if strings.TrimSpace(c.Name) == "" {
		errs = append(errs, fmt.Errorf("%w: Name must not be empty", ErrInvalidConfig))
	}
	for _, a := range []struct{ name, v string }{{"ClientAddr", c.ClientAddr}, {"PeerAddr", c.PeerAddr}} {
		if _, port, err := net.SplitHostPort(a.v); err != nil {
			errs = append(errs, fmt.Errorf("%w: %s %q is not host:port", ErrInvalidConfig, a.name, a.v))
		} else if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
			errs = append(errs, fmt.Errorf("%w: %s %q needs a port in 1..65535", ErrInvalidConfig, a.name, a.v))
		}
	}
	if c.ClientAddr != "" && c.ClientAddr == c.PeerAddr {
		errs = append(errs, fmt.Errorf("%w: ClientAddr and PeerAddr are both %q", ErrInvalidConfig, c.ClientAddr))
	}
	return errors.Join(errs...)
}

// Embedded is a running single etcd member inside this process.
type Embedded struct {
	etcd      *embed.Etcd
	client    *clientv3.Client
	clientURL string
	log       *slog.Logger
	closeOnce sync.Once
}

// StartEmbedded starts an etcd member with data in cfg.Dir and returns once
// it is ready to serve (or ctx ends). An existing data directory is reused,
// so a restarted member keeps its data. The member has fsync on, a 10 ms
// heartbeat and 100 ms election timeout, MaxTxnOps 1024, 8 MiB requests and
// an 8 GiB backend quota; etcd's own logging is forwarded to log at error
// level only.
func StartEmbedded(ctx context.Context, cfg EmbedConfig, log *slog.Logger) (*Embedded, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("metadata: data dir: %w", err)
	}
	curl := url.URL{Scheme: "http", Host: cfg.ClientAddr}
	purl := url.URL{Scheme: "http", Host: cfg.PeerAddr}

	ec := embed.NewConfig()
	ec.Name = cfg.Name
	ec.Dir = cfg.Dir
	ec.ListenClientUrls = []url.URL{curl}
	ec.AdvertiseClientUrls = []url.URL{curl}
	ec.ListenPeerUrls = []url.URL{purl}
	ec.AdvertisePeerUrls = []url.URL{purl}
	ec.InitialCluster = ec.InitialClusterFromName(cfg.Name)
	ec.InitialClusterToken = "runnel"
	ec.TickMs = tickMs
	ec.ElectionMs = electionMs
	ec.MaxTxnOps = maxTxnOps
	ec.MaxRequestBytes = maxRequestBytes
	ec.QuotaBackendBytes = EmbeddedQuotaBytes
	// Delete compacted revisions in small batches: each batch holds the
	// backend's write lock, so etcd's default of 1,000 revisions a batch
	// stalled intake puts for tens of milliseconds whenever the log was
	// compacted under load.
	ec.CompactionBatchLimit = compactionBatchLimit
	ec.UnsafeNoFsync = false
	ec.EnableGRPCGateway = false
	ec.Logger = "zap"
	ec.LogLevel = "error"
	ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(newZapLogger(log))

	start := time.Now()
	e, err := startEtcd(ec)
	if err != nil {
		return nil, fmt.Errorf("%w: start embedded member %s in %s: %w", ErrUnavailable, cfg.Name, cfg.Dir, err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("%w: embedded member %s: %w", ErrUnavailable, cfg.Name, err)
	case <-ctx.Done():
		e.Server.Stop()
		e.Close()
		return nil, fmt.Errorf("%w: embedded member %s not ready: %w", ErrUnavailable, cfg.Name, ctx.Err())
	}
	client := v3client.New(e.Server)
	// v3client's maintenance server has no health notifier, so its
	// Defragment dereferences nil (etcd v3.7.3); defragment directly.
	client.Maintenance = &inProcessMaintenance{Maintenance: client.Maintenance, srv: e.Server}
	m := &Embedded{etcd: e, client: client, log: log}
	m.clientURL = "http://" + e.Clients[0].Addr().String()
	log.Info("embedded etcd ready", "name", cfg.Name, "dir", cfg.Dir, "client_url", m.clientURL,
		"startup", time.Since(start).Round(time.Millisecond))
	return m, nil
}

// startEtcd is embed.StartEtcd with a panic turned into an error: on a
// member directory whose files were emptied (a full disk, an operator's
// mistake), etcd v3.7.3's bootstrap dereferences nil instead of returning
// an error, and the broker died with a goroutine dump instead of saying
// which directory is damaged. Whatever etcd had opened before it panicked
// stays open; the caller is expected to give up.
func startEtcd(ec *embed.Config) (e *embed.Etcd, err error) {
	defer func() {
		if r := recover(); r != nil {
			e, err = nil, fmt.Errorf("etcd failed opening its files, which may be damaged: %v", r)
		}
	}()
	return embed.StartEtcd(ec)
}

// inProcessMaintenance replaces Defragment of the in-process client.
type inProcessMaintenance struct {
	clientv3.Maintenance
	srv *etcdserver.EtcdServer
}

func (m *inProcessMaintenance) Defragment(ctx context.Context, endpoint string) (*clientv3.DefragmentResponse, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := m.srv.Defragment(); err != nil {
		return nil, err
	}
	return &clientv3.DefragmentResponse{}, nil
}

// Client returns the in-process client: calls go straight to the server
// without gRPC or sockets. It is closed by Close; callers must not close it.
func (e *Embedded) Client() *clientv3.Client { return e.client }

// ClientURL returns the URL other processes use to reach this member.
func (e *Embedded) ClientURL() string { return e.clientURL }

// Close stops the member and waits for it to finish. It is idempotent.
func (e *Embedded) Close() error {
	var err error
	e.closeOnce.Do(func() {
		err = e.client.Close()
		if errors.Is(err, context.Canceled) {
			err = nil
		}
		e.etcd.Close()
	})
	return err
}

// Connect returns a client for an external etcd cluster after checking that
// at least one endpoint answers within ctx (and a 5 s dial timeout).
// Endpoints are "host:port" or URLs.
func Connect(ctx context.Context, endpoints []string, log *slog.Logger) (*clientv3.Client, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if len(endpoints) == 0 {
		return nil, fmt.Errorf("%w: no etcd endpoints", ErrInvalidConfig)
	}
	for _, ep := range endpoints {
		if strings.TrimSpace(ep) == "" {
			return nil, fmt.Errorf("%w: empty etcd endpoint", ErrInvalidConfig)
		}
	}
	c, err := clientv3.New(clientv3.Config{
		Endpoints:          endpoints,
		DialTimeout:        defaultDialTimeout,
		DialKeepAliveTime:  10 * time.Second,
		MaxCallSendMsgSize: clientMaxSend,
		Logger:             newZapLogger(log),
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %v: %w", ErrUnavailable, endpoints, err)
	}
	var errs []error
	for _, ep := range endpoints {
		sctx, cancel := context.WithTimeout(ctx, defaultDialTimeout)
		_, err := c.Status(sctx, ep)
		cancel()
		if err == nil {
			return c, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", ep, err))
	}
	_ = c.Close()
	return nil, fmt.Errorf("%w: %w", ErrUnavailable, errors.Join(errs...))
}

// Compact discards revisions older than rev. A revision that is already
// compacted is not an error.
func Compact(ctx context.Context, c *clientv3.Client, rev int64) error {
	if rev <= 0 {
		return fmt.Errorf("%w: compact revision %d must be > 0", ErrInvalidConfig, rev)
	}
	_, err := c.Compact(ctx, rev)
	if err == nil || errors.Is(err, rpctypes.ErrCompacted) {
		return nil
	}
	return fmt.Errorf("metadata: compact to revision %d: %w", rev, err)
}

// Defragment defragments each endpoint's backend in turn (it blocks that
// member's writes while it runs, so members are done one at a time). For the
// in-process client the endpoint is ignored and the local member is done.
func Defragment(ctx context.Context, c *clientv3.Client, endpoints []string) error {
	if len(endpoints) == 0 {
		return fmt.Errorf("%w: no endpoints to defragment", ErrInvalidConfig)
	}
	for _, ep := range endpoints {
		if _, err := c.Defragment(ctx, ep); err != nil {
			return fmt.Errorf("metadata: defragment %s: %w", ep, err)
		}
	}
	return nil
}

// DBSize returns the size in bytes of the endpoint's backend database file,
// the number etcd compares with its quota.
func DBSize(ctx context.Context, c *clientv3.Client, endpoint string) (int64, error) {
	st, err := c.Status(ctx, endpoint)
	if err != nil {
		return 0, fmt.Errorf("metadata: status of %s: %w", endpoint, err)
	}
	return st.DbSize, nil
}
