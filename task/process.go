package task

import "context"

// ProcessMarkerEnv names the environment variable that marks every process a
// try starts (a Bash task's shell and everything it starts inherit it). Its
// value identifies the runner's database and the try, so that a runner that
// restarts after a crash finds the processes of its interrupted tries and stops
// them before it runs those tasks again: two executions of one task never
// overlap, even when a process outlived the runner.
const ProcessMarkerEnv = "TRELLIS_TRY_MARKER"

type processMarkerKey struct{}

// WithProcessMarker returns a context that carries the process marker of the
// try it runs; operators that start processes put it in their environment as
// ProcessMarkerEnv. The local executor sets it.
func WithProcessMarker(ctx context.Context, marker string) context.Context {
	return context.WithValue(ctx, processMarkerKey{}, marker)
}

// ProcessMarker returns the process marker ctx carries, "" when it has none.
func ProcessMarker(ctx context.Context) string {
	m, _ := ctx.Value(processMarkerKey{}).(string)
	return m
}
