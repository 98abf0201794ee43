package task_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/task"
)

// ExampleMap maps a function over the words an upstream task returns; the
// downstream task reads every instance's result, in element order.
func ExampleMap() {
	words := task.Go("words", func(context.Context, *task.Run) ([]string, error) {
		return []string{"map", "reduce"}, nil
	})
	upper := task.Map("upper", words, func(_ context.Context, r *task.Run, w string) (string, error) {
		return fmt.Sprintf("%d:%s", r.MapIndex(), strings.ToUpper(w)), nil
	})
	join := task.Go("join", func(_ context.Context, r *task.Run) (string, error) {
		all, err := task.Output(r, upper) // []string
		return strings.Join(all, " "), err
	})
	upper.Then(join)
	d := dag.New("words").Add(words, upper, join)
	fmt.Println(d.Validate(), task.SettingsOf(upper).Mapped, task.InstanceID("upper", 1))
	// Output: <nil> true upper[1]
}
