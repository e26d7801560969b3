package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestRecordFormat(t *testing.T) {
	rec := &kgo.Record{
		Topic:     "events",
		Partition: 3,
		Offset:    42,
		Key:       []byte("k1"),
		Value:     []byte("hello"),
		Timestamp: time.UnixMilli(1700000000123),
		Headers:   []kgo.RecordHeader{{Key: "a", Value: []byte("1")}, {Key: "b", Value: []byte("2")}},
	}
	nullKey := &kgo.Record{Topic: "t", Value: []byte("v")}
	tests := []struct {
		name   string
		format string
		rec    *kgo.Record
		want   string
	}{
		{"default", "%v\n", rec, "hello\n"},
		{"kcat alias", "%s", rec, "hello"},
		{"all fields", "%t/%p@%o %k=%v ts=%T", rec, "events/3@42 k1=hello ts=1700000000123"},
		{"lengths", "%K %S", rec, "2 5"},
		{"null key length", "[%k] %K", nullKey, "[] -1"},
		{"headers", "%h", rec, "a=1,b=2"},
		{"no headers", "<%h>", nullKey, "<>"},
		{"escapes", `%k\t%v\r\n\\`, rec, "k1\thello\r\n\\"},
		{"literal percent", "100%% %v", rec, "100% hello"},
		{"only literal", "x", rec, "x"},
		{"empty", "", rec, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := parseFormat(tt.format)
			if err != nil {
				t.Fatalf("parseFormat(%q): %v", tt.format, err)
			}
			if got := string(f.Append(nil, tt.rec)); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseFormatErrors(t *testing.T) {
	tests := []struct {
		name, format, wantSub string
	}{
		{"unknown placeholder", "%x", "unknown placeholder %x"},
		{"trailing percent", "%v%", "lone %"},
		{"unknown escape", `\q`, `unknown escape \q`},
		{"trailing backslash", `%v\`, `lone \`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseFormat(tt.format)
			if err == nil || !strings.Contains(err.Error(), tt.wantSub) {
				t.Fatalf("parseFormat(%q) = %v, want error containing %q", tt.format, err, tt.wantSub)
			}
		})
	}
}
