// Package tableflow holds end-to-end tests of Tableflow seen from outside:
// records produced by third-party clients with their schema registry
// serializers (kafkajs with @kafkajs/confluent-schema-registry for Avro and
// JSON Schema, python3-confluent-kafka's ProtobufSerializer for Protobuf)
// into topics with table.enabled=true, then read back as Iceberg tables by
// a reader that shares no code with Runnel: js/read_table.mjs finds the
// table through the REST catalog (/iceberg), walks the metadata file,
// manifest list and manifests itself (Avro, with avsc) and has DuckDB
// (@duckdb/node-api) count and sum the Parquet data files. The tests
// compare its row count and column sums with what was produced.
//
// reader_test.go proves the reader on its own, against tables written by
// iceberg-go and served by a stand-in REST catalog, so a failure of the
// end-to-end test (table_test.go) is the broker's, not the reader's.
//
// A test whose client is not installed is skipped, unless the environment
// variable RUNNEL_REQUIRE_CLIENTS is set (scripts/test sets it and installs
// them). This package has no non-test code and must never import the
// broker's internal packages: it sees Runnel only over the Kafka protocol,
// the schema registry and the REST catalog, as a user would.
package tableflow
