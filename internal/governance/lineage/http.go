package lineage

import (
	"fmt"
	"net/http"

	"github.com/runnel-dev/runnel/internal/governance"
)

// The API (api/openapi.yaml). Reading lineage is open to every
// authenticated principal: discovery is the point.

// HandleLineage answers GET /api/v1/lineage?topic=&depth=1|all: the
// whole graph without topic, else the edges touching the topic (depth 1,
// the default) or everything upstream and downstream of it (all).
func (s *Service) HandleLineage(w http.ResponseWriter, r *http.Request, _ governance.Actor) error {
	q := r.URL.Query()
	all := false
	switch d := q.Get("depth"); d {
	case "", "1":
	case "all":
		all = true
	default:
		return governance.Errorf(http.StatusBadRequest, "depth must be 1 or all, not %q", d)
	}
	g := s.Graph()
	if topic := q.Get("topic"); topic != "" {
		id := TopicID(topic)
		if !g.HasNode(id) {
			return fmt.Errorf("%w: topic %q does not exist and has no lineage", governance.ErrNotFound, topic)
		}
		g = g.Around(id, all)
	}
	governance.WriteJSON(w, http.StatusOK, g)
	return nil
}

// Consumer is a consumes edge of a product with its group's lag on the
// topic, when the group's coordinator reported it.
type Consumer struct {
	GraphEdge
	LagRecords *int64   `json:"lagRecords,omitempty"`
	LagSeconds *float64 `json:"lagSeconds,omitempty"`
	Status     string   `json:"status,omitempty"`
}

// Throughput is a product's traffic over the last WindowSeconds.
type Throughput struct {
	BytesInPerSec    float64 `json:"bytesInPerSec"`
	RecordsInPerSec  float64 `json:"recordsInPerSec"`
	BytesOutPerSec   float64 `json:"bytesOutPerSec"`
	RecordsOutPerSec float64 `json:"recordsOutPerSec"`
}

// Clients is the answer of GET /api/v1/products/{topic}/clients.
type Clients struct {
	Producers  []GraphEdge `json:"producers"`
	Consumers  []Consumer  `json:"consumers"`
	Throughput Throughput  `json:"throughput"`
}

// Clients returns the producers and consumers of topic with the consuming
// groups' lag; ok is false when the topic neither exists nor has lineage.
func (s *Service) Clients(topic string) (Clients, bool) {
	g := s.Graph()
	id := TopicID(topic)
	if !g.HasNode(id) {
		return Clients{}, false
	}
	return clientsOf(g, id, topic, s.Lags()), true
}

func clientsOf(g Graph, id, topic string, lags map[[2]string]Lag) Clients {
	c := Clients{Producers: []GraphEdge{}, Consumers: []Consumer{}}
	var in, inRecs, out, outRecs int64
	for _, e := range g.Edges {
		switch {
		case e.Kind == EdgeProduces && e.To == id:
			c.Producers = append(c.Producers, e)
			if e.Window != nil {
				in += e.Window.Bytes
				inRecs += e.Window.Records
			}
		case e.Kind == EdgeConsumes && e.From == id:
			ce := Consumer{GraphEdge: e}
			if l, ok := lags[[2]string{e.Group, topic}]; ok && e.Group != "" {
				recs := l.Records
				ce.LagRecords, ce.Status = &recs, l.Status
				if l.HasSeconds {
					secs := l.Seconds
					ce.LagSeconds = &secs
				}
			}
			c.Consumers = append(c.Consumers, ce)
			if e.Window != nil {
				out += e.Window.Bytes
				outRecs += e.Window.Records
			}
		}
	}
	c.Throughput = Throughput{
		BytesInPerSec: float64(in) / WindowSeconds, RecordsInPerSec: float64(inRecs) / WindowSeconds,
		BytesOutPerSec: float64(out) / WindowSeconds, RecordsOutPerSec: float64(outRecs) / WindowSeconds,
	}
	return c
}

// HandleClients answers GET /api/v1/products/{topic}/clients.
func (s *Service) HandleClients(w http.ResponseWriter, r *http.Request, _ governance.Actor) error {
	topic := r.PathValue("topic")
	c, ok := s.Clients(topic)
	if !ok {
		return fmt.Errorf("%w: topic %q does not exist and has no lineage", governance.ErrNotFound, topic)
	}
	governance.WriteJSON(w, http.StatusOK, c)
	return nil
}
