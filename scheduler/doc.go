// Package scheduler decides what runs when: it turns DAG runs into tries, hands the
// tries to executors, and records every change in the store.
//
// # Design
//
// One goroutine (Scheduler.Run) owns the scheduling state of every active run. It
// waits for executor reports, timers (retry delays, run timeouts) and wake-ups;
// handles everything that has arrived; commits the resulting changes to the store
// in one batch (group commit); and only then acts on them: tries are started after
// their queued state is durable, and a downstream task is scheduled only after its
// upstream's success and result are. A crash at any moment therefore loses no
// finished result and never runs a succeeded task again.
//
// A finished task wakes the scheduler at once (no polling on the hand-off path),
// and only the direct downstream tasks of what changed are evaluated, from upstream
// counts kept incrementally, so the work per event does not grow with the size of
// the DAG. Ready tasks wait in priority queues per DAG and pool; parallelism, pools
// and each DAG's max active tasks and runs limit what starts.
//
// At start-up, runs left active by a previous process are loaded, and their tries
// in flight are handed to the executors' Recover: the local executor reports a
// running try as failed (retries apply) and a queued one as lost (it runs again
// without spending a retry).
package scheduler
