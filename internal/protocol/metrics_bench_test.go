package protocol

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// BenchmarkProduceRequestMetrics measures a whole Produce request (frame
// decode, validation, the in-memory log, response encoding and write) with
// the request, phase, per-topic and connection metrics off (no registry)
// and on, to bound what the metrics cost the produce path. Values are 1 KiB
// of random bytes (incompressible).
func BenchmarkProduceRequestMetrics(b *testing.B) {
	value := make([]byte, 1024)
	if _, err := rand.Read(value); err != nil {
		b.Fatal(err)
	}
	rec := kmsg.NewRecord()
	rec.Value = value
	batch := kmsg.NewRecordBatch()
	batch.Magic, batch.NumRecords = 2, 1
	batch.ProducerID, batch.ProducerEpoch, batch.FirstSequence = -1, -1, -1
	batch.Records = rec.AppendTo(nil)
	batch.Length = int32(len(batch.AppendTo(nil)) - 12)
	records := batch.AppendTo(nil)

	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(9)
	req.Acks, req.TimeoutMillis = -1, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "bench"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = records
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	var body []byte
	body = binary.BigEndian.AppendUint16(body, uint16(req.Key()))
	body = binary.BigEndian.AppendUint16(body, uint16(req.GetVersion()))
	body = binary.BigEndian.AppendUint32(body, 1)
	body = binary.BigEndian.AppendUint16(body, 5)
	body = append(body, "bench"...)
	body = append(body, 0) // flexible header tags
	body = req.AppendTo(body)

	for _, bc := range []struct {
		name    string
		metrics bool
	}{
		{"off", false},
		{"on", true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var reg prometheus.Registerer
			if bc.metrics {
				reg = prometheus.NewRegistry()
			}
			cl := &fakeCluster{self: Broker{NodeID: 1, Host: "127.0.0.1", Port: 9092}}
			fl := newFakeLog()
			if _, err := fl.CreateTopic(context.Background(), "bench", 1, nil, false); err != nil {
				b.Fatal(err)
			}
			s := NewServer(Options{Log: fl, Cluster: cl, Logger: slog.New(slog.DiscardHandler), Metrics: reg})
			b.Cleanup(func() { _ = s.Close() })
			sess := newSession(Listener{Name: DefaultListener}, "127.0.0.1:1")
			c := &conn{Conn: discardConn{}}
			ctx := context.Background()
			b.ReportAllocs()
			b.SetBytes(int64(len(value)))
			for b.Loop() {
				p, err := s.handleFrame(ctx, frame{b: body, read: time.Now()}, sess, func() {})
				if err != nil {
					b.Fatal(err)
				}
				if err := s.complete(c, p); err != nil {
					b.Fatal(err)
				}
				fl.mu.Lock()
				fl.topics["bench"].parts[0].batches = nil // keep memory flat
				fl.mu.Unlock()
			}
		})
	}
}
