package dag_test

import (
	"context"
	"strings"
	"testing"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/task"
)

// TestMappedParamMustBeAList: a task mapped over a param needs the param
// declared, as a list.
func TestMappedParamMustBeAList(t *testing.T) {
	mk := func() task.Task {
		return task.Go("each", func(context.Context, *task.Run) (int, error) { return 0, nil }, task.MapParam("files"))
	}
	for _, c := range []struct {
		name string
		opts []dag.Option
		want string
	}{
		{"undeclared", nil, `mapped over param "files", which the DAG does not declare`},
		{"not a list", []dag.Option{dag.Params(dag.Param{Name: "files", Default: "a"})}, "want an array"},
		{"list", []dag.Option{dag.Params(dag.Param{Name: "files", Default: []any{"a"}})}, ""},
	} {
		err := dag.New("m", c.opts...).Add(mk()).Validate()
		if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s: Validate = %v, want %q", c.name, err, c.want)
		}
	}
}

// TestMappedVersion: what a task is mapped over is part of the DAG's version.
func TestMappedVersion(t *testing.T) {
	v := func(opts ...task.Option) string {
		return dag.New("m").Add(task.Go("each", func(context.Context, *task.Run) (int, error) { return 0, nil }, opts...)).Version()
	}
	if v() == v(task.MapItems(1, 2)) || v(task.MapItems(1, 2)) == v(task.MapItems(1, 2, 3)) {
		t.Error("mapping does not change the version")
	}
}
