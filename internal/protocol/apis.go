package protocol

import (
	"context"
	"fmt"
	"sort"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// handlerFunc answers one decoded request. A nil response sends nothing; an
// error closes the connection.
type handlerFunc func(ctx context.Context, s *Server, rc *reqCtx, req kmsg.Request) (kmsg.Response, error)

// api is one row of the dispatch table.
type api struct {
	key         int16
	min, max    int16
	handle      handlerFunc
	groups      bool // needs Options.Groups
	scram       bool // needs Options.SCRAM
	quotas      bool // needs Options.Quotas
	kip714      bool // needs Options.ClientMetrics
	shares      bool // needs Options.Shares
	shareGroups bool // needs Options.ShareGroups
}

// typed adapts a handler taking its concrete request type.
func typed[R kmsg.Request](f func(ctx context.Context, s *Server, rc *reqCtx, req R) (kmsg.Response, error)) handlerFunc {
	return func(ctx context.Context, s *Server, rc *reqCtx, req kmsg.Request) (kmsg.Response, error) {
		r, ok := req.(R)
		if !ok {
			return nil, fmt.Errorf("request type %T for api key %d", req, req.Key())
		}
		return f(ctx, s, rc, r)
	}
}

// apiTable is the one table that drives both dispatch and ApiVersions.
// Version ranges are what the handlers implement; see each handler file.
func apiTable() []api {
	return []api{
		// Produce v0-2 are advertised but refused (see produce.go).
		{key: 0, min: 0, max: 12, handle: typed(handleProduce)},
		{key: 1, min: 4, max: 16, handle: typed(fetchQuota)}, // throttle.go wraps the handlers of fetch and topic mutations
		{key: 2, min: 1, max: 9, handle: typed(handleListOffsets)},
		{key: 3, min: 0, max: 12, handle: typed(handleMetadata)},
		{key: 8, min: 0, max: 9, handle: typed(handleOffsetCommit), groups: true},
		{key: 9, min: 0, max: 9, handle: typed(handleOffsetFetch), groups: true},
		{key: 10, min: 0, max: 5, handle: typed(handleFindCoordinator), groups: true},
		{key: 11, min: 0, max: 9, handle: readGroupAPI(Groups.JoinGroup, func(r *kmsg.JoinGroupRequest) string { return r.Group }), groups: true},
		{key: 12, min: 0, max: 4, handle: readGroupAPI(Groups.Heartbeat, func(r *kmsg.HeartbeatRequest) string { return r.Group }), groups: true},
		{key: 13, min: 0, max: 5, handle: readGroupAPI(Groups.LeaveGroup, func(r *kmsg.LeaveGroupRequest) string { return r.Group }), groups: true},
		{key: 14, min: 0, max: 5, handle: readGroupAPI(Groups.SyncGroup, func(r *kmsg.SyncGroupRequest) string { return r.Group }), groups: true},
		{key: 15, min: 0, max: 5, handle: typed(handleDescribeGroups), groups: true},
		{key: 16, min: 0, max: 5, handle: typed(handleListGroups), groups: true},
		{key: 17, min: 0, max: 1, handle: typed(handleSaslHandshake)},
		{key: 18, min: 0, max: 4, handle: typed(handleApiVersions)},
		{key: 19, min: 2, max: 7, handle: typed(createTopicsQuota)},
		{key: 20, min: 1, max: 6, handle: typed(deleteTopicsQuota)},
		{key: 21, min: 0, max: 2, handle: typed(handleDeleteRecords)},
		{key: 22, min: 0, max: 5, handle: typed(handleInitProducerID)},
		{key: 23, min: 0, max: 4, handle: typed(handleOffsetForLeaderEpoch)},
		{key: 24, min: 0, max: 5, handle: typed(handleAddPartitionsToTxn)},
		{key: 25, min: 0, max: 4, handle: typed(handleAddOffsetsToTxn)},
		{key: 26, min: 0, max: 5, handle: typed(handleEndTxn)},
		{key: 28, min: 0, max: 5, handle: typed(handleTxnOffsetCommit), groups: true},
		{key: 29, min: 0, max: 3, handle: typed(handleDescribeACLs)},
		{key: 30, min: 0, max: 3, handle: typed(handleCreateACLs)},
		{key: 31, min: 0, max: 3, handle: typed(handleDeleteACLs)},
		{key: 32, min: 1, max: 4, handle: typed(handleDescribeConfigs)},
		{key: 33, min: 0, max: 2, handle: typed(handleAlterConfigs)},
		{key: 35, min: 1, max: 4, handle: typed(handleDescribeLogDirs)},
		{key: 36, min: 0, max: 2, handle: typed(handleSaslAuthenticate)},
		{key: 37, min: 0, max: 3, handle: typed(createPartitionsQuota)},
		{key: 42, min: 0, max: 2, handle: typed(handleDeleteGroups), groups: true},
		{key: 44, min: 0, max: 1, handle: typed(handleIncrementalAlterConfigs)},
		{key: 47, min: 0, max: 0, handle: typed(handleOffsetDelete), groups: true},
		{key: 48, min: 0, max: 1, handle: typed(handleDescribeClientQuotas), quotas: true},
		{key: 49, min: 0, max: 1, handle: typed(handleAlterClientQuotas), quotas: true},
		{key: 50, min: 0, max: 0, handle: typed(handleDescribeUserSCRAMCredentials), scram: true},
		{key: 51, min: 0, max: 0, handle: typed(handleAlterUserSCRAMCredentials), scram: true},
		{key: 60, min: 0, max: 1, handle: typed(handleDescribeCluster)},
		{key: 61, min: 0, max: 0, handle: typed(handleDescribeProducers)},
		{key: 65, min: 0, max: 0, handle: typed(handleDescribeTransactions)},
		{key: 66, min: 0, max: 2, handle: typed(handleListTransactions)},
		{key: 68, min: 0, max: 1, handle: typed(handleConsumerGroupHeartbeat), groups: true},
		{key: 69, min: 0, max: 1, handle: typed(handleConsumerGroupDescribe), groups: true},
		{key: 71, min: 0, max: 0, handle: typed(handleGetTelemetrySubscriptions), kip714: true},
		{key: 72, min: 0, max: 0, handle: typed(handlePushTelemetry), kip714: true},
		{key: 74, min: 0, max: 0, handle: typed(handleListConfigResources), kip714: true},
		// KIP-932 share groups at the versions Kafka 4.2 serves (v0 of
		// 76–79 was early access and is gone since Kafka 4.1).
		{key: 76, min: 1, max: 1, handle: typed(handleShareGroupHeartbeat), shareGroups: true},
		{key: 77, min: 1, max: 1, handle: typed(handleShareGroupDescribe), shareGroups: true},
		{key: 78, min: 1, max: 2, handle: typed(shareFetchQuota), shares: true},
		{key: 79, min: 1, max: 2, handle: typed(handleShareAcknowledge), shares: true},
		{key: 90, min: 0, max: 1, handle: typed(handleDescribeShareGroupOffsets), shareGroups: true},
		{key: 91, min: 0, max: 0, handle: typed(handleAlterShareGroupOffsets), shareGroups: true},
		{key: 92, min: 0, max: 0, handle: typed(handleDeleteShareGroupOffsets), shareGroups: true},
	}
}

// advertised lists the served api keys sorted by key.
func (s *Server) advertised() []kmsg.ApiVersionsResponseApiKey {
	out := make([]kmsg.ApiVersionsResponseApiKey, 0, len(s.apis))
	for _, a := range s.apis {
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = a.key, a.min, a.max
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ApiKey < out[j].ApiKey })
	return out
}
