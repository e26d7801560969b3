package governance

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/auth"
)

func TestReadJSON(t *testing.T) {
	type body struct {
		Topic string `json:"topic"`
	}
	for _, tc := range []struct {
		name, ct, body string
		max            int64
		status         int // 0: accepted
	}{
		{name: "ok", ct: "application/json", body: `{"topic":"orders"}`},
		{name: "no content type", body: `{"topic":"orders"}`},
		{name: "json suffix", ct: "application/merge-patch+json", body: `{"topic":"orders"}`},
		{name: "unknown field", ct: "application/json", body: `{"topic":"orders","owner":"x"}`, status: 400},
		{name: "trailing data", ct: "application/json", body: `{"topic":"a"}{"topic":"b"}`, status: 400},
		{name: "not json", ct: "application/json", body: `topic=orders`, status: 400},
		{name: "form", ct: "application/x-www-form-urlencoded", body: `topic=orders`, status: 415},
		{name: "too large", ct: "application/json", body: `{"topic":"` + strings.Repeat("x", 100) + `"}`, max: 64, status: 413},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", strings.NewReader(tc.body))
			if tc.ct != "" {
				r.Header.Set("Content-Type", tc.ct)
			}
			var b body
			err := ReadJSON(r, &b, tc.max)
			var e *Error
			switch {
			case tc.status == 0 && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.status == 0 && b.Topic != "orders":
				t.Fatalf("decoded %+v", b)
			case tc.status != 0 && (!errors.As(err, &e) || e.Status != tc.status):
				t.Fatalf("error %v, want status %d", err, tc.status)
			}
		})
	}
}

func TestWriteError(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
		code   int
	}{
		{fmt.Errorf("%w: no product orders", ErrNotFound), 404, 40401},
		{fmt.Errorf("%w: version 3 is stale", ErrConflict), 409, 40901},
		{fmt.Errorf("%w: not the owner", ErrForbidden), 403, 40301},
		{fmt.Errorf("%w: bad tag", ErrInvalid), 400, 40001},
		{ErrUnauthorized, 401, 40101},
		{Errorf(422, "odd"), 422, 42201},
		{errors.New("etcd down"), 500, 50001},
	} {
		w := httptest.NewRecorder()
		WriteError(w, tc.err)
		var b errorBody
		if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil || w.Code != tc.status || b.ErrorCode != tc.code || b.Message == "" {
			t.Errorf("%v: %d %s, want %d with code %d", tc.err, w.Code, w.Body, tc.status, tc.code)
		}
	}
}

// allowList allows exactly the listed "principal op type name" checks.
type allowList map[string]bool

func (a allowList) Authorize(p auth.Principal, _ string, op kmsg.ACLOperation, typ kmsg.ACLResourceType, name string) bool {
	return a[fmt.Sprint(p, " ", op, " ", typ, " ", name)]
}

func TestHandlerActor(t *testing.T) {
	admin := auth.Principal{Type: "User", Name: "admin"}
	alice := auth.Principal{Type: "User", Name: "alice"}
	authz := allowList{fmt.Sprint(admin, " ", kmsg.ACLOperationAlter, " ", kmsg.ACLResourceTypeCluster, " ", auth.ClusterResourceName): true}
	var got Actor
	h := Handler(authz, func(w http.ResponseWriter, r *http.Request, a Actor) error {
		got = a
		return nil
	})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	if w.Code != 401 {
		t.Fatalf("a request no guard authenticated: %d, want 401", w.Code)
	}
	for _, tc := range []struct {
		p     auth.Principal
		admin bool
	}{{admin, true}, {alice, false}} {
		r := httptest.NewRequest("GET", "/", nil)
		r = r.WithContext(auth.WithRequestPrincipal(r.Context(), tc.p, "10.0.0.7"))
		h.ServeHTTP(httptest.NewRecorder(), r)
		if got.Principal != tc.p || got.Host != "10.0.0.7" || got.Admin != tc.admin {
			t.Fatalf("actor %+v, want %v admin=%v", got, tc.p, tc.admin)
		}
	}
	if open := (Actor{}); !open.May(kmsg.ACLOperationRead, kmsg.ACLResourceTypeTopic, "orders") {
		t.Fatal("without an authorizer every actor may everything")
	}
}
