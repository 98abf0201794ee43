// Package dag holds DAG definitions: tasks, the edges between them, a schedule,
// limits and defaults. It is pure (no I/O, no clients), so a team can unit-test its
// DAGs with go test.
//
// A DAG can be declared as a package-level value. Problems met while building it (a
// duplicate task id, a cycle, an edge to a task of another DAG, an invalid option)
// are collected and returned together by Validate, and the runner refuses to start
// with an invalid DAG; nothing panics at package initialization:
//
//	var etl = dag.New("etl",
//		dag.Schedule("0 3 * * *"),
//		dag.StartDate(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)),
//		dag.Catchup(false),
//		dag.DefaultRetries(2, 30*time.Second),
//	)
//
//	func init() {
//		etl.Add(extract, total, publish)
//		task.Chain(extract, total, publish)
//	}
//
// Add takes tasks and task groups (task.Group, whose tasks it adds); Groups and
// the Snapshot list the groups, for the CLI and the UI. ClearScope says what a
// clear resets: the chosen tasks, optionally their downstream tasks, and the
// setups and teardowns of their scope (task.AsSetup, task.AsTeardown).
package dag
