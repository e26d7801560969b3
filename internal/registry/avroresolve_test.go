package registry

import (
	"testing"
)

func TestResolveAvro(t *testing.T) {
	money := `{"type":"record","name":"Money","namespace":"fin","fields":[{"name":"cents","type":"long"},{"name":"cur","type":{"type":"enum","name":"Currency","symbols":["EUR","USD"]}}]}`
	tests := []struct {
		name    string
		schema  string
		refs    []ResolvedReference
		want    string
		wantErr bool
	}{
		{name: "no references: compact, keys in order",
			schema: "{ \"type\": \"record\", \"name\": \"R\", \"fields\": [ {\"name\": \"a\", \"type\": \"string\", \"doc\": \"<b>&\"} ] }",
			want:   `{"type":"record","name":"R","fields":[{"name":"a","type":"string","doc":"<b>&"}]}`},
		{name: "first use inlined, later uses by name",
			schema: `{"type":"record","name":"Order","namespace":"shop","fields":[{"name":"price","type":"fin.Money"},{"name":"tax","type":["null","fin.Money"]},{"name":"c","type":"fin.Currency"}]}`,
			refs:   []ResolvedReference{{Name: "fin.Money", Schema: money}},
			want:   `{"type":"record","name":"Order","namespace":"shop","fields":[{"name":"price","type":{"type":"record","name":"Money","namespace":"fin","fields":[{"name":"cents","type":"long"},{"name":"cur","type":{"type":"enum","name":"Currency","symbols":["EUR","USD"]}}]}},{"name":"tax","type":["null","fin.Money"]},{"name":"c","type":"fin.Currency"}]}`},
		{name: "nested type used first, then its container",
			schema: `{"type":"record","name":"Order","namespace":"fin","fields":[{"name":"c","type":"Currency"},{"name":"m","type":"Money"}]}`,
			refs:   []ResolvedReference{{Name: "fin.Money", Schema: money}},
			want:   `{"type":"record","name":"Order","namespace":"fin","fields":[{"name":"c","type":{"type":"enum","name":"Currency","symbols":["EUR","USD"]}},{"name":"m","type":{"type":"record","name":"Money","namespace":"fin","fields":[{"name":"cents","type":"long"},{"name":"cur","type":"fin.Currency"}]}}]}`},
		{name: "namespace made explicit where the enclosing one differs",
			schema: `{"type":"record","name":"Order","namespace":"shop","fields":[{"name":"p","type":"Point"}]}`,
			refs:   []ResolvedReference{{Name: "Point", Schema: `{"type":"record","name":"Point","fields":[{"name":"x","type":"int"}]}`}},
			want:   `{"type":"record","name":"Order","namespace":"shop","fields":[{"name":"p","type":{"type":"record","name":"Point","namespace":"","fields":[{"name":"x","type":"int"}]}}]}`},
		{name: "reference of a reference, in arrays and maps",
			schema: `{"type":"record","name":"Cart","fields":[{"name":"lines","type":{"type":"array","items":"shop.Line"}},{"name":"by","type":{"type":"map","values":"fin.Money"}}]}`,
			refs: []ResolvedReference{{Name: "shop.Line", Schema: `{"type":"record","name":"Line","namespace":"shop","fields":[{"name":"price","type":"fin.Money"}]}`,
				Refs: []ResolvedReference{{Name: "fin.Money", Schema: money}}}},
			want: `{"type":"record","name":"Cart","fields":[{"name":"lines","type":{"type":"array","items":{"type":"record","name":"Line","namespace":"shop","fields":[{"name":"price","type":{"type":"record","name":"Money","namespace":"fin","fields":[{"name":"cents","type":"long"},{"name":"cur","type":{"type":"enum","name":"Currency","symbols":["EUR","USD"]}}]}}]}}},{"name":"by","type":{"type":"map","values":"fin.Money"}}]}`},
		{name: "a bare name as the whole schema",
			schema: `"fin.Money"`,
			refs:   []ResolvedReference{{Name: "fin.Money", Schema: money}},
			want:   money},
		{name: "logical type wrapper and primitives untouched",
			schema: `{"type":"long","logicalType":"timestamp-millis"}`,
			want:   `{"type":"long","logicalType":"timestamp-millis"}`},
		{name: "broken stored text", schema: `{"type":`, wantErr: true},
		{name: "broken reference", schema: `"x.Y"`, refs: []ResolvedReference{{Name: "x.Y", Schema: `[`}}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := resolveAvro(tt.schema, tt.refs)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("resolveAvro = %s, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("resolveAvro:\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}
