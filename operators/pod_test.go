package operators_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"text/template"
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

// mappedPodRun is the run of instance k of a mapped pod task, as the
// scheduler hands it over; item is nil when the inputs do not carry it (then
// the element is read from the list).
func mappedPodRun(t task.Task, k int, in task.Inputs, item string) *task.Run {
	if item != "" {
		in = task.WithItem(in, []byte(item))
	}
	ld := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	return task.NewRun(t, task.Info{DAGID: "d", TaskID: t.ID(), RunID: "manual__x", Try: 1, LogicalDate: ld, MapIndex: k},
		map[string]any{"env": "prod"}, nil, in, nil)
}

// TestMappedPodTemplates: a PodOperator mapped over a literal list or an
// upstream result renders {{ .Item }}, {{ .Item.field }} and
// {{ .MapIndex }} in its command, args and env values, per instance; the
// pod the runner finishes is named for the instance and labelled with its
// map index.
func TestMappedPodTemplates(t *testing.T) {
	type file struct {
		Name string `json:"name"`
		Size int    `json:"size"`
	}
	spec := operators.PodSpec{
		Image:   "busybox",
		Command: []string{"sh", "-c", "echo {{ .MapIndex }} {{ .Item.name }}"},
		Args:    []string{"--size={{ .Item.size }}", "--item={{ .Item }}"},
		Env:     []corev1.EnvVar{{Name: "FILE", Value: "{{ .Item.name }}"}, {Name: "INDEX", Value: "{{ .MapIndex }}"}},
	}
	files := []file{{"a.csv", 10}, {"b.csv", 20}, {"c.csv", 30}}
	literal := operators.Pod("resize", spec, task.MapItems(files...))
	list := task.Go("list", func(context.Context, *task.Run) ([]file, error) { return files, nil })
	over := operators.Pod("resize_over", spec, task.MapOver(list))
	d := dag.New("d")
	d.Add(literal, list, over)
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	upstream := task.InputsFunc(func(id string) ([]byte, bool, error) {
		if id == "list" {
			return []byte(`[{"name":"a.csv","size":10},{"name":"b.csv","size":20},{"name":"c.csv","size":30}]`), true, nil
		}
		return nil, false, nil
	})
	b, err := k8s.NewBuilder(k8s.BuilderConfig{Command: []string{"/bin/etl"}, Image: "etl:1", Instance: "inst", Namespace: "data"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []*operators.PodTask[json.RawMessage]{literal, over} {
		for k, f := range files {
			item := ""
			if k == 1 { // the scheduler's way; the others read the element from the list
				item = fmt.Sprintf(`{"name":%q,"size":%d}`, f.Name, f.Size)
			}
			run := mappedPodRun(p, k, upstream, item)
			pod, err := p.Pod(context.Background(), run)
			if err != nil {
				t.Fatalf("%s[%d]: %v", p.ID(), k, err)
			}
			c := pod.Spec.Containers[0]
			if got, want := c.Command[2], fmt.Sprintf("echo %d %s", k, f.Name); got != want {
				t.Errorf("%s[%d] command %q, want %q", p.ID(), k, got, want)
			}
			if got, want := strings.Join(c.Args, " "), fmt.Sprintf("--size=%d --item=map[name:%s size:%d]", f.Size, f.Name, f.Size); got != want {
				t.Errorf("%s[%d] args %q, want %q", p.ID(), k, got, want)
			}
			env := map[string]string{}
			for _, e := range c.Env {
				env[e.Name] = e.Value
			}
			if env["FILE"] != f.Name || env["INDEX"] != fmt.Sprint(k) {
				t.Errorf("%s[%d] env %v", p.ID(), k, env)
			}
			done, err := b.Finish(context.Background(), pod, run.Info(), 0)
			if err != nil {
				t.Fatal(err)
			}
			if want := k8s.PodName("d", "manual__x", task.InstanceID(p.ID(), k), 1); done.Name != want ||
				done.Labels[k8s.LabelTask] != p.ID() || done.Labels[k8s.LabelMapIndex] != fmt.Sprint(k) {
				t.Errorf("%s[%d]: pod %s labels %v, want name %s", p.ID(), k, done.Name, done.Labels, want)
			}
		}
	}

	// A string element renders as itself; an element out of range fails.
	names := operators.Pod("names", operators.PodSpec{Image: "busybox", Command: []string{"echo", "{{ .Item }}-{{ .MapIndex }}"}},
		task.MapItems("x", "y"))
	pod, err := names.Pod(context.Background(), mappedPodRun(names, 1, nil, ""))
	if err != nil || pod.Spec.Containers[0].Command[1] != "y-1" {
		t.Errorf("string element: %v %v", pod, err)
	}
	if _, err := names.Pod(context.Background(), mappedPodRun(names, 5, nil, "")); err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Errorf("element out of range: %v", err)
	}
}

// TestPodRenderMatchesRunRender: the pod's templates, rendered over one
// template data per try, render exactly as task.Run.Render renders each of
// them, errors included, for mapped instances (element carried or read from
// the list) and unmapped tasks alike.
func TestPodRenderMatchesRunRender(t *testing.T) {
	texts := []string{"plain text", "", "{{ .DS }}-{{ .TryNumber }}-{{ .MapIndex }}", "{{ .Params.env }}", "{{ .Item }}",
		"{{ .Item.name }}/{{ .Item.size }}/{{ .Item.tags }}", `{{ index .Item.tags 1 }}`, `{{ .Output "list" }}`,
		`{{ (.Result "list") }}`, "{{ .Item.nope }}", "{{ .Params.missing }}", "{{ .TaskID }} {{ .RunID }}"}
	var env []corev1.EnvVar
	for i, x := range texts {
		env = append(env, corev1.EnvVar{Name: fmt.Sprintf("V%d", i), Value: x})
	}
	upstream := task.InputsFunc(func(id string) ([]byte, bool, error) {
		return []byte(`[{"name":"a","size":1.5,"tags":["x","y"]},{"name":"b","size":12345678901234567890,"tags":["z","w"]}]`), id == "list", nil
	})
	for _, c := range []struct {
		mapped bool
		item   string
	}{{true, `{"name":"b","size":12345678901234567890,"tags":["z","w"]}`}, {true, ""}, {false, ""}} {
		for i, x := range texts {
			// One template per pod, so that an error in one does not hide
			// the others; list is a direct upstream either way.
			list := task.Go("list", func(context.Context, *task.Run) ([]map[string]any, error) { return nil, nil })
			var opts []task.Option
			if c.mapped {
				opts = append(opts, task.MapOver(list))
			}
			p := operators.Pod("p", operators.PodSpec{Image: "busybox", Env: env[i : i+1]}, opts...)
			d := dag.New("d")
			d.Add(list, p)
			if !c.mapped {
				list.Then(p)
			}
			run := mappedPodRun(p, 1, upstream, c.item)
			pod, err := p.Pod(context.Background(), run)
			want, wantErr := run.Render(mustTemplate(t, fmt.Sprintf("env[0] V%d", i), x))
			if (err == nil) != (wantErr == nil) || err != nil && err.Error() != wantErr.Error() {
				t.Errorf("mapped %v %q: error %v, want %v", c.mapped, x, err, wantErr)
				continue
			}
			if err == nil && pod.Spec.Containers[0].Env[0].Value != want {
				t.Errorf("mapped %v %q: %q, want %q", c.mapped, x, pod.Spec.Containers[0].Env[0].Value, want)
			}
		}
	}
}

func mustTemplate(t *testing.T, name, text string) *template.Template {
	t.Helper()
	tmpl, err := task.ParseTemplate(name, text)
	if err != nil {
		t.Fatal(err)
	}
	return tmpl
}
