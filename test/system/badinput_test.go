package system

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/test/harness"
)

// Kafka error codes the bad-input cases expect.
const (
	errCorruptMessage     = 2
	errMessageTooLarge    = 10
	errInvalidTopic       = 17
	errUnsupportedVersion = 35
	errInvalidConfig      = 40
)

// TestBadInput checks DESIGN §8 invariant 5 against the real binary: each
// bad input gets the error a Kafka client expects (or its connection is
// closed), and afterwards a fresh client still produces and consumes and the
// data stored before is unchanged.
func TestBadInput(t *testing.T) {
	p := harness.Start(t, harness.Options{BrokerID: 1})
	seeds := []string{p.Kafka}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	admin := newClient(t, seeds)
	const stable = "stable"
	createTopic(ctx, t, admin, stable, 3, nil)
	small := "1024"
	createTopic(ctx, t, admin, "small", 1, map[string]*string{"max.message.bytes": &small})
	createTopic(ctx, t, admin, "probe", 1, nil)
	var values []string
	for i := 0; i < 300; i++ {
		values = append(values, fmt.Sprintf("stable-%03d", i))
	}
	produceSync(ctx, t, admin, stable, -1, values)
	wantEnds := endOffsets(ctx, t, admin, stable)
	want := consumeAll(ctx, t, seeds, stable, wantEnds)
	checkDense(t, want, wantEnds)

	probes := 0
	healthy := func(t *testing.T) {
		t.Helper()
		probes++
		cl := newClient(t, seeds)
		v := fmt.Sprintf("probe-%d", probes)
		r := produceSync(ctx, t, cl, "probe", 0, []string{v})[0]
		ends := endOffsets(ctx, t, cl, "probe")
		got := consumeAll(ctx, t, seeds, "probe", ends)
		if r.Offset >= int64(len(got[0])) || got[0][r.Offset].Value != v {
			t.Fatalf("fresh client: record %q acked at offset %d not read back", v, r.Offset)
		}
		ends = endOffsets(ctx, t, cl, stable)
		if fmt.Sprint(ends) != fmt.Sprint(wantEnds) {
			t.Fatalf("high watermarks of %s changed: %v, want %v", stable, ends, wantEnds)
		}
		if d := diffStored(want, consumeAll(ctx, t, seeds, stable, ends)); d != "" {
			t.Fatalf("stored data of %s changed: %s", stable, d)
		}
	}

	frame := func(body []byte) []byte {
		return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
	}
	header := func(key, version int16, corr int32) []byte {
		b := binary.BigEndian.AppendUint16(nil, uint16(key))
		b = binary.BigEndian.AppendUint16(b, uint16(version))
		b = binary.BigEndian.AppendUint32(b, uint32(corr))
		return binary.BigEndian.AppendUint16(b, 0xffff) // null client id
	}

	closes := []struct {
		name string
		send []byte
	}{
		{"garbage text", []byte("GET / HTTP/1.1\r\nHost: runnel\r\n\r\n")},
		{"garbage in a small frame", frame(bytes.Repeat([]byte{0xfe}, 32))},
		{"frame too short for a header", frame([]byte{0, 18, 0})},
		{"frame length 2 GiB - 1", binary.BigEndian.AppendUint32(nil, 0x7fffffff)},
		{"frame length 2 GiB (negative)", binary.BigEndian.AppendUint32(nil, 0x80000000)},
		{"frame length -1", binary.BigEndian.AppendUint32(nil, 0xffffffff)},
		{"frame length over max-request-bytes", binary.BigEndian.AppendUint32(nil, 200<<20)},
		{"unknown api key", frame(header(32000, 0, 1))},
		{"unsupported produce version", frame(header(0, 99, 1))},
		{"truncated request body", frame(append(header(3, 1, 1), 0, 0, 0, 5, 0))},
	}
	for _, c := range closes {
		t.Run(c.name, func(t *testing.T) {
			rc := dialRaw(t, p.Kafka)
			if err := rc.write(c.send); err != nil {
				t.Fatalf("write: %v", err)
			}
			rc.expectClosed()
			healthy(t)
		})
	}

	t.Run("truncated frame then close", func(t *testing.T) {
		rc := dialRaw(t, p.Kafka)
		b := binary.BigEndian.AppendUint32(nil, 100)
		b = append(b, header(18, 0, 1)...)
		if err := rc.write(b); err != nil {
			t.Fatalf("write: %v", err)
		}
		rc.c.Close()
		healthy(t)
	})

	t.Run("ApiVersions unsupported version", func(t *testing.T) {
		rc := dialRaw(t, p.Kafka)
		// A newer client sends its newest ApiVersions: header v2 and a
		// flexible body, as v3 encodes them, under a version we do not serve.
		newer := kmsg.NewPtrApiVersionsRequest()
		newer.Version = 3
		newer.ClientSoftwareName, newer.ClientSoftwareVersion = "runnel-test", "9.9"
		b := rc.f.AppendRequest(nil, newer, 77)
		binary.BigEndian.PutUint16(b[6:8], 127)
		req := kmsg.NewPtrApiVersionsRequest()
		req.Version = 0
		if err := rc.write(b); err != nil {
			t.Fatalf("write: %v", err)
		}
		f, err := rc.readFrame(15 * time.Second)
		if err != nil {
			t.Fatalf("no ApiVersions answer: %v", err)
		}
		resp, err := decodeResponse(req, 77, f) // KIP-511: answered as v0
		if err != nil {
			t.Fatal(err)
		}
		av := resp.(*kmsg.ApiVersionsResponse)
		if av.ErrorCode != errUnsupportedVersion {
			t.Fatalf("error code %d, want UNSUPPORTED_VERSION (35)", av.ErrorCode)
		}
		found := false
		for _, k := range av.ApiKeys {
			if k.ApiKey == 18 {
				found = k.MinVersion == 0 && k.MaxVersion >= 3
			}
		}
		if !found {
			t.Errorf("v0 answer does not list ApiVersions 0..3+: %+v", av.ApiKeys)
		}
		// The connection stays usable: the client retries a version it saw.
		req3 := kmsg.NewPtrApiVersionsRequest()
		req3.Version = 3
		req3.ClientSoftwareName, req3.ClientSoftwareVersion = "runnel-test", "1.0"
		resp, err = rc.request(req3)
		if err != nil {
			t.Fatalf("ApiVersions v3 after the v0 answer: %v", err)
		}
		if ec := resp.(*kmsg.ApiVersionsResponse).ErrorCode; ec != 0 {
			t.Fatalf("ApiVersions v3: error code %d", ec)
		}
		healthy(t)
	})

	produceCase := func(name, topic string, batch []byte, wantCode int16) {
		t.Run(name, func(t *testing.T) {
			rc := dialRaw(t, p.Kafka)
			code, _ := rawProduce(t, rc, topic, 0, batch)
			if code != wantCode {
				t.Fatalf("partition error code %d, want %d", code, wantCode)
			}
			// The request failed alone: the connection still works.
			req := kmsg.NewPtrMetadataRequest()
			req.Version = 1
			if _, err := rc.request(req); err != nil {
				t.Fatalf("connection unusable after the rejected produce: %v", err)
			}
			healthy(t)
		})
	}
	corrupt := buildBatch([][]byte{[]byte("corrupt-1"), []byte("corrupt-2")})
	corrupt[len(corrupt)-1] ^= 0xff // record bytes no longer match the CRC
	produceCase("produce with corrupt CRC", stable, corrupt, errCorruptMessage)
	badCRC := buildBatch([][]byte{[]byte("crc-field")})
	badCRC[18] ^= 0x01 // the CRC field itself
	produceCase("produce with wrong CRC field", stable, badCRC, errCorruptMessage)
	produceCase("batch over topic max.message.bytes", "small", buildBatch([][]byte{bytes.Repeat([]byte("x"), 4096)}), errMessageTooLarge)
	produceCase("batch over default max.message.bytes", stable, buildBatch([][]byte{bytes.Repeat([]byte("y"), 1200<<10)}), errMessageTooLarge)

	str := func(s string) *string { return &s }
	createCases := []struct {
		name    string
		topic   string
		configs map[string]*string
		want    int16
	}{
		{"bad retention.ms", "bad-config-1", map[string]*string{"retention.ms": str("soon")}, errInvalidConfig},
		{"bad cleanup.policy", "bad-config-2", map[string]*string{"cleanup.policy": str("shred")}, errInvalidConfig},
		{"negative max.message.bytes", "bad-config-3", map[string]*string{"max.message.bytes": str("-5")}, errInvalidConfig},
		{"unknown config", "bad-config-4", map[string]*string{"no.such.config": str("1")}, errInvalidConfig},
		{"name with slash", "bad/name", nil, errInvalidTopic},
		{"name ..", "..", nil, errInvalidTopic},
		{"name .", ".", nil, errInvalidTopic},
		{"empty name", "", nil, errInvalidTopic},
		{"name with space", "has space", nil, errInvalidTopic},
		{"name of 250 characters", strings.Repeat("n", 250), nil, errInvalidTopic},
	}
	for _, c := range createCases {
		t.Run("CreateTopics "+c.name, func(t *testing.T) {
			rc := dialRaw(t, p.Kafka)
			req := kmsg.NewPtrCreateTopicsRequest()
			req.Version = 5
			req.TimeoutMillis = 10000
			rt := kmsg.NewCreateTopicsRequestTopic()
			rt.Topic, rt.NumPartitions, rt.ReplicationFactor = c.topic, 1, 1
			for k, v := range c.configs {
				rc := kmsg.NewCreateTopicsRequestTopicConfig()
				rc.Name, rc.Value = k, v
				rt.Configs = append(rt.Configs, rc)
			}
			req.Topics = append(req.Topics, rt)
			resp, err := rc.request(req)
			if err != nil {
				t.Fatalf("CreateTopics: %v", err)
			}
			cr := resp.(*kmsg.CreateTopicsResponse)
			if len(cr.Topics) != 1 {
				t.Fatalf("CreateTopics: %d topics in the answer", len(cr.Topics))
			}
			if got := cr.Topics[0]; got.ErrorCode != c.want {
				msg := ""
				if got.ErrorMessage != nil {
					msg = *got.ErrorMessage
				}
				t.Fatalf("CreateTopics %q: error code %d (%s), want %d", c.topic, got.ErrorCode, msg, c.want)
			}
			// Nothing was created.
			mreq := kmsg.NewPtrMetadataRequest()
			mreq.Version = 4
			mreq.AllowAutoTopicCreation = false
			mt := kmsg.NewMetadataRequestTopic()
			mt.Topic = kmsg.StringPtr(c.topic)
			mreq.Topics = append(mreq.Topics, mt)
			mresp, err := rc.request(mreq)
			if err != nil {
				t.Fatalf("Metadata: %v", err)
			}
			for _, mt := range mresp.(*kmsg.MetadataResponse).Topics {
				if mt.ErrorCode == 0 {
					t.Errorf("topic %q exists after a rejected CreateTopics", c.topic)
				}
			}
			healthy(t)
		})
	}

	t.Run("serve with bad config file", func(t *testing.T) {
		cases := []struct {
			name, yaml, mention string
		}{
			{"unknown key", "bogus-key: 1\n", "bogus-key"},
			{"unknown nested key", "flush:\n  lingerr: 5ms\n", "flush.lingerr"},
			{"bad duration", "checkpoint:\n  interval: often\n", "checkpoint.interval"},
			{"not yaml", "flush: [unclosed\n", "yaml"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				dir := t.TempDir()
				path := filepath.Join(dir, "bad.yaml")
				if err := os.WriteFile(path, []byte(c.yaml), 0o644); err != nil {
					t.Fatal(err)
				}
				cctx, ccancel := context.WithTimeout(ctx, 60*time.Second)
				defer ccancel()
				cmd := exec.CommandContext(cctx, harness.Binary(t), "serve",
					"--config", path, "--data-dir", dir,
					"--kafka-addr", fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t)),
					"--http-addr", fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t)))
				out, err := cmd.CombinedOutput()
				if cctx.Err() != nil {
					t.Fatalf("runnel serve with a bad config did not exit:\n%s", out)
				}
				if err == nil {
					t.Fatalf("runnel serve with a bad config exited 0:\n%s", out)
				}
				if !strings.Contains(strings.ToLower(string(out)), strings.ToLower(c.mention)) {
					t.Fatalf("error output does not name %q:\n%s", c.mention, out)
				}
			})
		}
		healthy(t)
	})

	// The broker logged no panic through all of it.
	if strings.Contains(p.Log(), "panic") {
		t.Errorf("broker log mentions a panic:\n%s", p.Log())
	}
}
