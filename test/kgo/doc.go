// Package kgo runs franz-go's own integration tests (its pkg/kgo test
// suite, at the version go.mod requires) against the built runnel binary,
// as franz-go's maintainers run them against Kafka: KGO_SEEDS names the
// broker, KGO_TEST_RF=1 fits one broker, and KGO_TEST_RECORDS bounds the
// record counts of the ETL tests (transactional and group chains through
// rebalances, KIP-848 included) so the suite stays short. The source comes
// from the module cache (go mod download), is compiled there with
// go test -c into a temporary directory, and runs with its package
// directory as working directory, as go test would.
//
// Every test runs and must pass, except the ones listed in kgo_test.go with
// the reason: features Runnel does not have yet. Each franz-go test is
// reported as a subtest of TestFranzGoKgo with its own output. This package
// has no non-test code and imports none of the broker's packages: it sees
// Runnel only over the Kafka protocol.
package kgo
