// Command standbydag holds the DAG of the hot standby test on a real cluster
// (e2e/standby_test.go): two `serve` processes on one PostgreSQL database, the
// active one killed with -9 while task pods run.
//
// seed (a Go task in a worker pod) returns the name of its pod. hold_a and
// hold_b (PodOperators, after seed) each print a line, then wait until the
// test creates its marker file, $E2E_STANDBY_DIR/release-<name> in the
// runner's environment, mounted into the pod as a hostPath directory (the
// node is this machine); a pod that sees no marker within 5 minutes fails.
// Each returns its name with seed's result. join (a Go task in a worker pod)
// reads the three results.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/k8s"
	"github.com/trellisdag/trellis/operators"
	"github.com/trellisdag/trellis/runner"
	"github.com/trellisdag/trellis/task"
)

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

var (
	busybox = envOr("TRELLIS_KUBE_BUSYBOX_IMAGE", "trellis.local/busybox:1")
	// markers is the directory of the release markers on the node. A worker
	// pod (seed, join) does not read it.
	markers = envOr("E2E_STANDBY_DIR", "/nonexistent-e2e-standby-dir")
)

var standby = dag.New("e2e_standby", dag.DefaultRetries(0, 0))

// hold is a PodOperator whose pod runs until the test releases it.
func hold(name string) *operators.PodTask[string] {
	dir := corev1.HostPathDirectory
	return operators.PodOf[string]("hold_"+name, operators.PodSpec{
		Image:           busybox,
		ImagePullPolicy: corev1.PullIfNotPresent,
		Command: []string{"sh", "-c", `echo "hold {{ .TaskID }} try {{ .TryNumber }} waits for $MARK"; i=0; ` +
			`while [ ! -e "$MARK" ]; do i=$((i+1)); if [ $i -gt 1500 ]; then echo "no $MARK after 5 minutes"; exit 9; fi; sleep 0.2; done; ` +
			`echo "released"; mkdir -p /airflow/xcom; printf '"%s after %s"' "$NAME" "$SEED" > /airflow/xcom/return.json`},
		Env: []corev1.EnvVar{{Name: "MARK", Value: "/markers/release-" + name}, {Name: "NAME", Value: name},
			{Name: "SEED", Value: `{{ .Result "seed" }}`}},
		Volumes: []corev1.Volume{{Name: "markers", VolumeSource: corev1.VolumeSource{
			HostPath: &corev1.HostPathVolumeSource{Path: markers, Type: &dir}}}},
		VolumeMounts: []corev1.VolumeMount{{Name: "markers", MountPath: "/markers", ReadOnly: true}},
		ResultPath:   "/airflow/xcom/return.json",
	})
}

var (
	seed = task.Go("seed", func(ctx context.Context, r *task.Run) (string, error) {
		return os.Hostname() // the worker pod's name
	})
	holdA = hold("a")
	holdB = hold("b")
	join  = task.Go("join", func(ctx context.Context, r *task.Run) (string, error) {
		s, err := task.Output(r, seed)
		if err != nil {
			return "", err
		}
		a, err := task.Output(r, holdA)
		if err != nil {
			return "", err
		}
		b, err := task.Output(r, holdB)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("seed %s; %s; %s", s, a, b), nil
	})
)

func init() {
	standby.Add(seed, holdA, holdB, join)
	seed.Then(holdA, holdB, join)
	holdA.Then(join)
	holdB.Then(join)
}

func main() {
	runner.New(runner.Config{Kubernetes: runner.KubernetesConfig{
		ImagePullGrace: 3 * time.Second,
		KillGrace:      2 * time.Second,
		Cleanup:        k8s.OnFinishDeleteOnSuccess,
	}}, standby).Main()
}
