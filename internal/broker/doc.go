// Package broker assembles one Runnel broker: metadata store, object store,
// storage engine, cluster membership, group coordinator, share groups (the
// GROUP config store, the share engine and its dead-letter writer,
// share.go), the Kafka listener and the HTTP endpoint (/healthz, /readyz,
// /metrics, /share/groups/{group}). It owns start-up
// order, graceful shutdown and suspending the Kafka listener while the
// cluster reports the broker unhealthy (health.go), and nothing else: it must never hold domain
// logic, which lives in the packages it wires together.
package broker
