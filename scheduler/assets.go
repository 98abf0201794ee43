package scheduler

import (
	"context"
	"fmt"

	"github.com/trellisdag/trellis/internal/runs"
	"github.com/trellisdag/trellis/storage"
	"github.com/trellisdag/trellis/task"
)

// Assets. A successful try of a task with outlets records an event per asset
// in the batch of its success. After a commit that recorded events, after a
// reload (another process may have posted one through the API) and at start,
// the scheduler looks at the DAGs scheduled on assets and creates a run for
// each whose assets are ready, consuming their events in the same
// transaction (store.CreateAssetRun), so a set of events makes one run.

// recordAssets adds the asset events of task i's success to the batch.
func (s *Scheduler) recordAssets(rs *runState, i int, try int) {
	i = rs.tis[i].of
	outlets := task.OutletsOf(rs.plan.tasks[i])
	if len(outlets) == 0 {
		return
	}
	now := s.now()
	for _, u := range outlets {
		s.batch.PutAssetEvent(storage.AssetEvent{URI: u, SourceDAG: rs.rec.DAGID, SourceRun: rs.rec.RunID,
			SourceTask: rs.plan.tasks[i].ID(), SourceTry: try, Created: now})
	}
	s.assetsWritten = true
}

// registerAssetConsumers records, once, which DAGs are scheduled on which
// assets (events older than that do not trigger them).
func (s *Scheduler) registerAssetConsumers(ctx context.Context) error {
	if s.assetsRegistered {
		return nil
	}
	for _, p := range s.plans {
		if uris, _ := p.dag.AssetSchedule(); len(uris) > 0 {
			if err := s.st.RegisterAssetConsumer(ctx, p.dag.ID(), uris); err != nil {
				return fmt.Errorf("scheduler: %w", err)
			}
		}
	}
	s.assetsRegistered, s.assetsDirty = true, true
	return nil
}

// createAssetRuns creates the asset-triggered runs that are due.
func (s *Scheduler) createAssetRuns(ctx context.Context) error {
	if !s.cfg.Cron || !s.assetsDirty {
		return nil
	}
	s.assetsDirty = false
	now := s.now()
	for _, p := range s.plans {
		uris, anyOf := p.dag.AssetSchedule()
		if len(uris) == 0 || p.paused {
			continue
		}
		r := runs.Record(p.dag, p.version, runs.Spec{Type: task.RunAssetTriggered, LogicalDate: now}, now)
		created, ok, err := s.st.CreateAssetRun(ctx, p.dag.ID(), uris, anyOf, r, p.seeds())
		if err != nil {
			return fmt.Errorf("scheduler: dag %q: asset-triggered run: %w", p.dag.ID(), err)
		}
		if !ok {
			continue
		}
		s.adopt(created, p)
		s.events = append(s.events, Event{At: now, DAGID: created.DAGID, RunID: created.RunID, RunState: task.RunQueued})
	}
	return nil
}
