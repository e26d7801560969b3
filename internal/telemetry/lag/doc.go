// Package lag measures consumer lag exactly, from the broker's own state:
// for every group partition with a committed offset, the lag in offsets
// against the high watermark and against the last stable offset, the lag in
// seconds (the age of the first unconsumed record), the commit age, the
// consume and produce rates and the time to catch up, and a status after
// Burrow's consumer lag evaluation rules over a sliding window of recent
// evaluations (eval.go).
//
// A Tracker evaluates every Options.Interval the groups its broker
// coordinates (each group is reported by its coordinator alone, so sums
// across brokers in PromQL never count a group twice) and exports the
// figures on a Prometheus registry: per group and topic by default, per
// partition when asked (metrics.go lists the names).
//
// Lag in seconds comes from the partition index, never from record data:
// the index keeps the largest record timestamp of each extent (one client
// batch before archival, one segment chunk of whole batches after), so the
// figure is now minus the largest timestamp of the extent holding the
// committed offset. The first unconsumed record is in that extent and its
// own timestamp is at most that, so the figure is never larger than the
// true age, and smaller by at most the extent's timestamp spread (zero for
// one-record batches; for producers that batch by linger, about the
// linger time).
//
// The package reaches the log and the groups only through the two small
// interfaces it defines (Log, Groups); it imports no protocol, broker or
// cli package, reads no object data and writes nothing durable.
package lag
