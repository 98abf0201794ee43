package dag_test

import (
	"context"
	"fmt"
	"time"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/task"
)

// A task declares the assets it updates; a DAG scheduled on them runs when
// they all have new events (ScheduleOnAnyAsset: any), whoever produced them:
// a task of this binary, or another runner through the API.
func ExampleScheduleOnAssets() {
	landing := dag.New("landing")
	landing.Add(task.Go("load", func(context.Context, *task.Run) (int, error) { return 42, nil },
		task.Outlets("warehouse://sales.orders")))

	reporting := dag.New("reporting", dag.ScheduleOnAssets("warehouse://sales.orders", "warehouse://sales.customers"),
		dag.AlertAfter(2*time.Hour, dag.FromQueued, func(ctx context.Context, e task.Event) error { return nil }))
	reporting.Add(task.Go("publish", func(context.Context, *task.Run) (string, error) { return "done", nil }))

	load, _ := landing.Task("load")
	fmt.Println(task.OutletsOf(load))
	uris, anyOf := reporting.AssetSchedule()
	fmt.Println(uris, anyOf)
	fmt.Println(reporting.Deadlines()[0])
	// Output:
	// [warehouse://sales.orders]
	// [warehouse://sales.orders warehouse://sales.customers] false
	// alert when not finished 2h0m0s after queued
}
