package runner_test

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/operators"
	"github.com/trellisdag/trellis/runner"
	"github.com/trellisdag/trellis/task"
)

var updateRender = flag.Bool("update", false, "rewrite the golden files under testdata/render")

// airflowDocsDAG holds the examples of Airflow's KubernetesExecutor and
// KubernetesPodOperator docs, written as trellis tasks.
func airflowDocsDAG() *dag.DAG {
	d := dag.New("airflow_docs", dag.DefaultRetries(1, 0))
	noop := func(context.Context, *task.Run) (string, error) { return "", nil }
	// A Go task whose override adds a hostPath volume test-volume mounted at /foo/.
	volumeTask := task.Go("volume_override", noop, task.Executor(task.ExecutorConfig{PodOverride: &corev1.Pod{
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "base", VolumeMounts: []corev1.VolumeMount{{MountPath: "/foo/", Name: "test-volume"}}}},
			Volumes: []corev1.Volume{{Name: "test-volume", VolumeSource: corev1.VolumeSource{
				HostPath: &corev1.HostPathVolumeSource{Path: "/tmp/"}}}},
		},
	}}))
	// A task with a template file plus an override adding the label release=stable.
	templateTask := task.Go("template_and_override", noop, task.Executor(task.ExecutorConfig{
		PodTemplateFile: "testdata/render/basic_template.yaml",
		PodOverride:     &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"release": "stable"}}},
	}))
	// A PodOperator with a PVC test-volume mounted read-only at /etc/foo and env key1, key2.
	pvcPod := operators.Pod("pvc_pod", operators.PodSpec{
		Image:   "trellis.local/busybox:1",
		Command: []string{"sh", "-c", "ls /etc/foo; echo {{ .DS }}"},
		Env:     []corev1.EnvVar{{Name: "key1", Value: "value1"}, {Name: "key2", Value: "value2"}},
		Volumes: []corev1.Volume{{Name: "test-volume", VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "test-volume"}}}},
		VolumeMounts: []corev1.VolumeMount{{Name: "test-volume", MountPath: "/etc/foo", ReadOnly: true}},
	})
	// A PodOperator with a template file plus a full pod spec (labels foo, fizz;
	// env env_name) plus env.
	fullPod := operators.Pod("template_full_pod_env", operators.PodSpec{
		PodTemplateFile: "testdata/render/kpo_template.yaml",
		Pod: &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"foo": "bar", "fizz": "buzz"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "base",
				Env: []corev1.EnvVar{{Name: "env_name", Value: "value"}}}}},
		},
		Env:        []corev1.EnvVar{{Name: "env_name", Value: "from operator {{ .RunID }}"}, {Name: "extra", Value: "1"}},
		ResultPath: "/airflow/xcom/return.json",
	})
	d.Add(volumeTask, templateTask, pvcPod, fullPod)
	return d
}

// TestRenderGolden renders the pods of the Airflow docs examples (and the docs'
// pod_template_file as the runner's default template) and compares them with
// testdata/render/*.golden. Run with -update to rewrite them.
func TestRenderGolden(t *testing.T) {
	cases := []struct{ name, task, template string }{
		{"pod_template_file", "volume_override", "testdata/render/pod_template_file.yaml"},
		{"volume_override", "volume_override", ""},
		{"template_and_override", "template_and_override", ""},
		{"pvc_pod", "pvc_pod", ""},
		{"template_full_pod_env", "template_full_pod_env", "testdata/render/pod_template_file.yaml"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr strings.Builder
			env := map[string]string{"TRELLIS_IMAGE": "trellis.local/etl:1", "TRELLIS_WORKER_COMMAND": "/usr/local/bin/etl",
				"TRELLIS_INSTANCE": "etl-prod", "TRELLIS_NAMESPACE": "data"}
			r := runner.New(runner.Config{Stdout: &stdout, Stderr: &stderr, Getenv: func(k string) string { return env[k] }}, airflowDocsDAG())
			args := []string{"render", "airflow_docs", c.task, "--logical-date", "2024-03-01", "--kubeconfig", "/nonexistent"}
			if c.template != "" {
				args = append(args, "--pod-template", c.template)
			}
			if code := r.Run(context.Background(), args); code != 0 {
				t.Fatalf("render exited %d: %s", code, stderr.String())
			}
			golden := filepath.Join("testdata", "render", c.name+".golden")
			if *updateRender {
				if err := os.WriteFile(golden, []byte(stdout.String()), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			if stdout.String() != string(want) {
				t.Errorf("render %s differs from %s (-update to accept):\n%s", c.task, golden, stdout.String())
			}
		})
	}
}

func TestRenderErrors(t *testing.T) {
	bad := dag.New("bad")
	bad.Add(operators.Pod("no_mount", operators.PodSpec{Image: "x",
		VolumeMounts: []corev1.VolumeMount{{Name: "missing", MountPath: "/m"}}}))
	var stdout, stderr strings.Builder
	r := runner.New(runner.Config{Stdout: &stdout, Stderr: &stderr, Getenv: func(string) string { return "" }}, bad)
	code := r.Run(context.Background(), []string{"render", "bad", "--kubeconfig", "/nonexistent"})
	if code != runner.ExitUsage || !strings.Contains(stderr.String(), `dag "bad" task "no_mount": invalid pod: spec.containers[0].volumeMounts[0].name: Not found: "missing"`) {
		t.Errorf("exit %d, stderr %s", code, stderr.String())
	}
	code = r.Run(context.Background(), []string{"render", "bad", "-o", "xml"})
	if code != runner.ExitUsage {
		t.Errorf("-o xml: exit %d", code)
	}
}

func TestRenderShowsPlaceholdersForUpstreamResults(t *testing.T) {
	t.Parallel()
	d := dag.New("xcom")
	extract := task.Go("extract", func(context.Context, *task.Run) (string, error) { return "", nil })
	load := operators.Pod("load", operators.PodSpec{Image: "loader:1",
		Args: []string{`--input={{ .Result "extract" }}`},
		Env:  []corev1.EnvVar{{Name: "EXTRACT", Value: `{{ .Output "extract" }}`}}})
	d.Add(extract, load)
	extract.Then(load)
	var stdout, stderr strings.Builder
	r := runner.New(runner.Config{Stdout: &stdout, Stderr: &stderr, Getenv: func(string) string { return "" }}, d)
	if code := r.Run(context.Background(), []string{"render", "xcom", "load", "--kubeconfig", "/nonexistent"}); code != 0 {
		t.Fatalf("render exited %d: %s", code, stderr.String())
	}
	for _, want := range []string{"- --input=<result of extract>", `value: '"<result of extract>"'`} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("render lacks %q:\n%s", want, stdout.String())
		}
	}
}
