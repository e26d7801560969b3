// Package protocol is Runnel's Kafka front end: it accepts TCP connections,
// reads frames through internal/wire, decodes requests with kmsg, dispatches
// them through one table of {api key, versions, handler} (the same table
// ApiVersions advertises) and writes responses strictly in request order.
//
// Handlers follow one shape: validate → call a domain interface (Log,
// Cluster, Groups in backend.go) → map errors through errors.go → fill the
// kmsg response. The package holds no durable state; the only state it owns
// is per-connection, the bounded fetch session cache (KIP-227) and the
// bounded share session cache (KIP-932), whose sessions end with the
// connection that opened them.
//
// It must never panic on client input, never block a connection's ordering
// (one request at a time per connection), and never sleep in a loop: long
// polls wait on Log.Changed (share fetches on Shares.Changed too).
package protocol
