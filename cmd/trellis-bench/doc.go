// Command trellis-bench measures trellis's core performance figures and their
// ceilings on this machine, and prints them as Markdown for docs/benchmarks.md:
//
//	go run ./cmd/trellis-bench            # every scenario
//	go run ./cmd/trellis-bench -only chain
//	go run ./cmd/trellis-bench -sync full -db postgres://trellis@127.0.0.1:25432/trellis?sslmode=disable
//
// With -db (or $TRELLIS_BENCH_DB) the trellis scenarios run on PostgreSQL, each
// in a new schema of that database, dropped after, and the raw commit ceiling
// measured is PostgreSQL's (see hack/postgres.sh for a local server).
//
// Each scenario runs in a fresh child process, so that the peak RSS reported is
// that scenario's alone. The ceilings are what the machine allows without trellis:
// raw SQLite commits (a hand-off needs at least one) and bare process spawns (a
// Bash task needs one).
package main
