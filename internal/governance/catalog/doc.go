// Package catalog is the stream catalog (DESIGN §7, governance): every
// topic of the log is a data product, with the metadata people give it
// (owner, description, domain, tags, lifecycle, typed business metadata,
// links, field tags), the fields of its key and value schemas with their
// tags, its data contract, and a sample of its newest records decoded
// through the registry with sensitive fields masked. It serves the
// products, teams and tag definitions under /api/v1 and answers who owns a
// product (governance.Owners) for access requests and shares.
//
// It owns the keys under governance.Prefix+"catalog/": one JSON object per
// product, team and tag definition, each carrying a version that every
// write compares and bumps (a stale version is a conflict). Every broker
// keeps them in memory, loaded and then fed by an etcd watch, and waits
// for its own write to appear there before answering, so all brokers give
// the same answers and a writer reads its own writes. Search runs over an
// in-memory inverted index updated one product at a time, as metadata,
// topics and schemas change; a query never rebuilds it.
//
// It reaches the log and the registry only through its Log and Registry
// interfaces, wired by the broker. It never writes records, topics or
// schemas, never deletes a topic (deleting a product deletes its metadata
// only), and never answers a sample to a caller without READ on the topic.
package catalog
