package dag_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/trellisdag/trellis/dag"
)

type Region string

type reportParams struct {
	Region  Region   `json:"region" description:"where the data lives, e.g. eu" param:"enum=eu|us|apac"`
	Days    int      `json:"days" description:"days to cover" param:"minimum=1,maximum=31"`
	Ratio   float64  `json:"ratio" param:"minimum=0,maximum=1"`
	DryRun  bool     `json:"dryRun"`
	Email   string   `json:"email" param:"required"`
	Tables  []string `json:"tables"`
	Level   int8     `json:"level"`
	Retries uint16   `json:"retries"`
	NoTag   int64
	Skipped string `json:"-"`
	hidden  int
}

func reportDAG() *dag.DAG {
	return dag.New("report", dag.TypedParams(reportParams{Region: "eu", Days: 7, Ratio: 0.5, NoTag: 1 << 40, hidden: 3}))
}

func TestTypedParamsResolve(t *testing.T) {
	t.Parallel()
	d := reportDAG()
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	got, err := d.ResolveConf([]byte(`{"email":"a@b.c","days":30,"level":-3,"tables":["x"],"retries":2,"NoTag":9007199254740993}`))
	if err != nil {
		t.Fatal(err)
	}
	// Integers have their field's Go type (an unnamed one), so that a map
	// reader's .(int) works; other values are as encoding/json decodes them.
	want := map[string]any{"region": "eu", "days": 30, "ratio": 0.5, "dryRun": false, "email": "a@b.c",
		"tables": []any{"x"}, "level": int8(-3), "retries": uint16(2), "NoTag": int64(9007199254740993)}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ResolveConf = %#v\nwant %#v", got, want)
	}
	decls := d.ParamDecls()
	names := make([]string, len(decls))
	for i, p := range decls {
		names[i] = p.Name
	}
	if strings.Join(names, ",") != "region,days,ratio,dryRun,email,tables,level,retries,NoTag" {
		t.Errorf("params = %v; want the exported, not-skipped fields in order, by json name", names)
	}
	if decls[4].Default != nil || !decls[4].Required || decls[5].Default == nil {
		t.Errorf("email = %+v (required: no default), tables = %+v (nil slice: default [])", decls[4], decls[5])
	}
	if p := decls[6]; p.Minimum == nil || *p.Minimum != -128 || p.Maximum == nil || *p.Maximum != 127 {
		t.Errorf("int8 bounds = %+v", p)
	}
	if p := decls[7]; p.Minimum == nil || *p.Minimum != 0 || p.Maximum == nil || *p.Maximum != 65535 {
		t.Errorf("uint16 bounds = %+v", p)
	}
}

func TestConfErrorsOnePerField(t *testing.T) {
	t.Parallel()
	d := reportDAG()
	for _, c := range []struct {
		name, conf string
		want       []dag.FieldError
	}{
		{"required missing", `{}`, []dag.FieldError{{"email", "is required"}}},
		{"required null", `{"email":null}`, []dag.FieldError{{"email", "must be a string, got null"}}},
		{"every kind of problem, in declaration order, then unknown keys sorted",
			`{"zz":1,"region":"mars","days":40,"ratio":-0.5,"dryRun":"yes","tables":["a",2],"level":300,"retries":-1,"NoTag":1.5,"aa":true}`,
			[]dag.FieldError{
				{"region", `must be one of "eu", "us", "apac", got "mars"`},
				{"days", "must be at most 31, got 40"},
				{"ratio", "must be at least 0, got -0.5"},
				{"dryRun", "must be a boolean, got a string"},
				{"email", "is required"},
				{"tables", "item 1 must be a string, got a number"},
				{"level", "must be an integer from -128 to 127 (int8), got 300"},
				{"retries", "must be an integer from 0 to 65535 (uint16), got -1"},
				{"NoTag", "must be an integer, got 1.5"},
				{"aa", "is not declared (declared params: region, days, ratio, dryRun, email, tables, level, retries, NoTag)"},
				{"zz", "is not declared (declared params: region, days, ratio, dryRun, email, tables, level, retries, NoTag)"},
			}},
		{"below minimum", `{"email":"x","days":0}`, []dag.FieldError{{"days", "must be at least 1, got 0"}}},
		{"not an object", `[1]`, []dag.FieldError{{"", "json: cannot unmarshal array into Go value of type map[string]json.RawMessage"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			params, err := d.ResolveConf([]byte(c.conf))
			var ce *dag.ConfError
			if !errors.As(err, &ce) || !errors.Is(err, dag.ErrConf) || params != nil {
				t.Fatalf("ResolveConf(%s) = %v, %v; want a *ConfError wrapping ErrConf", c.conf, params, err)
			}
			if ce.DAG != "report" || !reflect.DeepEqual(ce.Fields, c.want) {
				t.Errorf("fields =\n%q\nwant\n%q", ce.Fields, c.want)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(c.want) {
				t.Fatalf("error has %d lines, want one per field (%d): %s", len(lines), len(c.want), err)
			}
			for i, l := range lines {
				if !strings.HasPrefix(l, `dag "report": invalid conf: `) || !strings.HasSuffix(l, c.want[i].Message) {
					t.Errorf("line %d = %q; want the DAG, then %q", i, l, c.want[i].Error())
				}
				if c.want[i].Param != "" && !strings.Contains(l, `param "`+c.want[i].Param+`" `) {
					t.Errorf("line %d = %q does not name param %q", i, l, c.want[i].Param)
				}
			}
		})
	}
}

func TestTypedParamsDeclarationProblems(t *testing.T) {
	t.Parallel()
	type (
		badMin struct {
			N int `json:"n" param:"minimum=one"`
		}
		unknownKey struct {
			N int `json:"n" param:"min=1"`
		}
		enumType struct {
			N int `json:"n" param:"enum=1|two"`
		}
		enumSlice struct {
			S []string `json:"s" param:"enum=a|b"`
		}
		rangeString struct {
			S string `json:"s" param:"maximum=3"`
		}
		requiredValue struct {
			S string `json:"s" param:"required"`
		}
		defaultNotInEnum struct {
			S string `json:"s" param:"enum=a|b"`
		}
		defaultOutOfRange struct {
			N int `json:"n" param:"minimum=1"`
		}
		minAboveMax struct {
			N float64 `json:"n" param:"minimum=2,maximum=1"`
		}
		badTypes struct {
			M map[string]int  `json:"m"`
			T time.Time       `json:"t"`
			D time.Duration   `json:"d"`
			B []byte          `json:"b"`
			P *int            `json:"p"`
			A any             `json:"a"`
			S json.RawMessage `json:"s"`
		}
		stringOpt struct {
			N int `json:"n,string"`
		}
		Embedded struct{ X int }
		embeds   struct {
			Embedded
		}
		dup struct {
			N int `json:"limit"`
		}
	)
	sched := []dag.Option{dag.Schedule("@daily"), dag.StartDate(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC))}
	for _, c := range []struct {
		name string
		d    *dag.DAG
		want []string
	}{
		{"not a struct", dag.New("d", dag.TypedParams(3)), []string{`dag "d": typed params: int is not a struct`}},
		{"minimum not a number", dag.New("d", dag.TypedParams(badMin{})),
			[]string{`dag "d": typed params dag_test.badMin: field N: tag param:"minimum=one": minimum "one" is not a number`}},
		{"unknown key", dag.New("d", dag.TypedParams(unknownKey{})),
			[]string{`dag "d": typed params dag_test.unknownKey: field N: tag param:"min=1": unknown key "min"`}},
		{"enum value of the wrong type", dag.New("d", dag.TypedParams(enumType{N: 1})),
			[]string{`dag "d": typed params dag_test.enumType: field N: tag param:"enum=1|two": enum value "two": `}},
		{"enum on a slice", dag.New("d", dag.TypedParams(enumSlice{})),
			[]string{`dag "d": typed params dag_test.enumSlice: field S: tag param:"enum=a|b": enum applies to string, integer, number and boolean fields, not to []string`}},
		{"range on a string", dag.New("d", dag.TypedParams(rangeString{})),
			[]string{`dag "d": typed params dag_test.rangeString: field S: tag param:"maximum=3": maximum applies to integer and float fields, not to string`}},
		{"required with a value", dag.New("d", dag.TypedParams(requiredValue{S: "x"})),
			[]string{`dag "d": typed params dag_test.requiredValue: field S: tag param:"required": a required param has no default, but the field's value is x`}},
		{"default not in the enum", dag.New("d", dag.TypedParams(defaultNotInEnum{})),
			[]string{`dag "d": typed params dag_test.defaultNotInEnum: field S (param "s"): default "": must be one of "a", "b", got ""`}},
		{"default out of range", dag.New("d", dag.TypedParams(defaultOutOfRange{})),
			[]string{`dag "d": typed params dag_test.defaultOutOfRange: field N (param "n"): default 0: must be at least 1, got 0`}},
		{"minimum above maximum", dag.New("d", dag.TypedParams(minAboveMax{N: 1})),
			[]string{`dag "d": typed params dag_test.minAboveMax: field N (param "n"): minimum 2 is above maximum 1`}},
		{"unsupported types", dag.New("d", dag.TypedParams(badTypes{})), []string{
			`dag "d": typed params dag_test.badTypes: field M: type map[string]int is not supported`,
			`dag "d": typed params dag_test.badTypes: field T: type time.Time is not supported: it has its own JSON encoding`,
			`dag "d": typed params dag_test.badTypes: field D: type time.Duration is not supported`,
			`dag "d": typed params dag_test.badTypes: field B: type []uint8 is not supported`,
			`dag "d": typed params dag_test.badTypes: field P: type *int is not supported`,
			`dag "d": typed params dag_test.badTypes: field A: type interface {} is not supported`,
			`dag "d": typed params dag_test.badTypes: field S: type json.RawMessage is not supported: it has its own JSON encoding`,
		}},
		{",string option", dag.New("d", dag.TypedParams(stringOpt{})),
			[]string{`dag "d": typed params dag_test.stringOpt: field N: tag json:"n,string": the ,string option is not supported`}},
		{"embedded field", dag.New("d", dag.TypedParams(embeds{})),
			[]string{`dag "d": typed params dag_test.embeds: field Embedded: embedded fields are not supported`}},
		{"name declared twice", dag.New("d", dag.Params(dag.Param{Name: "limit", Default: 1}), dag.TypedParams(dup{})),
			[]string{`dag "d": param "limit" declared twice`}},
		{"required param on a scheduled DAG", dag.New("d", append(sched, dag.TypedParams(reportParams{Region: "eu", Days: 1}))...),
			[]string{`dag "d": param "email" is required, but the DAG has a schedule and scheduled runs have no conf`}},
		{"untyped param problems", dag.New("d", dag.Params(
			dag.Param{Name: "a", Type: "text"},
			dag.Param{Name: "b", Default: "x", Minimum: new(float64)},
			dag.Param{Name: "c", Default: 5, Enum: []any{1, 2}},
			dag.Param{Name: "e", Default: "x", Required: true},
			dag.Param{Name: "f", Type: dag.ParamString, Items: dag.ParamString},
		)), []string{
			`dag "d": param "a": type "text": want string, integer, number, boolean, array or object`,
			`dag "d": param "b": minimum and maximum apply to integer and number params, not to string`,
			`dag "d": param "c": default 5: must be one of 1, 2, got 5`,
			`dag "d": param "e": required, with a default ("x"): a required param has none`,
			`dag "d": param "f": items type "string" set on a param of type string`,
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got := lines(c.d.Validate())
			if len(got) != len(c.want) {
				t.Fatalf("Validate reported %d problems, want %d:\n%s", len(got), len(c.want), strings.Join(got, "\n"))
			}
			for i := range c.want {
				if !strings.HasPrefix(got[i], c.want[i]) {
					t.Errorf("problem %d = %q\nwant it to start with %q", i, got[i], c.want[i])
				}
			}
		})
	}
}

func TestParamsSchema(t *testing.T) {
	t.Parallel()
	type small struct {
		Mode  string  `json:"mode" description:"how fast" param:"enum=fast|slow"`
		Limit int     `json:"limit" param:"minimum=1,maximum=100"`
		Rate  float32 `json:"rate"`
		Email string  `json:"email" param:"required"`
		Tags  []int   `json:"tags"`
		On    bool    `json:"on"`
	}
	d := dag.New("typed", dag.TypedParams(small{Mode: "fast", Limit: 10, Rate: 0.25, Tags: []int{1}}))
	want := `{"$schema":"https://json-schema.org/draft/2020-12/schema","title":"typed","type":"object","properties":{` +
		`"mode":{"type":"string","description":"how fast","default":"fast","enum":["fast","slow"]},` +
		`"limit":{"type":"integer","default":10,"minimum":1,"maximum":100},` +
		`"rate":{"type":"number","default":0.25},` +
		`"email":{"type":"string"},` +
		`"tags":{"type":"array","items":{"type":"integer"},"default":[1]},` +
		`"on":{"type":"boolean","default":false}},` +
		`"required":["email"],"additionalProperties":false}`
	if got := string(d.ParamsSchema()); got != want {
		t.Errorf("schema =\n%s\nwant\n%s", got, want)
	}
	// Untyped params: the type of the default, and null too; no default, any.
	u := dag.New("untyped", dag.Params(dag.Param{Name: "limit", Default: 10, Description: "rows"}, dag.Param{Name: "any"}))
	want = `{"$schema":"https://json-schema.org/draft/2020-12/schema","title":"untyped","type":"object","properties":{` +
		`"limit":{"type":["integer","null"],"description":"rows","default":10},"any":{}},"additionalProperties":false}`
	if got := string(u.ParamsSchema()); got != want {
		t.Errorf("schema =\n%s\nwant\n%s", got, want)
	}
	if got := string(dag.New("none").ParamsSchema()); !strings.Contains(got, `"properties":{},"additionalProperties":false`) {
		t.Errorf("schema without params = %s", got)
	}
}

func TestParamJSONIsCamelCase(t *testing.T) {
	t.Parallel()
	b, err := json.Marshal(reportDAG().ParamDecls()[:2])
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"name":"region","default":"eu","description":"where the data lives, e.g. eu","type":"string","enum":["eu","us","apac"]},` +
		`{"name":"days","default":7,"description":"days to cover","type":"integer","minimum":1,"maximum":31}]`
	if string(b) != want {
		t.Errorf("params JSON =\n%s\nwant\n%s", b, want)
	}
	// Editing what ParamDecls returns does not change the DAG.
	d := reportDAG()
	ps := d.ParamDecls()
	ps[0].Enum[0], *ps[1].Maximum = "changed", 99
	if again := d.ParamDecls(); again[0].Enum[0] != "eu" || *again[1].Maximum != 31 {
		t.Errorf("ParamDecls aliases the DAG's params: %+v", again[:2])
	}
}
