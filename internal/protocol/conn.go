package protocol

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/bufs"
	"github.com/runnel-dev/runnel/internal/peer"
	"github.com/runnel-dev/runnel/internal/wire"
)

// conn is one client connection's state.
type conn struct {
	net.Conn
	remote string
	out    []byte // touched only by the writer
}

// pending is one response waiting its turn on a connection. wait, when set,
// blocks until the response is complete (a produce waiting for the
// sequencer); a nil response from wait means none is sent (acks=0).
type pending struct {
	corr    int32
	version int16
	key     int16
	resp    kmsg.Response
	wait    func() (kmsg.Response, error)
	// raw, when set, is a bare SASL token to send instead of a response
	// (after a SaslHandshake v0).
	raw []byte
	// close closes the connection once the response is written (a failed
	// authentication).
	close bool
	// release, if set, is called once the response is written: it hands
	// the request's frame back to frameBufs.
	release func()
}

// frameBufs keeps request frames of 64 KiB to 64 MiB for reuse, up to 96
// MiB in all (a producer at full speed sends requests of 8 to 16 MiB: one
// batch of up to 1 MB per partition). Only a
// Produce request's frame is handed back, once its response is written:
// by then the intake has copied its batches (stream's flush slabs) and the
// response has been built. Other requests' decoded fields may live on in
// the broker's state (a group member's metadata, say), so their frames are
// left to the collector.
var frameBufs = bufs.New(64<<10, 64<<20, 96<<20)

// maxPipelined bounds the responses of one connection that may be waiting
// to be written (produce requests waiting for the sequencer).
const maxPipelined = 16

// serveConn reads frames on one goroutine and handles them in order on this
// one. Produce requests are pipelined: each is validated and queued in the
// intake buffer in request order, and its response is written, in order,
// once sequenced, while the next produce is already being handled. Any
// other request first waits until every earlier response is written, so it
// observes the effects of the produces before it (DESIGN §5a rule 2).
// connCtx ends when Suspend drops the connection: requests blocked on the
// metadata store return.
func (s *Server) serveConn(parent, connCtx context.Context, nc net.Conn, l Listener) {
	ctx, cancel := context.WithCancel(connCtx)
	ctx, muted := withThrottle(ctx) // client quotas: throttle.go
	stopParent := context.AfterFunc(parent, cancel)
	defer stopParent()
	c := &conn{Conn: nc, remote: nc.RemoteAddr().String()}
	sess := newSession(l, c.remote)
	s.openLineage(sess) // lineage.go
	defer closeLineage(sess)
	s.metrics.connOpened(l.Name)
	defer func() { s.metrics.connClosed(l.Name, sess.software) }()
	if l.TLS != nil {
		tc, err := s.tlsHandshake(ctx, nc, sess)
		if err != nil {
			_ = nc.Close()
			s.log.Info("closing connection: TLS", "remote", c.remote, "listener", l.Name, "err", err)
			return
		}
		nc, c.Conn = tc, tc
	}

	frames := make(chan frame, 8)
	var readErr error
	var rwg sync.WaitGroup
	rwg.Add(1)
	go func() { // owned by serveConn: ends on read error or cancel
		defer rwg.Done()
		defer close(frames)
		for {
			f, err := wire.ReadFrameInto(nc, s.opts.MaxRequestBytes, frameBufs.Get)
			if err != nil {
				readErr = err
				return
			}
			select {
			case frames <- frame{f, time.Now()}:
			case <-ctx.Done():
				return
			}
		}
	}()

	queue := make(chan pending, maxPipelined)
	var inflight sync.WaitGroup
	var wwg sync.WaitGroup
	wwg.Add(1)
	go func() { // the writer: owned by serveConn, ends when queue closes
		defer wwg.Done()
		var failed bool
		for p := range queue {
			if !failed {
				err := s.complete(c, p)
				if err != nil {
					s.log.Info("closing connection", "remote", c.remote, "err", err)
				}
				if err != nil || p.close {
					failed = true
					cancel()
					_ = nc.Close()
				}
			}
			inflight.Done()
		}
	}()
	defer func() {
		close(queue)
		wwg.Wait()
		cancel()
		_ = nc.Close()
		rwg.Wait()
		s.closeShareSessions(sess) // sharefetch.go
		if readErr != nil && !errors.Is(readErr, io.EOF) && !errors.Is(readErr, net.ErrClosed) {
			s.log.Info("closing connection", "remote", c.remote, "err", readErr)
		}
	}()

	for f := range frames {
		if muted.wait(ctx) != nil { // a throttled client waits (KIP-219)
			break
		}
		var p pending
		var err error
		if sess.rawTokens {
			p, err = s.handleRawToken(ctx, sess, f.b)
		} else {
			p, err = s.handleFrame(ctx, f, sess, inflight.Wait)
		}
		if err != nil {
			inflight.Wait()
			s.log.Info("closing connection", "remote", c.remote, "err", err)
			return
		}
		if p.resp == nil && p.wait == nil && p.raw == nil {
			continue
		}
		inflight.Add(1)
		queue <- p
		if ctx.Err() != nil {
			return
		}
	}
	inflight.Wait()
}

// complete waits for a pending response if needed and writes it.
func (s *Server) complete(c *conn, p pending) error {
	if p.raw != nil {
		return s.writeRaw(c, p.raw)
	}
	resp := p.resp
	if p.wait != nil {
		var err error
		if resp, err = p.wait(); err != nil {
			return fmt.Errorf("%s v%d (correlation_id %d): %w", kmsg.NameForKey(p.key), p.version, p.corr, err)
		}
		if resp == nil {
			return nil
		}
	}
	resp.SetVersion(p.version)
	start := time.Now()
	err := s.write(c, p.corr, resp)
	s.metrics.phase(p.key, phaseRespond, start, time.Now())
	if p.release != nil {
		p.release()
	}
	return err
}

// frame is one request frame and when it was read.
type frame struct {
	b    []byte
	read time.Time
}

// handleFrame decodes and dispatches one request and returns its response,
// or a pending one for a pipelined produce. drain waits until every earlier
// response on the connection is written. An error means the connection
// must be closed.
func (s *Server) handleFrame(ctx context.Context, f frame, sess *session, drain func()) (pending, error) {
	start := time.Now()
	h, body, err := wire.ParseRequestHeader(f.b)
	if err != nil {
		s.metrics.observe(h.APIKey, start, true)
		return pending{}, fmt.Errorf("request header (api_key %d, correlation_id %d): %w", h.APIKey, h.CorrelationID, err)
	}
	a, ok := s.apis[h.APIKey]
	if !ok {
		s.metrics.observe(h.APIKey, start, true)
		return pending{}, fmt.Errorf("api key %d (%s) not served", h.APIKey, kmsg.NameForKey(h.APIKey))
	}
	if h.APIVersion < a.min || h.APIVersion > a.max {
		s.metrics.observe(h.APIKey, start, true)
		if h.APIKey == kmsg.ApiVersions.Int16() {
			// KIP-511: answer v0 with the supported ranges.
			return pending{corr: h.CorrelationID, key: h.APIKey, resp: s.unsupportedApiVersions()}, nil
		}
		return pending{}, fmt.Errorf("api key %d (%s) version %d not served (%d-%d)", h.APIKey, kmsg.NameForKey(h.APIKey), h.APIVersion, a.min, a.max)
	}
	if !sess.mayServe(h.APIKey, s.now()) {
		s.metrics.observe(h.APIKey, start, true)
		return pending{}, fmt.Errorf("%s (correlation_id %d) on listener %s: %w", kmsg.NameForKey(h.APIKey), h.CorrelationID, sess.listener.Name, errSASLRequired)
	}
	req := kmsg.RequestForKey(h.APIKey)
	req.SetVersion(h.APIVersion)
	if err := req.ReadFrom(body); err != nil {
		s.metrics.observe(h.APIKey, start, true)
		return pending{}, fmt.Errorf("decode %s v%d (correlation_id %d): %w", kmsg.NameForKey(h.APIKey), h.APIVersion, h.CorrelationID, err)
	}
	if h.APIKey != kmsg.Produce.Int16() {
		drain()
	}
	rc := &reqCtx{hdr: h, sess: sess, log: s.log.With("api_key", h.APIKey, "correlation_id", h.CorrelationID, "client_id", h.ClientIDString())}
	handling := time.Now()
	s.metrics.phase(h.APIKey, phaseQueue, f.read, handling)
	resp, err := a.handle(peer.WithClient(ctx, peer.ClientInfo{ID: h.ClientIDString(), Host: "/" + sess.host}), s, rc, req)
	if err == nil {
		resp = s.throttle(ctx, rc, req, resp, len(f.b), start) // client quotas
		groupLineage(rc, req, resp)                            // lineage.go
	}
	handled := time.Now()
	s.metrics.phase(h.APIKey, phaseHandle, handling, handled)
	if d, ok := resp.(*deferred); ok && err == nil {
		p := pending{corr: h.CorrelationID, version: h.APIVersion, key: h.APIKey, wait: func() (kmsg.Response, error) {
			r, err := d.wait()
			s.metrics.phase(h.APIKey, phaseFlushSequence, handled, time.Now())
			s.metrics.observe(h.APIKey, start, err != nil)
			return r, err
		}}
		if h.APIKey == kmsg.Produce.Int16() {
			// The engine copied the batches; the response (built in
			// wait) reads the request's records for the last time.
			p.release = func() { frameBufs.Put(f.b) }
		}
		return p, nil
	}
	s.metrics.observe(h.APIKey, start, err != nil)
	if err != nil {
		return pending{}, fmt.Errorf("%s v%d (correlation_id %d): %w", kmsg.NameForKey(h.APIKey), h.APIVersion, h.CorrelationID, err)
	}
	if resp == nil { // acks=0 produce
		return pending{}, nil
	}
	return pending{corr: h.CorrelationID, version: h.APIVersion, key: h.APIKey, resp: resp, close: rc.closeAfter}, nil
}

// tlsHandshake runs the TLS handshake of a new connection and takes the
// client certificate's principal.
func (s *Server) tlsHandshake(ctx context.Context, nc net.Conn, sess *session) (*tls.Conn, error) {
	tc := tls.Server(nc, sess.listener.TLS)
	hctx, cancel := context.WithTimeout(ctx, tlsHandshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		return nil, err
	}
	if sess.listener.TLSPrincipal != nil {
		p, ok, err := sess.listener.TLSPrincipal(tc.ConnectionState())
		if err != nil {
			return nil, err
		}
		if ok {
			sess.principal = p
		}
	}
	return tc, nil
}

// deferred is a response a handler completes later (a produce waiting for
// the sequencer). Its embedded Response is never used directly.
type deferred struct {
	kmsg.Response
	wait func() (kmsg.Response, error)
}
