package protocol

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.opentelemetry.io/otel/trace"

	"github.com/runnel-dev/runnel/internal/config"
	"github.com/runnel-dev/runnel/internal/wire"
)

// Options configures a Server. Log, Cluster and Logger are required; Groups
// may be nil, in which case the group APIs are neither served nor advertised.
type Options struct {
	Log     Log
	Cluster Cluster
	Groups  Groups
	Logger  *slog.Logger
	// SCRAM is the SCRAM credential store; nil leaves
	// DescribeUserScramCredentials and AlterUserScramCredentials neither
	// served nor advertised.
	SCRAM SCRAMCredentials
	// MaxRequestBytes bounds one request frame (wire.DefaultMaxFrameBytes
	// when <= 0).
	MaxRequestBytes int32
	// AutoCreateTopics creates unknown topics named in Metadata requests
	// that allow it.
	AutoCreateTopics bool
	// DefaultPartitions is the partition count of auto-created topics
	// (<= 0 lets the Log choose its default).
	DefaultPartitions int32
	// Metrics, when non-nil, receives the request metrics.
	Metrics prometheus.Registerer
	// BrokerConfigs returns the broker configs for DescribeConfigs; nil
	// reports none. Broker configs are read-only.
	BrokerConfigs func() []config.Def
	// LogDir names the single log directory reported by DescribeLogDirs
	// (the object store's name); "object-store" when empty.
	LogDir string
	// FetchSessions bounds the KIP-227 fetch session cache (1000 when <= 0).
	FetchSessions int
	// ReadBarrierTimeout bounds the wait for Log.SyncRead before a read
	// that needs fresh state is answered (barrier.go);
	// DefaultReadBarrierTimeout when <= 0.
	ReadBarrierTimeout time.Duration
	// SASL runs SASL exchanges on SASL listeners; nil: no mechanism is
	// enabled (a SASL listener then authenticates nobody).
	SASL Authenticator
	// SASLFailureDelay is how long a failed authentication waits before
	// it is answered and the connection closed.
	SASLFailureDelay time.Duration
	// MaxReauth bounds a SASL session (KIP-368 connections.max.reauth.ms);
	// 0: sessions end only when their credential expires.
	MaxReauth time.Duration
	// Now is the clock for session expiry (time.Now when nil).
	Now func() time.Time
	// Authorizer checks every request against the ACLs (authz.go); nil,
	// or one whose Enabled method reports false, turns authorization off.
	// When it also implements ACLAdmin it serves the ACL APIs.
	Authorizer Authorizer
	// Quotas, when non-nil, enforces client quotas (throttle.go) and
	// serves DescribeClientQuotas and AlterClientQuotas (quotas.go); nil
	// neither enforces nor serves them.
	Quotas Quotas
	// Tracer, when non-nil, traces Produce and Fetch requests (trace.go);
	// nil traces nothing and costs nothing.
	Tracer trace.Tracer
	// ClientMetrics, when non-nil, serves KIP-714 client metrics and the
	// CLIENT_METRICS config resources (telemetry.go); nil neither.
	ClientMetrics ClientMetrics
	// Shares, when non-nil, serves ShareFetch and ShareAcknowledge
	// (sharefetch.go); nil neither serves nor advertises them.
	Shares Shares
	// ShareSessions bounds the share session cache (Kafka's
	// group.share.max.share.sessions; 2000 when <= 0).
	ShareSessions int
	// ShareGroups, when non-nil, serves ShareGroupHeartbeat,
	// ShareGroupDescribe and the share group offsets APIs
	// (sharegroups.go); nil neither serves nor advertises them.
	ShareGroups ShareGroups
	// GroupConfigs, when non-nil, serves the GROUP config resource in
	// DescribeConfigs, AlterConfigs and IncrementalAlterConfigs
	// (configs.go); nil answers it INVALID_REQUEST.
	GroupConfigs GroupConfigs
	// Lineage, when non-nil, is told what each connection's client
	// produces, fetches and commits (lineage.go); nil observes nothing
	// and costs nothing.
	Lineage Lineage
}

// Server serves the Kafka protocol. It is safe for concurrent use.
type Server struct {
	opts     Options
	log      *slog.Logger
	apis     map[int16]api
	metrics  *metrics
	sessions *sessionCache
	// shareSessions are the KIP-932 share sessions (sharesession.go).
	shareSessions *shareSessionCache

	baseCtx context.Context
	cancel  context.CancelFunc

	mu        sync.Mutex
	closed    bool
	suspended bool // see Suspend
	listeners map[net.Listener]struct{}
	conns     map[net.Conn]context.CancelFunc // cancels the connection's requests
	wg        sync.WaitGroup
	connWG    sync.WaitGroup // connection goroutines only
	// draining is closed by Shutdown: long polls answer at once.
	draining  chan struct{}
	drainOnce sync.Once
}

// ErrServerClosed is returned by Serve after Close.
var ErrServerClosed = errors.New("protocol: server closed")

// NewServer builds a Server. It registers metrics on opts.Metrics when set
// and panics only if that registration collides (a wiring bug, not input).
func NewServer(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxRequestBytes <= 0 {
		opts.MaxRequestBytes = wire.DefaultMaxFrameBytes
	}
	if opts.LogDir == "" {
		opts.LogDir = "object-store"
	}
	if opts.FetchSessions <= 0 {
		opts.FetchSessions = 1000
	}
	if opts.ShareSessions <= 0 {
		opts.ShareSessions = 2000
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.ReadBarrierTimeout <= 0 {
		opts.ReadBarrierTimeout = DefaultReadBarrierTimeout
	}
	opts.Authorizer = activeAuthorizer(opts.Authorizer)
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		opts:          opts,
		log:           opts.Logger,
		metrics:       newMetrics(opts.Metrics),
		sessions:      newSessionCache(opts.FetchSessions),
		shareSessions: newShareSessionCache(opts.ShareSessions),
		draining:      make(chan struct{}),
		baseCtx:       ctx,
		cancel:        cancel,
		listeners:     make(map[net.Listener]struct{}),
		conns:         make(map[net.Conn]context.CancelFunc),
	}
	s.apis = make(map[int16]api)
	for _, a := range apiTable() {
		if a.groups && opts.Groups == nil || a.scram && opts.SCRAM == nil || a.quotas && opts.Quotas == nil || a.kip714 && opts.ClientMetrics == nil ||
			a.shares && opts.Shares == nil || a.shareGroups && opts.ShareGroups == nil {
			continue
		}
		s.apis[a.key] = a
	}
	return s
}

// Serve serves ln as the single PLAINTEXT listener (DefaultListener).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	return s.ServeListener(ctx, ln, Listener{Name: DefaultListener})
}

// ServeListener accepts connections on ln until ctx ends or Close is
// called, authenticating clients as l says; it closes ln before returning.
// It returns nil on ctx end, ErrServerClosed after Close, or the accept
// error.
func (s *Server) ServeListener(ctx context.Context, ln net.Listener, l Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()

	stop := make(chan struct{})
	go func() { // owned by Serve: ends when Serve returns
		defer s.wg.Done()
		select {
		case <-ctx.Done():
		case <-s.baseCtx.Done():
		case <-stop:
		}
		_ = ln.Close()
	}()
	defer close(stop)
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()

	for {
		c, err := ln.Accept()
		if err != nil {
			switch {
			case s.baseCtx.Err() != nil:
				return ErrServerClosed
			case ctx.Err() != nil:
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("protocol: accept: %w", err)
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = c.Close()
			return ErrServerClosed
		}
		if s.suspended {
			s.mu.Unlock()
			_ = c.Close()
			continue
		}
		cctx, cancel := context.WithCancel(s.baseCtx)
		s.conns[c] = cancel
		s.wg.Add(1)
		s.connWG.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			defer s.connWG.Done()
			defer cancel()
			s.serveConn(ctx, cctx, c, l)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

// Shutdown stops accepting connections and reading requests, lets every
// connection answer the requests it already read (produces waiting for the
// sequencer included), then closes them. When ctx ends first it closes
// what is left, like Close.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	for ln := range s.listeners {
		_ = ln.Close()
	}
	for c := range s.conns {
		if tc, ok := c.(interface{ CloseRead() error }); ok {
			_ = tc.CloseRead()
		} else {
			_ = c.Close()
		}
	}
	s.drainOnce.Do(func() { close(s.draining) })
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.connWG.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	return s.Close()
}

// Suspend stops serving without stopping the server: every client
// connection is closed, and until Resume each new one is closed as soon as
// it is accepted. A broker suspends itself when it can no longer vouch for
// its state (cut off from etcd for longer than its lease, DESIGN §5a
// rule 7).
//
// Closing, rather than answering each request with an error, is what every
// Kafka client handles uniformly: the broker looks down, so requests in
// flight are retried (an idempotent produce is deduplicated by the
// sequencer), and metadata, coordinators and partition leaders are looked
// up on the other brokers, which have dropped this one from the live set
// once its lease expired. Answered errors would keep clients attached: this
// broker's own Metadata would keep naming it the leader of its partitions
// and clients would retry on it until the cut ends.
func (s *Server) Suspend() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.suspended {
		return
	}
	s.suspended = true
	for c, cancel := range s.conns {
		cancel() // a request blocked on etcd returns now
		_ = c.Close()
	}
}

// Resume serves new connections again after Suspend.
func (s *Server) Resume() {
	s.mu.Lock()
	s.suspended = false
	s.mu.Unlock()
}

// Suspended reports whether the server is suspended.
func (s *Server) Suspended() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.suspended
}

// Close stops accepting, closes every connection and waits for every
// goroutine the server started.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	s.cancel()
	for ln := range s.listeners {
		_ = ln.Close()
	}
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// APIVersions returns the served api keys and version ranges, sorted by key.
func (s *Server) APIVersions() []kmsg.ApiVersionsResponseApiKey {
	return s.advertised()
}

func (s *Server) write(c *conn, corr int32, resp kmsg.Response) error {
	if hint := responseSizeHint(resp); hint > 0 {
		c.out = responseBuffer(c.out, hint) // respbuf.go
	}
	c.out = wire.AppendResponse(c.out[:0], corr, resp)
	_, err := c.Write(c.out)
	if cap(c.out) > largeResponse { // do not pin a large fetch buffer per idle connection
		releaseResponseBuffer(c.out)
		c.out = nil
	}
	if err != nil {
		return fmt.Errorf("write response: %w", err)
	}
	return nil
}

// writeRaw writes a bare length-prefixed SASL token (SaslHandshake v0).
func (s *Server) writeRaw(c *conn, token []byte) error {
	c.out = binary.BigEndian.AppendUint32(c.out[:0], uint32(len(token)))
	c.out = append(c.out, token...)
	if _, err := c.Write(c.out); err != nil {
		return fmt.Errorf("write SASL token: %w", err)
	}
	return nil
}

func (s *Server) now() time.Time { return s.opts.Now() }

// reqCtx carries per-request facts handlers need.
type reqCtx struct {
	hdr  wire.RequestHeader
	sess *session
	log  *slog.Logger
	// closeAfter closes the connection once the response is written.
	closeAfter bool
}

func (r *reqCtx) version() int16 { return r.hdr.APIVersion }
