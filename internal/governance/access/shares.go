package access

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/runnel-dev/runnel/internal/auth"
	"github.com/runnel-dev/runnel/internal/config"
	"github.com/runnel-dev/runnel/internal/governance"
)

// The states of a share.
const (
	ShareActive  = "ACTIVE"
	ShareRevoked = "REVOKED"
	ShareExpired = "EXPIRED"
)

// ShareUserPrefix starts every share's user name: "share-<id>".
const ShareUserPrefix = "share-"

// shareMechanism is the mechanism a share's recipient is told to use
// (credentials are stored for SCRAM-SHA-256 too).
const shareMechanism = config.MechanismSCRAMSHA512

// passwordBytes is the entropy of a share's password (192 bits).
const passwordBytes = 24

// ShareQuota limits what a share's user may consume.
type ShareQuota struct {
	// ConsumerByteRate is the user's fetch bytes per second, across the
	// cluster.
	ConsumerByteRate int64 `json:"consumerByteRate"`
}

// Share is a topic shared with an outside party through a SCRAM user of
// its own, limited to reading the topic.
type Share struct {
	ID          string      `json:"id"`
	Topic       string      `json:"topic"`
	Recipient   string      `json:"recipient"`
	Description string      `json:"description,omitempty"`
	Username    string      `json:"username"`
	CreatedBy   string      `json:"createdBy"`
	CreatedHost string      `json:"createdHost,omitempty"`
	CreatedAt   time.Time   `json:"createdAt"`
	ExpiresAt   *time.Time  `json:"expiresAt"`
	State       string      `json:"state"`
	RevokedBy   string      `json:"revokedBy,omitempty"`
	RevokedAt   *time.Time  `json:"revokedAt"`
	Quota       *ShareQuota `json:"quota"`
	// Cleaned is true once an ended share's user, ACLs and quota are
	// gone.
	Cleaned bool `json:"cleaned,omitempty"`
}

// NewShare is the body of POST /api/v1/shares.
type NewShare struct {
	Topic       string      `json:"topic"`
	Recipient   string      `json:"recipient"`
	Description string      `json:"description,omitempty"`
	ExpiresAt   *time.Time  `json:"expiresAt,omitempty"`
	Duration    string      `json:"duration,omitempty"`
	Quota       *ShareQuota `json:"quota,omitempty"`
}

// ShareCredentials are the share's user and password, answered once.
type ShareCredentials struct {
	Username  string `json:"username"`
	Password  string `json:"password"`
	Mechanism string `json:"mechanism"`
}

// CreatedShare is the answer to creating a share.
type CreatedShare struct {
	Share       *Share           `json:"share"`
	Credentials ShareCredentials `json:"credentials"`
	Connection  Connection       `json:"connection"`
}

// shareACLs are the share user's only bindings: READ and DESCRIBE on the
// topic literal, READ on the groups its user name prefixes.
func shareACLs(sh *Share) []auth.ACL {
	p := auth.User(sh.Username).String()
	acl := func(typ kmsg.ACLResourceType, name string, pat kmsg.ACLResourcePatternType, op kmsg.ACLOperation) auth.ACL {
		return auth.ACL{ResourceType: typ, ResourceName: name, PatternType: pat, Principal: p, Host: auth.Wildcard,
			Operation: op, Permission: kmsg.ACLPermissionTypeAllow}
	}
	return []auth.ACL{
		acl(kmsg.ACLResourceTypeTopic, sh.Topic, kmsg.ACLResourcePatternTypeLiteral, kmsg.ACLOperationRead),
		acl(kmsg.ACLResourceTypeTopic, sh.Topic, kmsg.ACLResourcePatternTypeLiteral, kmsg.ACLOperationDescribe),
		acl(kmsg.ACLResourceTypeGroup, sh.Username, kmsg.ACLResourcePatternTypePrefixed, kmsg.ACLOperationRead),
	}
}

func (n *NewShare) validate(now time.Time, maxExpiry time.Duration) (*time.Time, error) {
	n.Topic = strings.TrimSpace(n.Topic)
	if err := validTopicName(n.Topic); err != nil {
		return nil, err
	}
	n.Recipient = strings.TrimSpace(n.Recipient)
	switch {
	case n.Recipient == "":
		return nil, invalid("recipient is required: who the topic is shared with")
	case len(n.Recipient) > 200:
		return nil, invalid("recipient is longer than 200 bytes")
	case len(n.Description) > maxReasonBytes:
		return nil, invalid("description is longer than %d bytes", maxReasonBytes)
	case n.Quota != nil && n.Quota.ConsumerByteRate <= 0:
		return nil, invalid("quota.consumerByteRate must be a positive number of bytes per second")
	}
	d, err := validExpiry(n.ExpiresAt, n.Duration, now, maxExpiry)
	if err != nil {
		return nil, err
	}
	switch {
	case n.ExpiresAt != nil:
		t := n.ExpiresAt.UTC()
		return &t, nil
	case d != "":
		dur, _ := time.ParseDuration(d)
		t := now.Add(dur).UTC()
		return &t, nil
	}
	return nil, nil
}

// mayShare reports whether actor may share topic (its owner or an
// administrator).
func (s *Service) mayShare(ctx context.Context, actor governance.Actor, topic string) (bool, error) {
	if actor.Admin {
		return true, nil
	}
	return s.owns(ctx, actor, topic)
}

// CreateShare mints a user for the recipient with a fresh password,
// READ on the topic and the optional quota.
func (s *Service) CreateShare(ctx context.Context, actor governance.Actor, n NewShare) (*CreatedShare, error) {
	now := s.o.Now()
	exp, err := n.validate(now, s.o.MaxExpiry)
	if err != nil {
		return nil, err
	}
	if !s.o.TopicExists(n.Topic) {
		return nil, fmt.Errorf("%w: topic %s does not exist", governance.ErrNotFound, n.Topic)
	}
	if ok, err := s.mayShare(ctx, actor, n.Topic); err != nil || !ok {
		if err == nil {
			err = forbidden("%s may not share %s: only its owner or an administrator may", actor, n.Topic)
		}
		return nil, err
	}
	conn, ok := s.o.Connection()
	if !ok {
		return nil, governance.Errorf(http.StatusConflict, "the brokers have no SASL listener with SCRAM: a share's recipient could not connect")
	}
	conn.SASLMechanism = shareMechanism
	if s.o.Credentials == nil {
		return nil, governance.Errorf(http.StatusConflict, "SCRAM credentials are not available on this broker")
	}
	if n.Quota != nil && s.o.Quotas == nil {
		return nil, governance.Errorf(http.StatusConflict, "quotas are not available on this broker")
	}
	s.mu.Lock()
	count := len(s.shList)
	s.mu.Unlock()
	if count >= s.o.MaxShares {
		return nil, governance.Errorf(429, "too many shares stored (%d): ended ones are removed after %s", count, s.o.Retention)
	}
	id := s.ids.next(now)
	sh := &Share{
		ID: id, Topic: n.Topic, Recipient: n.Recipient, Description: n.Description, Username: ShareUserPrefix + id,
		CreatedBy: actor.String(), CreatedHost: actor.Host, CreatedAt: now.UTC(), ExpiresAt: exp, State: ShareActive,
		Quota: n.Quota,
	}
	pw := make([]byte, passwordBytes)
	if _, err := rand.Read(pw); err != nil {
		return nil, fmt.Errorf("access: password: %w", err)
	}
	password := base64.RawURLEncoding.EncodeToString(pw)

	// The record first: whatever follows, a sweep or a revocation then
	// knows the user exists and removes it.
	b, err := json.Marshal(sh)
	if err != nil {
		return nil, err
	}
	key := sharePrefix + id
	tr, err := s.o.Client.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).Then(clientv3.OpPut(key, string(b))).Commit()
	if err != nil {
		return nil, fmt.Errorf("access: store share: %w", err)
	}
	if !tr.Succeeded {
		return nil, conflict("share id %s taken", id)
	}
	err = s.provision(ctx, sh, password)
	if err == nil {
		var ops []clientv3.Op
		if ops, err = s.auditOps([]governance.Event{governance.NewEvent(actor, "share.create", "share:"+id, sh.Topic, sh.Recipient, nil, sh)}); err == nil {
			if _, err = s.o.Client.Do(ctx, ops[0]); err != nil {
				err = fmt.Errorf("access: store audit event: %w", err)
			}
		}
	}
	if err != nil {
		// Undo what was made: nobody got the password.
		s.cleanShare(context.WithoutCancel(ctx), sh)
		s.o.Client.Delete(context.WithoutCancel(ctx), key)
		return nil, err
	}
	if err := s.shares.WaitRev(ctx, tr.Header.Revision); err != nil {
		return nil, err
	}
	return &CreatedShare{Share: sh, Credentials: ShareCredentials{Username: sh.Username, Password: password, Mechanism: shareMechanism},
		Connection: conn}, nil
}

// provision stores the share user's credentials, bindings and quota.
func (s *Service) provision(ctx context.Context, sh *Share, password string) error {
	if err := s.o.Credentials.SetPassword(ctx, sh.Username, password, auth.SCRAMMechanisms, s.o.SCRAMIterations); err != nil {
		return fmt.Errorf("access: share credentials: %w", err)
	}
	if err := errors.Join(s.o.ACLs.Create(ctx, shareACLs(sh))...); err != nil {
		return fmt.Errorf("access: share ACLs: %w", err)
	}
	if sh.Quota != nil {
		errs, err := s.o.Quotas.Alter(ctx, []auth.QuotaAlteration{quotaAlteration(sh, false)}, false)
		if err = errors.Join(append(errs, err)...); err != nil {
			return fmt.Errorf("access: share quota: %w", err)
		}
	}
	return nil
}

func quotaAlteration(sh *Share, remove bool) auth.QuotaAlteration {
	user := sh.Username
	op := auth.QuotaOp{Key: string(auth.ConsumerByteRate), Remove: remove}
	if !remove {
		op.Value = float64(sh.Quota.ConsumerByteRate)
	}
	return auth.QuotaAlteration{Entity: []auth.QuotaComponent{{Type: auth.QuotaEntityUser, Name: &user}}, Ops: []auth.QuotaOp{op}}
}

// cleanShare removes the share user's bindings first (a connected client
// is refused on its next request), then its credentials and quota.
func (s *Service) cleanShare(ctx context.Context, sh *Share) error {
	p := auth.User(sh.Username).String()
	f := auth.Filter{ResourceType: kmsg.ACLResourceTypeAny, PatternType: kmsg.ACLResourcePatternTypeAny, Principal: &p,
		Operation: kmsg.ACLOperationAny, Permission: kmsg.ACLPermissionTypeAny}
	_, errs := s.o.ACLs.Delete(ctx, []auth.Filter{f})
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("access: delete the ACLs of %s: %w", sh.Username, err)
	}
	if s.o.Credentials != nil {
		for _, m := range auth.SCRAMMechanisms {
			if err := s.o.Credentials.Delete(ctx, sh.Username, m); err != nil && !errors.Is(err, auth.ErrCredentialNotFound) {
				return fmt.Errorf("access: delete the credentials of %s: %w", sh.Username, err)
			}
		}
	}
	if sh.Quota != nil && s.o.Quotas != nil {
		errs, err := s.o.Quotas.Alter(ctx, []auth.QuotaAlteration{quotaAlteration(sh, true)}, false)
		if err = errors.Join(append(errs, err)...); err != nil {
			return fmt.Errorf("access: delete the quota of %s: %w", sh.Username, err)
		}
	}
	return nil
}

func (s *Service) loadShare(ctx context.Context, id string) (*Share, int64, error) {
	if id == "" || strings.Contains(id, "/") {
		return nil, 0, fmt.Errorf("%w: no share %q", governance.ErrNotFound, id)
	}
	resp, err := s.o.Client.Get(ctx, sharePrefix+id)
	if err != nil {
		return nil, 0, fmt.Errorf("access: read share: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return nil, 0, fmt.Errorf("%w: no share %s", governance.ErrNotFound, id)
	}
	var sh Share
	if err := json.Unmarshal(resp.Kvs[0].Value, &sh); err != nil {
		return nil, 0, fmt.Errorf("access: share %s is unreadable: %w", id, err)
	}
	return &sh, resp.Kvs[0].ModRevision, nil
}

// casShare stores sh, and the events of the step, if its key is still at
// rev; false when it moved.
func (s *Service) casShare(ctx context.Context, sh *Share, rev int64, events ...governance.Event) (bool, int64, error) {
	b, err := json.Marshal(sh)
	if err != nil {
		return false, 0, err
	}
	ops, err := s.auditOps(events)
	if err != nil {
		return false, 0, err
	}
	key := sharePrefix + sh.ID
	tr, err := s.o.Client.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
		Then(append(ops, clientv3.OpPut(key, string(b)))...).Commit()
	if err != nil {
		return false, 0, fmt.Errorf("access: store share %s: %w", sh.ID, err)
	}
	return tr.Succeeded, tr.Header.Revision, nil
}

// mayViewShare: administrators, the topic's owner and the share's
// creator.
func (s *Service) mayViewShare(ctx context.Context, actor governance.Actor, sh *Share) (bool, error) {
	if actor.Admin || sh.CreatedBy == actor.String() {
		return true, nil
	}
	return s.owns(ctx, actor, sh.Topic)
}

// GetShare returns a share the actor may see.
func (s *Service) GetShare(ctx context.Context, actor governance.Actor, id string) (*Share, error) {
	sh, _, err := s.loadShare(ctx, id)
	if err != nil {
		return nil, err
	}
	if ok, err := s.mayViewShare(ctx, actor, sh); err != nil || !ok {
		if err == nil {
			err = forbidden("%s may not see share %s", actor, id)
		}
		return nil, err
	}
	return sh, nil
}

// ListShares returns the shares (of topic, when set) the actor may see,
// newest first, and their number.
func (s *Service) ListShares(ctx context.Context, actor governance.Actor, topic string, limit, offset int) ([]*Share, int, error) {
	s.mu.Lock()
	all := s.shList
	s.mu.Unlock()
	owned := map[string]bool{}
	var out []*Share
	for i := len(all) - 1; i >= 0; i-- {
		sh := all[i]
		if topic != "" && sh.Topic != topic {
			continue
		}
		ok := actor.Admin || sh.CreatedBy == actor.String()
		if !ok {
			o, seen := owned[sh.Topic]
			if !seen {
				var err error
				if o, err = s.owns(ctx, actor, sh.Topic); err != nil {
					return nil, 0, err
				}
				owned[sh.Topic] = o
			}
			ok = o
		}
		if ok {
			out = append(out, sh)
		}
	}
	return page(out, limit, offset), len(out), nil
}

// RevokeShare ends an active share: its user can no longer read the
// topic (refused on its next request on every broker), log in, or use
// its quota.
func (s *Service) RevokeShare(ctx context.Context, actor governance.Actor, id string) (*Share, error) {
	for {
		sh, rev, err := s.loadShare(ctx, id)
		if err != nil {
			return nil, err
		}
		ok, err := s.mayShare(ctx, actor, sh.Topic)
		if err != nil {
			return nil, err
		}
		if !ok && sh.CreatedBy != actor.String() {
			return nil, forbidden("%s may not revoke share %s: only the owner of %s or an administrator may", actor, id, sh.Topic)
		}
		if sh.State != ShareActive {
			return nil, conflict("share %s is %s, not ACTIVE", id, sh.State)
		}
		before := *sh
		now := s.o.Now().UTC()
		sh.State, sh.RevokedBy, sh.RevokedAt = ShareRevoked, actor.String(), &now
		won, newRev, err := s.casShare(ctx, sh, rev, governance.NewEvent(actor, "share.revoke", "share:"+id, sh.Topic, sh.Recipient, &before, sh))
		if err != nil {
			return nil, err
		}
		if !won {
			continue
		}
		return s.finishShare(ctx, sh, newRev)
	}
}

// finishShare cleans an ended share and marks it cleaned.
func (s *Service) finishShare(ctx context.Context, sh *Share, rev int64) (*Share, error) {
	if err := s.cleanShare(ctx, sh); err != nil {
		return nil, err
	}
	for {
		sh.Cleaned = true
		ok, newRev, err := s.casShare(ctx, sh, rev)
		if err != nil {
			return nil, err
		}
		if ok {
			return sh, s.shares.WaitRev(ctx, newRev)
		}
		cur, curRev, err := s.loadShare(ctx, sh.ID)
		if err != nil {
			if errors.Is(err, governance.ErrNotFound) {
				return sh, nil
			}
			return nil, err
		}
		if cur.Cleaned {
			return cur, s.shares.WaitRev(ctx, curRev)
		}
		sh, rev = cur, curRev
	}
}

func (s *Service) sweepShare(ctx context.Context, seen *Share, now time.Time) error {
	due := seen.State == ShareActive && seen.ExpiresAt != nil && !seen.ExpiresAt.After(now)
	unclean := seen.State != ShareActive && !seen.Cleaned && seen.RevokedAt != nil && now.Sub(*seen.RevokedAt) > finishAfter
	old := seen.State != ShareActive && seen.Cleaned && seen.RevokedAt != nil && now.Sub(*seen.RevokedAt) > s.o.Retention
	if !due && !unclean && !old {
		return nil
	}
	sh, rev, err := s.loadShare(ctx, seen.ID)
	if err != nil {
		if errors.Is(err, governance.ErrNotFound) {
			return nil
		}
		return err
	}
	switch {
	case sh.State == ShareActive && sh.ExpiresAt != nil && !sh.ExpiresAt.After(now):
		before := *sh
		t := now.UTC()
		sh.State, sh.RevokedBy, sh.RevokedAt = ShareExpired, systemActor.String(), &t
		ok, newRev, err := s.casShare(ctx, sh, rev, governance.NewEvent(systemActor, "share.expire", "share:"+sh.ID, sh.Topic,
			"expired at "+sh.ExpiresAt.Format(time.RFC3339), &before, sh))
		if err != nil || !ok {
			return err
		}
		_, err = s.finishShare(ctx, sh, newRev)
		return err
	case sh.State != ShareActive && !sh.Cleaned && unclean:
		_, err := s.finishShare(ctx, sh, rev)
		return err
	case old && sh.Cleaned:
		_, err := s.o.Client.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(sharePrefix+sh.ID), "=", rev)).
			Then(clientv3.OpDelete(sharePrefix + sh.ID)).Commit()
		return err
	}
	return nil
}
