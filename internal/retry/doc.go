// Package retry owns the retry policies of consumer groups: the retry
// topics a policy needs (one delayed topic per level, retry.<group>.<n>,
// with LogAppendTime and delivery.delay.ms, so the broker's clock decides
// when a retried record is delivered), the group's dead-letter topic, and,
// in ordered mode, the table of parked keys (retry.<group>.parked) that
// consumers read to keep each key's order across a poison pill.
//
// A policy is the group's errors.retry.* GROUP configs; the Kafka front
// end stores them (internal/groups) and the broker calls Service.Apply
// after a change (topics.go). Tables (tables.go) runs on every broker and
// keeps the table of each ordered group this broker coordinates, from the
// group's retry topics and its committed offsets; parked.go defines the
// table's records and the pure computation of its contents.
//
// The records themselves are moved by the group's consumers, plain Kafka
// clients following the contract in README ("Retries and dead letters";
// retrytest is that contract written with franz-go): this package never
// consumes on a group's behalf, never moves or deletes a record, and never
// writes to a topic but the parked-keys table. It reaches the log only
// through the small interfaces it defines and never imports protocol,
// groups, share or broker.
package retry
