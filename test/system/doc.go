// Package system holds system tests that run the built runnel binary as a
// child process (through test/harness) and drive it with the franz-go client
// and with raw Kafka frames over TCP: crash safety under SIGKILL, stateless
// brokers sharing one etcd and one object store, start-up bounded by the
// checkpoint, bad input, and an S3-compatible object store.
//
// The package has no non-test code besides this file. It never imports the
// broker's internal packages: everything it checks is observable from the
// outside (Kafka protocol, /metrics, exit status and output).
//
// Set RUNNEL_SOAK=1 for the long versions (more crash cycles, more data).
package system
