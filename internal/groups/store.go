package groups

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Layout under <prefix>/groups/<shard>/<escaped group>/:
//
//	meta              groupRecord (JSON)
//	offsets/<topic>   topicOffsetsRecord (JSON), one key per committed topic
//
// Group ids and topic names are path-escaped so "/" cannot split keys.

type groupRecord struct {
	ProtocolType string         `json:"protocol_type"`
	Protocol     string         `json:"protocol"`
	Generation   int32          `json:"generation"`
	Leader       string         `json:"leader"`
	StateTimeMs  int64          `json:"state_time_ms"`
	Members      []memberRecord `json:"members"`
	// Consumer is set for a KIP-848 consumer group.
	Consumer *consumerRecord `json:"consumer,omitempty"`
	// Share is set for a KIP-932 share group.
	Share *shareRecord `json:"share,omitempty"`
}

type memberRecord struct {
	ID                 string         `json:"id"`
	InstanceID         *string        `json:"instance_id,omitempty"`
	ClientID           string         `json:"client_id"`
	ClientHost         string         `json:"client_host"`
	SessionTimeoutMs   int64          `json:"session_timeout_ms"`
	RebalanceTimeoutMs int64          `json:"rebalance_timeout_ms"`
	Protocols          []protocolMeta `json:"protocols"`
	Assignment         []byte         `json:"assignment"`
}

type protocolMeta struct {
	Name     string `json:"name"`
	Metadata []byte `json:"metadata"`
}

type offsetRecord struct {
	Offset      int64  `json:"offset"`
	LeaderEpoch int32  `json:"leader_epoch"`
	Metadata    string `json:"metadata"`
	CommitMs    int64  `json:"commit_ms"`
	ExpireMs    int64  `json:"expire_ms,omitempty"` // explicit retention (OffsetCommit v2-v4); 0 = default
}

type topicOffsetsRecord struct {
	Partitions map[int32]offsetRecord `json:"partitions"`
}

func (c *Coordinator) shardPrefix(shard int) string {
	return c.opts.Prefix + "/groups/" + strconv.Itoa(shard) + "/"
}

func (c *Coordinator) groupPrefix(g *group) string {
	return c.shardPrefix(g.sh.id) + url.PathEscape(g.id) + "/"
}

func (c *Coordinator) metaKey(g *group) string { return c.groupPrefix(g) + "meta" }

func (c *Coordinator) offsetsKey(g *group, topic string) string {
	return c.groupPrefix(g) + "offsets/" + url.PathEscape(topic)
}

// loadShard reads every group of sh from etcd.
func (c *Coordinator) loadShard(ctx context.Context, sh *shard) (map[string]*group, error) {
	prefix := c.shardPrefix(sh.id)
	resp, err := c.cli.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("groups: load shard %d: %w", sh.id, err)
	}
	groups := map[string]*group{}
	get := func(id string) *group {
		g := groups[id]
		if g == nil {
			g = newGroup(c, sh, id)
			groups[id] = g
		}
		return g
	}
	for _, kv := range resp.Kvs {
		rest := strings.TrimPrefix(string(kv.Key), prefix)
		parts := strings.Split(rest, "/")
		if len(parts) < 2 {
			continue
		}
		id, err := url.PathUnescape(parts[0])
		if err != nil {
			c.log.Warn("skip undecodable group key", "key", string(kv.Key))
			continue
		}
		switch {
		case len(parts) == 2 && parts[1] == "meta":
			var rec groupRecord
			if err := json.Unmarshal(kv.Value, &rec); err != nil {
				c.log.Warn("skip undecodable group record", "group", id, "err", err)
				continue
			}
			get(id).restore(rec)
		case len(parts) == 3 && parts[1] == "offsets":
			topic, err := url.PathUnescape(parts[2])
			if err != nil {
				continue
			}
			var rec topicOffsetsRecord
			if err := json.Unmarshal(kv.Value, &rec); err != nil {
				c.log.Warn("skip undecodable offsets record", "group", id, "topic", topic, "err", err)
				continue
			}
			g := get(id)
			g.offsets[topic] = rec.Partitions
		}
	}
	for _, g := range groups {
		g.mu.Lock()
		g.startSessionsLocked()
		g.mu.Unlock()
	}
	return groups, nil
}

// record captures the group's durable state.
func (g *group) record() groupRecord {
	rec := groupRecord{
		ProtocolType: g.protocolType,
		Protocol:     g.protocol,
		Generation:   g.generation,
		Leader:       g.leader,
		StateTimeMs:  g.stateTime.UnixMilli(),
	}
	if g.cg != nil {
		rec.Consumer = g.cg.record()
	}
	if g.sg != nil {
		rec.Share = g.sg.record()
	}
	for _, m := range g.sortedMembers() {
		rec.Members = append(rec.Members, memberRecord{
			ID:                 m.id,
			InstanceID:         m.instanceID,
			ClientID:           m.clientID,
			ClientHost:         m.clientHost,
			SessionTimeoutMs:   m.sessionTimeout.Milliseconds(),
			RebalanceTimeoutMs: m.rebalanceTimeout.Milliseconds(),
			Protocols:          m.protocols,
			Assignment:         m.assignment,
		})
	}
	return rec
}

// restore rebuilds a loaded group: with members it resumes Stable (the only
// state persisted with members), otherwise Empty.
func (g *group) restore(rec groupRecord) {
	g.protocolType = rec.ProtocolType
	g.protocol = rec.Protocol
	g.generation = rec.Generation
	g.leader = rec.Leader
	g.stateTime = time.UnixMilli(rec.StateTimeMs)
	g.members = map[string]*member{}
	g.static = map[string]string{}
	for i, mr := range rec.Members {
		m := &member{
			id:               mr.ID,
			instanceID:       mr.InstanceID,
			clientID:         mr.ClientID,
			clientHost:       mr.ClientHost,
			sessionTimeout:   time.Duration(mr.SessionTimeoutMs) * time.Millisecond,
			rebalanceTimeout: time.Duration(mr.RebalanceTimeoutMs) * time.Millisecond,
			protocols:        mr.Protocols,
			assignment:       mr.Assignment,
			joinSeq:          uint64(i),
		}
		g.members[m.id] = m
		if m.instanceID != nil {
			g.static[*m.instanceID] = m.id
		}
	}
	g.seq = uint64(len(rec.Members))
	g.cg = nil
	if rec.Consumer != nil {
		g.cg = rec.Consumer.restore()
	}
	g.sg = nil
	if rec.Share != nil {
		g.sg = rec.Share.restore()
	}
	if len(g.members) > 0 {
		g.state = stateStable
	} else {
		g.state = stateEmpty
		g.leader = ""
	}
}

// persistMetaLocked writes the group record, conditioned on ownership.
func (g *group) persistMetaLocked() error {
	val, err := json.Marshal(g.record())
	if err != nil {
		return fmt.Errorf("groups: encode group: %w", err)
	}
	return g.c.writeTxn(g.sh, clientv3.OpPut(g.c.metaKey(g), string(val)))
}

func encodeTopicOffsets(parts map[int32]offsetRecord) (string, error) {
	val, err := json.Marshal(topicOffsetsRecord{Partitions: parts})
	if err != nil {
		return "", fmt.Errorf("groups: encode offsets: %w", err)
	}
	return string(val), nil
}
