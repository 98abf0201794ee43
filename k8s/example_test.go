package k8s_test

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/trellisdag/trellis/k8s"
)

// The platform team's template gives the base container an env var and a
// CPU limit; a task's override asks for more memory and one more env var.
// StrategicMerge merges both by key; AirflowMerge appends the env vars and
// replaces the resources object whole, as Airflow's reconcile_pods does.
func ExampleMergePod() {
	template := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"team": "platform"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name:  k8s.BaseContainerName,
			Image: "ghcr.io/acme/etl:1.0",
			Env:   []corev1.EnvVar{{Name: "LOG_LEVEL", Value: "info"}},
			Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("1"),
			}},
		}}},
	}
	override := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"cost-center": "ml"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: k8s.BaseContainerName,
			Env:  []corev1.EnvVar{{Name: "LOG_LEVEL", Value: "debug"}, {Name: "MODEL", Value: "resnet"}},
			Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{
				corev1.ResourceMemory: resource.MustParse("8Gi"),
			}},
		}}},
	}
	for _, mode := range []k8s.MergeMode{k8s.StrategicMerge, k8s.AirflowMerge} {
		pod, err := k8s.MergePod(template, override, mode)
		if err != nil {
			fmt.Println(err)
			return
		}
		c := pod.Spec.Containers[0]
		fmt.Printf("%s:\n  labels: %v\n  image: %s\n  env:", mode, pod.Labels, c.Image)
		for _, e := range c.Env {
			fmt.Printf(" %s=%s", e.Name, e.Value)
		}
		cpu, mem := c.Resources.Limits[corev1.ResourceCPU], c.Resources.Limits[corev1.ResourceMemory]
		fmt.Printf("\n  limits: cpu=%s memory=%s\n", cpu.String(), mem.String())
	}
	// Output:
	// strategic:
	//   labels: map[cost-center:ml team:platform]
	//   image: ghcr.io/acme/etl:1.0
	//   env: LOG_LEVEL=debug MODEL=resnet
	//   limits: cpu=1 memory=8Gi
	// airflow:
	//   labels: map[cost-center:ml team:platform]
	//   image: ghcr.io/acme/etl:1.0
	//   env: LOG_LEVEL=info LOG_LEVEL=debug MODEL=resnet
	//   limits: cpu=0 memory=8Gi
}
