package runner

import (
	"fmt"
	"io"
	"os"
	"runtime/debug"
)

// maxCrashReport bounds the part of a crash report attached to each try that
// was in flight (its end, where the panic's goroutine is usually printed last).
const maxCrashReport = 64 << 10

// crashReport sets up the crash report of this process next to the database
// (<db>.crash: a fatal error or an unrecovered panic in any goroutine is
// written there by the Go runtime) and returns the previous process's report,
// if it crashed, for the tries that were in flight then. The previous report
// is kept as <db>.crash.prev.
func crashReport(db string, stderr io.Writer) []byte {
	path := db + ".crash"
	prev, err := os.ReadFile(path)
	if err == nil && len(prev) > 0 {
		if err := os.Rename(path, path+".prev"); err != nil {
			fmt.Fprintf(stderr, "warning: keep the previous crash report: %v\n", err)
		}
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		fmt.Fprintf(stderr, "warning: no crash report will be kept: %v\n", err)
		return prev
	}
	defer f.Close() // SetCrashOutput keeps its own descriptor
	if err := debug.SetCrashOutput(f, debug.CrashOptions{}); err != nil {
		fmt.Fprintf(stderr, "warning: no crash report will be kept: %v\n", err)
	}
	if len(prev) > maxCrashReport {
		prev = append([]byte("…\n"), prev[len(prev)-maxCrashReport:]...)
	}
	return prev
}
