package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// frameOf prefixes b with its size.
func frameOf(b []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...)
}

// requestFrame encodes req like a client does: header v1/v2 then body.
func requestFrame(req kmsg.Request, corr int32, clientID *string) []byte {
	var b []byte
	b = binary.BigEndian.AppendUint16(b, uint16(req.Key()))
	b = binary.BigEndian.AppendUint16(b, uint16(req.GetVersion()))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	if clientID == nil {
		b = binary.BigEndian.AppendUint16(b, 0xffff)
	} else {
		b = binary.BigEndian.AppendUint16(b, uint16(len(*clientID)))
		b = append(b, *clientID...)
	}
	if req.IsFlexible() {
		b = append(b, 0)
	}
	return req.AppendTo(b)
}

func TestReadFrame(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		max     int32
		want    []byte
		wantErr error
	}{
		{name: "ok", in: frameOf([]byte("hello")), max: 10, want: []byte("hello")},
		{name: "empty frame", in: frameOf(nil), max: 10, want: []byte{}},
		{name: "eof", in: nil, max: 10, wantErr: io.EOF},
		{name: "short size", in: []byte{0, 0}, max: 10, wantErr: io.ErrUnexpectedEOF},
		{name: "truncated body", in: []byte{0, 0, 0, 5, 'a'}, max: 10, wantErr: io.ErrUnexpectedEOF},
		{name: "negative", in: []byte{0xff, 0xff, 0xff, 0xfe}, max: 10, wantErr: ErrNegativeSize},
		{name: "oversized", in: []byte{0, 0, 0, 11}, max: 10, wantErr: ErrFrameTooLarge},
		{name: "huge with default limit", in: []byte{0x7f, 0xff, 0xff, 0xff}, max: 0, wantErr: ErrFrameTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadFrame(bytes.NewReader(tt.in), tt.max)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr == nil && !bytes.Equal(got, tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseRequestHeader(t *testing.T) {
	id := "client-1"
	meta := kmsg.NewPtrMetadataRequest()
	meta.SetVersion(12)
	metaOld := kmsg.NewPtrMetadataRequest()
	metaOld.SetVersion(4)
	av := kmsg.NewPtrApiVersionsRequest()
	av.SetVersion(3)
	av.ClientSoftwareName = "x"
	avFuture := kmsg.NewPtrApiVersionsRequest()
	avFuture.SetVersion(3)

	tests := []struct {
		name         string
		frame        []byte
		wantKey      int16
		wantVersion  int16
		wantFlexible bool
		wantClient   *string
		wantErr      error
	}{
		{name: "flexible metadata", frame: requestFrame(meta, 7, &id), wantKey: 3, wantVersion: 12, wantFlexible: true, wantClient: &id},
		{name: "old metadata null client", frame: requestFrame(metaOld, 7, nil), wantKey: 3, wantVersion: 4},
		{name: "api versions v3", frame: requestFrame(av, 7, &id), wantKey: 18, wantVersion: 3, wantFlexible: true, wantClient: &id},
		{name: "truncated", frame: []byte{0, 3, 0, 1}, wantErr: ErrTruncatedHeader},
		{name: "no client id", frame: []byte{0, 3, 0, 1, 0, 0, 0, 7}, wantErr: ErrTruncatedHeader},
		{name: "client id past end", frame: []byte{0, 3, 0, 1, 0, 0, 0, 7, 0, 9, 'a'}, wantErr: ErrTruncatedHeader},
		{name: "bad string length", frame: []byte{0, 3, 0, 1, 0, 0, 0, 7, 0xff, 0xf0}, wantErr: ErrInvalidString},
		{name: "unknown key", frame: []byte{0x7f, 0, 0, 1, 0, 0, 0, 7, 0, 0}, wantKey: 0x7f00, wantVersion: 1, wantErr: ErrUnknownAPIKey},
		{name: "negative version", frame: []byte{0, 3, 0xff, 0xff, 0, 0, 0, 7, 0, 0}, wantErr: ErrNegativeVersion},
		{name: "bad tags", frame: []byte{0, 3, 0, 12, 0, 0, 0, 7, 0, 0, 5, 1}, wantErr: ErrMalformedTagged},
		{name: "tag too long", frame: []byte{0, 3, 0, 12, 0, 0, 0, 7, 0, 0, 1, 0, 9, 1}, wantErr: ErrMalformedTagged},
		{name: "future version parsed flexible", frame: []byte{0, 18, 0, 99, 0, 0, 0, 7, 0xff, 0xff, 0}, wantKey: 18, wantVersion: 99, wantFlexible: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, body, err := ParseRequestHeader(tt.frame)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr != nil {
				if tt.wantKey != 0 && h.APIKey != tt.wantKey {
					t.Fatalf("key = %d, want %d", h.APIKey, tt.wantKey)
				}
				return
			}
			if h.APIKey != tt.wantKey || h.APIVersion != tt.wantVersion || h.CorrelationID != 7 || h.Flexible != tt.wantFlexible {
				t.Fatalf("header = %+v", h)
			}
			if (h.ClientID == nil) != (tt.wantClient == nil) || (h.ClientID != nil && *h.ClientID != *tt.wantClient) {
				t.Fatalf("client id = %v, want %v", h.ClientID, tt.wantClient)
			}
			req := kmsg.RequestForKey(h.APIKey)
			req.SetVersion(h.APIVersion)
			if h.APIVersion <= req.MaxVersion() {
				if err := req.ReadFrom(body); err != nil {
					t.Fatalf("body does not decode: %v", err)
				}
			}
		})
	}
}

func TestAppendResponse(t *testing.T) {
	tests := []struct {
		name     string
		resp     kmsg.Response
		version  int16
		wantTags bool
	}{
		{name: "metadata v12 flexible header", resp: kmsg.NewPtrMetadataResponse(), version: 12, wantTags: true},
		{name: "metadata v1", resp: kmsg.NewPtrMetadataResponse(), version: 1},
		{name: "api versions v3 header v0", resp: kmsg.NewPtrApiVersionsResponse(), version: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.resp.SetVersion(tt.version)
			prefix := []byte("xx")
			out := AppendResponse(prefix, 42, tt.resp)
			if string(out[:2]) != "xx" {
				t.Fatal("prefix clobbered")
			}
			frame, err := ReadFrame(bytes.NewReader(out[2:]), 0)
			if err != nil {
				t.Fatal(err)
			}
			if corr := int32(binary.BigEndian.Uint32(frame)); corr != 42 {
				t.Fatalf("correlation = %d", corr)
			}
			body := frame[4:]
			if tt.wantTags {
				if body[0] != 0 {
					t.Fatalf("tag section = %d", body[0])
				}
				body = body[1:]
			}
			got := kmsg.ResponseForKey(tt.resp.Key())
			got.SetVersion(tt.version)
			if err := got.ReadFrom(body); err != nil {
				t.Fatalf("decode body: %v", err)
			}
		})
	}
}
