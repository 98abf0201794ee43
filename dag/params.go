package dag

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/trellisdag/trellis/task"
	"math"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// ParamType is the JSON type a param's value must have, named as JSON Schema
// names it.
type ParamType string

// The param types. ParamAny takes any JSON value.
const (
	ParamAny     ParamType = ""
	ParamString  ParamType = "string"
	ParamInteger ParamType = "integer"
	ParamNumber  ParamType = "number"
	ParamBoolean ParamType = "boolean"
	ParamArray   ParamType = "array"
	ParamObject  ParamType = "object"
)

func (t ParamType) valid() bool {
	switch t {
	case ParamAny, ParamString, ParamInteger, ParamNumber, ParamBoolean, ParamArray, ParamObject:
		return true
	}
	return false
}

// an returns the type with its article, for messages: "an integer".
func (t ParamType) an() string {
	switch t {
	case ParamInteger, ParamArray, ParamObject:
		return "an " + string(t)
	case ParamAny:
		return "any value"
	case paramNull:
		return "null"
	}
	return "a " + string(t)
}

// Param declares a key of a run's conf: its default, and what a value must be.
// Conf keys that are not declared are refused when a run is triggered. Most DAGs
// declare their params with TypedParams, which fills the fields below from a
// struct; Params takes them as they are.
type Param struct {
	Name string `json:"name"`
	// Default is the value when the conf does not set the param (JSON-encodable;
	// nil: none). The run sees it as encoding/json decodes it, but for integers:
	// they keep the Go integer type of the default (int for Default: 10), so
	// Params()["limit"].(int) works.
	Default     any    `json:"default,omitempty"`
	Description string `json:"description,omitempty"`
	// Type is the JSON type a value must have. Empty: the type of Default (an
	// integer Go type means "integer"; a float, "number"), or any value when
	// Default is nil too; then null is also accepted. Set, null is refused.
	Type ParamType `json:"type,omitempty"`
	// Items is the JSON type of the items of an array param (empty: any).
	Items ParamType `json:"items,omitempty"`
	// Enum lists the values allowed (compared as JSON).
	Enum []any `json:"enum,omitempty"`
	// Minimum and Maximum bound a number or integer param (inclusive).
	Minimum *float64 `json:"minimum,omitempty"`
	Maximum *float64 `json:"maximum,omitempty"`
	// Required params have no default: every run's conf must set them, so a
	// DAG with a schedule cannot have any (scheduled runs have no conf).
	Required bool `json:"required,omitempty"`
}

// paramSpec is a declared param with what checking and converting values needs.
type paramSpec struct {
	Param
	typ         ParamType    // Type, else the type of Default
	goType      reflect.Type // the default's or the field's Go type; nil when unknown
	strict      bool         // Type was declared: null is refused
	defaultJSON []byte       // Default encoded; nil without a default
}

// Params declares the keys a run's conf may set, with their defaults and
// constraints. See TypedParams to declare them as a Go struct.
func Params(ps ...Param) Option {
	return func(d *DAG) {
		for _, p := range ps {
			var gt reflect.Type
			if p.Default != nil {
				gt = reflect.TypeOf(p.Default)
			}
			d.addParam(p, gt, fmt.Sprintf("param %q: ", p.Name))
		}
	}
}

// addParam checks a param's declaration and adds it; where prefixes problems.
func (d *DAG) addParam(p Param, goType reflect.Type, where string) {
	if p.Name == "" {
		d.fail("param with empty name")
		return
	}
	for _, q := range d.params {
		if q.Name == p.Name {
			d.fail("param %q declared twice", p.Name)
			return
		}
	}
	s := paramSpec{Param: p, goType: goType, strict: p.Type != ParamAny, typ: p.Type}
	ok := true // false: the declaration itself is wrong, so its default is not checked
	bad := func(format string, args ...any) {
		d.fail("%s%s", where, fmt.Sprintf(format, args...))
		ok = false
	}
	if !p.Type.valid() {
		bad("type %q: want string, integer, number, boolean, array or object", p.Type)
	}
	if !p.Items.valid() {
		bad("items type %q: want string, integer, number, boolean, array or object", p.Items)
	}
	if p.Default != nil {
		b, err := json.Marshal(p.Default)
		if err != nil {
			bad("default is not JSON-encodable: %v", err)
			return
		}
		s.defaultJSON = b
		if s.typ == ParamAny {
			s.typ = inferType(goType, b)
		}
	}
	if !ok {
		return
	}
	if p.Items != ParamAny && s.typ != ParamArray {
		bad("items type %q set on a param of type %s", p.Items, typeName(s.typ))
	}
	if p.Required && p.Default != nil {
		bad("required, with a default (%s): a required param has none", s.defaultJSON)
	}
	for i, e := range p.Enum {
		b, err := json.Marshal(e)
		if err != nil {
			bad("enum value %d is not JSON-encodable: %v", i, err)
			continue
		}
		if s.typ != ParamAny {
			t := s
			t.Enum, t.Minimum, t.Maximum, t.strict = nil, nil, nil, true
			if _, msg := t.check(decodeNumber(b)); msg != "" {
				bad("enum value %s: %s", b, msg)
			}
		}
	}
	if (p.Minimum != nil || p.Maximum != nil) && s.typ != ParamInteger && s.typ != ParamNumber {
		bad("minimum and maximum apply to integer and number params, not to %s", typeName(s.typ))
	}
	if p.Minimum != nil && p.Maximum != nil && *p.Minimum > *p.Maximum {
		bad("minimum %s is above maximum %s", fmtNum(*p.Minimum), fmtNum(*p.Maximum))
	}
	if ok && s.defaultJSON != nil {
		if _, msg := s.check(decodeNumber(s.defaultJSON)); msg != "" {
			bad("default %s: %s", s.defaultJSON, msg)
		}
	}
	d.params = append(d.params, s)
}

// paramProblems are the problems of the params that depend on other options.
func (d *DAG) paramProblems() []error {
	var errs []error
	if d.Scheduled() {
		for _, p := range d.params {
			if p.Required {
				errs = append(errs, fmt.Errorf("param %q is required, but the DAG has a schedule and scheduled runs have no conf: give it a default", p.Name))
			}
		}
	}
	// A task mapped over a param needs the param declared as a list.
	for _, t := range d.tasks {
		m, ok := task.MappingOf(t)
		if !ok || m.Param == "" {
			continue
		}
		i := slices.IndexFunc(d.params, func(p paramSpec) bool { return p.Name == m.Param })
		switch {
		case i < 0:
			errs = append(errs, fmt.Errorf("task %q is mapped over param %q, which the DAG does not declare (dag.Params)", t.ID(), m.Param))
		case d.params[i].typ != ParamArray && d.params[i].typ != ParamAny:
			errs = append(errs, fmt.Errorf("task %q is mapped over param %q of type %s; want an array", t.ID(), m.Param, typeName(d.params[i].typ)))
		}
	}
	return errs
}

// ParamDecls returns the declared params, in the order they were declared.
func (d *DAG) ParamDecls() []Param {
	out := make([]Param, len(d.params))
	for i, s := range d.params {
		p := s.Param
		p.Enum = slices.Clone(p.Enum)
		if p.Minimum != nil {
			p.Minimum = ptr(*p.Minimum)
		}
		if p.Maximum != nil {
			p.Maximum = ptr(*p.Maximum)
		}
		out[i] = p
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// ErrConf is wrapped by the errors of ResolveConf.
var ErrConf = errors.New("invalid conf")

// FieldError is one problem of a run's conf.
type FieldError struct {
	// Param is the conf key the problem is about; empty when it is about the
	// conf as a whole (not a JSON object).
	Param string `json:"param,omitempty"`
	// Message says what is wrong, without the param's name: "must be at most
	// 31, got 40".
	Message string `json:"message"`
}

// Error returns the problem with the param's name: param "days" must be at most 31, got 40.
func (e FieldError) Error() string {
	if e.Param == "" {
		return e.Message
	}
	return fmt.Sprintf("param %q %s", e.Param, e.Message)
}

// ConfError is the error of ResolveConf: every problem of a conf, one per
// param, in the order the params were declared (then undeclared keys, sorted).
// It wraps ErrConf.
type ConfError struct {
	DAG    string
	Fields []FieldError
}

// Error returns one line per problem, each naming the DAG and the param.
func (e *ConfError) Error() string {
	lines := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		lines[i] = fmt.Sprintf("dag %q: %v: %s", e.DAG, ErrConf, f.Error())
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns ErrConf.
func (e *ConfError) Unwrap() error { return ErrConf }

// ResolveConf checks a run's conf (a JSON object, or empty) against the declared
// params and returns the params: the defaults overlaid with the conf. The error,
// a *ConfError, lists every problem: keys that are not declared, required params
// that are missing, values of the wrong type, not in the enum, or out of range.
//
// Values are as encoding/json decodes them into an any (float64, string, bool,
// []any, map[string]any), except integer params: they have the Go integer type
// of their default or field (int when there is none), so that
// Params()["limit"].(int) works and templates print 1000000, not 1e+06.
// task.ParamsAs decodes the result into the struct given to TypedParams.
func (d *DAG) ResolveConf(conf []byte) (map[string]any, error) {
	params := make(map[string]any, len(d.params))
	var m map[string]json.RawMessage
	if len(bytes.TrimSpace(conf)) > 0 {
		if err := json.Unmarshal(conf, &m); err != nil || m == nil {
			msg := "not a JSON object"
			if err != nil {
				msg = err.Error()
			}
			return nil, &ConfError{DAG: d.id, Fields: []FieldError{{Message: msg}}}
		}
	}
	var errs []FieldError
	for _, s := range d.params {
		raw, ok := m[s.Name]
		var v any
		if ok {
			v = decodeNumber(raw)
		}
		if !ok || (v == nil && s.Required && !s.strict) {
			if s.Required {
				errs = append(errs, FieldError{s.Name, "is required"})
				continue
			}
			if s.defaultJSON == nil {
				params[s.Name] = nil
				continue
			}
			v = decodeNumber(s.defaultJSON) // a copy: the run may change it
		}
		out, msg := s.check(v)
		if msg != "" {
			errs = append(errs, FieldError{s.Name, msg})
			continue
		}
		params[s.Name] = out
	}
	var unknown []string
	for k := range m {
		if _, ok := d.param(k); !ok {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		msg := "is not declared (this DAG declares no params)"
		if len(d.params) > 0 {
			names := make([]string, len(d.params))
			for i, p := range d.params {
				names[i] = p.Name
			}
			msg = "is not declared (declared params: " + strings.Join(names, ", ")
			if near := nearest(k, names); near != "" {
				msg += fmt.Sprintf("; did you mean %q?", near)
			}
			msg += ")"
		}
		errs = append(errs, FieldError{k, msg})
	}
	if len(errs) > 0 {
		return nil, &ConfError{DAG: d.id, Fields: errs}
	}
	return params, nil
}

func (d *DAG) param(name string) (paramSpec, bool) {
	for _, p := range d.params {
		if p.Name == name {
			return p, true
		}
	}
	return paramSpec{}, false
}

// check checks a value (decoded by decodeNumber) against the param and returns
// it as the run sees it, or what is wrong with it.
func (s *paramSpec) check(v any) (any, string) {
	if v == nil {
		if s.strict {
			return nil, fmt.Sprintf("must be %s, got null", s.typ.an())
		}
		return nil, ""
	}
	var out any
	var num float64 // the value of a number, for the range
	switch s.typ {
	case ParamAny:
		out = plain(v)
	case ParamInteger:
		n, ok := v.(json.Number)
		if !ok {
			return nil, fmt.Sprintf("must be an integer, got %s", typeOf(v).an())
		}
		i, msg := s.integer(n)
		if msg != "" {
			return nil, msg
		}
		out, num = i, mustFloat(n)
	case ParamNumber:
		n, ok := v.(json.Number)
		if !ok {
			return nil, fmt.Sprintf("must be a number, got %s", typeOf(v).an())
		}
		num = mustFloat(n)
		out = num
	case ParamString, ParamBoolean, ParamObject:
		if typeOf(v) != s.typ {
			return nil, fmt.Sprintf("must be %s, got %s", s.typ.an(), typeOf(v).an())
		}
		out = plain(v)
	case ParamArray:
		a, ok := v.([]any)
		if !ok {
			return nil, fmt.Sprintf("must be an array, got %s", typeOf(v).an())
		}
		if s.Items != ParamAny {
			item := paramSpec{typ: s.Items, strict: true}
			for i, x := range a {
				if _, msg := item.check(x); msg != "" {
					return nil, fmt.Sprintf("item %d %s", i, msg)
				}
			}
		}
		out = plain(v)
	}
	if len(s.Enum) > 0 {
		in := false
		for _, e := range s.Enum {
			if sameJSON(e, v) {
				in = true
				break
			}
		}
		if !in {
			return nil, fmt.Sprintf("must be one of %s, got %s", enumList(s.Enum), compact(v))
		}
	}
	if s.Minimum != nil && num < *s.Minimum {
		return nil, fmt.Sprintf("must be at least %s, got %s", fmtNum(*s.Minimum), v)
	}
	if s.Maximum != nil && num > *s.Maximum {
		return nil, fmt.Sprintf("must be at most %s, got %s", fmtNum(*s.Maximum), v)
	}
	return out, ""
}

// integer returns n as the param's Go integer type.
func (s *paramSpec) integer(n json.Number) (any, string) {
	t := reflect.TypeFor[int]()
	if s.goType != nil {
		if b, ok := basicInts[s.goType.Kind()]; ok {
			t = b
		}
	}
	out := reflect.New(t).Elem()
	notInt := fmt.Sprintf("must be an integer, got %s", n)
	switch t.Kind() {
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		u, err := strconv.ParseUint(string(n), 10, 64)
		if err != nil {
			f, ferr := strconv.ParseFloat(string(n), 64)
			if ferr != nil || f != math.Trunc(f) {
				return nil, notInt
			}
			if f < 0 || f >= math.MaxUint64 {
				return nil, fmt.Sprintf("must be an integer from 0 to %d (%s), got %s", maxUint(t), t, n)
			}
			u = uint64(f)
		}
		if out.OverflowUint(u) {
			return nil, fmt.Sprintf("must be an integer from 0 to %d (%s), got %s", maxUint(t), t, n)
		}
		out.SetUint(u)
	default:
		i, err := strconv.ParseInt(string(n), 10, 64)
		if err != nil {
			f, ferr := strconv.ParseFloat(string(n), 64)
			if ferr != nil || f != math.Trunc(f) {
				return nil, notInt
			}
			if f < math.MinInt64 || f >= math.MaxInt64 {
				return nil, fmt.Sprintf("must be an integer from %d to %d (%s), got %s", minInt(t), maxInt(t), t, n)
			}
			i = int64(f)
		}
		if out.OverflowInt(i) {
			return nil, fmt.Sprintf("must be an integer from %d to %d (%s), got %s", minInt(t), maxInt(t), t, n)
		}
		out.SetInt(i)
	}
	return out.Interface(), ""
}

var basicInts = map[reflect.Kind]reflect.Type{
	reflect.Int: reflect.TypeFor[int](), reflect.Int8: reflect.TypeFor[int8](), reflect.Int16: reflect.TypeFor[int16](),
	reflect.Int32: reflect.TypeFor[int32](), reflect.Int64: reflect.TypeFor[int64](),
	reflect.Uint: reflect.TypeFor[uint](), reflect.Uint8: reflect.TypeFor[uint8](), reflect.Uint16: reflect.TypeFor[uint16](),
	reflect.Uint32: reflect.TypeFor[uint32](), reflect.Uint64: reflect.TypeFor[uint64](), reflect.Uintptr: reflect.TypeFor[uintptr](),
}

func minInt(t reflect.Type) int64   { return -1 << (t.Bits() - 1) }
func maxInt(t reflect.Type) int64   { return 1<<(t.Bits()-1) - 1 }
func maxUint(t reflect.Type) uint64 { return math.MaxUint64 >> (64 - t.Bits()) }

// inferType is the JSON type of a default: from its Go type when known (so
// that 10 is an integer and 10.0 a number), else from its JSON.
func inferType(goType reflect.Type, b []byte) ParamType {
	if goType != nil {
		switch k := goType.Kind(); {
		case k >= reflect.Int && k <= reflect.Uintptr:
			return ParamInteger
		case k == reflect.Float32 || k == reflect.Float64:
			return ParamNumber
		}
	}
	if t := typeOf(decodeNumber(b)); t != paramNull {
		return t
	}
	return ParamAny
}

func typeName(t ParamType) string {
	if t == ParamAny {
		return "any type"
	}
	return string(t)
}

// decodeNumber decodes JSON with numbers as json.Number; invalid JSON gives nil.
func decodeNumber(b []byte) any {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return nil
	}
	return v
}

// plain turns the json.Numbers of v into float64s, as encoding/json decodes them.
func plain(v any) any {
	switch x := v.(type) {
	case json.Number:
		return mustFloat(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = plain(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = plain(e)
		}
		return out
	}
	return v
}

func mustFloat(n json.Number) float64 {
	f, _ := strconv.ParseFloat(string(n), 64)
	return f
}

// paramNull is the type of null, for messages only (not a valid Param.Type).
const paramNull ParamType = "null"

// typeOf is the JSON type of a decoded value.
func typeOf(v any) ParamType {
	switch v.(type) {
	case bool:
		return ParamBoolean
	case json.Number, float64:
		return ParamNumber
	case string:
		return ParamString
	case []any:
		return ParamArray
	case map[string]any:
		return ParamObject
	}
	return paramNull
}

// sameJSON compares two values as JSON (1 and 1.0 are the same).
func sameJSON(a, b any) bool {
	ab, err1 := json.Marshal(a)
	bb, err2 := json.Marshal(b)
	if err1 != nil || err2 != nil {
		return false
	}
	return reflect.DeepEqual(plain(decodeNumber(ab)), plain(decodeNumber(bb)))
}

func compact(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func enumList(vs []any) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = compact(v)
	}
	return strings.Join(s, ", ")
}

func fmtNum(f float64) string {
	b, err := json.Marshal(f)
	if err != nil {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	return string(b)
}

// ValueType returns the JSON type a value of the param must have: Type, else
// the type of Default (an integer Go type is ParamInteger), else ParamAny.
func (p Param) ValueType() ParamType {
	if p.Type != ParamAny || p.Default == nil {
		return p.Type
	}
	b, err := json.Marshal(p.Default)
	if err != nil {
		return ParamAny
	}
	return inferType(reflect.TypeOf(p.Default), b)
}

// nearest is the name closest to k, case aside, within one edit (two for
// names longer than 4), or "".
func nearest(k string, names []string) string {
	best, bestD := "", 3
	for _, n := range names {
		limit := 1
		if len(n) > 4 {
			limit = 2
		}
		if d := editDistance(strings.ToLower(k), strings.ToLower(n)); d <= limit && d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b, counting a swap of two
// neighbours as one edit.
func editDistance(a, b string) int {
	x, y := []rune(a), []rune(b)
	d := make([][]int, len(x)+1)
	for i := range d {
		d[i] = make([]int, len(y)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(x); i++ {
		for j := 1; j <= len(y); j++ {
			cost := 1
			if x[i-1] == y[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && x[i-1] == y[j-2] && x[i-2] == y[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(x)][len(y)]
}
