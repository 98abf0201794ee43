package dag

import (
	"bytes"
	"encoding/json"
)

// ParamsSchema returns the declared params as a JSON Schema (draft 2020-12) of
// the conf object: for each param, in declaration order, its type, items,
// description, default, enum, minimum and maximum; the required params; and no
// other keys. It is what the API serves and the UI builds its trigger form from.
// A param declared without a type that takes null (see Param.Type) has the
// types [T, "null"].
func (d *DAG) ParamsSchema() json.RawMessage {
	props := make(ordered, 0, len(d.params))
	required := []string{}
	for _, p := range d.params {
		props = append(props, field{p.Name, p.schema()})
		if p.Required {
			required = append(required, p.Name)
		}
	}
	s := ordered{
		{"$schema", "https://json-schema.org/draft/2020-12/schema"},
		{"title", d.id},
		{"type", "object"},
		{"properties", props},
	}
	if len(required) > 0 {
		s = append(s, field{"required", required})
	}
	s = append(s, field{"additionalProperties", false})
	b, err := json.Marshal(s)
	if err != nil { // defaults and enum values were checked to encode
		return json.RawMessage(`{"type":"object"}`)
	}
	return b
}

func (p paramSpec) schema() ordered {
	var s ordered
	switch {
	case p.typ == ParamAny:
	case p.strict || p.Required:
		s = append(s, field{"type", p.typ})
	default:
		s = append(s, field{"type", []ParamType{p.typ, paramNull}})
	}
	if p.Items != ParamAny {
		s = append(s, field{"items", ordered{{"type", p.Items}}})
	}
	if p.Description != "" {
		s = append(s, field{"description", p.Description})
	}
	if p.defaultJSON != nil {
		s = append(s, field{"default", json.RawMessage(p.defaultJSON)})
	}
	if len(p.Enum) > 0 {
		s = append(s, field{"enum", p.Enum})
	}
	if p.Minimum != nil {
		s = append(s, field{"minimum", *p.Minimum})
	}
	if p.Maximum != nil {
		s = append(s, field{"maximum", *p.Maximum})
	}
	return s
}

// ordered is a JSON object whose keys keep their order (the UI lays out the
// form in declaration order).
type ordered []field

type field struct {
	key   string
	value any
}

// MarshalJSON writes the fields in order.
func (o ordered) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(f.key)
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(f.value)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}
