package tracing

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Kafka's batch compression codecs (attributes bits 0-2).
const (
	codecGzip   = 1
	codecSnappy = 2
	codecLZ4    = 3
	codecZstd   = 4
)

// maxSnappyBlock bounds one snappy block decoded: a raw block cannot be
// decoded in part, so it is decoded whole up to this size (its decoded
// length is in its header) and then cut to the budget.
const maxSnappyBlock = 8 << 20

var errTooLarge = errors.New("tracing: snappy block too large")

// xerialMagic starts snappy data framed by the Java client (snappy-java).
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

// zstdDecoders are streaming decoders bounded in memory; one decode reads
// at most the scan budget out of them.
var zstdDecoders = sync.Pool{New: func() any {
	d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxMemory(64<<20))
	if err != nil {
		return nil
	}
	return d
}}

// decompressPrefix returns at most limit bytes of the decompressed
// records of a batch, and whether that is all of them. Only that prefix is
// ever decompressed, so a batch that inflates without bound costs no more
// than limit bytes of output.
func decompressPrefix(codec int, src []byte, limit int) (out []byte, whole bool, err error) {
	switch codec {
	case codecGzip:
		r, err := gzip.NewReader(bytes.NewReader(src))
		if err != nil {
			return nil, false, err
		}
		return readPrefix(r, limit)
	case codecLZ4:
		return readPrefix(lz4.NewReader(bytes.NewReader(src)), limit)
	case codecZstd:
		d, _ := zstdDecoders.Get().(*zstd.Decoder)
		if d == nil {
			return nil, false, errors.New("tracing: no zstd decoder")
		}
		defer zstdDecoders.Put(d)
		if err := d.Reset(bytes.NewReader(src)); err != nil {
			return nil, false, err
		}
		return readPrefix(d, limit)
	case codecSnappy:
		if bytes.HasPrefix(src, xerialMagic) {
			return unxerialPrefix(src, limit)
		}
		b, err := snappyBlock(src)
		if err != nil {
			return nil, false, err
		}
		if len(b) > limit {
			return b[:limit], false, nil
		}
		return b, true, nil
	}
	return nil, false, errors.New("tracing: unknown codec")
}

// readPrefix reads at most limit bytes of r.
func readPrefix(r io.Reader, limit int) ([]byte, bool, error) {
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(r, int64(limit)+1))
	if n > int64(limit) {
		return buf.Bytes()[:limit], false, nil
	}
	if err != nil {
		return buf.Bytes(), false, nil // what decoded before the error
	}
	return buf.Bytes(), true, nil
}

// snappyBlock decodes one raw snappy block no larger than maxSnappyBlock.
func snappyBlock(src []byte) ([]byte, error) {
	n, err := snappy.DecodedLen(src)
	if err != nil {
		return nil, err
	}
	if n > maxSnappyBlock {
		return nil, errTooLarge
	}
	return snappy.Decode(nil, src)
}

// unxerialPrefix decodes snappy-java's framing (magic, two version ints,
// then big-endian length and snappy block chunks) until limit.
func unxerialPrefix(src []byte, limit int) ([]byte, bool, error) {
	if len(src) < 16 {
		return nil, false, errors.New("tracing: short xerial header")
	}
	src = src[16:]
	var out []byte
	for len(src) > 0 {
		if len(out) >= limit {
			return out[:limit], false, nil
		}
		if len(src) < 4 {
			return out, false, nil
		}
		n := int(binary.BigEndian.Uint32(src))
		src = src[4:]
		if n < 0 || n > len(src) {
			return out, false, nil
		}
		b, err := snappyBlock(src[:n])
		if err != nil {
			return out, false, nil
		}
		out = append(out, b...)
		src = src[n:]
	}
	if len(out) > limit {
		return out[:limit], false, nil
	}
	return out, true, nil
}
