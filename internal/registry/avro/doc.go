// Package avro is the schema registry's Avro format: it parses Avro schemas
// (with references to named types registered under other subjects), gives
// their canonical and normalized texts, checks reader/writer compatibility
// with the Avro specification's schema resolution rules, and decodes Avro
// binary payloads into plain Go values for data contract rules.
//
// Schemas are parsed with github.com/hamba/avro/v2; the canonical and
// normalized renderings, the compatibility rules and the payload decoder
// are this package's own, so every message can say what broke and where.
//
// It implements the contract in internal/registry (Format, Schema,
// Compatibility) and must never import anything else of Runnel's: it
// keeps no state between calls, does no I/O and never panics on a schema
// or payload from a client.
package avro
