package sensors_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/trellisdag/trellis/sensors"
	"github.com/trellisdag/trellis/task"
)

// fakeLookup is a task.Lookup over a map of runs, for unit tests (the real
// one, the scheduler's, is tested end to end in runner/sensors_test.go).
type fakeLookup struct {
	runs     map[string]task.RunState // run id -> state
	triggers int
}

func (f *fakeLookup) RunStates(context.Context, string, time.Time) ([]task.RunState, error) {
	return nil, nil
}

func (f *fakeLookup) TaskStates(context.Context, string, string, time.Time) ([]task.State, error) {
	return nil, nil
}

func (f *fakeLookup) RunState(_ context.Context, _, runID string) (task.RunState, bool, error) {
	s, ok := f.runs[runID]
	return s, ok, nil
}

func (f *fakeLookup) TriggerRun(_ context.Context, _, runID string, _ time.Time, _ json.RawMessage) (bool, error) {
	f.triggers++
	if _, ok := f.runs[runID]; ok {
		return false, nil
	}
	f.runs[runID] = task.RunQueued
	return true, nil
}

// TestTriggerDAGIdempotent: a retry of the trigger task finds the run its
// first try started (the run id comes from this run and task) and starts no
// other; with Wait it is done when that run succeeded and fails without
// retry when it failed.
func TestTriggerDAGIdempotent(t *testing.T) {
	t.Parallel()
	l := &fakeLookup{runs: map[string]task.RunState{}}
	ctx := task.WithLookup(context.Background(), l)
	trig := sensors.TriggerDAG("kick", sensors.TriggerSpec{DAGID: "child", Wait: true})
	info := task.Info{DAGID: "parent", TaskID: "kick", RunID: "r1", LogicalDate: time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)}
	poke := func(try int) ([]byte, error) {
		info.Try = try
		return trig.Execute(ctx, task.NewRun(trig, info, nil, nil, nil, nil))
	}
	if _, err := poke(1); !errors.Is(err, task.ErrNotDone) {
		t.Fatalf("first poke: %v, want not done (the run is queued)", err)
	}
	if _, err := poke(2); !errors.Is(err, task.ErrNotDone) || l.triggers != 1 || len(l.runs) != 1 {
		t.Fatalf("a retry: %v; %d triggers, %d runs; want the same run, triggered once", err, l.triggers, len(l.runs))
	}
	for id := range l.runs {
		l.runs[id] = task.RunSuccess
	}
	out, err := poke(2)
	if err != nil {
		t.Fatal(err)
	}
	var got sensors.Triggered
	if err := json.Unmarshal(out, &got); err != nil || got.State != "success" || got.DAGID != "child" {
		t.Errorf("value = %s (%v)", out, err)
	}
	for id := range l.runs {
		l.runs[id] = task.RunFailed
	}
	if _, err := poke(3); !errors.Is(err, task.ErrFailNow) {
		t.Errorf("a failed run: %v, want a failure without retry", err)
	}
	// Without a Lookup (a worker pod, a child process): a clear error.
	if _, err := trig.Execute(context.Background(), task.NewRun(trig, info, nil, nil, nil, nil)); !errors.Is(err, task.ErrNoLookup) {
		t.Errorf("without a lookup: %v", err)
	}
}
