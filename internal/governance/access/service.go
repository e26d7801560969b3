package access

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/runnel-dev/runnel/internal/auth"
	"github.com/runnel-dev/runnel/internal/governance"
	"github.com/runnel-dev/runnel/internal/metadata"
)

// The etcd prefixes of requests and shares: one key per id.
const (
	requestPrefix = governance.Prefix + "access/requests/"
	sharePrefix   = governance.Prefix + "shares/"
)

// Defaults of Options.
const (
	DefaultSweepInterval = time.Second
	DefaultRetention     = 30 * 24 * time.Hour
	DefaultMaxRequests   = 10_000
	DefaultMaxShares     = 10_000
	// finishAfter is how long a step that changed a request's state but
	// not yet its ACLs (the broker doing it stopped) waits before a
	// sweeper finishes it.
	finishAfter = 10 * time.Second
)

// ACLs creates, lists and deletes the cluster's ACL bindings;
// *auth.ACLStore is one.
type ACLs interface {
	Create(ctx context.Context, acls []auth.ACL) []error
	Describe(f auth.Filter) []auth.ACL
	Delete(ctx context.Context, filters []auth.Filter) ([][]auth.ACL, []error)
}

// Credentials stores and deletes SCRAM credentials; *auth.Credentials is
// one.
type Credentials interface {
	SetPassword(ctx context.Context, user, password string, mechanisms []string, iterations int) error
	Delete(ctx context.Context, user, mechanism string) error
}

// Quotas alters client quotas; *auth.Quotas is one.
type Quotas interface {
	Alter(ctx context.Context, alts []auth.QuotaAlteration, validateOnly bool) ([]error, error)
}

// Connection is what a share's recipient needs to connect.
type Connection struct {
	BootstrapServers  string `json:"bootstrapServers"`
	SecurityProtocol  string `json:"securityProtocol"`
	SASLMechanism     string `json:"saslMechanism"`
	SchemaRegistryURL string `json:"schemaRegistryUrl,omitempty"`
}

// Options configures a Service. Client, ACLs and TopicExists are
// required.
type Options struct {
	Client *clientv3.Client
	// Owners answers who owns a product; nil means no product has an
	// owner (only administrators approve and share).
	Owners governance.Owners
	// ACLs is the cluster's ACL store.
	ACLs ACLs
	// Credentials and Quotas serve shares; without Credentials shares
	// cannot be created.
	Credentials Credentials
	Quotas      Quotas
	// TopicExists reports whether a topic exists.
	TopicExists func(topic string) bool
	// Connection returns how outside clients connect with SASL; ok is
	// false when the brokers have no SASL listener.
	Connection func() (c Connection, ok bool)
	// FourEyes refuses the approval of a request by its requester.
	FourEyes bool
	// SCRAMIterations of share credentials (8192 when zero).
	SCRAMIterations int
	// MaxExpiry bounds a grant's or share's lifetime (DefaultMaxExpiry
	// when zero).
	MaxExpiry time.Duration
	// SweepInterval is how often expired grants and shares are swept
	// (DefaultSweepInterval when zero).
	SweepInterval time.Duration
	// Retention is how long ended requests and shares are kept
	// (DefaultRetention when zero).
	Retention time.Duration
	// MaxRequests and MaxShares bound what is stored (ended ones
	// included, until retention removes them).
	MaxRequests int
	MaxShares   int
	// Audit configures the audit log (its Client is Client).
	Audit AuditOptions
	// Now is the clock (time.Now when nil).
	Now    func() time.Time
	Logger *slog.Logger
}

// Service serves access requests, grants, shares and the audit log. Its
// watches and sweeper are its own: Close stops them.
type Service struct {
	o     Options
	audit *Audit
	ids   *ids
	book  grantBook

	requests *metadata.Mirror[*AccessRequest]
	shares   *metadata.Mirror[*Share]

	mu      sync.Mutex
	reqList []*AccessRequest // id order (creation order); published by the mirror
	shList  []*Share

	stop context.CancelFunc
	wg   sync.WaitGroup
}

// Open loads the requests and shares, opens the audit log and starts the
// sweeper.
func Open(ctx context.Context, o Options) (*Service, error) {
	if o.Client == nil || o.ACLs == nil || o.TopicExists == nil {
		return nil, errors.New("access: Options need Client, ACLs and TopicExists")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Connection == nil {
		o.Connection = func() (Connection, bool) { return Connection{}, false }
	}
	if o.SCRAMIterations == 0 {
		o.SCRAMIterations = 8192
	}
	if o.MaxExpiry <= 0 {
		o.MaxExpiry = DefaultMaxExpiry
	}
	if o.SweepInterval <= 0 {
		o.SweepInterval = DefaultSweepInterval
	}
	if o.Retention <= 0 {
		o.Retention = DefaultRetention
	}
	if o.MaxRequests <= 0 {
		o.MaxRequests = DefaultMaxRequests
	}
	if o.MaxShares <= 0 {
		o.MaxShares = DefaultMaxShares
	}
	s := &Service{o: o, ids: newIDs(), book: grantBook{cli: o.Client, acls: o.ACLs}}
	s.requests = metadata.NewMirror(metadata.MirrorOptions[*AccessRequest]{
		Client: o.Client, Prefix: requestPrefix, What: "access requests", Logger: o.Logger,
		Decode: decodeStored(o.Logger, "access request", func(r *AccessRequest) string { return r.ID }),
		Publish: func(rs []*AccessRequest) {
			s.mu.Lock()
			s.reqList = rs
			s.mu.Unlock()
		},
	})
	s.shares = metadata.NewMirror(metadata.MirrorOptions[*Share]{
		Client: o.Client, Prefix: sharePrefix, What: "shares", Logger: o.Logger,
		Decode: decodeStored(o.Logger, "share", func(sh *Share) string { return sh.ID }),
		Publish: func(shs []*Share) {
			s.mu.Lock()
			s.shList = shs
			s.mu.Unlock()
		},
	})
	if err := s.requests.Start(ctx); err != nil {
		return nil, fmt.Errorf("access: load access requests: %w", err)
	}
	if err := s.shares.Start(ctx); err != nil {
		s.requests.Close()
		return nil, fmt.Errorf("access: load shares: %w", err)
	}
	ao := o.Audit
	ao.Client, ao.Logger = o.Client, o.Logger
	if ao.Now == nil {
		ao.Now = o.Now
	}
	s.audit = OpenAudit(ao)
	sctx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	s.wg.Add(1)
	go s.sweepLoop(sctx)
	return s, nil
}

// Close stops the sweeper, the audit log's trimming and the watches.
func (s *Service) Close() error {
	s.stop()
	s.wg.Wait()
	return errors.Join(s.audit.Close(), s.shares.Close(), s.requests.Close())
}

// Audit is the audit log: the governance.Auditor every part records to.
func (s *Service) Audit() *Audit { return s.audit }

// owns reports whether actor owns topic's product.
func (s *Service) owns(ctx context.Context, actor governance.Actor, topic string) (bool, error) {
	if s.o.Owners == nil {
		return false, nil
	}
	ok, err := s.o.Owners.Owns(ctx, topic, actor.Principal)
	if err != nil {
		return false, fmt.Errorf("access: owner of %s: %w", topic, err)
	}
	return ok, nil
}

// auditOps are the puts of a step's events, stored in the step's own
// transaction: a step is audited exactly when it happens.
func (s *Service) auditOps(events []governance.Event) ([]clientv3.Op, error) {
	var ops []clientv3.Op
	for _, e := range events {
		e.Time = s.o.Now().UTC()
		op, err := s.audit.put(e)
		if err != nil {
			return nil, err
		}
		ops = append(ops, op)
	}
	return ops, nil
}

// systemActor is who time-driven steps are recorded as.
var systemActor = governance.Actor{Principal: auth.Principal{Type: "Runnel", Name: "expiry"}}

// Create stores a new PENDING request by actor.
func (s *Service) Create(ctx context.Context, actor governance.Actor, n NewRequest) (*AccessRequest, error) {
	now := s.o.Now()
	if err := n.validate(now, s.o.MaxExpiry); err != nil {
		return nil, err
	}
	if !s.o.TopicExists(n.Topic) {
		return nil, fmt.Errorf("%w: topic %s does not exist", governance.ErrNotFound, n.Topic)
	}
	s.mu.Lock()
	count := len(s.reqList)
	s.mu.Unlock()
	if count >= s.o.MaxRequests {
		return nil, governance.Errorf(429, "too many access requests stored (%d): ended ones are removed after %s", count, s.o.Retention)
	}
	r := &AccessRequest{
		ID: s.ids.next(now), Topic: n.Topic, Operation: n.Operation, Group: n.Group, Reason: n.Reason,
		Requester: actor.String(), RequesterHost: actor.Host, ExpiresAt: n.ExpiresAt, Duration: n.Duration,
		State: StatePending, CreatedAt: now.UTC(), ACLs: []ACLJSON{},
	}
	b, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	key := requestPrefix + r.ID
	ops, err := s.auditOps([]governance.Event{governance.NewEvent(actor, "access.request", "access-request:"+r.ID, r.Topic, r.Reason, nil, r)})
	if err != nil {
		return nil, err
	}
	tr, err := s.o.Client.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(append(ops, clientv3.OpPut(key, string(b)))...).Commit()
	if err != nil {
		return nil, fmt.Errorf("access: store request: %w", err)
	}
	if !tr.Succeeded {
		return nil, conflict("request id %s taken", r.ID)
	}
	return r, s.requests.WaitRev(ctx, tr.Header.Revision)
}

// load reads one request from etcd with its revision.
func (s *Service) load(ctx context.Context, id string) (*AccessRequest, int64, error) {
	if id == "" || strings.ContainsAny(id, "/") {
		return nil, 0, fmt.Errorf("%w: no access request %q", governance.ErrNotFound, id)
	}
	resp, err := s.o.Client.Get(ctx, requestPrefix+id)
	if err != nil {
		return nil, 0, fmt.Errorf("access: read request: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return nil, 0, fmt.Errorf("%w: no access request %s", governance.ErrNotFound, id)
	}
	var r AccessRequest
	if err := json.Unmarshal(resp.Kvs[0].Value, &r); err != nil {
		return nil, 0, fmt.Errorf("access: request %s is unreadable: %w", id, err)
	}
	return &r, resp.Kvs[0].ModRevision, nil
}

// cas stores r, and the events of the step, if its key is still at rev;
// false when it moved.
func (s *Service) cas(ctx context.Context, r *AccessRequest, rev int64, events ...governance.Event) (bool, int64, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return false, 0, err
	}
	ops, err := s.auditOps(events)
	if err != nil {
		return false, 0, err
	}
	key := requestPrefix + r.ID
	tr, err := s.o.Client.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
		Then(append(ops, clientv3.OpPut(key, string(b)))...).Commit()
	if err != nil {
		return false, 0, fmt.Errorf("access: store request %s: %w", r.ID, err)
	}
	return tr.Succeeded, tr.Header.Revision, nil
}

// Get returns a request its requester, the product's owner or an
// administrator may see.
func (s *Service) Get(ctx context.Context, actor governance.Actor, id string) (*AccessRequest, error) {
	r, _, err := s.load(ctx, id)
	if err != nil {
		return nil, err
	}
	if ok, err := s.mayView(ctx, actor, r); err != nil || !ok {
		if err == nil {
			err = forbidden("%s may not see request %s", actor, id)
		}
		return nil, err
	}
	return r, nil
}

func (s *Service) mayView(ctx context.Context, actor governance.Actor, r *AccessRequest) (bool, error) {
	if actor.Admin || r.Requester == actor.String() {
		return true, nil
	}
	return s.owns(ctx, actor, r.Topic)
}

// RequestFilter selects requests in a listing.
type RequestFilter struct {
	State string
	Topic string
	// Role is "mine" (requested by the actor), "approver" (on products
	// the actor owns, all for administrators) or "" (both).
	Role string
}

// List returns the requests f selects that the actor may see, newest
// first, and how many there are in all.
func (s *Service) List(ctx context.Context, actor governance.Actor, f RequestFilter, limit, offset int) ([]*AccessRequest, int, error) {
	f.State = strings.ToUpper(f.State)
	switch f.State {
	case "", StatePending, StateApproved, StateDeclined, StateCancelled, StateExpired, StateRevoked:
	default:
		return nil, 0, invalid("state %q: want PENDING, APPROVED, DECLINED, CANCELLED, EXPIRED or REVOKED", f.State)
	}
	switch f.Role {
	case "", "mine", "approver":
	default:
		return nil, 0, invalid("role %q: want mine or approver", f.Role)
	}
	s.mu.Lock()
	all := s.reqList
	s.mu.Unlock()
	me := actor.String()
	owned := map[string]bool{}
	var out []*AccessRequest
	for i := len(all) - 1; i >= 0; i-- {
		r := all[i]
		if (f.State != "" && r.State != f.State) || (f.Topic != "" && r.Topic != f.Topic) {
			continue
		}
		mine := r.Requester == me
		approver := actor.Admin
		if !approver && f.Role != "mine" {
			o, seen := owned[r.Topic]
			if !seen {
				var err error
				if o, err = s.owns(ctx, actor, r.Topic); err != nil {
					return nil, 0, err
				}
				owned[r.Topic] = o
			}
			approver = o
		}
		switch f.Role {
		case "mine":
			if !mine {
				continue
			}
		case "approver":
			if !approver {
				continue
			}
		default:
			if !mine && !approver {
				continue
			}
		}
		out = append(out, r)
	}
	total := len(out)
	return page(out, limit, offset), total, nil
}

func page[T any](items []T, limit, offset int) []T {
	if offset >= len(items) {
		return []T{}
	}
	items = items[offset:]
	if len(items) > limit {
		items = items[:limit]
	}
	return items
}

// Approve, Decline, Cancel and Revoke are the actors' steps on a request.
func (s *Service) Approve(ctx context.Context, a governance.Actor, id, reason string) (*AccessRequest, error) {
	return s.step(ctx, a, id, decApprove, reason)
}

// Decline refuses a pending request with a reason.
func (s *Service) Decline(ctx context.Context, a governance.Actor, id, reason string) (*AccessRequest, error) {
	return s.step(ctx, a, id, decDecline, reason)
}

// Cancel withdraws the actor's own pending request.
func (s *Service) Cancel(ctx context.Context, a governance.Actor, id, reason string) (*AccessRequest, error) {
	return s.step(ctx, a, id, decCancel, reason)
}

// Revoke ends an approved grant and removes its ACLs.
func (s *Service) Revoke(ctx context.Context, a governance.Actor, id, reason string) (*AccessRequest, error) {
	return s.step(ctx, a, id, decRevoke, reason)
}

// step decides d on request id with a compare-and-swap, then applies the
// decision's ACL changes and records that they are done.
func (s *Service) step(ctx context.Context, actor governance.Actor, id string, d decision, reason string) (*AccessRequest, error) {
	for {
		before, rev, err := s.load(ctx, id)
		if err != nil {
			return nil, err
		}
		owner, err := s.owns(ctx, actor, before.Topic)
		if err != nil {
			return nil, err
		}
		if d == decCancel || d == decApprove || d == decDecline {
			// Seeing a request is a precondition of deciding it; a
			// stranger learns nothing about it.
			if ok := actor.Admin || owner || before.Requester == actor.String(); !ok {
				return nil, forbidden("%s may not see request %s", actor, id)
			}
		}
		r := *before
		r.ACLs = slices.Clone(before.ACLs)
		if err := decide(&r, d, actor, owner, s.o.FourEyes, reason, s.o.Now()); err != nil {
			return nil, err
		}
		ok, newRev, err := s.cas(ctx, &r, rev, governance.NewEvent(actor, "access."+d.String(), "access-request:"+r.ID, r.Topic,
			strings.TrimSpace(reason), before, &r))
		if err != nil {
			return nil, err
		}
		if !ok {
			continue // decided meanwhile elsewhere: decide again on what is stored
		}
		switch r.State {
		case StateApproved:
			return s.apply(ctx, &r, newRev)
		case StateRevoked:
			return s.releaseGrant(ctx, &r, newRev)
		}
		return &r, s.requests.WaitRev(ctx, newRev)
	}
}

// apply takes the approved grant r's holds (creating the bindings no
// other grant made), records them and marks r applied.
func (s *Service) apply(ctx context.Context, r *AccessRequest, rev int64) (*AccessRequest, error) {
	for i, j := range r.ACLs {
		a, err := fromJSON(j)
		if err != nil {
			return nil, fmt.Errorf("access: request %s holds an invalid ACL: %w", r.ID, err)
		}
		pre, err := s.book.hold(ctx, a, "request-"+r.ID)
		if err != nil {
			return nil, err
		}
		r.ACLs[i].Preexisting = pre
	}
	r.Applied = true
	for {
		ok, newRev, err := s.cas(ctx, r, rev)
		if err != nil {
			return nil, err
		}
		if ok {
			return r, s.requests.WaitRev(ctx, newRev)
		}
		// Revoked or expired while the bindings were made: release what
		// this call took (the other step may have released before).
		cur, curRev, err := s.load(ctx, r.ID)
		if err != nil {
			return nil, err
		}
		if cur.State == StateApproved {
			pre := r.ACLs
			r, rev = cur, curRev
			r.ACLs, r.Applied = pre, true
			continue
		}
		cur.ACLs = r.ACLs
		return s.releaseGrant(ctx, cur, curRev)
	}
}

// releaseGrant drops r's holds (deleting the bindings no other grant
// needs and none that existed without grants) and marks r released.
func (s *Service) releaseGrant(ctx context.Context, r *AccessRequest, rev int64) (*AccessRequest, error) {
	for _, j := range r.ACLs {
		a, err := fromJSON(j)
		if err != nil {
			return nil, fmt.Errorf("access: request %s holds an invalid ACL: %w", r.ID, err)
		}
		if err := s.book.release(ctx, a, "request-"+r.ID); err != nil {
			return nil, err
		}
	}
	for {
		r.Released = true
		ok, newRev, err := s.cas(ctx, r, rev)
		if err != nil {
			return nil, err
		}
		if ok {
			return r, s.requests.WaitRev(ctx, newRev)
		}
		cur, curRev, err := s.load(ctx, r.ID)
		if err != nil {
			if errors.Is(err, governance.ErrNotFound) {
				return r, nil
			}
			return nil, err
		}
		if cur.Released {
			return cur, s.requests.WaitRev(ctx, curRev)
		}
		r, rev = cur, curRev
	}
}

// sweepLoop sweeps every SweepInterval until Close.
func (s *Service) sweepLoop(ctx context.Context) {
	defer s.wg.Done()
	t := time.NewTicker(s.o.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
			s.o.Logger.Warn("access: sweeping grants and shares", "err", err)
		}
	}
}

// Sweep expires what is due (releasing grants' ACLs and shares'
// credentials), finishes steps a stopped broker left half done, and
// removes ended requests and shares older than the retention. Every
// broker sweeps; the compare-and-swaps make one of them do each step.
func (s *Service) Sweep(ctx context.Context) error {
	now := s.o.Now()
	s.mu.Lock()
	reqs, shs := s.reqList, s.shList
	s.mu.Unlock()
	var errs []error
	for _, r := range reqs {
		if err := s.sweepRequest(ctx, r, now); err != nil {
			errs = append(errs, err)
		}
	}
	for _, sh := range shs {
		if err := s.sweepShare(ctx, sh, now); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (s *Service) sweepRequest(ctx context.Context, seen *AccessRequest, now time.Time) error {
	due := seen.ExpiresAt != nil && !seen.ExpiresAt.After(now) && (seen.State == StatePending || seen.State == StateApproved)
	unapplied := seen.State == StateApproved && !seen.Applied && seen.DecidedAt != nil && now.Sub(*seen.DecidedAt) > finishAfter
	unreleased := (seen.State == StateRevoked || seen.State == StateExpired) && !seen.Released && len(seen.ACLs) > 0 &&
		seen.EndedAt != nil && now.Sub(*seen.EndedAt) > finishAfter
	old := seen.Final() && now.Sub(endOf(seen)) > s.o.Retention
	if !due && !unapplied && !unreleased && !old {
		return nil
	}
	r, rev, err := s.load(ctx, seen.ID)
	if err != nil {
		if errors.Is(err, governance.ErrNotFound) {
			return nil
		}
		return err
	}
	before := *r
	switch {
	case expire(r, now):
		ok, newRev, err := s.cas(ctx, r, rev, governance.NewEvent(systemActor, "access.expire", "access-request:"+r.ID, r.Topic,
			"expired at "+r.ExpiresAt.Format(time.RFC3339), &before, r))
		if err != nil || !ok {
			return err // another broker swept it
		}
		if len(r.ACLs) > 0 {
			_, err = s.releaseGrant(ctx, r, newRev)
		}
		return err
	case r.State == StateApproved && !r.Applied && unapplied:
		_, err := s.apply(ctx, r, rev)
		return err
	case (r.State == StateRevoked || r.State == StateExpired) && !r.Released && len(r.ACLs) > 0 && unreleased:
		_, err := s.releaseGrant(ctx, r, rev)
		return err
	case r.Final() && now.Sub(endOf(r)) > s.o.Retention:
		_, err := s.o.Client.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(requestPrefix+r.ID), "=", rev)).
			Then(clientv3.OpDelete(requestPrefix + r.ID)).Commit()
		return err
	}
	return nil
}

// endOf is when a request ended.
func endOf(r *AccessRequest) time.Time {
	switch {
	case r.EndedAt != nil:
		return *r.EndedAt
	case r.DecidedAt != nil:
		return *r.DecidedAt
	}
	return r.CreatedAt
}

// decodeStored decodes a stored JSON object of kind what for a mirror;
// one that does not decode or has no id is logged and left out.
func decodeStored[T any](log *slog.Logger, what string, id func(*T) string) func(key string, v []byte) (*T, bool) {
	return func(key string, v []byte) (*T, bool) {
		x := new(T)
		if err := json.Unmarshal(v, x); err != nil || id(x) == "" {
			log.Warn("access: ignoring an unreadable "+what, "key", key, "err", err)
			return nil, false
		}
		return x, true
	}
}
