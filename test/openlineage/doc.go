// Package openlineage holds the end-to-end test of lineage seen from
// outside: two brokers (the built binary) export OpenLineage run events of
// a transactional pipeline (franz-go: a producer writes "in"; a
// GroupTransactSession consumes "in" and produces "out" in transactions
// with TxnOffsetCommit) to an HTTP endpoint in the test, and every event is
// validated by ajv (js/validate.mjs, JSON Schema Draft 2020-12) against
// the OpenLineage spec and the facet schemas it uses, kept under testdata
// as published by the OpenLineage project (Apache-2.0, testdata/LICENSE
// and testdata/README.md). The test then asserts the producer → in →
// group job → out chain in the events and in /api/v1/lineage on both
// brokers.
//
// The validator proves it can fail: a planted invalid event must be
// refused before the real events count as valid.
//
// A test whose client is not installed is skipped, unless the environment
// variable RUNNEL_REQUIRE_CLIENTS is set (scripts/test sets it and installs
// them). This package has no non-test code and never imports the broker's
// internal packages: it sees Runnel over the Kafka protocol, the schema
// registry, the REST API and the events, as a user would.
package openlineage
