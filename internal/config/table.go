package config

import (
	"fmt"
	"strconv"
	"strings"
)

// Defaults of the table.* topic configs that are not plain values.
const (
	// DefaultTableNamespace is the Iceberg namespace of a topic's table
	// when table.namespace is empty.
	DefaultTableNamespace = "default"
	// DefaultTablePartitionBy partitions a table by the day of the record
	// timestamp.
	DefaultTablePartitionBy = "day(_timestamp)"
)

// Table is a topic's Tableflow configuration, the table.* topic configs
// resolved and typed.
type Table struct {
	Enabled bool
	// Mode is "append" or "upsert".
	Mode             string
	CommitIntervalMs int64
	// PartitionBy is the partition spec; empty means unpartitioned.
	PartitionBy []PartitionField
	// Namespace and Name are the overrides as configured ("" when not
	// set); TableIdent applies the defaults.
	Namespace, Name string
	// ErrorMode is "suspend", "skip" or "dlq".
	ErrorMode string
	// ErrorDLQTopic is the dead-letter topic as configured; "" means
	// <topic>-table-dlq (see DLQTopic).
	ErrorDLQTopic      string
	RetentionSnapshots int
	// Source is table.source: "" when the topic follows no table.
	Source string
}

// TableIdent returns the namespace and name of topic's table: the
// table.namespace and table.name overrides, else "default" and the topic
// name with dots turned into underscores (a dot would read as a namespace
// separator in engines' SQL).
func (t Table) TableIdent(topic string) (namespace, name string) {
	namespace, name = t.Namespace, t.Name
	if namespace == "" {
		namespace = DefaultTableNamespace
	}
	if name == "" {
		name = strings.ReplaceAll(topic, ".", "_")
	}
	return namespace, name
}

// DLQTopic returns the dead-letter topic of table.error.mode=dlq.
func (t Table) DLQTopic(topic string) string {
	if t.ErrorDLQTopic != "" {
		return t.ErrorDLQTopic
	}
	return topic + "-table-dlq"
}

// PartitionField is one field of a table's partition spec: an Iceberg
// transform of a column.
type PartitionField struct {
	// Transform is identity, bucket, truncate, year, month, day or hour.
	Transform string
	// Param is bucket's N or truncate's W (0 for the others).
	Param int
	// Column names the source column (a top-level column, or a dotted
	// path into structs).
	Column string
}

// String renders the field as table.partition.by spells it.
func (f PartitionField) String() string {
	if f.Transform == "bucket" || f.Transform == "truncate" {
		return fmt.Sprintf("%s(%d, %s)", f.Transform, f.Param, f.Column)
	}
	return fmt.Sprintf("%s(%s)", f.Transform, f.Column)
}

// ParsePartitionBy parses table.partition.by: a comma-separated list of
// transform(column) or bucket(N, column) / truncate(W, column), or "none"
// (or empty) for an unpartitioned table.
func ParsePartitionBy(s string) ([]PartitionField, error) {
	s = strings.TrimSpace(s)
	if s == "" || strings.EqualFold(s, "none") {
		return nil, nil
	}
	var out []PartitionField
	seen := map[string]bool{}
	for rest := s; rest != ""; {
		open := strings.IndexByte(rest, '(')
		closing := strings.IndexByte(rest, ')')
		if open <= 0 || closing < open {
			return nil, fmt.Errorf("%q is not transform(column)", strings.TrimSpace(rest))
		}
		f := PartitionField{Transform: strings.ToLower(strings.TrimSpace(rest[:open]))}
		args := strings.Split(rest[open+1:closing], ",")
		switch f.Transform {
		case "identity", "year", "month", "day", "hour":
			if len(args) != 1 {
				return nil, fmt.Errorf("%s takes one column", f.Transform)
			}
			f.Column = strings.TrimSpace(args[0])
		case "bucket", "truncate":
			if len(args) != 2 {
				return nil, fmt.Errorf("%s takes a number and a column: %s(N, column)", f.Transform, f.Transform)
			}
			n, err := strconv.Atoi(strings.TrimSpace(args[0]))
			if err != nil || n <= 0 {
				return nil, fmt.Errorf("%s's %q must be a positive number", f.Transform, strings.TrimSpace(args[0]))
			}
			f.Param, f.Column = n, strings.TrimSpace(args[1])
		default:
			return nil, fmt.Errorf("unknown transform %q (year, month, day, hour, identity, bucket, truncate)", f.Transform)
		}
		if f.Column == "" {
			return nil, fmt.Errorf("%s has no column", f.Transform)
		}
		if seen[f.String()] {
			return nil, fmt.Errorf("%s appears twice", f)
		}
		seen[f.String()] = true
		out = append(out, f)
		rest = strings.TrimSpace(rest[closing+1:])
		if rest != "" {
			if rest[0] != ',' {
				return nil, fmt.Errorf("expected a comma after %s", f)
			}
			rest = strings.TrimSpace(rest[1:])
			if rest == "" {
				return nil, fmt.Errorf("trailing comma")
			}
		}
	}
	return out, nil
}

func validPartitionBy(v string) error {
	_, err := ParsePartitionBy(v)
	return err
}

// validTableIdent accepts an empty value (the default) or a name without
// dots, slashes or control characters (one level of namespace).
func validTableIdent(v string) error {
	if strings.ContainsAny(v, "./\\") {
		return fmt.Errorf("must not contain '.', '/' or '\\'")
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("must not contain control characters")
		}
	}
	return nil
}
