package protocol

import (
	"context"
	"encoding/binary"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/share"
	"github.com/runnel-dev/runnel/internal/telemetry/clientmetrics"
)

// discardConn is a net.Conn that swallows writes.
type discardConn struct{}

func (discardConn) Read([]byte) (int, error)         { return 0, net.ErrClosed }
func (discardConn) Write(b []byte) (int, error)      { return len(b), nil }
func (discardConn) Close() error                     { return nil }
func (discardConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (discardConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (discardConn) SetDeadline(time.Time) error      { return nil }
func (discardConn) SetReadDeadline(time.Time) error  { return nil }
func (discardConn) SetWriteDeadline(time.Time) error { return nil }

// FuzzHandleFrame: any frame that decodes is handled without panic by the
// server over the in-memory backend.
func FuzzHandleFrame(f *testing.F) {
	seed := func(req kmsg.Request, v int16) {
		req.SetVersion(v)
		var b []byte
		b = binary.BigEndian.AppendUint16(b, uint16(req.Key()))
		b = binary.BigEndian.AppendUint16(b, uint16(v))
		b = binary.BigEndian.AppendUint32(b, 1)
		b = binary.BigEndian.AppendUint16(b, 0xffff)
		if req.IsFlexible() {
			b = append(b, 0)
		}
		f.Add(req.AppendTo(b))
	}
	for _, a := range apiTable() {
		seed(kmsg.RequestForKey(a.key), a.max)
		seed(kmsg.RequestForKey(a.key), a.min)
	}
	m := kmsg.NewPtrMetadataRequest()
	m.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("fuzz")}}
	seed(m, 9)
	// Share requests naming the topic, with acknowledgements.
	fuzzID := TopicID{0xf0}
	seed(withAck(sfReq("m", 0, fuzzID, 0, 1), fuzzID, 1, 0, 2, share.AckAccept, share.AckRelease, share.AckGap), 2)
	seed(saReq("m", 1, fuzzID, 0, 0, 0, share.AckRenew), 2)

	cl := &fakeCluster{self: Broker{NodeID: 1, Host: "127.0.0.1", Port: 9092}}
	fl := newFakeLog()
	if _, err := fl.CreateTopic(context.Background(), "fuzz", 2, nil, false); err != nil {
		f.Fatal(err)
	}
	fl.mu.Lock()
	fl.topics["fuzz"].info.ID = TopicID{0xf0} // a known id for the share seeds
	fl.mu.Unlock()
	s := NewServer(Options{Log: fl, Cluster: cl, Groups: &fakeGroups{c: cl}, Logger: slog.New(slog.DiscardHandler), AutoCreateTopics: true,
		ClientMetrics: newMemClientMetrics(clientmetrics.Options{}),
		Shares:        newFakeShares(fl), ShareGroups: &fakeShareGroups{}, GroupConfigs: &fakeGroupConfigs{}})
	f.Cleanup(func() { _ = s.Close() })
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		p, err := s.handleFrame(ctx, frame{b: data, read: time.Now()}, newSession(Listener{Name: DefaultListener}, "127.0.0.1:1"), func() {})
		if err == nil && (p.resp != nil || p.wait != nil) {
			_ = s.complete(&conn{Conn: discardConn{}}, p)
		}
	})
}
