package broker

import (
	"context"
	"net/http"

	"github.com/runnel-dev/runnel/internal/auth"
	"github.com/runnel-dev/runnel/internal/protocol"
)

// govLineage is the broker's lineage part of governance (governance.go).
type govLineage struct{}

func (b *Broker) openLineage(ctx context.Context) error { return nil }

func (b *Broker) mountLineage(mux *http.ServeMux, g *auth.Guard) {}

func (b *Broker) closeLineage() error { return nil }

// lineageProtocolOptions sets the Kafka front end's lineage observer.
func (b *Broker) lineageProtocolOptions(o *protocol.Options) {}
