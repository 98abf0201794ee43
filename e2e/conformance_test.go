package e2e

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/trellisdag/trellis/executor"
	"github.com/trellisdag/trellis/executor/executortest"
	kubeexec "github.com/trellisdag/trellis/executor/kubernetes"
	"github.com/trellisdag/trellis/k8s"
	"github.com/trellisdag/trellis/k8s/termination"
	"github.com/trellisdag/trellis/task"
)

var conformanceInstances atomic.Int64

// TestKubeExecutorConformance runs the executor seam's conformance suite
// against the Kubernetes executor on the local cluster, as the runner's
// restricted user. Each try is a worker pod (busybox) whose base container
// does what the suite asks and writes its end as a worker does, a
// termination.Message in its termination log. Every executor gets an
// instance of its own (an executor deletes the pods of its instance that no
// try of it owns), whose pods are deleted after the subtest.
func TestKubeExecutorConformance(t *testing.T) {
	e := need(t)
	image := os.Getenv("TRELLIS_KUBE_BUSYBOX_IMAGE")
	if image == "" {
		image = "trellis.local/busybox:1"
	}
	stamp := time.Now().UTC().Format("150405")
	executortest.RunConformance(t, executortest.Harness{
		New: func(t *testing.T, report executor.ReportFunc) executor.Executor {
			instance := fmt.Sprintf("conf-%s-%d", stamp, conformanceInstances.Add(1))
			t.Cleanup(func() { deleteInstancePods(t, e, instance) })
			cs := fastClient(t, e.runnerKube)
			ex, err := kubeexec.New(kubeexec.Config{
				Client: kubeexec.ClientOf(cs.CoreV1().Pods, cs.CoreV1().Events), Namespace: namespace, Instance: instance,
				Build: func(_ context.Context, tr executor.Try) (*corev1.Pod, error) {
					return conformancePod(tr, instance, image), nil
				},
				Report:       report,
				KillGrace:    time.Second,
				CleanupDelay: time.Millisecond,
			})
			if err != nil {
				t.Fatal(err)
			}
			return ex
		},
		Try: func(t *testing.T, k executor.Key, b executortest.Behavior) executor.Try {
			return executor.Try{Key: k, Task: executortest.GoTask(k.TaskID, b)}
		},
		Wait:    90 * time.Second,
		Timeout: 2 * time.Second,
		// A worker writes task.ErrFailNow as termination.Message.NoRetry.
		NoRetry:           true,
		ShutdownEndsTries: false,
		RecoverQueued:     executor.Lost,
		RecoverRunning:    executor.Failed,
	})
}

// conformanceBehaviors maps a conformance try's task id (executortest.Behavior's
// String) to what its pod's base container runs.
var conformanceBehaviors = map[string]executortest.Behavior{}

func init() {
	for b := executortest.Succeed; b <= executortest.Block; b++ {
		conformanceBehaviors[b.String()] = b
	}
}

// conformancePod is the worker pod of a conformance try.
func conformancePod(tr executor.Try, instance, image string) *corev1.Pod {
	id := k8s.TryIdentity{DAGID: tr.DAGID, RunID: tr.RunID, TaskID: tr.TaskID, Try: tr.Try, Instance: instance}
	ann := id.Annotations()
	ann[k8s.AnnotationKind] = k8s.KindWorker
	end := func(m termination.Message) string {
		body, _ := m.Encode()
		return fmt.Sprintf("printf '%%s' '%s' > %s", body, k8s.TerminationLog)
	}
	var script string
	switch conformanceBehaviors[tr.TaskID] {
	case executortest.Succeed:
		script = end(termination.Message{Status: termination.Succeeded, Result: []byte(executortest.Result)})
	case executortest.Fail:
		script = end(termination.Message{Status: termination.Failed, Error: executortest.FailMessage}) + "; exit 1"
	case executortest.FailNow:
		script = end(termination.Message{Status: termination.Failed, Error: executortest.FailMessage + ": " + task.ErrFailNow.Error(),
			NoRetry: true}) + "; exit 1"
	case executortest.Skip:
		script = end(termination.Message{Status: termination.Skipped, Error: executortest.SkipMessage})
	default: // Block: a worker that ignores SIGTERM, killed after the grace
		script = "sleep 3600"
	}
	zero := int64(0)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: id.PodName(), Namespace: namespace, Labels: id.Labels(), Annotations: ann},
		Spec: corev1.PodSpec{
			RestartPolicy:                 corev1.RestartPolicyNever,
			TerminationGracePeriodSeconds: &zero,
			Containers: []corev1.Container{{Name: k8s.BaseContainerName, Image: image, ImagePullPolicy: corev1.PullNever,
				Command: []string{"sh", "-c", script}, TerminationMessagePath: k8s.TerminationLog}},
		},
	}
}

// deleteInstancePods deletes what an executor of the suite left (the pods of
// a try still running at its Shutdown, kept pods).
func deleteInstancePods(t *testing.T, e *env, instance string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	zero := int64(0)
	err := e.admin.CoreV1().Pods(namespace).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &zero},
		metav1.ListOptions{LabelSelector: k8s.InstanceSelector(instance)})
	if err != nil {
		t.Errorf("delete the pods of instance %s: %v", instance, err)
	}
}
