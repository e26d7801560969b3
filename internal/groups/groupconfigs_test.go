package groups

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/cluster/clustertest"
	"github.com/runnel-dev/runnel/internal/config"
	"github.com/runnel-dev/runnel/internal/stream"
)

func openConfigStore(t *testing.T, e *clustertest.Etcd) *GroupConfigStore {
	t.Helper()
	s, err := OpenGroupConfigStore(context.Background(), e.Client(), "/runnel", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func strp(s string) *string { return &s }

// waitConfig waits up to 1 s for s to show want for group.
func waitConfig(t *testing.T, s *GroupConfigStore, group string, want map[string]string) {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for {
		got := s.GroupConfig(group)
		if len(got) == len(want) {
			same := true
			for k, v := range want {
				if got[k] != v {
					same = false
				}
			}
			if same {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %q configs on the other broker: %v, want %v within 1 s", group, got, want)
		}
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func TestGroupConfigRoundTrip(t *testing.T) {
	e := clustertest.Start(t)
	a := openConfigStore(t, e)
	b := openConfigStore(t, e)
	ctx := context.Background()
	const group = "g/with slash"

	if got := a.GroupConfig(group); got != nil {
		t.Fatalf("configs of an unknown group: %v", got)
	}
	// Incremental: set two, visible on a at once and on b within 1 s.
	err := a.AlterGroupConfig(ctx, group, []stream.ConfigChange{
		{Name: config.GroupShareAutoOffsetReset, Value: strp("earliest")},
		{Name: config.GroupShareRecordLockDuration, Value: strp("15000")},
	}, false, false)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{config.GroupShareAutoOffsetReset: "earliest", config.GroupShareRecordLockDuration: "15000"}
	if got := a.GroupConfig(group); len(got) != 2 || got[config.GroupShareAutoOffsetReset] != "earliest" {
		t.Fatalf("writer's cache after alter: %v", got)
	}
	waitConfig(t, b, group, want)
	if sg := b.ShareGroup(group); sg.AutoOffsetReset != "earliest" || sg.LockDuration != 15*time.Second || sg.DeliveryCountLimit != 5 {
		t.Fatalf("resolved on b: %+v", sg)
	}

	// Incremental delete of one, through the other store.
	if err := b.AlterGroupConfig(ctx, group, []stream.ConfigChange{{Name: config.GroupShareRecordLockDuration}}, false, false); err != nil {
		t.Fatal(err)
	}
	waitConfig(t, a, group, map[string]string{config.GroupShareAutoOffsetReset: "earliest"})

	// Replace (AlterConfigs) drops what is not named.
	if err := a.AlterGroupConfig(ctx, group, []stream.ConfigChange{{Name: config.GroupShareDeliveryCountLimit, Value: strp("3")}}, true, false); err != nil {
		t.Fatal(err)
	}
	waitConfig(t, b, group, map[string]string{config.GroupShareDeliveryCountLimit: "3"})

	// Validation: nothing is written.
	cases := []struct {
		name    string
		changes []stream.ConfigChange
		want    error
	}{
		{"unknown name", []stream.ConfigChange{{Name: "share.nope", Value: strp("1")}}, config.ErrUnknownConfig},
		{"unknown name delete", []stream.ConfigChange{{Name: "share.nope"}}, config.ErrUnknownConfig},
		{"out of range", []stream.ConfigChange{{Name: config.GroupShareDeliveryCountLimit, Value: strp("11")}}, config.ErrInvalidConfig},
		{"bad reset", []stream.ConfigChange{{Name: config.GroupShareAutoOffsetReset, Value: strp("sometimes")}}, config.ErrInvalidConfig},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := a.AlterGroupConfig(ctx, group, tc.changes, false, false); !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
		})
	}
	// validateOnly checks but writes nothing.
	if err := a.AlterGroupConfig(ctx, group, []stream.ConfigChange{{Name: config.GroupShareDeliveryCountLimit, Value: strp("4")}}, false, true); err != nil {
		t.Fatal(err)
	}
	if got := a.GroupConfig(group); got[config.GroupShareDeliveryCountLimit] != "3" {
		t.Fatalf("validateOnly wrote: %v", got)
	}

	// Deleting the last override removes the group's key; a store opened
	// afterwards loads the state.
	if err := b.AlterGroupConfig(ctx, group, []stream.ConfigChange{{Name: config.GroupShareDeliveryCountLimit}}, false, false); err != nil {
		t.Fatal(err)
	}
	waitConfig(t, a, group, map[string]string{})
	if err := a.AlterGroupConfig(ctx, "other", []stream.ConfigChange{{Name: config.GroupConsumerSessionTimeout, Value: strp("50000")}}, false, false); err != nil {
		t.Fatal(err)
	}
	c := openConfigStore(t, e)
	if got := c.GroupConfig(group); got != nil {
		t.Fatalf("loaded configs of a cleared group: %v", got)
	}
	if got := c.GroupConfig("other"); got[config.GroupConsumerSessionTimeout] != "50000" {
		t.Fatalf("loaded configs: %v", got)
	}
	if err := c.DeleteGroupConfig(ctx, "other"); err != nil {
		t.Fatal(err)
	}
	waitConfig(t, a, "other", map[string]string{})
}

// TestDeleteGroupConfigWithoutOverrides: deleting the configs of a group
// that has none (every DeleteGroups of a share group without overrides)
// changes nothing in etcd, so no watch event follows; it must return at
// once rather than wait for one after other keys moved the revision on.
func TestDeleteGroupConfigWithoutOverrides(t *testing.T) {
	e := clustertest.Start(t)
	s := openConfigStore(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := e.Client().Put(ctx, "/runnel/elsewhere", "x"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteGroupConfig(ctx, "no-overrides"); err != nil {
		t.Fatalf("delete configs of a group without any: %v", err)
	}
}
