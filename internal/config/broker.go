package config

import (
	"slices"
	"strconv"
	"strings"
)

// BrokerDefs returns the broker configs reported by DescribeConfigs for a
// BROKER resource, with defaults taken from c, sorted by name. Broker
// configs come from the server configuration file, so all are read-only.
// Every topic config with a broker synonym (e.g. log.retention.ms) is
// included with c's topic-defaults applied.
func BrokerDefs(c Config) []Def {
	b := func(v bool) string { return strconv.FormatBool(v) }
	i := func(v int64) string { return strconv.FormatInt(v, 10) }
	defs := []Def{
		{Name: "advertised.listeners", Type: TypeString, Default: c.listenerList(true),
			Doc: "Listeners published to clients."},
		{Name: "auto.create.topics.enable", Type: TypeBoolean, Default: b(c.AutoCreateTopics),
			Doc: "Create a topic when a client asks for one that does not exist."},
		{Name: "broker.id", Type: TypeInt, Default: i(int64(c.BrokerID)),
			Doc: "This broker's id."},
		{Name: "broker.rack", Type: TypeString, Default: c.Rack,
			Doc: "This broker's rack (availability zone)."},
		{Name: "default.replication.factor", Type: TypeInt, Default: "1",
			Doc: "Replication factor reported for new topics; durability comes from the object store."},
		{Name: "delete.topic.enable", Type: TypeBoolean, Default: "true",
			Doc: "Topics can be deleted."},
		{Name: "errors.deadletterqueue.auto.create.topics.enable", Type: TypeBoolean, Default: b(c.DeadLetters.AutoCreateTopics),
			Doc: "Create a share group's missing dead-letter topic on its first dead letter (dead-letters.auto-create-topics)."},
		{Name: "errors.deadletterqueue.topic.name.prefix", Type: TypeString, Default: c.DeadLetters.TopicPrefix,
			Doc: "The prefix every share group's dead-letter topic name must have; empty allows any name (dead-letters.topic-prefix)."},
		{Name: "listeners", Type: TypeString, Default: c.listenerList(false),
			Doc: "Addresses the Kafka listeners bind."},
		{Name: "listener.security.protocol.map", Type: TypeString, Default: c.protocolMap(),
			Doc: "Security protocol of each listener."},
		{Name: "sasl.enabled.mechanisms", Type: TypeList, Default: strings.Join(c.SASL.Mechanisms, ","),
			Doc: "SASL mechanisms enabled on SASL listeners."},
		{Name: "super.users", Type: TypeList, Default: strings.Join(c.Authorization.SuperUsers, ";"),
			Doc: "Principals allowed every operation."},
		{Name: "log.dirs", Type: TypeString, Default: c.DataDir,
			Doc: "Local data directory (metadata member and caches); record data is in the object store."},
		{Name: "node.id", Type: TypeInt, Default: i(int64(c.BrokerID)),
			Doc: "This node's id (same as broker.id)."},
		{Name: "num.partitions", Type: TypeInt, Default: i(int64(c.DefaultPartitions)),
			Doc: "Partition count of auto-created topics and of CreateTopics requests that leave it unset."},
		{Name: "socket.request.max.bytes", Type: TypeInt, Default: i(int64(c.MaxRequestBytes)),
			Doc: "Largest request frame accepted."},
		{Name: "telemetry.max.bytes", Type: TypeInt, Default: i(int64(c.Telemetry.ClientMetricsBytes())),
			Doc: "Largest KIP-714 client metrics push accepted (telemetry.client-metrics-max-bytes)."},
	}
	seen := map[string]bool{}
	for _, d := range defs {
		seen[d.Name] = true
	}
	for _, td := range topicDefs {
		if td.Synonym == "" || seen[td.Synonym] {
			continue
		}
		seen[td.Synonym] = true
		def := td.Default
		if v, ok := c.TopicDefaults[td.Name]; ok {
			def = v
		}
		defs = append(defs, Def{Name: td.Synonym, Type: td.Type, Default: def, Doc: td.Doc, Validate: td.Validate})
	}
	for n := range defs {
		defs[n].ReadOnly = true
	}
	sortDefs(defs)
	return defs
}

// LookupBroker returns the broker config named name, as BrokerDefs(c) has it.
func LookupBroker(c Config, name string) (Def, bool) {
	for _, d := range BrokerDefs(c) {
		if d.Name == name {
			return d, true
		}
	}
	return Def{}, false
}

func sortDefs(defs []Def) {
	slices.SortFunc(defs, func(a, b Def) int { return strings.Compare(a.Name, b.Name) })
}

// listenerList renders the listeners as Kafka's listeners or
// advertised.listeners value, "NAME://host:port,...".
func (c Config) listenerList(advertised bool) string {
	var parts []string
	for _, l := range c.KafkaListeners() {
		addr := l.Addr
		if advertised && l.AdvertisedAddr != "" {
			addr = l.AdvertisedAddr
		}
		parts = append(parts, l.Name+"://"+addr)
	}
	return strings.Join(parts, ",")
}

// protocolMap renders listener.security.protocol.map, "NAME:PROTOCOL,...".
func (c Config) protocolMap() string {
	var parts []string
	for _, l := range c.KafkaListeners() {
		parts = append(parts, l.Name+":"+l.SecurityProtocol)
	}
	return strings.Join(parts, ",")
}
