// Package registry is Runnel's schema registry: a Confluent-compatible REST
// API (subjects, versions, schema ids, configs, modes, compatibility checks,
// references, contexts) with its state in etcd, so ids are unique and
// stable across brokers and restarts, and the data contracts (metadata and
// rule sets) that the broker enforces on produce.
//
// Schema formats (Avro, Protobuf, JSON Schema) implement Format in their own
// packages; this package never imports a schema library. It never reads or
// writes record data itself: enforcement hands it a record's key or value
// bytes and gets a verdict.
package registry
