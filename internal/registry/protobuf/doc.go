// Package protobuf is the schema registry's PROTOBUF format: it parses
// .proto text with its references (imports resolved from the references'
// text; the well-known types and Confluent's own imports built in),
// renders canonical and normalized text, checks compatibility by
// Confluent's Protobuf rules, and decodes record payloads in the Confluent
// wire format (message indexes, then the protobuf binary) into plain Go
// values.
//
// It never talks to the registry's storage or to the network; it only
// turns text and bytes into verdicts. It depends on bufbuild/protocompile
// (the compiler) and google.golang.org/protobuf (descriptors, dynamicpb),
// never on generated code for user schemas.
//
// Decisions, in brief (details on the functions):
//   - Canonical text is a rendering of the compiled file descriptor:
//     declaration order kept, every type name fully qualified, comments and
//     formatting gone. Normalized text additionally sorts imports, orders
//     fields by number and options by name (message, enum and service order
//     is kept because message indexes depend on it).
//   - Compatibility follows Confluent: messages are matched by their name
//     inside the package (so a package rename alone is compatible), fields
//     by number; see compat.go for the table of verdicts.
//   - Decode accepts unknown fields, as Confluent's deserializers do (a
//     producer may write with a newer schema under an older id); they are
//     checked to be well-formed wire data but are left out of the value.
package protobuf
