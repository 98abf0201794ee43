package task

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Task is one node of a DAG. Every task type embeds a Def (which gives it its id,
// settings and edges) and implements Execute. The unexported method means only
// types that embed Def are tasks, so every task carries the same settings.
type Task interface {
	// Node gives the task its id (unique within its DAG; "group.task" for a
	// task of a Group) and Then.
	Node
	// Execute runs one try of the task in this process and returns its result encoded
	// as JSON (nil when the task has no result). It returns ErrSkip (possibly wrapped)
	// to skip itself. Execute must stop when ctx is done.
	Execute(ctx context.Context, r *Run) ([]byte, error)
	def() *Def
}

// Kind says how the scheduler treats a task's result.
type Kind string

// Task kinds.
const (
	KindGo           Kind = "go"            // an in-process Go function
	KindBranch       Kind = "branch"        // its result picks the direct downstream tasks that run
	KindShortCircuit Kind = "short_circuit" // a false result skips everything downstream
	KindBash         Kind = "bash"          // a shell command in a child process
	KindPod          Kind = "pod"           // a pod of any image (operators.Pod)
)

// ExecutorKind names an executor.
type ExecutorKind string

// Executors.
const (
	ExecutorDefault    ExecutorKind = ""           // the runner's --executor
	ExecutorLocal      ExecutorKind = "local"      // goroutines and child processes of the runner
	ExecutorKubernetes ExecutorKind = "kubernetes" // one pod per try, running this same binary
)

// ExecutorConfig says where a task's tries run and, for pods, how the pod is shaped.
// Its zero value means: the runner's default executor, no template file, no override.
type ExecutorConfig struct {
	// Executor overrides the runner's --executor for this task.
	Executor ExecutorKind `json:"executor,omitempty"`
	// PodTemplateFile is a pod_template_file (YAML or JSON) for this task's worker pod;
	// empty means the runner's default template.
	PodTemplateFile string `json:"podTemplateFile,omitempty"`
	// PodOverride is merged over the generated worker pod (Airflow's pod_override).
	PodOverride *corev1.Pod `json:"podOverride,omitempty"`
}

func (c ExecutorConfig) validate() error {
	switch c.Executor {
	case ExecutorDefault, ExecutorLocal, ExecutorKubernetes:
	default:
		return fmt.Errorf("executor config: unknown executor %q (want %q or %q)", c.Executor, ExecutorLocal, ExecutorKubernetes)
	}
	if p := c.PodOverride; p != nil && p.Name != "" {
		return fmt.Errorf("executor config: pod override sets metadata.name %q; pod names are generated per try", p.Name)
	}
	return nil
}

// Policy holds a task's retry and timeout settings after the DAG's defaults are applied.
type Policy struct {
	Retries            int           // tries after the first
	RetryDelay         time.Duration // wait before a retry
	ExponentialBackoff bool          // double the delay on every retry
	MaxRetryDelay      time.Duration // cap for the delay; 0 means 24h
	Timeout            time.Duration // execution timeout per try; 0 means none
}

// DefaultMaxRetryDelay caps exponential backoff when Policy.MaxRetryDelay is zero.
const DefaultMaxRetryDelay = 24 * time.Hour

// Delay returns the wait before try number next (2 for the first retry): the retry
// delay, or under exponential backoff the retry delay doubled for every retry
// before this one, capped at MaxRetryDelay (24h when zero), as in Airflow.
func (p Policy) Delay(next int) time.Duration {
	d := p.RetryDelay
	if !p.ExponentialBackoff {
		return d
	}
	max := p.MaxRetryDelay
	if max <= 0 {
		max = DefaultMaxRetryDelay
	}
	for i := 2; i < next && d < max; i++ {
		d *= 2
	}
	return min(d, max)
}

// Def is what every task shares: its id, settings and edges. Task types embed it;
// its zero value is not usable: create it with NewDef.
type Def struct {
	id     string
	kind   Kind
	doc    string
	up     []*Def
	down   []*Def
	errs   []error
	owner  string // id of the DAG it was added to
	self   Task
	policy struct {
		retries, delay, backoff, maxDelay, timeout bool // which fields were set on the task
		Policy
	}
	trigger           TriggerRule
	priority          int
	pool              string
	exec              ExecutorConfig
	dependsOnPast     bool
	waitForDownstream bool
	maxResult         int64 // 0: the runner's limit
	poolSlots         int   // 0: 1
	weightRule        WeightRule
	isolated          bool
	callbacks         map[EventKind][]Callback
	sensor            sensorConf
	outlets           []string
	set               setFlags  // settings given by an option (see Group's defaults)
	group             *Group    // the group the task is in, if any
	setup, teardown   bool      // AsSetup, AsTeardown
	failRun           bool      // FailRunOnTeardownFailure
	pendingSetups     []Task    // AsTeardown's setups, linked by bind once d has its final address
	mapSrc            mapSource // what the task is mapped over (MapOver, MapItems, MapParam)
	mapLinked         bool      // the edge from mapSrc.from is made (bind)
	maxPerRun         int       // MaxActivePerRun; 0: no limit
	maxPerDAG         int       // MaxActivePerDAG; 0: no limit
}

// NewDef returns the Def for a new task of the given kind. Task types call it from
// their constructors; options that are invalid are recorded and reported by the
// DAG's Validate.
func NewDef(id string, kind Kind, opts ...Option) Def {
	d := Def{id: id, kind: kind, trigger: AllSuccess, priority: 1}
	for _, o := range opts {
		o(&d)
	}
	return d
}

func (d *Def) def() *Def { return d }

// ID returns the task's id.
func (d *Def) ID() string { return d.id }

// Then makes each of next a direct downstream of this task and returns the last
// of them, so chains read left to right: a.Then(b).Then(c). A Group in next
// links this task to the group's roots.
func (d *Def) Then(next ...Node) Node {
	var last Node
	for _, n := range next {
		if n == nil {
			d.errs = append(d.errs, errors.New("Then: nil task"))
			continue
		}
		connect(d, n, &d.errs)
		last = n
	}
	return last
}

// After makes each of prev a direct upstream of this task. A Group in prev
// links the group's leaves to this task.
func (d *Def) After(prev ...Node) {
	for _, p := range prev {
		if p == nil {
			d.errs = append(d.errs, errors.New("After: nil task"))
			continue
		}
		connect(p, d, &d.errs)
	}
}

// ends: an edge into or out of a task links the task itself.
func (d *Def) ends() (roots, leaves []*Def) { return []*Def{d}, []*Def{d} }

func link(up, down *Def) {
	up.bind()
	down.bind()
	if !contains(up.down, down) {
		up.down = append(up.down, down)
		down.up = append(down.up, up)
	}
}

func contains(s []*Def, d *Def) bool {
	for _, x := range s {
		if x == d {
			return true
		}
	}
	return false
}

// Chain links tasks and groups one after the other: Chain(a, b, c) is
// a.Then(b); b.Then(c). A group links through its roots and leaves:
// Chain(extract, quality, load) runs quality's roots after extract and load
// after quality's leaves.
func Chain(nodes ...Node) {
	for i := 1; i < len(nodes); i++ {
		if nodes[i-1] == nil {
			continue
		}
		nodes[i-1].Then(nodes[i])
	}
}

// labelValue is what Kubernetes accepts as a label value (task ids become labels).
var labelValue = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?$`)

// ValidID checks that id can name a task or a DAG: non-empty, at most 63
// characters of [A-Za-z0-9_.-], starting and ending with a letter or digit, so it
// is usable as a Kubernetes label value.
func ValidID(id string) error {
	switch {
	case id == "":
		return errors.New("empty id")
	case len(id) > 63:
		return fmt.Errorf("id %q is %d characters; at most 63 (it becomes a Kubernetes label value)", id, len(id))
	case !labelValue.MatchString(id):
		return fmt.Errorf("id %q: use only letters, digits, '_', '.' and '-', starting and ending with a letter or digit (it becomes a Kubernetes label value)", id)
	}
	return nil
}
