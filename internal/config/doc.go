// Package config owns Runnel's configuration: the server configuration read
// from YAML (Default, Load, Validate) and the tables of Kafka topic and broker
// configs (name, type, default, validator, doc) that CreateTopics,
// DescribeConfigs and AlterConfigs are answered from.
//
// The package is a leaf: it imports nothing from internal/, holds no mutable
// package state, and never performs I/O other than reading the file given to
// Load. Every validation error names the offending key; topic config errors
// wrap ErrInvalidConfig or ErrUnknownConfig so callers can map them to Kafka
// error codes.
package config
