package k8s

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/trellisdag/trellis/task"
)

// Annotation keys the builder sets besides the identity (TryIdentity) keys.
const (
	// AnnotationContext holds the try's context (TryContext as JSON); the
	// worker reads it through a downward API volume.
	AnnotationContext = LabelPrefix + "context"
	// AnnotationKind is "worker" for a pod running a task of the team's
	// binary (task-run) and "pod" for a PodOperator pod.
	AnnotationKind = LabelPrefix + "kind"
	// AnnotationOnFinish is the pod's cleanup policy (an OnFinish value); a
	// task's pod override or a PodOperator sets it per task.
	AnnotationOnFinish = LabelPrefix + "on-finish"
	// AnnotationStartupTimeout is how long the pod may stay pending (a Go
	// duration); unset means the runner's default.
	AnnotationStartupTimeout = LabelPrefix + "startup-timeout"
	// AnnotationResult is "termination-message" on a PodOperator pod whose
	// result is pushed through the base container's termination message.
	AnnotationResult = LabelPrefix + "result"
	// AnnotationSkipExitCodes lists the exit codes of a PodOperator pod's
	// base container that skip the task instead of failing it, comma
	// separated (Airflow's skip_on_exit_code); see ParseExitCodes.
	AnnotationSkipExitCodes = LabelPrefix + "skip-on-exit-codes"
)

// FormatExitCodes is the AnnotationSkipExitCodes value of codes.
func FormatExitCodes(codes []int) string {
	parts := make([]string, len(codes))
	for i, c := range codes {
		parts[i] = strconv.Itoa(c)
	}
	return strings.Join(parts, ",")
}

// ValidSkipExitCode reports whether c can skip a task: an exit code from 1
// to 255 (0 succeeds).
func ValidSkipExitCode(c int) bool { return c >= 1 && c <= 255 }

// ParseExitCodes reads an AnnotationSkipExitCodes value: exit codes 1-255,
// comma separated.
func ParseExitCodes(s string) ([]int, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var codes []int
	for _, f := range strings.Split(s, ",") {
		c, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || !ValidSkipExitCode(c) {
			return nil, fmt.Errorf("%s %q: %q is not an exit code from 1 to 255", AnnotationSkipExitCodes, s, f)
		}
		codes = append(codes, c)
	}
	return codes, nil
}

// Pod kinds (AnnotationKind values).
const (
	KindWorker = "worker"
	KindPod    = "pod"
)

// Where the worker finds its context: a downward API volume over
// AnnotationContext.
const (
	ContextVolume    = "trellis-context"
	ContextDir       = "/var/run/trellis"
	ContextFile      = ContextDir + "/context.json"
	TerminationLog   = "/dev/termination-log"
	TaskRunCommand   = "task-run"
	maxContextBytes  = 192 << 10
	annotationBudget = 256 << 10 // the API server's limit on all annotations of an object
)

// OnFinish says what happens to a pod once its try has ended and its log is
// saved.
type OnFinish string

// Cleanup policies.
const (
	OnFinishDefault         OnFinish = ""                  // the runner's policy
	OnFinishDelete          OnFinish = "delete"            // always delete
	OnFinishDeleteOnSuccess OnFinish = "delete-on-success" // keep failed pods for inspection
	OnFinishKeep            OnFinish = "keep"              // never delete
)

// Valid reports whether p is one of the policies.
func (p OnFinish) Valid() bool {
	switch p {
	case OnFinishDefault, OnFinishDelete, OnFinishDeleteOnSuccess, OnFinishKeep:
		return true
	}
	return false
}

// Delete reports whether a pod whose try succeeded (or not) is deleted.
func (p OnFinish) Delete(succeeded bool) bool {
	switch p {
	case OnFinishDelete:
		return true
	case OnFinishDeleteOnSuccess, OnFinishDefault:
		return succeeded
	}
	return false
}

// Hook is an admin's mutation hook (Airflow's pod_mutation_hook): it sees
// every pod the runner is about to create, worker and PodOperator pods
// alike, after every other layer, and may change it. An error fails the try
// with the hook's message.
type Hook func(ctx context.Context, pod *corev1.Pod, t task.Info) error

// TryContext is what a worker pod needs to run one try of a task of the
// team's binary besides the DAG definitions compiled into it: the run's
// dates and conf and the results of the task's direct upstream tasks. It
// travels in the pod's AnnotationContext.
type TryContext struct {
	DAGID                        string                     `json:"dag"`
	TaskID                       string                     `json:"task"`
	RunID                        string                     `json:"run"`
	RunType                      task.RunType               `json:"runType,omitempty"`
	Try                          int                        `json:"try"`
	MaxTries                     int                        `json:"maxTries,omitempty"`
	LogicalDate                  time.Time                  `json:"logicalDate"`
	DataIntervalStart            time.Time                  `json:"dataIntervalStart"`
	DataIntervalEnd              time.Time                  `json:"dataIntervalEnd"`
	PrevDataIntervalStartSuccess time.Time                  `json:"prevSuccess,omitzero"`
	Conf                         json.RawMessage            `json:"conf,omitempty"`
	Inputs                       map[string]json.RawMessage `json:"inputs,omitempty"`
	// MapIndex is the map index of a mapped task instance's try; nil for a
	// task that is not mapped (whose context is then as it always was).
	// Index reads it.
	MapIndex *int `json:"mapIndex,omitempty"`
	// Item is the element a mapped task instance runs for (task.WithItem
	// hands it to the try); nil for a task that is not mapped.
	Item json.RawMessage `json:"item,omitempty"`
	// Timeout is the execution timeout; the worker stops the task after it.
	Timeout time.Duration `json:"timeout,omitempty"`
}

// NewTryContext returns the context of a try without its inputs and item.
// info.MapIndex is the map index of a mapped task instance, -1 for a task
// that is not mapped (as the scheduler sets it).
func NewTryContext(info task.Info, conf json.RawMessage, timeout time.Duration) TryContext {
	c := TryContext{DAGID: info.DAGID, TaskID: info.TaskID, RunID: info.RunID, RunType: info.RunType,
		Try: info.Try, MaxTries: info.MaxTries, LogicalDate: info.LogicalDate.UTC(),
		DataIntervalStart: info.DataIntervalStart.UTC(), DataIntervalEnd: info.DataIntervalEnd.UTC(),
		PrevDataIntervalStartSuccess: info.PrevDataIntervalStartSuccess, Conf: conf, Timeout: timeout}
	if info.MapIndex >= 0 {
		k := info.MapIndex
		c.MapIndex = &k
	}
	return c
}

// Index returns the map index of the context, -1 when it has none.
func (c TryContext) Index() int {
	if c.MapIndex == nil {
		return -1
	}
	return *c.MapIndex
}

// Info returns the task.Info of the context; loc is the DAG's timezone.
func (c TryContext) Info(loc *time.Location) task.Info {
	return task.Info{DAGID: c.DAGID, TaskID: c.TaskID, RunID: c.RunID, RunType: c.RunType, Try: c.Try,
		MaxTries: c.MaxTries, LogicalDate: c.LogicalDate, DataIntervalStart: c.DataIntervalStart,
		DataIntervalEnd: c.DataIntervalEnd, Location: loc, PrevDataIntervalStartSuccess: c.PrevDataIntervalStartSuccess,
		MapIndex: c.Index()}
}

// InstanceID is the id of the task instance the context is for: TaskID, or
// for a mapped task instance task.InstanceID(TaskID, MapIndex).
func (c TryContext) InstanceID() string { return task.InstanceID(c.TaskID, c.Index()) }

// TaskInputs returns the upstream results of the context as task.Inputs,
// carrying Item (task.WithItem) when the context has one.
func (c TryContext) TaskInputs() task.Inputs {
	in := task.InputsFunc(func(id string) ([]byte, bool, error) {
		v, ok := c.Inputs[id]
		return v, ok, nil
	})
	if c.Item != nil {
		return task.WithItem(in, c.Item)
	}
	return in
}

// ErrTooLarge is wrapped by the error of a try whose context (conf plus
// upstream results) does not fit in a pod annotation.
var ErrTooLarge = errors.New("too large for a pod")

// Encode returns the context as JSON, or an error wrapping ErrTooLarge when
// it exceeds what a pod's annotations can hold (192 KiB).
func (c TryContext) Encode() ([]byte, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode the try's context: %w", err)
	}
	if len(b) > maxContextBytes {
		return nil, fmt.Errorf("the run's conf and the results of the upstream tasks are %d bytes, %w (at most %d bytes are handed to a pod); "+
			"pass large data through storage and hand over a reference", len(b), ErrTooLarge, maxContextBytes)
	}
	return b, nil
}

// PodTask is a task that brings its own pod (operators.Pod): the runner
// creates that pod, under either executor, instead of a worker pod.
type PodTask interface {
	task.Task
	// Pod returns the task's pod for one try, its templates rendered over
	// r, before the runner adds the identity, the namespace default and the
	// mutation hooks. The result belongs to the caller.
	Pod(ctx context.Context, r *task.Run) (*corev1.Pod, error)
	// DecodeResult checks a pushed result (JSON) against the task's result
	// type and returns it as stored.
	DecodeResult(raw []byte) ([]byte, error)
}

// BuilderConfig configures a Builder.
type BuilderConfig struct {
	// Template is the runner's default worker pod template; nil means a
	// minimal one (a "base" container and restartPolicy Never).
	Template *corev1.Pod
	// Image is the team's image for the base container; empty keeps the
	// template's image.
	Image string
	// Command runs the team's binary in the image (e.g.
	// ["/usr/local/bin/etl"]); the builder appends the task-run arguments.
	Command []string
	// Namespace is where pods are created when neither the template nor the
	// task names one ("default" when empty).
	Namespace string
	// Instance is the runner instance that owns the pods (LabelInstance).
	Instance string
	// Mode merges the layers (StrategicMerge by default).
	Mode MergeMode
	// Hooks are the admin's mutation hooks, applied in order.
	Hooks []Hook
	// StartupTimeout and KillGrace size activeDeadlineSeconds, the backstop
	// for a try's execution timeout (defaults 5m and 30s).
	StartupTimeout, KillGrace time.Duration
	// LoadTemplate reads a task's template file (default LoadPodTemplate).
	LoadTemplate func(path string) (*corev1.Pod, error)
}

// Builder builds the pods of tries. It caches what tries share (the default
// template merged with each task template file), so that building every pod
// of a large DAG costs little more than copying a pod per task. It is safe for
// concurrent use.
type Builder struct {
	cfg  BuilderConfig
	mu   sync.Mutex
	base map[string]*baseEntry // by template file; "" is the default template
}

type baseEntry struct {
	once sync.Once
	pod  *corev1.Pod
	err  error
}

// DefaultWorkerTemplate is the worker template used when the runner has none.
func DefaultWorkerTemplate() *corev1.Pod {
	return &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers:    []corev1.Container{{Name: BaseContainerName}},
		},
	}
}

// NewBuilder returns a builder. The default template is checked with
// ValidateWorkerTemplate.
func NewBuilder(cfg BuilderConfig) (*Builder, error) {
	if cfg.Template == nil {
		cfg.Template = DefaultWorkerTemplate()
	}
	if err := ValidateWorkerTemplate(cfg.Template); err != nil {
		return nil, fmt.Errorf("default pod template: %w", err)
	}
	if cfg.Mode != StrategicMerge && cfg.Mode != AirflowMerge {
		return nil, fmt.Errorf("unknown merge mode %v", cfg.Mode)
	}
	if cfg.Namespace == "" {
		cfg.Namespace = "default"
	}
	if cfg.StartupTimeout <= 0 {
		cfg.StartupTimeout = 5 * time.Minute
	}
	if cfg.KillGrace <= 0 {
		cfg.KillGrace = 30 * time.Second
	}
	if cfg.LoadTemplate == nil {
		cfg.LoadTemplate = LoadPodTemplate
	}
	if len(cfg.Command) == 0 {
		return nil, errors.New("no command for the team's binary in the image")
	}
	return &Builder{cfg: cfg, base: map[string]*baseEntry{}}, nil
}

// Config returns the builder's configuration with its defaults.
func (b *Builder) Config() BuilderConfig { return b.cfg }

// WorkerSpec is one try of a task that runs in a worker pod.
type WorkerSpec struct {
	// Info is the try's identity; Info.MapIndex is the map index of a mapped
	// task instance (its pod's name, LabelMapIndex, the task-run arguments)
	// and must be -1 for a task that is not mapped, as the scheduler sets it.
	Info task.Info
	// Exec is the task's executor config: template file and override.
	Exec task.ExecutorConfig
	// Timeout is the try's execution timeout (0: none).
	Timeout time.Duration
	// Context is the try's context as JSON (TryContext.Encode); nil renders
	// the pod without it.
	Context []byte
}

// TaskError is a problem building the pod of one task; its message names
// the DAG and the task.
type TaskError struct {
	DAGID, TaskID string
	Err           error
}

func (e *TaskError) Error() string {
	return fmt.Sprintf("dag %q task %q: %v", e.DAGID, e.TaskID, e.Err)
}

func (e *TaskError) Unwrap() error { return e.Err }

func taskErr(info task.Info, format string, args ...any) error {
	return &TaskError{DAGID: info.DAGID, TaskID: info.TaskID, Err: fmt.Errorf(format, args...)}
}

// templateFor returns the default template merged with a task's template
// file, computed once per file.
func (b *Builder) templateFor(file string) (*corev1.Pod, error) {
	b.mu.Lock()
	e := b.base[file]
	if e == nil {
		e = &baseEntry{}
		b.base[file] = e
	}
	b.mu.Unlock()
	e.once.Do(func() {
		if file == "" {
			e.pod = b.cfg.Template
			return
		}
		t, err := b.cfg.LoadTemplate(file)
		if err != nil {
			e.err = err
			return
		}
		if err := ValidateWorkerTemplate(t); err != nil {
			e.err = fmt.Errorf("pod template file %q: %w", file, err)
			return
		}
		e.pod, e.err = MergePod(b.cfg.Template, t, b.cfg.Mode)
	})
	return e.pod, e.err
}

// Worker builds the worker pod of one try: the default template, the task's
// template file, the generated pod, the task's override, then the hooks; the
// result is validated.
func (b *Builder) Worker(ctx context.Context, s WorkerSpec) (*corev1.Pod, error) {
	base, err := b.templateFor(s.Exec.PodTemplateFile)
	if err != nil {
		return nil, &TaskError{DAGID: s.Info.DAGID, TaskID: s.Info.TaskID, Err: err}
	}
	gen := b.generated(s)
	var pod *corev1.Pod
	if b.cfg.Mode == StrategicMerge {
		pod = overlayGenerated(base.DeepCopy(), gen) // the fast paths: what MergePod would do
	} else {
		pod = overlayAirflow(base.DeepCopy(), gen)
	}
	clearBaseArgs(pod)
	if s.Exec.PodOverride != nil {
		if pod, err = MergePod(pod, s.Exec.PodOverride, b.cfg.Mode); err != nil {
			return nil, taskErr(s.Info, "pod override: %v", err)
		}
		if pod.Name != gen.Name {
			return nil, taskErr(s.Info, "pod override: metadata.name is set per try")
		}
	}
	for i := range pod.Spec.Containers {
		if c := &pod.Spec.Containers[i]; c.Name == BaseContainerName && c.Image == "" {
			return nil, taskErr(s.Info, "spec.containers[%d].image: the base container has no image: set the team's image "+
				"(--image, $TRELLIS_IMAGE, KubernetesConfig.Image) or one in the pod template", i)
		}
	}
	return b.finish(ctx, pod, s.Info)
}

// Finish completes a pod that a PodTask built: its name, identity labels
// and annotations, the default namespace and restart policy, then the hooks
// and validation. info.MapIndex is the map index of a mapped task instance
// and must be -1 for a task that is not mapped, as the scheduler sets it.
func (b *Builder) Finish(ctx context.Context, pod *corev1.Pod, info task.Info, timeout time.Duration) (*corev1.Pod, error) {
	if pod == nil {
		return nil, taskErr(info, "the task returned no pod")
	}
	id := b.identity(info)
	pod.Name = id.PodName()
	pod.GenerateName = ""
	if pod.Namespace == "" {
		pod.Namespace = b.cfg.Namespace
	}
	pod.Labels = mergeMap(pod.Labels, id.Labels())
	pod.Annotations = mergeMap(pod.Annotations, id.Annotations())
	pod.Annotations[AnnotationKind] = KindPod
	if pod.Spec.RestartPolicy == "" {
		pod.Spec.RestartPolicy = corev1.RestartPolicyNever
	}
	if timeout > 0 && pod.Spec.ActiveDeadlineSeconds == nil {
		pod.Spec.ActiveDeadlineSeconds = b.deadline(timeout, pod)
	}
	return b.finish(ctx, pod, info)
}

func (b *Builder) identity(info task.Info) TryIdentity {
	return TryIdentity{DAGID: info.DAGID, RunID: info.RunID, TaskID: task.InstanceID(info.TaskID, info.MapIndex),
		Try: info.Try, Instance: b.cfg.Instance}
}

// deadline is activeDeadlineSeconds for a try with an execution timeout:
// the pod's startup timeout, the execution timeout and two kill graces.
func (b *Builder) deadline(timeout time.Duration, pod *corev1.Pod) *int64 {
	startup := b.cfg.StartupTimeout
	if v, ok := pod.Annotations[AnnotationStartupTimeout]; ok {
		if d, err := time.ParseDuration(v); err == nil && d > 0 {
			startup = d
		}
	}
	s := int64(math.Ceil((startup + timeout + 2*b.cfg.KillGrace).Seconds()))
	return &s
}

func (b *Builder) finish(ctx context.Context, pod *corev1.Pod, info task.Info) (*corev1.Pod, error) {
	for i, h := range b.cfg.Hooks {
		if err := h(ctx, pod, info); err != nil {
			return nil, taskErr(info, "mutation hook %d: %v", i+1, err)
		}
	}
	if err := ValidatePod(pod); err != nil {
		return nil, taskErr(info, "invalid pod: %v", err)
	}
	if v, ok := pod.Annotations[AnnotationOnFinish]; ok && !OnFinish(v).Valid() {
		return nil, taskErr(info, "metadata.annotations[%s]: %q is not delete, delete-on-success or keep", AnnotationOnFinish, v)
	}
	if v, ok := pod.Annotations[AnnotationStartupTimeout]; ok {
		if d, err := time.ParseDuration(v); err != nil || d <= 0 {
			return nil, taskErr(info, "metadata.annotations[%s]: %q is not a positive duration", AnnotationStartupTimeout, v)
		}
	}
	if v, ok := pod.Annotations[AnnotationSkipExitCodes]; ok {
		if _, err := ParseExitCodes(v); err != nil {
			return nil, taskErr(info, "metadata.annotations: %v", err)
		}
	}
	if n := annotationsSize(pod.Annotations); n > annotationBudget {
		return nil, taskErr(info, "metadata.annotations: %d bytes, more than the %d the API server accepts", n, annotationBudget)
	}
	return pod, nil
}

func annotationsSize(m map[string]string) int {
	n := 0
	for k, v := range m {
		n += len(k) + len(v)
	}
	return n
}

// WorkerArgs returns the task-run arguments of a try, after the binary;
// "--map-index k" follows the task's id for a mapped task instance
// (info.MapIndex >= 0).
func WorkerArgs(info task.Info) []string {
	args := make([]string, 0, 13)
	args = append(args, TaskRunCommand, "--dag", info.DAGID, "--run", info.RunID, "--task", info.TaskID)
	if info.MapIndex >= 0 {
		args = append(args, "--map-index", strconv.Itoa(info.MapIndex))
	}
	return append(args, "--try", strconv.Itoa(info.Try), "--context", ContextFile)
}

// generated returns the layer the runner owns in a worker pod.
func (b *Builder) generated(s WorkerSpec) *corev1.Pod {
	id := b.identity(s.Info)
	annotations := id.Annotations()
	annotations[AnnotationKind] = KindWorker
	if s.Context != nil {
		annotations[AnnotationContext] = string(s.Context)
	}
	command := append(append(make([]string, 0, len(b.cfg.Command)+13), b.cfg.Command...), WorkerArgs(s.Info)...)
	env := []corev1.EnvVar{
		{Name: "TRELLIS_DAG_ID", Value: s.Info.DAGID},
		{Name: "TRELLIS_TASK_ID", Value: s.Info.TaskID},
		{Name: "TRELLIS_RUN_ID", Value: s.Info.RunID},
		{Name: "TRELLIS_TRY_NUMBER", Value: strconv.Itoa(s.Info.Try)},
	}
	if s.Info.MapIndex >= 0 {
		env = append(env, corev1.EnvVar{Name: "TRELLIS_MAP_INDEX", Value: strconv.Itoa(s.Info.MapIndex)})
	}
	pod := &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			Name: id.PodName(), Namespace: b.cfg.Namespace,
			Labels: id.Labels(), Annotations: annotations,
		},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{
				Name:                     BaseContainerName,
				Image:                    b.cfg.Image,
				Command:                  command,
				Env:                      env,
				VolumeMounts:             []corev1.VolumeMount{{Name: ContextVolume, MountPath: ContextDir, ReadOnly: true}},
				TerminationMessagePath:   TerminationLog,
				TerminationMessagePolicy: corev1.TerminationMessageReadFile,
			}},
			Volumes: []corev1.Volume{{Name: ContextVolume, VolumeSource: corev1.VolumeSource{
				DownwardAPI: &corev1.DownwardAPIVolumeSource{Items: []corev1.DownwardAPIVolumeFile{{
					Path:     "context.json",
					FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.annotations['" + AnnotationContext + "']"},
				}}},
			}}},
		},
	}
	if s.Timeout > 0 {
		pod.Spec.ActiveDeadlineSeconds = b.deadline(s.Timeout, pod)
	}
	return pod
}

// overlayGenerated applies the generated layer to a copy of the template
// exactly as MergePod(template, gen, StrategicMerge) would, without the
// round trip through unstructured maps: maps merged key by key, lists
// merged on their merge keys (base order kept, new elements appended),
// scalars set when non-zero. It handles only the fields generated sets
// (TestOverlayMatchesMergePod holds it to that).
func overlayGenerated(pod, gen *corev1.Pod) *corev1.Pod {
	pod.APIVersion, pod.Kind = gen.APIVersion, gen.Kind
	pod.Name = gen.Name
	if gen.Namespace != "" {
		pod.Namespace = gen.Namespace
	}
	pod.Labels = mergeMap(pod.Labels, gen.Labels)
	pod.Annotations = mergeMap(pod.Annotations, gen.Annotations)
	pod.Spec.RestartPolicy = gen.Spec.RestartPolicy
	if gen.Spec.ActiveDeadlineSeconds != nil {
		v := *gen.Spec.ActiveDeadlineSeconds
		pod.Spec.ActiveDeadlineSeconds = &v
	}
	for _, v := range gen.Spec.Volumes {
		if i := indexVolume(pod.Spec.Volumes, v.Name); i >= 0 {
			// $retainKeys: the generated source replaces the template's.
			pod.Spec.Volumes[i] = *v.DeepCopy()
		} else {
			pod.Spec.Volumes = append(pod.Spec.Volumes, *v.DeepCopy())
		}
	}
	g := &gen.Spec.Containers[0]
	i := -1
	for j := range pod.Spec.Containers {
		if pod.Spec.Containers[j].Name == g.Name {
			i = j
			break
		}
	}
	if i < 0 {
		pod.Spec.Containers = append(pod.Spec.Containers, *g.DeepCopy())
		return pod
	}
	c := &pod.Spec.Containers[i]
	if g.Image != "" {
		c.Image = g.Image
	}
	c.Command = append([]string(nil), g.Command...)
	c.TerminationMessagePath, c.TerminationMessagePolicy = g.TerminationMessagePath, g.TerminationMessagePolicy
	for _, e := range g.Env {
		if k := indexEnv(c.Env, e.Name); k >= 0 {
			c.Env[k].Value = e.Value // strategic merge keeps the template's other fields
		} else {
			c.Env = append(c.Env, e)
		}
	}
	for _, m := range g.VolumeMounts {
		found := false
		for k := range c.VolumeMounts {
			if c.VolumeMounts[k].MountPath == m.MountPath {
				c.VolumeMounts[k].Name, c.VolumeMounts[k].ReadOnly = m.Name, m.ReadOnly || c.VolumeMounts[k].ReadOnly
				found = true
				break
			}
		}
		if !found {
			c.VolumeMounts = append(c.VolumeMounts, m)
		}
	}
	return pod
}

// clearBaseArgs drops the base container's args: the generated command is
// the whole command line of the try.
func clearBaseArgs(pod *corev1.Pod) {
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == BaseContainerName {
			pod.Spec.Containers[i].Args = nil
		}
	}
}

func indexVolume(vs []corev1.Volume, name string) int {
	for i := range vs {
		if vs[i].Name == name {
			return i
		}
	}
	return -1
}

func indexEnv(env []corev1.EnvVar, name string) int {
	for i := range env {
		if env[i].Name == name {
			return i
		}
	}
	return -1
}

// mergeMap returns base with over's keys set; base may be nil or shared
// (it is copied).
func mergeMap(base, over map[string]string) map[string]string {
	out := make(map[string]string, len(base)+len(over))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		out[k] = v
	}
	return out
}

// overlayAirflow applies the generated layer to a copy of the template
// exactly as MergePod(template, gen, AirflowMerge) would (Airflow's
// reconcile_pods): labels and annotations merged; the first containers
// paired by position, their env and volume mounts appended, the generated
// non-empty fields replacing the template's; volumes appended; the other
// generated non-empty fields replacing. TestOverlayMatchesMergePod holds it
// to that.
func overlayAirflow(pod, gen *corev1.Pod) *corev1.Pod {
	pod.APIVersion, pod.Kind = gen.APIVersion, gen.Kind
	pod.Name = gen.Name
	if gen.Namespace != "" {
		pod.Namespace = gen.Namespace
	}
	pod.Labels = mergeMap(pod.Labels, gen.Labels)
	pod.Annotations = mergeMap(pod.Annotations, gen.Annotations)
	pod.Spec.RestartPolicy = gen.Spec.RestartPolicy
	if v := gen.Spec.ActiveDeadlineSeconds; v != nil && *v != 0 {
		d := *v
		pod.Spec.ActiveDeadlineSeconds = &d
	}
	for _, v := range gen.Spec.Volumes {
		pod.Spec.Volumes = append(pod.Spec.Volumes, *v.DeepCopy())
	}
	g := gen.Spec.Containers[0].DeepCopy()
	if len(pod.Spec.Containers) == 0 {
		pod.Spec.Containers = []corev1.Container{*g}
		return pod
	}
	c := &pod.Spec.Containers[0]
	c.Name = g.Name
	if g.Image != "" {
		c.Image = g.Image
	}
	c.Command = g.Command
	c.TerminationMessagePath, c.TerminationMessagePolicy = g.TerminationMessagePath, g.TerminationMessagePolicy
	c.Env = append(c.Env, g.Env...)
	c.VolumeMounts = append(c.VolumeMounts, g.VolumeMounts...)
	return pod
}
