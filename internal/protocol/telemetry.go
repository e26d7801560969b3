package protocol

// KIP-714 client metrics:
//   - GetTelemetrySubscriptions (key 71) v0 and PushTelemetry (key 72) v0,
//     the versions Kafka 4.x serves. No ACL guards them (as Kafka): every
//     client may ask what to send and send it. A zero instance id gets a
//     new one; pushes are checked in Kafka's order (terminated, early,
//     stale subscription id, compression, size), then decompressed with a
//     cap and decoded as OTLP (internal/telemetry/clientmetrics).
//   - ListConfigResources (key 74) v0 (Kafka 4.0's
//     ListClientMetricsResources): the CLIENT_METRICS resource names,
//     DESCRIBE_CONFIGS on the cluster required. v1 (KIP-1142, other
//     resource types) is not served.
//   - CLIENT_METRICS config resources (type 16) in DescribeConfigs,
//     AlterConfigs and IncrementalAlterConfigs (configs.go calls the
//     functions below): configs metrics, interval.ms and match, validated
//     as Kafka does (INVALID_REQUEST for an empty name, an unknown config
//     or an interval out of range; INVALID_CONFIG for a bad match); a
//     resource whose configs are all deleted is deleted; ALTER_CONFIGS /
//     DESCRIBE_CONFIGS on the cluster, as Kafka.
// All of them are served only when Options.ClientMetrics is set.

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/telemetry/clientmetrics"
)

// ClientMetrics serves KIP-714: the instance state and the subscriptions.
// Subscribe, Push and Subscriptions answer from memory; Store persists a
// subscription's configs durably (nil configs delete it) and returns once
// it is stored, before every broker may have applied it.
type ClientMetrics interface {
	Subscribe(c clientmetrics.Client) (clientmetrics.Grant, error)
	Push(c clientmetrics.Client, p clientmetrics.Push) error
	Subscriptions() []clientmetrics.Subscription
	Store(ctx context.Context, name string, configs map[string]string) error
}

// clientMetricsResource reports whether t is CLIENT_METRICS and client
// metrics are served (otherwise the type is unsupported).
func (s *Server) clientMetricsResource(t kmsg.ConfigResourceType) bool {
	return t == kmsg.ConfigResourceTypeClientMetrics && s.opts.ClientMetrics != nil
}

// telemetryClient describes the request's sender to clientmetrics.
func telemetryClient(rc *reqCtx, instance [16]byte) clientmetrics.Client {
	return clientmetrics.Client{
		InstanceID:      instance,
		ClientID:        rc.hdr.ClientIDString(),
		SoftwareName:    rc.sess.softwareName,
		SoftwareVersion: rc.sess.softwareVersion,
		SourceAddress:   rc.sess.host,
		SourcePort:      rc.sess.port,
		Principal:       rc.sess.principal.String(),
	}
}

func handleGetTelemetrySubscriptions(_ context.Context, s *Server, rc *reqCtx, req *kmsg.GetTelemetrySubscriptionsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.GetTelemetrySubscriptionsResponse)
	g, err := s.opts.ClientMetrics.Subscribe(telemetryClient(rc, req.ClientInstanceID))
	if err != nil {
		resp.ErrorCode = errorCode(rc.log, err)
		return resp, nil
	}
	resp.ClientInstanceID, resp.SubscriptionID = g.InstanceID, g.SubscriptionID
	resp.AcceptedCompressionTypes = g.Compression
	resp.PushIntervalMillis = int32(g.Interval.Milliseconds())
	resp.TelemetryMaxBytes, resp.DeltaTemporality = g.MaxBytes, g.Delta
	resp.RequestedMetrics = g.Requested
	return resp, nil
}

func handlePushTelemetry(_ context.Context, s *Server, rc *reqCtx, req *kmsg.PushTelemetryRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.PushTelemetryResponse)
	err := s.opts.ClientMetrics.Push(telemetryClient(rc, req.ClientInstanceID), clientmetrics.Push{
		SubscriptionID: req.SubscriptionID,
		Terminating:    req.Terminating,
		Compression:    req.CompressionType,
		Metrics:        req.Metrics,
	})
	if err != nil {
		rc.log.Debug("push telemetry refused", "err", err)
		resp.ErrorCode = errorCode(rc.log, err)
	}
	return resp, nil
}

func handleListConfigResources(_ context.Context, s *Server, rc *reqCtx, req *kmsg.ListConfigResourcesRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ListConfigResourcesResponse)
	if !s.authorizedCluster(rc, kmsg.ACLOperationDescribeConfigs) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return resp, nil
	}
	for _, sub := range s.opts.ClientMetrics.Subscriptions() {
		r := kmsg.NewListConfigResourcesResponseConfigResource()
		r.Name = sub.Name
		resp.ConfigResources = append(resp.ConfigResources, r)
	}
	return resp, nil
}

// describeClientMetrics answers DescribeConfigs for one CLIENT_METRICS
// resource: the configs set on it (none for an unknown name, as Kafka),
// names filters them.
func (s *Server) describeClientMetrics(name string, names []string, docs bool) ([]kmsg.DescribeConfigsResponseResourceConfig, *kerr.Error, string) {
	if name == "" {
		return nil, kerr.InvalidRequest, "client metrics subscription name must not be empty"
	}
	var out []kmsg.DescribeConfigsResponseResourceConfig
	for _, sub := range s.opts.ClientMetrics.Subscriptions() {
		if sub.Name != name {
			continue
		}
		keys := make([]string, 0, len(sub.Configs))
		for k := range sub.Configs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if names != nil && !slices.Contains(names, k) {
				continue
			}
			c := kmsg.NewDescribeConfigsResponseResourceConfig()
			c.Name, c.Value, c.Source = k, strp(sub.Configs[k]), kmsg.ConfigSourceClientMetricsConfig
			c.ConfigType = kmsg.ConfigTypeString
			if clientmetrics.IsListConfig(k) {
				c.ConfigType = kmsg.ConfigTypeList
			} else if k == clientmetrics.ConfigInterval {
				c.ConfigType = kmsg.ConfigTypeInt
			}
			if docs {
				c.Documentation = strp("KIP-714 client metrics subscription config")
			}
			out = append(out, c)
		}
	}
	return out, nil, ""
}

// currentClientMetrics returns a copy of a subscription's configs (empty
// for an unknown name).
func (s *Server) currentClientMetrics(name string) map[string]string {
	out := map[string]string{}
	for _, sub := range s.opts.ClientMetrics.Subscriptions() {
		if sub.Name == name {
			for k, v := range sub.Configs {
				out[k] = v
			}
		}
	}
	return out
}

// alterClientMetrics validates and stores a subscription's new configs; an
// empty set deletes it.
func (s *Server) alterClientMetrics(ctx context.Context, rc *reqCtx, name string, configs map[string]string, validateOnly bool) (int16, *string) {
	if _, err := clientmetrics.ParseSubscription(name, configs); err != nil {
		return errorCode(rc.log, err), errorMessage(err)
	}
	if validateOnly {
		return 0, nil
	}
	if len(configs) == 0 {
		configs = nil
	}
	if err := s.opts.ClientMetrics.Store(ctx, name, configs); err != nil {
		return errorCode(rc.log, err), errorMessage(err)
	}
	return 0, nil
}

// incrementalClientMetrics applies KIP-339 operations to a subscription's
// configs: SET and DELETE on any, APPEND and SUBTRACT on the lists.
func incrementalClientMetrics(cur map[string]string, ops []kmsg.IncrementalAlterConfigsRequestResourceConfig) (map[string]string, *kerr.Error, string) {
	seen := map[string]bool{}
	for _, op := range ops {
		if seen[op.Name] {
			return nil, kerr.InvalidRequest, fmt.Sprintf("config %q named more than once", op.Name)
		}
		seen[op.Name] = true
		if !slices.Contains(clientmetrics.ConfigNames(), op.Name) {
			return nil, kerr.InvalidRequest, "unknown client metrics configuration: " + op.Name
		}
		v := ""
		if op.Value != nil {
			v = *op.Value
		}
		switch op.Op {
		case kmsg.IncrementalAlterConfigOpSet:
			cur[op.Name] = v
		case kmsg.IncrementalAlterConfigOpDelete:
			delete(cur, op.Name)
		case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
			if !clientmetrics.IsListConfig(op.Name) {
				return nil, kerr.InvalidConfig, fmt.Sprintf("config %q is not a list", op.Name)
			}
			list := clientmetrics.SplitList(cur[op.Name])
			for _, e := range clientmetrics.SplitList(v) {
				if op.Op == kmsg.IncrementalAlterConfigOpAppend && !slices.Contains(list, e) {
					list = append(list, e)
				} else if op.Op == kmsg.IncrementalAlterConfigOpSubtract {
					list = slices.DeleteFunc(list, func(x string) bool { return x == e })
				}
			}
			cur[op.Name] = strings.Join(list, ",")
			if len(list) == 0 {
				delete(cur, op.Name)
			}
		default:
			return nil, kerr.InvalidRequest, fmt.Sprintf("unknown operation %d on %q", op.Op, op.Name)
		}
	}
	return cur, nil, ""
}

// sourcePort is the port of a remote address ("" if it has none).
func sourcePort(remote string) string {
	_, port, err := net.SplitHostPort(remote)
	if err != nil {
		return ""
	}
	return port
}
