// Package asyncapi describes the cluster's data products as an AsyncAPI
// 3.0 document and creates them from one (DESIGN §7, governance).
//
// Export builds the document of the whole cluster or of chosen topics:
// a server per Kafka listener (its security schemes and the schema
// registry in its Kafka binding), a channel per topic (its Kafka binding
// with partitions and topic configuration; description, tags, owner,
// domain and links from the catalog), a message per topic whose payload
// is the latest schema of the topic's value subject (Avro and Protobuf
// as multi-format schemas, JSON Schema inline as draft-07) and
// operations for the producers and consumer groups lineage observed.
//
// Import reads such a document (YAML or JSON) and plans, for every
// channel, the topic to create, the value (and key) subject to register
// and the catalog metadata to set, each compared with what the cluster
// already has; a dry run answers the plan, an apply carries it out in
// the order topics, subjects, products and says what it did.
//
// It owns the document's shape and the plan; it reaches topics, the
// schema registry, the catalog and lineage only through the small
// interfaces in asyncapi.go, which the broker implements. It must never
// import internal/broker, internal/stream, internal/protocol,
// internal/registry or another governance part, and never changes
// anything on a dry run or on a document that does not validate.
package asyncapi
