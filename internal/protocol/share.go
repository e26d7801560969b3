package protocol

// What the share group handlers (KIP-932: sharefetch.go, sharegroups.go)
// and the GROUP config resource (configs.go) need from the rest of the
// broker. internal/share's Engine implements Shares, internal/groups'
// Coordinator implements ShareGroups and GroupConfigs. Each is optional:
// a nil one leaves its APIs neither served nor advertised (apis.go).

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/share"
	"github.com/runnel-dev/runnel/internal/stream"
)

// Shares is the record side of share groups: acquisition, acknowledgement
// and release of the records of share partitions. Errors are the sentinels
// of internal/share (wrapped with %w), mapped to Kafka codes by errors.go.
// Every method is safe for concurrent use; the handlers call it from many
// connections at once, and for the same share partition from several.
type Shares interface {
	// Acquire acquires records of one share partition for member (empty
	// result when none).
	Acquire(ctx context.Context, req share.AcquireRequest) (share.AcquireResult, error)
	// Acknowledge applies member's acknowledgements to one share partition.
	Acknowledge(ctx context.Context, key share.Key, member string, acks []share.AckBatch) error
	// ReleaseMember releases every record member holds in the share
	// partition.
	ReleaseMember(ctx context.Context, key share.Key, member string) error
	// LockDuration is group's acquisition lock duration.
	LockDuration(group string) time.Duration
	// Changed is closed when records may have become acquirable without
	// new log data (release, lock expiry, start offset moved); call again
	// after it fires.
	Changed() <-chan struct{}
}

// ShareGroups is the share group coordinator. Like Groups, each call
// returns a complete response (the handler sets its version) with every
// error code filled in, NOT_COORDINATOR included when this broker does not
// own the group; the handlers check ACLs around the calls and only forward
// what the principal may see.
type ShareGroups interface {
	ShareGroupHeartbeat(ctx context.Context, req *kmsg.ShareGroupHeartbeatRequest) *kmsg.ShareGroupHeartbeatResponse
	ShareGroupDescribe(ctx context.Context, req *kmsg.ShareGroupDescribeRequest) *kmsg.ShareGroupDescribeResponse
	DescribeShareGroupOffsets(ctx context.Context, req *kmsg.DescribeShareGroupOffsetsRequest) *kmsg.DescribeShareGroupOffsetsResponse
	AlterShareGroupOffsets(ctx context.Context, req *kmsg.AlterShareGroupOffsetsRequest) *kmsg.AlterShareGroupOffsetsResponse
	DeleteShareGroupOffsets(ctx context.Context, req *kmsg.DeleteShareGroupOffsetsRequest) *kmsg.DeleteShareGroupOffsetsResponse
}

// GroupConfigs stores the GROUP config resource: per-group overrides of
// the group configs of internal/config (config.GroupDefs). A group's
// configs may be set before the group exists.
type GroupConfigs interface {
	// GroupConfig returns a group's overrides (nil when none).
	GroupConfig(group string) map[string]string
	// AlterGroupConfig applies changes (Value nil deletes an override;
	// replace=true, i.e. AlterConfigs, removes every override not named);
	// errors wrap config.ErrInvalidConfig or config.ErrUnknownConfig.
	// Returns once this broker's cache shows the change.
	AlterGroupConfig(ctx context.Context, group string, changes []stream.ConfigChange, replace, validateOnly bool) error
}
