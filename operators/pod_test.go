package operators_test

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/k8s"
	"github.com/trellisdag/trellis/operators"
	"github.com/trellisdag/trellis/task"
)

func podRun(t task.Task) *task.Run {
	ld := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	return task.NewRun(t, task.Info{DAGID: "d", TaskID: t.ID(), RunID: "manual__x", Try: 2, LogicalDate: ld},
		map[string]any{"env": "prod"}, nil, nil, nil)
}

// TestPodPrecedence: operator fields win over the full pod, which wins over the
// template; templates render over the run.
func TestPodPrecedence(t *testing.T) {
	full := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"foo": "bar", "fizz": "buzz"}, Namespace: "from-full"},
		Spec: corev1.PodSpec{
			ServiceAccountName: "from-full",
			Containers: []corev1.Container{{Name: "base", Image: "full:1",
				Env: []corev1.EnvVar{{Name: "env_name", Value: "full"}, {Name: "only_full", Value: "1"}}}},
		},
	}
	p := operators.PodOf[map[string]int]("p", operators.PodSpec{
		Image:           "img:{{ .DSNodash }}",
		Command:         []string{"sh", "-c", "echo {{ .Params.env }}"},
		Env:             []corev1.EnvVar{{Name: "env_name", Value: "op-{{ .TryNumber }}"}, {Name: "SECRET", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}, Key: "k"}}}},
		Labels:          map[string]string{"foo": "op"},
		Namespace:       "ns-{{ .Params.env }}",
		Resources:       corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")}},
		Tolerations:     []corev1.Toleration{{Key: "gpu", Operator: corev1.TolerationOpExists}},
		NodeSelector:    map[string]string{"pool": "{{ .Params.env }}"},
		ResultPath:      "/airflow/xcom/return.json",
		OnFinish:        k8s.OnFinishKeep,
		StartupTimeout:  time.Minute,
		ImagePullPolicy: corev1.PullNever,
		SkipOnExitCodes: []int{3, 99},
		Pod:             full,
	})
	pod, err := p.Pod(context.Background(), podRun(p))
	if err != nil {
		t.Fatal(err)
	}
	c := pod.Spec.Containers[0]
	if c.Image != "img:20240301" || strings.Join(c.Command, " ") != "sh -c echo prod" {
		t.Errorf("image %q command %v", c.Image, c.Command)
	}
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
		if e.Name == "SECRET" && e.ValueFrom == nil {
			t.Error("valueFrom lost")
		}
	}
	if env["env_name"] != "op-2" || env["only_full"] != "1" {
		t.Errorf("env %v", env)
	}
	if pod.Labels["foo"] != "op" || pod.Labels["fizz"] != "buzz" || pod.Namespace != "ns-prod" || pod.Spec.ServiceAccountName != "from-full" {
		t.Errorf("labels %v namespace %q sa %q", pod.Labels, pod.Namespace, pod.Spec.ServiceAccountName)
	}
	if c.TerminationMessagePath != "/airflow/xcom/return.json" || pod.Annotations[k8s.AnnotationResult] != "termination-message" ||
		pod.Annotations[k8s.AnnotationOnFinish] != "keep" || pod.Annotations[k8s.AnnotationStartupTimeout] != "1m0s" ||
		pod.Annotations[k8s.AnnotationSkipExitCodes] != "3,99" {
		t.Errorf("result/on-finish/startup: %q %v", c.TerminationMessagePath, pod.Annotations)
	}
	if pod.Spec.NodeSelector["pool"] != "prod" || len(pod.Spec.Tolerations) != 1 || c.ImagePullPolicy != corev1.PullNever {
		t.Errorf("nodeSelector %v tolerations %v", pod.Spec.NodeSelector, pod.Spec.Tolerations)
	}
	if full.Labels["foo"] != "bar" || full.Spec.Containers[0].Env[0].Value != "full" {
		t.Error("the full pod was modified")
	}
	if _, err := p.DecodeResult([]byte(`{"a":1}`)); err != nil {
		t.Errorf("DecodeResult: %v", err)
	}
	if _, err := p.DecodeResult([]byte(`[1]`)); err == nil || !strings.Contains(err.Error(), "map[string]int") {
		t.Errorf("DecodeResult of a list: %v", err)
	}
	if _, err := p.Execute(context.Background(), podRun(p)); err == nil {
		t.Error("Execute in-process must refuse")
	}
}

func TestPodInvalidSpec(t *testing.T) {
	d := dag.New("d")
	d.Add(
		operators.Pod("no_image", operators.PodSpec{}),
		operators.Pod("bad_tmpl", operators.PodSpec{Image: "{{ .Nope", ResultPath: "relative.json", OnFinish: "later", SkipOnExitCodes: []int{0, 256}}),
	)
	err := d.Validate()
	for _, want := range []string{"no image", "image template", `result path "relative.json" is not absolute`, `on-finish "later"`,
		"skip-on-exit-code 0: want an exit code from 1 to 255", "skip-on-exit-code 256"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v; want %q", err, want)
		}
	}
	missing := operators.Pod("missing", operators.PodSpec{PodTemplateFile: "testdata/nope.yaml"})
	if _, err := missing.Pod(context.Background(), podRun(missing)); err == nil || !strings.Contains(err.Error(), "nope.yaml") {
		t.Errorf("missing template: %v", err)
	}
	render := operators.Pod("render", operators.PodSpec{Image: "x", Env: []corev1.EnvVar{{Name: "A", Value: "{{ .Params.missing }}"}}})
	if _, err := render.Pod(context.Background(), podRun(render)); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("render error: %v", err)
	}
}
