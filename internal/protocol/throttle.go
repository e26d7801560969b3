package protocol

// Client quota enforcement (KIP-13, KIP-124, KIP-219, KIP-599).
//
// Every request of a client with a quota is measured after its handler
// built the response: Produce by its request size against
// producer_byte_rate, Fetch and ShareFetch by the record bytes they return
// against consumer_byte_rate, and the handler's time against request_percentage.
// When a rate is over its quota the response carries throttle_time_ms and
// the connection is muted for that time: its next request is not read
// before it ends (KIP-219), so a client that ignores throttle_time_ms is
// held to the rate all the same. Only that connection waits; others are
// served meanwhile. A produce is answered at once with its throttle, as
// Kafka does; an acks=0 produce has no answer and only mutes. A fetch asks
// for at most what the client's quota allows in one window (quota ×
// (samples-1) × window, Kafka's bound), so one response cannot run far
// past it.
//
// Differences from Kafka, deliberately: a throttled Fetch still returns its
// data (Kafka returns an empty response) and the mute that follows is long
// enough to bring the rate back to the quota; a mute lasts at most
// maxMute (throttle_time_ms still carries the whole throttle, which
// clients wait out on their own); request versions older than
// KIP-219's (whose clients do not throttle themselves) are muted as well
// instead of having their response delayed; request_percentage does not
// count the time a request spends parked waiting for an event (Fetch long
// polls, JoinGroup and SyncGroup waiting for a rebalance), which Kafka
// keeps in purgatory off its request threads, nor ApiVersions and the SASL
// handshake.
//
// controller_mutation_rate wraps CreateTopics, CreatePartitions and
// DeleteTopics: from CreateTopics v6, CreatePartitions v3 and DeleteTopics
// v5 (strict mode) a topic met while the client's bucket is below zero is
// not touched and gets THROTTLING_QUOTA_EXCEEDED; older versions
// (permissive) apply everything and are throttled afterwards.
// validate_only requests are not counted.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/auth"
)

// Quotas stores client quotas and measures clients against them. It is
// implemented by internal/auth's Quotas; the methods are its contract.
type Quotas interface {
	// Record adds value (bytes, or percent-seconds of one thread for
	// request_percentage) to the rate of key for (user, clientID) and
	// returns how long to throttle the client; zero when no quota applies
	// or the rate is within it.
	Record(key auth.QuotaKey, user, clientID string, value float64) time.Duration
	// MaxInWindow is the most a client can record against key without
	// being throttled when nothing else is in its window; ok false when no
	// quota applies. It bounds a fetch (Kafka's getMaxValueInQuotaWindow).
	MaxInWindow(key auth.QuotaKey, user, clientID string) (float64, bool)
	// RecordMutations takes partition mutations from the client's
	// controller_mutation_rate bucket; in strict mode it refuses (ok false,
	// nothing taken) while the bucket is below zero. A negative count gives
	// partitions back. The duration is the throttle.
	RecordMutations(user, clientID string, partitions float64, strict bool) (throttle time.Duration, ok bool)
	// Describe returns the quotas a filter selects; a bad filter is an
	// error wrapping auth.ErrInvalidQuota or auth.ErrUnsupportedQuotaEntity.
	Describe(ctx context.Context, f auth.QuotaFilter) ([]auth.QuotaEntry, error)
	// Alter applies each alteration to its entity and returns one error
	// per alteration (wrapping auth.ErrInvalidQuota when refused); the
	// error return means the metadata store failed.
	Alter(ctx context.Context, alts []auth.QuotaAlteration, validateOnly bool) ([]error, error)
}

// connThrottle is when a muted connection may be read again. It belongs
// to the connection's request loop (serveConn and handleFrame run on it).
type connThrottle struct {
	until time.Time
}

type connThrottleKey struct{}

// withThrottle gives a connection's context its mute.
func withThrottle(ctx context.Context) (context.Context, *connThrottle) {
	t := &connThrottle{}
	return context.WithValue(ctx, connThrottleKey{}, t), t
}

// wait blocks until the connection is no longer muted, or ctx ends.
func (t *connThrottle) wait(ctx context.Context) error {
	d := time.Until(t.until)
	if d <= 0 {
		return nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

// maxMute bounds how long a connection is muted; throttle_time_ms still
// reports the whole throttle. Muting longer than clients' request timeout
// (30 s by default) would only make them give up on the requests they
// sent meanwhile and reconnect, unmuted; a well-behaved client waits out
// the whole throttle on its own.
const maxMute = 10 * time.Second

// fetchQuota is Fetch with its MaxBytes bounded by what the client's
// consumer_byte_rate allows in one window, as Kafka bounds it, so a
// single response cannot run far past the quota (the first batch is still
// returned whole).
func fetchQuota(ctx context.Context, s *Server, rc *reqCtx, req *kmsg.FetchRequest) (kmsg.Response, error) {
	if s.opts.Quotas != nil {
		user, client := quotaIdentity(rc)
		if bound, ok := s.opts.Quotas.MaxInWindow(auth.ConsumerByteRate, user, client); ok && bound < float64(req.MaxBytes) {
			req.MaxBytes = int32(max(bound, 1))
		}
	}
	return handleFetch(ctx, s, rc, req)
}

// shareFetchQuota bounds a ShareFetch like a Fetch: it asks for at most
// what the client's consumer_byte_rate allows in one window, and the
// bytes it returns are recorded against that quota (throttle). A
// renew-only request (MaxBytes 0) is left as it is.
func shareFetchQuota(ctx context.Context, s *Server, rc *reqCtx, req *kmsg.ShareFetchRequest) (kmsg.Response, error) {
	if s.opts.Quotas != nil && req.MaxBytes > 0 {
		user, client := quotaIdentity(rc)
		if bound, ok := s.opts.Quotas.MaxInWindow(auth.ConsumerByteRate, user, client); ok && bound < float64(req.MaxBytes) {
			req.MaxBytes = int32(max(bound, 1))
		}
	}
	return handleShareFetch(ctx, s, rc, req)
}

// quotaExempt are the requests whose handler time is not counted against
// request_percentage (see the header comment).
var quotaExempt = map[int16]bool{
	kmsg.Fetch.Int16():            true,
	kmsg.ShareFetch.Int16():       true,
	kmsg.JoinGroup.Int16():        true,
	kmsg.SyncGroup.Int16():        true,
	kmsg.ApiVersions.Int16():      true,
	kmsg.SASLHandshake.Int16():    true,
	kmsg.SASLAuthenticate.Int16(): true,
}

// quotaIdentity is who a request counts against: the principal's name and
// the header's client id.
func quotaIdentity(rc *reqCtx) (user, clientID string) {
	return rc.sess.principal.Name, rc.hdr.ClientIDString()
}

// throttle measures one handled request against the client's quotas, puts
// the throttle in its response and mutes the connection for it. resp is
// the handler's response (nil for acks=0, a *deferred for a pipelined
// produce); the one to send is returned.
func (s *Server) throttle(ctx context.Context, rc *reqCtx, req kmsg.Request, resp kmsg.Response, requestBytes int, start time.Time) kmsg.Response {
	q := s.opts.Quotas
	if q == nil {
		return resp
	}
	user, clientID := quotaIdentity(rc)
	var d time.Duration
	switch req.Key() {
	case kmsg.Produce.Int16(): // whatever the outcome, as Kafka counts it
		d = q.Record(auth.ProducerByteRate, user, clientID, float64(requestBytes))
	case kmsg.Fetch.Int16():
		if r, ok := resp.(*kmsg.FetchResponse); ok {
			d = q.Record(auth.ConsumerByteRate, user, clientID, float64(fetchBytes(r)))
		}
	case kmsg.ShareFetch.Int16():
		if r, ok := resp.(*kmsg.ShareFetchResponse); ok {
			d = q.Record(auth.ConsumerByteRate, user, clientID, float64(shareFetchBytes(r)))
		}
	}
	if !quotaExempt[req.Key()] {
		pct := float64(time.Since(start)) * 100 / float64(time.Second)
		d = max(d, q.Record(auth.RequestPercentage, user, clientID, pct))
	}
	if tr, ok := resp.(kmsg.ThrottleResponse); ok && resp != nil {
		if ms, _ := tr.Throttle(); ms > 0 {
			d = max(d, time.Duration(ms)*time.Millisecond) // set by the handler (controller mutations)
		}
	}
	if d <= 0 {
		return resp
	}
	s.metrics.throttled(req.Key(), d)
	if t, ok := ctx.Value(connThrottleKey{}).(*connThrottle); ok {
		t.until = time.Now().Add(min(d, maxMute))
	}
	ms := int32(min(d.Milliseconds(), int64(1<<31-1)))
	if dr, ok := resp.(*deferred); ok {
		return &deferred{Response: dr.Response, wait: func() (kmsg.Response, error) {
			r, err := dr.wait()
			setThrottle(r, ms)
			return r, err
		}}
	}
	setThrottle(resp, ms)
	return resp
}

func setThrottle(resp kmsg.Response, ms int32) {
	if st, ok := resp.(kmsg.SetThrottleResponse); ok && resp != nil {
		st.SetThrottle(ms)
	}
}

// shareFetchBytes is the record bytes a share fetch response returns.
func shareFetchBytes(r *kmsg.ShareFetchResponse) int {
	n := 0
	for i := range r.Topics {
		for j := range r.Topics[i].Partitions {
			n += len(r.Topics[i].Partitions[j].Records)
		}
	}
	return n
}

// fetchBytes is the record bytes a fetch response returns.
func fetchBytes(r *kmsg.FetchResponse) int {
	n := 0
	for i := range r.Topics {
		for j := range r.Topics[i].Partitions {
			n += len(r.Topics[i].Partitions[j].RecordBatches)
		}
	}
	return n
}

// mutationQuota is the controller mutation quota of one request.
type mutationQuota struct {
	q            Quotas
	user, client string
	strict       bool
	throttle     time.Duration
}

func (s *Server) mutationQuota(rc *reqCtx, strictFrom int16, validateOnly bool) *mutationQuota {
	if s.opts.Quotas == nil || validateOnly {
		return nil
	}
	user, client := quotaIdentity(rc)
	return &mutationQuota{q: s.opts.Quotas, user: user, client: client, strict: rc.version() >= strictFrom}
}

// take takes n partitions in strict mode before the mutation; false means
// the topic is refused.
func (m *mutationQuota) take(n float64) bool {
	if m == nil || !m.strict {
		return true
	}
	d, ok := m.q.RecordMutations(m.user, m.client, n, true)
	m.throttle = max(m.throttle, d)
	return ok
}

// settle corrects the bucket once the outcome is known: in strict mode a
// failed mutation gives back what take took (taken) and a different actual
// count is evened out; in permissive mode a successful one is recorded.
func (m *mutationQuota) settle(taken, actual float64, failed bool) {
	if m == nil {
		return
	}
	var delta float64
	switch {
	case m.strict && failed:
		delta = -taken
	case m.strict:
		delta = actual - taken
	case !failed:
		delta = actual
	}
	if delta == 0 {
		return
	}
	d, _ := m.q.RecordMutations(m.user, m.client, delta, false)
	m.throttle = max(m.throttle, d)
}

// apply puts the throttle in the response; throttle then mutes for it.
func (m *mutationQuota) apply(resp kmsg.Response) {
	if m == nil || m.throttle <= 0 {
		return
	}
	setThrottle(resp, int32(min(m.throttle.Milliseconds(), int64(1<<31-1))))
}

var errThrottled = strp(kerr.ThrottlingQuotaExceeded.Message)

// createTopicsQuota is CreateTopics under the controller mutation quota.
func createTopicsQuota(ctx context.Context, s *Server, rc *reqCtx, req *kmsg.CreateTopicsRequest) (kmsg.Response, error) {
	m := s.mutationQuota(rc, 6, req.ValidateOnly)
	if m == nil {
		return handleCreateTopics(ctx, s, rc, req)
	}
	taken := map[string]float64{}
	var refused []kmsg.CreateTopicsResponseTopic
	sub := *req
	sub.Topics = nil
	for _, rt := range req.Topics {
		n := float64(rt.NumPartitions)
		if n <= 0 {
			n = float64(max(s.opts.DefaultPartitions, 1))
		}
		if !m.take(n) {
			t := kmsg.NewCreateTopicsResponseTopic()
			t.Topic, t.NumPartitions, t.ReplicationFactor = rt.Topic, -1, -1
			t.ErrorCode, t.ErrorMessage = kerr.ThrottlingQuotaExceeded.Code, errThrottled
			refused = append(refused, t)
			continue
		}
		taken[rt.Topic] = n
		sub.Topics = append(sub.Topics, rt)
	}
	r, err := handleCreateTopics(ctx, s, rc, &sub)
	if err != nil {
		return r, err
	}
	resp := r.(*kmsg.CreateTopicsResponse)
	for _, t := range resp.Topics {
		actual := taken[t.Topic]
		if t.NumPartitions > 0 {
			actual = float64(t.NumPartitions)
		}
		m.settle(taken[t.Topic], actual, t.ErrorCode != 0)
	}
	resp.Topics = append(resp.Topics, refused...)
	m.apply(resp)
	return resp, nil
}

// deleteTopicsQuota is DeleteTopics under the controller mutation quota:
// a deleted topic counts its partitions.
func deleteTopicsQuota(ctx context.Context, s *Server, rc *reqCtx, req *kmsg.DeleteTopicsRequest) (kmsg.Response, error) {
	m := s.mutationQuota(rc, 5, false)
	if m == nil {
		return handleDeleteTopics(ctx, s, rc, req)
	}
	partitions := func(name *string, id TopicID) float64 {
		var ti TopicInfo
		var ok bool
		if name != nil && *name != "" {
			ti, ok = s.opts.Log.Topic(*name)
		} else {
			ti, ok = s.opts.Log.TopicByID(id)
		}
		if !ok {
			return 0
		}
		return float64(ti.Partitions)
	}
	refusedTopic := func(name *string, id TopicID) kmsg.DeleteTopicsResponseTopic {
		t := kmsg.NewDeleteTopicsResponseTopic()
		t.Topic, t.TopicID = name, id
		t.ErrorCode, t.ErrorMessage = kerr.ThrottlingQuotaExceeded.Code, errThrottled
		return t
	}
	var refused []kmsg.DeleteTopicsResponseTopic
	taken := map[string]float64{}
	sub := *req
	sub.Topics, sub.TopicNames = nil, nil
	for _, rt := range req.Topics {
		n := partitions(rt.Topic, rt.TopicID)
		if !m.take(n) {
			refused = append(refused, refusedTopic(rt.Topic, rt.TopicID))
			continue
		}
		if rt.Topic != nil {
			taken[*rt.Topic] = n
		}
		sub.Topics = append(sub.Topics, rt)
	}
	for _, name := range req.TopicNames {
		n := partitions(&name, TopicID{})
		if !m.take(n) {
			refused = append(refused, refusedTopic(strp(name), TopicID{}))
			continue
		}
		taken[name] = n
		sub.TopicNames = append(sub.TopicNames, name)
	}
	// Partition counts by name for deletions by id, read before they go.
	before := map[TopicID]float64{}
	for _, rt := range sub.Topics {
		before[rt.TopicID] = partitions(rt.Topic, rt.TopicID)
	}
	r, err := handleDeleteTopics(ctx, s, rc, &sub)
	if err != nil {
		return r, err
	}
	resp := r.(*kmsg.DeleteTopicsResponse)
	for _, t := range resp.Topics {
		var n float64
		if t.Topic != nil {
			n = taken[*t.Topic]
		}
		if n == 0 {
			n = before[t.TopicID]
		}
		m.settle(n, n, t.ErrorCode != 0)
	}
	resp.Topics = append(resp.Topics, refused...)
	m.apply(resp)
	return resp, nil
}

// createPartitionsQuota is CreatePartitions under the controller mutation
// quota: the partitions added count.
func createPartitionsQuota(ctx context.Context, s *Server, rc *reqCtx, req *kmsg.CreatePartitionsRequest) (kmsg.Response, error) {
	m := s.mutationQuota(rc, 3, req.ValidateOnly)
	if m == nil {
		return handleCreatePartitions(ctx, s, rc, req)
	}
	taken := map[string]float64{}
	var refused []kmsg.CreatePartitionsResponseTopic
	sub := *req
	sub.Topics = nil
	for _, rt := range req.Topics {
		var n float64
		if ti, ok := s.opts.Log.Topic(rt.Topic); ok && rt.Count > ti.Partitions {
			n = float64(rt.Count - ti.Partitions)
		}
		if !m.take(n) {
			t := kmsg.NewCreatePartitionsResponseTopic()
			t.Topic = rt.Topic
			t.ErrorCode, t.ErrorMessage = kerr.ThrottlingQuotaExceeded.Code, errThrottled
			refused = append(refused, t)
			continue
		}
		taken[rt.Topic] = n
		sub.Topics = append(sub.Topics, rt)
	}
	r, err := handleCreatePartitions(ctx, s, rc, &sub)
	if err != nil {
		return r, err
	}
	resp := r.(*kmsg.CreatePartitionsResponse)
	for _, t := range resp.Topics {
		m.settle(taken[t.Topic], taken[t.Topic], t.ErrorCode != 0)
	}
	resp.Topics = append(resp.Topics, refused...)
	m.apply(resp)
	return resp, nil
}
