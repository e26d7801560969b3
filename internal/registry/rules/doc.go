// Package rules evaluates a schema's data contract rules (Confluent's rule
// types CEL and CEL_FIELD) against a record value decoded by
// registry.Schema.Decode, with cel-go.
//
// It owns: compiling rule expressions once (programs cached by rule type,
// kind and expression), evaluating them with a bounded cost, walking a
// decoded record's fields for CEL_FIELD rules, resolving field tags from the
// contract's metadata (Confluent's wildcard paths) and from the caller, and
// reporting per rule what happened and which action (NONE, ERROR, DLQ) the
// contract asks for.
//
// It must never perform an action itself (reject a batch, write to a
// dead-letter topic), never do I/O, never panic on a rule or a record, and
// never mutate the value it is given: a transform returns a new value. It
// does not import the broker nor a schema format package.
//
// # Semantics (Confluent's data contracts)
//
//   - Rule selection: disabled rules are skipped. Check runs the domain rules
//     whose mode applies: WRITE and WRITEREAD on ModeWrite, READ and
//     WRITEREAD on ModeRead (in reverse order, as Confluent's deserializers
//     do). Migrate runs the migration rules: UPGRADE and UPDOWN on
//     ModeUpgrade, DOWNGRADE and UPDOWN on ModeDowngrade (reverse order).
//     An empty rule mode means WRITEREAD. Encoding rules act on payload
//     bytes and are not evaluated here.
//   - Kinds: a CONDITION must evaluate to a bool (false is a failure, any
//     other type an error); a TRANSFORM's result replaces the message (CEL)
//     or the field's value (CEL_FIELD). The kind is required.
//   - CEL sees one variable, message (the whole decoded value). CEL_FIELD is
//     evaluated for every primitive, non-null field value (string, number,
//     bool, bytes) whose tags intersect the rule's tags, or for every such
//     field when the rule has none, with the variables value, name (the field
//     name), fullName (the field's path, see below), typeName (STRING, LONG,
//     DOUBLE, BOOLEAN, BYTES), tags (the field's tags) and message (the map
//     that holds the field). Array elements are visited with their array's
//     field; maps nested in a record are walked as records. A later CEL_FIELD
//     TRANSFORM with the same tags as an earlier one is skipped, as in
//     Confluent's clients.
//   - Guards: an expression "guard ; expr" evaluates guard first; when it is
//     false (or fails) the rule is skipped for that message or field and
//     counts as passed. The split is at the first ';' outside string
//     literals.
//   - Outcomes: every evaluated rule yields one Outcome (passed, failed or
//     error) with the action its onSuccess or onFailure names: NONE when
//     onSuccess is empty, ERROR when onFailure is empty. For a WRITEREAD or
//     UPDOWN rule an action may be written "WRITE_ACTION,READ_ACTION" (e.g.
//     "DLQ,NONE"): the first part applies on write and upgrade, the second
//     on read and downgrade. Evaluation stops after the first failure or
//     error whose action is not NONE, as a Confluent serializer stops at the
//     exception. An unknown rule type, an expression that does not compile,
//     a runtime error, or the cost limit being hit is an error outcome with
//     the onFailure action: never a panic and never silently ignored.
//
// # Field paths and tags
//
// A field's path is the dotted chain of map keys from the root of the
// decoded value ("address.city"); array indexes are not part of it. A
// field's tags are those the caller's FieldTags function returns for the
// path (tags embedded in the schema: Avro and JSON Schema "confluent:tags",
// Protobuf (confluent.field_meta).tags) united with those of every
// metadata.tags entry whose key matches the path, or matches "$."+path (the
// JSON Schema form Confluent uses). Keys use Confluent's wildcards: '?'
// is one character and '*' any run of characters, both within one path
// segment, and '**' any run across segments: "**.ssn" matches an ssn field
// at any depth (a top-level one through "$.ssn"), "address.*" the fields of
// address. MatchPath exposes the matcher, so a caller that knows the
// schema's record names can apply Confluent's qualified keys
// ("com.acme.Customer.ssn") in its FieldTags. An Avro or Protobuf map
// decodes like a record, so its entries are visited as fields named by
// their keys.
//
// # Numbers
//
// Decoded numbers reach CEL as int (int64), uint (uint64) or double
// (float64). Comparisons across numeric types are enabled, so
// message.qty > 0 holds for an int64, a uint64 and a float64 qty alike, and
// 1.0 == 1. Arithmetic is not converted: message.price * 2 fails at run time
// for a float64 price (write 2.0, or double(message.qty)). A TRANSFORM's
// result is converted back to the same Go types (int64, uint64, float64,
// string, bool, []byte, nil, []any, map[string]any); a result that has no
// such form (a timestamp, a type) is an error.
//
// # Cost
//
// Every evaluation runs with a cel-go cost limit (Options.CostLimit), and
// an expression with a comprehension checks its context while it loops, so
// a pathological expression fails with an error outcome instead of holding
// a produce request. replace() refuses to build a string over
// Options.MaxStringLen (it is the one function whose output can be the
// square of its input, before the cost tracker sees it). Expressions are
// limited in size and regular expressions in program size at compile time;
// regular expressions are RE2 (linear time). Functions: standard CEL, the
// strings, encoders, math and sets extensions, and Confluent's isEmail,
// isHostname, isIpv4, isIpv6, isUri, isUriRef and isUuid.
package rules
