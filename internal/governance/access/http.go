package access

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"github.com/runnel-dev/runnel/internal/governance"
)

// The API (api/openapi.yaml):
//
//	POST   /api/v1/access-requests                  create (any authenticated caller)
//	GET    /api/v1/access-requests?state=&topic=&role=mine|approver
//	GET    /api/v1/access-requests/{id}
//	POST   /api/v1/access-requests/{id}/approve|decline|cancel|revoke
//	GET    /api/v1/audit?topic=&actor=&action=&resource=&limit=
//	POST   /api/v1/shares                           (owner or administrator)
//	GET    /api/v1/shares?topic=
//	GET    /api/v1/shares/{id}
//	DELETE /api/v1/shares/{id}                      revoke

// List bounds.
const (
	defaultLimit = 50
	maxLimit     = 1000
)

// Mount adds the API to mux; wrap authenticates each handler (the
// broker's guard) and authz decides the callers' ACLs (nil: everything
// allowed).
func (s *Service) Mount(mux *http.ServeMux, wrap func(http.Handler) http.Handler, authz governance.Authorizer) {
	h := func(pattern string, fn func(w http.ResponseWriter, r *http.Request, a governance.Actor) error) {
		mux.Handle(pattern, wrap(governance.Handler(authz, fn)))
	}
	h("POST /api/v1/access-requests", s.handleCreate)
	h("GET /api/v1/access-requests", s.handleList)
	h("GET /api/v1/access-requests/{id}", s.handleGet)
	h("POST /api/v1/access-requests/{id}/{action}", s.handleStep)
	h("GET /api/v1/audit", s.handleAudit)
	h("POST /api/v1/shares", s.handleCreateShare)
	h("GET /api/v1/shares", s.handleListShares)
	h("GET /api/v1/shares/{id}", s.handleGetShare)
	h("DELETE /api/v1/shares/{id}", s.handleRevokeShare)
}

// listParams reads limit and offset.
func listParams(r *http.Request) (limit, offset int, err error) {
	limit, offset = defaultLimit, 0
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			return 0, 0, invalid("limit %q: want 1..%d", v, maxLimit)
		}
		limit = n
	}
	if v := r.URL.Query().Get("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return 0, 0, invalid("offset %q: want a number >= 0", v)
		}
		offset = n
	}
	return limit, offset, nil
}

type listAnswer[T any] struct {
	Items []T `json:"items"`
	Total int `json:"total"`
}

func (s *Service) handleCreate(w http.ResponseWriter, r *http.Request, a governance.Actor) error {
	var n NewRequest
	if err := governance.ReadJSON(r, &n, 0); err != nil {
		return err
	}
	req, err := s.Create(r.Context(), a, n)
	if err != nil {
		return err
	}
	governance.WriteJSON(w, http.StatusCreated, req)
	return nil
}

func (s *Service) handleList(w http.ResponseWriter, r *http.Request, a governance.Actor) error {
	limit, offset, err := listParams(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	items, total, err := s.List(r.Context(), a, RequestFilter{State: q.Get("state"), Topic: q.Get("topic"), Role: q.Get("role")}, limit, offset)
	if err != nil {
		return err
	}
	if items == nil {
		items = []*AccessRequest{}
	}
	governance.WriteJSON(w, http.StatusOK, listAnswer[*AccessRequest]{Items: items, Total: total})
	return nil
}

func (s *Service) handleGet(w http.ResponseWriter, r *http.Request, a governance.Actor) error {
	req, err := s.Get(r.Context(), a, r.PathValue("id"))
	if err != nil {
		return err
	}
	governance.WriteJSON(w, http.StatusOK, req)
	return nil
}

// stepBody is the body of approve, decline, cancel and revoke (optional
// for approve and cancel).
type stepBody struct {
	Reason string `json:"reason"`
}

func (s *Service) handleStep(w http.ResponseWriter, r *http.Request, a governance.Actor) error {
	var step func(context.Context, governance.Actor, string, string) (*AccessRequest, error)
	switch r.PathValue("action") {
	case "approve":
		step = s.Approve
	case "decline":
		step = s.Decline
	case "cancel":
		step = s.Cancel
	case "revoke":
		step = s.Revoke
	default:
		return governance.Errorf(http.StatusNotFound, "no action %q: want approve, decline, cancel or revoke", r.PathValue("action"))
	}
	var body stepBody
	if r.ContentLength != 0 {
		if err := governance.ReadJSON(r, &body, 0); err != nil {
			return err
		}
	}
	req, err := step(r.Context(), a, r.PathValue("id"), body.Reason)
	if err != nil {
		return err
	}
	governance.WriteJSON(w, http.StatusOK, req)
	return nil
}

// handleAudit lists the audit log: administrators see every event,
// others the events they caused, those about the products they own and
// those about their own requests.
func (s *Service) handleAudit(w http.ResponseWriter, r *http.Request, a governance.Actor) error {
	limit, _, err := listParams(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	f := AuditFilter{Topic: q.Get("topic"), Actor: q.Get("actor"), Action: q.Get("action"), Resource: q.Get("resource")}
	items, err := s.audit.List(r.Context(), f, limit, s.auditVisibility(r.Context(), a))
	if err != nil {
		return err
	}
	governance.WriteJSON(w, http.StatusOK, listAnswer[governance.Event]{Items: items, Total: len(items)})
	return nil
}

// auditVisibility is what events actor may see; nil for everything.
func (s *Service) auditVisibility(ctx context.Context, actor governance.Actor) func(governance.Event) (bool, error) {
	if actor.Admin {
		return nil
	}
	me := actor.String()
	owned := map[string]bool{}
	requester := map[string]string{}
	return func(e governance.Event) (bool, error) {
		if e.Actor == me {
			return true, nil
		}
		if id, ok := strings.CutPrefix(e.Resource, "access-request:"); ok {
			who, seen := requester[id]
			if !seen {
				who = s.requesterOf(id)
				requester[id] = who
			}
			if who == me {
				return true, nil
			}
		}
		if e.Topic == "" {
			return false, nil
		}
		o, seen := owned[e.Topic]
		if !seen {
			var err error
			if o, err = s.owns(ctx, actor, e.Topic); err != nil {
				return false, err
			}
			owned[e.Topic] = o
		}
		return o, nil
	}
}

// requesterOf is the requester of a stored request, "" when unknown.
func (s *Service) requesterOf(id string) string {
	s.mu.Lock()
	all := s.reqList
	s.mu.Unlock()
	lo, hi := 0, len(all)
	for lo < hi { // all is in id order
		m := (lo + hi) / 2
		if all[m].ID < id {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < len(all) && all[lo].ID == id {
		return all[lo].Requester
	}
	return ""
}

func (s *Service) handleCreateShare(w http.ResponseWriter, r *http.Request, a governance.Actor) error {
	var n NewShare
	if err := governance.ReadJSON(r, &n, 0); err != nil {
		return err
	}
	created, err := s.CreateShare(r.Context(), a, n)
	if err != nil {
		return err
	}
	governance.WriteJSON(w, http.StatusCreated, created)
	return nil
}

func (s *Service) handleListShares(w http.ResponseWriter, r *http.Request, a governance.Actor) error {
	limit, offset, err := listParams(r)
	if err != nil {
		return err
	}
	items, total, err := s.ListShares(r.Context(), a, r.URL.Query().Get("topic"), limit, offset)
	if err != nil {
		return err
	}
	if items == nil {
		items = []*Share{}
	}
	governance.WriteJSON(w, http.StatusOK, listAnswer[*Share]{Items: items, Total: total})
	return nil
}

func (s *Service) handleGetShare(w http.ResponseWriter, r *http.Request, a governance.Actor) error {
	sh, err := s.GetShare(r.Context(), a, r.PathValue("id"))
	if err != nil {
		return err
	}
	governance.WriteJSON(w, http.StatusOK, sh)
	return nil
}

func (s *Service) handleRevokeShare(w http.ResponseWriter, r *http.Request, a governance.Actor) error {
	sh, err := s.RevokeShare(r.Context(), a, r.PathValue("id"))
	if err != nil {
		return err
	}
	governance.WriteJSON(w, http.StatusOK, sh)
	return nil
}
