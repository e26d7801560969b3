package cli

import (
	"strings"
	"testing"
	"time"
)

func TestResetFlagsSpec(t *testing.T) {
	tests := []struct {
		name    string
		f       resetFlags
		want    resetMode
		wantErr string
	}{
		{"earliest", resetFlags{earliest: true}, resetEarliest, ""},
		{"latest", resetFlags{latest: true}, resetLatest, ""},
		{"offset zero", resetFlags{toOffsetSet: true}, resetToOffset, ""},
		{"datetime", resetFlags{toDatetime: "2024-01-01T00:00:00Z"}, resetToDatetime, ""},
		{"shift", resetFlags{shiftBy: -5, shiftBySet: true}, resetShiftBy, ""},
		{"none", resetFlags{}, 0, "say where to move"},
		{"two", resetFlags{earliest: true, latest: true}, 0, "only one"},
		{"negative offset", resetFlags{toOffset: -1, toOffsetSet: true}, 0, "must not be negative"},
		{"bad datetime", resetFlags{toDatetime: "soon"}, 0, "want RFC 3339"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec, err := tt.f.spec()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || spec.mode != tt.want {
				t.Fatalf("spec = %+v, %v; want mode %d", spec, err, tt.want)
			}
		})
	}
}

func TestPlanReset(t *testing.T) {
	parts := map[int32]partitionState{
		0: {start: 10, end: 100, atTime: 50, committed: 40},
		1: {start: 0, end: 20, atTime: -1, committed: -1},
		2: {start: 5, end: 5, atTime: -1, committed: 5},
	}
	tests := []struct {
		name    string
		spec    resetSpec
		parts   map[int32]partitionState
		want    []int64 // new offsets by partition order
		clamped []bool
		wantErr string
	}{
		{"earliest", resetSpec{mode: resetEarliest}, parts, []int64{10, 0, 5}, []bool{false, false, false}, ""},
		{"latest", resetSpec{mode: resetLatest}, parts, []int64{100, 20, 5}, []bool{false, false, false}, ""},
		{"to offset clamps", resetSpec{mode: resetToOffset, offset: 15}, parts, []int64{15, 15, 5}, []bool{false, false, true}, ""},
		{"to offset below start", resetSpec{mode: resetToOffset, offset: 1}, parts, []int64{10, 1, 5}, []bool{true, false, true}, ""},
		{"datetime falls back to end", resetSpec{mode: resetToDatetime, at: time.Unix(0, 0)}, parts, []int64{50, 20, 5}, []bool{false, false, false}, ""},
		{
			"shift back clamps",
			resetSpec{mode: resetShiftBy, shift: -35},
			map[int32]partitionState{0: parts[0], 2: parts[2]},
			[]int64{10, 5}, []bool{true, true}, "",
		},
		{
			"shift forward",
			resetSpec{mode: resetShiftBy, shift: 10},
			map[int32]partitionState{0: parts[0]},
			[]int64{50}, []bool{false}, "",
		},
		{"shift without commit", resetSpec{mode: resetShiftBy, shift: 1}, parts, nil, nil, "no committed offset"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows, err := planReset(tt.spec, "t", tt.parts)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != len(tt.want) {
				t.Fatalf("rows = %+v", rows)
			}
			for i, r := range rows {
				if i > 0 && rows[i-1].Partition >= r.Partition {
					t.Fatalf("rows not sorted: %+v", rows)
				}
				if r.New != tt.want[i] || r.Clamped != tt.clamped[i] {
					t.Errorf("partition %d: new %d clamped %t, want %d %t", r.Partition, r.New, r.Clamped, tt.want[i], tt.clamped[i])
				}
				if r.Current != tt.parts[r.Partition].committed {
					t.Errorf("partition %d: current %d, want %d", r.Partition, r.Current, tt.parts[r.Partition].committed)
				}
			}
		})
	}
}

func TestParseTopicSelection(t *testing.T) {
	tests := []struct {
		in      string
		topic   string
		parts   []int32
		wantErr bool
	}{
		{"events", "events", nil, false},
		{"events:0,2,2", "events", []int32{0, 2}, false},
		{"events:x", "", nil, true},
		{"events:-1", "", nil, true},
		{":1", "", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			sel, err := parseTopicSelection(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("want error, got %+v", sel)
				}
				return
			}
			if err != nil || sel.topic != tt.topic || len(sel.partitions) != len(tt.parts) {
				t.Fatalf("got %+v, %v", sel, err)
			}
			for i := range tt.parts {
				if sel.partitions[i] != tt.parts[i] {
					t.Fatalf("got %+v", sel)
				}
			}
		})
	}
}
