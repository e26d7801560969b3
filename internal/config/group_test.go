package config

import (
	"errors"
	"testing"
	"time"
)

func TestParseISODuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"PT1H", time.Hour, true},
		{"P1D", 24 * time.Hour, true},
		{"P1DT2H3M4.5S", 26*time.Hour + 3*time.Minute + 4500*time.Millisecond, true},
		{"PT0S", 0, true},
		{"pt10m", 10 * time.Minute, true},
		{"P", 0, false},
		{"PT", 0, false},
		{"P1H", 0, false},  // hours need T
		{"PT1D", 0, false}, // days come before T
		{"P-1D", 0, false},
		{"P1Y", 0, false},
		{"1H", 0, false},
		{"PT1.5H", 0, false},
	} {
		got, err := ParseISODuration(tc.in)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("ParseISODuration(%q) = %v, %v; want %v ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestValidateGroupConfig(t *testing.T) {
	for _, tc := range []struct {
		name, value string
		want        error
	}{
		{GroupShareAutoOffsetReset, "earliest", nil},
		{GroupShareAutoOffsetReset, "by_duration:PT1H", nil},
		{GroupShareAutoOffsetReset, "hello", ErrInvalidConfig},
		{GroupShareAutoOffsetReset, "by_duration:-PT1H", ErrInvalidConfig},
		{GroupShareRecordLockDuration, "15000", nil},
		{GroupShareRecordLockDuration, "999", ErrInvalidConfig},
		{GroupShareRecordLockDuration, "1.2", ErrInvalidConfig},
		{GroupShareDeliveryCountLimit, "1", ErrInvalidConfig},
		{GroupShareIsolationLevel, "read_committed", nil},
		{GroupShareIsolationLevel, "hello", ErrInvalidConfig},
		{GroupShareAcquireMode, "record_limit", nil},
		{GroupDLQTopicName, "dlq.orders", nil},
		{GroupDLQTopicName, "bad name", ErrInvalidConfig},
		{GroupRetryDelays, "1000, 10000,60000", nil},
		{GroupRetryDelays, "", nil},
		{GroupRetryDelays, "0", ErrInvalidConfig},
		{GroupRetryDelays, "1s", ErrInvalidConfig},
		{GroupRetryDelays, "1,2,3,4,5,6,7,8,9,10,11", ErrInvalidConfig},
		{GroupRetryDelays, "604800001", ErrInvalidConfig},
		{GroupRetryOrdered, "true", nil},
		{GroupRetryOrdered, "yes", ErrInvalidConfig},
		{"no.such.config", "1", ErrUnknownConfig},
	} {
		err := ValidateGroupConfig(tc.name, tc.value)
		if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("%s=%q: got %v, want %v", tc.name, tc.value, err, tc.want)
		}
	}
}

func TestResolveShareGroup(t *testing.T) {
	g := ResolveShareGroup(nil)
	if g.LockDuration != 30*time.Second || g.DeliveryCountLimit != 5 || g.AutoOffsetReset != "latest" || g.ReadCommitted || !g.RenewEnabled || g.RecordLimit || g.DLQTopic != "" {
		t.Fatalf("defaults: %+v", g)
	}
	g = ResolveShareGroup(map[string]string{
		GroupShareAutoOffsetReset:    "by_duration:PT5M",
		GroupShareRecordLockDuration: "15000",
		GroupShareIsolationLevel:     "read_committed",
		GroupShareDeliveryCountLimit: "bogus", // falls back to the default
		GroupDLQTopicName:            "dlq.x",
	})
	if g.AutoOffsetReset != "by_duration" || g.ResetDuration != 5*time.Minute || g.LockDuration != 15*time.Second ||
		!g.ReadCommitted || g.DeliveryCountLimit != 5 || g.DLQTopic != "dlq.x" {
		t.Fatalf("overrides: %+v", g)
	}
}

func TestRetryDelays(t *testing.T) {
	if got := RetryDelays(map[string]string{GroupRetryDelays: "250, 1000"}); len(got) != 2 || got[0] != 250*time.Millisecond || got[1] != time.Second {
		t.Fatalf("delays %v", got)
	}
	for _, m := range []map[string]string{nil, {GroupRetryDelays: ""}, {GroupRetryDelays: "-5"}} {
		if got := RetryDelays(m); got != nil {
			t.Fatalf("%v: delays %v, want none", m, got)
		}
	}
}
