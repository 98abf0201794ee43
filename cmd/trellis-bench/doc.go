// Command trellis-bench measures trellis's core performance figures and their
// ceilings on this machine, and prints them as Markdown for docs/benchmarks.md:
//
//	go run ./cmd/trellis-bench            # every scenario
//	go run ./cmd/trellis-bench -only chain
//
// Each scenario runs in a fresh child process, so that the peak RSS reported is
// that scenario's alone. The ceilings are what the machine allows without trellis:
// raw SQLite commits (a hand-off needs at least one) and bare process spawns (a
// Bash task needs one).
package main
