package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// DefaultMaxFrameBytes is the default limit on one request frame (Kafka's
// socket.request.max.bytes is 100 MiB).
const DefaultMaxFrameBytes int32 = 100 << 20

// Sentinel errors of the framing layer. Any of them means the connection must
// be closed: the stream can no longer be trusted.
var (
	ErrFrameTooLarge   = errors.New("wire: frame too large")
	ErrNegativeSize    = errors.New("wire: negative frame size")
	ErrTruncatedHeader = errors.New("wire: truncated request header")
	ErrUnknownAPIKey   = errors.New("wire: unknown api key")
	ErrMalformedTagged = errors.New("wire: malformed tagged fields")
	ErrInvalidString   = errors.New("wire: invalid string length")
	ErrNegativeVersion = errors.New("wire: negative api version")
)

// ReadFrame reads one size-prefixed frame from r. The 4-byte big-endian size
// is checked against maxBytes (DefaultMaxFrameBytes when maxBytes <= 0)
// before the frame buffer is allocated. An io.EOF before the first byte of the
// size is returned as io.EOF; a frame cut short is io.ErrUnexpectedEOF.
func ReadFrame(r io.Reader, maxBytes int32) ([]byte, error) {
	return ReadFrameInto(r, maxBytes, func(n int) []byte { return make([]byte, 0, n) })
}

// ReadFrameInto reads a frame like ReadFrame into a buffer that alloc
// returns for the frame's size (length 0, capacity at least the size).
func ReadFrameInto(r io.Reader, maxBytes int32, alloc func(n int) []byte) ([]byte, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxFrameBytes
	}
	var sz [4]byte
	if _, err := io.ReadFull(r, sz[:]); err != nil {
		return nil, err
	}
	n := int32(binary.BigEndian.Uint32(sz[:]))
	if err := CheckSize(n, maxBytes); err != nil {
		return nil, err
	}
	buf := alloc(int(n))[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf, nil
}

// CheckSize validates a frame size read from the wire against maxBytes.
func CheckSize(n, maxBytes int32) error {
	switch {
	case n < 0:
		return fmt.Errorf("%w: %d", ErrNegativeSize, n)
	case n > maxBytes:
		return fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, n, maxBytes)
	}
	return nil
}
