package task_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/task"
)

func TestInstanceID(t *testing.T) {
	for _, c := range []struct {
		id   string
		base string
		k    int
	}{{"resize[3]", "resize", 3}, {"resize", "resize", -1}, {"a.b[10]", "a.b", 10}, {"x[03]", "x[03]", -1},
		{"x[-1]", "x[-1]", -1}, {"[2]", "[2]", -1}, {"x[]", "x[]", -1}} {
		base, k := task.ParseInstanceID(c.id)
		if base != c.base || k != c.k {
			t.Errorf("ParseInstanceID(%q) = %q, %d; want %q, %d", c.id, base, k, c.base, c.k)
		}
		if c.k >= 0 && task.InstanceID(base, k) != c.id {
			t.Errorf("InstanceID(%q, %d) = %q", base, k, task.InstanceID(base, k))
		}
	}
}

func TestSplitList(t *testing.T) {
	if xs, err := task.SplitList([]byte(` [1, "a", {"b":2}] `)); err != nil || len(xs) != 3 || string(xs[2]) != `{"b":2}` {
		t.Errorf("SplitList = %q, %v", xs, err)
	}
	if xs, err := task.SplitList([]byte("null")); err != nil || len(xs) != 0 {
		t.Errorf("SplitList(null) = %q, %v; want the empty list", xs, err)
	}
	for _, bad := range []string{`{"a":1}`, `3`, ``, `"x"`} {
		if _, err := task.SplitList([]byte(bad)); !errors.Is(err, task.ErrNotAList) {
			t.Errorf("SplitList(%q) = %v, want ErrNotAList", bad, err)
		}
	}
}

func TestSummaryState(t *testing.T) {
	for _, c := range []struct {
		counts map[task.State]int
		want   task.State
	}{
		{map[task.State]int{task.StateSuccess: 3, task.StateFailed: 1}, task.StateFailed},
		{map[task.State]int{task.StateSuccess: 3, task.StateRunning: 1, task.StateUpForRetry: 1}, task.StateUpForRetry},
		{map[task.State]int{task.StateSuccess: 3, task.StateNone: 1}, task.StateNone},
		{map[task.State]int{task.StateSuccess: 1, task.StateSkipped: 4}, task.StateSuccess},
		{map[task.State]int{task.StateRemoved: 2, task.StateSkipped: 1}, task.StateSkipped},
	} {
		if got, ok := task.SummaryState(c.counts); !ok || got != c.want {
			t.Errorf("SummaryState(%v) = %s, want %s", c.counts, got, c.want)
		}
	}
	if _, ok := task.SummaryState(nil); ok {
		t.Error("SummaryState of nothing is ok")
	}
}

// TestMappedRun: a mapped try reads its element (carried, or picked from the
// list), its index, and renders it in templates; an unmapped task has index -1.
func TestMappedRun(t *testing.T) {
	src := task.Go("src", func(context.Context, *task.Run) ([]string, error) { return nil, nil })
	m := task.Map("up", src, func(_ context.Context, r *task.Run, s string) (string, error) {
		return strings.ToUpper(s) + "#" + string(rune('0'+r.MapIndex())), nil
	})
	inputs := task.InputsFunc(func(id string) ([]byte, bool, error) { return []byte(`["a","b","c"]`), id == "src", nil })
	for _, in := range []task.Inputs{inputs, task.WithItem(inputs, json.RawMessage(`"b"`))} {
		r := task.NewRun(m, task.Info{TaskID: "up", MapIndex: 1}, nil, nil, in, nil)
		out, err := m.Execute(context.Background(), r)
		if err != nil || string(out) != `"B#1"` {
			t.Errorf("Execute = %s, %v; want \"B#1\"", out, err)
		}
	}
	r := task.NewRun(m, task.Info{TaskID: "up", MapIndex: 7}, nil, nil, inputs, nil)
	if _, err := m.Execute(context.Background(), r); err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Errorf("index 7 of 3: %v", err)
	}
	plain := task.Go("plain", func(_ context.Context, r *task.Run) (int, error) { return r.MapIndex(), nil })
	if got := task.NewRun(plain, task.Info{}, nil, nil, nil, nil).MapIndex(); got != -1 {
		t.Errorf("unmapped MapIndex = %d", got)
	}
	if _, err := task.NewRun(plain, task.Info{}, nil, nil, nil, nil).Item(); !errors.Is(err, task.ErrNotMapped) {
		t.Errorf("unmapped Item: %v", err)
	}

	lit := task.Go("lit", func(context.Context, *task.Run) (int, error) { return 0, nil }, task.MapItems(map[string]any{"path": "/a", "n": 2}))
	tmpl, err := task.ParseTemplate("cmd", "cp {{ .Item.path }} /out/{{ .MapIndex }}-{{ .Item.n }}")
	if err != nil {
		t.Fatal(err)
	}
	got, err := task.NewRun(lit, task.Info{MapIndex: 0}, nil, nil, nil, nil).Render(tmpl)
	if err != nil || got != "cp /a /out/0-2" {
		t.Errorf("Render = %q, %v", got, err)
	}
}

// TestMappedOutput reads a mapped task's results downstream.
func TestMappedOutput(t *testing.T) {
	b := task.Go("b", func(context.Context, *task.Run) (string, error) { return "", nil }, task.MapItems(1, 2))
	down := task.Go("down", func(context.Context, *task.Run) (int, error) { return 0, nil })
	b.Then(down)
	in := task.InputsFunc(func(id string) ([]byte, bool, error) { return []byte(`["x","y"]`), true, nil })
	got, err := task.MappedOutput(task.NewRun(down, task.Info{}, nil, nil, in, nil), b)
	if err != nil || strings.Join(got, ",") != "x,y" {
		t.Errorf("MappedOutput = %v, %v", got, err)
	}
	plain := task.Go("p", func(context.Context, *task.Run) (string, error) { return "", nil })
	plain.Then(down)
	if _, err := task.MappedOutput(task.NewRun(down, task.Info{}, nil, nil, in, nil), plain); !errors.Is(err, task.ErrNotMapped) {
		t.Errorf("MappedOutput of an unmapped task: %v", err)
	}
}

func TestMapProblems(t *testing.T) {
	for _, c := range []struct {
		opts []task.Option
		want string
	}{
		{[]task.Option{task.MapItems(1), task.MapItems(2)}, "mapped twice"},
		{[]task.Option{task.MapItems(1), task.AsSetup()}, "setup or teardown"},
		{[]task.Option{task.MapParam("")}, "empty param"},
	} {
		tk := task.Go("x", func(context.Context, *task.Run) (int, error) { return 0, nil }, c.opts...)
		errs := task.Problems(tk, "")
		if len(errs) == 0 || !strings.Contains(errors.Join(errs...).Error(), c.want) {
			t.Errorf("Problems = %v, want %q", errs, c.want)
		}
	}
}

// TestMappedGroupRefused: mapping over a whole group is not supported, and
// says so instead of being ignored.
func TestMappedGroupRefused(t *testing.T) {
	g := task.NewGroup("g", task.MapItems(1, 2))
	g.Add(task.Go("x", func(context.Context, *task.Run) (int, error) { return 0, nil }))
	err := dag.New("d").Add(g).Validate()
	if err == nil || !strings.Contains(err.Error(), "mapping a whole group") {
		t.Fatalf("Validate = %v, want the mapped group refused", err)
	}
}
