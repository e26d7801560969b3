package protocol

// Fetch sessions (KIP-227): a bounded per-broker cache of the partitions a
// client fetches, so that incremental fetches name only what changed.

import (
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
)

// sessKey names a partition inside a session.
type sessKey struct {
	topic     string
	partition int32
}

// sessPart is what a session remembers about one partition: the client's
// position and what was last sent, to decide what an incremental response
// must include.
type sessPart struct {
	key      sessKey
	topicID  TopicID
	offset   int64
	maxBytes int32
	// last values sent to the client; -1 before the first response.
	hwm, lso, logStart int64
}

type fetchSession struct {
	id       int32
	epoch    int32 // next epoch the client must send
	parts    []*sessPart
	index    map[sessKey]*sessPart
	lastUsed uint64
}

// sessionCache holds fetch sessions. Its lock is taken only for short,
// non-blocking updates; fetch reads happen outside it.
type sessionCache struct {
	mu       sync.Mutex
	max      int
	nextID   int32
	clock    uint64
	sessions map[int32]*fetchSession
}

func newSessionCache(max int) *sessionCache {
	return &sessionCache{max: max, nextID: 1, sessions: make(map[int32]*fetchSession)}
}

// create starts a new session holding parts and returns its id (epoch 1 is
// the next expected). When the cache is full the least recently used
// session is evicted; its client will get FETCH_SESSION_ID_NOT_FOUND and
// start over, as in Kafka.
func (c *sessionCache) create(parts []*sessPart) int32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.sessions) >= c.max {
		var victim *fetchSession
		for _, s := range c.sessions {
			if victim == nil || s.lastUsed < victim.lastUsed {
				victim = s
			}
		}
		delete(c.sessions, victim.id)
	}
	id := c.nextID
	for {
		if id <= 0 {
			id = 1
		}
		if _, used := c.sessions[id]; !used {
			break
		}
		id++
	}
	c.nextID = id + 1
	c.clock++
	s := &fetchSession{id: id, epoch: 1, index: make(map[sessKey]*sessPart), lastUsed: c.clock}
	for _, p := range parts {
		if _, dup := s.index[p.key]; dup {
			continue
		}
		cp := *p
		s.parts = append(s.parts, &cp)
		s.index[p.key] = &cp
	}
	c.sessions[id] = s
	return id
}

func (c *sessionCache) remove(id int32) {
	c.mu.Lock()
	delete(c.sessions, id)
	c.mu.Unlock()
}

// update applies an incremental request: it checks the epoch, upserts the
// named partitions, drops the forgotten ones, bumps the epoch and returns a
// copy of the session's partitions in session order. The second result is a
// Kafka error code.
func (c *sessionCache) update(id, epoch int32, upserts []*sessPart, forget []sessKey) ([]*sessPart, int16) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.sessions[id]
	if !ok {
		return nil, kerr.FetchSessionIDNotFound.Code
	}
	if epoch != s.epoch {
		return nil, kerr.InvalidFetchSessionEpoch.Code
	}
	s.epoch++
	if s.epoch <= 0 { // wrapped: epoch 0 and -1 are reserved
		s.epoch = 1
	}
	c.clock++
	s.lastUsed = c.clock
	for _, k := range forget {
		if _, ok := s.index[k]; ok {
			delete(s.index, k)
			for i, p := range s.parts {
				if p.key == k {
					s.parts = append(s.parts[:i], s.parts[i+1:]...)
					break
				}
			}
		}
	}
	for _, u := range upserts {
		if p, ok := s.index[u.key]; ok {
			p.offset, p.maxBytes, p.topicID = u.offset, u.maxBytes, u.topicID
			continue
		}
		cp := *u
		s.parts = append(s.parts, &cp)
		s.index[u.key] = &cp
	}
	out := make([]*sessPart, len(s.parts))
	for i, p := range s.parts {
		cp := *p
		out[i] = &cp
	}
	return out, 0
}

// remember records what was sent for the partitions of session id, so the
// next incremental response can omit unchanged ones.
func (c *sessionCache) remember(id int32, sent []*sessPart) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.sessions[id]
	if !ok {
		return
	}
	for _, p := range sent {
		if cur, ok := s.index[p.key]; ok {
			cur.hwm, cur.lso, cur.logStart = p.hwm, p.lso, p.logStart
		}
	}
}

func (c *sessionCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.sessions)
}
