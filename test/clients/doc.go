// Package clients holds end-to-end tests that run the built runnel binary
// (through test/harness) and drive it with real third-party Kafka clients:
// kcat and python3-confluent-kafka (both librdkafka) and kafkajs. The
// Python and JavaScript programs live in python/ and js/; they print what
// they produced and consumed as JSON lines, and the Go tests check exact
// contents, offsets and counts. txn_test.go covers transactions: each
// client's transactional producer (commit, abort, commit), read_committed
// and read_uncommitted consumers, consume-transform-produce with offsets
// committed inside the transaction, and zombie fencing. registry_test.go
// drives the broker's schema registry with unchanged third-party clients:
// @kafkajs/confluent-schema-registry (register, encode, produce, consume,
// decode for Avro, Protobuf and JSON Schema) and python3-confluent-kafka's
// SchemaRegistryClient and serializers, checking ids and versions against
// franz-go's pkg/sr and Confluent's error statuses and codes.
// registry_kcat_test.go shows broker-side data contracts with kcat: a valid
// record accepted, records with an unknown id, a malformed payload or a
// failing rule rejected with INVALID_RECORD and nothing stored, and a DLQ
// rule's record accepted, left as a gap and found unchanged in the
// dead-letter topic with its headers. registry_protobuf_test.go pins what
// @kafkajs/confluent-schema-registry writes for Protobuf (no Confluent
// message indexes), which a validating topic refuses.
//
// A test whose client is not installed is skipped, unless the environment
// variable RUNNEL_REQUIRE_CLIENTS is set (scripts/test sets it), in which
// case a missing client fails the test. This package has no non-test code
// and must never import the broker's internal packages: it sees Runnel only
// over the Kafka protocol, as a user would.
package clients
