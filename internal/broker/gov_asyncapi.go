package broker

import (
	"context"
	"net/http"

	"github.com/runnel-dev/runnel/internal/auth"
)

// govAsyncAPI is the broker's asyncapi part of governance (governance.go).
type govAsyncAPI struct{}

func (b *Broker) openAsyncAPI(ctx context.Context) error { return nil }

func (b *Broker) mountAsyncAPI(mux *http.ServeMux, g *auth.Guard) {}

func (b *Broker) closeAsyncAPI() error { return nil }
