package groups

// Server-side assignors for KIP-848 groups (group.consumer.assignors):
//
//   - uniform (the default): every subscribed partition goes to one member
//     subscribed to its topic, with member sizes as even as the
//     subscriptions allow; partitions start where the previous target put
//     them and move only to even out loads, so a membership change moves
//     few partitions.
//   - range: per topic, the members subscribed to it (by member id) take
//     contiguous ranges of its partitions, the first ones one more when it
//     does not divide evenly, so equal-sized topics are co-partitioned.
//
// Both are deterministic: the same members, subscriptions and previous
// target give the same result on every broker.

import (
	"sort"

	"github.com/runnel-dev/runnel/internal/stream"
)

type topicPartition struct {
	topic     stream.TopicID
	partition int32
}

// assignUniform balances partitions over subscribed members, sticking to
// prev where it can.
func assignUniform(subs map[string][]topicMeta, prev map[string]assignment) map[string]assignment {
	ids := make([]string, 0, len(subs))
	for id := range subs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	out := make(map[string]assignment, len(ids))
	eligible := map[stream.TopicID][]string{} // topic -> members subscribed
	parts := map[stream.TopicID]int32{}
	for _, id := range ids {
		out[id] = assignment{}
		for _, t := range subs[id] {
			eligible[t.ID] = append(eligible[t.ID], id)
			parts[t.ID] = t.Partitions
		}
	}
	var all []topicPartition
	topics := make([]stream.TopicID, 0, len(parts))
	for t := range parts {
		topics = append(topics, t)
	}
	sort.Slice(topics, func(i, j int) bool { return string(topics[i][:]) < string(topics[j][:]) })
	for _, t := range topics {
		for p := int32(0); p < parts[t]; p++ {
			all = append(all, topicPartition{t, p})
		}
	}
	if len(ids) == 0 {
		return out
	}
	// Keep every partition where the previous target put it, if that
	// member still subscribes to its topic.
	count := map[string]int{}
	owner := map[topicPartition]string{}
	var free []topicPartition
	for _, tp := range all {
		for _, id := range eligible[tp.topic] {
			if prev[id].has(tp.topic, tp.partition) {
				owner[tp] = id
				break
			}
		}
		if owner[tp] == "" {
			free = append(free, tp)
			continue
		}
		count[owner[tp]]++
	}
	// The rest go, one by one, to the least loaded eligible member.
	leastLoaded := func(tp topicPartition) string {
		best := ""
		for _, id := range eligible[tp.topic] {
			if best == "" || count[id] < count[best] || (count[id] == count[best] && id < best) {
				best = id
			}
		}
		return best
	}
	for _, tp := range free {
		owner[tp] = leastLoaded(tp)
		count[owner[tp]]++
	}
	// Balance: move a partition to the least loaded member that may take
	// it while that narrows a gap of two or more. Each move lowers the sum
	// of squared loads, so this ends.
	for moved := true; moved; {
		moved = false
		for _, tp := range all {
			from, to := owner[tp], leastLoaded(tp)
			if count[from]-count[to] >= 2 {
				owner[tp] = to
				count[from]--
				count[to]++
				moved = true
			}
		}
	}
	for tp, id := range owner {
		out[id].add(tp.topic, tp.partition)
	}
	return out
}

// assignRange gives each member contiguous ranges of each subscribed topic.
func assignRange(subs map[string][]topicMeta) map[string]assignment {
	out := make(map[string]assignment, len(subs))
	members := map[stream.TopicID][]string{}
	parts := map[stream.TopicID]int32{}
	for id, ts := range subs {
		out[id] = assignment{}
		for _, t := range ts {
			members[t.ID] = append(members[t.ID], id)
			parts[t.ID] = t.Partitions
		}
	}
	for t, ms := range members {
		sort.Strings(ms)
		n, m := int(parts[t]), len(ms)
		per, extra := n/m, n%m
		p := 0
		for i, id := range ms {
			k := per
			if i < extra {
				k++
			}
			for j := 0; j < k; j++ {
				out[id].add(t, int32(p))
				p++
			}
		}
	}
	return out
}
