package task_test

import (
	"strings"
	"testing"

	"github.com/trellisdag/trellis/task"
)

type loadParams struct {
	Table  string   `json:"table"`
	Limit  int      `json:"limit"`
	Ratio  float64  `json:"ratio"`
	Big    int64    `json:"big"`
	Tables []string `json:"tables"`
	DryRun bool     `json:"dryRun"`
}

func TestParamsAs(t *testing.T) {
	t.Parallel()
	tk := task.Go("load", noop[int])
	// What dag.ResolveConf makes: integers with their Go type, the rest as
	// encoding/json decodes them (a float64 that holds an integer included).
	params := map[string]any{"table": "orders", "limit": 25, "ratio": 0.5, "big": int64(1) << 60,
		"tables": []any{"a", "b"}, "dryRun": true}
	r := task.NewRun(tk, task.Info{TaskID: "load"}, params, nil, nil, nil)
	got, err := task.ParamsAs[loadParams](r)
	if err != nil {
		t.Fatal(err)
	}
	want := loadParams{Table: "orders", Limit: 25, Ratio: 0.5, Big: 1 << 60, Tables: []string{"a", "b"}, DryRun: true}
	if got.Table != want.Table || got.Limit != want.Limit || got.Ratio != want.Ratio || got.Big != want.Big ||
		strings.Join(got.Tables, ",") != "a,b" || !got.DryRun {
		t.Errorf("ParamsAs = %+v, want %+v", got, want)
	}
	// The map is still there for templates and untyped code, with ints as ints.
	if n, ok := r.Params()["limit"].(int); !ok || n != 25 {
		t.Errorf(`Params()["limit"] = %#v, want int 25`, r.Params()["limit"])
	}

	// A param the struct has no field for is an error naming the task.
	params["colour"] = "red"
	if _, err := task.ParamsAs[loadParams](task.NewRun(tk, task.Info{}, params, nil, nil, nil)); err == nil ||
		!strings.Contains(err.Error(), `task "load"`) || !strings.Contains(err.Error(), `unknown field "colour"`) {
		t.Errorf("ParamsAs with an extra param = %v", err)
	}
	// A value of the wrong type (the DAG changed under an old run) is an error.
	if _, err := task.ParamsAs[loadParams](task.NewRun(tk, task.Info{}, map[string]any{"limit": "many"}, nil, nil, nil)); err == nil ||
		!strings.Contains(err.Error(), "loadParams") {
		t.Errorf("ParamsAs with a string limit = %v", err)
	}
	// No params: the zero value.
	if p, err := task.ParamsAs[loadParams](task.NewRun(tk, task.Info{}, nil, nil, nil, nil)); err != nil || p.Limit != 0 {
		t.Errorf("ParamsAs without params = %+v, %v", p, err)
	}
}
