package k8s

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/diff"

	"github.com/trellisdag/trellis/task"
)

func testInfo(taskID string, try int) task.Info {
	ld := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	return task.Info{DAGID: "etl", TaskID: taskID, RunID: "scheduled__2024-03-01T00:00:00+00:00", RunType: task.RunScheduled,
		Try: try, MaxTries: 3, LogicalDate: ld, DataIntervalStart: ld, DataIntervalEnd: ld.Add(24 * time.Hour), MapIndex: -1}
}

func newTestBuilder(t testing.TB, cfg BuilderConfig) *Builder {
	t.Helper()
	if cfg.Command == nil {
		cfg.Command = []string{"/usr/local/bin/etl"}
	}
	if cfg.Image == "" {
		cfg.Image = "ghcr.io/acme/etl:2"
	}
	if cfg.Instance == "" {
		cfg.Instance = "etl-runner"
	}
	b, err := NewBuilder(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestOverlayMatchesMergePod holds the fast path to what MergePod does with
// the generated layer, over several templates.
func TestOverlayMatchesMergePod(t *testing.T) {
	airflow, err := LoadPodTemplate("testdata/templates/airflow_dags_in_image_template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	worker, err := LoadPodTemplate("testdata/templates/worker.json")
	if err != nil {
		t.Fatal(err)
	}
	clash := DefaultWorkerTemplate()
	clash.Spec.Volumes = []corev1.Volume{{Name: ContextVolume, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	clash.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "TRELLIS_DAG_ID", Value: "stale"}, {Name: "KEEP", Value: "1"}}
	clash.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: ContextVolume, MountPath: ContextDir}}
	noBase := DefaultWorkerTemplate()
	noBase.Spec.Containers[0].Name = "sidecar"
	noBase.Spec.Containers[0].Image = "busybox"
	for name, tmpl := range map[string]*corev1.Pod{
		"default": DefaultWorkerTemplate(), "airflow": airflow, "worker.json": worker,
		"realistic": workerTemplate(), "clash": clash, "no base": noBase,
	} {
		for _, timeout := range []time.Duration{0, time.Minute} {
			t.Run(fmt.Sprintf("%s/timeout=%s", name, timeout), func(t *testing.T) {
				b := newTestBuilder(t, BuilderConfig{Template: DefaultWorkerTemplate()})
				gen := b.generated(WorkerSpec{Info: testInfo("extract", 2), Timeout: timeout, Context: []byte(`{"x":1}`)})
				before := tmpl.DeepCopy()
				for mode, overlay := range map[MergeMode]func(pod, gen *corev1.Pod) *corev1.Pod{
					StrategicMerge: overlayGenerated, AirflowMerge: overlayAirflow,
				} {
					want, err := MergePod(tmpl, gen, mode)
					if err != nil {
						t.Fatal(err)
					}
					got := overlay(tmpl.DeepCopy(), gen)
					if !equality.Semantic.DeepEqual(got, want) {
						t.Errorf("%v: fast path differs from MergePod:\n%s", mode, diff.Diff(want, got))
					}
				}
				if !equality.Semantic.DeepEqual(tmpl, before) {
					t.Error("template modified")
				}
			})
		}
	}
}

func TestWorkerLayers(t *testing.T) {
	loads := map[string]int{}
	taskTemplate := DefaultWorkerTemplate()
	taskTemplate.Labels = map[string]string{"tier": "gpu", "team": "ml"}
	taskTemplate.Spec.NodeSelector = map[string]string{"gpu": "true"}
	defTemplate := DefaultWorkerTemplate()
	defTemplate.Labels = map[string]string{"team": "platform"}
	defTemplate.Spec.ServiceAccountName = "worker"
	defTemplate.Spec.Containers[0].Args = []string{"dropped"}
	var hookSaw string
	b := newTestBuilder(t, BuilderConfig{
		Template: defTemplate,
		LoadTemplate: func(path string) (*corev1.Pod, error) {
			loads[path]++
			if path == "gpu.yaml" {
				return taskTemplate.DeepCopy(), nil
			}
			return nil, fmt.Errorf("pod template: open %s: no such file", path)
		},
		Hooks: []Hook{func(ctx context.Context, pod *corev1.Pod, info task.Info) error {
			hookSaw = pod.Labels["release"] + "/" + pod.Labels["tier"]
			pod.Labels["cost-center"] = "data-" + info.DAGID
			return nil
		}},
	})
	override := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"release": "stable", "tier": "override"}}}
	exec := task.ExecutorConfig{PodTemplateFile: "gpu.yaml", PodOverride: override}
	for try := 1; try <= 3; try++ {
		pod, err := b.Worker(context.Background(), WorkerSpec{Info: testInfo("train", try), Exec: exec, Context: []byte("{}")})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"team": "ml", "tier": "override", "release": "stable", "cost-center": "data-etl",
			LabelDAG: "etl", LabelTask: "train", LabelTry: fmt.Sprint(try), LabelInstance: "etl-runner"}
		for k, v := range want {
			if pod.Labels[k] != v {
				t.Errorf("label %s = %q, want %q", k, pod.Labels[k], v)
			}
		}
		if hookSaw != "stable/override" {
			t.Errorf("the hook ran before the override: saw %q", hookSaw)
		}
		if pod.Spec.ServiceAccountName != "worker" || pod.Spec.NodeSelector["gpu"] != "true" {
			t.Errorf("template layers lost: sa %q nodeSelector %v", pod.Spec.ServiceAccountName, pod.Spec.NodeSelector)
		}
		c := pod.Spec.Containers[0]
		if c.Image != "ghcr.io/acme/etl:2" || len(c.Args) != 0 || c.Command[1] != TaskRunCommand {
			t.Errorf("base container: image %q args %v command %v", c.Image, c.Args, c.Command)
		}
		if pod.Name != PodName("etl", testInfo("", 0).RunID, "train", try) {
			t.Errorf("name %q", pod.Name)
		}
	}
	if loads["gpu.yaml"] != 1 {
		t.Errorf("template file loaded %d times, want once", loads["gpu.yaml"])
	}
	_, err := b.Worker(context.Background(), WorkerSpec{Info: testInfo("x", 1), Exec: task.ExecutorConfig{PodTemplateFile: "missing.yaml"}})
	if err == nil || !strings.Contains(err.Error(), `dag "etl" task "x": pod template: open missing.yaml`) {
		t.Errorf("missing template: %v", err)
	}
}

func TestWorkerErrors(t *testing.T) {
	ctx := context.Background()
	boom := errors.New("pods in namespace prod need a cost-center label")
	cases := []struct {
		name string
		cfg  BuilderConfig
		exec task.ExecutorConfig
		want string
	}{
		{"hook error", BuilderConfig{Hooks: []Hook{nil, func(context.Context, *corev1.Pod, task.Info) error { return boom }}[1:]},
			task.ExecutorConfig{}, `dag "etl" task "t": mutation hook 1: pods in namespace prod need a cost-center label`},
		{"mount without volume", BuilderConfig{}, task.ExecutorConfig{PodOverride: &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "base", VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}}}}}},
			`dag "etl" task "t": invalid pod: spec.containers[0].volumeMounts[1].name: Not found: "data"`},
		{"bad label", BuilderConfig{}, task.ExecutorConfig{PodOverride: &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
			Labels: map[string]string{"team": "a b"}}}}, `metadata.labels: Invalid value: "a b"`},
		{"sidecar without image", BuilderConfig{}, task.ExecutorConfig{PodOverride: &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "sidecar"}}}}}, `spec.containers[1].image: Required value`},
		{"bad on-finish", BuilderConfig{}, task.ExecutorConfig{PodOverride: &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
			Annotations: map[string]string{AnnotationOnFinish: "sometimes"}}}}, `"sometimes" is not delete`},
		{"no image", BuilderConfig{Image: "-"}, task.ExecutorConfig{}, `the base container has no image`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := c.cfg
			if cfg.Image == "-" {
				cfg.Image = ""
				cfg.Command = []string{"/bin/etl"}
				cfg.Instance = "i"
				b, err := NewBuilder(cfg)
				if err != nil {
					t.Fatal(err)
				}
				_, err = b.Worker(ctx, WorkerSpec{Info: testInfo("t", 1), Exec: c.exec})
				if err == nil || !strings.Contains(err.Error(), c.want) {
					t.Fatalf("err = %v, want %q", err, c.want)
				}
				return
			}
			b := newTestBuilder(t, cfg)
			_, err := b.Worker(ctx, WorkerSpec{Info: testInfo("t", 1), Exec: c.exec})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
			var te *TaskError
			if !errors.As(err, &te) || te.DAGID != "etl" || te.TaskID != "t" {
				t.Errorf("not a TaskError naming the task: %#v", err)
			}
		})
	}
	if _, err := NewBuilder(BuilderConfig{Command: []string{"x"}, Template: &corev1.Pod{Spec: corev1.PodSpec{
		Containers: []corev1.Container{{Name: "main", Image: "x"}}}}}); err == nil || !strings.Contains(err.Error(), `a container named "base" is required`) {
		t.Errorf("template without base: %v", err)
	}
}

func TestTryContextBound(t *testing.T) {
	c := NewTryContext(testInfo("t", 1), nil, 0)
	c.Inputs = map[string]json.RawMessage{"big": json.RawMessage(`"` + strings.Repeat("x", maxContextBytes) + `"`)}
	_, err := c.Encode()
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "pass large data through storage") {
		t.Errorf("err = %v", err)
	}
	c.Inputs = map[string]json.RawMessage{"small": json.RawMessage(`[1,2]`)}
	b, err := c.Encode()
	if err != nil || !strings.Contains(string(b), `"small":[1,2]`) {
		t.Errorf("encode = %s, %v", b, err)
	}
}

// BenchmarkBuildDAG builds the worker pods of a 10,000-task DAG: every task
// shares the default template, one task in 10 has a template file and one
// in 100 an override. The target is at most 1 s for all of them.
func BenchmarkBuildDAG(b *testing.B) {
	var loads atomic.Int32
	for _, mode := range []MergeMode{StrategicMerge, AirflowMerge} {
		b.Run(mode.String(), func(b *testing.B) {
			bld := newTestBuilder(b, BuilderConfig{Template: workerTemplate(), Mode: mode, LoadTemplate: func(string) (*corev1.Pod, error) {
				loads.Add(1)
				p := DefaultWorkerTemplate()
				p.Labels = map[string]string{"tier": "gpu"}
				p.Spec.NodeSelector = map[string]string{"gpu": "true"}
				return p, nil
			}})
			override := taskOverride()
			override.Name = ""
			ctx := context.Background()
			ctxJSON := []byte(`{"dag":"etl"}`)
			b.ReportAllocs()
			for b.Loop() {
				for i := range 10000 {
					exec := task.ExecutorConfig{}
					if i%10 == 0 {
						exec.PodTemplateFile = "gpu.yaml"
					}
					if i%100 == 0 {
						exec.PodOverride = override
					}
					if _, err := bld.Worker(ctx, WorkerSpec{Info: testInfo(fmt.Sprintf("task_%05d", i), 1), Exec: exec, Context: ctxJSON}); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/10k-pods")
		})
	}
}

// FuzzWorker builds worker pods from random templates and overrides: the
// builder must never panic, and the fast paths must agree with MergePod
// whenever the template is one the builder accepts.
func FuzzWorker(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("trellis"))
	f.Add(make([]byte, 64))
	f.Fuzz(func(t *testing.T, data []byte) {
		tmpl, override := fillPods(data)
		override.Name = ""
		if len(tmpl.Spec.Containers) > 0 {
			tmpl.Spec.Containers[0].Name = BaseContainerName
		}
		for _, mode := range []MergeMode{StrategicMerge, AirflowMerge} {
			b, err := NewBuilder(BuilderConfig{Template: tmpl, Mode: mode, Command: []string{"/bin/x"}, Image: "x", Instance: "i"})
			if err != nil {
				continue // an invalid template is refused up front
			}
			_, _ = b.Worker(context.Background(), WorkerSpec{Info: testInfo("t", 1), Exec: task.ExecutorConfig{PodOverride: override}})
			gen := b.generated(WorkerSpec{Info: testInfo("t", 1)})
			want, err := MergePod(tmpl, gen, mode)
			if err != nil {
				continue
			}
			overlay := overlayGenerated
			if mode == AirflowMerge {
				overlay = overlayAirflow
			}
			if got := overlay(tmpl.DeepCopy(), gen); !equality.Semantic.DeepEqual(got, want) {
				t.Fatalf("%v: fast path differs from MergePod:\n%s", mode, diff.Diff(want, got))
			}
		}
	})
}

// TestMappedInstancePods: the worker pod and a PodTask's pod of a mapped
// task instance are named for the instance (the name Recover looks up by the
// executor's key "train[4]"), labelled with the task and the map index, and
// the worker is told the index (arguments, env, context); an unmapped try's
// worker is not.
func TestMappedInstancePods(t *testing.T) {
	b := newTestBuilder(t, BuilderConfig{})
	info := testInfo("train", 2)
	info.MapIndex = 4
	tc := NewTryContext(info, nil, 0)
	tc.Item = json.RawMessage(`{"file":"b.csv"}`)
	ctxJSON, err := tc.Encode()
	if err != nil {
		t.Fatal(err)
	}
	worker, err := b.Worker(context.Background(), WorkerSpec{Info: info, Context: ctxJSON})
	if err != nil {
		t.Fatal(err)
	}
	pt, err := b.Finish(context.Background(), &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "base", Image: "busybox"}}}}, info, 0)
	if err != nil {
		t.Fatal(err)
	}
	wantName := PodName(info.DAGID, info.RunID, "train[4]", 2)
	for _, pod := range []*corev1.Pod{worker, pt} {
		if pod.Name != wantName || !strings.Contains(pod.Name, "-train-4-2-") {
			t.Errorf("%s pod named %q, want %q", pod.Annotations[AnnotationKind], pod.Name, wantName)
		}
		if pod.Labels[LabelTask] != "train" || pod.Labels[LabelMapIndex] != "4" || pod.Annotations[LabelMapIndex] != "4" {
			t.Errorf("%s pod: labels %v", pod.Annotations[AnnotationKind], pod.Labels)
		}
	}
	c := worker.Spec.Containers[0]
	if got := strings.Join(c.Command, " "); !strings.Contains(got, "--task train --map-index 4 --try 2") {
		t.Errorf("worker command %q", got)
	}
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	if env["TRELLIS_TASK_ID"] != "train" || env["TRELLIS_MAP_INDEX"] != "4" {
		t.Errorf("worker env %v", env)
	}
	var back TryContext
	if err := json.Unmarshal([]byte(worker.Annotations[AnnotationContext]), &back); err != nil {
		t.Fatal(err)
	}
	if back.InstanceID() != "train[4]" || back.Info(time.UTC).MapIndex != 4 || string(back.Item) != `{"file":"b.csv"}` {
		t.Errorf("context: instance %q, item %s", back.InstanceID(), back.Item)
	}
	if item, ok := task.ItemOf(back.TaskInputs()); !ok || string(item) != `{"file":"b.csv"}` {
		t.Errorf("TaskInputs carries item %s, %v", item, ok)
	}

	plain, err := b.Worker(context.Background(), WorkerSpec{Info: testInfo("train", 2), Context: []byte("{}")})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := plain.Labels[LabelMapIndex]; ok || strings.Contains(strings.Join(plain.Spec.Containers[0].Command, " "), "--map-index") {
		t.Errorf("unmapped worker: labels %v command %v", plain.Labels, plain.Spec.Containers[0].Command)
	}
	for _, e := range plain.Spec.Containers[0].Env {
		if e.Name == "TRELLIS_MAP_INDEX" {
			t.Error("unmapped worker has TRELLIS_MAP_INDEX")
		}
	}
	if plain.Name != PodName(info.DAGID, info.RunID, "train", 2) || plain.Name == wantName {
		t.Errorf("unmapped worker named %q", plain.Name)
	}
	if _, ok := task.ItemOf(NewTryContext(testInfo("train", 2), nil, 0).TaskInputs()); ok {
		t.Error("an unmapped context's inputs carry an item")
	}
}
