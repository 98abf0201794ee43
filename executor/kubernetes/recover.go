package kubernetes

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/trellisdag/trellis/executor"
	"github.com/trellisdag/trellis/k8s"
	"github.com/trellisdag/trellis/task"
)

// Recover adopts the pods of the tries a previous process left in flight:
// a pod that still runs is watched and its log followed from where the saved
// log ends; a pod that ended while the runner was down has its end reported
// from its status (and log). A queued try without a pod never started (lost:
// it runs again without spending a retry); a running try without a pod is
// failed. Pods of this instance that belong to no try in flight are deleted
// if they still run, and cleaned up by the cleanup policy if they ended.
func (e *Executor) Recover(ctx context.Context, tries []executor.Try) error {
	e.run()
	namespaces := map[string]bool{e.cfg.Namespace: true}
	nsOf := make([]string, len(tries))
	for i, t := range tries {
		nsOf[i] = e.cfg.Namespace
		if _, ok := t.Task.(k8s.PodTask); ok {
			if pod, err := e.cfg.Build(ctx, t); err == nil && pod.Namespace != "" {
				nsOf[i] = pod.Namespace
			}
		}
		namespaces[nsOf[i]] = true
	}
	for ns := range namespaces {
		if _, err := e.informer(ctx, ns); err != nil {
			return err
		}
	}
	for i, t := range tries {
		e.mu.Lock()
		inf := e.informers[nsOf[i]]
		e.mu.Unlock()
		name := k8s.PodName(t.DAGID, t.RunID, t.TaskID, t.Try)
		pod, err := inf.pods.Get(name)
		if err != nil {
			rep := executor.Report{Key: t.Key, At: time.Now(), Pod: name}
			if t.State == task.StateQueued {
				rep.Status, rep.Error = executor.Lost, fmt.Sprintf("the runner restarted and found no pod %s for the queued try", name)
			} else {
				rep.Status, rep.Error = executor.Failed, fmt.Sprintf("the runner restarted and found no pod %s for the running try; its end is unknown", name)
			}
			e.report(rep)
			continue
		}
		tr := newTracked(t, pod)
		tr.created, tr.uid, tr.seen, tr.createdAt = true, pod.UID, true, pod.CreationTimestamp.Time
		saved, err := e.cfg.SavedLog(t.Key)
		if err != nil {
			return fmt.Errorf("kubernetes executor: read the saved log of %s: %w", tr.id, err)
		}
		tr.skipLines = countLines(saved)
		e.mu.Lock()
		e.tries[tr.id] = tr
		e.byKey[t.Key] = tr
		e.mu.Unlock()
		e.queue.Add(tr.id)
	}
	e.sweep()
	return nil
}

// sweep handles, once, the pods of this instance that no try owns.
func (e *Executor) sweep() {
	e.mu.Lock()
	if e.swept {
		e.mu.Unlock()
		return
	}
	e.swept = true
	var all []*corev1.Pod
	for _, inf := range e.informers {
		all = append(all, inf.pods.List()...)
	}
	e.mu.Unlock()
	for _, p := range all {
		e.queue.Add(p.Namespace + "/" + p.Name)
	}
}

// syncUntracked handles a pod of this instance that no try owns: an orphan of
// an earlier process (deleted if it still runs) or a finished try's pod kept
// by the cleanup policy.
func (e *Executor) syncUntracked(id string) {
	e.mu.Lock()
	swept := e.swept
	e.mu.Unlock()
	if !swept {
		return // Recover (or the first Start) decides about earlier pods
	}
	ns, name := splitID(id)
	e.mu.Lock()
	inf := e.informers[ns]
	e.mu.Unlock()
	if inf == nil {
		return
	}
	pod, err := inf.pods.Get(name)
	if err != nil || pod.DeletionTimestamp != nil {
		return
	}
	terminal := pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
	policy := k8s.OnFinish(pod.Annotations[k8s.AnnotationOnFinish])
	if policy == k8s.OnFinishDefault {
		policy = e.cfg.Cleanup
	}
	if terminal && !policy.Delete(pod.Status.Phase == corev1.PodSucceeded) {
		return
	}
	if terminal && time.Since(finishedAt(pod)) < e.cfg.CleanupDelay {
		e.queue.AddAfter(id, e.cfg.CleanupDelay)
		return
	}
	g := int64(e.cfg.KillGrace / time.Second)
	if terminal {
		g = 0
	}
	err = e.cfg.Client.Pods(ns).Delete(e.base, name, metav1.DeleteOptions{GracePeriodSeconds: &g,
		Preconditions: &metav1.Preconditions{UID: &pod.UID}})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		e.cfg.Logger.Warn("delete orphan pod", "pod", id, "err", err)
	}
}

func finishedAt(pod *corev1.Pod) time.Time {
	if s := containerStatus(pod, k8s.BaseContainerName); s != nil && s.State.Terminated != nil {
		return s.State.Terminated.FinishedAt.Time
	}
	return pod.CreationTimestamp.Time
}

func splitID(id string) (ns, name string) {
	for i := 0; i < len(id); i++ {
		if id[i] == '/' {
			return id[:i], id[i+1:]
		}
	}
	return "", id
}
