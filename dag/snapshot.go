package dag

import (
	"slices"
	"time"

	"github.com/trellisdag/trellis/task"
)

// Snapshot is a DAG's definition as data: what the CLI prints, the store keeps and
// the UI draws. It is JSON-encodable.
type Snapshot struct {
	ID             string     `json:"id"`
	Description    string     `json:"description,omitempty"`
	Doc            string     `json:"doc,omitempty"`
	Tags           []string   `json:"tags,omitempty"`
	Schedule       string     `json:"schedule,omitempty"`
	Timezone       string     `json:"timezone"`
	StartDate      *time.Time `json:"startDate,omitempty"`
	EndDate        *time.Time `json:"endDate,omitempty"`
	Catchup        bool       `json:"catchup"`
	MaxActiveRuns  int        `json:"maxActiveRuns"`
	MaxActiveTasks int        `json:"maxActiveTasks"`
	RunTimeout     string     `json:"runTimeout,omitempty"`
	Params         []Param    `json:"params,omitempty"`
	// Assets and AnyAsset are the asset schedule (ScheduleOnAssets).
	Assets   []string       `json:"assets,omitempty"`
	AnyAsset bool           `json:"anyAsset,omitempty"`
	Tasks    []TaskSnapshot `json:"tasks"`
	// Groups are the task groups (task.Group), outer groups first; a task
	// names its group in TaskSnapshot.Group.
	Groups []GroupSnapshot `json:"groups,omitempty"`
}

// GroupSnapshot is a task group as data: its full id ("quality.deep") and the
// full id of the group it is nested in ("quality"; "" at the top).
type GroupSnapshot struct {
	ID     string `json:"id"`
	Parent string `json:"parent,omitempty"`
}

// TaskSnapshot is a task's definition as data.
type TaskSnapshot struct {
	ID          string           `json:"id"`
	Kind        task.Kind        `json:"kind"`
	Doc         string           `json:"doc,omitempty"`
	Upstream    []string         `json:"upstream,omitempty"`
	Downstream  []string         `json:"downstream,omitempty"`
	TriggerRule task.TriggerRule `json:"triggerRule"`
	Retries     int              `json:"retries"`
	RetryDelay  string           `json:"retryDelay"`
	// Backoff is "exponential up to <max>" under exponential backoff, else "".
	Backoff           string              `json:"backoff,omitempty"`
	MaxResultSize     int64               `json:"maxResultSize,omitempty"`
	PoolSlots         int                 `json:"poolSlots"`
	WeightRule        task.WeightRule     `json:"weightRule"`
	Timeout           string              `json:"timeout,omitempty"`
	Priority          int                 `json:"priority"`
	Pool              string              `json:"pool,omitempty"`
	DependsOnPast     bool                `json:"dependsOnPast,omitempty"`
	WaitForDownstream bool                `json:"waitForDownstream,omitempty"`
	Executor          task.ExecutorConfig `json:"executor"`
	// Outlets are the assets the task updates (task.Outlets).
	Outlets []string `json:"outlets,omitempty"`
	// Sensor is the sensor's waiting policy (sensors only).
	Sensor *SensorSnapshot `json:"sensor,omitempty"`
	// Group is the full id of the task's innermost group ("" when none).
	Group string `json:"group,omitempty"`
	// Setup and Teardown say the task is a setup or a teardown; FailRun that
	// the teardown's failure fails the run.
	Setup    bool `json:"setup,omitempty"`
	Teardown bool `json:"teardown,omitempty"`
	FailRun  bool `json:"failRun,omitempty"`
	// Map says what a mapped task is mapped over (nil for a task that is not
	// mapped).
	Map *MapSnapshot `json:"map,omitempty"`
}

// MapSnapshot is a mapped task's list as data: exactly one of its fields is
// set.
type MapSnapshot struct {
	// Over is the upstream task whose result is the list.
	Over string `json:"over,omitempty"`
	// Items is the number of elements of a literal list.
	Items int `json:"items,omitempty"`
	// Param is the DAG param holding the list.
	Param string `json:"param,omitempty"`
}

// SensorSnapshot is a sensor's waiting policy as data.
type SensorSnapshot struct {
	PokeInterval string `json:"pokeInterval"`
	Timeout      string `json:"timeout"`
	SoftFail     bool   `json:"softFail,omitempty"`
	// Backoff is "exponential up to <max wait>" (or "exponential") under
	// PokeBackoff, else "".
	Backoff string `json:"backoff,omitempty"`
}

// Snapshot returns the DAG's definition as data.
func (d *DAG) Snapshot() Snapshot {
	s := Snapshot{ID: d.id, Description: d.description, Doc: d.doc, Tags: slices.Clone(d.tags), Schedule: d.ScheduleString(),
		Timezone: d.Location().String(), Catchup: d.catchup, MaxActiveRuns: d.maxActiveRuns,
		MaxActiveTasks: d.maxActiveTasks, Params: d.ParamDecls(), Tasks: []TaskSnapshot{},
		Assets: slices.Clone(d.assets), AnyAsset: d.anyAsset}
	if !d.start.IsZero() {
		t := d.start
		s.StartDate = &t
	}
	if !d.end.IsZero() {
		t := d.end
		s.EndDate = &t
	}
	if d.runTimeout > 0 {
		s.RunTimeout = d.runTimeout.String()
	}
	for _, t := range d.tasks {
		set := task.SettingsOf(t)
		pol := task.PolicyOf(t, d.defaults)
		ts := TaskSnapshot{ID: t.ID(), Kind: set.Kind, Doc: set.Doc, TriggerRule: set.TriggerRule,
			Retries: pol.Retries, RetryDelay: pol.RetryDelay.String(), Priority: set.Priority, Pool: set.Pool,
			DependsOnPast: set.DependsOnPast, WaitForDownstream: set.WaitForDownstream, Executor: set.Executor}
		if pol.Timeout > 0 {
			ts.Timeout = pol.Timeout.String()
		}
		if pol.ExponentialBackoff {
			maxDelay := pol.MaxRetryDelay
			if maxDelay <= 0 {
				maxDelay = task.DefaultMaxRetryDelay
			}
			ts.Backoff = "exponential up to " + maxDelay.String()
		}
		ts.MaxResultSize, ts.PoolSlots, ts.WeightRule = set.MaxResultSize, set.PoolSlots, set.WeightRule
		ts.Outlets = task.OutletsOf(t)
		ts.Group, ts.Setup, ts.Teardown, ts.FailRun = set.Group, set.Setup, set.Teardown, set.FailRun
		if m, ok := task.MappingOf(t); ok {
			ts.Map = &MapSnapshot{Over: m.Over, Items: len(m.Items), Param: m.Param}
		}
		if set.Kind == task.KindSensor {
			p := task.SensorPolicyOf(t)
			ts.Sensor = &SensorSnapshot{PokeInterval: p.PokeInterval.String(), Timeout: p.Timeout.String(), SoftFail: p.SoftFail}
			if p.Backoff {
				ts.Sensor.Backoff = "exponential"
				if p.MaxWait > 0 {
					ts.Sensor.Backoff += " up to " + p.MaxWait.String()
				}
			}
		}
		for _, u := range task.Upstream(t) {
			ts.Upstream = append(ts.Upstream, u.ID())
		}
		for _, x := range task.Downstream(t) {
			ts.Downstream = append(ts.Downstream, x.ID())
		}
		s.Tasks = append(s.Tasks, ts)
	}
	for _, g := range d.Groups() {
		gs := GroupSnapshot{ID: g.ID()}
		if p := g.Parent(); p != nil {
			gs.Parent = p.ID()
		}
		s.Groups = append(s.Groups, gs)
	}
	return s
}
