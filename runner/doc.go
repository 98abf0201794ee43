// Package runner is the program a team compiles its DAGs into: the CLI, the
// scheduler loop and the executors, wired to one SQLite file.
//
// A team's main package is one call:
//
//	func main() { runner.Main(etl, reports) }
//
// The commands are those of Airflow's CLI, shaped for one binary: dags list|show|
// test|trigger, tasks test|clear, runs list|show, logs, serve, version. Every
// command takes --db (default $TRELLIS_DB, else trellis.db). Bad input (an unknown
// DAG, task or run, malformed --conf, a conf that does not fit the DAG's params
// (one line per bad field), an invalid DAG) exits with status 2 and writes
// nothing; a run that fails exits 1. dags params prints what a conf may set.
package runner
