// Command quickstart is a small ETL DAG that shows trellis's authoring API: Go tasks
// that pass typed results, typed params (a struct, read with task.ParamsAs), a
// templated Bash task, a branch, and a task that fails once and succeeds on its
// retry. It needs no cluster and nothing installed:
//
//	go run ./examples/quickstart dags test etl
package main
