package catalog

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/governance"
)

// The catalog's REST API (api/openapi.yaml). Reading is open to
// every authenticated caller; a sample needs READ on the topic; writes
// check ownership and administration in the Catalog's methods.

// Mount adds the catalog's routes to mux, each handler wrapped by wrap
// (the broker's authentication).
func (c *Catalog) Mount(mux *http.ServeMux, wrap func(http.Handler) http.Handler) {
	h := func(fn func(w http.ResponseWriter, r *http.Request, a governance.Actor) error) http.Handler {
		return wrap(governance.Handler(c.o.Authorizer, fn))
	}
	mux.Handle("GET /api/v1/products", h(c.httpList))
	mux.Handle("GET /api/v1/products/{topic}", h(c.httpGet))
	mux.Handle("PUT /api/v1/products/{topic}", h(c.httpPut))
	mux.Handle("DELETE /api/v1/products/{topic}", h(c.httpDelete))
	mux.Handle("GET /api/v1/products/{topic}/schema/diff", h(c.httpDiff))
	mux.Handle("GET /api/v1/products/{topic}/sample", h(c.httpSample))
	mux.Handle("GET /api/v1/teams", h(c.httpTeams))
	mux.Handle("GET /api/v1/teams/{name}", h(c.httpTeam))
	mux.Handle("PUT /api/v1/teams/{name}", h(c.httpPutTeam))
	mux.Handle("DELETE /api/v1/teams/{name}", h(c.httpDeleteTeam))
	mux.Handle("GET /api/v1/tags", h(c.httpTags))
	mux.Handle("GET /api/v1/tags/{name}", h(c.httpTag))
	mux.Handle("PUT /api/v1/tags/{name}", h(c.httpPutTag))
	mux.Handle("DELETE /api/v1/tags/{name}", h(c.httpDeleteTag))
}

// page reads limit (default 50, 1..1000) and offset (0 or more).
func page(r *http.Request) (limit, offset int, err error) {
	limit, offset = 50, 0
	if s := r.URL.Query().Get("limit"); s != "" {
		if limit, err = strconv.Atoi(s); err != nil || limit < 1 || limit > 1000 {
			return 0, 0, invalid("limit %q: want a number from 1 to 1000", s)
		}
	}
	if s := r.URL.Query().Get("offset"); s != "" {
		if offset, err = strconv.Atoi(s); err != nil || offset < 0 {
			return 0, 0, invalid("offset %q: want a number, 0 or more", s)
		}
	}
	return limit, offset, nil
}

func (c *Catalog) httpList(w http.ResponseWriter, r *http.Request, _ governance.Actor) error {
	limit, offset, err := page(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	if lc := q.Get("lifecycle"); lc != "" && !containsString(lifecycles, lc) {
		return invalid("lifecycle %q: want one of draft, active, deprecated, retired", lc)
	}
	res, err := c.Search(Query{Text: q.Get("q"), Tags: q["tag"], Owner: q.Get("owner"), Domain: q.Get("domain"),
		Lifecycle: q.Get("lifecycle"), Limit: limit, Offset: offset})
	if err != nil {
		return err
	}
	governance.WriteJSON(w, http.StatusOK, res)
	return nil
}

func (c *Catalog) httpGet(w http.ResponseWriter, r *http.Request, _ governance.Actor) error {
	p, err := c.Product(r.Context(), r.PathValue("topic"))
	if err != nil {
		return err
	}
	governance.WriteJSON(w, http.StatusOK, p)
	return nil
}

func (c *Catalog) httpPut(w http.ResponseWriter, r *http.Request, a governance.Actor) error {
	var u ProductUpdate
	if err := governance.ReadJSON(r, &u, 0); err != nil {
		return err
	}
	p, err := c.PutProduct(r.Context(), a, r.PathValue("topic"), u)
	if err != nil {
		return err
	}
	governance.WriteJSON(w, http.StatusOK, p)
	return nil
}

func (c *Catalog) httpDelete(w http.ResponseWriter, r *http.Request, a governance.Actor) error {
	if err := c.DeleteProduct(r.Context(), a, r.PathValue("topic")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (c *Catalog) httpDiff(w http.ResponseWriter, r *http.Request, _ governance.Actor) error {
	q := r.URL.Query()
	from, err1 := strconv.Atoi(q.Get("from"))
	to, err2 := strconv.Atoi(q.Get("to"))
	if err1 != nil || err2 != nil {
		return invalid("from and to must be version numbers, e.g. ?from=1&to=2")
	}
	d, err := c.Diff(r.Context(), r.PathValue("topic"), from, to)
	if err != nil {
		return err
	}
	governance.WriteJSON(w, http.StatusOK, d)
	return nil
}

func (c *Catalog) httpSample(w http.ResponseWriter, r *http.Request, a governance.Actor) error {
	topic := r.PathValue("topic")
	if err := ValidTopic(topic); err != nil {
		return err
	}
	limit := 10
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxSample {
			return invalid("limit %q: want a number from 1 to %d", s, MaxSample)
		}
		limit = n
	}
	if !a.May(kmsg.ACLOperationRead, kmsg.ACLResourceTypeTopic, topic) {
		return fmt.Errorf("%w: reading records of %s needs READ on the topic; request access", governance.ErrForbidden, topic)
	}
	s, err := c.Sample(r.Context(), topic, limit)
	if err != nil {
		return err
	}
	governance.WriteJSON(w, http.StatusOK, s)
	return nil
}

// list is the answer of the team and tag listings.
type list[T any] struct {
	Items []T `json:"items"`
	Total int `json:"total"`
}

func paged[T any](r *http.Request, all []T) (list[T], error) {
	limit, offset, err := page(r)
	if err != nil {
		return list[T]{}, err
	}
	out := list[T]{Items: []T{}, Total: len(all)}
	if offset < len(all) {
		out.Items = all[offset:min(len(all), offset+limit)]
	}
	return out, nil
}

func (c *Catalog) httpTeams(w http.ResponseWriter, r *http.Request, _ governance.Actor) error {
	l, err := paged(r, c.Teams())
	if err != nil {
		return err
	}
	governance.WriteJSON(w, http.StatusOK, l)
	return nil
}

func (c *Catalog) httpTeam(w http.ResponseWriter, r *http.Request, _ governance.Actor) error {
	t, err := c.Team(r.PathValue("name"))
	if err != nil {
		return err
	}
	governance.WriteJSON(w, http.StatusOK, t)
	return nil
}

func (c *Catalog) httpPutTeam(w http.ResponseWriter, r *http.Request, a governance.Actor) error {
	var u TeamUpdate
	if err := governance.ReadJSON(r, &u, 0); err != nil {
		return err
	}
	t, err := c.PutTeam(r.Context(), a, r.PathValue("name"), u)
	if err != nil {
		return err
	}
	governance.WriteJSON(w, http.StatusOK, t)
	return nil
}

func (c *Catalog) httpDeleteTeam(w http.ResponseWriter, r *http.Request, a governance.Actor) error {
	if err := c.DeleteTeam(r.Context(), a, r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (c *Catalog) httpTags(w http.ResponseWriter, r *http.Request, _ governance.Actor) error {
	l, err := paged(r, c.TagDefs())
	if err != nil {
		return err
	}
	governance.WriteJSON(w, http.StatusOK, l)
	return nil
}

func (c *Catalog) httpTag(w http.ResponseWriter, r *http.Request, _ governance.Actor) error {
	t, err := c.TagDef(r.PathValue("name"))
	if err != nil {
		return err
	}
	governance.WriteJSON(w, http.StatusOK, t)
	return nil
}

func (c *Catalog) httpPutTag(w http.ResponseWriter, r *http.Request, a governance.Actor) error {
	var u TagUpdate
	if err := governance.ReadJSON(r, &u, 0); err != nil {
		return err
	}
	t, err := c.PutTag(r.Context(), a, r.PathValue("name"), u)
	if err != nil {
		return err
	}
	governance.WriteJSON(w, http.StatusOK, t)
	return nil
}

func (c *Catalog) httpDeleteTag(w http.ResponseWriter, r *http.Request, a governance.Actor) error {
	if err := c.DeleteTag(r.Context(), a, r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
