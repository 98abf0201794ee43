package storage_test

import (
	"fmt"
	"time"

	"github.com/trellisdag/trellis/storage"
	"github.com/trellisdag/trellis/task"
)

// ExampleBatch builds the changes of one scheduling step: a task queued
// with its first try, and the run moved to running.
func ExampleBatch() {
	var b storage.Batch
	at := time.Date(2024, 1, 2, 3, 0, 0, 0, time.UTC)
	b.SetRun(storage.RunChange{Run: 7, From: task.RunQueued, To: task.RunRunning, At: at})
	b.SetTI(storage.TIChange{From: task.StateScheduled, At: at,
		TI: storage.TaskInstance{Run: 7, TaskID: "extract", State: task.StateQueued, Try: 1, MaxTries: 3}})
	fmt.Println(b.Len(), b.TIs[0].TI.TaskID, b.TIs[0].From, "->", b.TIs[0].TI.State)
	// Output: 2 extract scheduled -> queued
}
