package task_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/trellisdag/trellis/task"
)

// A sensor pokes until its condition holds; between pokes it is deferred and
// holds no slot. A poke that finds the condition not met says so by
// returning false (its Execute returns task.ErrNotDone).
func ExampleSensor() {
	ready := task.Sensor("ready", func(ctx context.Context, r *task.Run) (bool, error) {
		_, err := os.Stat("/data/in/" + r.Template().DS + ".csv")
		return err == nil, nil
	}, task.PokeInterval(30*time.Second), task.SensorTimeout(6*time.Hour), task.SoftFail())

	p := task.SensorPolicyOf(ready)
	fmt.Println(p.PokeInterval, p.Timeout, p.SoftFail)
	r := task.NewRun(ready, task.Info{TaskID: "ready", LogicalDate: time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)}, nil, nil, nil, nil)
	_, err := ready.Execute(context.Background(), r)
	fmt.Println(errors.Is(err, task.ErrNotDone))
	// Output:
	// 30s 6h0m0s true
	// true
}

// Callbacks run after the change is committed, from a durable outbox, at
// least once; an error is logged and never changes the task's state.
func ExampleOnFailure() {
	alert := func(ctx context.Context, e task.Event) error {
		_, err := fmt.Printf("%s: %s.%s failed in try %d of %d: %s\n", e.Kind, e.DAGID, e.TaskID, e.Try, e.MaxTries, e.Error)
		return err
	}
	load := task.Go("load", func(context.Context, *task.Run) (int, error) { return 0, errors.New("no rows") },
		task.Retries(2), task.OnFailure(alert), task.OnRetry(func(context.Context, task.Event) error { return nil }))

	// The runner calls it with the event of the task's last failed try:
	for _, cb := range task.CallbacksOf(load, task.EventTaskFailure) {
		_ = cb(context.Background(), task.Event{Kind: task.EventTaskFailure, DAGID: "orders", TaskID: "load", Try: 3, MaxTries: 3, Error: "no rows"})
	}
	// Output:
	// task_failure: orders.load failed in try 3 of 3: no rows
}
