package protocol

// DescribeConfigs (key 32) v1–4, AlterConfigs (key 33) v0–2,
// IncrementalAlterConfigs (key 44) v0–1.
//
// Resources: TOPIC (2) and BROKER (4). Topic configs come from
// internal/config's table: an explicit override is DYNAMIC_TOPIC_CONFIG,
// otherwise the broker synonym's value (STATIC_BROKER_CONFIG) when the broker
// reports one, otherwise the table default (DEFAULT_CONFIG). Synonyms (v1+)
// list those sources in precedence order; documentation and config types are
// filled from v3. Sensitive values are never returned.
//
// AlterConfigs replaces a topic's overrides (names not given revert to
// defaults); IncrementalAlterConfigs applies SET/DELETE/APPEND/SUBTRACT,
// APPEND/SUBTRACT only on list configs and resolved here into a final value
// (KIP-339). Unknown, read-only or invalid values get INVALID_CONFIG, a
// config named twice INVALID_REQUEST; validate-only checks without applying.
// Broker configs come from the server configuration file and are read-only
// here: altering one is INVALID_CONFIG. CLIENT_METRICS (16) resources are
// telemetry.go's. GROUP (32) resources (KIP-848, KIP-932) are served when
// Options.GroupConfigs is set: every config of config.GroupDefs, an
// override as GROUP_CONFIG, otherwise the table default (DEFAULT_CONFIG,
// with the broker config it defaults from as synonym); a group's configs
// exist before the group does. Altering one checks each name and value
// (unknown name: INVALID_CONFIG "Unknown group config name"; bad value:
// INVALID_CONFIG), SET and DELETE only (APPEND/SUBTRACT INVALID_REQUEST, as
// Kafka answers for configs that are not lists). Other resource types
// (broker loggers) get INVALID_REQUEST.
//
// Authorization (as Kafka): describing needs DESCRIBE_CONFIGS, altering
// ALTER_CONFIGS (which implies DESCRIBE_CONFIGS), on the topic for a topic
// resource (TOPIC_AUTHORIZATION_FAILED), on the group for a group resource
// (GROUP_AUTHORIZATION_FAILED) and on the cluster for a broker resource
// (CLUSTER_AUTHORIZATION_FAILED), per resource.

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/config"
)

func configType(t config.Type) kmsg.ConfigType {
	switch t {
	case config.TypeBoolean:
		return kmsg.ConfigTypeBoolean
	case config.TypeString:
		return kmsg.ConfigTypeString
	case config.TypeInt:
		return kmsg.ConfigTypeInt
	case config.TypeLong:
		return kmsg.ConfigTypeLong
	case config.TypeDouble:
		return kmsg.ConfigTypeDouble
	case config.TypeList:
		return kmsg.ConfigTypeList
	case config.TypeClass:
		return kmsg.ConfigTypeClass
	case config.TypePassword:
		return kmsg.ConfigTypePassword
	}
	return kmsg.ConfigTypeUnknown
}

func (s *Server) brokerDefs() []config.Def {
	if s.opts.BrokerConfigs == nil {
		return nil
	}
	return s.opts.BrokerConfigs()
}

// topicDefault returns a topic config's effective default and its source.
func (s *Server) topicDefault(d config.Def, broker map[string]config.Def) (string, kmsg.ConfigSource) {
	// A broker synonym only counts as a source when the server's config
	// changed it from the built-in default, as Kafka reports a synonym only
	// when server.properties sets it.
	if b, ok := broker[d.Synonym]; ok && d.Synonym != "" && b.Default != d.Default {
		return b.Default, kmsg.ConfigSourceStaticBrokerConfig
	}
	return d.Default, kmsg.ConfigSourceDefaultConfig
}

func (s *Server) brokerIndex() map[string]config.Def {
	m := make(map[string]config.Def)
	for _, d := range s.brokerDefs() {
		m[d.Name] = d
	}
	return m
}

// topicConfigEntries describes a topic's configs given its overrides.
// names, when non-nil, filters by name.
func (s *Server) topicConfigEntries(overrides map[string]string, names []string, synonyms, docs bool) []kmsg.DescribeConfigsResponseResourceConfig {
	broker := s.brokerIndex()
	var out []kmsg.DescribeConfigsResponseResourceConfig
	for _, d := range config.TopicDefs() {
		if names != nil && !slices.Contains(names, d.Name) {
			continue
		}
		c := kmsg.NewDescribeConfigsResponseResourceConfig()
		c.Name, c.ReadOnly, c.IsSensitive, c.ConfigType = d.Name, d.ReadOnly, d.Sensitive, configType(d.Type)
		defVal, defSrc := s.topicDefault(d, broker)
		ov, has := overrides[d.Name]
		if has {
			c.Value, c.Source = strp(ov), kmsg.ConfigSourceDynamicTopicConfig
		} else {
			c.Value, c.Source, c.IsDefault = strp(defVal), defSrc, defSrc == kmsg.ConfigSourceDefaultConfig
		}
		if synonyms {
			if has {
				c.ConfigSynonyms = append(c.ConfigSynonyms, synonym(d.Name, ov, kmsg.ConfigSourceDynamicTopicConfig))
			}
			if defSrc == kmsg.ConfigSourceStaticBrokerConfig {
				c.ConfigSynonyms = append(c.ConfigSynonyms, synonym(d.Synonym, defVal, defSrc))
			}
			name := d.Name
			if d.Synonym != "" {
				name = d.Synonym
			}
			c.ConfigSynonyms = append(c.ConfigSynonyms, synonym(name, d.Default, kmsg.ConfigSourceDefaultConfig))
		}
		if docs {
			c.Documentation = strp(d.Doc)
		}
		if d.Sensitive {
			c.Value = nil
			for i := range c.ConfigSynonyms {
				c.ConfigSynonyms[i].Value = nil
			}
		}
		out = append(out, c)
	}
	return out
}

func synonym(name, value string, src kmsg.ConfigSource) kmsg.DescribeConfigsResponseResourceConfigConfigSynonym {
	sy := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
	sy.Name, sy.Value, sy.Source = name, strp(value), src
	return sy
}

// brokerResourceOK reports whether name addresses this broker ("" is the
// cluster-wide default, which here is the same static file).
func (s *Server) brokerResourceOK(name string) bool {
	return name == "" || name == strconv.Itoa(int(s.opts.Cluster.Self().NodeID))
}

// configsAuthorized checks op (DESCRIBE_CONFIGS or ALTER_CONFIGS) on a
// config resource: a topic's on the topic, a broker's on the cluster. It
// returns the error to answer, or nil.
func (s *Server) configsAuthorized(rc *reqCtx, op kmsg.ACLOperation, rtype kmsg.ConfigResourceType, name string) *kerr.Error {
	switch rtype {
	case kmsg.ConfigResourceTypeTopic:
		if !s.authorizedTopic(rc, op, name) {
			return kerr.TopicAuthorizationFailed
		}
	case kmsg.ConfigResourceTypeBroker, kmsg.ConfigResourceTypeClientMetrics:
		if !s.authorizedCluster(rc, op) {
			return kerr.ClusterAuthorizationFailed
		}
	case kmsg.ConfigResourceTypeGroupConfig:
		if !s.authorizedGroup(rc, op, name) {
			return kerr.GroupAuthorizationFailed
		}
	}
	return nil
}

func handleDescribeConfigs(_ context.Context, s *Server, rc *reqCtx, req *kmsg.DescribeConfigsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	for _, rr := range req.Resources {
		r := kmsg.NewDescribeConfigsResponseResource()
		r.ResourceType, r.ResourceName = rr.ResourceType, rr.ResourceName
		if e := s.configsAuthorized(rc, kmsg.ACLOperationDescribeConfigs, rr.ResourceType, rr.ResourceName); e != nil {
			r.ErrorCode, r.ErrorMessage = e.Code, strp(e.Message)
			resp.Resources = append(resp.Resources, r)
			continue
		}
		switch rr.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			ti, ok := s.opts.Log.Topic(rr.ResourceName)
			if !ok {
				r.ErrorCode, r.ErrorMessage = kerr.UnknownTopicOrPartition.Code, strp("unknown topic "+rr.ResourceName)
				break
			}
			r.Configs = s.topicConfigEntries(ti.Configs, rr.ConfigNames, req.IncludeSynonyms, req.IncludeDocumentation)
		case kmsg.ConfigResourceTypeBroker:
			if !s.brokerResourceOK(rr.ResourceName) {
				r.ErrorCode, r.ErrorMessage = kerr.InvalidRequest.Code, strp(fmt.Sprintf("broker %q is not this broker (%d)", rr.ResourceName, s.opts.Cluster.Self().NodeID))
				break
			}
			for _, d := range s.brokerDefs() {
				if rr.ConfigNames != nil && !slices.Contains(rr.ConfigNames, d.Name) {
					continue
				}
				c := kmsg.NewDescribeConfigsResponseResourceConfig()
				c.Name, c.Value, c.ReadOnly, c.IsSensitive = d.Name, strp(d.Default), true, d.Sensitive
				c.Source, c.ConfigType = kmsg.ConfigSourceStaticBrokerConfig, configType(d.Type)
				if req.IncludeSynonyms {
					c.ConfigSynonyms = append(c.ConfigSynonyms, synonym(d.Name, d.Default, kmsg.ConfigSourceStaticBrokerConfig))
				}
				if req.IncludeDocumentation {
					c.Documentation = strp(d.Doc)
				}
				if d.Sensitive {
					c.Value = nil
					for i := range c.ConfigSynonyms {
						c.ConfigSynonyms[i].Value = nil
					}
				}
				r.Configs = append(r.Configs, c)
			}
		case kmsg.ConfigResourceTypeClientMetrics:
			if !s.clientMetricsResource(rr.ResourceType) {
				r.ErrorCode, r.ErrorMessage = kerr.InvalidRequest.Code, strp(fmt.Sprintf("unsupported resource type %d", rr.ResourceType))
				break
			}
			var e *kerr.Error
			var msg string
			if r.Configs, e, msg = s.describeClientMetrics(rr.ResourceName, rr.ConfigNames, req.IncludeDocumentation); e != nil {
				r.ErrorCode, r.ErrorMessage = e.Code, strp(msg)
			}
		case kmsg.ConfigResourceTypeGroupConfig:
			if e, msg := s.groupResourceCheck(rr.ResourceName); e != nil {
				r.ErrorCode, r.ErrorMessage = e.Code, strp(msg)
				break
			}
			r.Configs = groupConfigEntries(s.opts.GroupConfigs.GroupConfig(rr.ResourceName), rr.ConfigNames, req.IncludeSynonyms, req.IncludeDocumentation)
		default:
			r.ErrorCode, r.ErrorMessage = kerr.InvalidRequest.Code, strp(fmt.Sprintf("unsupported resource type %d", rr.ResourceType))
		}
		resp.Resources = append(resp.Resources, r)
	}
	return resp, nil
}

// checkTopicChange validates one change of a topic config.
func checkTopicChange(name string, value *string) (*kerr.Error, string) {
	d, ok := config.LookupTopic(name)
	if !ok {
		return kerr.InvalidConfig, fmt.Sprintf("unknown topic config %q", name)
	}
	if d.ReadOnly {
		return kerr.InvalidConfig, fmt.Sprintf("topic config %q is read-only", name)
	}
	if value != nil {
		if err := d.Check(*value); err != nil {
			return kerr.InvalidConfig, err.Error()
		}
	}
	return nil, ""
}

// resourceCheck answers the parts common to both alter APIs: whether the
// resource can be altered at all. ok false means the error is final.
func (s *Server) alterResourceCheck(rtype kmsg.ConfigResourceType, name string, n int) (TopicInfo, *kerr.Error, string, bool) {
	switch rtype {
	case kmsg.ConfigResourceTypeTopic:
		ti, ok := s.opts.Log.Topic(name)
		if !ok {
			return ti, kerr.UnknownTopicOrPartition, "unknown topic " + name, false
		}
		return ti, nil, "", true
	case kmsg.ConfigResourceTypeBroker:
		if !s.brokerResourceOK(name) {
			return TopicInfo{}, kerr.InvalidRequest, fmt.Sprintf("broker %q is not this broker", name), false
		}
		if n == 0 {
			return TopicInfo{}, nil, "", false
		}
		return TopicInfo{}, kerr.InvalidConfig, "broker configs are read-only: set them in the server configuration file", false
	}
	return TopicInfo{}, kerr.InvalidRequest, fmt.Sprintf("unsupported resource type %d", rtype), false
}

func handleAlterConfigs(ctx context.Context, s *Server, rc *reqCtx, req *kmsg.AlterConfigsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	for _, rr := range req.Resources {
		r := kmsg.NewAlterConfigsResponseResource()
		r.ResourceType, r.ResourceName = rr.ResourceType, rr.ResourceName
		resp.Resources = append(resp.Resources, r)
		res := &resp.Resources[len(resp.Resources)-1]
		if e := s.configsAuthorized(rc, kmsg.ACLOperationAlterConfigs, rr.ResourceType, rr.ResourceName); e != nil {
			res.ErrorCode, res.ErrorMessage = e.Code, strp(e.Message)
			continue
		}
		if s.clientMetricsResource(rr.ResourceType) {
			configs := map[string]string{}
			for _, c := range rr.Configs {
				if c.Value != nil {
					configs[c.Name] = *c.Value
				}
			}
			res.ErrorCode, res.ErrorMessage = s.alterClientMetrics(ctx, rc, rr.ResourceName, configs, req.ValidateOnly)
			continue
		}
		if rr.ResourceType == kmsg.ConfigResourceTypeGroupConfig {
			ops := make([]groupConfigOp, 0, len(rr.Configs))
			for _, c := range rr.Configs {
				ops = append(ops, groupConfigOp{name: c.Name, op: kmsg.IncrementalAlterConfigOpSet, value: c.Value})
			}
			res.ErrorCode, res.ErrorMessage = s.alterGroupConfig(ctx, rc, rr.ResourceName, ops, true, req.ValidateOnly)
			continue
		}
		_, kerrv, msg, ok := s.alterResourceCheck(rr.ResourceType, rr.ResourceName, len(rr.Configs))
		if !ok {
			if kerrv != nil {
				res.ErrorCode, res.ErrorMessage = kerrv.Code, strp(msg)
			}
			continue
		}
		var changes []ConfigChange
		seen := make(map[string]bool)
		for _, c := range rr.Configs {
			if seen[c.Name] {
				kerrv, msg = kerr.InvalidRequest, fmt.Sprintf("config %q named more than once", c.Name)
				break
			}
			seen[c.Name] = true
			if kerrv, msg = checkTopicChange(c.Name, c.Value); kerrv != nil {
				break
			}
			changes = append(changes, ConfigChange{Name: c.Name, Value: c.Value})
		}
		if kerrv != nil {
			res.ErrorCode, res.ErrorMessage = kerrv.Code, strp(msg)
			continue
		}
		if err := s.opts.Log.AlterTopicConfigs(ctx, rr.ResourceName, changes, true, req.ValidateOnly); err != nil {
			res.ErrorCode, res.ErrorMessage = errorCode(rc.log.With("topic", rr.ResourceName), err), errorMessage(err)
		}
	}
	return resp, nil
}

func handleIncrementalAlterConfigs(ctx context.Context, s *Server, rc *reqCtx, req *kmsg.IncrementalAlterConfigsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	for _, rr := range req.Resources {
		r := kmsg.NewIncrementalAlterConfigsResponseResource()
		r.ResourceType, r.ResourceName = rr.ResourceType, rr.ResourceName
		resp.Resources = append(resp.Resources, r)
		res := &resp.Resources[len(resp.Resources)-1]
		if e := s.configsAuthorized(rc, kmsg.ACLOperationAlterConfigs, rr.ResourceType, rr.ResourceName); e != nil {
			res.ErrorCode, res.ErrorMessage = e.Code, strp(e.Message)
			continue
		}
		if s.clientMetricsResource(rr.ResourceType) {
			configs, e, msg := incrementalClientMetrics(s.currentClientMetrics(rr.ResourceName), rr.Configs)
			if e != nil {
				res.ErrorCode, res.ErrorMessage = e.Code, strp(msg)
				continue
			}
			res.ErrorCode, res.ErrorMessage = s.alterClientMetrics(ctx, rc, rr.ResourceName, configs, req.ValidateOnly)
			continue
		}
		if rr.ResourceType == kmsg.ConfigResourceTypeGroupConfig {
			ops := make([]groupConfigOp, 0, len(rr.Configs))
			for _, c := range rr.Configs {
				ops = append(ops, groupConfigOp{name: c.Name, op: c.Op, value: c.Value})
			}
			res.ErrorCode, res.ErrorMessage = s.alterGroupConfig(ctx, rc, rr.ResourceName, ops, false, req.ValidateOnly)
			continue
		}
		ti, kerrv, msg, ok := s.alterResourceCheck(rr.ResourceType, rr.ResourceName, len(rr.Configs))
		if !ok {
			if kerrv != nil {
				res.ErrorCode, res.ErrorMessage = kerrv.Code, strp(msg)
			}
			continue
		}
		changes, kerrv, msg := s.resolveIncremental(ti, rr.Configs)
		if kerrv != nil {
			res.ErrorCode, res.ErrorMessage = kerrv.Code, strp(msg)
			continue
		}
		if err := s.opts.Log.AlterTopicConfigs(ctx, rr.ResourceName, changes, false, req.ValidateOnly); err != nil {
			res.ErrorCode, res.ErrorMessage = errorCode(rc.log.With("topic", rr.ResourceName), err), errorMessage(err)
		}
	}
	return resp, nil
}

// resolveIncremental turns KIP-339 operations into final values.
func (s *Server) resolveIncremental(ti TopicInfo, ops []kmsg.IncrementalAlterConfigsRequestResourceConfig) ([]ConfigChange, *kerr.Error, string) {
	broker := s.brokerIndex()
	seen := make(map[string]bool)
	var changes []ConfigChange
	for _, op := range ops {
		if seen[op.Name] {
			return nil, kerr.InvalidRequest, fmt.Sprintf("config %q named more than once", op.Name)
		}
		seen[op.Name] = true
		d, ok := config.LookupTopic(op.Name)
		if !ok {
			return nil, kerr.InvalidConfig, fmt.Sprintf("unknown topic config %q", op.Name)
		}
		var value *string
		switch op.Op {
		case kmsg.IncrementalAlterConfigOpSet:
			if op.Value == nil {
				return nil, kerr.InvalidConfig, fmt.Sprintf("SET of %q needs a value", op.Name)
			}
			value = op.Value
		case kmsg.IncrementalAlterConfigOpDelete:
		case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
			if d.Type != config.TypeList {
				return nil, kerr.InvalidConfig, fmt.Sprintf("%s on %q: only list configs can be appended to or subtracted from", op.Op, op.Name)
			}
			if op.Value == nil {
				return nil, kerr.InvalidConfig, fmt.Sprintf("%s of %q needs a value", op.Op, op.Name)
			}
			cur, has := ti.Configs[op.Name]
			if !has {
				cur, _ = s.topicDefault(d, broker)
			}
			items := config.SplitList(cur)
			for _, it := range config.SplitList(*op.Value) {
				if op.Op == kmsg.IncrementalAlterConfigOpAppend {
					if !slices.Contains(items, it) {
						items = append(items, it)
					}
				} else {
					items = slices.DeleteFunc(items, func(x string) bool { return x == it })
				}
			}
			value = strp(strings.Join(items, ","))
		default:
			return nil, kerr.InvalidRequest, fmt.Sprintf("unknown operation %d on %q", op.Op, op.Name)
		}
		if e, m := checkTopicChange(op.Name, value); e != nil {
			return nil, e, m
		}
		changes = append(changes, ConfigChange{Name: op.Name, Value: value})
	}
	return changes, nil, ""
}

// groupResourceCheck answers whether a GROUP config resource can be served:
// only with a GroupConfigs store, and only for a named group.
func (s *Server) groupResourceCheck(group string) (*kerr.Error, string) {
	if s.opts.GroupConfigs == nil {
		return kerr.InvalidRequest, fmt.Sprintf("unsupported resource type %d", kmsg.ConfigResourceTypeGroupConfig)
	}
	if group == "" {
		return kerr.InvalidRequest, "a group config resource needs a group name"
	}
	return nil, ""
}

// groupConfigEntries describes a group's configs given its overrides.
// names, when non-nil, filters by name.
func groupConfigEntries(overrides map[string]string, names []string, synonyms, docs bool) []kmsg.DescribeConfigsResponseResourceConfig {
	var out []kmsg.DescribeConfigsResponseResourceConfig
	for _, d := range config.GroupDefs() {
		if names != nil && !slices.Contains(names, d.Name) {
			continue
		}
		c := kmsg.NewDescribeConfigsResponseResourceConfig()
		c.Name, c.ReadOnly, c.IsSensitive, c.ConfigType = d.Name, d.ReadOnly, d.Sensitive, configType(d.Type)
		ov, has := overrides[d.Name]
		if has {
			c.Value, c.Source = strp(ov), kmsg.ConfigSourceGroupConfig
		} else {
			c.Value, c.Source, c.IsDefault = strp(d.Default), kmsg.ConfigSourceDefaultConfig, true
		}
		if synonyms {
			if has {
				c.ConfigSynonyms = append(c.ConfigSynonyms, synonym(d.Name, ov, kmsg.ConfigSourceGroupConfig))
			}
			name := d.Name
			if d.Synonym != "" {
				name = d.Synonym
			}
			c.ConfigSynonyms = append(c.ConfigSynonyms, synonym(name, d.Default, kmsg.ConfigSourceDefaultConfig))
		}
		if docs {
			c.Documentation = strp(d.Doc)
		}
		if d.Sensitive {
			c.Value = nil
			for i := range c.ConfigSynonyms {
				c.ConfigSynonyms[i].Value = nil
			}
		}
		out = append(out, c)
	}
	return out
}

// groupConfigOp is one change of a group config, from either alter API
// (AlterConfigs changes are SETs, a nil value deleting).
type groupConfigOp struct {
	name  string
	op    kmsg.IncrementalAlterConfigOp
	value *string
}

// alterGroupConfig checks and applies the changes to a group's configs
// (replace: AlterConfigs) and returns the resource's error code and
// message.
func (s *Server) alterGroupConfig(ctx context.Context, rc *reqCtx, group string, ops []groupConfigOp, replace, validateOnly bool) (int16, *string) {
	if e, msg := s.groupResourceCheck(group); e != nil {
		return e.Code, strp(msg)
	}
	seen := make(map[string]bool)
	changes := make([]ConfigChange, 0, len(ops))
	for _, op := range ops {
		if seen[op.name] {
			return kerr.InvalidRequest.Code, strp(fmt.Sprintf("config %q named more than once", op.name))
		}
		seen[op.name] = true
		if _, ok := config.LookupGroup(op.name); !ok {
			return kerr.InvalidConfig.Code, strp("Unknown group config name: " + op.name)
		}
		var value *string
		switch op.op {
		case kmsg.IncrementalAlterConfigOpSet:
			value = op.value
			if value == nil && !replace {
				return kerr.InvalidConfig.Code, strp(fmt.Sprintf("SET of %q needs a value", op.name))
			}
		case kmsg.IncrementalAlterConfigOpDelete:
		case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
			return kerr.InvalidRequest.Code, strp(fmt.Sprintf("%s on %q: only list configs can be appended to or subtracted from", op.op, op.name))
		default:
			return kerr.InvalidRequest.Code, strp(fmt.Sprintf("unknown operation %d on %q", op.op, op.name))
		}
		if value != nil {
			if err := config.ValidateGroupConfig(op.name, *value); err != nil {
				return kerr.InvalidConfig.Code, errorMessage(err)
			}
		}
		changes = append(changes, ConfigChange{Name: op.name, Value: value})
	}
	if err := s.opts.GroupConfigs.AlterGroupConfig(ctx, group, changes, replace, validateOnly); err != nil {
		return errorCode(rc.log.With("group", group), err), errorMessage(err)
	}
	return 0, nil
}
