package dag

import (
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// TypedParams declares a DAG's params as the fields of a struct P; the value
// given holds the defaults. Task code reads them typed with task.ParamsAs[P].
// A field is a param when it is exported:
//
//   - its name is the field's json name (`json:"days"`; without one, the field's
//     name; `json:"-"` leaves the field out);
//   - its type is the field's: string, bool, any integer or float type (named
//     types too), or a slice of those (JSON arrays of that type);
//   - its default is the field's value in defaults, unless it is required;
//   - `description:"..."` describes it (any text);
//   - `param:"..."` constrains it, with comma-separated keys:
//     required (no default: every conf must set it; the field's value in
//     defaults must be the zero value), enum=a|b|c (the values allowed),
//     minimum=N and maximum=N (inclusive bounds of a number).
//
// For example:
//
//	type ReportParams struct {
//		Region string `json:"region" description:"where the data lives" param:"enum=eu|us|apac"`
//		Days   int    `json:"days" param:"minimum=1,maximum=31"`
//		DryRun bool   `json:"dryRun"`
//		Email  string `json:"email" param:"required"`
//	}
//
//	var report = dag.New("report", dag.TypedParams(ReportParams{Region: "eu", Days: 7}))
//
// Integer fields narrower than 64 bits get their type's bounds as minimum and
// maximum, and unsigned ones a minimum of 0, unless the tag sets them. A field
// of another type, an embedded field, a ,string json option or a malformed
// param tag is a problem that Validate reports, naming the DAG, the field and
// the tag. TypedParams can be combined with Params; names must not repeat.
func TypedParams[P any](defaults P) Option {
	return func(d *DAG) {
		v := reflect.ValueOf(&defaults).Elem()
		if v.Kind() == reflect.Interface && !v.IsNil() {
			v = v.Elem()
		}
		t := v.Type()
		if t.Kind() != reflect.Struct {
			d.fail("typed params: %s is not a struct", t)
			return
		}
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			where := fmt.Sprintf("typed params %s: field %s: ", t, f.Name)
			if f.Anonymous {
				d.fail("%sembedded fields are not supported; declare the params as fields", where)
				continue
			}
			name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" && opts == "" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			if hasOpt(opts, "string") {
				d.fail("%stag json:%q: the ,string option is not supported", where, f.Tag.Get("json"))
				continue
			}
			p := Param{Name: name, Description: f.Tag.Get("description")}
			var err error
			if p.Type, p.Items, err = fieldType(f.Type); err != nil {
				d.fail("%s%v", where, err)
				continue
			}
			tag := f.Tag.Get("param")
			if err := parseParamTag(&p, f.Type, tag); err != nil {
				d.fail("%stag param:%q: %v", where, tag, err)
				continue
			}
			impliedBounds(&p, f.Type)
			fv := v.Field(i)
			switch {
			case p.Required && !fv.IsZero():
				d.fail("%stag param:%q: a required param has no default, but the field's value is %v; "+
					"remove required or the value", where, tag, fv.Interface())
				continue
			case p.Required:
			case fv.Kind() == reflect.Slice && fv.IsNil():
				p.Default = reflect.MakeSlice(f.Type, 0, 0).Interface() // [], not null
			default:
				p.Default = fv.Interface()
			}
			d.addParam(p, f.Type, fmt.Sprintf("typed params %s: field %s (param %q): ", t, f.Name, name))
		}
	}
}

func hasOpt(opts, want string) bool {
	for o := range strings.SplitSeq(opts, ",") {
		if o == want {
			return true
		}
	}
	return false
}

var (
	durationType        = reflect.TypeFor[time.Duration]()
	jsonMarshalerType   = reflect.TypeFor[json.Marshaler]()
	jsonUnmarshalerType = reflect.TypeFor[json.Unmarshaler]()
	textMarshalerType   = reflect.TypeFor[encoding.TextMarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// fieldType is the param type of a field's Go type.
func fieldType(t reflect.Type) (typ, items ParamType, err error) {
	if t == durationType {
		return "", "", fmt.Errorf("type time.Duration is not supported (its JSON is nanoseconds): use an integer of seconds")
	}
	for _, m := range []reflect.Type{jsonMarshalerType, jsonUnmarshalerType, textMarshalerType, textUnmarshalerType} {
		if t.Implements(m) || reflect.PointerTo(t).Implements(m) {
			return "", "", fmt.Errorf("type %s is not supported: it has its own JSON encoding (want string, bool, an integer or float type, or a slice of those)", t)
		}
	}
	if t.Kind() == reflect.Slice {
		// []byte is base64 in JSON: not an array.
		if items, ok := scalarType(t.Elem()); ok && t.Elem().Kind() != reflect.Uint8 {
			if _, _, err := fieldType(t.Elem()); err == nil {
				return ParamArray, items, nil
			}
		}
	} else if typ, ok := scalarType(t); ok {
		return typ, "", nil
	}
	return "", "", fmt.Errorf("type %s is not supported (want string, bool, an integer or float type, or a slice of those)", t)
}

func scalarType(t reflect.Type) (ParamType, bool) {
	switch k := t.Kind(); {
	case k == reflect.String:
		return ParamString, true
	case k == reflect.Bool:
		return ParamBoolean, true
	case k >= reflect.Int && k <= reflect.Uintptr:
		return ParamInteger, true
	case k == reflect.Float32 || k == reflect.Float64:
		return ParamNumber, true
	}
	return "", false
}

// parseParamTag reads a param tag into p.
func parseParamTag(p *Param, t reflect.Type, tag string) error {
	for part := range strings.SplitSeq(tag, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		key, val, hasVal := strings.Cut(part, "=")
		switch key {
		case "required":
			if hasVal {
				return fmt.Errorf("required takes no value")
			}
			p.Required = true
		case "enum":
			if p.Type == ParamArray {
				return fmt.Errorf("enum applies to string, integer, number and boolean fields, not to %s", t)
			}
			if val == "" {
				return fmt.Errorf("enum is empty (want enum=a|b|c)")
			}
			for s := range strings.SplitSeq(val, "|") {
				e, err := parseScalar(t, s)
				if err != nil {
					return fmt.Errorf("enum value %q: %v", s, err)
				}
				p.Enum = append(p.Enum, e)
			}
		case "minimum", "maximum":
			if p.Type != ParamInteger && p.Type != ParamNumber {
				return fmt.Errorf("%s applies to integer and float fields, not to %s", key, t)
			}
			f, err := strconv.ParseFloat(val, 64)
			if err != nil {
				return fmt.Errorf("%s %q is not a number", key, val)
			}
			if key == "minimum" {
				p.Minimum = &f
			} else {
				p.Maximum = &f
			}
		default:
			return fmt.Errorf("unknown key %q (want required, enum=a|b, minimum=N, maximum=N; the description goes in its own tag, description:\"...\")", key)
		}
	}
	return nil
}

// parseScalar reads a tag's text as a value of the field's type.
func parseScalar(t reflect.Type, s string) (any, error) {
	switch k := t.Kind(); {
	case k == reflect.String:
		return s, nil
	case k == reflect.Bool:
		return strconv.ParseBool(s)
	case k >= reflect.Int && k <= reflect.Int64:
		return strconv.ParseInt(s, 10, t.Bits())
	case k >= reflect.Uint && k <= reflect.Uintptr:
		return strconv.ParseUint(s, 10, t.Bits())
	case k == reflect.Float32 || k == reflect.Float64:
		return strconv.ParseFloat(s, t.Bits())
	}
	return nil, fmt.Errorf("not a %s", t)
}

// impliedBounds gives integer fields narrower than 64 bits their type's bounds.
func impliedBounds(p *Param, t reflect.Type) {
	if p.Type != ParamInteger {
		return
	}
	k := t.Kind()
	unsigned := k >= reflect.Uint && k <= reflect.Uintptr
	if p.Minimum == nil && (unsigned || t.Bits() < 64) {
		lo := 0.0
		if !unsigned {
			lo = float64(minInt(t))
		}
		p.Minimum = &lo
	}
	if p.Maximum == nil && t.Bits() < 64 {
		hi := float64(maxInt(t))
		if unsigned {
			hi = float64(maxUint(t))
		}
		p.Maximum = &hi
	}
}
