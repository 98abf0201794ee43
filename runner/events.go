package runner

import (
	"log/slog"

	"github.com/trellisdag/trellis/scheduler"
	"github.com/trellisdag/trellis/task"
)

func logEvent(log *slog.Logger, e scheduler.Event) {
	if e.TaskID == "" {
		log.Info("run", "dag", e.DAGID, "run", e.RunID, "state", e.RunState, "error", e.Error)
		return
	}
	if e.State.Finished() || e.State == "up_for_retry" {
		attrs := []any{"dag", e.DAGID, "run", e.RunID, "task", e.TaskID, "try", e.Try, "state", e.State,
			"duration", e.Duration, "error", e.Error}
		if base, k := task.ParseInstanceID(e.TaskID); k >= 0 {
			// A mapped task instance: its task and map index, to filter on.
			attrs = append(attrs, "mapped_task", base, "map_index", k)
		}
		log.Info("task", attrs...)
	}
}
