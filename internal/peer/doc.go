// Package peer names the parties a broker deals with, for the packages that
// serve them: a broker of the cluster as clients see it in Metadata (Broker)
// and the client a request came from (ClientInfo, carried in the request's
// context).
//
// It is a leaf: the Kafka front end (internal/protocol), membership
// (internal/cluster) and the group coordinator (internal/groups) share these
// types through it, so none of them imports another only for a type. It must
// never import another package of this module, and holds no state.
package peer
