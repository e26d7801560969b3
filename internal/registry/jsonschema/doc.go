// Package jsonschema is the schema registry's JSON Schema format (schema
// type "JSON"): it parses and compiles schemas with their references,
// renders their canonical and normalized text, decides whether one schema
// can read data written with another, and validates record payloads.
//
// Parsing and validation use github.com/santhosh-tekuri/jsonschema/v6.
// Drafts 4, 6, 7, 2019-09 and 2020-12 are supported; "$schema" picks the
// draft and a schema without one is draft-07, as in Confluent's registry.
// References are resolved only from the references handed to Parse: the
// package never reads files or the network. Regular expressions ("pattern",
// "patternProperties") are Go RE2 expressions, so ECMA-262 features such as
// look-around make a schema invalid.
//
// Canonical text is compact JSON with object keys sorted. Normalized text is
// the same: Confluent's normalize for JSON Schema re-serializes the schema
// with its properties ordered by key (and sorts the reference list, which
// the registry owns), which the canonical form already does.
//
// Compatibility follows Confluent's JSON Schema rules, which turn on the
// content model of an object: open (additionalProperties absent or true),
// closed (false) or partially open (a schema). The check is
// "every value valid under the writer is valid under the reader", analysed
// structurally; messages name the rule (Confluent's difference names, e.g.
// PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL) and the JSON pointer in the schema.
// Where a keyword is not analysed the answer is "incompatible" with a
// message that says so, never a guess of "compatible"; see compat.go for
// the list. One deliberate departure from pure set inclusion, taken from
// Confluent: a property made required that has a "default" is compatible.
//
// This package must never import a registry implementation other than the
// contract in internal/registry, and never panic on schema or payload input.
package jsonschema
