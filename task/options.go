package task

import (
	"cmp"
	"errors"
	"fmt"
	"time"
)

// Option sets one of a task's settings. Options given to a task win over the DAG's
// defaults. An invalid value is recorded and reported by the DAG's Validate.
type Option func(*Def)

func (d *Def) fail(format string, args ...any) {
	d.errs = append(d.errs, fmt.Errorf(format, args...))
}

// Retries sets how many times a failed try is retried (default: the DAG's, else 0).
func Retries(n int) Option {
	return func(d *Def) {
		if n < 0 {
			d.fail("retries %d is negative", n)
		}
		d.policy.retries, d.policy.Retries = true, n
	}
}

// RetryDelay sets the wait before a retry (default: the DAG's, else 5 minutes as in Airflow).
func RetryDelay(delay time.Duration) Option {
	return func(d *Def) {
		if delay < 0 {
			d.fail("retry delay %s is negative", delay)
		}
		d.policy.delay, d.policy.RetryDelay = true, delay
	}
}

// ExponentialBackoff doubles the retry delay on every retry, up to MaxRetryDelay.
func ExponentialBackoff(on bool) Option {
	return func(d *Def) { d.policy.backoff, d.policy.ExponentialBackoff = true, on }
}

// MaxRetryDelay caps the retry delay under exponential backoff (default 24h).
func MaxRetryDelay(max time.Duration) Option {
	return func(d *Def) {
		if max < 0 {
			d.fail("max retry delay %s is negative", max)
		}
		d.policy.maxDelay, d.policy.MaxRetryDelay = true, max
	}
}

// Timeout sets the execution timeout of each try (Airflow's execution_timeout;
// default: the DAG's, else none). A try that runs longer is stopped and fails.
func Timeout(t time.Duration) Option {
	return func(d *Def) {
		if t < 0 {
			d.fail("execution timeout %s is negative", t)
		}
		d.policy.timeout, d.policy.Timeout = true, t
	}
}

// Trigger sets the task's trigger rule (default AllSuccess).
func Trigger(r TriggerRule) Option {
	return func(d *Def) {
		if !r.Valid() {
			d.fail("unknown trigger rule %q", r)
		}
		d.trigger = r
		d.set |= setTrigger
	}
}

// Priority sets the task's priority weight (default 1). Among ready tasks, the one
// with the highest effective weight starts first; WeightRule says how the
// effective weight is computed (default WeightDownstream).
func Priority(weight int) Option {
	return func(d *Def) { d.priority = weight; d.set |= setPriority }
}

// A WeightRule computes a task's effective priority weight from the priority
// weights of the DAG's tasks, as Airflow's weight_rule.
type WeightRule string

// Weight rules.
const (
	// WeightDownstream: the task's weight plus that of every task downstream of
	// it, so that long paths start first (Airflow's default).
	WeightDownstream WeightRule = "downstream"
	// WeightUpstream: the task's weight plus that of every task upstream of it,
	// so that runs that are further along finish first.
	WeightUpstream WeightRule = "upstream"
	// WeightAbsolute: the task's own weight.
	WeightAbsolute WeightRule = "absolute"
)

// Weight sets the task's weight rule (default WeightDownstream).
func Weight(rule WeightRule) Option {
	return func(d *Def) {
		switch rule {
		case WeightDownstream, WeightUpstream, WeightAbsolute:
		default:
			d.fail("weight rule %q: want downstream, upstream or absolute", rule)
		}
		d.weightRule = rule
	}
}

// Pool puts the task in a named pool; a pool limits how many of its tasks run at
// once (default "default_pool").
func Pool(name string) Option {
	return func(d *Def) {
		if name == "" {
			d.fail("empty pool name")
		}
		d.pool = name
	}
}

// Executor sets where the task's tries run and how its pod is shaped.
func Executor(c ExecutorConfig) Option {
	return func(d *Def) {
		if err := c.validate(); err != nil {
			d.errs = append(d.errs, err)
		}
		d.exec = c
		d.set |= setExecutor
	}
}

// DependsOnPast makes a try wait until the same task succeeded (or was skipped) in
// the previous DAG run.
func DependsOnPast(on bool) Option {
	return func(d *Def) { d.dependsOnPast = on; d.set |= setDependsOnPast }
}

// WaitForDownstream makes a try also wait until the direct downstream tasks of the
// same task in the previous DAG run have finished. It implies DependsOnPast.
func WaitForDownstream(on bool) Option {
	return func(d *Def) {
		d.waitForDownstream = on
		d.set |= setWaitForDownstream
		if on {
			d.dependsOnPast = true
			d.set |= setDependsOnPast
		}
	}
}

// Isolated runs each try of a Go task in a child process of the runner's
// binary (its task-run entrypoint, as a worker pod does) instead of a
// goroutine: a panic in any goroutine, os.Exit, a segfault or an OOM kill then
// fails only that try, and a timeout kills the child. It costs a process start
// per try. runner.Config.IsolateGoTasks does it for every Go task.
func Isolated() Option { return func(d *Def) { d.isolated = true } }

// PoolSlots sets how many slots of its pool a try of the task takes while it
// runs (Airflow's pool_slots; default 1).
func PoolSlots(n int) Option {
	return func(d *Def) {
		if n < 1 {
			d.fail("pool slots %d: want at least 1", n)
		}
		d.poolSlots = n
	}
}

// MaxActivePerRun limits the tries of the task in flight at once within one
// run (Airflow's max_active_tis_per_dagrun): for a mapped task, how many of its
// instances run at a time. Zero (the default) sets no limit.
func MaxActivePerRun(n int) Option {
	return func(d *Def) {
		if n < 0 {
			d.fail("max active per run %d is negative", n)
		}
		d.maxPerRun = n
	}
}

// MaxActivePerDAG limits the tries of the task in flight at once across every
// run of its DAG (Airflow's max_active_tis_per_dag), its mapped instances
// included. Zero (the default) sets no limit.
func MaxActivePerDAG(n int) Option {
	return func(d *Def) {
		if n < 0 {
			d.fail("max active per DAG %d is negative", n)
		}
		d.maxPerDAG = n
	}
}

// MaxResultSize sets the largest result, in bytes of JSON, that a try of the
// task may return (default: the runner's, 8 MiB unless runner.Config.
// MaxResultSize says otherwise). A larger result fails the try, without retry.
func MaxResultSize(bytes int64) Option {
	return func(d *Def) {
		if bytes <= 0 {
			d.fail("max result size %d is not positive", bytes)
		}
		d.maxResult = bytes
	}
}

// Doc sets a description of the task shown by the CLI and the UI.
func Doc(text string) Option { return func(d *Def) { d.doc = text } }

// Settings is a read-only view of a task's settings.
type Settings struct {
	Kind              Kind
	Doc               string
	TriggerRule       TriggerRule
	Priority          int
	Pool              string // "" means the default pool
	Executor          ExecutorConfig
	DependsOnPast     bool
	WaitForDownstream bool
	// MaxResultSize is the task's own result limit in bytes (0: the runner's).
	MaxResultSize int64
	// PoolSlots is how many slots of its pool a try takes (at least 1).
	PoolSlots int
	// WeightRule computes the effective priority weight (never empty).
	WeightRule WeightRule
	// Isolated runs tries in a child process (see Isolated).
	Isolated bool
	// Group is the full id of the task's group ("quality.checks"), "" when none.
	Group string
	// Setup and Teardown say the task is a setup (AsSetup) or a teardown
	// (AsTeardown); FailRun that a teardown's failure fails the run
	// (FailRunOnTeardownFailure).
	Setup, Teardown, FailRun bool
	// Mapped says the task runs once per element of a list (MappingOf says
	// which list).
	Mapped bool
	// MaxActivePerRun and MaxActivePerDAG limit the task's tries in flight
	// in one run and across the DAG's runs (0: no limit).
	MaxActivePerRun, MaxActivePerDAG int
}

// Settings returns the task's settings.
func (d *Def) Settings() Settings {
	s := Settings{Kind: d.kind, Doc: d.doc, TriggerRule: d.trigger, Priority: d.priority,
		Pool: d.pool, Executor: d.exec, DependsOnPast: d.dependsOnPast, WaitForDownstream: d.waitForDownstream,
		MaxResultSize: d.maxResult, PoolSlots: max(d.poolSlots, 1), WeightRule: cmp.Or(d.weightRule, WeightDownstream),
		Isolated: d.isolated, Setup: d.setup, Teardown: d.teardown, FailRun: d.failRun, Mapped: d.mapSrc.set,
		MaxActivePerRun: d.maxPerRun, MaxActivePerDAG: d.maxPerDAG}
	if d.group != nil {
		s.Group = d.group.ID()
	}
	if d.teardown {
		s.TriggerRule = AllDoneSetupSuccess // a teardown's rule, whatever else was set (Validate reports a conflict)
	}
	return s
}

// Policy returns the task's retry and timeout policy: the values set on the task,
// the others taken from defaults (the DAG's).
func (d *Def) Policy(defaults Policy) Policy {
	p := defaults
	if d.policy.retries {
		p.Retries = d.policy.Retries
	}
	if d.policy.delay {
		p.RetryDelay = d.policy.RetryDelay
	}
	if d.policy.backoff {
		p.ExponentialBackoff = d.policy.ExponentialBackoff
	}
	if d.policy.maxDelay {
		p.MaxRetryDelay = d.policy.MaxRetryDelay
	}
	if d.policy.timeout {
		p.Timeout = d.policy.Timeout
	}
	return p
}

// Upstream returns the task's direct upstream tasks.
func Upstream(t Task) []Task { return tasks(t.def().up) }

// Downstream returns the task's direct downstream tasks.
func Downstream(t Task) []Task { return tasks(t.def().down) }

func tasks(ds []*Def) []Task {
	out := make([]Task, 0, len(ds))
	for _, d := range ds {
		if d.self != nil {
			out = append(out, d.self)
		}
	}
	return out
}

// ErrOtherDAG is returned by Adopt when a task already belongs to another DAG.
var ErrOtherDAG = errors.New("task already belongs to another DAG")

// Adopt records that t belongs to the DAG dagID. It is called by dag.DAG.Add; a task
// belongs to exactly one DAG.
func Adopt(t Task, dagID string) error {
	d := t.def()
	if d.owner != "" && d.owner != dagID {
		return fmt.Errorf("%w (%q)", ErrOtherDAG, d.owner)
	}
	d.owner, d.self = dagID, t
	d.bind()
	return nil
}

// Problems returns what went wrong while the task was built (invalid options,
// templates that do not parse) and the edges that point outside dagID: to a task
// never added to a DAG, or to a task of another DAG.
func Problems(t Task, dagID string) []error {
	d := t.def()
	errs := append([]error(nil), d.errs...)
	if d.kind == KindSensor && (d.exec.Executor != ExecutorDefault || d.exec.PodTemplateFile != "" || d.exec.PodOverride != nil) {
		errs = append(errs, fmt.Errorf("sensor %q has an executor config: a sensor's pokes run in the runner, never in a pod", d.id))
	}
	check := func(rel string, o *Def) {
		switch {
		case o.self == nil:
			errs = append(errs, fmt.Errorf("%s task %q was never added to the DAG", rel, o.id))
		case o.owner != dagID:
			errs = append(errs, fmt.Errorf("%s task %q belongs to DAG %q", rel, o.id, o.owner))
		}
	}
	for _, u := range d.up {
		check("upstream", u)
	}
	for _, x := range d.down {
		check("downstream", x)
	}
	errs = append(errs, d.mapProblems()...)
	return append(errs, d.setupProblems()...)
}

// SettingsOf returns the settings of any task.
func SettingsOf(t Task) Settings { return t.def().Settings() }

// PolicyOf returns the retry and timeout policy of any task, with defaults (the
// DAG's) for what the task does not set.
func PolicyOf(t Task, defaults Policy) Policy { return t.def().Policy(defaults) }

// Invalid records err as a problem of the task, reported by the DAG's Validate.
// Task types use it for what goes wrong in their constructors (a template that does
// not parse), so that building never panics.
func Invalid(err error) Option { return func(d *Def) { d.errs = append(d.errs, err) } }

// ExecutorFor returns the executor the task's tries run on, given the
// runner's default (ExecutorDefault: local): a PodOperator's always run in a
// pod (kubernetes), a sensor's pokes always in the runner (local), other
// tasks' where their ExecutorConfig says, else on the runner's default.
func (s Settings) ExecutorFor(runnerDefault ExecutorKind) ExecutorKind {
	switch {
	case s.Kind == KindPod:
		return ExecutorKubernetes
	case s.Kind == KindSensor:
		return ExecutorLocal
	case s.Executor.Executor != ExecutorDefault:
		return s.Executor.Executor
	case runnerDefault != ExecutorDefault:
		return runnerDefault
	}
	return ExecutorLocal
}
