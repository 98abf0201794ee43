package k8s

import (
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func validPod() *corev1.Pod {
	p := workerTemplate()
	p.Name = "etl-extract-1-abcdefabcdef"
	return p
}

func TestValidatePod(t *testing.T) {
	if err := ValidatePod(validPod()); err != nil {
		t.Fatalf("valid pod: %v", err)
	}
	tests := []struct {
		name   string
		mutate func(p *corev1.Pod)
		want   []string // one line each, in order
	}{
		{"no name", func(p *corev1.Pod) { p.Name = "" },
			[]string{"metadata.name: Required value: name or generateName is required"}},
		{"bad name", func(p *corev1.Pod) { p.Name = "Bad_Name" },
			[]string{`metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain`}},
		{"generateName", func(p *corev1.Pod) { p.Name, p.GenerateName = "", "etl-" },
			[]string{"metadata.name: Required value"}},
		{"bad namespace", func(p *corev1.Pod) { p.Namespace = "Team A" },
			[]string{`metadata.namespace: Invalid value: "Team A"`}},
		{"bad label", func(p *corev1.Pod) { p.Labels["bad key!"] = "v"; p.Labels["ok"] = strings.Repeat("v", 64) },
			[]string{`metadata.labels: Invalid value: "bad key!"`, `metadata.labels: Invalid value: "vvvv`}},
		{"bad annotation", func(p *corev1.Pod) { p.Annotations["/x"] = "v" },
			[]string{`metadata.annotations: Invalid value: "/x"`}},
		{"annotations too large", func(p *corev1.Pod) { p.Annotations["big"] = strings.Repeat("x", 300*1024) },
			[]string{"metadata.annotations: Too long: may not be more than 262144 bytes"}},
		{"no containers", func(p *corev1.Pod) { p.Spec.Containers = nil },
			[]string{"spec.containers: Required value"}},
		{"container without image", func(p *corev1.Pod) { p.Spec.Containers[1].Image = "" },
			[]string{"spec.containers[1].image: Required value"}},
		{"container names", func(p *corev1.Pod) {
			p.Spec.Containers[1].Name = "git-sync" // the init container's name
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "Bad_Name", Image: "i"})
		}, []string{
			`spec.containers[1].name: Duplicate value: "git-sync"`,
			`spec.containers[2].name: Invalid value: "Bad_Name": a lowercase RFC 1123 label`,
		}},
		{"container name missing", func(p *corev1.Pod) { p.Spec.Containers[1].Name = "" },
			[]string{"spec.containers[1].name: Required value"}},
		{"mount of a missing volume", func(p *corev1.Pod) {
			p.Spec.Containers[0].VolumeMounts = append(p.Spec.Containers[0].VolumeMounts, corev1.VolumeMount{Name: "scratch", MountPath: "/scratch"})
		}, []string{`spec.containers[0].volumeMounts[2].name: Not found: "scratch"`}},
		{"mount in an init container", func(p *corev1.Pod) { p.Spec.InitContainers[0].VolumeMounts[0].Name = "dagz" },
			[]string{`spec.initContainers[0].volumeMounts[0].name: Not found: "dagz"`}},
		{"mount path", func(p *corev1.Pod) {
			p.Spec.Containers[1].VolumeMounts = append(p.Spec.Containers[1].VolumeMounts,
				corev1.VolumeMount{Name: "logs", MountPath: "/logs"}, corev1.VolumeMount{Name: "logs"})
		}, []string{
			`spec.containers[1].volumeMounts[1].mountPath: Invalid value: "/logs": must be unique`,
			"spec.containers[1].volumeMounts[2].mountPath: Required value",
		}},
		{"volume devices", func(p *corev1.Pod) {
			p.Spec.Containers[0].VolumeDevices = []corev1.VolumeDevice{{Name: "disk", DevicePath: "/dev/xvda"}}
		}, []string{`spec.containers[0].volumeDevices[0].name: Not found: "disk"`}},
		{"volumes", func(p *corev1.Pod) {
			p.Spec.Volumes = append(p.Spec.Volumes,
				corev1.Volume{Name: "logs", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				corev1.Volume{Name: "Cache", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{},
					HostPath: &corev1.HostPathVolumeSource{Path: "/tmp"}}},
				corev1.Volume{})
		}, []string{
			`spec.volumes[3].name: Duplicate value: "logs"`,
			`spec.volumes[4].name: Invalid value: "Cache"`,
			"spec.volumes[4]: Forbidden: may not specify more than 1 volume type",
			"spec.volumes[5].name: Required value",
		}},
		{"env", func(p *corev1.Pod) {
			p.Spec.Containers[0].Env = append(p.Spec.Containers[0].Env,
				corev1.EnvVar{Name: ""},
				corev1.EnvVar{Name: "A=B"},
				corev1.EnvVar{Name: "BOTH", Value: "x", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}})
		}, []string{
			`spec.containers[0].env[2].name: Invalid value: "": environment variable name must be non-empty`,
			`spec.containers[0].env[3].name: Invalid value: "A=B"`,
			"spec.containers[0].env[4].valueFrom: Invalid value: \"\": may not be specified when `value` is not empty",
		}},
		{"ports", func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = append(p.Spec.Containers[0].Ports,
				corev1.ContainerPort{ContainerPort: 0}, corev1.ContainerPort{ContainerPort: 80, Name: "Not_A_Port_Name"})
		}, []string{
			"spec.containers[0].ports[1].containerPort: Invalid value: 0",
			`spec.containers[0].ports[2].name: Invalid value: "Not_A_Port_Name"`,
		}},
		{"spec fields", func(p *corev1.Pod) {
			p.Spec.ServiceAccountName = "RELEASE-NAME-worker"
			p.Spec.RestartPolicy = "Sometimes"
			p.Spec.NodeSelector["bad key!"] = "x"
		}, []string{
			`spec.serviceAccountName: Invalid value: "RELEASE-NAME-worker"`,
			`spec.restartPolicy: Unsupported value: "Sometimes"`,
			`spec.nodeSelector: Invalid value: "bad key!"`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := validPod()
			tt.mutate(p)
			err := ValidatePod(p)
			if err == nil {
				t.Fatal("no error")
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.want) {
				t.Fatalf("got %d problems, want %d:\n%v", len(lines), len(tt.want), err)
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(lines[i], w) {
					t.Errorf("problem %d = %q, want prefix %q", i, lines[i], w)
				}
			}
			var fe *field.Error
			if !errors.As(err, &fe) {
				t.Errorf("errors.As(*field.Error) failed on %v", err)
			}
		})
	}
	if err := ValidatePod(nil); err == nil {
		t.Error("nil pod validated")
	}
}

func TestValidateWorkerTemplate(t *testing.T) {
	tmpl := workerTemplate()
	tmpl.Name = ""
	tmpl.Spec.Containers[0].Image = "" // the builder sets the base image
	if err := ValidateWorkerTemplate(tmpl); err != nil {
		t.Errorf("template without name and base image: %v", err)
	}
	if err := ValidatePod(tmpl); err == nil {
		t.Error("ValidatePod accepted a pod without name and image")
	}

	tmpl.Spec.Containers[0].Name = "main"
	err := ValidateWorkerTemplate(tmpl)
	want := []string{
		"spec.containers[0].image: Required value",
		`spec.containers: Required value: a container named "base" is required`,
	}
	if err == nil {
		t.Fatal("template without base container validated")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(want) {
		t.Fatalf("problems:\n%v", err)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("problem %d = %q, want %q", i, lines[i], w)
		}
	}

	// Sidecars still need their image in a template.
	tmpl = workerTemplate()
	tmpl.Spec.Containers[1].Image = ""
	if err := ValidateWorkerTemplate(tmpl); err == nil || !strings.Contains(err.Error(), "spec.containers[1].image") {
		t.Errorf("sidecar without image: %v", err)
	}
	if err := ValidateWorkerTemplate(nil); err == nil {
		t.Error("nil template validated")
	}
}
