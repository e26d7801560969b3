package protocol

// Lineage observation: what each connection's client touches, told to a
// Lineage observer (Options.Lineage) so that the lineage graph is drawn
// from real traffic (internal/governance/lineage).
//
// Per connection: the principal, the client id of the request header and
// the client software announced in ApiVersions v3+. Per request:
//   - Produce: per accepted partition, the topic, the batch bytes, the
//     records (dead-lettered ones excluded), the transactional id and the
//     producer id (from the batch header);
//   - Fetch: per partition that returned data, the topic, bytes and
//     records (every fetcher is a consumer: there are no followers);
//     ShareFetch the same, with its share group;
//   - OffsetCommit and TxnOffsetCommit: the group and each topic with a
//     partition committed (TxnOffsetCommit with its transactional id: that
//     is what ties a group's input topics to the transactional id's output
//     topics, one consume → produce job);
//   - JoinGroup (consumer protocol), ConsumerGroupHeartbeat and
//     ShareGroupHeartbeat: the group and the subscribed topic names when
//     the member sends them (a join, a subscription change).
//
// Cost: nothing at all without an observer. With one, each fact is a call
// on the connection's own LineageConn with plain values (no allocation in
// this package); the observer aggregates per connection and must not take
// a lock shared by all connections, nor do I/O, on the call.

import (
	"encoding/binary"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/auth"
)

// LineageKind is what a lineage fact records.
type LineageKind uint8

// The facts a connection reports.
const (
	LineageProduce LineageKind = iota + 1 // records written to a topic
	LineageFetch                          // records read from a topic
	LineageCommit                         // a group committed offsets of a topic
	LineageMember                         // a group member subscribed to a topic
)

// LineageClient is who a connection's client is.
type LineageClient struct {
	Principal                     string // "User:alice"
	ClientID                      string
	SoftwareName, SoftwareVersion string // ApiVersions v3+; empty before
}

// LineageFact is one observation of a connection.
type LineageFact struct {
	Kind            LineageKind
	Topic           string
	Group           string // LineageCommit, LineageMember; LineageFetch of a share group
	TransactionalID string // LineageProduce of transactional batches, TxnOffsetCommit
	ProducerID      int64  // LineageProduce; -1 when not idempotent
	Bytes, Records  int64  // LineageProduce, LineageFetch
}

// Lineage observes connections for the lineage graph.
type Lineage interface {
	// Connection returns the observer of a new connection; nil observes
	// nothing of it.
	Connection() LineageConn
}

// LineageConn observes one connection. Observe is called from the
// connection's request loop and from its response writer (a produce is
// observed once sequenced), never after Close. It must be cheap: no I/O,
// no lock shared with other connections.
type LineageConn interface {
	Observe(c LineageClient, f LineageFact)
	// Close ends the connection; its facts are kept.
	Close()
}

// connLineage is a connection's observer and who its client is, kept in
// its session. client is changed on the request loop only (a produce's
// writer gets a copy).
type connLineage struct {
	obs       LineageConn
	client    LineageClient
	principal auth.Principal // the principal client.Principal was made from
}

// openLineage gives a new connection its observer (nil without one).
func (s *Server) openLineage(sess *session) {
	if s.opts.Lineage == nil {
		return
	}
	if obs := s.opts.Lineage.Connection(); obs != nil {
		sess.lineage = &connLineage{obs: obs}
	}
}

// closeLineage ends a connection's observation.
func closeLineage(sess *session) {
	if sess.lineage != nil {
		sess.lineage.obs.Close()
	}
}

// lineageClient returns the observer of rc's connection and who its client
// is now, or nil. It allocates only when the principal changed.
func lineageClient(rc *reqCtx) (LineageConn, LineageClient) {
	l := rc.sess.lineage
	if l == nil {
		return nil, LineageClient{}
	}
	if p := rc.sess.principal; p != l.principal || l.client.Principal == "" {
		l.principal, l.client.Principal = p, p.String()
	}
	if id := rc.hdr.ClientIDString(); id != l.client.ClientID {
		l.client.ClientID = id
	}
	l.client.SoftwareName, l.client.SoftwareVersion = rc.sess.softwareName, rc.sess.softwareVersion
	return l.obs, l.client
}

// lineageTap is a produce request's observer, resolved on the request loop
// and used by its response writer.
type lineageTap struct {
	obs    LineageConn
	client LineageClient
	txnID  string
}

// produceLineage returns the tap of a produce request (zero without an
// observer).
func produceLineage(rc *reqCtx, req *kmsg.ProduceRequest) lineageTap {
	obs, c := lineageClient(rc)
	if obs == nil {
		return lineageTap{}
	}
	t := lineageTap{obs: obs, client: c}
	if req.TransactionID != nil && hasTransactionalBatch(req) {
		t.txnID = *req.TransactionID
	}
	return t
}

// produced observes one accepted partition of a produce: routed of its
// records went to a dead-letter topic instead.
func (t lineageTap) produced(topic string, batches []byte, routed int) {
	if t.obs == nil {
		return
	}
	t.obs.Observe(t.client, LineageFact{
		Kind: LineageProduce, Topic: topic, TransactionalID: t.txnID, ProducerID: batchProducerID(batches),
		Bytes: int64(len(batches)), Records: int64(max(batchRecords(batches)-routed, 0)),
	})
}

// batchProducerID is the producer id of the first batch in b, -1 when b
// holds no whole header.
func batchProducerID(b []byte) int64 {
	if len(b) < batchHeaderLen {
		return -1
	}
	return int64(binary.BigEndian.Uint64(b[batchProducerIDAt:]))
}

// fetchedLineage observes one partition of a fetch (a share fetch of
// group) that returned data.
func fetchedLineage(rc *reqCtx, group, topic string, batches []byte) {
	if rc.sess.lineage == nil || len(batches) == 0 {
		return
	}
	obs, c := lineageClient(rc)
	obs.Observe(c, LineageFact{Kind: LineageFetch, Topic: topic, Group: group, ProducerID: -1,
		Bytes: int64(len(batches)), Records: int64(batchRecords(batches))})
}

// groupLineage observes the group links of a handled request: the
// committed topics of OffsetCommit and TxnOffsetCommit, the subscriptions
// of JoinGroup and of the KIP-848 and KIP-932 heartbeats. A request that
// failed links nothing.
func groupLineage(rc *reqCtx, req kmsg.Request, resp kmsg.Response) {
	if rc.sess.lineage == nil || resp == nil {
		return
	}
	switch r := req.(type) {
	case *kmsg.OffsetCommitRequest:
		if rs, ok := resp.(*kmsg.OffsetCommitResponse); ok {
			for _, t := range rs.Topics {
				if committedAny(t.Partitions, func(p kmsg.OffsetCommitResponseTopicPartition) int16 { return p.ErrorCode }) {
					observeLink(rc, LineageCommit, r.Group, t.Topic, "")
				}
			}
		}
	case *kmsg.TxnOffsetCommitRequest:
		if rs, ok := resp.(*kmsg.TxnOffsetCommitResponse); ok {
			for _, t := range rs.Topics {
				if committedAny(t.Partitions, func(p kmsg.TxnOffsetCommitResponseTopicPartition) int16 { return p.ErrorCode }) {
					observeLink(rc, LineageCommit, r.Group, t.Topic, r.TransactionalID)
				}
			}
		}
	case *kmsg.JoinGroupRequest:
		rs, ok := resp.(*kmsg.JoinGroupResponse)
		if !ok || rs.ErrorCode != 0 || r.ProtocolType != "consumer" || len(r.Protocols) == 0 {
			return
		}
		var m kmsg.ConsumerMemberMetadata
		if m.ReadFrom(r.Protocols[0].Metadata) != nil {
			return
		}
		for _, t := range m.Topics {
			observeLink(rc, LineageMember, r.Group, t, "")
		}
	case *kmsg.ConsumerGroupHeartbeatRequest:
		if rs, ok := resp.(*kmsg.ConsumerGroupHeartbeatResponse); ok && rs.ErrorCode == 0 {
			for _, t := range r.SubscribedTopicNames {
				observeLink(rc, LineageMember, r.Group, t, "")
			}
		}
	case *kmsg.ShareGroupHeartbeatRequest:
		if rs, ok := resp.(*kmsg.ShareGroupHeartbeatResponse); ok && rs.ErrorCode == 0 {
			for _, t := range r.SubscribedTopicNames {
				observeLink(rc, LineageMember, r.GroupID, t, "")
			}
		}
	}
}

func observeLink(rc *reqCtx, kind LineageKind, group, topic, txnID string) {
	obs, c := lineageClient(rc)
	obs.Observe(c, LineageFact{Kind: kind, Group: group, Topic: topic, TransactionalID: txnID, ProducerID: -1})
}

// committedAny reports whether any partition was committed (error code 0).
func committedAny[P any](parts []P, code func(P) int16) bool {
	for _, p := range parts {
		if code(p) == 0 {
			return true
		}
	}
	return false
}
