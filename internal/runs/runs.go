package runs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/storage"
	"github.com/trellisdag/trellis/task"
)

// ID returns the run id of a run of the given type at a logical date, in
// Airflow's form: manual__2024-01-31T03:00:00+00:00 (fractions of a second kept).
func ID(typ task.RunType, logical time.Time) string {
	return fmt.Sprintf("%s__%s", typ, logical.UTC().Format("2006-01-02T15:04:05.999999-07:00"))
}

// ErrExists is returned by Create when the run exists already.
var ErrExists = storage.ErrExists

// Spec describes a run to create.
type Spec struct {
	Type        task.RunType
	LogicalDate time.Time
	// IntervalStart and IntervalEnd are the data interval; zero means the DAG's
	// inferred interval for a manual run at LogicalDate.
	IntervalStart, IntervalEnd time.Time
	// RunID defaults to ID(Type, LogicalDate).
	RunID string
	// Conf is the run's conf, a JSON object or empty; it is checked against the
	// DAG's declared params.
	Conf json.RawMessage
}

// Create creates a queued run of d with a task instance (state none) per task.
// A conf that does not fit the DAG's params is a *dag.ConfError (it wraps
// dag.ErrConf). Times are cut to the microsecond, as the store keeps them, so
// the run returned is the run read back later.
func Create(ctx context.Context, st Creator, d *dag.DAG, s Spec) (storage.Run, error) {
	if _, err := d.ResolveConf(s.Conf); err != nil {
		return storage.Run{}, err
	}
	r, err := st.CreateRun(ctx, Record(d, d.Version(), s, time.Now()), Seeds(d))
	if errors.Is(err, storage.ErrExists) {
		return storage.Run{}, fmt.Errorf("dag %q: run %q: %w", d.ID(), s.RunID, ErrExists)
	}
	return r, err
}

// Seeds are the task instances a new run of d gets: one per task, in state
// none, with its tries (retries + 1). Every way of creating runs uses them.
func Seeds(d *dag.DAG) []storage.TaskSeed {
	ts := d.Tasks()
	seeds := make([]storage.TaskSeed, 0, len(ts))
	for _, t := range ts {
		seeds = append(seeds, storage.TaskSeed{TaskID: t.ID(), MaxTries: task.PolicyOf(t, d.Defaults()).Retries + 1})
	}
	return seeds
}

// Record returns the record of a new queued run of d (not stored yet): the
// one shape every way of creating runs gives them (manual and API triggers,
// the scheduler's interval and asset-triggered runs, backfills). version is
// d.Version(), which callers that create many runs compute once. Times are cut
// to the microsecond, as the store keeps them. Without a data interval, a
// manual or backfill run gets the DAG's inferred one; an asset-triggered run's
// is set from its events when it is created.
func Record(d *dag.DAG, version string, s Spec, created time.Time) storage.Run {
	s.LogicalDate = s.LogicalDate.Truncate(time.Microsecond)
	s.IntervalStart, s.IntervalEnd = s.IntervalStart.Truncate(time.Microsecond), s.IntervalEnd.Truncate(time.Microsecond)
	if s.RunID == "" {
		s.RunID = ID(s.Type, s.LogicalDate)
	}
	if s.IntervalStart.IsZero() && s.IntervalEnd.IsZero() && s.Type != task.RunAssetTriggered {
		s.IntervalStart, s.IntervalEnd = d.InferInterval(s.LogicalDate)
	}
	return storage.Run{DAGID: d.ID(), RunID: s.RunID, Type: s.Type, State: task.RunQueued, DAGVersion: version,
		LogicalDate: s.LogicalDate.UTC(), IntervalStart: s.IntervalStart.UTC(), IntervalEnd: s.IntervalEnd.UTC(),
		Conf: s.Conf, Created: created.UTC().Truncate(time.Microsecond)}
}
