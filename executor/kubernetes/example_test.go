package kubernetes_test

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	kubeexec "github.com/trellisdag/trellis/executor/kubernetes"
)

// ClientOf adapts a clientset (here the fake one; kubernetes.NewForConfig's
// alike) to the executor's Client, for Config.Client.
func ExampleClientOf() {
	cs := fake.NewClientset()
	client := kubeexec.ClientOf(cs.CoreV1().Pods, cs.CoreV1().Events)

	ctx := context.Background()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "hello"}}
	if _, err := client.Pods("team").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		fmt.Println(err)
		return
	}
	got, err := client.Pods("team").Get(ctx, "hello", metav1.GetOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(got.Namespace + "/" + got.Name)
	// Output: team/hello
}
