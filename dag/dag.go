package dag

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/trellisdag/trellis/internal/timetable"
	"github.com/trellisdag/trellis/task"
)

// DAG is a set of tasks and the edges between them, with a schedule and defaults.
// Build it with New and Add; problems found while building are collected and
// returned together by Validate, so a DAG can be declared as a package-level value.
// A DAG is not safe for concurrent modification; once built it is read-only.
type DAG struct {
	id             string
	schedule       string
	every          time.Duration
	tt             timetable.Timetable // built by New from the schedule options
	start, end     time.Time
	catchup        bool
	loc            *time.Location
	maxActiveRuns  int
	maxActiveTasks int
	defaults       task.Policy
	runTimeout     time.Duration
	params         []paramSpec // in declaration order; see params.go
	tags           []string
	description    string
	doc            string
	isolated       bool // Go tasks run in a child process per try
	callbacks      map[task.EventKind][]task.Callback
	deadlines      []Deadline
	assets         []string // scheduled on these assets (see ScheduleOnAssets)
	anyAsset       bool

	tasks  []task.Task
	groups []*task.Group // given to Add (groups of tasks are found from the tasks too)
	errs   []error
}

// Option sets one of a DAG's settings.
type Option func(*DAG)

// New returns an empty DAG. Options that are invalid are recorded and reported by
// Validate.
func New(id string, opts ...Option) *DAG {
	d := &DAG{id: id, catchup: true, maxActiveRuns: 16, maxActiveTasks: 16,
		defaults: task.Policy{RetryDelay: 5 * time.Minute}}
	if err := task.ValidID(id); err != nil {
		d.errs = append(d.errs, fmt.Errorf("dag id: %w", err))
	}
	for _, o := range opts {
		o(d)
	}
	// Built once here, so that a DAG is read-only after New and safe to read
	// from the scheduler and the web server at once.
	d.tt = d.buildTimetable()
	return d
}

func (d *DAG) fail(format string, args ...any) { d.errs = append(d.errs, fmt.Errorf(format, args...)) }

// Schedule sets the cron schedule: 5 fields read on the wall clock of the DAG's
// timezone, or one of @hourly @daily @weekly @monthly @yearly @once. Empty (the
// default) or @none means manual runs only.
func Schedule(expr string) Option {
	return func(d *DAG) { d.schedule, d.every = strings.TrimSpace(expr), 0 }
}

// StartDate sets the first data interval's earliest start. Its location is the
// DAG's timezone unless Timezone is given.
func StartDate(t time.Time) Option { return func(d *DAG) { d.start = t } }

// EndDate stops scheduling after t (an interval starting exactly at t still runs).
func EndDate(t time.Time) Option { return func(d *DAG) { d.end = t } }

// Catchup sets whether every missed interval is run (true, the default, as in
// Airflow's default) or only the newest one.
func Catchup(on bool) Option { return func(d *DAG) { d.catchup = on } }

// Timezone sets the timezone the schedule is read in (default: the StartDate's
// location, else UTC).
func Timezone(loc *time.Location) Option {
	return func(d *DAG) {
		if loc == nil {
			d.fail("nil timezone")
			return
		}
		d.loc = loc
	}
}

// MaxActiveRuns limits the runs of this DAG that run at once (default 16).
func MaxActiveRuns(n int) Option {
	return func(d *DAG) {
		if n < 1 {
			d.fail("max active runs %d: must be at least 1", n)
		}
		d.maxActiveRuns = n
	}
}

// MaxActiveTasks limits the tasks of this DAG, over all its runs, that run at once
// (default 16).
func MaxActiveTasks(n int) Option {
	return func(d *DAG) {
		if n < 1 {
			d.fail("max active tasks %d: must be at least 1", n)
		}
		d.maxActiveTasks = n
	}
}

// DefaultRetries sets the retries and the retry delay of tasks that do not set
// their own (defaults 0 and 5 minutes).
func DefaultRetries(n int, delay time.Duration) Option {
	return func(d *DAG) {
		if n < 0 {
			d.fail("default retries %d is negative", n)
		}
		if delay < 0 {
			d.fail("default retry delay %s is negative", delay)
		}
		d.defaults.Retries, d.defaults.RetryDelay = n, delay
	}
}

// DefaultBackoff turns on exponential backoff for tasks that do not set it, capped
// at max (0 means 24h).
func DefaultBackoff(max time.Duration) Option {
	return func(d *DAG) {
		if max < 0 {
			d.fail("default max retry delay %s is negative", max)
		}
		d.defaults.ExponentialBackoff, d.defaults.MaxRetryDelay = true, max
	}
}

// DefaultTimeout sets the execution timeout of tasks that do not set their own.
func DefaultTimeout(t time.Duration) Option {
	return func(d *DAG) {
		if t < 0 {
			d.fail("default execution timeout %s is negative", t)
		}
		d.defaults.Timeout = t
	}
}

// RunTimeout fails a run that is still running after t (Airflow's dagrun_timeout);
// its unfinished tasks are stopped and skipped. 0 (the default) means none.
func RunTimeout(t time.Duration) Option {
	return func(d *DAG) {
		if t < 0 {
			d.fail("run timeout %s is negative", t)
		}
		d.runTimeout = t
	}
}

// Tags sets labels shown by the CLI and the UI.
func Tags(tags ...string) Option { return func(d *DAG) { d.tags = append(d.tags, tags...) } }

// Description sets a one-line description.
func Description(s string) Option { return func(d *DAG) { d.description = s } }

// Doc sets longer documentation (Markdown).
func Doc(s string) Option { return func(d *DAG) { d.doc = s } }

// Isolated runs every Go task of the DAG in a child process per try, as
// task.Isolated does for one task.
func Isolated() Option { return func(d *DAG) { d.isolated = true } }

// IsolatedTasks reports whether the DAG runs its Go tasks in child processes.
func (d *DAG) IsolatedTasks() bool { return d.isolated }

// Add adds tasks and groups to the DAG and returns it: a group (task.Group)
// adds every task in it, nested groups included, so add it once its tasks are
// in it. A task belongs to one DAG only.
func (d *DAG) Add(nodes ...task.Node) *DAG {
	for _, n := range nodes {
		var ts []task.Task
		switch n := n.(type) {
		case nil:
			d.fail("Add: nil task")
			continue
		case *task.Group:
			d.groups = append(d.groups, n)
			ts = n.Tasks()
		case task.Task:
			ts = []task.Task{n}
		}
		for _, t := range ts {
			if err := task.Adopt(t, d.id); err != nil {
				d.fail("task %q: %w", t.ID(), err)
				continue
			}
			d.tasks = append(d.tasks, t)
		}
	}
	return d
}

// ID returns the DAG's id.
func (d *DAG) ID() string { return d.id }

// Tasks returns the tasks in the order they were added.
func (d *DAG) Tasks() []task.Task { return slices.Clone(d.tasks) }

// Task returns the task with the given id, for tools that get ids from people
// (the CLI, the API).
func (d *DAG) Task(id string) (task.Task, bool) {
	for _, t := range d.tasks {
		if t.ID() == id {
			return t, true
		}
	}
	return nil, false
}

// WithDownstream returns the given tasks and every task downstream of them, in
// the order they were added to the DAG (what "clear with downstream" clears).
func (d *DAG) WithDownstream(tasks []task.Task) []task.Task {
	seen := map[task.Task]bool{}
	var walk func(task.Task)
	walk = func(t task.Task) {
		if seen[t] {
			return
		}
		seen[t] = true
		for _, x := range task.Downstream(t) {
			walk(x)
		}
	}
	for _, t := range tasks {
		walk(t)
	}
	var out []task.Task
	for _, t := range d.tasks {
		if seen[t] {
			out = append(out, t)
		}
	}
	return out
}

// ScheduleExpr returns the schedule as given ("" for manual only); see also
// ScheduleString.
func (d *DAG) ScheduleExpr() string { return d.ScheduleString() }

// Start returns the start date (zero when none).
func (d *DAG) Start() time.Time { return d.start }

// End returns the end date (zero when none).
func (d *DAG) End() time.Time { return d.end }

// CatchupEnabled reports whether missed intervals are all run.
func (d *DAG) CatchupEnabled() bool { return d.catchup }

// Location returns the timezone of the schedule.
func (d *DAG) Location() *time.Location {
	switch {
	case d.loc != nil:
		return d.loc
	case !d.start.IsZero():
		return d.start.Location()
	}
	return time.UTC
}

// MaxActiveRunsLimit returns the limit of concurrently running runs.
func (d *DAG) MaxActiveRunsLimit() int { return d.maxActiveRuns }

// MaxActiveTasksLimit returns the limit of concurrently running tasks.
func (d *DAG) MaxActiveTasksLimit() int { return d.maxActiveTasks }

// Defaults returns the retry and timeout policy of tasks that set none.
func (d *DAG) Defaults() task.Policy { return d.defaults }

// RunTimeoutLimit returns the run timeout (0 means none).
func (d *DAG) RunTimeoutLimit() time.Duration { return d.runTimeout }

// TagList returns the tags.
func (d *DAG) TagList() []string { return slices.Clone(d.tags) }

// DescriptionText returns the one-line description.
func (d *DAG) DescriptionText() string { return d.description }

// DocText returns the documentation.
func (d *DAG) DocText() string { return d.doc }

// Validate returns every problem of the DAG at once (joined with errors.Join), each
// naming the DAG and, where it applies, the task: invalid ids, duplicate tasks,
// edges to tasks outside the DAG, cycles (with their path), invalid options and
// schedules, misused groups, setups and teardowns.
func (d *DAG) Validate() error {
	var errs []error
	add := func(err error) { errs = append(errs, fmt.Errorf("dag %q: %w", d.id, err)) }
	for _, e := range d.errs {
		add(e)
	}
	if err := d.validateSchedule(); err != nil {
		add(err)
	}
	if !d.start.IsZero() && !d.end.IsZero() && d.start.After(d.end) {
		add(fmt.Errorf("start date %s is after end date %s", d.start.Format(time.RFC3339), d.end.Format(time.RFC3339)))
	}
	seen := map[string]bool{}
	for _, t := range d.tasks {
		id := t.ID()
		if err := task.ValidID(id); err != nil {
			add(fmt.Errorf("task %q: %w", id, err))
		}
		if seen[id] {
			add(fmt.Errorf("task %q: duplicate task id", id))
		}
		seen[id] = true
		for _, e := range task.Problems(t, d.id) {
			add(fmt.Errorf("task %q: %w", id, e))
		}
	}
	for _, e := range d.groupProblems() {
		add(e)
	}
	if cyc := d.cycle(); cyc != nil {
		add(fmt.Errorf("cycle: %s", strings.Join(cyc, " -> ")))
	}
	for _, e := range d.paramProblems() {
		add(e)
	}
	return errors.Join(errs...)
}

// cycle returns the path of one cycle (first task repeated at the end), or nil.
func (d *DAG) cycle() []string {
	const (
		white = iota
		grey
		black
	)
	color := make(map[task.Task]int, len(d.tasks))
	var stack []task.Task
	var found []string
	var visit func(t task.Task) bool
	visit = func(t task.Task) bool {
		color[t] = grey
		stack = append(stack, t)
		for _, n := range task.Downstream(t) {
			switch color[n] {
			case grey:
				i := slices.Index(stack, n)
				for _, s := range stack[i:] {
					found = append(found, s.ID())
				}
				found = append(found, n.ID())
				return true
			case white:
				if visit(n) {
					return true
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[t] = black
		return false
	}
	for _, t := range d.tasks {
		if color[t] == white && visit(t) {
			return found
		}
	}
	return nil
}
