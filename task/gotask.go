package task

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// ErrSkip is returned (possibly wrapped) by a task that skips itself. The task ends
// in state skipped; its downstream tasks follow their trigger rules.
var ErrSkip = errors.New("task skipped")

// Skip returns an error that skips the task, with a reason for its log.
func Skip(reason string) error { return fmt.Errorf("%w: %s", ErrSkip, reason) }

// ErrFailNow is returned (possibly wrapped) by a task that fails without spending
// its remaining retries (Airflow's AirflowFailException).
var ErrFailNow = errors.New("task failed without retry")

// Ref is a task whose result has type T. Only task types from this package and
// types that embed Returns[T] implement it, so a downstream task can read the
// result with Output without naming it by a string.
type Ref[T any] interface {
	Task
	returns(T)
}

// Returns marks a task type as producing a result of type T. Task types of other
// packages embed it to implement Ref[T].
type Returns[T any] struct{}

func (Returns[T]) returns(T) {}

// Output returns the result of the direct upstream task from, decoded as T. It is
// an error if from is not a direct upstream of r's task, or stored no result.
func Output[T any](r *Run, from Ref[T]) (T, error) {
	var v T
	raw, err := r.input(from.def())
	if err != nil {
		return v, err
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return v, fmt.Errorf("task %q: decode the result of %q as %T: %w", r.task.id, from.ID(), v, err)
	}
	return v, nil
}

// Func is the body of a Go task.
type Func[T any] func(ctx context.Context, r *Run) (T, error)

// GoTask runs a Go function in-process and stores its result, of type T, as JSON.
type GoTask[T any] struct {
	Def
	Returns[T]
	fn Func[T]
}

var _ Ref[int] = (*GoTask[int])(nil)

// Go returns a task that runs fn. Its result is stored (as JSON) and read by
// downstream tasks with Output.
func Go[T any](id string, fn Func[T], opts ...Option) *GoTask[T] {
	t := &GoTask[T]{Def: NewDef(id, KindGo, opts...), fn: fn}
	if fn == nil {
		t.fail("nil function")
	}
	return t
}

// Execute runs the function and encodes its result.
func (t *GoTask[T]) Execute(ctx context.Context, r *Run) ([]byte, error) {
	return encodeResult(t.fn(ctx, r))
}

// encodeResult encodes a task function's result as JSON, or returns its error.
func encodeResult[T any](v T, err error) ([]byte, error) {
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode result as JSON: %w", err)
	}
	return b, nil
}

// BranchTask runs a function that chooses which of its direct downstream tasks run;
// the others are skipped, and the skip propagates by trigger rules (Airflow's
// BranchPythonOperator). Its result is the ids of the chosen tasks.
type BranchTask struct {
	Def
	Returns[[]string]
	fn func(ctx context.Context, r *Run) ([]Task, error)
}

// Branch returns a branch task. fn returns the direct downstream tasks to follow;
// returning none skips them all.
func Branch(id string, fn func(ctx context.Context, r *Run) ([]Task, error), opts ...Option) *BranchTask {
	t := &BranchTask{Def: NewDef(id, KindBranch, opts...), fn: fn}
	if fn == nil {
		t.fail("nil function")
	}
	return t
}

// Execute runs the function and checks that it chose direct downstream tasks.
func (t *BranchTask) Execute(ctx context.Context, r *Run) ([]byte, error) {
	chosen, err := t.fn(ctx, r)
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(chosen))
	for _, c := range chosen {
		if c == nil || !contains(t.down, c.def()) {
			name := "<nil>"
			if c != nil {
				name = c.ID()
			}
			return nil, fmt.Errorf("branch chose %q, which is not a direct downstream task", name)
		}
		ids = append(ids, c.ID())
	}
	return json.Marshal(ids)
}

// ShortCircuitTask runs a condition; when it is false every task downstream of it is
// skipped, whatever their trigger rules (Airflow's ShortCircuitOperator with
// ignore_downstream_trigger_rules). Its result is the condition.
type ShortCircuitTask struct {
	Def
	Returns[bool]
	fn func(ctx context.Context, r *Run) (bool, error)
}

// ShortCircuit returns a short-circuit task.
func ShortCircuit(id string, fn func(ctx context.Context, r *Run) (bool, error), opts ...Option) *ShortCircuitTask {
	t := &ShortCircuitTask{Def: NewDef(id, KindShortCircuit, opts...), fn: fn}
	if fn == nil {
		t.fail("nil function")
	}
	return t
}

// Execute runs the condition.
func (t *ShortCircuitTask) Execute(ctx context.Context, r *Run) ([]byte, error) {
	ok, err := t.fn(ctx, r)
	if err != nil {
		return nil, err
	}
	return json.Marshal(ok)
}
