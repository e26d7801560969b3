// Package system holds system tests that run the built runnel binary as a
// child process (through test/harness) and drive it with the franz-go client
// and with raw Kafka frames over TCP: crash safety under SIGKILL, stateless
// brokers sharing one etcd and one object store, start-up bounded by the
// checkpoint, bad input, a real S3 server (versitygw, harness.StartS3) as the
// object store of one and of two brokers, and two Jepsen-style
// checkers: transactions and idempotence under crashes and store faults
// (jepsen_test.go), and the log under watch backlogs, maintainer handovers,
// an etcd link cut past the lease and skewed clocks (faults_test.go).
// retry_test.go runs the retry contract of consumer groups (README,
// "Retries and dead letters") with internal/retry/retrytest, the client
// side of that contract written with franz-go.
//
// The package has no non-test code besides this file. It never imports the
// broker's internal packages (only client-side test helpers): everything it checks is observable from the
// outside (Kafka protocol, /metrics, exit status and output, and the keys
// the brokers share in etcd, read with the etcd client).
//
// Set RUNNEL_SOAK=1 for the long versions (more crash cycles, more data).
package system
