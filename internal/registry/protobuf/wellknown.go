package protobuf

import (
	"google.golang.org/genproto/googleapis/type/calendarperiod"
	"google.golang.org/genproto/googleapis/type/color"
	"google.golang.org/genproto/googleapis/type/date"
	"google.golang.org/genproto/googleapis/type/datetime"
	"google.golang.org/genproto/googleapis/type/dayofweek"
	"google.golang.org/genproto/googleapis/type/expr"
	"google.golang.org/genproto/googleapis/type/fraction"
	"google.golang.org/genproto/googleapis/type/latlng"
	"google.golang.org/genproto/googleapis/type/money"
	"google.golang.org/genproto/googleapis/type/month"
	"google.golang.org/genproto/googleapis/type/postaladdress"
	"google.golang.org/genproto/googleapis/type/quaternion"
	"google.golang.org/genproto/googleapis/type/timeofday"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Files a schema may import without a reference, as in Confluent's
// registry: its own confluent/meta.proto (metadata options for files,
// messages, fields, enums and enum values) and confluent/type/decimal.proto,
// Google's common types under google/type/, and the protobuf well-known
// types under google/protobuf/ (those come with the compiler: any, api,
// descriptor, duration, empty, field_mask, source_context, struct,
// timestamp, type, wrappers, compiler/plugin and the editions feature
// files).
//
// Google's types are the descriptors genproto compiles in, so they are
// Google's own definitions. Confluent's two files are written from their
// published definitions: package, message, field and enum names and numbers
// are what matter on the wire and in option syntax; comments and language
// options are left out. A reference with the same name takes precedence,
// so a schema registered with its own copy keeps using it.

// googleTypes are the google/type files Confluent's registry provides.
var googleTypes = map[string]protoreflect.FileDescriptor{
	"google/type/calendar_period.proto": calendarperiod.File_google_type_calendar_period_proto,
	"google/type/color.proto":           color.File_google_type_color_proto,
	"google/type/date.proto":            date.File_google_type_date_proto,
	"google/type/datetime.proto":        datetime.File_google_type_datetime_proto,
	"google/type/dayofweek.proto":       dayofweek.File_google_type_dayofweek_proto,
	"google/type/expr.proto":            expr.File_google_type_expr_proto,
	"google/type/fraction.proto":        fraction.File_google_type_fraction_proto,
	"google/type/latlng.proto":          latlng.File_google_type_latlng_proto,
	"google/type/money.proto":           money.File_google_type_money_proto,
	"google/type/month.proto":           month.File_google_type_month_proto,
	"google/type/postal_address.proto":  postaladdress.File_google_type_postal_address_proto,
	"google/type/quaternion.proto":      quaternion.File_google_type_quaternion_proto,
	"google/type/timeofday.proto":       timeofday.File_google_type_timeofday_proto,
}

// knownImports maps Confluent's own import paths to the file's .proto source.
var knownImports = map[string]string{
	"confluent/meta.proto": `syntax = "proto3";
package confluent;

import "google/protobuf/descriptor.proto";

message Meta {
  string doc = 1;
  map<string, string> params = 2;
  repeated string tags = 3;
}

extend google.protobuf.FileOptions {
  Meta file_meta = 1088;
}
extend google.protobuf.MessageOptions {
  Meta message_meta = 1088;
}
extend google.protobuf.FieldOptions {
  Meta field_meta = 1088;
}
extend google.protobuf.EnumOptions {
  Meta enum_meta = 1088;
}
extend google.protobuf.EnumValueOptions {
  Meta enum_value_meta = 1088;
}
`,
	"confluent/type/decimal.proto": `syntax = "proto3";
package confluent.type;

message Decimal {
  bytes value = 1;
  uint32 precision = 2;
  int32 scale = 3;
}
`,
}
