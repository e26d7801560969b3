// Package wire owns the Kafka framing layer: reading size-prefixed request
// frames with a hard size limit checked before any allocation, parsing request
// headers (v1 and flexible v2, KIP-482), and encoding response frames with the
// right header version (ApiVersions responses always use header v0, KIP-511).
//
// It never interprets request bodies (internal/protocol does, with kmsg) and
// never panics on client input: every malformed frame is an error, after which
// the caller closes the connection.
package wire
