package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestParseKVs(t *testing.T) {
	tests := []struct {
		name    string
		in      []string
		want    map[string]string
		wantErr string
	}{
		{"simple", []string{"a=1", "b=2"}, map[string]string{"a": "1", "b": "2"}, ""},
		{"value with equals", []string{"a=x=y"}, map[string]string{"a": "x=y"}, ""},
		{"empty value", []string{"a="}, map[string]string{"a": ""}, ""},
		{"no equals", []string{"a"}, nil, "want key=value"},
		{"empty key", []string{"=1"}, nil, "want key=value"},
		{"duplicate", []string{"a=1", "a=2"}, nil, "given twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseKVs("config", tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Fatalf("got %v, want %v", got, tt.want)
				}
			}
		})
	}
}

func TestParseEnums(t *testing.T) {
	okCases := []struct {
		name string
		fn   func() error
	}{
		{"acks all", func() error { a, err := parseAcks("all"); return check(err, a == kgo.AllISRAcks()) }},
		{"acks 1", func() error { a, err := parseAcks("1"); return check(err, a == kgo.LeaderAck()) }},
		{"acks 0", func() error { a, err := parseAcks("0"); return check(err, a == kgo.NoAck()) }},
		{"zstd", func() error { _, err := parseCompression("ZSTD"); return err }},
		{"none", func() error { _, err := parseCompression("none"); return err }},
		{"read_committed", func() error { _, err := parseIsolation("read_committed"); return err }},
	}
	for _, tt := range okCases {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.fn(); err != nil {
				t.Fatal(err)
			}
		})
	}
	badCases := []struct {
		name string
		err  error
		want string
	}{
		{"acks 2", second(parseAcks("2")), "want all, 1 or 0"},
		{"brotli", second(parseCompression("brotli")), "want none, gzip"},
		{"isolation", second(parseIsolation("dirty")), "want read_committed"},
	}
	for _, tt := range badCases {
		t.Run(tt.name, func(t *testing.T) {
			if tt.err == nil || !strings.Contains(tt.err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", tt.err, tt.want)
			}
		})
	}
}

func check(err error, ok bool) error {
	if err != nil {
		return err
	}
	if !ok {
		return errMismatch
	}
	return nil
}

var errMismatch = &mismatch{}

type mismatch struct{}

func (*mismatch) Error() string { return "unexpected value" }

func second[T any](_ T, err error) error { return err }

func TestParseTime(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Time
		wantErr bool
	}{
		{"1700000000123", time.UnixMilli(1700000000123), false},
		{"2024-05-01T12:00:00Z", time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC), false},
		{"2024-05-01T14:00:00+02:00", time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC), false},
		{"2024-05-01T12:00:00", time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC), false},
		{"2024-05-01", time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC), false},
		{"-5", time.Time{}, true},
		{"yesterday", time.Time{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseTime("timestamp", tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("want error, got %v", got)
				}
				return
			}
			if err != nil || !got.Equal(tt.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestSeedBrokers(t *testing.T) {
	got, err := seedBrokers(" a:1, b:2 ,")
	if err != nil || len(got) != 2 || got[0] != "a:1" || got[1] != "b:2" {
		t.Fatalf("got %v, %v", got, err)
	}
	if _, err := seedBrokers("localhost"); err == nil {
		t.Fatal("want error for an address without a port")
	}
	if _, err := seedBrokers(" , "); err == nil {
		t.Fatal("want error for an empty list")
	}
}

func TestSplitLine(t *testing.T) {
	tests := []struct {
		name       string
		line, sep  string
		nullEmpty  bool
		key, value []byte
	}{
		{"no separator", "hello", "", false, nil, []byte("hello")},
		{"split", "k:v:w", ":", false, []byte("k"), []byte("v:w")},
		{"separator missing", "hello", ":", false, nil, []byte("hello")},
		{"multi-byte separator", "k::v", "::", false, []byte("k"), []byte("v")},
		{"empty value kept", "k:", ":", false, []byte("k"), []byte{}},
		{"empty value as null", "k:", ":", true, []byte("k"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, v := splitLine([]byte(tt.line), tt.sep, tt.nullEmpty)
			if string(k) != string(tt.key) || (k == nil) != (tt.key == nil) {
				t.Errorf("key = %q, want %q", k, tt.key)
			}
			if string(v) != string(tt.value) || (v == nil) != (tt.value == nil) {
				t.Errorf("value = %q (nil %t), want %q (nil %t)", v, v == nil, tt.value, tt.value == nil)
			}
		})
	}
}

func TestPlanTopicAlter(t *testing.T) {
	plan, err := planTopicAlter([]string{"b=2", "a=1"}, []string{"c", "c"})
	if err != nil {
		t.Fatal(err)
	}
	want := []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: "a"}, {Op: kadm.SetConfig, Name: "b"}, {Op: kadm.DeleteConfig, Name: "c"},
	}
	if len(plan) != len(want) {
		t.Fatalf("plan = %+v", plan)
	}
	for i := range want {
		if plan[i].Op != want[i].Op || plan[i].Name != want[i].Name {
			t.Fatalf("plan[%d] = %+v, want %+v", i, plan[i], want[i])
		}
	}
	if _, err := planTopicAlter([]string{"a=1"}, []string{"a"}); err == nil {
		t.Fatal("want error when a key is both set and deleted")
	}
}
