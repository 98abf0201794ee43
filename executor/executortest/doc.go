// Package executortest is the conformance suite of the executor seam
// (executor.Executor): the contract every executor keeps with the scheduler,
// checked the same way against each implementation, in the manner of river's
// driver conformance tests.
//
// An executor's tests call RunConformance with a Harness that makes fresh
// executors and tries whose tasks behave as the suite asks (Succeed, Fail,
// FailNow, Skip, Block):
//
//	executortest.RunConformance(t, executortest.Harness{
//		New: func(t *testing.T, report executor.ReportFunc) executor.Executor {
//			return local.New(local.Config{Report: report})
//		},
//		Try: func(t *testing.T, k executor.Key, b executortest.Behavior) executor.Try {
//			return executor.Try{Key: k, Task: executortest.GoTask(k.TaskID, b)}
//		},
//		NoRetry:           true,
//		ShutdownEndsTries: true,
//		RecoverQueued:     executor.Interrupted,
//		RecoverRunning:    executor.Interrupted,
//	})
//
// Each check is a subtest, run in parallel with its own executor:
//
//   - success: Started at most once, then exactly one Succeeded with the
//     task's result (Result); every report echoes the try's key and has a time.
//   - failure: exactly one Failed whose error names the task's (FailMessage),
//     not NoRetry.
//   - fail-now (task.ErrFailNow): Failed, and NoRetry where the executor can
//     express it (Harness.NoRetry).
//   - skip (task.ErrSkip): exactly one Skipped.
//   - kill: Kill of a running try ends it with exactly one Failed naming the
//     kill's reason; Kill of a try the executor does not know is a no-op.
//   - timeout: a try that outlives Try.Timeout ends Failed, its error naming
//     the timeout, not before the timeout elapsed.
//   - shutdown: Shutdown returns within its context; Start after it returns
//     an error; a try still running then is ended and reported
//     (Harness.ShutdownEndsTries) or left alone, unreported.
//   - recover: Recover with tries that no longer run reports each once, with
//     the status the executor gives a lost queued and a lost running try
//     (Harness.RecoverQueued, Harness.RecoverRunning: the local executor
//     says Interrupted for both, the Kubernetes executor Lost and Failed).
//
// Every wait is bounded by Harness.Wait; nothing sleeps to wait. After each
// subtest the suite shuts the executor down and checks that no report came
// beyond those expected (a second terminal report, a report of an unknown
// key).
package executortest
