package k8s

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/diff"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/randfill"
	"sigs.k8s.io/yaml"
)

// FuzzLoadPodTemplate feeds arbitrary bytes, written to a file, to
// LoadPodTemplate. It must never panic, and a template it accepts must
// survive a round trip through JSON unchanged.
func FuzzLoadPodTemplate(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "templates", "*.*"))
	for _, s := range seeds {
		if data, err := os.ReadFile(s); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("kind: Pod\nspec:\n  containers: [{name: base, image: x, ports: [{containerPort: 80}]}]\n"))
	f.Add([]byte("{}"))
	f.Add([]byte("---\n---\n"))
	f.Add([]byte("metadata: {labels: {a: b}, annotations: {c: d}}\nspec: {volumes: [{name: v, emptyDir: {sizeLimit: 1Gi}}]}\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := os.CreateTemp(dir, "template-*.yaml")
		if err != nil {
			t.Fatal(err)
		}
		name := file.Name()
		defer os.Remove(name)
		if _, err := file.Write(data); err != nil {
			t.Fatal(err)
		}
		if err := file.Close(); err != nil {
			t.Fatal(err)
		}
		pod, err := LoadPodTemplate(name)
		if err != nil {
			if pod != nil {
				t.Fatalf("error %v with a non-nil pod", err)
			}
			return
		}
		if pod.Kind != "Pod" || pod.APIVersion != "v1" {
			t.Fatalf("loaded pod has type %s/%s", pod.APIVersion, pod.Kind)
		}
		j, err := json.Marshal(pod)
		if err != nil {
			t.Fatalf("marshal loaded pod: %v", err)
		}
		again, err := ParsePodTemplate("again", j)
		if err != nil {
			t.Fatalf("loaded pod does not load again: %v\n%s", err, j)
		}
		if !equality.Semantic.DeepEqual(pod, again) {
			t.Fatalf("round trip changed the pod:\n%s", diff.Diff(pod, again))
		}
		// The rest of the pipeline must not panic on it either.
		_ = ValidateWorkerTemplate(pod)
		_ = ValidatePod(pod)
		for _, mode := range []MergeMode{StrategicMerge, AirflowMerge} {
			_, _ = MergePod(pod, pod, mode)
		}
	})
}

// fillPods makes two random pods from fuzz input.
func fillPods(data []byte) (base, override *corev1.Pod) {
	f := randfill.NewFromGoFuzz(data).NilChance(0.3).NumElements(1, 2).MaxDepth(10).Funcs(
		func(q *resource.Quantity, c randfill.Continue) {
			*q = *resource.NewQuantity(c.Int63n(1<<20), resource.DecimalSI)
		},
		func(t *metav1.Time, c randfill.Continue) {
			*t = metav1.Unix(c.Int63n(1<<31), 0).Rfc3339Copy()
		},
		func(f *metav1.FieldsV1, c randfill.Continue) {
			f.Raw = []byte(`{"f:metadata":{}}`)
		},
		func(v *intstr.IntOrString, c randfill.Continue) {
			if c.Bool() {
				*v = intstr.FromInt32(c.Int31())
			} else {
				*v = intstr.FromString(c.String(8))
			}
		},
	)
	base, override = &corev1.Pod{}, &corev1.Pod{}
	f.Fill(base)
	f.Fill(override)
	return base, override
}

// FuzzMergePod merges random pods. MergePod must never panic nor modify its
// inputs, and merging an empty override must give back the base, in both
// modes.
func FuzzMergePod(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("trellis"))
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20})
	f.Add(make([]byte, 64))
	f.Fuzz(func(t *testing.T, data []byte) {
		base, override := fillPods(data)
		baseBefore, overrideBefore := base.DeepCopy(), override.DeepCopy()
		for _, mode := range []MergeMode{StrategicMerge, AirflowMerge} {
			// Errors are allowed (random pods are far from valid); panics are not.
			_, _ = MergePod(base, override, mode)
			_, _ = MergePod(base, base, mode)
			if !reflect.DeepEqual(base, baseBefore) || !reflect.DeepEqual(override, overrideBefore) {
				t.Fatalf("%v: MergePod modified its inputs", mode)
			}
			got, err := MergePod(base, &corev1.Pod{}, mode)
			if err != nil {
				t.Fatalf("%v: empty override: %v", mode, err)
			}
			if !equality.Semantic.DeepEqual(got, base) {
				t.Fatalf("%v: empty override changed the pod:\n%s", mode, diff.Diff(base, got))
			}
		}
	})
}

// TestMergePodRandom runs the FuzzMergePod property on a fixed set of
// random inputs, more than the fuzz seeds, on every `go test`.
func TestMergePodRandom(t *testing.T) {
	n := 150
	if testing.Short() {
		n = 20
	}
	r := rand.New(rand.NewPCG(1, 2))
	for i := range n {
		data := make([]byte, r.IntN(300))
		for j := range data {
			data[j] = byte(r.Uint32())
		}
		base, override := fillPods(data)
		baseBefore, overrideBefore := base.DeepCopy(), override.DeepCopy()
		for _, mode := range []MergeMode{StrategicMerge, AirflowMerge} {
			_, _ = MergePod(base, override, mode)
			_, _ = MergePod(base, base, mode)
			if !reflect.DeepEqual(base, baseBefore) || !reflect.DeepEqual(override, overrideBefore) {
				t.Fatalf("input %d, %v: MergePod modified its inputs", i, mode)
			}
			got, err := MergePod(base, &corev1.Pod{}, mode)
			if err != nil || !equality.Semantic.DeepEqual(got, base) {
				t.Fatalf("input %d, %v: empty override is not the identity (%v):\n%s", i, mode, err, diff.Diff(base, got))
			}
		}
	}
}

// TestMergePodConcurrent merges one shared template from many goroutines,
// as the runner will; run with -race.
func TestMergePodConcurrent(t *testing.T) {
	base, override := workerTemplate(), taskOverride()
	want := map[MergeMode]*corev1.Pod{}
	for _, mode := range []MergeMode{StrategicMerge, AirflowMerge} {
		p, err := MergePod(base, override, mode)
		if err != nil {
			t.Fatal(err)
		}
		want[mode] = p
	}
	var wg sync.WaitGroup
	for i := range 8 {
		mode := MergeMode(i % 2)
		wg.Go(func() {
			for range 20 {
				got, err := MergePod(base, override, mode)
				if err != nil {
					t.Error(err)
					return
				}
				if !equality.Semantic.DeepEqual(got, want[mode]) {
					t.Errorf("%v: concurrent merge differs", mode)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestFillPodsIsRich guards the fuzz helper: random pods must actually have
// containers, volumes and labels, or FuzzMergePod tests little.
func TestFillPodsIsRich(t *testing.T) {
	rich := 0
	for i := range 50 {
		base, _ := fillPods([]byte{byte(i), byte(i * 7), byte(i * 13), 42, 1, 2, 3})
		if len(base.Spec.Containers) > 0 && len(base.Spec.Volumes) > 0 && len(base.Labels) > 0 {
			rich++
		}
		if _, err := yaml.Marshal(base); err != nil {
			t.Fatalf("random pod does not marshal: %v", err)
		}
	}
	if rich < 15 {
		t.Errorf("only %d of 50 random pods have containers, volumes and labels", rich)
	}
}
