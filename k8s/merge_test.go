package k8s

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/diff"
	"k8s.io/utils/ptr"
)

// workerTemplate is a platform team's template, shaped like Airflow's
// docs example, with a sidecar and an init container added.
func workerTemplate() *corev1.Pod {
	return &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        "placeholder-name",
			Labels:      map[string]string{"team": "platform", "tier": "worker"},
			Annotations: map[string]string{"cluster-autoscaler.kubernetes.io/safe-to-evict": "false"},
			Finalizers:  []string{"trellis.dev/logs"},
		},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{
				Name:         "git-sync",
				Image:        "registry.k8s.io/git-sync/git-sync:v3.6.3",
				Env:          []corev1.EnvVar{{Name: "GIT_SYNC_ONE_TIME", Value: "true"}},
				VolumeMounts: []corev1.VolumeMount{{Name: "dags", MountPath: "/git"}},
			}},
			Containers: []corev1.Container{
				{
					Name:            "base",
					Image:           "ghcr.io/acme/trellis:1.0",
					ImagePullPolicy: corev1.PullIfNotPresent,
					Args:            []string{"task-run"},
					Env: []corev1.EnvVar{
						{Name: "LOG_LEVEL", Value: "info"},
						{Name: "DB_URL", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
							LocalObjectReference: corev1.LocalObjectReference{Name: "trellis-db"}, Key: "url"}}},
					},
					EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{
						LocalObjectReference: corev1.LocalObjectReference{Name: "trellis-env"}}}},
					Ports: []corev1.ContainerPort{{Name: "metrics", ContainerPort: 9090}},
					Resources: corev1.ResourceRequirements{
						Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("1Gi")},
						Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m")},
					},
					VolumeMounts: []corev1.VolumeMount{
						{Name: "logs", MountPath: "/opt/trellis/logs"},
						{Name: "config", MountPath: "/etc/trellis/config.yaml", SubPath: "config.yaml", ReadOnly: true},
					},
					SecurityContext: &corev1.SecurityContext{
						ReadOnlyRootFilesystem:   ptr.To(true),
						AllowPrivilegeEscalation: ptr.To(false),
					},
				},
				{
					Name:  "log-shipper",
					Image: "fluent/fluent-bit:3.0",
					VolumeMounts: []corev1.VolumeMount{
						{Name: "logs", MountPath: "/logs", ReadOnly: true},
					},
				},
			},
			Volumes: []corev1.Volume{
				{Name: "logs", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
					LocalObjectReference: corev1.LocalObjectReference{Name: "trellis-config"}}}},
				{Name: "dags", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			},
			RestartPolicy:                 corev1.RestartPolicyNever,
			ServiceAccountName:            "trellis-worker",
			AutomountServiceAccountToken:  ptr.To(true),
			TerminationGracePeriodSeconds: ptr.To[int64](30),
			NodeSelector:                  map[string]string{"kubernetes.io/os": "linux", "pool": "general"},
			SecurityContext: &corev1.PodSecurityContext{
				RunAsUser:    ptr.To[int64](50000),
				FSGroup:      ptr.To[int64](50000),
				RunAsNonRoot: ptr.To(true),
			},
			Tolerations: []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "trellis", Effect: corev1.TaintEffectNoSchedule}},
		},
	}
}

// taskOverride is a data engineer's per-task override: more memory, a GPU
// pool, one more env var, a scratch volume.
func taskOverride() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Labels:      map[string]string{"team": "data", "cost-center": "ml"},
			Annotations: map[string]string{"trellis.dev/owner": "ml-team@example.com"},
		},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name: "base",
				Env:  []corev1.EnvVar{{Name: "LOG_LEVEL", Value: "debug"}, {Name: "MODEL", Value: "resnet"}},
				Resources: corev1.ResourceRequirements{
					Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("8Gi"), "nvidia.com/gpu": resource.MustParse("1")},
				},
				VolumeMounts: []corev1.VolumeMount{{Name: "scratch", MountPath: "/scratch"}},
			}},
			Volumes:      []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: ptr.To(resource.MustParse("20Gi"))}}}},
			NodeSelector: map[string]string{"pool": "gpu"},
			Tolerations:  []corev1.Toleration{{Key: "nvidia.com/gpu", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}},
		},
	}
}

func container(p *corev1.Pod, name string) *corev1.Container {
	for i := range p.Spec.InitContainers {
		if p.Spec.InitContainers[i].Name == name {
			return &p.Spec.InitContainers[i]
		}
	}
	for i := range p.Spec.Containers {
		if p.Spec.Containers[i].Name == name {
			return &p.Spec.Containers[i]
		}
	}
	return nil
}

func envNames(env []corev1.EnvVar) string {
	var s []string
	for _, e := range env {
		v := e.Value
		if e.ValueFrom != nil {
			v = "<from>"
			if e.Value != "" {
				v = e.Value + "+<from>"
			}
		}
		s = append(s, e.Name+"="+v)
	}
	return strings.Join(s, " ")
}

func containerNames(cs []corev1.Container) string {
	var s []string
	for _, c := range cs {
		s = append(s, c.Name+":"+c.Image)
	}
	return strings.Join(s, " ")
}

func volumeNames(vs []corev1.Volume) string {
	var s []string
	for _, v := range vs {
		src := "?"
		switch {
		case v.EmptyDir != nil && v.ConfigMap != nil:
			src = "emptyDir+configMap"
		case v.EmptyDir != nil:
			src = "emptyDir"
		case v.ConfigMap != nil:
			src = "configMap"
		case v.Secret != nil:
			src = "secret"
		}
		s = append(s, v.Name+":"+src)
	}
	return strings.Join(s, " ")
}

func mountNames(ms []corev1.VolumeMount) string {
	var s []string
	for _, m := range ms {
		s = append(s, m.Name+"@"+m.MountPath)
	}
	return strings.Join(s, " ")
}

func quantities(l corev1.ResourceList) string {
	var s []string
	for _, k := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory, "nvidia.com/gpu"} {
		if q, ok := l[k]; ok {
			s = append(s, string(k)+"="+q.String())
		}
	}
	return strings.Join(s, " ")
}

func mapString(m map[string]string) string {
	// Sorted key=value list.
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var s []string
	for _, k := range keys {
		s = append(s, k+"="+m[k])
	}
	return strings.Join(s, " ")
}

// mergeChecked merges and verifies the inputs were not modified and the
// result shares no memory with them.
func mergeChecked(t *testing.T, base, override *corev1.Pod, mode MergeMode) *corev1.Pod {
	t.Helper()
	baseBefore, overrideBefore := base.DeepCopy(), override.DeepCopy()
	got, err := MergePod(base, override, mode)
	if err != nil {
		t.Fatalf("MergePod(%v): %v", mode, err)
	}
	if !equality.Semantic.DeepEqual(baseBefore, base) || !equalExact(baseBefore, base) {
		t.Fatalf("MergePod(%v) modified base:\n%s", mode, diff.Diff(baseBefore, base))
	}
	if !equalExact(overrideBefore, override) {
		t.Fatalf("MergePod(%v) modified override:\n%s", mode, diff.Diff(overrideBefore, override))
	}
	// Scribble over the result; the inputs must not change.
	keep := got.DeepCopy()
	scribble(got)
	if !equalExact(baseBefore, base) || !equalExact(overrideBefore, override) {
		t.Fatalf("MergePod(%v) result shares memory with its inputs", mode)
	}
	return keep
}

// equalExact compares two pods with reflect-style equality (no semantic
// leniency): DeepCopy preserves representation, so a copy must be exact.
func equalExact(a, b *corev1.Pod) bool {
	return diff.Diff(a, b) == ""
}

// scribble writes into every map, slice element and pointed-to value of the
// result that is likely to be shared by a careless merge.
func scribble(p *corev1.Pod) {
	if p == nil {
		return
	}
	p.Labels = scribbleMap(p.Labels)
	p.Annotations = scribbleMap(p.Annotations)
	for i := range p.Finalizers {
		p.Finalizers[i] = "x"
	}
	p.Spec.NodeSelector = scribbleMap(p.Spec.NodeSelector)
	for i := range p.Spec.Volumes {
		p.Spec.Volumes[i].Name = "x"
		if p.Spec.Volumes[i].EmptyDir != nil {
			p.Spec.Volumes[i].EmptyDir.Medium = "x"
		}
	}
	for i := range p.Spec.Tolerations {
		p.Spec.Tolerations[i].Key = "x"
	}
	if sc := p.Spec.SecurityContext; sc != nil && sc.RunAsUser != nil {
		*sc.RunAsUser = -1
	}
	if p.Spec.TerminationGracePeriodSeconds != nil {
		*p.Spec.TerminationGracePeriodSeconds = -1
	}
	for _, cs := range [][]corev1.Container{p.Spec.InitContainers, p.Spec.Containers} {
		for i := range cs {
			c := &cs[i]
			c.Name, c.Image = "x", "x"
			for j := range c.Args {
				c.Args[j] = "x"
			}
			for j := range c.Env {
				c.Env[j].Value = "x"
				if c.Env[j].ValueFrom != nil && c.Env[j].ValueFrom.SecretKeyRef != nil {
					c.Env[j].ValueFrom.SecretKeyRef.Key = "x"
				}
			}
			for j := range c.VolumeMounts {
				c.VolumeMounts[j].MountPath = "x"
			}
			for j := range c.Ports {
				c.Ports[j].ContainerPort = -1
			}
			c.Resources.Limits = nil
			if c.SecurityContext != nil && c.SecurityContext.ReadOnlyRootFilesystem != nil {
				*c.SecurityContext.ReadOnlyRootFilesystem = false
			}
		}
	}
}

func scribbleMap(m map[string]string) map[string]string {
	for k := range m {
		m[k] = "x"
	}
	if m != nil {
		m["scribbled"] = "x"
	}
	return m
}

func TestMergePodRealistic(t *testing.T) {
	t.Run("strategic", func(t *testing.T) {
		got := mergeChecked(t, workerTemplate(), taskOverride(), StrategicMerge)
		base := container(got, "base")
		checks := []struct{ what, got, want string }{
			{"labels", mapString(got.Labels), "cost-center=ml team=data tier=worker"},
			{"annotations", mapString(got.Annotations), "cluster-autoscaler.kubernetes.io/safe-to-evict=false trellis.dev/owner=ml-team@example.com"},
			{"containers", containerNames(got.Spec.Containers), "base:ghcr.io/acme/trellis:1.0 log-shipper:fluent/fluent-bit:3.0"},
			{"env", envNames(base.Env), "LOG_LEVEL=debug DB_URL=<from> MODEL=resnet"},
			{"limits", quantities(base.Resources.Limits), "cpu=1 memory=8Gi nvidia.com/gpu=1"},
			{"requests", quantities(base.Resources.Requests), "cpu=500m"},
			{"mounts", mountNames(base.VolumeMounts), "logs@/opt/trellis/logs config@/etc/trellis/config.yaml scratch@/scratch"},
			{"volumes", volumeNames(got.Spec.Volumes), "logs:emptyDir config:configMap dags:emptyDir scratch:emptyDir"},
			{"nodeSelector", mapString(got.Spec.NodeSelector), "kubernetes.io/os=linux pool=gpu"},
			// tolerations have no patch strategy: the list is replaced.
			{"tolerations", got.Spec.Tolerations[0].Key + " " + string(rune('0'+len(got.Spec.Tolerations))), "nvidia.com/gpu 1"},
			{"args", strings.Join(base.Args, " "), "task-run"},
			{"serviceAccount", got.Spec.ServiceAccountName, "trellis-worker"},
		}
		for _, c := range checks {
			if c.got != c.want {
				t.Errorf("%s = %q, want %q", c.what, c.got, c.want)
			}
		}
		if err := ValidatePod(got); err != nil {
			t.Errorf("merged pod does not validate: %v", err)
		}
	})
	t.Run("airflow", func(t *testing.T) {
		got := mergeChecked(t, workerTemplate(), taskOverride(), AirflowMerge)
		base := &got.Spec.Containers[0]
		checks := []struct{ what, got, want string }{
			{"labels", mapString(got.Labels), "cost-center=ml team=data tier=worker"},
			{"annotations", mapString(got.Annotations), "cluster-autoscaler.kubernetes.io/safe-to-evict=false trellis.dev/owner=ml-team@example.com"},
			{"containers", containerNames(got.Spec.Containers), "base:ghcr.io/acme/trellis:1.0 log-shipper:fluent/fluent-bit:3.0"},
			// env appended: LOG_LEVEL twice, the later (override) wins in the container.
			{"env", envNames(base.Env), "LOG_LEVEL=info DB_URL=<from> LOG_LEVEL=debug MODEL=resnet"},
			// resources is one object: the override's replaces the base's.
			{"limits", quantities(base.Resources.Limits), "memory=8Gi nvidia.com/gpu=1"},
			{"requests", quantities(base.Resources.Requests), ""},
			{"mounts", mountNames(base.VolumeMounts), "logs@/opt/trellis/logs config@/etc/trellis/config.yaml scratch@/scratch"},
			{"volumes", volumeNames(got.Spec.Volumes), "logs:emptyDir config:configMap dags:emptyDir scratch:emptyDir"},
			// nodeSelector is not labels/annotations: replaced whole.
			{"nodeSelector", mapString(got.Spec.NodeSelector), "pool=gpu"},
			{"tolerations", got.Spec.Tolerations[0].Key, "nvidia.com/gpu"},
			{"envFrom", base.EnvFrom[0].ConfigMapRef.Name, "trellis-env"},
		}
		for _, c := range checks {
			if c.got != c.want {
				t.Errorf("%s = %q, want %q", c.what, c.got, c.want)
			}
		}
		if err := ValidatePod(got); err != nil {
			t.Errorf("merged pod does not validate: %v", err)
		}
	})
}

// TestMergePodCases covers the edge cases where the two modes differ.
func TestMergePodCases(t *testing.T) {
	type check func(t *testing.T, got *corev1.Pod)
	pod := func(spec corev1.PodSpec) *corev1.Pod { return &corev1.Pod{Spec: spec} }
	tests := []struct {
		name           string
		base, override *corev1.Pod
		strategic      check
		airflow        check
	}{
		{
			name: "same-named env var",
			base: pod(corev1.PodSpec{Containers: []corev1.Container{{Name: "base", Image: "i",
				Env: []corev1.EnvVar{{Name: "A", Value: "1"}, {Name: "B", Value: "2"}}}}}),
			override: pod(corev1.PodSpec{Containers: []corev1.Container{{Name: "base",
				Env: []corev1.EnvVar{{Name: "B", Value: "3"}, {Name: "C", Value: "4"}}}}}),
			strategic: func(t *testing.T, got *corev1.Pod) {
				wantStr(t, "env", envNames(got.Spec.Containers[0].Env), "A=1 B=3 C=4")
			},
			airflow: func(t *testing.T, got *corev1.Pod) {
				wantStr(t, "env", envNames(got.Spec.Containers[0].Env), "A=1 B=2 B=3 C=4")
			},
		},
		{
			// Duplicate keys in the override are each merged in turn
			// (no $setElementOrder is added for such a list).
			name: "same env var twice in the override",
			base: pod(corev1.PodSpec{Containers: []corev1.Container{{Name: "base", Image: "i",
				Env: []corev1.EnvVar{{Name: "A", Value: "1"}, {Name: "B", Value: "2"}}}}}),
			override: pod(corev1.PodSpec{Containers: []corev1.Container{{Name: "base",
				Env: []corev1.EnvVar{{Name: "B", Value: "3"}, {Name: "B", Value: "4"}}}}}),
			strategic: func(t *testing.T, got *corev1.Pod) {
				wantStr(t, "env", envNames(got.Spec.Containers[0].Env), "A=1 B=4")
			},
			airflow: func(t *testing.T, got *corev1.Pod) {
				wantStr(t, "env", envNames(got.Spec.Containers[0].Env), "A=1 B=2 B=3 B=4")
			},
		},
		{
			// Strategic merge merges the env var's fields, so a value over a
			// valueFrom keeps both; the API server rejects that, and so does
			// ValidatePod. Airflow appends a second B, which is valid.
			name: "env value over valueFrom",
			base: pod(corev1.PodSpec{Containers: []corev1.Container{{Name: "base", Image: "i",
				Env: []corev1.EnvVar{{Name: "B", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}}}}}),
			override: pod(corev1.PodSpec{Containers: []corev1.Container{{Name: "base",
				Env: []corev1.EnvVar{{Name: "B", Value: "literal"}}}}}),
			strategic: func(t *testing.T, got *corev1.Pod) {
				wantStr(t, "env", envNames(got.Spec.Containers[0].Env), "B=literal+<from>")
				wantErr(t, ValidatePod(withName(got)), "spec.containers[0].env[0].valueFrom: Invalid value")
			},
			airflow: func(t *testing.T, got *corev1.Pod) {
				wantStr(t, "env", envNames(got.Spec.Containers[0].Env), "B=<from> B=literal")
				wantErr(t, ValidatePod(withName(got)), "")
			},
		},
		{
			name: "same-named init container",
			base: pod(corev1.PodSpec{
				InitContainers: []corev1.Container{{Name: "git-sync", Image: "git-sync:v3", Env: []corev1.EnvVar{{Name: "ONE_TIME", Value: "true"}}}},
				Containers:     []corev1.Container{{Name: "base", Image: "i"}},
			}),
			override: pod(corev1.PodSpec{
				InitContainers: []corev1.Container{{Name: "git-sync", Image: "git-sync:v4"}, {Name: "warm-cache", Image: "cache:1"}},
			}),
			strategic: func(t *testing.T, got *corev1.Pod) {
				wantStr(t, "initContainers", containerNames(got.Spec.InitContainers), "git-sync:git-sync:v4 warm-cache:cache:1")
				wantStr(t, "init env", envNames(got.Spec.InitContainers[0].Env), "ONE_TIME=true")
				wantErr(t, ValidatePod(withName(got)), "")
			},
			airflow: func(t *testing.T, got *corev1.Pod) {
				wantStr(t, "initContainers", containerNames(got.Spec.InitContainers), "git-sync:git-sync:v3 git-sync:git-sync:v4 warm-cache:cache:1")
				wantErr(t, ValidatePod(withName(got)), `spec.initContainers[1].name: Duplicate value: "git-sync"`)
			},
		},
		{
			name: "containers by name vs by position",
			base: pod(corev1.PodSpec{Containers: []corev1.Container{
				{Name: "base", Image: "worker:1", Env: []corev1.EnvVar{{Name: "A", Value: "1"}}},
				{Name: "sidecar", Image: "proxy:1"},
			}}),
			override: pod(corev1.PodSpec{Containers: []corev1.Container{{Name: "sidecar", Image: "proxy:2"}}}),
			strategic: func(t *testing.T, got *corev1.Pod) {
				wantStr(t, "containers", containerNames(got.Spec.Containers), "base:worker:1 sidecar:proxy:2")
				wantStr(t, "env", envNames(got.Spec.Containers[0].Env), "A=1")
			},
			airflow: func(t *testing.T, got *corev1.Pod) {
				// The override's first container is merged into the base's
				// first one: it is renamed, keeps base's env, and now
				// clashes with the real sidecar.
				wantStr(t, "containers", containerNames(got.Spec.Containers), "sidecar:proxy:2 sidecar:proxy:1")
				wantStr(t, "env", envNames(got.Spec.Containers[0].Env), "A=1")
				wantErr(t, ValidatePod(withName(got)), `spec.containers[1].name: Duplicate value: "sidecar"`)
			},
		},
		{
			name: "override lists containers in another order",
			base: pod(corev1.PodSpec{Containers: []corev1.Container{{Name: "base", Image: "a"}, {Name: "sidecar", Image: "b"}}}),
			override: pod(corev1.PodSpec{Containers: []corev1.Container{
				{Name: "sidecar", Image: "b2"}, {Name: "base", Image: "a2"}, {Name: "extra", Image: "c"}}}),
			strategic: func(t *testing.T, got *corev1.Pod) {
				// The base's order is kept ($setElementOrder); new ones follow.
				wantStr(t, "containers", containerNames(got.Spec.Containers), "base:a2 sidecar:b2 extra:c")
			},
			airflow: func(t *testing.T, got *corev1.Pod) {
				wantStr(t, "containers", containerNames(got.Spec.Containers), "sidecar:b2 base:a2 extra:c")
			},
		},
		{
			name: "override with more containers than base, positionally",
			base: pod(corev1.PodSpec{Containers: []corev1.Container{{Name: "base", Image: "a", Args: []string{"x"}}}}),
			override: pod(corev1.PodSpec{Containers: []corev1.Container{
				{Name: "", Image: "", Args: []string{"y"}}, {Name: "sidecar", Image: "s"}}}),
			strategic: func(t *testing.T, got *corev1.Pod) {
				// A nameless container matches nothing by name and is appended.
				wantStr(t, "containers", containerNames(got.Spec.Containers), "base:a : sidecar:s")
			},
			airflow: func(t *testing.T, got *corev1.Pod) {
				wantStr(t, "containers", containerNames(got.Spec.Containers), "base:a sidecar:s")
				wantStr(t, "args", strings.Join(got.Spec.Containers[0].Args, " "), "y")
			},
		},
		{
			name: "maps merged key by key",
			base: &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"a": "1", "b": "2"}, Annotations: map[string]string{"x": "1"}},
				Spec: corev1.PodSpec{NodeSelector: map[string]string{"os": "linux", "pool": "cpu"}, Containers: []corev1.Container{{Name: "base", Image: "i",
					Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}}}}},
			},
			override: &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"b": "3", "c": "4"}, Annotations: map[string]string{"x": "", "y": "2"}},
				Spec: corev1.PodSpec{NodeSelector: map[string]string{"pool": "gpu"}, Containers: []corev1.Container{{Name: "base",
					Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("2Gi")}}}}},
			},
			strategic: func(t *testing.T, got *corev1.Pod) {
				wantStr(t, "labels", mapString(got.Labels), "a=1 b=3 c=4")
				// "x": "" is a value, not a deletion.
				wantStr(t, "annotations", mapString(got.Annotations), "x= y=2")
				wantStr(t, "nodeSelector", mapString(got.Spec.NodeSelector), "os=linux pool=gpu")
				wantStr(t, "limits", quantities(got.Spec.Containers[0].Resources.Limits), "cpu=1 memory=2Gi")
			},
			airflow: func(t *testing.T, got *corev1.Pod) {
				wantStr(t, "labels", mapString(got.Labels), "a=1 b=3 c=4")
				wantStr(t, "annotations", mapString(got.Annotations), "x= y=2")
				wantStr(t, "nodeSelector", mapString(got.Spec.NodeSelector), "pool=gpu")
				wantStr(t, "limits", quantities(got.Spec.Containers[0].Resources.Limits), "memory=2Gi")
			},
		},
		{
			name: "zero values in the override",
			base: pod(corev1.PodSpec{
				Containers:                    []corev1.Container{{Name: "base", Image: "i", Stdin: true, ImagePullPolicy: corev1.PullAlways}},
				AutomountServiceAccountToken:  ptr.To(true),
				TerminationGracePeriodSeconds: ptr.To[int64](30),
				RestartPolicy:                 corev1.RestartPolicyNever,
				SecurityContext:               &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](50000), FSGroup: ptr.To[int64](50000)},
			}),
			override: pod(corev1.PodSpec{
				Containers:                    []corev1.Container{{Name: "base", Image: "", Stdin: false}},
				AutomountServiceAccountToken:  ptr.To(false),
				TerminationGracePeriodSeconds: ptr.To[int64](0),
				RestartPolicy:                 "",
				SecurityContext:               &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](0)},
			}),
			strategic: func(t *testing.T, got *corev1.Pod) {
				s := got.Spec
				// Pointers carry explicit zeros; plain zero fields are omitted.
				wantStr(t, "automount", str(*s.AutomountServiceAccountToken), "false")
				wantStr(t, "grace", str(*s.TerminationGracePeriodSeconds), "0")
				wantStr(t, "runAsUser", str(*s.SecurityContext.RunAsUser), "0")
				wantStr(t, "fsGroup", str(*s.SecurityContext.FSGroup), "50000")
				wantStr(t, "restartPolicy", string(s.RestartPolicy), "Never")
				wantStr(t, "image", s.Containers[0].Image, "i")
				wantStr(t, "stdin", str(s.Containers[0].Stdin), "true")
			},
			airflow: func(t *testing.T, got *corev1.Pod) {
				s := got.Spec
				// false, 0 and "" do not replace the base value...
				wantStr(t, "automount", str(*s.AutomountServiceAccountToken), "true")
				wantStr(t, "grace", str(*s.TerminationGracePeriodSeconds), "30")
				wantStr(t, "restartPolicy", string(s.RestartPolicy), "Never")
				wantStr(t, "image", s.Containers[0].Image, "i")
				wantStr(t, "stdin", str(s.Containers[0].Stdin), "true")
				// ...but an object does, whole: fsGroup is gone.
				wantStr(t, "runAsUser", str(*s.SecurityContext.RunAsUser), "0")
				wantStr(t, "fsGroup", str(s.SecurityContext.FSGroup == nil), "true")
			},
		},
		{
			name: "override without containers keeps the base's",
			base: pod(corev1.PodSpec{Containers: []corev1.Container{{Name: "base", Image: "i"}}}),
			override: &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"a": "1"}},
				Spec: corev1.PodSpec{PriorityClassName: "high"}},
			strategic: func(t *testing.T, got *corev1.Pod) {
				wantStr(t, "containers", containerNames(got.Spec.Containers), "base:i")
				wantStr(t, "priorityClassName", got.Spec.PriorityClassName, "high")
			},
			airflow: func(t *testing.T, got *corev1.Pod) {
				wantStr(t, "containers", containerNames(got.Spec.Containers), "base:i")
				wantStr(t, "priorityClassName", got.Spec.PriorityClassName, "high")
			},
		},
		{
			name: "volume redefined with another source",
			base: pod(corev1.PodSpec{
				Containers: []corev1.Container{{Name: "base", Image: "i", VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}}},
				Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
					LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}}}}},
			}),
			override: pod(corev1.PodSpec{
				Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
			}),
			strategic: func(t *testing.T, got *corev1.Pod) {
				// $retainKeys drops the base's configMap source.
				wantStr(t, "volumes", volumeNames(got.Spec.Volumes), "data:emptyDir")
				wantErr(t, ValidatePod(withName(got)), "")
			},
			airflow: func(t *testing.T, got *corev1.Pod) {
				wantStr(t, "volumes", volumeNames(got.Spec.Volumes), "data:configMap data:emptyDir")
				wantErr(t, ValidatePod(withName(got)), `spec.volumes[1].name: Duplicate value: "data"`)
			},
		},
		{
			name: "resource claim redefined (also retainKeys)",
			base: pod(corev1.PodSpec{
				Containers:     []corev1.Container{{Name: "base", Image: "i"}},
				ResourceClaims: []corev1.PodResourceClaim{{Name: "gpu", ResourceClaimName: ptr.To("shared-gpu")}},
			}),
			override: pod(corev1.PodSpec{
				ResourceClaims: []corev1.PodResourceClaim{{Name: "gpu", ResourceClaimTemplateName: ptr.To("one-gpu")}},
			}),
			strategic: func(t *testing.T, got *corev1.Pod) {
				rc := got.Spec.ResourceClaims
				wantStr(t, "resourceClaims", str(len(rc))+" "+str(rc[0].ResourceClaimName == nil)+" "+*rc[0].ResourceClaimTemplateName, "1 true one-gpu")
			},
			airflow: func(t *testing.T, got *corev1.Pod) {
				wantStr(t, "resourceClaims", str(len(got.Spec.ResourceClaims)), "1")
				// resourceClaims is not one of the lists Airflow extends:
				// the override's list replaces the base's.
				wantStr(t, "template", *got.Spec.ResourceClaims[0].ResourceClaimTemplateName, "one-gpu")
			},
		},
		{
			name: "volume given by name only",
			base: pod(corev1.PodSpec{
				Containers: []corev1.Container{{Name: "base", Image: "i"}},
				Volumes: []corev1.Volume{{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
					LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}}}}},
			}),
			override: pod(corev1.PodSpec{Volumes: []corev1.Volume{{Name: "cfg"}}}),
			strategic: func(t *testing.T, got *corev1.Pod) {
				wantStr(t, "volumes", volumeNames(got.Spec.Volumes), "cfg:configMap")
			},
			airflow: func(t *testing.T, got *corev1.Pod) {
				wantStr(t, "volumes", volumeNames(got.Spec.Volumes), "cfg:configMap cfg:?")
			},
		},
		{
			name: "volume source merged when the same source is named",
			base: pod(corev1.PodSpec{
				Containers: []corev1.Container{{Name: "base", Image: "i"}},
				Volumes: []corev1.Volume{{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
					LocalObjectReference: corev1.LocalObjectReference{Name: "old"}, DefaultMode: ptr.To[int32](0o444)}}}},
			}),
			override: pod(corev1.PodSpec{
				Volumes: []corev1.Volume{{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
					LocalObjectReference: corev1.LocalObjectReference{Name: "new"}}}}},
			}),
			strategic: func(t *testing.T, got *corev1.Pod) {
				cm := got.Spec.Volumes[0].ConfigMap
				wantStr(t, "configMap", cm.Name+" "+str(*cm.DefaultMode), "new 292")
			},
			airflow: func(t *testing.T, got *corev1.Pod) {
				wantStr(t, "volumes", volumeNames(got.Spec.Volumes), "cfg:configMap cfg:configMap")
			},
		},
		{
			name: "mounts and ports by key",
			base: pod(corev1.PodSpec{Containers: []corev1.Container{{Name: "base", Image: "i",
				VolumeMounts: []corev1.VolumeMount{{Name: "a", MountPath: "/a"}},
				Ports:        []corev1.ContainerPort{{ContainerPort: 80, Name: "http"}}}}}),
			override: pod(corev1.PodSpec{Containers: []corev1.Container{{Name: "base",
				VolumeMounts: []corev1.VolumeMount{{Name: "a", MountPath: "/a", ReadOnly: true}, {Name: "b", MountPath: "/b"}},
				Ports:        []corev1.ContainerPort{{ContainerPort: 80, Name: "web"}, {ContainerPort: 9090}}}}}),
			strategic: func(t *testing.T, got *corev1.Pod) {
				c := got.Spec.Containers[0]
				wantStr(t, "mounts", mountNames(c.VolumeMounts), "a@/a b@/b")
				wantStr(t, "readOnly", str(c.VolumeMounts[0].ReadOnly), "true")
				wantStr(t, "ports", str(len(c.Ports))+" "+c.Ports[0].Name, "2 web")
			},
			airflow: func(t *testing.T, got *corev1.Pod) {
				c := got.Spec.Containers[0]
				wantStr(t, "mounts", mountNames(c.VolumeMounts), "a@/a a@/a b@/b")
				wantStr(t, "ports", str(len(c.Ports)), "3")
				wantErr(t, ValidatePod(withName(got)), `spec.containers[0].volumeMounts[1].mountPath: Invalid value: "/a": must be unique`)
			},
		},
		{
			name: "atomic lists replaced",
			base: pod(corev1.PodSpec{Containers: []corev1.Container{{Name: "base", Image: "i",
				Command: []string{"trellis"}, Args: []string{"task-run", "--a"},
				EnvFrom: []corev1.EnvFromSource{{Prefix: "A_"}}}}}),
			override: pod(corev1.PodSpec{Containers: []corev1.Container{{Name: "base",
				Args: []string{"--b"}, EnvFrom: []corev1.EnvFromSource{{Prefix: "B_"}}}}}),
			strategic: func(t *testing.T, got *corev1.Pod) {
				c := got.Spec.Containers[0]
				wantStr(t, "command args", strings.Join(c.Command, " ")+"|"+strings.Join(c.Args, " "), "trellis|--b")
				wantStr(t, "envFrom", str(len(c.EnvFrom))+c.EnvFrom[0].Prefix, "1B_")
			},
			airflow: func(t *testing.T, got *corev1.Pod) {
				c := got.Spec.Containers[0]
				wantStr(t, "command args", strings.Join(c.Command, " ")+"|"+strings.Join(c.Args, " "), "trellis|--b")
				wantStr(t, "envFrom", str(len(c.EnvFrom))+c.EnvFrom[0].Prefix+c.EnvFrom[1].Prefix, "2A_B_")
			},
		},
		{
			name:     "finalizers",
			base:     &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Finalizers: []string{"a/x"}}},
			override: &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Finalizers: []string{"b/y"}}},
			strategic: func(t *testing.T, got *corev1.Pod) {
				// finalizers are patchStrategy merge: a set union.
				wantStr(t, "finalizers", strings.Join(got.Finalizers, " "), "a/x b/y")
			},
			airflow: func(t *testing.T, got *corev1.Pod) {
				// reconcile_metadata discards extend_object_field's result,
				// so the override's list replaces the base's.
				wantStr(t, "finalizers", strings.Join(got.Finalizers, " ")+" "+got.Name, "b/y p")
			},
		},
		{
			name:     "type meta and status",
			base:     &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}, Status: corev1.PodStatus{Phase: corev1.PodPending}},
			override: &corev1.Pod{Spec: corev1.PodSpec{Hostname: "h"}},
			strategic: func(t *testing.T, got *corev1.Pod) {
				wantStr(t, "type", got.APIVersion+"/"+got.Kind+" "+string(got.Status.Phase)+" "+got.Spec.Hostname, "v1/Pod Pending h")
			},
			airflow: func(t *testing.T, got *corev1.Pod) {
				wantStr(t, "type", got.APIVersion+"/"+got.Kind+" "+string(got.Status.Phase)+" "+got.Spec.Hostname, "v1/Pod Pending h")
			},
		},
		{
			name:     "empty base spec takes the override's",
			base:     &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "only-meta"}},
			override: pod(corev1.PodSpec{Containers: []corev1.Container{{Name: "base", Image: "i"}}}),
			strategic: func(t *testing.T, got *corev1.Pod) {
				wantStr(t, "result", got.Name+" "+containerNames(got.Spec.Containers), "only-meta base:i")
			},
			airflow: func(t *testing.T, got *corev1.Pod) {
				wantStr(t, "result", got.Name+" "+containerNames(got.Spec.Containers), "only-meta base:i")
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name+"/strategic", func(t *testing.T) {
			tt.strategic(t, mergeChecked(t, tt.base, tt.override, StrategicMerge))
		})
		t.Run(tt.name+"/airflow", func(t *testing.T) {
			tt.airflow(t, mergeChecked(t, tt.base, tt.override, AirflowMerge))
		})
	}
}

func withName(p *corev1.Pod) *corev1.Pod {
	p = p.DeepCopy()
	p.Name = "p"
	return p
}

func str(v any) string { return fmt.Sprint(v) }

func sprint(v any) string { return fmt.Sprint(v) }

func wantStr(t *testing.T, what, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

// wantErr checks err contains want, or is nil when want is "".
func wantErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("unexpected error: %v", err)
	case want != "" && err == nil:
		t.Errorf("no error, want %q", want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Errorf("error %q does not contain %q", err, want)
	}
}

func TestMergePodNilAndMode(t *testing.T) {
	base, override := workerTemplate(), taskOverride()
	for _, mode := range []MergeMode{StrategicMerge, AirflowMerge} {
		got, err := MergePod(base, nil, mode)
		if err != nil || !equalExact(got, base) || got == base {
			t.Errorf("%v: nil override: %v, equal %v", mode, err, equalExact(got, base))
		}
		got, err = MergePod(nil, override, mode)
		if err != nil || !equalExact(got, override) || got == override {
			t.Errorf("%v: nil base: %v", mode, err)
		}
		got, err = MergePod(nil, nil, mode)
		if err != nil || got == nil || !equalExact(got, &corev1.Pod{}) {
			t.Errorf("%v: both nil: %v %v", mode, got, err)
		}
	}
	if _, err := MergePod(base, override, MergeMode(7)); err == nil || !strings.Contains(err.Error(), "MergeMode(7)") {
		t.Errorf("unknown mode: %v", err)
	}
	if StrategicMerge.String() != "strategic" || AirflowMerge.String() != "airflow" {
		t.Error("MergeMode.String")
	}
	var zero MergeMode
	if zero != StrategicMerge {
		t.Error("the zero MergeMode is not StrategicMerge")
	}
}

// TestMergePodEmptyOverrideIsIdentity: merging &corev1.Pod{} changes
// nothing, under both modes.
func TestMergePodEmptyOverrideIsIdentity(t *testing.T) {
	bases := []*corev1.Pod{workerTemplate(), taskOverride(), {}, {Spec: corev1.PodSpec{Containers: []corev1.Container{}}}}
	airflow, err := LoadPodTemplate("testdata/templates/airflow_dags_in_image_template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	bases = append(bases, airflow)
	for i, base := range bases {
		for _, mode := range []MergeMode{StrategicMerge, AirflowMerge} {
			got := mergeChecked(t, base, &corev1.Pod{}, mode)
			if !equality.Semantic.DeepEqual(got, base) {
				t.Errorf("base %d, %v: empty override changed the pod:\n%s", i, mode, diff.Diff(base, got))
			}
		}
	}
}

// TestStrategicMergeRejectsDirectives: a map key that spells a patch
// directive must not reach strategicpatch.
func TestStrategicMergeRejectsDirectives(t *testing.T) {
	base := workerTemplate()
	for _, override := range []*corev1.Pod{
		{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"$patch": "replace"}}},
		{Spec: corev1.PodSpec{NodeSelector: map[string]string{"$retainKeys": "x"}}},
		{Spec: corev1.PodSpec{Volumes: []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{CSI: &corev1.CSIVolumeSource{
			Driver: "d", VolumeAttributes: map[string]string{"$patch": "delete"}}}}}}},
	} {
		_, err := MergePod(base, override, StrategicMerge)
		if err == nil || !strings.Contains(err.Error(), "directive") {
			t.Errorf("MergePod with directive key: %v", err)
		}
		// AirflowMerge has no directives: the key is plain data.
		if _, err := MergePod(base, override, AirflowMerge); err != nil {
			t.Errorf("AirflowMerge: %v", err)
		}
	}
}

// TestStrategicMergeNewVolumeHasNoDirective: $retainKeys is only added for
// volumes that replace a base volume, and never leaks into the result.
func TestStrategicMergeNewVolumeHasNoDirective(t *testing.T) {
	base := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "base", Image: "i"}}}}
	override := &corev1.Pod{Spec: corev1.PodSpec{Volumes: []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{
		EmptyDir: &corev1.EmptyDirVolumeSource{}}}}}}
	got := mergeChecked(t, base, override, StrategicMerge)
	wantStr(t, "volumes", volumeNames(got.Spec.Volumes), "v:emptyDir")
	patch, err := overridePatch(override)
	if err != nil {
		t.Fatal(err)
	}
	original, err := runtime.DefaultUnstructuredConverter.ToUnstructured(base)
	if err != nil {
		t.Fatal(err)
	}
	meta, err := podPatchMeta()
	if err != nil {
		t.Fatal(err)
	}
	addDirectives(patch, original, meta)
	if s := sprint(patch); strings.Contains(s, "$retainKeys") {
		t.Errorf("patch for a new volume has $retainKeys: %s", s)
	}
}

// BenchmarkMergePod merges a realistic per-task override (resources, env,
// a volume, labels, node selector, tolerations) into a realistic worker
// template (two containers, an init container, three volumes).
func BenchmarkMergePod(b *testing.B) {
	base, override := workerTemplate(), taskOverride()
	for _, mode := range []MergeMode{StrategicMerge, AirflowMerge} {
		b.Run(mode.String(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := MergePod(base, override, mode); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestAirflowMergeProviderCases mirrors the expectations of the provider's
// own unit tests of reconcile_containers and reconcile_specs
// (tests/unit/cncf/kubernetes/test_pod_generator.py).
func TestAirflowMergeProviderCases(t *testing.T) {
	// reconcile_containers: paired by position, ports extended, the
	// client's name kept, a missing image taken from the base.
	base := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{
		{Name: "base_container1", Ports: []corev1.ContainerPort{{ContainerPort: 1, Name: "base_port"}}},
		{Name: "base_container2", Image: "base_image"},
	}}}
	client := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{
		{Name: "client_container1", Ports: []corev1.ContainerPort{{ContainerPort: 2, Name: "client_port"}}},
		{Name: "client_container2", Stdin: true},
	}}}
	got := mergeChecked(t, base, client, AirflowMerge)
	want := []corev1.Container{
		{Name: "client_container1", Ports: []corev1.ContainerPort{{ContainerPort: 1, Name: "base_port"}, {ContainerPort: 2, Name: "client_port"}}},
		{Name: "client_container2", Image: "base_image", Stdin: true},
	}
	if d := diff.Diff(want, got.Spec.Containers); d != "" {
		t.Errorf("reconcile_containers case:\n%s", d)
	}

	// reconcile_specs: priority from the client, activeDeadlineSeconds from
	// the base, hostname from the client.
	base = &corev1.Pod{Spec: corev1.PodSpec{Priority: ptr.To[int32](1), ActiveDeadlineSeconds: ptr.To[int64](100),
		Containers: []corev1.Container{{Name: "base_container1", Image: "base_image"}}}}
	client = &corev1.Pod{Spec: corev1.PodSpec{Priority: ptr.To[int32](2), Hostname: "local",
		Containers: []corev1.Container{{Name: "client_container1"}}}}
	got = mergeChecked(t, base, client, AirflowMerge)
	wantSpec := corev1.PodSpec{Priority: ptr.To[int32](2), ActiveDeadlineSeconds: ptr.To[int64](100), Hostname: "local",
		Containers: []corev1.Container{{Name: "client_container1", Image: "base_image"}}}
	if d := diff.Diff(wantSpec, got.Spec); d != "" {
		t.Errorf("reconcile_specs case:\n%s", d)
	}

	// reconcile_metadata: labels from the base kept, annotations merged
	// (the provider's test_merge_objects checks the first half).
	base = &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{"foo1": "bar1"}, Labels: map[string]string{"foo1": "bar1"}}}
	client = &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{"foo2": "bar2"}}}
	got = mergeChecked(t, base, client, AirflowMerge)
	wantStr(t, "labels", mapString(got.Labels), "foo1=bar1")
	wantStr(t, "annotations", mapString(got.Annotations), "foo1=bar1 foo2=bar2")
}
