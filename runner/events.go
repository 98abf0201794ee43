package runner

import (
	"log/slog"

	"github.com/trellisdag/trellis/scheduler"
)

func logEvent(log *slog.Logger, e scheduler.Event) {
	if e.TaskID == "" {
		log.Info("run", "dag", e.DAGID, "run", e.RunID, "state", e.RunState, "error", e.Error)
		return
	}
	if e.State.Finished() || e.State == "up_for_retry" {
		log.Info("task", "dag", e.DAGID, "run", e.RunID, "task", e.TaskID, "try", e.Try, "state", e.State,
			"duration", e.Duration, "error", e.Error)
	}
}
