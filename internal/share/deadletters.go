package share

import (
	"context"

	"github.com/runnel-dev/runnel/internal/config"
)

// Reasons a record becomes a dead letter (the KIP-1191 header values).
const (
	ReasonRejected      = "rejected"
	ReasonDeliveryCount = "delivery count exceeded"
)

// DeadLetter is one record archived for the dead-letter topic.
type DeadLetter struct {
	Offset        int64
	DeliveryCount int16
	// Reason is ReasonRejected or ReasonDeliveryCount.
	Reason string
}

// DeadLetterWriter writes dead letters to the group's dead-letter topic. The
// engine persists the letters in the share partition's state before it
// calls Write and removes them after Write returns nil; after a crash it
// calls Write again with the same letters, so Write must be idempotent per
// (key, offset): a letter is written to the topic exactly once.
type DeadLetterWriter interface {
	Write(ctx context.Context, key Key, cfg config.ShareGroup, letters []DeadLetter) error
}
