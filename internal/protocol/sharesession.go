package protocol

// Share sessions (KIP-932): the broker remembers, per (group, member), the
// share partitions a share consumer fetches, so that a ShareFetch names
// only the partitions that changed. A ShareFetch with epoch 0 opens a
// session (replacing the member's previous one), each later request must
// carry the next epoch, and epoch -1 closes it. The cache is bounded:
// when it is full a new session is refused with SHARE_SESSION_LIMIT_REACHED
// (a live consumer's session is never evicted: its acquired records are
// tied to it). A session belongs to the connection that opened it: when
// that connection closes the session ends and its member's acquired
// records are released, as Kafka's ShareSessionCache does on disconnect.

import (
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
)

// shareSessKey names a share session.
type shareSessKey struct {
	group, member string
}

// sharePart is a share partition as a share session names it.
type sharePart struct {
	topicID   TopicID
	partition int32
}

type shareSession struct {
	key   shareSessKey
	epoch int32 // the next epoch the client must send
	parts []sharePart
	index map[sharePart]struct{}
	// owner is the connection that opened the session.
	owner *session
}

// shareSessionCache holds share sessions. Its lock is taken only for
// short, non-blocking updates.
type shareSessionCache struct {
	mu       sync.Mutex
	max      int
	sessions map[shareSessKey]*shareSession
}

func newShareSessionCache(max int) *shareSessionCache {
	return &shareSessionCache{max: max, sessions: make(map[shareSessKey]*shareSession)}
}

// nextShareEpoch is the epoch after e: epochs run 1..MaxInt32 and wrap to
// 1, as in Kafka (0 opens and -1 closes a session).
func nextShareEpoch(e int32) int32 {
	if e == 1<<31-1 {
		return 1
	}
	return e + 1
}

// open replaces key's session with a new one holding parts, owned by the
// connection owner; the next epoch expected is 1. It returns
// SHARE_SESSION_LIMIT_REACHED when the cache is full.
func (c *shareSessionCache) open(key shareSessKey, parts []sharePart, owner *session) int16 {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.sessions, key)
	if len(c.sessions) >= c.max {
		return kerr.ShareSessionLimitReached.Code
	}
	s := &shareSession{key: key, epoch: 1, index: make(map[sharePart]struct{}), owner: owner}
	s.add(parts)
	c.sessions[key] = s
	if owner.shareSessions == nil {
		owner.shareSessions = make(map[shareSessKey]struct{})
	}
	owner.shareSessions[key] = struct{}{}
	return 0
}

func (s *shareSession) add(parts []sharePart) {
	for _, p := range parts {
		if _, ok := s.index[p]; !ok {
			s.index[p] = struct{}{}
			s.parts = append(s.parts, p)
		}
	}
}

// update checks an incremental ShareFetch's epoch, adds parts, removes
// forget (in that order, as Kafka: a partition both named and forgotten
// ends up out of the session), bumps the epoch and returns the session's
// partitions. The second result is a Kafka error code.
func (c *shareSessionCache) update(key shareSessKey, epoch int32, parts, forget []sharePart) ([]sharePart, int16) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.sessions[key]
	if !ok {
		return nil, kerr.ShareSessionNotFound.Code
	}
	if epoch != s.epoch {
		return nil, kerr.InvalidShareSessionEpoch.Code
	}
	s.add(parts)
	for _, f := range forget {
		if _, ok := s.index[f]; !ok {
			continue
		}
		delete(s.index, f)
		for i, p := range s.parts {
			if p == f {
				s.parts = append(s.parts[:i], s.parts[i+1:]...)
				break
			}
		}
	}
	s.epoch = nextShareEpoch(s.epoch)
	return append([]sharePart(nil), s.parts...), 0
}

// acknowledge checks a ShareAcknowledge's epoch: never 0, -1 only for an
// existing session (the epoch is not checked, the session is closed by the
// caller), otherwise the next epoch, which it bumps.
func (c *shareSessionCache) acknowledge(key shareSessKey, epoch int32) int16 {
	if epoch == 0 {
		return kerr.InvalidShareSessionEpoch.Code
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.sessions[key]
	if !ok {
		return kerr.ShareSessionNotFound.Code
	}
	if epoch == -1 {
		return 0
	}
	if epoch != s.epoch {
		return kerr.InvalidShareSessionEpoch.Code
	}
	s.epoch = nextShareEpoch(s.epoch)
	return 0
}

// exists reports whether key has a session.
func (c *shareSessionCache) exists(key shareSessKey) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.sessions[key]
	return ok
}

// close removes key's session and returns its partitions; ok is false
// when there was none.
func (c *shareSessionCache) close(key shareSessKey) (parts []sharePart, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.sessions[key]
	if !ok {
		return nil, false
	}
	delete(c.sessions, key)
	delete(s.owner.shareSessions, key)
	return s.parts, true
}

// closeOwned removes the sessions connection owner opened that it still
// owns (a session reopened on another connection belongs to that one) and
// returns them.
func (c *shareSessionCache) closeOwned(owner *session) []*shareSession {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*shareSession
	for key := range owner.shareSessions {
		if s, ok := c.sessions[key]; ok && s.owner == owner {
			delete(c.sessions, key)
			out = append(out, s)
		}
	}
	owner.shareSessions = nil
	return out
}

func (c *shareSessionCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.sessions)
}
