package protocol

import (
	"context"
	"net"
)

// ClientInfo identifies the client a request came from: its Kafka client id
// and its host as Kafka reports it ("/127.0.0.1"). Group coordinators show
// both per member.
type ClientInfo struct {
	ID   string
	Host string
}

type clientInfoKey struct{}

// withClientInfo returns ctx carrying info.
func withClientInfo(ctx context.Context, info ClientInfo) context.Context {
	return context.WithValue(ctx, clientInfoKey{}, info)
}

// ClientInfoFrom returns the client of the request ctx belongs to (zero
// outside a request).
func ClientInfoFrom(ctx context.Context) ClientInfo {
	info, _ := ctx.Value(clientInfoKey{}).(ClientInfo)
	return info
}

// clientHost renders a remote address the way Kafka reports client hosts.
func clientHost(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	return "/" + host
}
