// Package cli builds the runnel command line: the server entry point
// (runnel serve) and the client commands (topic, produce, consume, group, txn, schema,
// bench) that talk to any Kafka-compatible cluster through franz-go.
//
// The package owns flag parsing, human-readable output and error messages.
// It must never hold broker logic: serve only assembles a config.Config and
// a logger and hands them to broker.Run, and every client command speaks the
// Kafka protocol through kgo/kadm exactly as a third-party client would.
package cli
