package k8s

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// TestLoadPodTemplateGolden loads every template under testdata/templates and
// compares the Pod (as YAML) or the error text with the .golden file next to
// it. Run with -update to rewrite the golden files.
func TestLoadPodTemplateGolden(t *testing.T) {
	inputs, err := filepath.Glob(filepath.Join("testdata", "templates", "*"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, in := range inputs {
		if ext := filepath.Ext(in); ext != ".yaml" && ext != ".json" {
			continue
		}
		n++
		t.Run(filepath.Base(in), func(t *testing.T) {
			var got []byte
			pod, err := LoadPodTemplate(filepath.ToSlash(in))
			if err != nil {
				got = []byte("error:\n" + err.Error() + "\n")
			} else {
				got, err = yaml.Marshal(pod)
				if err != nil {
					t.Fatal(err)
				}
			}
			golden := strings.TrimSuffix(in, filepath.Ext(in)) + ".golden"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if string(got) != string(want) {
				t.Errorf("LoadPodTemplate(%s) differs from %s (run with -update to accept):\n--- got\n%s\n--- want\n%s", in, golden, got, want)
			}
		})
	}
	if n < 10 {
		t.Fatalf("found only %d templates under testdata/templates", n)
	}
}

// TestLoadAirflowTemplate checks the Airflow docs' pod_template_file field by
// field, independently of the golden file.
func TestLoadAirflowTemplate(t *testing.T) {
	pod, err := LoadPodTemplate("testdata/templates/airflow_dags_in_image_template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if pod.Name != "placeholder-name" || pod.Kind != "Pod" || pod.APIVersion != "v1" {
		t.Errorf("metadata = %v %v/%v", pod.Name, pod.APIVersion, pod.Kind)
	}
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("containers = %d", len(pod.Spec.Containers))
	}
	base := pod.Spec.Containers[0]
	if base.Name != BaseContainerName || base.Image != "dummy_image" || base.ImagePullPolicy != corev1.PullIfNotPresent {
		t.Errorf("base container = %s %s %s", base.Name, base.Image, base.ImagePullPolicy)
	}
	if len(base.Env) != 4 || base.Env[1].ValueFrom == nil || base.Env[1].ValueFrom.SecretKeyRef == nil ||
		base.Env[1].ValueFrom.SecretKeyRef.Name != "RELEASE-NAME-fernet-key" || base.Env[1].ValueFrom.SecretKeyRef.Key != "fernet-key" {
		t.Errorf("env = %+v", base.Env)
	}
	if m := base.VolumeMounts[1]; m.Name != "airflow-config" || !m.ReadOnly || m.SubPath != "airflow.cfg" || m.MountPath != "/opt/airflow/airflow.cfg" {
		t.Errorf("volumeMounts[1] = %+v", m)
	}
	sc := pod.Spec.SecurityContext
	if sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != 50000 || sc.FSGroup == nil || *sc.FSGroup != 50000 {
		t.Errorf("securityContext = %+v", sc)
	}
	if pod.Spec.ServiceAccountName != "RELEASE-NAME-worker-serviceaccount" || pod.Spec.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("spec = %s %s", pod.Spec.ServiceAccountName, pod.Spec.RestartPolicy)
	}
	if len(pod.Spec.Volumes) != 2 || pod.Spec.Volumes[0].EmptyDir == nil || pod.Spec.Volumes[1].ConfigMap == nil {
		t.Errorf("volumes = %+v", pod.Spec.Volumes)
	}

	// The template has a base container and its mounts resolve; only the
	// Helm placeholder service account name ("RELEASE-NAME-...") is
	// something the API server would reject.
	err = ValidateWorkerTemplate(pod)
	var fe *field.Error
	if !errors.As(err, &fe) || fe.Field != "spec.serviceAccountName" || strings.Count(err.Error(), "\n") != 0 {
		t.Errorf("ValidateWorkerTemplate = %v, want only spec.serviceAccountName", err)
	}
	pod.Spec.ServiceAccountName = "airflow-worker"
	if err := ValidateWorkerTemplate(pod); err != nil {
		t.Errorf("ValidateWorkerTemplate with a real service account = %v", err)
	}
}

func TestLoadPodTemplateErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name, content string
		want          []string // substrings, each on its own line of the error
	}{
		{"x.yaml", "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: base\n    imagee: x\n",
			[]string{`pod template "` + filepath.Join(dir, "x.yaml") + `": unknown field "spec.containers[0].imagee"`}},
		{"svc.yaml", "apiVersion: v1\nkind: Service\n",
			[]string{`pod template "` + filepath.Join(dir, "svc.yaml") + `": kind "Service" is not a Pod`}},
		{"two.yaml", "spec: {}\n---\nspec: {}\n", []string{"holds 2 YAML documents"}},
		{"dup.json", `{"kind":"Pod","kind":"Pod"}`, []string{`"kind" already set in map`}},
		{"many.yaml", "metadata:\n  nam: x\nspec:\n  foo: 1\n  containers:\n  - name: a\n    bar: 2\n",
			[]string{`unknown field "metadata.nam"`, `unknown field "spec.containers[0].bar"`, `unknown field "spec.foo"`}},
		{"scalar.yaml", "just a string\n", []string{"not a Pod"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadPodTemplate(write(tt.name, tt.content))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if got, want := strings.Count(err.Error(), `pod template "`), len(tt.want); len(tt.want) > 1 && got != want {
				t.Errorf("error has %d prefixed lines, want %d: %v", got, want, err)
			}
		})
	}

	if _, err := LoadPodTemplate(filepath.Join(dir, "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v, want os.ErrNotExist", err)
	}
}

func TestParsePodTemplateJSONEqualsYAML(t *testing.T) {
	y := "apiVersion: v1\nkind: Pod\nmetadata:\n  name: w\nspec:\n  containers:\n  - name: base\n    image: x\n    resources:\n      limits: {cpu: 500m}\n"
	j := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"w"},"spec":{"containers":[{"name":"base","image":"x","resources":{"limits":{"cpu":"500m"}}}]}}`
	a, err := ParsePodTemplate("a", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	b, err := ParsePodTemplate("b", []byte(j))
	if err != nil {
		t.Fatal(err)
	}
	if !equality.Semantic.DeepEqual(a, b) {
		t.Errorf("YAML and JSON differ:\n%v\n%v", a, b)
	}
}
