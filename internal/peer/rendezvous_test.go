package peer

import (
	"encoding/binary"
	"fmt"
	"math"
	"testing"
)

func brokers(ids ...int32) []Broker {
	out := make([]Broker, len(ids))
	for i, id := range ids {
		out[i] = Broker{NodeID: id}
	}
	return out
}

func owner(t *testing.T, key []byte, bs []Broker) int32 {
	t.Helper()
	b, ok := Owner(key, bs)
	if !ok {
		t.Fatalf("Owner(%q) found no broker among %d", key, len(bs))
	}
	return b.NodeID
}

// keyFamilies are the kinds of keys placed in production.
var keyFamilies = []struct {
	name string
	key  func(i int) []byte
}{
	{"partition", func(i int) []byte { // a topic id and a partition, as cluster.Leader
		var k [20]byte
		k[0], k[15] = 0x5e, byte(i/1000)
		binary.BigEndian.PutUint32(k[16:], uint32(i%1000))
		return k[:]
	}},
	{"coordinator shard", func(i int) []byte { return []byte(fmt.Sprintf("coordinator-shard/%d", i)) }},
	{"transactional id", func(i int) []byte { return []byte(fmt.Sprintf("txn-%d", i)) }},
}

// TestOwnerStable pins owners: brokers of one cluster must agree on them,
// so a changed score would move keys at an upgrade.
func TestOwnerStable(t *testing.T) {
	tests := []struct {
		key  string
		ids  []int32
		want int32
	}{
		{"coordinator-shard/0", []int32{1, 2, 3}, 2},
		{"coordinator-shard/1", []int32{1, 2, 3}, 1},
		{"coordinator-shard/7", []int32{1, 2, 3, 4, 5}, 2},
		{"txn-a", []int32{1, 2, 3, 4, 5}, 3},
		{"txn-b", []int32{10, 20, 30}, 30},
		{"", []int32{7}, 7},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%v", tt.key, tt.ids), func(t *testing.T) {
			if got := owner(t, []byte(tt.key), brokers(tt.ids...)); got != tt.want {
				t.Fatalf("owner = %d, want %d", got, tt.want)
			}
		})
	}
	if _, ok := Owner([]byte("x"), nil); ok {
		t.Fatal("Owner over no brokers reported one")
	}
}

// TestOwnerOrderIndependent: every order of one set gives one owner.
func TestOwnerOrderIndependent(t *testing.T) {
	orders := [][]int32{{1, 2, 3, 4}, {4, 3, 2, 1}, {2, 4, 1, 3}, {3, 1, 4, 2}}
	for i := range 1000 {
		key := keyFamilies[i%len(keyFamilies)].key(i)
		want := owner(t, key, brokers(orders[0]...))
		for _, o := range orders[1:] {
			if got := owner(t, key, brokers(o...)); got != want {
				t.Fatalf("key %x: owner %d over %v, %d over %v", key, want, orders[0], got, o)
			}
		}
	}
}

// TestOwnerDistribution: each kind of key spreads evenly, also over node
// ids that differ only in their low bits.
func TestOwnerDistribution(t *testing.T) {
	const keys = 6000
	sets := [][]int32{{1, 2, 3}, {1, 2, 3, 4, 5}, {0, 1, 2, 3, 4, 5, 6}, {100, 101, 102, 103}, {1, 7, 1000, 65536}}
	for _, f := range keyFamilies {
		for _, ids := range sets {
			t.Run(fmt.Sprintf("%s/%v", f.name, ids), func(t *testing.T) {
				counts := map[int32]int{}
				bs := brokers(ids...)
				for i := range keys {
					counts[owner(t, f.key(i), bs)]++
				}
				even := float64(keys) / float64(len(ids))
				for _, id := range ids {
					if dev := math.Abs(float64(counts[id])-even) / even; dev > 0.1 {
						t.Errorf("broker %d owns %d of %d keys, %.0f%% off an even share of %.0f", id, counts[id], keys, dev*100, even)
					}
				}
			})
		}
	}
}

// TestOwnerMovesLittle: a broker leaving moves only its own keys; a broker
// joining takes about its share and nothing moves between the others.
func TestOwnerMovesLittle(t *testing.T) {
	const keys = 6000
	before := brokers(1, 2, 3, 4)
	for _, f := range keyFamilies {
		t.Run(f.name, func(t *testing.T) {
			joined := 0
			for i := range keys {
				k := f.key(i)
				was := owner(t, k, before)
				if left := owner(t, k, brokers(1, 2, 4)); was != 3 && left != was {
					t.Fatalf("key %x moved from %d to %d when broker 3 left", k, was, left)
				}
				now := owner(t, k, append(brokers(5), before...))
				switch {
				case now == 5:
					joined++
				case now != was:
					t.Fatalf("key %x moved from %d to %d when broker 5 joined", k, was, now)
				}
			}
			if share := float64(joined) / keys; math.Abs(share-0.2) > 0.03 {
				t.Fatalf("the joining broker took %.1f%% of the keys, want about 20%%", share*100)
			}
		})
	}
}
