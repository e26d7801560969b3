package retry

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestBuildTable(t *testing.T) {
	a := Origin{Topic: "orders", Partition: 3, Key: []byte("A")}
	b := Origin{Topic: "orders", Partition: 3, Key: []byte("B")}
	for _, tc := range []struct {
		name    string
		waiting []parkedRecord
		marks   marks
		want    map[string]ParkedKey
	}{
		{"nothing waiting", nil, marks{}, map[string]ParkedKey{}},
		{"one key, a record parked behind another, one moved between levels (listed twice)", []parkedRecord{
			{a, 7}, {a, 9}, {b, 8}, {a, 7},
		}, marks{}, map[string]ParkedKey{
			ParkKey(a): {Topic: "orders", Partition: 3, Key: []byte("A"), Parked: []int64{7, 9}, Released: -1, Discarded: -1},
			ParkKey(b): {Topic: "orders", Partition: 3, Key: []byte("B"), Parked: []int64{8}, Released: -1, Discarded: -1},
		}},
		{"released and discarded records hold nothing back but keep the key listed", []parkedRecord{
			{a, 7}, {a, 9}, {b, 8},
		}, marks{released: map[string]int64{a.id(): 7}, discarded: map[string]int64{b.id(): 8}}, map[string]ParkedKey{
			ParkKey(a): {Topic: "orders", Partition: 3, Key: []byte("A"), Parked: []int64{9}, Released: 7, Discarded: -1},
			ParkKey(b): {Topic: "orders", Partition: 3, Key: []byte("B"), Parked: []int64{}, Released: -1, Discarded: 8},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := buildTable(tc.waiting, tc.marks); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("table\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestDiffTable(t *testing.T) {
	a := ParkedKey{Topic: "t", Key: []byte("A"), Parked: []int64{1}, Released: -1, Discarded: -1}
	b := ParkedKey{Topic: "t", Key: []byte("B"), Parked: []int64{2}, Released: -1, Discarded: -1}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	b2 := b
	b2.Parked = []int64{2, 5}
	jb2, _ := json.Marshal(b2)
	keys, values := diffTable(map[string][]byte{"park/a": ja, "park/b": jb, "park/gone": ja}, map[string]ParkedKey{"park/a": a, "park/b": b2, "park/new": a})
	if !reflect.DeepEqual(keys, []string{"park/b", "park/gone", "park/new"}) || string(values[0]) != string(jb2) || values[1] != nil || string(values[2]) != string(ja) {
		t.Fatalf("diff %v %q", keys, values)
	}
}

func TestParkedKeyBlocks(t *testing.T) {
	k := ParkedKey{Parked: []int64{7, 9}}
	for o, want := range map[int64]bool{6: false, 7: false, 8: true, 9: true, 12: true} {
		if k.Blocks(o) != want {
			t.Errorf("Blocks(%d) = %v", o, !want)
		}
	}
	if (ParkedKey{}).Blocks(100) {
		t.Error("an empty entry blocks")
	}
}
