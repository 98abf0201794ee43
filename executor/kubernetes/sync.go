package kubernetes

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/trellisdag/trellis/executor"
	"github.com/trellisdag/trellis/k8s"
	"github.com/trellisdag/trellis/k8s/termination"
)

// Waiting reasons that fail a try at once: they do not resolve by waiting.
var failFast = map[string]bool{
	"InvalidImageName":           true,
	"CreateContainerConfigError": true,
	"CreateContainerError":       true,
	"ErrImageNeverPull":          true,
}

// Waiting reasons that fail a try after the image pull grace.
var pullErrors = map[string]bool{"ErrImagePull": true, "ImagePullBackOff": true}

// sync looks at one pod and moves its try forward. The workqueue never runs
// two syncs of one key at once.
func (e *Executor) sync(id string) {
	e.mu.Lock()
	tr := e.tries[id]
	e.mu.Unlock()
	if tr == nil {
		e.syncUntracked(id)
		return
	}
	tr.mu.Lock()
	created, finished, uid := tr.created, tr.finished, tr.uid
	tr.mu.Unlock()
	if !created {
		return // the create goroutine enqueues once it is done
	}
	e.mu.Lock()
	inf := e.informers[tr.ns]
	e.mu.Unlock()
	if inf == nil {
		return // shutting down
	}
	pod, err := inf.pods.Get(tr.name)
	exists := err == nil && (uid == "" || pod.UID == uid)
	if finished {
		e.cleanup(tr, pod, exists, false)
		return
	}
	if !exists {
		e.gone(tr)
		return
	}
	tr.mu.Lock()
	tr.seen = true
	kill, deleting := tr.killReason, tr.deleting
	tr.mu.Unlock()
	if kill != "" && deleting == "" {
		e.deletePod(tr, pod, kill, e.cfg.KillGrace)
		deleting = kill
	}
	base := containerStatus(pod, k8s.BaseContainerName)
	terminal := pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
	baseDone := base != nil && base.State.Terminated != nil
	running := base != nil && (base.State.Running != nil || baseDone)

	if running && !tr.started {
		tr.mu.Lock()
		tr.started = true
		tr.startedAt = time.Now()
		if base.State.Running != nil {
			tr.startedAt = base.State.Running.StartedAt.Time
		} else if base.State.Terminated != nil && !base.State.Terminated.StartedAt.IsZero() {
			tr.startedAt = base.State.Terminated.StartedAt.Time
		}
		tr.mu.Unlock()
		e.report(executor.Report{Key: tr.key, Status: executor.Started, Host: pod.Spec.NodeName, Pod: pod.Name, At: tr.startedAt})
	}
	if tr.started && !e.cfg.NoLogs {
		e.ensureLogs(tr)
	}

	switch {
	case terminal || baseDone:
		if !tr.started {
			e.lostPod(tr, pod, fmt.Sprintf("pod %s ended %s before the task started: %s", pod.Name, pod.Status.Phase, podReason(pod)))
			return
		}
		e.finishPod(tr, pod, base)
	case deleting != "":
		// Wait for the pod to stop or go; a pod stuck in deletion is reported
		// after the grace period anyway.
		tr.mu.Lock()
		since := tr.deletedAt
		tr.mu.Unlock()
		if wait := time.Until(since.Add(e.cfg.KillGrace + 10*time.Second)); wait > 0 {
			e.queue.AddAfter(tr.id, wait)
			return
		}
		e.end(tr, pod, executor.Report{Key: tr.key, Status: executor.Failed, Error: deleting, Host: pod.Spec.NodeName, Pod: pod.Name})
	case pod.DeletionTimestamp != nil:
		// Deleted from outside: wait for it to be gone (the log stream ends).
	case !tr.started:
		e.checkPending(tr, pod)
	default:
		e.checkTimeout(tr, pod)
	}
}

// checkPending fails a pod that cannot start: a container error that will
// not resolve, an image that cannot be pulled after the grace, or the
// startup timeout.
func (e *Executor) checkPending(tr *tracked, pod *corev1.Pod) {
	statuses := append(append([]corev1.ContainerStatus(nil), pod.Status.InitContainerStatuses...), pod.Status.ContainerStatuses...)
	for _, s := range statuses {
		w := s.State.Waiting
		if w == nil {
			continue
		}
		if failFast[w.Reason] {
			e.failPod(tr, pod, fmt.Sprintf("pod %s: container %s: %s: %s", pod.Name, s.Name, w.Reason, oneLine(w.Message)))
			return
		}
		if pullErrors[w.Reason] {
			tr.mu.Lock()
			if tr.pullSince.IsZero() {
				tr.pullSince = time.Now()
			}
			since := tr.pullSince
			tr.mu.Unlock()
			if wait := time.Until(since.Add(e.cfg.ImagePullGrace)); wait > 0 {
				e.queue.AddAfter(tr.id, wait)
			} else {
				e.failPod(tr, pod, fmt.Sprintf("pod %s: container %s: %s for %s: %s", pod.Name, s.Name, w.Reason, e.cfg.ImagePullGrace, oneLine(w.Message)))
				return
			}
		}
	}
	startup := tr.startup
	if startup == 0 {
		startup = e.cfg.StartupTimeout
	}
	began := pod.CreationTimestamp.Time
	if began.IsZero() {
		tr.mu.Lock()
		began = tr.createdAt
		tr.mu.Unlock()
	}
	if wait := time.Until(began.Add(startup)); wait > 0 {
		e.queue.AddAfter(tr.id, wait)
		return
	}
	e.failPod(tr, pod, fmt.Sprintf("pod %s still %s after the startup timeout of %s: %s%s", pod.Name, pod.Status.Phase, startup,
		conditions(pod), e.events(pod)))
}

// checkTimeout deletes a pod that runs past the try's execution timeout. A
// worker stops its task itself at the timeout; the kill grace is its margin.
func (e *Executor) checkTimeout(tr *tracked, pod *corev1.Pod) {
	if tr.try.Timeout <= 0 {
		return
	}
	tr.mu.Lock()
	started := tr.startedAt
	tr.mu.Unlock()
	limit := tr.try.Timeout
	if tr.kind == k8s.KindWorker {
		limit += e.cfg.KillGrace
	}
	if wait := time.Until(started.Add(limit)); wait > 0 {
		e.queue.AddAfter(tr.id, wait)
		return
	}
	e.deletePod(tr, pod, fmt.Sprintf("execution timeout of %s exceeded; pod %s deleted", tr.try.Timeout, pod.Name), e.cfg.KillGrace)
	e.queue.AddAfter(tr.id, e.cfg.KillGrace+10*time.Second)
}

// deletePod deletes the pod (once) and records why.
func (e *Executor) deletePod(tr *tracked, pod *corev1.Pod, why string, grace time.Duration) {
	tr.mu.Lock()
	if tr.deleting != "" {
		tr.mu.Unlock()
		return
	}
	tr.deleting, tr.deletedAt = why, time.Now()
	tr.mu.Unlock()
	g := int64(grace / time.Second)
	err := retryAPI(e.base, func() error {
		return e.cfg.Client.Pods(pod.Namespace).Delete(e.base, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: &g,
			Preconditions: &metav1.Preconditions{UID: &pod.UID}})
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		e.cfg.Logger.Warn("delete pod", "pod", tr.id, "err", err)
	}
}

// failPod reports a try failed before it started and deletes its pod.
func (e *Executor) failPod(tr *tracked, pod *corev1.Pod, msg string) {
	if !tr.finish() {
		return
	}
	e.appendLog(tr, msg)
	e.deletePod(tr, pod, msg, 0) // before the report: a one-shot runner may exit right after it
	e.forget(tr)
	e.report(executor.Report{Key: tr.key, Status: executor.Failed, Error: msg, Host: pod.Spec.NodeName, Pod: pod.Name})
}

// lostPod deletes a pod that ended before the task ran (evicted, its node
// lost) and reports the try lost once the pod is gone, so that the relaunch
// under the same name does not meet it.
func (e *Executor) lostPod(tr *tracked, pod *corev1.Pod, why string) {
	tr.mu.Lock()
	tr.lost = true
	tr.mu.Unlock()
	e.deletePod(tr, pod, why, 0)
}

// gone handles a try whose pod no longer exists.
func (e *Executor) gone(tr *tracked) {
	tr.mu.Lock()
	seen, started, deleting, lost := tr.seen, tr.started, tr.deleting, tr.lost
	createdAt := tr.createdAt
	tr.mu.Unlock()
	if !seen {
		// The informer has not shown the pod yet; it will. If it never does
		// (deleted at once), the startup timeout finds out.
		if time.Since(createdAt) < e.cfg.StartupTimeout {
			return
		}
		_, err := e.cfg.Client.Pods(tr.ns).Get(e.base, tr.name, metav1.GetOptions{})
		if !apierrors.IsNotFound(err) {
			return
		}
	}
	if e.waitLogs(tr) {
		return
	}
	rep := executor.Report{Key: tr.key, Pod: tr.name}
	switch {
	case lost || (!started && deleting == ""):
		rep.Status = executor.Lost
		rep.Error = fmt.Sprintf("pod %s was deleted before the task started", tr.name)
		if deleting != "" {
			rep.Error = deleting
		}
	case deleting != "":
		rep.Status, rep.Error = executor.Failed, deleting
	default:
		rep.Status, rep.Error = executor.Failed, fmt.Sprintf("pod %s was deleted while the task was running", tr.name)
	}
	if !tr.finish() {
		return
	}
	e.closeLogs(tr, rep.Error)
	e.forget(tr)
	e.report(rep)
}

// finishPod reports the end of a try whose base container (or pod) ended,
// once its log is saved.
func (e *Executor) finishPod(tr *tracked, pod *corev1.Pod, base *corev1.ContainerStatus) {
	if e.waitLogs(tr) {
		return
	}
	rep := e.outcome(tr, pod, base)
	tr.mu.Lock()
	deleting := tr.deleting
	tr.mu.Unlock()
	if rep.Status == executor.Failed && deleting != "" {
		// The executor stopped the pod (a kill, the execution timeout): that
		// is why the try failed, whatever the container's exit says.
		rep.Error = deleting + " (" + rep.Error + ")"
	}
	e.end(tr, pod, rep)
}

// end closes the log, reports and schedules the cleanup.
func (e *Executor) end(tr *tracked, pod *corev1.Pod, rep executor.Report) {
	if !tr.finish() {
		return
	}
	if rep.Status == executor.Failed {
		e.closeLogs(tr, "task failed: "+rep.Error)
	} else {
		e.closeLogs(tr, "")
	}
	if rep.Status == executor.Succeeded && rep.Result == nil && tr.framed != nil {
		raw, err := e.cfg.SavedLog(tr.key)
		if err == nil {
			rep.Result, err = termination.Extract(raw, *tr.framed)
		}
		if err != nil {
			rep.Status, rep.Error = executor.Failed, fmt.Sprintf("pod %s: read the result from the log: %v", pod.Name, err)
		}
	}
	e.report(rep)
	tr.mu.Lock()
	tr.cleanupAt = time.Now().Add(e.cfg.CleanupDelay)
	tr.succeeded = rep.Status == executor.Succeeded || rep.Status == executor.Skipped
	tr.mu.Unlock()
	e.queue.AddAfter(tr.id, e.cfg.CleanupDelay)
}

// cleanup applies the cleanup policy to the pod of a finished try.
func (e *Executor) cleanup(tr *tracked, pod *corev1.Pod, exists, now bool) {
	if !exists {
		e.forget(tr)
		return
	}
	tr.mu.Lock()
	at, ok := tr.cleanupAt, tr.succeeded
	tr.mu.Unlock()
	if wait := time.Until(at); wait > 0 && !now {
		e.queue.AddAfter(tr.id, wait)
		return
	}
	policy := tr.onFinish
	if policy == k8s.OnFinishDefault {
		policy = e.cfg.Cleanup
	}
	if policy.Delete(ok) && pod.DeletionTimestamp == nil {
		g := int64(0)
		err := retryAPI(e.base, func() error {
			return e.cfg.Client.Pods(pod.Namespace).Delete(e.base, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: &g,
				Preconditions: &metav1.Preconditions{UID: &pod.UID}})
		})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			e.cfg.Logger.Warn("clean up pod", "pod", tr.id, "err", err)
		}
	}
	e.forget(tr)
}

// outcome turns a finished pod into a report.
func (e *Executor) outcome(tr *tracked, pod *corev1.Pod, base *corev1.ContainerStatus) executor.Report {
	rep := executor.Report{Key: tr.key, Host: pod.Spec.NodeName, Pod: pod.Name}
	var term *corev1.ContainerStateTerminated
	if base != nil {
		term = base.State.Terminated
	}
	if term == nil {
		rep.Status = executor.Failed
		rep.Error = fmt.Sprintf("pod %s %s: %s", pod.Name, pod.Status.Phase, podReason(pod))
		return rep
	}
	code := int(term.ExitCode)
	rep.ExitCode = &code
	if tr.kind == k8s.KindWorker {
		if m, ok := termination.Decode(term.Message); ok {
			switch m.Status {
			case termination.Succeeded:
				rep.Status, rep.Result = executor.Succeeded, []byte(m.Result)
				if m.Framed > 0 {
					tr.framed = &m
					rep.Result = nil
				}
			case termination.Skipped:
				rep.Status, rep.Error = executor.Skipped, m.Error
			default:
				rep.Status, rep.Error, rep.NoRetry = executor.Failed, m.Error, m.NoRetry
			}
			if code != 0 && rep.Status != executor.Failed {
				rep.Status, rep.Error = executor.Failed, fmt.Sprintf("exit code %d after reporting %s", code, m.Status)
			}
			if rep.Status == executor.Succeeded && rep.Result == nil && tr.framed == nil {
				rep.Result = nil
			}
			return rep
		}
		rep.Status = executor.Failed
		rep.Error = terminatedError(pod, term)
		return rep
	}
	if code != 0 && slices.Contains(tr.skipCodes, code) {
		rep.Status, rep.Error = executor.Skipped, fmt.Sprintf("pod %s: exit code %d is one of its skip-on-exit-codes", pod.Name, code)
		return rep
	}
	if code != 0 {
		rep.Status, rep.Error = executor.Failed, terminatedError(pod, term)
		return rep
	}
	rep.Status = executor.Succeeded
	if tr.resultMsg && tr.podTask != nil {
		msg := strings.TrimSpace(term.Message)
		if msg == "" {
			rep.Status, rep.Error = executor.Failed, fmt.Sprintf("pod %s: the container wrote no result to %s", pod.Name, baseTerminationPath(pod))
			return rep
		}
		res, err := tr.podTask.DecodeResult([]byte(msg))
		if err != nil {
			rep.Status, rep.Error, rep.NoRetry = executor.Failed, fmt.Sprintf("pod %s: %v", pod.Name, err), true
			return rep
		}
		rep.Result = res
	}
	return rep
}

func terminatedError(pod *corev1.Pod, term *corev1.ContainerStateTerminated) string {
	s := fmt.Sprintf("pod %s: container %s terminated: %s, exit code %d", pod.Name, k8s.BaseContainerName, term.Reason, term.ExitCode)
	if term.Signal != 0 {
		s += fmt.Sprintf(", signal %d", term.Signal)
	}
	if m := oneLine(term.Message); m != "" {
		s += ": " + m
	}
	if pod.Status.Reason != "" {
		s += fmt.Sprintf(" (pod %s: %s)", pod.Status.Reason, oneLine(pod.Status.Message))
	}
	return s
}

func baseTerminationPath(pod *corev1.Pod) string {
	for _, c := range pod.Spec.Containers {
		if c.Name == k8s.BaseContainerName && c.TerminationMessagePath != "" {
			return c.TerminationMessagePath
		}
	}
	return k8s.TerminationLog
}

func containerStatus(pod *corev1.Pod, name string) *corev1.ContainerStatus {
	for i := range pod.Status.ContainerStatuses {
		if pod.Status.ContainerStatuses[i].Name == name {
			return &pod.Status.ContainerStatuses[i]
		}
	}
	return nil
}

// lostBeforeStart reports whether a pod ended without its base container
// ever running: evicted, preempted or its node lost before the task ran.
func lostBeforeStart(pod *corev1.Pod) bool {
	if pod.Status.Phase != corev1.PodFailed && pod.Status.Phase != corev1.PodSucceeded {
		return false
	}
	base := containerStatus(pod, k8s.BaseContainerName)
	return base == nil || base.State.Terminated == nil || base.State.Terminated.StartedAt.IsZero() && base.State.Terminated.ExitCode == 0 && base.State.Terminated.Reason != "Completed"
}

func podReason(pod *corev1.Pod) string {
	r := pod.Status.Reason
	if r == "" {
		r = "no reason given"
	}
	if m := oneLine(pod.Status.Message); m != "" {
		r += ": " + m
	}
	return r
}

// conditions describes the pod's conditions that are not true.
func conditions(pod *corev1.Pod) string {
	var parts []string
	for _, c := range pod.Status.Conditions {
		if c.Status == corev1.ConditionTrue {
			continue
		}
		s := fmt.Sprintf("%s=%s", c.Type, c.Status)
		if c.Reason != "" || c.Message != "" {
			s += fmt.Sprintf(" (%s: %s)", c.Reason, oneLine(c.Message))
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		return "conditions: none failing"
	}
	return "conditions: " + strings.Join(parts, "; ")
}

// events returns the pod's recent events, newest last.
func (e *Executor) events(pod *corev1.Pod) string {
	ctx, cancel := context.WithTimeout(e.base, 5*time.Second)
	defer cancel()
	list, err := e.cfg.Client.Events(pod.Namespace).List(ctx, metav1.ListOptions{
		FieldSelector: fields.Set{"involvedObject.name": pod.Name, "involvedObject.uid": string(pod.UID)}.AsSelector().String()})
	if err != nil {
		return "; events: " + oneLine(err.Error())
	}
	items := list.Items
	sort.Slice(items, func(i, j int) bool { return eventTime(items[i]).Before(eventTime(items[j])) })
	if len(items) > 5 {
		items = items[len(items)-5:]
	}
	var parts []string
	for _, ev := range items {
		parts = append(parts, fmt.Sprintf("%s %s: %s", ev.Type, ev.Reason, oneLine(ev.Message)))
	}
	if len(parts) == 0 {
		return "; events: none"
	}
	return "; events: " + strings.Join(parts, "; ")
}

func eventTime(ev corev1.Event) time.Time {
	switch {
	case !ev.LastTimestamp.IsZero():
		return ev.LastTimestamp.Time
	case !ev.EventTime.IsZero():
		return ev.EventTime.Time
	}
	return ev.CreationTimestamp.Time
}

func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i] + " …"
	}
	if len(s) > 1000 {
		s = s[:1000] + " …"
	}
	return s
}
