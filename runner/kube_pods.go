package runner

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/executor"
	"github.com/trellisdag/trellis/executor/local"
	"github.com/trellisdag/trellis/k8s"
	"github.com/trellisdag/trellis/task"
)

// kubeOptions are the choices of the commands that run tries: the default
// executor and the cluster.
type kubeOptions struct {
	executor, kubeconfig, context, namespace, image, template, instance string
	qps, burst                                                          string // client limits ("" = default)
}

// kubeDefaults are the options of a command that has no flags for them: the
// environment ($TRELLIS_EXECUTOR, $TRELLIS_NAMESPACE, $TRELLIS_IMAGE,
// $TRELLIS_POD_TEMPLATE, $TRELLIS_INSTANCE, $TRELLIS_KUBE_QPS,
// $TRELLIS_KUBE_BURST), else the runner's configuration.
func (r *Runner) kubeDefaults() kubeOptions {
	k := r.cfg.Kubernetes
	env := func(name, def string) string {
		if v := r.cfg.Getenv(name); v != "" {
			return v
		}
		return def
	}
	qps, burst := "", ""
	if k.QPS > 0 {
		qps = strconv.FormatFloat(float64(k.QPS), 'g', -1, 32)
	}
	if k.Burst > 0 {
		burst = strconv.Itoa(k.Burst)
	}
	return kubeOptions{
		executor: env("TRELLIS_EXECUTOR", "local"), kubeconfig: k.Kubeconfig, context: k.Context,
		namespace: env("TRELLIS_NAMESPACE", k.Namespace), image: env("TRELLIS_IMAGE", k.Image),
		template: env("TRELLIS_POD_TEMPLATE", k.PodTemplateFile), instance: env("TRELLIS_INSTANCE", k.Instance),
		qps: env("TRELLIS_KUBE_QPS", qps), burst: env("TRELLIS_KUBE_BURST", burst),
	}
}

// addKubeFlags registers --executor and the cluster flags on a command (those
// the command does not define already) and returns the options once parsed.
func (r *Runner) addKubeFlags(f *flags) func() kubeOptions {
	d := r.kubeDefaults()
	defs := []struct{ name, def, usage string }{
		{"executor", d.executor, "where Go and Bash tasks run: local (this process) or kubernetes (a pod per try)"},
		{"kubeconfig", d.kubeconfig, "kubeconfig file (default $KUBECONFIG, ~/.kube/config, or in-cluster)"},
		{"context", d.context, "kubeconfig context (default: the current one)"},
		{"namespace", d.namespace, "namespace of the pods (default: the context's)"},
		{"image", d.image, "the team's image (this binary) for worker pods"},
		{"pod-template", d.template, "default worker pod template file"},
		{"instance", d.instance, "runner instance that owns the pods (default: from the binary and database)"},
		{"kube-qps", d.qps, fmt.Sprintf("queries per second of the Kubernetes client (default %d)", DefaultQPS)},
		{"kube-burst", d.burst, fmt.Sprintf("burst of the Kubernetes client (default %d)", DefaultBurst)},
	}
	for _, x := range defs {
		if f.fs.Lookup(x.name) == nil {
			f.fs.String(x.name, x.def, x.usage)
		}
	}
	return func() kubeOptions {
		get := func(name string) string { return f.fs.Lookup(name).Value.String() }
		return kubeOptions{executor: get("executor"), kubeconfig: get("kubeconfig"), context: get("context"),
			namespace: get("namespace"), image: get("image"), template: get("pod-template"), instance: get("instance"),
			qps: get("kube-qps"), burst: get("kube-burst")}
	}
}

// check checks the options that need no cluster and returns the executor.
func (o kubeOptions) check() (task.ExecutorKind, error) {
	kind, err := o.executorKind()
	if err != nil {
		return "", err
	}
	if _, _, err := o.limits(); err != nil {
		return "", err
	}
	return kind, nil
}

// executorKind checks the executor option.
func (o kubeOptions) executorKind() (task.ExecutorKind, error) {
	switch o.executor {
	case "local", "":
		return task.ExecutorLocal, nil
	case "kubernetes", "k8s":
		return task.ExecutorKubernetes, nil
	}
	return "", usagef("--executor %q: want local or kubernetes", o.executor)
}

// needsKube reports whether the DAGs have tasks that run in pods whatever the
// default executor is.
func needsKube(dags []*dag.DAG) bool {
	for _, d := range dags {
		for _, t := range d.Tasks() {
			if task.SettingsOf(t).ExecutorFor(task.ExecutorLocal) == task.ExecutorKubernetes {
				return true
			}
		}
	}
	return false
}

// instanceID is the default runner instance: this binary's name and a hash of
// the database's absolute path, so that a restarted runner on the same
// database adopts its pods and two runners on different databases never touch
// each other's.
func instanceID(db string) string {
	name := strings.ToLower(progName())
	if len(name) > 40 {
		name = name[:40]
	}
	return k8s.LabelValue(name + "-" + dbHash(db))
}

// dbHash is a short hash of the database's absolute path: it tells runners on
// different databases apart (pods, process markers).
func dbHash(db string) string {
	// A file's absolute path; a DSN's database identity (host, database,
	// schema), never its user, password or options, so replicas and the
	// CLI agree whatever their working directory or credentials.
	sum := sha256.Sum256([]byte(dbIdentity(db)))
	return hex.EncodeToString(sum[:5])
}

// kubeSetup is what a command needs to build pods: the builder and the
// options the executor gets.
type kubeSetup struct {
	r         *Runner
	builder   *k8s.Builder
	namespace string
	instance  string
}

// newKubeSetup builds the pod builder. It reads the kubeconfig only for the
// namespace; it does not contact a cluster.
func (r *Runner) newKubeSetup(o kubeOptions, db string) (*kubeSetup, error) {
	k := r.cfg.Kubernetes
	ns := o.namespace
	if ns == "" {
		ns = kubeNamespace(o.kubeconfig, o.context)
	}
	instance := o.instance
	if instance == "" {
		instance = instanceID(db)
	}
	tmpl := k.PodTemplate
	if tmpl == nil && o.template != "" {
		var err error
		if tmpl, err = k8s.LoadPodTemplate(o.template); err != nil {
			return nil, &UsageError{err}
		}
	}
	command := r.workerCommand()
	hooks := make([]k8s.Hook, len(k.MutationHooks))
	for i, h := range k.MutationHooks {
		hooks[i] = k8s.Hook(h)
	}
	b, err := k8s.NewBuilder(k8s.BuilderConfig{Template: tmpl, Image: o.image, Command: command, Namespace: ns,
		Instance: instance, Mode: k.MergeMode, Hooks: hooks, StartupTimeout: k.StartupTimeout, KillGrace: k.KillGrace})
	if err != nil {
		return nil, &UsageError{err}
	}
	return &kubeSetup{r: r, builder: b, namespace: ns, instance: instance}, nil
}

// workerCommand is this binary's command inside the team's image, which every
// worker pod runs: $TRELLIS_WORKER_COMMAND, else KubernetesConfig.Command, else
// /usr/local/bin/<this binary's name>. The Dockerfile and the manifests that
// `manifests` prints use the same path.
func (r *Runner) workerCommand() []string {
	if v := strings.Fields(r.cfg.Getenv("TRELLIS_WORKER_COMMAND")); len(v) > 0 {
		return v
	}
	if c := r.cfg.Kubernetes.Command; len(c) > 0 {
		return c
	}
	return []string{"/usr/local/bin/" + workerBinaryName()}
}

// workerBinaryName is this binary's file name.
func workerBinaryName() string {
	if exe, err := os.Executable(); err == nil {
		return filepath.Base(exe)
	}
	return progName()
}

// buildPod builds the pod of one try: the task's own pod for a PodTask, else
// a worker pod that runs this binary's task-run. withInputs hands the try its
// upstream results (render leaves them out).
func (ks *kubeSetup) buildPod(ctx context.Context, t executor.Try, withInputs bool) (*corev1.Pod, error) {
	t = withMapIndex(t)
	if pt, ok := t.Task.(k8s.PodTask); ok {
		run := task.NewRun(t.Task, t.Info, t.Params, t.Conf, t.Inputs, nil)
		pod, err := pt.Pod(ctx, run)
		if err != nil {
			return nil, &k8s.TaskError{DAGID: t.DAGID, TaskID: t.TaskID, Err: err}
		}
		return ks.builder.Finish(ctx, pod, t.Info, t.Timeout)
	}
	b, err := tryContext(t, withInputs)
	if err != nil {
		return nil, &k8s.TaskError{DAGID: t.DAGID, TaskID: t.TaskID, Err: err}
	}
	return ks.builder.Worker(ctx, k8s.WorkerSpec{Info: t.Info, Exec: task.SettingsOf(t.Task).Executor, Timeout: t.Timeout, Context: b})
}

// withMapIndex returns t with Info.MapIndex as the pod builder reads it: -1
// for a task that is not mapped (whatever the caller left there), else the
// index of Key.TaskID when it is an instance id ("resize[3]").
func withMapIndex(t executor.Try) executor.Try {
	if _, mapped := task.MappingOf(t.Task); !mapped {
		t.Info.MapIndex = -1
		return t
	}
	if _, k := task.ParseInstanceID(t.Key.TaskID); k >= 0 {
		t.Info.MapIndex = k
	}
	return t
}

// tryContext is what a worker (a pod, or an isolated try's child) needs of a
// try, as the JSON its task-run reads: the try, its conf and timeout, and with
// withInputs the results of its direct upstream tasks.
//
// A mapped task instance's context also carries its map index and element
// (task.ItemOf the try's inputs, else read from the list it is mapped over),
// so that the worker's run has MapIndex and Item. When the whole list it is
// mapped over makes the context too large for a pod, the list is left out:
// the element is what the instance needs.
func tryContext(t executor.Try, withInputs bool) ([]byte, error) {
	t = withMapIndex(t)
	tc := k8s.NewTryContext(t.Info, t.Conf, t.Timeout)
	m, mapped := task.MappingOf(t.Task)
	if mapped && t.Info.MapIndex >= 0 {
		if item, ok := task.ItemOf(t.Inputs); ok {
			tc.Item = item
		} else if withInputs {
			item, err := task.NewRun(t.Task, t.Info, t.Params, t.Conf, t.Inputs, nil).Item()
			if err != nil {
				return nil, fmt.Errorf("the element of %s: %w", task.InstanceID(t.Info.TaskID, t.Info.MapIndex), err)
			}
			tc.Item = item
		}
	}
	if withInputs && t.Inputs != nil {
		for _, up := range task.Upstream(t.Task) {
			raw, ok, err := t.Inputs.Result(up.ID())
			if err != nil {
				return nil, fmt.Errorf("read the result of %q: %w", up.ID(), err)
			}
			if ok {
				if tc.Inputs == nil {
					tc.Inputs = map[string]json.RawMessage{}
				}
				tc.Inputs[up.ID()] = json.RawMessage(raw)
			}
		}
	}
	b, err := tc.Encode()
	if errors.Is(err, k8s.ErrTooLarge) && mapped && m.Over != "" && tc.Item != nil && tc.Inputs[m.Over] != nil {
		delete(tc.Inputs, m.Over)
		return tc.Encode()
	}
	return b, err
}

// localChild is the command of an isolated try (local.Config.Child): this
// binary's task-run, as a worker pod runs it, with the try's context in dir.
func localChild(_ context.Context, t executor.Try, dir string) (*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("this binary's path: %w", err)
	}
	b, err := tryContext(t, true)
	if err != nil {
		return nil, err
	}
	ctxFile := filepath.Join(dir, "context.json")
	if err := os.WriteFile(ctxFile, b, 0o600); err != nil {
		return nil, err
	}
	t = withMapIndex(t)
	args := []string{"task-run", "--dag", t.DAGID, "--run", t.RunID, "--task", t.Info.TaskID}
	if t.Info.MapIndex >= 0 {
		args = append(args, "--map-index", strconv.Itoa(t.Info.MapIndex))
	}
	args = append(args, "--try", strconv.Itoa(t.Try), "--context", ctxFile, "--result-file", filepath.Join(dir, local.ChildResultFile))
	return exec.Command(exe, args...), nil
}

// isolate says whether a try runs in a child process: a Go task with
// task.Isolated, of a DAG with dag.Isolated, or every Go task with
// Config.IsolateGoTasks ($TRELLIS_ISOLATE).
func (r *Runner) isolate(t executor.Try) bool {
	set := task.SettingsOf(t.Task)
	if set.Kind != task.KindGo && set.Kind != task.KindBranch {
		return false
	}
	if d, err := r.dag(t.DAGID); err == nil && d.IsolatedTasks() {
		return true
	}
	if env, err := strconv.ParseBool(r.cfg.Getenv("TRELLIS_ISOLATE")); err == nil {
		return set.Isolated || env
	}
	return set.Isolated || r.cfg.IsolateGoTasks
}

// errNoCluster wraps what was tried when no cluster can be configured or reached.
var errNoCluster = errors.New("no reachable Kubernetes cluster")
