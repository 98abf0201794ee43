// Package bench holds the scenarios behind trellis's performance figures: a chain
// of no-op Go tasks (hand-off latency), a wide fan-out of no-op Go tasks
// (throughput) and many Bash tasks (process throughput). The Go benchmarks and
// cmd/trellis-bench run the same code; docs/benchmarks.md records the figures.
package bench
