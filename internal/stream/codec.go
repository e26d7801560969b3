package stream

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Codec is a record batch compression codec (attributes bits 0-2).
type Codec int8

// Kafka's compression codecs.
const (
	CodecNone   Codec = 0
	CodecGzip   Codec = 1
	CodecSnappy Codec = 2
	CodecLZ4    Codec = 3
	CodecZstd   Codec = 4
)

// CodecByName maps a compression.type value to a codec; ok is false for
// "producer" and unknown names.
func CodecByName(name string) (Codec, bool) {
	switch name {
	case "uncompressed", "none":
		return CodecNone, true
	case "gzip":
		return CodecGzip, true
	case "snappy":
		return CodecSnappy, true
	case "lz4":
		return CodecLZ4, true
	case "zstd":
		return CodecZstd, true
	}
	return 0, false
}

var (
	zstdDecOnce sync.Once
	zstdDec     *zstd.Decoder
	zstdEncOnce sync.Once
	zstdEnc     *zstd.Encoder
)

func zstdDecoder() *zstd.Decoder {
	zstdDecOnce.Do(func() {
		zstdDec, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(256<<20))
	})
	return zstdDec
}

func zstdEncoder() *zstd.Encoder {
	zstdEncOnce.Do(func() {
		zstdEnc, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault))
	})
	return zstdEnc
}

// xerialMagic starts snappy data framed by the Java client (snappy-java).
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

// maxDecompressed caps the size of one decompressed batch; a batch that
// inflates past it is rejected as corrupt rather than exhausting memory.
const maxDecompressed = 256 << 20

// decompress returns the uncompressed records section of a batch.
func decompress(c Codec, src []byte) ([]byte, error) {
	switch c {
	case CodecNone:
		return src, nil
	case CodecGzip:
		r, err := gzip.NewReader(bytes.NewReader(src))
		if err != nil {
			return nil, err
		}
		return readCapped(r)
	case CodecSnappy:
		if bytes.HasPrefix(src, xerialMagic) {
			return unxerial(src)
		}
		n, err := snappy.DecodedLen(src)
		if err != nil {
			return nil, err
		}
		if n > maxDecompressed {
			return nil, fmt.Errorf("snappy: decoded length %d too large", n)
		}
		return snappy.Decode(nil, src)
	case CodecLZ4:
		return readCapped(lz4.NewReader(bytes.NewReader(src)))
	case CodecZstd:
		return zstdDecoder().DecodeAll(src, nil)
	}
	return nil, fmt.Errorf("%w: codec %d", ErrUnsupportedCompression, c)
}

func readCapped(r io.Reader) ([]byte, error) {
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(r, maxDecompressed+1))
	if err != nil {
		return nil, err
	}
	if n > maxDecompressed {
		return nil, fmt.Errorf("decompressed batch larger than %d bytes", maxDecompressed)
	}
	return buf.Bytes(), nil
}

// unxerial decodes snappy-java's framing: magic, two version ints, then
// (big-endian length, snappy block) chunks.
func unxerial(src []byte) ([]byte, error) {
	if len(src) < 16 {
		return nil, fmt.Errorf("snappy: short xerial header")
	}
	src = src[16:]
	var out []byte
	for len(src) > 0 {
		if len(src) < 4 {
			return nil, fmt.Errorf("snappy: truncated xerial chunk")
		}
		n := int(binary.BigEndian.Uint32(src))
		src = src[4:]
		if n < 0 || n > len(src) {
			return nil, fmt.Errorf("snappy: bad xerial chunk length")
		}
		dl, err := snappy.DecodedLen(src[:n])
		if err != nil {
			return nil, err
		}
		if len(out)+dl > maxDecompressed {
			return nil, fmt.Errorf("snappy: decoded data too large")
		}
		out, err = appendSnappy(out, src[:n], dl)
		if err != nil {
			return nil, err
		}
		src = src[n:]
	}
	return out, nil
}

func appendSnappy(dst, block []byte, dl int) ([]byte, error) {
	start := len(dst)
	dst = append(dst, make([]byte, dl)...)
	_, err := snappy.Decode(dst[start:], block)
	return dst, err
}

// compress encodes a records section with codec c.
func compress(c Codec, src []byte) ([]byte, error) {
	switch c {
	case CodecNone:
		return src, nil
	case CodecGzip:
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		if _, err := w.Write(src); err != nil {
			return nil, err
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	case CodecSnappy:
		return s2.EncodeSnappy(nil, src), nil
	case CodecLZ4:
		var buf bytes.Buffer
		w := lz4.NewWriter(&buf)
		if _, err := w.Write(src); err != nil {
			return nil, err
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	case CodecZstd:
		return zstdEncoder().EncodeAll(src, nil), nil
	}
	return nil, fmt.Errorf("%w: codec %d", ErrUnsupportedCompression, c)
}
