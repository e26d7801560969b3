package groups

import (
	"context"

	"github.com/runnel-dev/runnel/internal/peer"
)

// clientIDFrom and clientHostFrom read the client of the request ctx
// belongs to, which the Kafka server attaches; DescribeGroups and
// ConsumerGroupDescribe report them per member.
func clientIDFrom(ctx context.Context) string { return peer.ClientFrom(ctx).ID }

func clientHostFrom(ctx context.Context) string { return peer.ClientFrom(ctx).Host }
