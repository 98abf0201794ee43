package kubernetes

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/trellisdag/trellis/executor"
	"github.com/trellisdag/trellis/k8s"
	"github.com/trellisdag/trellis/k8s/termination"
	"github.com/trellisdag/trellis/task"
)

const ns = "data"

type harness struct {
	t       *testing.T
	client  *fake.Clientset
	ex      *Executor
	reports chan executor.Report
	logMu   sync.Mutex
	logs    map[executor.Key]*bytes.Buffer
}

type logBuf struct {
	h *harness
	k executor.Key
}

func (l logBuf) Write(p []byte) (int, error) {
	l.h.logMu.Lock()
	defer l.h.logMu.Unlock()
	return l.h.logs[l.k].Write(p)
}

func (l logBuf) Close() error { return nil }

func newHarness(t *testing.T, mutate func(*Config), objects ...runtime.Object) *harness {
	t.Helper()
	h := &harness{t: t, client: fake.NewClientset(objects...), reports: make(chan executor.Report, 100), logs: map[executor.Key]*bytes.Buffer{}}
	cfg := Config{
		Client: ClientOf(h.client.CoreV1().Pods, h.client.CoreV1().Events), Namespace: ns, Instance: "inst",
		Build:  func(ctx context.Context, t executor.Try) (*corev1.Pod, error) { return testPod(t), nil },
		Report: func(r executor.Report) { h.reports <- r },
		Logs: func(k executor.Key) io.WriteCloser {
			h.logMu.Lock()
			defer h.logMu.Unlock()
			if h.logs[k] == nil {
				h.logs[k] = &bytes.Buffer{}
			}
			return logBuf{h, k}
		},
		SavedLog: func(k executor.Key) ([]byte, error) {
			h.logMu.Lock()
			defer h.logMu.Unlock()
			if b := h.logs[k]; b != nil {
				return append([]byte(nil), b.Bytes()...), nil
			}
			return nil, nil
		},
		CleanupDelay: time.Millisecond, ImagePullGrace: 200 * time.Millisecond, KillGrace: time.Second,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	ex, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.ex = ex
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := ex.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return h
}

func testTry(taskID string, try int) executor.Try {
	info := task.Info{DAGID: "etl", TaskID: taskID, RunID: "manual__2024-01-01", Try: try, MaxTries: 3}
	return executor.Try{Key: executor.Key{Run: 1, DAGID: "etl", RunID: info.RunID, TaskID: taskID, Try: try},
		Info: info, Task: task.Go(taskID, func(context.Context, *task.Run) (int, error) { return 0, nil }), State: task.StateQueued}
}

func testPod(t executor.Try) *corev1.Pod {
	id := k8s.TryIdentity{DAGID: t.DAGID, RunID: t.RunID, TaskID: t.TaskID, Try: t.Try, Instance: "inst"}
	ann := id.Annotations()
	ann[k8s.AnnotationKind] = k8s.KindWorker
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: id.PodName(), Namespace: ns, Labels: id.Labels(), Annotations: ann},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "base", Image: "x"}}, RestartPolicy: corev1.RestartPolicyNever},
	}
}

// next waits for a report, failing after a bound.
func (h *harness) next() executor.Report {
	h.t.Helper()
	select {
	case r := <-h.reports:
		return r
	case <-time.After(10 * time.Second):
		h.t.Fatal("no report within 10s")
	}
	return executor.Report{}
}

func (h *harness) want(status executor.Status) executor.Report {
	h.t.Helper()
	r := h.next()
	if r.Status != status {
		h.t.Fatalf("report %v (%s), want %v", r.Status, r.Error, status)
	}
	return r
}

// waitPod waits until the pod exists (created by the executor).
func (h *harness) waitPod(name string) *corev1.Pod {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		p, err := h.client.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err == nil {
			return p
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("pod %s never created", name)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitSeen waits until the executor has seen the try's pod through its
// informer.
func (h *harness) waitSeen(k executor.Key) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		h.ex.mu.Lock()
		tr := h.ex.byKey[k]
		h.ex.mu.Unlock()
		if tr != nil {
			tr.mu.Lock()
			seen := tr.seen
			tr.mu.Unlock()
			if seen {
				return
			}
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("try %v: pod never seen", k)
		}
		time.Sleep(time.Millisecond)
	}
}

func (h *harness) setStatus(name string, f func(*corev1.PodStatus)) {
	h.t.Helper()
	p, err := h.client.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	f(&p.Status)
	if _, err := h.client.CoreV1().Pods(ns).UpdateStatus(context.Background(), p, metav1.UpdateOptions{}); err != nil {
		h.t.Fatal(err)
	}
}

func running(s *corev1.PodStatus) {
	s.Phase = corev1.PodRunning
	s.ContainerStatuses = []corev1.ContainerStatus{{Name: "base", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}}}}
}

func terminated(phase corev1.PodPhase, code int32, reason, msg string) func(*corev1.PodStatus) {
	return func(s *corev1.PodStatus) {
		s.Phase = phase
		s.ContainerStatuses = []corev1.ContainerStatus{{Name: "base", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: code, Reason: reason, Message: msg, StartedAt: metav1.Now(), FinishedAt: metav1.Now()}}}}
	}
}

func waiting(reason, msg string) func(*corev1.PodStatus) {
	return func(s *corev1.PodStatus) {
		s.Phase = corev1.PodPending
		s.ContainerStatuses = []corev1.ContainerStatus{{Name: "base", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: msg}}}}
	}
}

func (h *harness) waitGone(name string) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := h.client.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("pod %s not deleted", name)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (h *harness) creates() int {
	n := 0
	for _, a := range h.client.Actions() {
		if a.GetVerb() == "create" && a.GetResource().Resource == "pods" && a.GetSubresource() == "" {
			n++
		}
	}
	return n
}

func TestSuccessWithResultLogsAndCleanup(t *testing.T) {
	h := newHarness(t, nil)
	try := testTry("extract", 1)
	if err := h.ex.Start(context.Background(), try); err != nil {
		t.Fatal(err)
	}
	name := testPod(try).Name
	h.waitPod(name)
	h.setStatus(name, running)
	r := h.want(executor.Started)
	if r.Pod != name {
		t.Errorf("started report pod %q", r.Pod)
	}
	body, _ := termination.Message{Status: termination.Succeeded, Result: json.RawMessage(`[1,2,3]`)}.Encode()
	h.setStatus(name, terminated(corev1.PodSucceeded, 0, "Completed", string(body)))
	r = h.want(executor.Succeeded)
	if string(r.Result) != "[1,2,3]" || r.ExitCode == nil || *r.ExitCode != 0 {
		t.Errorf("result %s exit %v", r.Result, r.ExitCode)
	}
	h.waitGone(name) // delete on success
	h.logMu.Lock()
	got := h.logs[try.Key].String()
	h.logMu.Unlock()
	if !strings.Contains(got, "fake logs") || strings.Count(got, "fake logs") != 1 {
		t.Errorf("log = %q, want the container's log once", got)
	}
}

func TestFailureKeepsPodAndRecordsExitCode(t *testing.T) {
	h := newHarness(t, nil)
	try := testTry("load", 2)
	h.ex.Start(context.Background(), try)
	name := testPod(try).Name
	h.waitPod(name)
	body, _ := termination.Message{Status: termination.Failed, Error: "command exited with status 3", ExitCode: 3}.Encode()
	h.setStatus(name, terminated(corev1.PodFailed, 3, "Error", string(body)))
	h.want(executor.Started)
	r := h.want(executor.Failed)
	if r.Error != "command exited with status 3" || *r.ExitCode != 3 {
		t.Errorf("failed report: %q exit %d", r.Error, *r.ExitCode)
	}
	// Shutdown applies the cleanup policy to finished tries at once and
	// waits for the workers: any delete has happened when it returns.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.ex.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	for _, a := range h.client.Actions() {
		if a.GetVerb() == "delete" && a.GetResource().Resource == "pods" {
			t.Errorf("failed pod deleted under delete-on-success: %v", a)
		}
	}
	if _, err := h.client.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{}); err != nil {
		t.Errorf("failed pod gone under delete-on-success: %v", err)
	}
}

func TestCrashWithoutMessage(t *testing.T) {
	h := newHarness(t, nil)
	try := testTry("oom", 1)
	h.ex.Start(context.Background(), try)
	name := testPod(try).Name
	h.waitPod(name)
	h.setStatus(name, terminated(corev1.PodFailed, 137, "OOMKilled", ""))
	h.want(executor.Started)
	r := h.want(executor.Failed)
	if !strings.Contains(r.Error, "OOMKilled, exit code 137") {
		t.Errorf("error %q", r.Error)
	}
}

func TestFailFastReasons(t *testing.T) {
	for _, reason := range []string{"InvalidImageName", "CreateContainerConfigError", "CreateContainerError", "ErrImageNeverPull"} {
		t.Run(reason, func(t *testing.T) {
			h := newHarness(t, nil)
			try := testTry("t", 1)
			h.ex.Start(context.Background(), try)
			name := testPod(try).Name
			h.waitPod(name)
			h.setStatus(name, waiting(reason, "secret \"db\" not found"))
			r := h.want(executor.Failed)
			if !strings.Contains(r.Error, reason) {
				t.Errorf("error %q lacks %s", r.Error, reason)
			}
			h.waitGone(name)
		})
	}
}

func TestImagePullGrace(t *testing.T) {
	h := newHarness(t, nil)
	try := testTry("t", 1)
	h.ex.Start(context.Background(), try)
	name := testPod(try).Name
	h.waitPod(name)
	began := time.Now()
	h.setStatus(name, waiting("ErrImagePull", "pull access denied"))
	r := h.want(executor.Failed)
	if took := time.Since(began); took < 150*time.Millisecond {
		t.Errorf("failed after %s, before the grace of 200ms", took)
	}
	if !strings.Contains(r.Error, "ErrImagePull for 200ms: pull access denied") {
		t.Errorf("error %q", r.Error)
	}
}

func TestStartupTimeoutNamesConditionsAndEvents(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.StartupTimeout = 300 * time.Millisecond })
	try := testTry("t", 1)
	name := testPod(try).Name
	h.client.CoreV1().Events(ns).Create(context.Background(), &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: "ev1", Namespace: ns},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: name, Namespace: ns},
		Type:           "Warning", Reason: "FailedScheduling", Message: "0/1 nodes are available: 1 Insufficient memory.",
	}, metav1.CreateOptions{})
	h.ex.Start(context.Background(), try)
	h.waitPod(name)
	h.setStatus(name, func(s *corev1.PodStatus) {
		s.Phase = corev1.PodPending
		s.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable", Message: "0/1 nodes"}}
	})
	r := h.want(executor.Failed)
	for _, want := range []string{"startup timeout of 300ms", "PodScheduled=False (Unschedulable: 0/1 nodes)", "FailedScheduling"} {
		if !strings.Contains(r.Error, want) {
			t.Errorf("error %q lacks %q", r.Error, want)
		}
	}
}

func TestDeletedBeforeStartIsLost(t *testing.T) {
	h := newHarness(t, nil)
	try := testTry("t", 1)
	h.ex.Start(context.Background(), try)
	name := testPod(try).Name
	h.waitPod(name)
	h.setStatus(name, waiting("ContainerCreating", ""))
	h.waitSeen(try.Key)
	h.client.CoreV1().Pods(ns).Delete(context.Background(), name, metav1.DeleteOptions{})
	r := h.want(executor.Lost)
	if !strings.Contains(r.Error, "deleted before the task started") {
		t.Errorf("error %q", r.Error)
	}
	// The relaunch (same try number, same name) creates the pod again.
	if err := h.ex.Start(context.Background(), try); err != nil {
		t.Fatal(err)
	}
	h.waitPod(name)
	if n := h.creates(); n != 2 {
		t.Errorf("%d creates, want 2", n)
	}
}

func TestDeletedWhileRunningFails(t *testing.T) {
	h := newHarness(t, nil)
	try := testTry("t", 1)
	h.ex.Start(context.Background(), try)
	name := testPod(try).Name
	h.waitPod(name)
	h.setStatus(name, running)
	h.want(executor.Started)
	h.client.CoreV1().Pods(ns).Delete(context.Background(), name, metav1.DeleteOptions{})
	r := h.want(executor.Failed)
	if !strings.Contains(r.Error, "deleted while the task was running") {
		t.Errorf("error %q", r.Error)
	}
}

func TestEvictedBeforeStartIsLost(t *testing.T) {
	h := newHarness(t, nil)
	try := testTry("t", 1)
	h.ex.Start(context.Background(), try)
	name := testPod(try).Name
	h.waitPod(name)
	h.setStatus(name, func(s *corev1.PodStatus) {
		s.Phase, s.Reason, s.Message = corev1.PodFailed, "Evicted", "The node was low on resource: memory."
	})
	r := h.want(executor.Lost)
	if !strings.Contains(r.Error, "Evicted") {
		t.Errorf("error %q", r.Error)
	}
	h.waitGone(name)
}

func TestAlreadyExistsAdopts(t *testing.T) {
	try := testTry("t", 1)
	existing := testPod(try)
	h := newHarness(t, nil, existing)
	h.ex.Start(context.Background(), try)
	h.setStatus(existing.Name, running)
	h.want(executor.Started)
	if n := h.creates(); n != 1 {
		t.Errorf("%d create calls, want 1 (answered AlreadyExists)", n)
	}
}

func TestCreateBacksOffOn429(t *testing.T) {
	h := newHarness(t, nil)
	calls := 0
	h.client.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		calls++
		if calls <= 2 {
			return true, nil, apierrors.NewTooManyRequests("slow down", 0)
		}
		if calls == 3 {
			return true, nil, apierrors.NewInternalError(fmt.Errorf("etcd leader changed"))
		}
		return false, nil, nil
	})
	try := testTry("t", 1)
	h.ex.Start(context.Background(), try)
	h.waitPod(testPod(try).Name)
	if calls != 4 {
		t.Errorf("%d create calls, want 4", calls)
	}
}

func TestCreateForbiddenFailsWithoutRetry(t *testing.T) {
	h := newHarness(t, nil)
	h.client.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "x", fmt.Errorf("user cannot create pods"))
	})
	h.ex.Start(context.Background(), testTry("t", 1))
	r := h.want(executor.Failed)
	if !r.NoRetry || !strings.Contains(r.Error, "forbidden") {
		t.Errorf("report %+v", r)
	}
}

func TestFramedResult(t *testing.T) {
	h := newHarness(t, nil)
	try := testTry("big", 1)
	big := json.RawMessage(`"` + strings.Repeat("x", 10000) + `"`)
	body, frame := termination.Message{Status: termination.Succeeded, Result: big}.Encode()
	if frame == nil || len(body) > termination.MaxMessage {
		t.Fatalf("no frame for a 10 KB result (body %d bytes)", len(body))
	}
	h.logs[try.Key] = bytes.NewBuffer(append([]byte("some output\n"), frame...))
	h.ex.Start(context.Background(), try)
	name := testPod(try).Name
	h.waitPod(name)
	h.setStatus(name, terminated(corev1.PodSucceeded, 0, "Completed", string(body)))
	h.want(executor.Started)
	r := h.want(executor.Succeeded)
	if string(r.Result) != string(big) {
		t.Errorf("framed result: %d bytes, want %d", len(r.Result), len(big))
	}
}

func TestKillDeletesPod(t *testing.T) {
	h := newHarness(t, nil)
	try := testTry("t", 1)
	h.ex.Start(context.Background(), try)
	name := testPod(try).Name
	h.waitPod(name)
	h.setStatus(name, running)
	h.want(executor.Started)
	h.ex.Kill(context.Background(), try.Key, "run timed out after 1m")
	r := h.want(executor.Failed)
	if r.Error != "run timed out after 1m" {
		t.Errorf("error %q", r.Error)
	}
}

func TestRecover(t *testing.T) {
	runningTry, doneTry, goneTry, queuedTry := testTry("a", 1), testTry("b", 2), testTry("c", 1), testTry("d", 1)
	runningTry.State, doneTry.State, goneTry.State = task.StateRunning, task.StateRunning, task.StateRunning
	p1 := testPod(runningTry)
	running(&p1.Status)
	p2 := testPod(doneTry)
	body, _ := termination.Message{Status: termination.Succeeded, Result: json.RawMessage(`42`)}.Encode()
	terminated(corev1.PodSucceeded, 0, "Completed", string(body))(&p2.Status)
	orphan := testPod(testTry("orphan", 1))
	running(&orphan.Status)
	other := testPod(testTry("other", 1))
	other.Labels[k8s.LabelInstance] = "someone-else"
	h := newHarness(t, nil, p1, p2, orphan, other)
	if err := h.ex.Recover(context.Background(), []executor.Try{runningTry, doneTry, goneTry, queuedTry}); err != nil {
		t.Fatal(err)
	}
	got := map[string]executor.Report{}
	for range 5 {
		r := h.next()
		got[fmt.Sprintf("%s/%v", r.TaskID, r.Status)] = r
	}
	for _, want := range []string{"a/started", "b/started", "b/succeeded", "c/failed", "d/lost"} {
		if _, ok := got[want]; !ok {
			t.Errorf("no report %s; got %v", want, got)
		}
	}
	if r := got["b/succeeded"]; string(r.Result) != "42" {
		t.Errorf("result of the pod that finished while down: %s", r.Result)
	}
	h.waitGone(orphan.Name)
	if _, err := h.client.CoreV1().Pods(ns).Get(context.Background(), other.Name, metav1.GetOptions{}); err != nil {
		t.Errorf("another instance's pod was touched: %v", err)
	}
	if n := h.creates(); n != 0 {
		t.Errorf("%d pods created during recovery", n)
	}
}

func TestCountLinesSkipsExecutorLines(t *testing.T) {
	if n := countLines([]byte("a\nb\n" + executorPrefix + "x\nc\npartial")); n != 3 {
		t.Errorf("countLines = %d, want 3", n)
	}
}

func TestExecutionTimeoutDeletesPod(t *testing.T) {
	h := newHarness(t, nil)
	try := testTry("slow", 1)
	try.Timeout = 100 * time.Millisecond
	h.ex.cfg.Build = func(ctx context.Context, t executor.Try) (*corev1.Pod, error) {
		p := testPod(t)
		p.Annotations[k8s.AnnotationKind] = k8s.KindPod // a PodOperator pod: no worker-side timeout, no margin
		return p, nil
	}
	h.ex.Start(context.Background(), try)
	name := testPod(try).Name
	h.waitPod(name)
	began := time.Now()
	h.setStatus(name, running)
	h.want(executor.Started)
	r := h.want(executor.Failed)
	if !strings.Contains(r.Error, "execution timeout of 100ms exceeded") {
		t.Errorf("error %q", r.Error)
	}
	if took := time.Since(began); took < 90*time.Millisecond {
		t.Errorf("failed after %s, before the timeout", took)
	}
	h.waitGone(name)
}

func TestPodOperatorSkipOnExitCodes(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.Build = func(ctx context.Context, t executor.Try) (*corev1.Pod, error) {
			p := testPod(t)
			p.Annotations[k8s.AnnotationKind] = k8s.KindPod
			p.Annotations[k8s.AnnotationSkipExitCodes] = "3,99"
			return p, nil
		}
	})
	for _, c := range []struct {
		code int32
		want executor.Status
	}{{99, executor.Skipped}, {3, executor.Skipped}, {4, executor.Failed}} {
		try := testTry(fmt.Sprintf("exit%d", c.code), 1)
		if err := h.ex.Start(context.Background(), try); err != nil {
			t.Fatal(err)
		}
		name := testPod(try).Name
		h.waitPod(name)
		h.setStatus(name, terminated(corev1.PodFailed, c.code, "Error", ""))
		h.want(executor.Started)
		r := h.want(c.want)
		if r.ExitCode == nil || *r.ExitCode != int(c.code) || !strings.Contains(r.Error, fmt.Sprintf("exit code %d", c.code)) {
			t.Errorf("exit %d: report %v %q, exit code %v", c.code, r.Status, r.Error, r.ExitCode)
		}
	}
}

// mappedTry is a try of instance k of a mapped task, as the scheduler hands
// it over: the instance id in the key, the task's id and the index in Info.
func mappedTry(base string, k, try int) executor.Try {
	t := testTry(task.InstanceID(base, k), try)
	t.Info.TaskID, t.Info.MapIndex = base, k
	return t
}

// TestMappedInstancesOwnPodsAdoptedAfterRestart: the instances of a mapped
// task get one pod each (the map index in the name and in a label), and an
// executor that starts after the first one died adopts each pod by its name
// and reports each instance's end under its own key, creating nothing.
func TestMappedInstancesOwnPodsAdoptedAfterRestart(t *testing.T) {
	h := newHarness(t, nil)
	tries := []executor.Try{mappedTry("resize", 0, 1), mappedTry("resize", 1, 1), mappedTry("resize", 2, 1)}
	names := map[string]int{}
	for k, tr := range tries {
		if err := h.ex.Start(context.Background(), tr); err != nil {
			t.Fatal(err)
		}
		p := h.waitPod(k8s.PodName(tr.DAGID, tr.RunID, tr.TaskID, tr.Try))
		if p.Labels[k8s.LabelTask] != "resize" || p.Labels[k8s.LabelMapIndex] != strconv.Itoa(k) ||
			p.Annotations[k8s.LabelTask] != "resize" || p.Annotations[k8s.LabelMapIndex] != strconv.Itoa(k) {
			t.Errorf("pod %s: labels %v annotations %v", p.Name, p.Labels, p.Annotations)
		}
		if id, ok := k8s.IdentityOf(p); !ok || id.TaskID != tr.TaskID {
			t.Errorf("pod %s: identity %+v, want task instance %s", p.Name, id, tr.TaskID)
		}
		names[p.Name] = k
		h.setStatus(p.Name, running)
	}
	if len(names) != 3 {
		t.Fatalf("3 instances got %d pods: %v", len(names), names)
	}
	for range tries {
		h.want(executor.Started)
	}

	// The runner dies: a new executor on the same cluster recovers the
	// instances the store says are running.
	var pods []runtime.Object
	for name := range names {
		p, err := h.client.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		pods = append(pods, p)
	}
	h2 := newHarness(t, nil, pods...)
	for i := range tries {
		tries[i].State = task.StateRunning
	}
	if err := h2.ex.Recover(context.Background(), tries); err != nil {
		t.Fatal(err)
	}
	started := map[string]bool{}
	for range tries {
		r := h2.want(executor.Started)
		started[r.TaskID] = true
	}
	for name, k := range names {
		body, _ := termination.Message{Status: termination.Succeeded, Result: json.RawMessage(strconv.Itoa(10 * k))}.Encode()
		h2.setStatus(name, terminated(corev1.PodSucceeded, 0, "Completed", string(body)))
	}
	results := map[string]string{}
	for range tries {
		r := h2.want(executor.Succeeded)
		results[r.TaskID] = string(r.Result)
	}
	for k, tr := range tries {
		if !started[tr.TaskID] || results[tr.TaskID] != strconv.Itoa(10*k) {
			t.Errorf("instance %s: started %v, result %q; want started and %d", tr.TaskID, started[tr.TaskID], results[tr.TaskID], 10*k)
		}
	}
	if n := h2.creates(); n != 0 {
		t.Errorf("%d pods created by the executor that adopted them", n)
	}
}

// TestStartRefusesPodNotNamedForTheTry: a pod whose name is not k8s.PodName
// of the try's key (here a mapped instance's pod named for the task) could
// not be adopted after a restart, so the try fails without creating it.
func TestStartRefusesPodNotNamedForTheTry(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.Build = func(ctx context.Context, tr executor.Try) (*corev1.Pod, error) {
			tr.TaskID = tr.Info.TaskID // the bug this guards against: the base id names every instance's pod
			return testPod(tr), nil
		}
	})
	if err := h.ex.Start(context.Background(), mappedTry("resize", 3, 1)); err != nil {
		t.Fatal(err)
	}
	r := h.want(executor.Failed)
	if !r.NoRetry || r.TaskID != "resize[3]" || !strings.Contains(r.Error, "could not adopt") {
		t.Errorf("report %+v", r)
	}
	if n := h.creates(); n != 0 {
		t.Errorf("%d pods created", n)
	}
}
