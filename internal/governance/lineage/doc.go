// Package lineage draws the lineage graph of the cluster's topics from
// real traffic (DESIGN §7, governance): who produces to and consumes from
// each topic, with principal, client id, client software, transactional
// id, group, first and last seen, and bytes and records in total and over
// the last minute; transactional consume → produce chains (a group's input
// topics and the outputs of the transactional id that commits its offsets
// are one job); Tableflow tables, dead-letter and retry topics as nodes.
// It serves the graph under /api/v1/lineage and a product's clients under
// /api/v1/products/{topic}/clients, and exports it as OpenLineage run
// events.
//
// What it owns:
//   - Recorder: the Kafka front end's observer (the broker adapts
//     protocol.LineageConn to Conn). A connection's facts are added to
//     its own small map under its own lock; a drain every second moves
//     them into the broker's Aggregate. Nothing on the request path takes
//     a lock shared by connections, allocates per batch or does I/O.
//   - Aggregate: the broker's edges, bounded (MaxEdges, the least
//     recently seen evicted) and retained for Options.Retention, with a
//     one-minute window in 10-second buckets.
//   - Service: persists the broker's aggregate under
//     Prefix+"lineage/brokers/<id>" every few seconds (one compressed,
//     size-bounded value per broker, written only when it changed) and
//     mirrors every broker's (metadata.Mirror), so every broker answers
//     from the cluster's merged graph.
//   - Exporter: one per cluster, elected through etcd, POSTs OpenLineage
//     run events from a bounded queue with retries, never blocking.
//
// It must never: import internal/protocol, internal/stream,
// internal/broker or another governance part (the broker wires topics,
// group configs, lag, schemas and owners in through Options); do etcd or
// HTTP I/O on a Kafka request's path; keep unbounded memory.
package lineage
