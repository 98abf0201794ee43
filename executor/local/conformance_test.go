package local_test

import (
	"testing"
	"time"

	"github.com/trellisdag/trellis/executor"
	"github.com/trellisdag/trellis/executor/executortest"
	"github.com/trellisdag/trellis/executor/local"
)

// TestConformance runs the executor seam's conformance suite against the
// local executor, with Go tasks.
func TestConformance(t *testing.T) {
	executortest.RunConformance(t, executortest.Harness{
		New: func(t *testing.T, report executor.ReportFunc) executor.Executor {
			return local.New(local.Config{Report: report})
		},
		Try: func(t *testing.T, k executor.Key, b executortest.Behavior) executor.Try {
			return executor.Try{Key: k, Task: executortest.GoTask(k.TaskID, b)}
		},
		Wait:              10 * time.Second,
		NoRetry:           true,
		ShutdownEndsTries: true,
		RecoverQueued:     executor.Interrupted,
		RecoverRunning:    executor.Interrupted,
	})
}
