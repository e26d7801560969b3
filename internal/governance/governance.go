package governance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/auth"
)

// Prefix is the etcd prefix governance state lives under; each
// subpackage keeps its keys under Prefix + its own name + "/".
const Prefix = "/runnel/governance/"

// MaxBodyBytes bounds an API request body (an AsyncAPI import may set
// its own, larger bound).
const MaxBodyBytes = 1 << 20

// Authorizer decides with Kafka's ACL semantics whether a principal,
// connecting from host, may perform op on a resource; it allows
// everything while authorization is off. auth.HTTPAuthorizer.
type Authorizer = auth.HTTPAuthorizer

// Actor is the caller of an API request: its principal and host (put in
// the request's context by auth.Guard) and whether it is an
// administrator: a principal allowed ALTER on the cluster resource, as
// Kafka's own admin operations require.
type Actor struct {
	Principal auth.Principal
	Host      string
	Admin     bool
	authz     Authorizer
}

// ActorOf returns the caller of r, authenticated by an auth.Guard; ok is
// false when no Guard authenticated r (a wiring bug: answer 401).
// A nil authorizer allows everything.
func ActorOf(r *http.Request, a Authorizer) (Actor, bool) {
	p, host, ok := auth.RequestPrincipal(r.Context())
	if !ok {
		return Actor{}, false
	}
	act := Actor{Principal: p, Host: host, authz: a}
	act.Admin = act.May(kmsg.ACLOperationAlter, kmsg.ACLResourceTypeCluster, auth.ClusterResourceName)
	return act, true
}

// May reports whether the actor may perform op on the resource (typ,
// name) under the cluster's ACLs.
func (a Actor) May(op kmsg.ACLOperation, typ kmsg.ACLResourceType, name string) bool {
	if a.authz == nil {
		return true
	}
	return a.authz.Authorize(a.Principal, a.Host, op, typ, name)
}

// String names the actor as audit events and API answers do:
// "User:alice".
func (a Actor) String() string { return a.Principal.String() }

// Owners answers who owns a product. An owner is a principal ("User:bob")
// or a team ("Team:payments") whose members are principals. The catalog
// implements it; access requests and shares use it to decide who may
// approve and share.
type Owners interface {
	// Owner returns the owner of the product of topic; ok is false when
	// the topic has no product or the product no owner.
	Owner(ctx context.Context, topic string) (owner string, ok bool, err error)
	// Owns reports whether p is the product's owner or a member of the
	// owning team.
	Owns(ctx context.Context, topic string, p auth.Principal) (bool, error)
}

// Event is one audited step: who did what, when, from where, to which
// resource, with the resource's state before and after (JSON values;
// nil for a creation's before or a deletion's after).
type Event struct {
	ID       string          `json:"id"` // assigned by the Auditor, time-ordered
	Time     time.Time       `json:"time"`
	Actor    string          `json:"actor"` // "User:alice"
	Host     string          `json:"host"`
	Action   string          `json:"action"`   // "access.request", "access.approve", "product.update", ...
	Resource string          `json:"resource"` // "topic:orders", "access-request:<id>", "share:<id>"
	Topic    string          `json:"topic,omitempty"`
	Reason   string          `json:"reason,omitempty"`
	Before   json.RawMessage `json:"before,omitempty"`
	After    json.RawMessage `json:"after,omitempty"`
}

// Auditor records audit events durably: Record returns once the event
// is stored, and a step whose event cannot be stored must fail.
type Auditor interface {
	Record(ctx context.Context, e Event) error
}

// NewEvent builds an event by actor on resource, with before and after
// marshalled to JSON (nil stays absent).
func NewEvent(a Actor, action, resource, topic, reason string, before, after any) Event {
	return Event{
		Actor: a.String(), Host: a.Host, Action: action, Resource: resource, Topic: topic,
		Reason: reason, Before: rawJSON(before), After: rawJSON(after),
	}
}

func rawJSON(v any) json.RawMessage {
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		// The audited states are plain structs; one that does not
		// marshal is a programming error worth seeing in the log.
		b, _ = json.Marshal(map[string]string{"unmarshalable": err.Error()})
	}
	return b
}

// Error is an API error: its HTTP status, an error code in the
// registry's style (status × 100 + n, e.g. 40401) and a message for
// people. Handlers return it; WriteError answers it.
type Error struct {
	Status  int
	Code    int
	Message string
}

func (e *Error) Error() string { return e.Message }

// Errorf builds an *Error with status and code status*100+1.
func Errorf(status int, format string, args ...any) *Error {
	return &Error{Status: status, Code: status*100 + 1, Message: fmt.Sprintf(format, args...)}
}

// The API's common errors.
var (
	ErrNotFound     = errors.New("governance: not found")
	ErrConflict     = errors.New("governance: conflict")
	ErrForbidden    = errors.New("governance: forbidden")
	ErrInvalid      = errors.New("governance: invalid")
	ErrUnauthorized = errors.New("governance: not authenticated")
)

// errorBody is the JSON every API error answers with.
type errorBody struct {
	ErrorCode int    `json:"error_code"`
	Message   string `json:"message"`
}

// WriteError answers err: an *Error as it says, the sentinels above
// (wrapped with a message) as 404, 409, 403, 400 and 401, anything else
// as 500 with its text (the API's callers are the cluster's own users).
func WriteError(w http.ResponseWriter, err error) {
	var e *Error
	switch {
	case errors.As(err, &e):
	case errors.Is(err, ErrNotFound):
		e = &Error{http.StatusNotFound, 40401, err.Error()}
	case errors.Is(err, ErrConflict):
		e = &Error{http.StatusConflict, 40901, err.Error()}
	case errors.Is(err, ErrForbidden):
		e = &Error{http.StatusForbidden, 40301, err.Error()}
	case errors.Is(err, ErrInvalid):
		e = &Error{http.StatusBadRequest, 40001, err.Error()}
	case errors.Is(err, ErrUnauthorized):
		e = &Error{http.StatusUnauthorized, 40101, err.Error()}
	default:
		e = &Error{http.StatusInternalServerError, 50001, "internal error: " + err.Error()}
	}
	WriteJSON(w, e.Status, errorBody{ErrorCode: e.Code, Message: e.Message})
}

// WriteJSON answers v as JSON with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

// ReadJSON decodes r's body, at most max bytes (MaxBodyBytes when <= 0),
// into v, refusing unknown fields, trailing data and a content type
// other than JSON, with 400 (415 for the content type) errors that say
// what is wrong.
func ReadJSON(r *http.Request, v any, max int64) error {
	if max <= 0 {
		max = MaxBodyBytes
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return &Error{http.StatusUnsupportedMediaType, 41501, "the body must be JSON (Content-Type: application/json)"}
		}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, max+1))
	if err != nil {
		return Errorf(http.StatusBadRequest, "reading the body: %v", err)
	}
	if int64(len(body)) > max {
		return &Error{http.StatusRequestEntityTooLarge, 41301, fmt.Sprintf("the body is larger than %d bytes", max)}
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return Errorf(http.StatusBadRequest, "invalid JSON body: %v", err)
	}
	if dec.More() {
		return Errorf(http.StatusBadRequest, "invalid JSON body: data after the object")
	}
	return nil
}

// Handler adapts an API handler that returns an error: the error is
// answered with WriteError. A request no Guard authenticated is 401.
func Handler(authz Authorizer, fn func(w http.ResponseWriter, r *http.Request, a Actor) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := ActorOf(r, authz)
		if !ok {
			WriteError(w, fmt.Errorf("%w: no authenticated principal", ErrUnauthorized))
			return
		}
		if err := fn(w, r, a); err != nil {
			WriteError(w, err)
		}
	})
}
