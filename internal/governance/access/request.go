package access

import (
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/auth"
	"github.com/runnel-dev/runnel/internal/governance"
)

// The states of an access request. PENDING moves to APPROVED, DECLINED,
// CANCELLED or EXPIRED; APPROVED to REVOKED or EXPIRED; the others are
// final.
const (
	StatePending   = "PENDING"
	StateApproved  = "APPROVED"
	StateDeclined  = "DECLINED"
	StateCancelled = "CANCELLED"
	StateExpired   = "EXPIRED"
	StateRevoked   = "REVOKED"
)

// The operations a request may ask for.
const (
	OpRead  = "READ"
	OpWrite = "WRITE"
)

// Bounds of what a request may carry.
const (
	DefaultMaxExpiry = 366 * 24 * time.Hour
	maxReasonBytes   = 2000
	maxGroupBytes    = 249
)

// ACLJSON is a binding as the API shows it.
type ACLJSON struct {
	ResourceType string `json:"resourceType"`
	ResourceName string `json:"resourceName"`
	PatternType  string `json:"patternType"`
	Principal    string `json:"principal"`
	Host         string `json:"host"`
	Operation    string `json:"operation"`
	Permission   string `json:"permission"`
	// Preexisting marks a binding that existed, not made by a grant,
	// when the grant was approved: releasing the grant leaves it.
	Preexisting bool `json:"preexisting,omitempty"`
}

// AccessRequest is one request for access to a topic, and the grant it
// becomes once approved.
type AccessRequest struct {
	ID            string     `json:"id"`
	Topic         string     `json:"topic"`
	Operation     string     `json:"operation"`
	Group         string     `json:"group,omitempty"`
	Reason        string     `json:"reason"`
	Requester     string     `json:"requester"`
	RequesterHost string     `json:"requesterHost"`
	ExpiresAt     *time.Time `json:"expiresAt"`
	// Duration, when asked for instead of ExpiresAt, starts at the
	// approval, which sets ExpiresAt.
	Duration       string     `json:"duration,omitempty"`
	State          string     `json:"state"`
	DecidedBy      string     `json:"decidedBy,omitempty"`
	DecisionReason string     `json:"decisionReason,omitempty"`
	CreatedAt      time.Time  `json:"createdAt"`
	DecidedAt      *time.Time `json:"decidedAt"`
	EndedAt        *time.Time `json:"endedAt,omitempty"`
	EndedBy        string     `json:"endedBy,omitempty"`
	ACLs           []ACLJSON  `json:"acls"`
	// Applied is true once an approval's ACLs are in place; Released
	// once a revoked or expired grant's ACLs are removed. A sweeper
	// finishes what a broker that stopped half way left undone.
	Applied  bool `json:"applied,omitempty"`
	Released bool `json:"released,omitempty"`
}

// Final reports whether the request can change no more (its ACLs
// released, if it had any).
func (r *AccessRequest) Final() bool {
	switch r.State {
	case StateDeclined, StateCancelled:
		return true
	case StateExpired, StateRevoked:
		return r.Released || len(r.ACLs) == 0
	}
	return false
}

// NewRequest is the body of POST /api/v1/access-requests.
type NewRequest struct {
	Topic     string     `json:"topic"`
	Operation string     `json:"operation"`
	Group     string     `json:"group,omitempty"`
	Reason    string     `json:"reason"`
	ExpiresAt *time.Time `json:"expiresAt,omitempty"`
	Duration  string     `json:"duration,omitempty"`
}

// invalid is a 400 answer.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", governance.ErrInvalid, fmt.Sprintf(format, args...))
}

// validExpiry checks an expiry given as a time or a duration (not both):
// in the future and at most maxExpiry away. It returns the duration
// string normalised.
func validExpiry(at *time.Time, dur string, now time.Time, maxExpiry time.Duration) (string, error) {
	switch {
	case at != nil && dur != "":
		return "", invalid("give expiresAt or duration, not both")
	case at != nil:
		if !at.After(now) {
			return "", invalid("expiresAt %s is not in the future", at.UTC().Format(time.RFC3339))
		}
		if at.Sub(now) > maxExpiry {
			return "", invalid("expiresAt %s is more than %s away", at.UTC().Format(time.RFC3339), maxExpiry)
		}
	case dur != "":
		d, err := time.ParseDuration(dur)
		if err != nil {
			return "", invalid("duration %q: %v (e.g. \"720h\")", dur, err)
		}
		if d <= 0 {
			return "", invalid("duration %q must be positive", dur)
		}
		if d > maxExpiry {
			return "", invalid("duration %q is longer than %s", dur, maxExpiry)
		}
		return d.String(), nil
	}
	return "", nil
}

// validTopicName checks a topic name as Kafka does (the caller then
// checks that it exists).
func validTopicName(t string) error {
	if t == "" {
		return invalid("topic is required")
	}
	if len(t) > 249 || t == "." || t == ".." {
		return invalid("topic %q is not a valid topic name", t)
	}
	for _, c := range t {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return invalid("topic %q is not a valid topic name", t)
		}
	}
	return nil
}

// validate checks a new request's fields (not whether the topic exists)
// and normalises them.
func (n *NewRequest) validate(now time.Time, maxExpiry time.Duration) error {
	n.Topic = strings.TrimSpace(n.Topic)
	if err := validTopicName(n.Topic); err != nil {
		return err
	}
	n.Operation = strings.ToUpper(strings.TrimSpace(n.Operation))
	switch n.Operation {
	case OpRead, OpWrite:
	case "":
		return invalid("operation is required: READ or WRITE")
	default:
		return invalid("operation %q: want READ or WRITE", n.Operation)
	}
	if n.Group != "" {
		if n.Operation != OpRead {
			return invalid("a consumer group goes with READ only")
		}
		if len(n.Group) > maxGroupBytes || strings.TrimSpace(n.Group) != n.Group {
			return invalid("group %q is not a valid group id", n.Group)
		}
	}
	n.Reason = strings.TrimSpace(n.Reason)
	if n.Reason == "" {
		return invalid("reason is required: say why you need access")
	}
	if len(n.Reason) > maxReasonBytes {
		return invalid("reason is longer than %d bytes", maxReasonBytes)
	}
	d, err := validExpiry(n.ExpiresAt, n.Duration, now, maxExpiry)
	if err != nil {
		return err
	}
	n.Duration = d
	if n.ExpiresAt != nil {
		t := n.ExpiresAt.UTC()
		n.ExpiresAt = &t
	}
	return nil
}

// grantACLs are exactly the bindings a request asks for: READ (and
// DESCRIBE) or WRITE (and DESCRIBE) on the topic literal, and READ on
// the named group literal.
func grantACLs(r *AccessRequest) []auth.ACL {
	p := r.Requester
	op := kmsg.ACLOperationRead
	if r.Operation == OpWrite {
		op = kmsg.ACLOperationWrite
	}
	acl := func(typ kmsg.ACLResourceType, name string, op kmsg.ACLOperation) auth.ACL {
		return auth.ACL{ResourceType: typ, ResourceName: name, PatternType: kmsg.ACLResourcePatternTypeLiteral,
			Principal: p, Host: auth.Wildcard, Operation: op, Permission: kmsg.ACLPermissionTypeAllow}
	}
	out := []auth.ACL{
		acl(kmsg.ACLResourceTypeTopic, r.Topic, op),
		acl(kmsg.ACLResourceTypeTopic, r.Topic, kmsg.ACLOperationDescribe),
	}
	if r.Operation == OpRead && r.Group != "" {
		out = append(out, acl(kmsg.ACLResourceTypeGroup, r.Group, kmsg.ACLOperationRead))
	}
	return out
}

// toJSON shows a binding in the API's words.
func toJSON(a auth.ACL) ACLJSON {
	return ACLJSON{
		ResourceType: a.ResourceType.String(), ResourceName: a.ResourceName, PatternType: a.PatternType.String(),
		Principal: a.Principal, Host: a.Host, Operation: a.Operation.String(), Permission: a.Permission.String(),
	}
}

// fromJSON reads a binding back; the bindings stored on a request were
// written by toJSON.
func fromJSON(j ACLJSON) (auth.ACL, error) {
	typ, err := kmsg.ParseACLResourceType(j.ResourceType)
	if err != nil {
		return auth.ACL{}, err
	}
	pat, err := kmsg.ParseACLResourcePatternType(j.PatternType)
	if err != nil {
		return auth.ACL{}, err
	}
	op, err := kmsg.ParseACLOperation(j.Operation)
	if err != nil {
		return auth.ACL{}, err
	}
	perm, err := kmsg.ParseACLPermissionType(j.Permission)
	if err != nil {
		return auth.ACL{}, err
	}
	a := auth.ACL{ResourceType: typ, ResourceName: j.ResourceName, PatternType: pat, Principal: j.Principal,
		Host: j.Host, Operation: op, Permission: perm}
	return a, a.Validate()
}

// A decision is an actor's step on a request.
type decision int

const (
	decApprove decision = iota
	decDecline
	decCancel
	decRevoke
)

func (d decision) String() string {
	return [...]string{"approve", "decline", "cancel", "revoke"}[d]
}

// conflict is a 409 answer.
func conflict(format string, args ...any) error {
	return fmt.Errorf("%w: %s", governance.ErrConflict, fmt.Sprintf(format, args...))
}

// forbidden is a 403 answer.
func forbidden(format string, args ...any) error {
	return fmt.Errorf("%w: %s", governance.ErrForbidden, fmt.Sprintf(format, args...))
}

// decide applies d by actor to r (a copy the caller owns) at now: the
// pure part of a state change, checked against who the actor is. owner
// tells whether the actor owns the topic's product; fourEyes refuses
// approving one's own request.
func decide(r *AccessRequest, d decision, actor governance.Actor, owner, fourEyes bool, reason string, now time.Time) error {
	who := actor.String()
	approver := owner || actor.Admin
	reason = strings.TrimSpace(reason)
	if len(reason) > maxReasonBytes {
		return invalid("reason is longer than %d bytes", maxReasonBytes)
	}
	switch d {
	case decApprove, decDecline:
		if !approver {
			return forbidden("%s may not %s request %s: only the owner of %s or an administrator may", who, d, r.ID, r.Topic)
		}
		if r.State != StatePending {
			return conflict("request %s is %s, not PENDING", r.ID, r.State)
		}
		if d == decApprove && fourEyes && who == r.Requester {
			return forbidden("%s may not approve their own request (four-eyes)", who)
		}
		if d == decDecline && reason == "" {
			return invalid("a decline needs a reason (it is shown to the requester)")
		}
		r.DecidedBy, r.DecisionReason = who, reason
		t := now.UTC()
		r.DecidedAt = &t
		if d == decDecline {
			r.State = StateDeclined
			return nil
		}
		if r.ExpiresAt != nil && !r.ExpiresAt.After(now) {
			return conflict("request %s expired at %s", r.ID, r.ExpiresAt.Format(time.RFC3339))
		}
		if r.Duration != "" {
			dur, err := time.ParseDuration(r.Duration)
			if err != nil {
				return fmt.Errorf("access: request %s has an unreadable duration %q: %w", r.ID, r.Duration, err)
			}
			exp := t.Add(dur)
			r.ExpiresAt = &exp
		}
		r.State = StateApproved
		r.ACLs = r.ACLs[:0]
		for _, a := range grantACLs(r) {
			r.ACLs = append(r.ACLs, toJSON(a))
		}
	case decCancel:
		if who != r.Requester {
			return forbidden("only the requester %s may cancel request %s", r.Requester, r.ID)
		}
		if r.State != StatePending {
			return conflict("request %s is %s: only a PENDING request can be cancelled", r.ID, r.State)
		}
		r.State = StateCancelled
		t := now.UTC()
		r.EndedAt, r.EndedBy = &t, who
	case decRevoke:
		if !approver {
			return forbidden("%s may not revoke request %s: only the owner of %s or an administrator may", who, r.ID, r.Topic)
		}
		if r.State != StateApproved {
			return conflict("request %s is %s: only an APPROVED grant can be revoked", r.ID, r.State)
		}
		if reason == "" {
			return invalid("a revocation needs a reason")
		}
		r.State = StateRevoked
		t := now.UTC()
		r.EndedAt, r.EndedBy = &t, who
		r.DecisionReason = reason
	}
	return nil
}

// expire moves a pending request past its expiry, or an approved grant
// past its, to EXPIRED; false when r is not due.
func expire(r *AccessRequest, now time.Time) bool {
	if r.ExpiresAt == nil || r.ExpiresAt.After(now) || (r.State != StatePending && r.State != StateApproved) {
		return false
	}
	r.State = StateExpired
	t := now.UTC()
	r.EndedAt, r.EndedBy = &t, "runnel"
	return true
}
