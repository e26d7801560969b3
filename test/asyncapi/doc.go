// Package asyncapi holds the end-to-end test of AsyncAPI export and
// import seen from outside: a broker (the built binary) with topics of
// Avro, JSON Schema and Protobuf values and their configs exports its
// AsyncAPI 3 document (through `runnel asyncapi export`), which
// @asyncapi/parser (npm, js/validate.mjs, with its Avro and Protobuf
// schema parsers) must parse without an error; then the document is
// imported (`runnel asyncapi import`) into a second, empty broker: the
// dry run plans creates, the apply recreates the topics (partitions,
// configs), the subjects (the same schemas) and the catalog entries, and
// a second import finds everything there.
//
// The test is skipped when node or the parser is not installed, unless
// the environment variable RUNNEL_REQUIRE_CLIENTS is set (scripts/test
// sets it and installs them with npm ci in js/). This package has no
// non-test code and never imports the broker's internal packages: it
// sees Runnel over the Kafka protocol, the registry and the HTTP API.
package asyncapi
