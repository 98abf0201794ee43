package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/trellisdag/trellis/executor"
	kubeexec "github.com/trellisdag/trellis/executor/kubernetes"
	"github.com/trellisdag/trellis/internal/store"
	"github.com/trellisdag/trellis/task"
)

// kubeExecutor returns the kubernetes executor of an engine and the default
// executor of Go and Bash tasks. The executor is nil when --executor is local
// and no task needs a pod; when tasks need a pod but no cluster is
// configured, it is nil too and those tries fail with the scheduler's message
// (the reason is logged).
func (r *Runner) kubeExecutor(st *store.Store, opts *kubeOptions, report executor.ReportFunc) (*kubeexec.Executor, task.ExecutorKind, error) {
	o := r.kubeDefaults()
	if opts != nil {
		o = *opts
	}
	kind, err := o.check()
	if err != nil {
		return nil, "", err
	}
	if kind != task.ExecutorKubernetes && !needsKube(r.dags) {
		return nil, kind, nil
	}
	client, _, err := r.kubeClient(o)
	if err != nil {
		if kind == task.ExecutorKubernetes {
			return nil, "", fmt.Errorf("--executor kubernetes: %w", err)
		}
		fmt.Fprintf(r.cfg.Stderr, "warning: tasks that run pods will fail: %v\n", err)
		return nil, kind, nil
	}
	if err := reachable(client); err != nil {
		if kind == task.ExecutorKubernetes {
			return nil, "", fmt.Errorf("--executor kubernetes: %w", err)
		}
		fmt.Fprintf(r.cfg.Stderr, "warning: tasks that run pods will fail: %v\n", err)
		return nil, kind, nil
	}
	ks, err := r.newKubeSetup(o, st.Path())
	if err != nil {
		return nil, "", err
	}
	k := r.cfg.Kubernetes
	ex, err := kubeexec.New(kubeexec.Config{
		Client: client, Namespace: ks.namespace, Instance: ks.instance,
		Build:  func(ctx context.Context, t executor.Try) (*corev1.Pod, error) { return ks.buildPod(ctx, t, true) },
		Report: report,
		Logs: func(key executor.Key) io.WriteCloser {
			return st.TryLog(key.Run, key.TaskID, key.Try)
		},
		SavedLog: func(key executor.Key) ([]byte, error) {
			b, _, err := st.Log(context.Background(), key.Run, key.TaskID, key.Try, 0)
			return b, err
		},
		Cleanup: k.Cleanup, StartupTimeout: k.StartupTimeout, ImagePullGrace: k.ImagePullGrace,
		KillGrace: k.KillGrace, CreateParallelism: k.CreateParallelism,
		Logger: slog.New(slog.NewTextHandler(r.cfg.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return nil, "", err
	}
	return ex, kind, nil
}

// asExecutor keeps a nil *Executor from becoming a non-nil interface.
func asExecutor(ex *kubeexec.Executor) executor.Executor {
	if ex == nil {
		return nil
	}
	return ex
}

// shutdownKube stops watching pods; the pods keep running.
func shutdownKube(ctx context.Context, ex *kubeexec.Executor) error {
	if ex == nil {
		return nil
	}
	if err := ex.Shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("stop the kubernetes executor: %w", err)
	}
	return nil
}

func ptr[T any](v T) *T { return &v }

// reachableTimeout bounds reachable's request.
const reachableTimeout = 15 * time.Second

// reachable asks the API server for its version (GET /version), bounded, so
// that a runner pointed at a cluster that does not answer says so at once.
func reachable(c *kubeClients) error {
	ctx, cancel := context.WithTimeout(context.Background(), reachableTimeout)
	defer cancel()
	_, err := c.serverVersion(ctx)
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("%w: the API server did not answer within %s", errNoCluster, reachableTimeout)
	default:
		return fmt.Errorf("%w: the API server does not answer: %v", errNoCluster, err)
	}
}

// kubePreflight checks, before anything is written, that --executor
// kubernetes can reach its cluster (commands call it before creating a run).
func (r *Runner) kubePreflight(o kubeOptions) error {
	kind, err := o.check()
	if err != nil || kind != task.ExecutorKubernetes {
		return err
	}
	client, _, err := r.kubeClient(o)
	if err == nil {
		err = reachable(client)
	}
	if err != nil {
		return fmt.Errorf("--executor kubernetes: %w", err)
	}
	return nil
}
