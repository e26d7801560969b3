package cli

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestRetryCommands(t *testing.T) {
	addr := startBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	run := func(args ...string) string {
		t.Helper()
		out, errOut, err := runLive(t, addr, args...)
		if err != nil {
			t.Fatalf("runnel %s: %v\n%s", strings.Join(args, " "), err, errOut)
		}
		return out
	}
	if out := run("retry", "set", "billing", "--delays", "300ms,1m", "--ordered"); !strings.Contains(out, "Set retry policy of group billing: errors.retry.delays.ms=300,60000 errors.retry.ordered=true") {
		t.Fatalf("set: %q", out)
	}
	want := strings.Join([]string{
		"Group billing: delays 300ms,1m0s, ordered true, dead letters to dlq.billing",
		"Parked keys: 0 (runnel retry parked billing)",
		"LEVEL  TOPIC            DELAY  PARTITIONS  WAITING  OLDEST",
		"1      retry.billing.1  300ms  1           0        -",
		"2      retry.billing.2  1m0s   1           0        -",
		"dlq    dlq.billing      -      1           0        -",
		"",
	}, "\n")
	if out := run("retry", "show", "billing"); out != want {
		t.Fatalf("show:\n%s\nwant:\n%s", out, want)
	}

	// A record parked at level 2 waits there (the group never read it).
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "retry.billing.2", Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	var s retryShow
	if err := json.Unmarshal([]byte(run("retry", "show", "billing", "--json")), &s); err != nil {
		t.Fatal(err)
	}
	if !s.Policy || len(s.Levels) != 3 || s.Levels[1].Waiting != 1 || s.Levels[1].OldestMs < 0 || s.Levels[1].OldestMs > 10000 || s.Levels[0].Waiting != 0 || s.Levels[0].OldestMs != -1 {
		t.Fatalf("show --json: %+v", s)
	}

	// Cleared: no policy, the topics and their records stay.
	if out := run("retry", "clear", "billing"); !strings.Contains(out, "Cleared the retry policy of group billing") {
		t.Fatalf("clear: %q", out)
	}
	out := run("retry", "show", "billing")
	if !strings.HasPrefix(out, "Group billing has no retry policy\n") || !strings.Contains(out, "retry.billing.2  -      1           1 ") {
		t.Fatalf("show after clear:\n%s", out)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"retry", "set", "billing", "--delays", "1500us"}, "want positive whole milliseconds"},
		{[]string{"retry", "set", "billing"}, "give at least one of"},
		{[]string{"retry", "set", "bad group", "--delays", "1s"}, "INVALID_CONFIG"},
		{[]string{"retry", "set", "billing", "--delays", "1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s"}, "at most 10 retry levels"},
	} {
		_, _, err := runLive(t, addr, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("runnel %s: %v, want %q", strings.Join(c.args, " "), err, c.want)
		}
	}
}

func TestRetryParkedCommands(t *testing.T) {
	addr := startBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	run := func(args ...string) string {
		t.Helper()
		out, errOut, err := runLive(t, addr, args...)
		if err != nil {
			t.Fatalf("runnel %s: %v\n%s", strings.Join(args, " "), err, errOut)
		}
		return out
	}
	run("retry", "set", "ship", "--delays", "1m", "--ordered")
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// Two keys parked at level 1 as a consumer parks them: k's record 5 and
	// the record 8 parked behind it, and j's record 6.
	for _, p := range []struct {
		key    string
		offset string
	}{{"k", "5"}, {"j", "6"}, {"k", "8"}} {
		r := &kgo.Record{Topic: "retry.ship.1", Key: []byte(p.key), Value: []byte("v"), Headers: []kgo.RecordHeader{
			{Key: "runnel.retry.origin.topic", Value: []byte("orders")},
			{Key: "runnel.retry.origin.partition", Value: []byte("0")},
			{Key: "runnel.retry.origin.offset", Value: []byte(p.offset)},
		}}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	waitFor := func(want string) string {
		t.Helper()
		for {
			out := run("retry", "parked", "ship")
			if strings.Contains(out, want) {
				return out
			}
			select {
			case <-ctx.Done():
				t.Fatalf("parked never showed %q:\n%s", want, out)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	out := waitFor(`orders  0          "k"  5,8     -         -`)
	if show := run("retry", "show", "ship"); !strings.Contains(show, "Parked keys: 2 ") {
		t.Fatalf("show:\n%s", show)
	}
	if !strings.Contains(out, `orders  0          "j"  6       -         -`) {
		t.Fatalf("parked:\n%s", out)
	}
	if out := run("retry", "discard", "ship", "orders", "0", "k"); !strings.Contains(out, `Discarded key "k" of orders/0 in group ship up to origin offset 5`) {
		t.Fatalf("discard: %q", out)
	}
	waitFor(`orders  0          "k"  8       -         <=5`)
	if out := run("retry", "release", "ship", "orders", "0", "j"); !strings.Contains(out, `Released key "j" of orders/0 in group ship up to origin offset 6`) {
		t.Fatalf("release: %q", out)
	}
	waitFor(`orders  0          "j"  -       <=6       -`)
	if _, _, err := runLive(t, addr, "retry", "discard", "ship", "orders", "0", "nope"); err == nil || !strings.Contains(err.Error(), "is not parked") {
		t.Fatalf("discard of a key not parked: %v", err)
	}
	if _, _, err := runLive(t, addr, "retry", "parked", "other"); err == nil || !strings.Contains(err.Error(), "no parked-keys table") {
		t.Fatalf("parked of a group without a table: %v", err)
	}
}
