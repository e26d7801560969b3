package wire

import (
	"encoding/binary"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// apiVersionsKey is ApiVersions' key: its response header is always v0.
const apiVersionsKey = 18

// RequestHeader is a parsed Kafka request header (v1, or v2 when Flexible).
type RequestHeader struct {
	APIKey        int16
	APIVersion    int16
	CorrelationID int32
	// ClientID is nil when the client sent a null client id.
	ClientID *string
	// Flexible reports whether the request (and so its header) uses the
	// KIP-482 flexible encoding at this version.
	Flexible bool
}

// ClientIDString returns the client id, or "" when it was null.
func (h RequestHeader) ClientIDString() string {
	if h.ClientID == nil {
		return ""
	}
	return *h.ClientID
}

// ParseRequestHeader parses the header at the start of a request frame and
// returns it with the remaining body. Whether the header carries tagged
// fields depends on the api key's version being flexible, as kmsg knows it.
//
// On ErrUnknownAPIKey the key, version and correlation id are filled so the
// caller can log them. A version beyond kmsg's knowledge of a known key is
// parsed as flexible when the key's highest known version is flexible (every
// Kafka API that became flexible stayed flexible), so the caller can still
// answer UNSUPPORTED_VERSION with the right correlation id.
func ParseRequestHeader(frame []byte) (RequestHeader, []byte, error) {
	var h RequestHeader
	if len(frame) < 8 {
		return h, nil, fmt.Errorf("%w: %d bytes", ErrTruncatedHeader, len(frame))
	}
	h.APIKey = int16(binary.BigEndian.Uint16(frame[0:]))
	h.APIVersion = int16(binary.BigEndian.Uint16(frame[2:]))
	h.CorrelationID = int32(binary.BigEndian.Uint32(frame[4:]))
	rest := frame[8:]
	if h.APIVersion < 0 {
		return h, nil, fmt.Errorf("%w: %d", ErrNegativeVersion, h.APIVersion)
	}
	req := kmsg.RequestForKey(h.APIKey)
	if req == nil {
		return h, nil, fmt.Errorf("%w: %d", ErrUnknownAPIKey, h.APIKey)
	}
	v := h.APIVersion
	if v > req.MaxVersion() {
		v = req.MaxVersion()
	}
	req.SetVersion(v)
	h.Flexible = req.IsFlexible()

	// Client id: nullable string with int16 length (never compact, even in
	// header v2, for compatibility).
	if len(rest) < 2 {
		return h, nil, fmt.Errorf("%w: no client id", ErrTruncatedHeader)
	}
	l := int16(binary.BigEndian.Uint16(rest))
	rest = rest[2:]
	switch {
	case l == -1:
	case l < -1:
		return h, nil, fmt.Errorf("%w: %d", ErrInvalidString, l)
	case int(l) > len(rest):
		return h, nil, fmt.Errorf("%w: client id length %d, %d bytes left", ErrTruncatedHeader, l, len(rest))
	default:
		s := string(rest[:l])
		h.ClientID = &s
		rest = rest[l:]
	}
	if h.Flexible {
		var err error
		if rest, err = skipTags(rest); err != nil {
			return h, nil, err
		}
	}
	return h, rest, nil
}

// skipTags skips a KIP-482 tagged field section: a uvarint count, then per
// field a uvarint tag, a uvarint size and that many bytes.
func skipTags(b []byte) ([]byte, error) {
	n, m := binary.Uvarint(b)
	if m <= 0 {
		return nil, fmt.Errorf("%w: bad count", ErrMalformedTagged)
	}
	b = b[m:]
	if n > uint64(len(b)) { // each field takes at least two bytes
		return nil, fmt.Errorf("%w: %d fields in %d bytes", ErrMalformedTagged, n, len(b))
	}
	for i := uint64(0); i < n; i++ {
		if _, m = binary.Uvarint(b); m <= 0 {
			return nil, fmt.Errorf("%w: bad tag", ErrMalformedTagged)
		}
		b = b[m:]
		sz, m := binary.Uvarint(b)
		if m <= 0 {
			return nil, fmt.Errorf("%w: bad size", ErrMalformedTagged)
		}
		b = b[m:]
		if sz > uint64(len(b)) {
			return nil, fmt.Errorf("%w: field of %d bytes, %d left", ErrMalformedTagged, sz, len(b))
		}
		b = b[sz:]
	}
	return b, nil
}

// ResponseHeaderFlexible reports whether the response header for key at a
// flexible request version carries tagged fields (header v1). ApiVersions is
// the exception: its response header is always v0 so that a client can parse
// it before knowing the broker's versions (KIP-511).
func ResponseHeaderFlexible(key int16, flexible bool) bool {
	return flexible && key != apiVersionsKey
}

// AppendResponse appends a complete response frame to dst: the 4-byte size,
// the correlation id, an empty tagged field section when the response header
// is flexible, and the response body encoded at resp's version.
func AppendResponse(dst []byte, correlationID int32, resp kmsg.Response) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, uint32(correlationID))
	if ResponseHeaderFlexible(resp.Key(), resp.IsFlexible()) {
		dst = append(dst, 0)
	}
	dst = resp.AppendTo(dst)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}
