package clientmetrics

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	"google.golang.org/protobuf/proto"
)

var base64URL = base64.RawURLEncoding

// inflateFactor bounds a payload's decompressed size as a multiple of the
// max bytes: telemetry compresses well, a bomb does not get through.
const inflateFactor = 16

// sampleKind is how a metric is re-exported.
type sampleKind uint8

const (
	kindGauge sampleKind = iota
	kindCounter
)

// sample is one metric of a push, its data points folded.
type sample struct {
	name  string // OTLP name
	kind  sampleKind
	delta bool // a delta sum: added to the previous value
	value float64
}

func errorsIs(err error, targets ...error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}

// decompress inflates a payload, refusing more than limit bytes.
func decompress(codec int8, src []byte, limit int) ([]byte, error) {
	var r io.Reader
	switch codec {
	case CompressionNone:
		return src, nil
	case CompressionGzip:
		zr, err := gzip.NewReader(bytes.NewReader(src))
		if err != nil {
			return nil, fmt.Errorf("%w: gzip: %v", ErrInvalidRecord, err)
		}
		r = zr
	case CompressionSnappy:
		return unsnappy(src, limit)
	case CompressionLZ4:
		r = lz4.NewReader(bytes.NewReader(src))
	case CompressionZstd:
		zr, err := zstd.NewReader(bytes.NewReader(src), zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(16<<20))
		if err != nil {
			return nil, fmt.Errorf("%w: zstd: %v", ErrInvalidRecord, err)
		}
		defer zr.Close()
		r = zr
	default:
		return nil, fmt.Errorf("%w: %d", ErrUnsupportedCompression, codec)
	}
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(r, int64(limit)+1))
	if n > int64(limit) {
		return nil, fmt.Errorf("%w: decompresses past %d bytes", ErrTooLarge, limit)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: decompress: %v", ErrInvalidRecord, err)
	}
	return buf.Bytes(), nil
}

// xerialMagic starts snappy-java's framing (what the Java client writes).
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

// unsnappy decodes a raw snappy block or snappy-java's framing: header,
// then (big-endian length, block) chunks.
func unsnappy(src []byte, limit int) ([]byte, error) {
	blocks := [][]byte{src}
	if bytes.HasPrefix(src, xerialMagic) {
		if len(src) < 16 {
			return nil, fmt.Errorf("%w: snappy: short header", ErrInvalidRecord)
		}
		blocks = nil
		for rest := src[16:]; len(rest) > 0; {
			if len(rest) < 4 {
				return nil, fmt.Errorf("%w: snappy: truncated chunk", ErrInvalidRecord)
			}
			n := binary.BigEndian.Uint32(rest)
			if uint64(n) > uint64(len(rest)-4) {
				return nil, fmt.Errorf("%w: snappy: bad chunk length", ErrInvalidRecord)
			}
			blocks, rest = append(blocks, rest[4:4+n]), rest[4+n:]
		}
	}
	var out []byte
	for _, b := range blocks {
		n, err := snappy.DecodedLen(b)
		if err != nil {
			return nil, fmt.Errorf("%w: snappy: %v", ErrInvalidRecord, err)
		}
		if len(out)+n > limit {
			return nil, fmt.Errorf("%w: decompresses past %d bytes", ErrTooLarge, limit)
		}
		d, err := snappy.Decode(nil, b)
		if err != nil {
			return nil, fmt.Errorf("%w: snappy: %v", ErrInvalidRecord, err)
		}
		out = append(out, d...)
	}
	return out, nil
}

// namespaced reports whether an OTLP metric name may be re-exported: it
// must be namespaced like Kafka's (org.apache.kafka.…, at least three
// dot-separated parts, as KIP-714 and KIP-1076 ask of client metrics), so
// a client cannot push a name that lands on runnel_client_metrics_* or on
// another of the broker's own runnel_client_* families, which would make
// the whole scrape fail.
func namespaced(name string) bool {
	parts := strings.Split(name, ".")
	if len(parts) < 3 || strings.HasPrefix(PromName(name, false), "runnel_client_metrics_") {
		return false // "metrics_dropped.series.total" would be one of ours too
	}
	for _, p := range parts {
		if p == "" {
			return false
		}
	}
	return true
}

// decode decompresses and parses an OTLP MetricsData payload, returning it
// and the samples of the metrics the plan subscribes to. Data points of one
// name, across the payload's metrics, are folded: sums added, gauges to
// their largest value.
func decode(codec int8, payload []byte, maxBytes int, p plan) ([]sample, *metricspb.MetricsData, error) {
	raw, err := decompress(codec, payload, maxBytes*inflateFactor)
	if err != nil {
		return nil, nil, err
	}
	md := new(metricspb.MetricsData)
	if err := proto.Unmarshal(raw, md); err != nil {
		return nil, nil, fmt.Errorf("%w: OTLP: %v", ErrInvalidRecord, err)
	}
	var out []sample
	index := map[seriesKey]int{} // into out
	for _, rm := range md.GetResourceMetrics() {
		for _, sm := range rm.GetScopeMetrics() {
			for _, m := range sm.GetMetrics() {
				if !namespaced(m.GetName()) || !p.wants(m.GetName()) {
					continue
				}
				s := sample{name: m.GetName()}
				var pts []*metricspb.NumberDataPoint
				switch d := m.GetData().(type) {
				case *metricspb.Metric_Sum:
					s.kind = kindCounter
					s.delta = d.Sum.GetAggregationTemporality() == metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA
					pts = d.Sum.GetDataPoints()
				case *metricspb.Metric_Gauge:
					s.kind, s.value = kindGauge, math.Inf(-1)
					pts = d.Gauge.GetDataPoints()
				default: // histograms and summaries are not re-exported
					continue
				}
				if len(pts) == 0 {
					continue
				}
				at, seen := index[seriesKey{s.name, s.kind}]
				if !seen {
					at = len(out)
					index[seriesKey{s.name, s.kind}] = at
					out = append(out, s)
				}
				acc := &out[at]
				for _, dp := range pts {
					v := dp.GetAsDouble()
					if _, ok := dp.GetValue().(*metricspb.NumberDataPoint_AsInt); ok {
						v = float64(dp.GetAsInt())
					}
					if acc.kind == kindCounter {
						acc.value += v
					} else {
						acc.value = max(acc.value, v)
					}
				}
			}
		}
	}
	return out, md, nil
}
