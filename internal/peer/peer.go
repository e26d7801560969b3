package peer

import "context"

// Broker is a live broker as seen in Metadata.
type Broker struct {
	NodeID int32
	Host   string
	Port   int32
	Rack   *string
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
