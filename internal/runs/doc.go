// Package runs creates DAG runs: the run row and a task instance per task, in one
// transaction. The CLI, the API and the scheduler's cron loop all create runs
// through it, so runs look the same whoever made them.
package runs
