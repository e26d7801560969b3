// Package retry owns the retry policies of consumer groups: the retry
// topics a policy needs (one delayed topic per level, retry.<group>.<n>,
// with LogAppendTime and delivery.delay.ms, so the broker's clock decides
// when a retried record is delivered), the group's dead-letter topic, and,
// in ordered mode, the table of parked keys (retry.<group>.parked) that
// consumers read to keep each key's order across a poison pill.
//
// A policy is the group's errors.retry.* GROUP configs; the Kafka front
// end stores them (internal/groups) and the broker calls Apply after a
// change. The records themselves are moved by the group's consumers, plain
// Kafka clients following the contract in README ("Retries and dead
// letters"): this package never consumes on a group's behalf and never
// moves a record.
//
// It reaches the log only through the small interfaces it defines and
// never imports protocol, groups, share or broker.
package retry
