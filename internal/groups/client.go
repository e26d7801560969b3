package groups

import "context"

type clientKey struct{}

type clientInfo struct{ id, host string }

// WithClient returns a context carrying the Kafka client id and host of the
// connection a request came from; DescribeGroups reports them per member.
func WithClient(ctx context.Context, clientID, host string) context.Context {
	return context.WithValue(ctx, clientKey{}, clientInfo{id: clientID, host: host})
}

func clientIDFrom(ctx context.Context) string {
	ci, _ := ctx.Value(clientKey{}).(clientInfo)
	return ci.id
}

func clientHostFrom(ctx context.Context) string {
	ci, _ := ctx.Value(clientKey{}).(clientInfo)
	return ci.host
}
