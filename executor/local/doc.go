// Package local is the embedded default executor: each try runs in a goroutine of
// the runner. Go tasks run their function in-process (a panic becomes a failure
// with its stack in the try's log); Bash tasks start a child process in its own
// process group, stopped with SIGTERM and then SIGKILL. It needs no cluster and no
// other process, so the same DAGs run on a laptop with `go run`.
package local
