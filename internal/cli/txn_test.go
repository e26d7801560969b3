package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestParseTxnListFilter(t *testing.T) {
	tests := []struct {
		name    string
		states  []string
		pids    []int64
		minDur  time.Duration
		want    txnListFilter
		wantErr string
	}{
		{"none", nil, nil, 0, txnListFilter{}, ""},
		{
			"states any case, deduplicated", []string{"ongoing", "Ongoing", "COMPLETECOMMIT"}, []int64{7, 7, 9}, time.Minute,
			txnListFilter{states: []string{"Ongoing", "CompleteCommit"}, producerIDs: []int64{7, 9}, minDuration: time.Minute}, "",
		},
		{"unknown state", []string{"Running"}, nil, 0, txnListFilter{}, `--state "Running": want one of Empty, Ongoing`},
		{"negative producer id", nil, []int64{-1}, 0, txnListFilter{}, "--producer-id -1"},
		{"negative duration", nil, nil, -time.Second, txnListFilter{}, "--min-duration -1s"},
		{"sub-millisecond duration", nil, nil, time.Microsecond, txnListFilter{}, "whole milliseconds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseTxnListFilter(tt.states, tt.pids, tt.minDur)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestFormatTopicPartitions(t *testing.T) {
	tests := []struct {
		name string
		in   map[string][]int32
		want string
	}{
		{"empty", nil, "-"},
		{"topic without partitions", map[string][]int32{"a": nil}, "-"},
		{"sorted and deduplicated", map[string][]int32{"b": {2, 0, 2}, "a": {1}}, "a:1 b:0,2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := formatTopicPartitions(tt.in); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestFormatMillis(t *testing.T) {
	if got := formatMillis(-1); got != "-" {
		t.Fatalf("formatMillis(-1) = %q", got)
	}
	ms := time.Date(2024, 5, 1, 12, 0, 0, 250e6, time.UTC).UnixMilli()
	got, err := time.Parse(time.RFC3339Nano, formatMillis(ms))
	if err != nil || got.UnixMilli() != ms {
		t.Fatalf("formatMillis(%d) = %v (%v), not the same instant", ms, got, err)
	}
}

// TestTxnUsageErrors checks bad txn invocations fail before any network
// access (the brokers point at a closed port).
func TestTxnUsageErrors(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"list bad state", []string{"txn", "list", "--state", "Running"}, `--state "Running"`},
		{"list negative producer", []string{"txn", "list", "--producer-id", "-3"}, "--producer-id -3"},
		{"list bad duration", []string{"txn", "list", "--min-duration", "soon"}, "min-duration"},
		{"list args", []string{"txn", "list", "x"}, "unknown command"},
		{"describe no id", []string{"txn", "describe"}, "requires at least 1 arg"},
		{"describe empty id", []string{"txn", "describe", ""}, "empty transactional id"},
		{"producers no topic", []string{"txn", "producers"}, "takes 1 argument(s) (TOPIC)"},
		{"producers negative partition", []string{"txn", "producers", "t", "--partition", "-1"}, "--partition -1"},
		{"group describe no group", []string{"group", "describe"}, "requires at least 1 arg"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := runLive(t, "127.0.0.1:1", tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestTxnHelp(t *testing.T) {
	for _, args := range [][]string{
		{"txn", "--help"}, {"txn", "list", "--help"}, {"txn", "describe", "--help"}, {"txn", "producers", "--help"},
		{"group", "describe", "--help"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			out, _, err := runLive(t, "127.0.0.1:1", args...)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out, "Usage:") || !strings.Contains(out, "Examples:") {
				t.Fatalf("help output lacks usage or examples:\n%s", out)
			}
		})
	}
}

// txnProducer returns a transactional franz-go producer for id.
func txnProducer(t *testing.T, addr, id string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.TransactionalID(id), kgo.ProducerLinger(0),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// produceInTxn begins a transaction on cl and writes one record to each
// partition of topic, waiting for the acks.
func produceInTxn(t *testing.T, ctx context.Context, cl *kgo.Client, topic string, partitions ...int32) {
	t.Helper()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for _, p := range partitions {
		r := &kgo.Record{Topic: topic, Partition: p, Value: []byte(fmt.Sprintf("v%d", p))}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce to %s/%d: %v", topic, p, err)
		}
	}
}

// tableRow finds the line of a tabwriter table whose fields start with
// prefix, or fails.
func tableRow(t *testing.T, out string, prefix ...string) []string {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		fs := strings.Fields(line)
		if len(fs) < len(prefix) {
			continue
		}
		match := true
		for i, p := range prefix {
			if fs[i] != p {
				match = false
				break
			}
		}
		if match {
			return fs
		}
	}
	t.Fatalf("no row starting %q in:\n%s", prefix, out)
	return nil
}

// TestTxnCommands runs the txn commands against a broker holding one open
// and one committed transaction.
func TestTxnCommands(t *testing.T) {
	addr := startBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm := testAdmin(t, addr)
	const topic = "txn-events"
	createTopic(t, ctx, adm, topic, 3)

	open := txnProducer(t, addr, "tx-open")
	produceInTxn(t, ctx, open, topic, 0, 2)
	done := txnProducer(t, addr, "tx-done")
	produceInTxn(t, ctx, done, topic, 1)
	openPID, _, err := open.ProducerID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	donePID, _, err := done.ProducerID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := done.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	pid := func(id int64) string { return fmt.Sprint(id) }

	t.Run("list", func(t *testing.T) {
		out, _, err := runLive(t, addr, "txn", "list")
		if err != nil {
			t.Fatal(err)
		}
		tableRow(t, out, "TRANSACTIONAL-ID", "PRODUCER-ID", "STATE")
		tableRow(t, out, "tx-open", pid(openPID), "Ongoing")
		tableRow(t, out, "tx-done", pid(donePID), "CompleteCommit")
	})
	filters := []struct {
		name    string
		args    []string
		want    []string
		notWant []string
	}{
		{"state", []string{"--state", "ongoing"}, []string{"tx-open"}, []string{"tx-done"}},
		{"two states", []string{"--state", "Ongoing", "--state", "CompleteCommit"}, []string{"tx-open", "tx-done"}, nil},
		{"producer id", []string{"--producer-id", pid(donePID)}, []string{"tx-done"}, []string{"tx-open"}},
		{"min duration", []string{"--min-duration", "1h"}, nil, []string{"tx-open", "tx-done"}},
	}
	for _, f := range filters {
		t.Run("list "+f.name, func(t *testing.T) {
			out, _, err := runLive(t, addr, append([]string{"txn", "list"}, f.args...)...)
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range f.want {
				tableRow(t, out, id)
			}
			for _, id := range f.notWant {
				if strings.Contains(out, id) {
					t.Errorf("%s listed despite the filter:\n%s", id, out)
				}
			}
		})
	}
	t.Run("list json", func(t *testing.T) {
		out, _, err := runLive(t, addr, "txn", "list", "--json", "--state", "Ongoing")
		if err != nil {
			t.Fatal(err)
		}
		var got []txnListJSON
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("%v in %s", err, out)
		}
		if len(got) != 1 || got[0].TransactionalID != "tx-open" || got[0].ProducerID != openPID || got[0].State != "Ongoing" {
			t.Fatalf("got %+v", got)
		}
	})

	t.Run("describe", func(t *testing.T) {
		out, _, err := runLive(t, addr, "txn", "describe", "tx-open", "tx-done")
		if err != nil {
			t.Fatal(err)
		}
		blocks := strings.Split(out, "\n\n")
		if len(blocks) != 2 {
			t.Fatalf("want two blocks, got:\n%s", out)
		}
		checks := []struct {
			block int
			re    string
		}{
			{0, `(?m)^Transactional ID: +tx-open$`},
			{0, `(?m)^State: +Ongoing$`},
			{0, `(?m)^Producer ID: +` + pid(openPID) + `$`},
			{0, `(?m)^Producer epoch: +\d+$`},
			{0, `(?m)^Timeout: +\d+[a-z]`},
			{0, `(?m)^Started: +\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\S* \(\S+ ago\)$`},
			{0, `(?m)^Partitions: +txn-events:0,2$`},
			{1, `(?m)^Transactional ID: +tx-done$`},
			{1, `(?m)^State: +CompleteCommit$`},
			{1, `(?m)^Started: +-$`},
			{1, `(?m)^Partitions: +-$`},
		}
		for _, c := range checks {
			if !regexp.MustCompile(c.re).MatchString(blocks[c.block]) {
				t.Errorf("block %d does not match %s:\n%s", c.block, c.re, blocks[c.block])
			}
		}
	})
	t.Run("describe unknown", func(t *testing.T) {
		out, _, err := runLive(t, addr, "txn", "describe", "nope-1", "tx-open", "nope-2")
		if err == nil {
			t.Fatal("want an error for unknown ids")
		}
		for _, want := range []string{`transactional id "nope-1" does not exist`, `transactional id "nope-2" does not exist`} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q lacks %q", err, want)
			}
		}
		if len(strings.Split(err.Error(), "\n")) != 2 {
			t.Errorf("want one error line per unknown id, got %q", err)
		}
		if !strings.Contains(out, "tx-open") || strings.Contains(out, "nope") {
			t.Errorf("the known id should still be described:\n%s", out)
		}
	})
	t.Run("describe json", func(t *testing.T) {
		out, _, err := runLive(t, addr, "txn", "describe", "--json", "tx-open", "tx-done")
		if err != nil {
			t.Fatal(err)
		}
		var got []txnDescribeJSON
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("%v in %s", err, out)
		}
		if len(got) != 2 || got[0].TransactionalID != "tx-open" || got[1].TransactionalID != "tx-done" {
			t.Fatalf("got %+v", got)
		}
		o := got[0]
		if o.ProducerID != openPID || o.StartTimestampMs == nil || o.TimeoutMs <= 0 ||
			len(o.Partitions) != 1 || o.Partitions[0].Topic != topic || fmt.Sprint(o.Partitions[0].Partitions) != "[0 2]" {
			t.Fatalf("open transaction = %+v", o)
		}
		if got[1].StartTimestampMs != nil || len(got[1].Partitions) != 0 {
			t.Fatalf("committed transaction = %+v", got[1])
		}
	})

	t.Run("producers", func(t *testing.T) {
		out, _, err := runLive(t, addr, "txn", "producers", topic)
		if err != nil {
			t.Fatal(err)
		}
		tableRow(t, out, "PARTITION", "PRODUCER-ID", "EPOCH", "LAST-SEQUENCE", "LAST-TIMESTAMP", "TXN-START-OFFSET")
		for _, p := range []string{"0", "2"} {
			row := tableRow(t, out, p, pid(openPID))
			if row[3] != "0" || row[5] != "0" {
				t.Errorf("partition %s: want last sequence 0 and transaction start offset 0, got %q", p, row)
			}
			if _, err := time.Parse(time.RFC3339Nano, row[4]); err != nil {
				t.Errorf("partition %s: last timestamp %q: %v", p, row[4], err)
			}
		}
		if row := tableRow(t, out, "1", pid(donePID)); row[5] != "-" {
			t.Errorf("committed producer still has an open transaction: %q", row)
		}
	})
	t.Run("producers one partition json", func(t *testing.T) {
		out, _, err := runLive(t, addr, "txn", "producers", topic, "--partition", "1", "--json")
		if err != nil {
			t.Fatal(err)
		}
		var got []producerJSON
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("%v in %s", err, out)
		}
		if len(got) != 1 || got[0].Partition != 1 || got[0].ProducerID != donePID || got[0].CurrentTxnStartOffset != -1 {
			t.Fatalf("got %+v", got)
		}
	})
	for _, tt := range []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"producers missing partition", []string{"txn", "producers", topic, "--partition", "5"}, `topic "txn-events" has no partition 5`},
		{"producers missing topic", []string{"txn", "producers", "no-such-topic"}, `topic "no-such-topic" does not exist`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := runLive(t, addr, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}
