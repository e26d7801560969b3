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

// State lives in etcd under Options.Prefix (layout in store.go): one record
// per subject holding all its versions, immutable schema records per
// context and id, an id counter per context, content hashes so the same
// schema keeps its id, usage and referenced-by indexes, configs and modes.
// Every write is one Txn guarded by the revisions it was decided on, so
// brokers registering at once never hand out an id or a version twice, and
// every read is linearizable, so all brokers answer alike. The REST API
// (Handler) is a thin layer over the Go methods the broker also calls
// (SchemaByID, LatestForSubject). This package must never import a format
// package nor the broker.
//
// Access: SecureHandler authorizes every request through an Authorizer
// with Kafka's ACLs. A subject is authorized as the topic it belongs to
// ("<topic>-key" and "<topic>-value" as <topic>, any other subject as a
// topic named like the subject, contexts ignored); reads need DESCRIBE,
// registering and lookups WRITE, deletes DELETE, a subject's config and
// mode DESCRIBE_CONFIGS or ALTER_CONFIGS; global and context settings need
// those on the cluster. Listings show only what the caller may DESCRIBE.
// The full mapping is in access.go. The caller's identity comes with the
// request's context; this package never authenticates anyone.
