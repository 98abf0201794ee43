// Command kubedag holds the DAGs of the end-to-end tests against a real
// cluster (see e2e/kube_test.go).
package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/k8s"
	"github.com/trellisdag/trellis/operators"
	"github.com/trellisdag/trellis/runner"
	"github.com/trellisdag/trellis/task"
)

// Count is what the PodOperator pushes as its result.
type Count struct {
	Files int    `json:"files"`
	Greet string `json:"greet"`
}

var busybox = envOr("TRELLIS_KUBE_BUSYBOX_IMAGE", "trellis.local/busybox:1")

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// podDAG: a PodOperator with env, a volume and a pushed result, read by a Go
// task and by another PodOperator's templates; a PodOperator whose exit code
// skips it, and the task after it.
var podDAG = dag.New("e2e_pod", dag.DefaultRetries(0, 0))

var (
	count = operators.PodOf[Count]("count", operators.PodSpec{
		Image:           busybox,
		ImagePullPolicy: corev1.PullIfNotPresent,
		Command: []string{"sh", "-c", `mkdir -p /airflow/xcom; touch /work/a /work/b /work/c; echo "greeting is $GREET"; ` +
			`printf '{"files": %d, "greet": "%s"}' $(ls /work | wc -l) "$GREET" > /airflow/xcom/return.json`},
		Env:          []corev1.EnvVar{{Name: "GREET", Value: "hello {{ .DS }}"}},
		Volumes:      []corev1.Volume{{Name: "work", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
		VolumeMounts: []corev1.VolumeMount{{Name: "work", MountPath: "/work"}},
		ResultPath:   "/airflow/xcom/return.json",
		OnFinish:     k8s.OnFinishDelete,
	})
	consume = task.Go("consume", func(ctx context.Context, r *task.Run) (string, error) {
		c, err := task.Output(r, count)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%d files, %s", c.Files, c.Greet), nil
	})
	// Airflow's {{ ti.xcom_pull('count')['files'] }} in a command and an env var.
	relay = operators.Pod("relay", operators.PodSpec{
		Image:           busybox,
		ImagePullPolicy: corev1.PullIfNotPresent,
		Command:         []string{"sh", "-c", `printf '{"files": {{ (.Result "count").files }}, "raw": %s}' "$COUNT" > /airflow/xcom/return.json`},
		Env:             []corev1.EnvVar{{Name: "COUNT", Value: `{{ .Output "count" }}`}},
		ResultPath:      "/airflow/xcom/return.json",
	})
	maybe = operators.Pod("maybe", operators.PodSpec{
		Image:           busybox,
		ImagePullPolicy: corev1.PullIfNotPresent,
		Command:         []string{"sh", "-c", "echo nothing to do today; exit 42"},
		SkipOnExitCodes: []int{42},
	})
	afterMaybe = task.Go("after_maybe", func(ctx context.Context, r *task.Run) (int, error) { return 1, nil })
)

// failDAG: a Bash task that exits 3, retried once.
var failDAG = dag.New("e2e_fail")

var failing = operators.Bash("exit3", `echo "about to fail"; exit 3`, task.Retries(1), task.RetryDelay(0))

// imageDAG: an image that does not exist.
var imageDAG = dag.New("e2e_image", dag.DefaultRetries(0, 0))

var badImage = operators.Pod("bad_image", operators.PodSpec{Image: "trellis.local/does-not-exist:1",
	ImagePullPolicy: corev1.PullIfNotPresent, Command: []string{"true"}})

// slowDAG: worker pods that wait before they run (an init container) and
// tasks that run for a while, for deletion and restart tests.
var slowDAG = dag.New("e2e_slow", dag.DefaultRetries(0, 0),
	dag.Params(dag.Param{Name: "seconds", Default: 4.0}))

var initWait = &corev1.Pod{Spec: corev1.PodSpec{InitContainers: []corev1.Container{{
	Name: "wait", Image: busybox, ImagePullPolicy: corev1.PullIfNotPresent, Command: []string{"sleep", envOr("E2E_INIT_SLEEP", "3")}}}}}

var (
	first = task.Go("first", func(ctx context.Context, r *task.Run) (int, error) {
		secs, _ := r.Params()["seconds"].(float64)
		for i := 0; i < int(secs); i++ {
			fmt.Fprintf(r.Output(), "tick %d\n", i)
			select {
			case <-ctx.Done():
				return 0, ctx.Err()
			case <-time.After(time.Second):
			}
		}
		return 7, nil
	}, task.Executor(task.ExecutorConfig{PodOverride: initWait}))
	second = task.Go("second", func(ctx context.Context, r *task.Run) (string, error) {
		n, err := task.Output(r, first)
		if err != nil {
			return "", err
		}
		return "got " + strconv.Itoa(n), nil
	})
)

// mapDAG: a PodOperator mapped over a Go task's list (one pod per element;
// element 2 fails its first try and succeeds on its retry), a Go task mapped
// over the same list in worker pods, and a Go task reducing both.
var mapDAG = dag.New("e2e_map", dag.DefaultRetries(0, 0))

// Part is an element of the list mapped over.
type Part struct {
	Name string `json:"name"`
	N    int    `json:"n"`
}

// Square is what each instance of the mapped PodOperator pushes.
type Square struct {
	Name   string `json:"name"`
	Square int    `json:"square"`
	Index  int    `json:"index"`
	Try    int    `json:"try"`
}

var (
	parts = task.Go("parts", func(ctx context.Context, r *task.Run) ([]Part, error) {
		return []Part{{"a", 1}, {"b", 2}, {"c", 3}, {"d", 4}}, nil
	})
	square = operators.PodOf[Square]("square", operators.PodSpec{
		Image:           busybox,
		ImagePullPolicy: corev1.PullIfNotPresent,
		Command: []string{"sh", "-c", `if [ {{ .MapIndex }} -eq 2 ] && [ {{ .TryNumber }} -eq 1 ]; then echo "element {{ .MapIndex }} fails its first try"; exit 4; fi; ` +
			`mkdir -p /airflow/xcom; printf '{"name": "%s", "square": %d, "index": %d, "try": %d}' "$PART" $(( {{ .Item.n }} * {{ .Item.n }} )) {{ .MapIndex }} {{ .TryNumber }} > /airflow/xcom/return.json`},
		Env:        []corev1.EnvVar{{Name: "PART", Value: "{{ .Item.name }}"}},
		ResultPath: "/airflow/xcom/return.json",
	}, task.MapOver(parts), task.Retries(1), task.RetryDelay(0))
	label = task.Map("label", parts, func(ctx context.Context, r *task.Run, p Part) (string, error) {
		return fmt.Sprintf("%d:%s", r.MapIndex(), p.Name), nil
	})
	total = task.Go("total", func(ctx context.Context, r *task.Run) (string, error) {
		squares, err := task.MappedOutput(r, square)
		if err != nil {
			return "", err
		}
		labels, err := task.Output(r, label)
		if err != nil {
			return "", err
		}
		sum, tries := 0, make([]string, len(squares))
		for i, s := range squares {
			if s.Index != i {
				return "", fmt.Errorf("result %d is element %d's", i, s.Index)
			}
			sum += s.Square
			tries[i] = s.Name + strconv.Itoa(s.Try)
		}
		return fmt.Sprintf("sum %d tries %s labels %s", sum, strings.Join(tries, ","), strings.Join(labels, ",")), nil
	})
)

// mapSlowDAG: a PodOperator mapped over a literal list whose pods run for a
// while, and a Go task gathering their results, for the restart test.
var mapSlowDAG = dag.New("e2e_map_slow", dag.DefaultRetries(0, 0),
	dag.Params(dag.Param{Name: "seconds", Default: 4.0}))

var (
	hold = operators.PodOf[string]("hold", operators.PodSpec{
		Image:           busybox,
		ImagePullPolicy: corev1.PullIfNotPresent,
		Command: []string{"sh", "-c", `echo "start {{ .Item }}"; sleep {{ .Params.seconds }}; ` +
			`mkdir -p /airflow/xcom; printf '"%s-%d"' {{ .Item }} {{ .MapIndex }} > /airflow/xcom/return.json`},
		ResultPath: "/airflow/xcom/return.json",
	}, task.MapItems("x", "y", "z"))
	gather = task.Go("gather", func(ctx context.Context, r *task.Run) (string, error) {
		got, err := task.MappedOutput(r, hold)
		if err != nil {
			return "", err
		}
		return "gathered " + strings.Join(got, ","), nil
	})
)

func init() {
	mapDAG.Add(parts, square, label, total)
	square.Then(total)
	label.Then(total)
	mapSlowDAG.Add(hold, gather)
	hold.Then(gather)
	podDAG.Add(count, consume, relay, maybe, afterMaybe)
	count.Then(consume, relay)
	maybe.Then(afterMaybe)
	failDAG.Add(failing)
	imageDAG.Add(badImage)
	slowDAG.Add(first, second)
	first.Then(second)
}

func main() {
	runner.New(runner.Config{Kubernetes: runner.KubernetesConfig{
		ImagePullGrace: 3 * time.Second,
		KillGrace:      2 * time.Second,
		Cleanup:        k8s.OnFinishDeleteOnSuccess,
	}}, podDAG, failDAG, imageDAG, slowDAG, mapDAG, mapSlowDAG).Main()
}
