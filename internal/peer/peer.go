package peer

import "context"

// Broker is a live broker as seen in Metadata. Host and Port are its first
// listener's advertised address; Endpoints lists every listener's, so a
// client is told the addresses of the listener it connected to.
type Broker struct {
	NodeID    int32
	Host      string
	Port      int32
	Rack      *string
	Endpoints []Endpoint `json:",omitempty"`
}

// Endpoint is one listener's advertised address.
type Endpoint struct {
	Listener string
	Host     string
	Port     int32
}

// On returns b as seen by a client of the named listener: Host and Port
// are that listener's address. ok is false when b has listeners but not
// that one (Kafka leaves such a broker out of the answer). A broker that
// registered no endpoints is the same on every listener.
func (b Broker) On(listener string) (Broker, bool) {
	if len(b.Endpoints) == 0 {
		return b, true
	}
	for _, e := range b.Endpoints {
		if e.Listener == listener {
			b.Host, b.Port = e.Host, e.Port
			return b, true
		}
	}
	return b, false
}

// ClientInfo identifies the client a request came from: its Kafka client id
// and its host as Kafka reports it ("/127.0.0.1"). Group coordinators show
// both per member.
type ClientInfo struct {
	ID   string
	Host string
}

type clientInfoKey struct{}

// WithClient returns ctx carrying info; the Kafka front end attaches it to
// every request's context.
func WithClient(ctx context.Context, info ClientInfo) context.Context {
	return context.WithValue(ctx, clientInfoKey{}, info)
}

// ClientFrom returns the client of the request ctx belongs to (zero outside
// a request).
func ClientFrom(ctx context.Context) ClientInfo {
	info, _ := ctx.Value(clientInfoKey{}).(ClientInfo)
	return info
}
