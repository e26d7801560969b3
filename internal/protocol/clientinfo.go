package protocol

import "net"

// clientHost renders a remote address the way Kafka reports client hosts.
func clientHost(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	return "/" + host
}
