package wire

import (
	"bytes"
	"io"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func seedFrames(f *testing.F) {
	f.Helper()
	id := "fuzz"
	for _, req := range []kmsg.Request{
		func() kmsg.Request { r := kmsg.NewPtrMetadataRequest(); r.SetVersion(12); return r }(),
		func() kmsg.Request { r := kmsg.NewPtrApiVersionsRequest(); r.SetVersion(3); return r }(),
		func() kmsg.Request { r := kmsg.NewPtrProduceRequest(); r.SetVersion(7); return r }(),
		func() kmsg.Request { r := kmsg.NewPtrFetchRequest(); r.SetVersion(13); return r }(),
	} {
		fr := requestFrame(req, 1, &id)
		f.Add(frameOf(fr), 3)
		f.Add(frameOf(fr)[:len(fr)/2], 1)
	}
	f.Add([]byte{0xff, 0xff, 0xff, 0xff}, 1)
	f.Add([]byte{0, 0, 0, 1, 0}, 0)
}

// FuzzReadFrame feeds frames split at arbitrary points and corrupted: reading
// and header parsing must never panic, and a decoded header's body must be
// part of the frame.
func FuzzReadFrame(f *testing.F) {
	seedFrames(f)
	f.Fuzz(func(t *testing.T, data []byte, split int) {
		r := &chunkReader{data: data, chunk: split}
		for i := 0; i < 4; i++ {
			frame, err := ReadFrame(r, 1<<16)
			if err != nil {
				return
			}
			h, body, err := ParseRequestHeader(frame)
			if err != nil {
				continue
			}
			if len(body) > len(frame) || !bytes.HasSuffix(frame, body) {
				t.Fatalf("body not a suffix of frame (header %+v)", h)
			}
			req := kmsg.RequestForKey(h.APIKey)
			if h.APIVersion <= req.MaxVersion() {
				req.SetVersion(h.APIVersion)
				_ = req.ReadFrom(body)
			}
		}
	})
}

// FuzzParseRequestHeader corrupts raw header bytes.
func FuzzParseRequestHeader(f *testing.F) {
	id := "c"
	r := kmsg.NewPtrMetadataRequest()
	r.SetVersion(12)
	f.Add(requestFrame(r, 9, &id))
	f.Add([]byte{0, 3, 0, 12, 0, 0, 0, 7, 0, 0, 1, 0, 9, 1})
	f.Fuzz(func(t *testing.T, frame []byte) {
		_, body, err := ParseRequestHeader(frame)
		if err == nil && len(body) > len(frame) {
			t.Fatal("body longer than frame")
		}
	})
}

// chunkReader returns at most chunk bytes per Read, to exercise split frames.
type chunkReader struct {
	data  []byte
	chunk int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := c.chunk
	if n <= 0 {
		n = 1
	}
	if n > len(p) {
		n = len(p)
	}
	if n > len(c.data) {
		n = len(c.data)
	}
	copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}
