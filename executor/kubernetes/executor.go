package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/trellisdag/trellis/executor"
	"github.com/trellisdag/trellis/k8s"
	"github.com/trellisdag/trellis/k8s/termination"
)

// Config configures an Executor.
type Config struct {
	// Client talks to the API server. Required.
	Client Client
	// Namespace is where pods are watched and created by default. Required.
	Namespace string
	// Instance is the runner instance whose pods (k8s.LabelInstance) this
	// executor owns. Required.
	Instance string
	// Build returns the pod of a try, ready to create (see k8s.Builder).
	// Required.
	Build func(ctx context.Context, t executor.Try) (*corev1.Pod, error)
	// Report receives every try's start and end. Required.
	Report executor.ReportFunc
	// Logs opens a try's log for appending; the executor closes it before
	// reporting the end. Nil discards logs.
	Logs func(executor.Key) io.WriteCloser
	// SavedLog reads what a try's log holds so far: a runner that restarts
	// resumes a pod's log after it, and framed results are read from it. Nil
	// means empty.
	SavedLog func(executor.Key) ([]byte, error)
	// Cleanup is the policy for pods that do not set k8s.AnnotationOnFinish
	// (default k8s.OnFinishDeleteOnSuccess).
	Cleanup k8s.OnFinish
	// StartupTimeout is how long a pod may stay pending (default 5m).
	StartupTimeout time.Duration
	// ImagePullGrace is how long image pull errors are waited out (default 30s).
	ImagePullGrace time.Duration
	// KillGrace is the grace period of pods deleted by a timeout or a kill
	// (default 30s).
	KillGrace time.Duration
	// CleanupDelay is how long a finished pod is kept before the cleanup
	// policy applies, so that the scheduler has committed the try's end
	// (default 2s).
	CleanupDelay time.Duration
	// CreateParallelism bounds the create requests in flight (default 32).
	CreateParallelism int
	// Workers is the number of goroutines that process pod events (default 4).
	Workers int
	// NoLogs disables log streaming (benchmarks with pods that have no
	// containers).
	NoLogs bool
	// Logger receives the executor's own messages (default: discarded).
	Logger *slog.Logger
}

// Executor runs each try in a pod and follows it to its end through a shared
// informer per namespace (label-selected on the instance) and a workqueue.
type Executor struct {
	cfg   Config
	queue workqueue.TypedRateLimitingInterface[string]
	sem   chan struct{}
	base  context.Context
	stop  context.CancelFunc
	wg    sync.WaitGroup

	mu        sync.Mutex
	tries     map[string]*tracked // by namespace/name
	byKey     map[executor.Key]*tracked
	informers map[string]*nsInformer
	started   bool
	swept     bool // orphans of an earlier process were handled
}

// nsInformer is the pod informer of one namespace.
type nsInformer struct {
	pods   podLister
	synced cache.InformerSynced
	stop   chan struct{}
}

var _ executor.Executor = (*Executor)(nil)

// New returns an executor. Informers start on first use.
func New(cfg Config) (*Executor, error) {
	if cfg.Client == nil || cfg.Build == nil || cfg.Report == nil || cfg.Namespace == "" || cfg.Instance == "" {
		return nil, errors.New("kubernetes executor: Client, Namespace, Instance, Build and Report are required")
	}
	if cfg.Logs == nil {
		cfg.Logs = func(executor.Key) io.WriteCloser { return nopCloser{io.Discard} }
	}
	if cfg.SavedLog == nil {
		cfg.SavedLog = func(executor.Key) ([]byte, error) { return nil, nil }
	}
	if cfg.Cleanup == k8s.OnFinishDefault {
		cfg.Cleanup = k8s.OnFinishDeleteOnSuccess
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.StartupTimeout, 5*time.Minute)
	def(&cfg.ImagePullGrace, 30*time.Second)
	def(&cfg.KillGrace, 30*time.Second)
	if cfg.CleanupDelay == 0 {
		cfg.CleanupDelay = 2 * time.Second
	}
	if cfg.CreateParallelism <= 0 {
		cfg.CreateParallelism = 32
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	base, stop := context.WithCancel(context.Background())
	e := &Executor{cfg: cfg, base: base, stop: stop,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "trellis-pods"}),
		sem:   make(chan struct{}, cfg.CreateParallelism),
		tries: map[string]*tracked{}, byKey: map[executor.Key]*tracked{}, informers: map[string]*nsInformer{}}
	return e, nil
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// run starts the workers once.
func (e *Executor) run() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.started {
		return
	}
	e.started = true
	for range e.cfg.Workers {
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			for e.processNext() {
			}
		}()
	}
}

func (e *Executor) processNext() bool {
	key, quit := e.queue.Get()
	if quit {
		return false
	}
	defer e.queue.Done(key)
	e.sync(key)
	return true
}

// informer returns the synced informer of a namespace, starting it on first use.
func (e *Executor) informer(ctx context.Context, ns string) (*nsInformer, error) {
	e.mu.Lock()
	inf := e.informers[ns]
	if inf == nil {
		informer := newPodInformer(e.cfg.Client.Pods(ns), k8s.InstanceSelector(e.cfg.Instance))
		enqueue := func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if p, ok := obj.(*corev1.Pod); ok {
				e.queue.Add(p.Namespace + "/" + p.Name)
			}
		}
		_, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    enqueue,
			UpdateFunc: func(_, obj any) { enqueue(obj) },
			DeleteFunc: enqueue,
		})
		if err != nil {
			e.mu.Unlock()
			return nil, err
		}
		inf = &nsInformer{pods: podLister{informer.GetIndexer(), ns}, synced: informer.HasSynced, stop: make(chan struct{})}
		e.informers[ns] = inf
		go informer.Run(inf.stop)
	}
	e.mu.Unlock()
	if !inf.synced() {
		wait, cancel := context.WithTimeout(ctx, syncTimeout)
		defer cancel()
		if !cache.WaitForCacheSync(wait.Done(), inf.synced) {
			e.mu.Lock()
			if e.informers[ns] == inf {
				delete(e.informers, ns) // the next use tries again
				close(inf.stop)
			}
			e.mu.Unlock()
			return nil, fmt.Errorf("kubernetes executor: could not list the pods of namespace %q within %s (is the API server reachable, and may this user list pods?)", ns, syncTimeout)
		}
	}
	return inf, nil
}

// syncTimeout bounds the first list of a namespace's pods.
const syncTimeout = 30 * time.Second

// ErrShutdown is returned by Start after Shutdown.
var ErrShutdown = errors.New("kubernetes executor is shut down")

// Start builds the try's pod and creates it in the background.
func (e *Executor) Start(ctx context.Context, t executor.Try) error {
	if e.base.Err() != nil {
		return ErrShutdown
	}
	e.run()
	pod, err := e.cfg.Build(ctx, t)
	if err == nil {
		// Recover finds a try's pod by this name alone: a pod named
		// otherwise could never be adopted after a restart.
		if want := k8s.PodName(t.DAGID, t.RunID, t.TaskID, t.Try); pod.Name != want {
			err = fmt.Errorf("pod of %s/%s/%s#%d is named %q, not %q (k8s.PodName of the try): a restarted runner could not adopt it",
				t.DAGID, t.RunID, t.TaskID, t.Try, pod.Name, want)
		}
	}
	if err != nil {
		// A pod that cannot be built will not build on a retry either.
		e.report(executor.Report{Key: t.Key, Status: executor.Failed, Error: err.Error(), NoRetry: true})
		return nil
	}
	tr := newTracked(t, pod)
	e.mu.Lock()
	if old := e.byKey[t.Key]; old != nil && !old.isFinished() {
		e.mu.Unlock()
		return fmt.Errorf("try %v is already running in pod %s", t.Key, old.id)
	}
	e.tries[tr.id] = tr
	e.byKey[t.Key] = tr
	swept := e.swept
	e.mu.Unlock()
	if !swept {
		// No Recover came first: handle earlier pods of this instance now
		// (after registering this try, whose pod may be among them).
		if _, err := e.informer(ctx, e.cfg.Namespace); err != nil {
			e.forget(tr)
			return err
		}
		e.sweep()
	}
	e.wg.Add(1)
	go e.create(tr, pod)
	return nil
}

// create creates the pod under the parallelism limit, backing off on 429 and
// 5xx; AlreadyExists adopts the pod when it is this try's.
func (e *Executor) create(tr *tracked, pod *corev1.Pod) {
	defer e.wg.Done()
	ctx := e.base
	inf, err := e.informer(ctx, pod.Namespace)
	if err != nil {
		e.fail(tr, err.Error(), false)
		return
	}
	select {
	case e.sem <- struct{}{}:
	case <-ctx.Done():
		return
	}
	var created *corev1.Pod
	err = retryAPI(ctx, func() error {
		var err error
		created, err = e.cfg.Client.Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{})
		return err
	})
	<-e.sem
	if apierrors.IsAlreadyExists(err) {
		created, err = e.adoptExisting(ctx, inf, tr, pod)
	}
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		e.fail(tr, fmt.Sprintf("create pod %s: %v", tr.id, err), apierrors.IsInvalid(err) || apierrors.IsForbidden(err) && !apierrors.IsTooManyRequests(err))
		return
	}
	tr.mu.Lock()
	tr.created, tr.uid = true, created.UID
	tr.createdAt = time.Now()
	tr.mu.Unlock()
	e.queue.Add(tr.id)
	e.queue.AddAfter(tr.id, e.startupTimeout(created)) // the startup timeout fires even without events
}

// adoptExisting handles a pod that exists under the try's name: this try's
// pod is adopted (a relaunch after a crash); a pod being deleted is waited
// out and the pod created again; another's pod is an error.
func (e *Executor) adoptExisting(ctx context.Context, inf *nsInformer, tr *tracked, pod *corev1.Pod) (*corev1.Pod, error) {
	for attempt := 0; ; attempt++ {
		cur, err := e.cfg.Client.Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return e.cfg.Client.Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{})
		}
		if err != nil {
			return nil, err
		}
		if cur.Labels[k8s.LabelInstance] != pod.Labels[k8s.LabelInstance] {
			return nil, fmt.Errorf("pod %s exists and belongs to runner instance %q", tr.id, cur.Annotations[k8s.LabelInstance])
		}
		if cur.DeletionTimestamp == nil && !lostBeforeStart(cur) {
			return cur, nil
		}
		if attempt > 60 {
			return nil, fmt.Errorf("pod %s from an earlier launch is still being deleted", tr.id)
		}
		if cur.DeletionTimestamp == nil {
			g := int64(0)
			_ = e.cfg.Client.Pods(cur.Namespace).Delete(ctx, cur.Name, metav1.DeleteOptions{GracePeriodSeconds: &g,
				Preconditions: &metav1.Preconditions{UID: &cur.UID}})
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(backoff(attempt)):
		}
	}
}

// Kill deletes the try's pod with the kill grace; its end is reported once
// the pod is gone or has stopped.
func (e *Executor) Kill(_ context.Context, k executor.Key, reason string) error {
	e.mu.Lock()
	tr := e.byKey[k]
	e.mu.Unlock()
	if tr == nil {
		return nil
	}
	tr.mu.Lock()
	if tr.killReason == "" {
		tr.killReason = reason
	}
	tr.mu.Unlock()
	e.queue.Add(tr.id)
	return nil
}

// Shutdown applies the cleanup policy to the pods of finished tries at once
// (the scheduler has committed their ends), then stops watching and
// streaming; pods still running keep running, and a runner that starts on
// the same database adopts them.
func (e *Executor) Shutdown(ctx context.Context) error {
	e.mu.Lock()
	var finished []*tracked
	for _, tr := range e.tries {
		if tr.isFinished() {
			finished = append(finished, tr)
		}
	}
	e.mu.Unlock()
	for _, tr := range finished {
		e.mu.Lock()
		inf := e.informers[tr.ns]
		e.mu.Unlock()
		if inf == nil {
			continue
		}
		pod, err := inf.pods.Get(tr.name)
		e.cleanup(tr, pod, err == nil, true)
	}
	e.stop()
	e.queue.ShutDown()
	e.mu.Lock()
	for _, inf := range e.informers {
		close(inf.stop)
	}
	e.informers = map[string]*nsInformer{}
	e.mu.Unlock()
	done := make(chan struct{})
	go func() { e.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (e *Executor) report(r executor.Report) {
	if r.At.IsZero() {
		r.At = time.Now()
	}
	e.cfg.Report(r)
}

// fail ends a try that has no pod to follow (it could not be created).
func (e *Executor) fail(tr *tracked, msg string, noRetry bool) {
	if !tr.finish() {
		return
	}
	e.forget(tr)
	e.report(executor.Report{Key: tr.key, Status: executor.Failed, Error: msg, NoRetry: noRetry, Pod: tr.name})
}

func (e *Executor) forget(tr *tracked) {
	e.mu.Lock()
	if e.tries[tr.id] == tr {
		delete(e.tries, tr.id)
	}
	if e.byKey[tr.key] == tr {
		delete(e.byKey, tr.key)
	}
	e.mu.Unlock()
}

// retryAPI calls f until it succeeds or fails with an error that a retry
// cannot fix: 429, 5xx, timeouts and connection errors are retried with
// exponential backoff, at most 8 times.
func retryAPI(ctx context.Context, f func() error) error {
	var err error
	for attempt := 0; attempt < 8; attempt++ {
		if err = f(); err == nil || !retriable(err) {
			return err
		}
		d := backoff(attempt)
		if s, ok := apierrors.SuggestsClientDelay(err); ok && time.Duration(s)*time.Second > d {
			d = time.Duration(s) * time.Second
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
		}
	}
	return err
}

func retriable(err error) bool {
	if apierrors.IsTooManyRequests(err) || apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) ||
		apierrors.IsInternalError(err) || apierrors.IsServiceUnavailable(err) || apierrors.IsUnexpectedServerError(err) {
		return true
	}
	var st apierrors.APIStatus
	if errors.As(err, &st) {
		return st.Status().Code >= 500
	}
	return !apierrors.IsAlreadyExists(err) && !apierrors.IsInvalid(err) && !apierrors.IsForbidden(err) &&
		!apierrors.IsNotFound(err) && !apierrors.IsBadRequest(err) && !apierrors.IsUnauthorized(err) &&
		!errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) && !isStatus(err)
}

func isStatus(err error) bool {
	var st apierrors.APIStatus
	return errors.As(err, &st)
}

func backoff(attempt int) time.Duration {
	d := 50 * time.Millisecond << min(attempt, 6)
	return min(d, 3*time.Second)
}

// tracked is one try followed by the executor.
type tracked struct {
	key       executor.Key
	try       executor.Try
	ns, name  string
	id        string // namespace/name
	kind      string // k8s.KindWorker or k8s.KindPod
	podTask   k8s.PodTask
	onFinish  k8s.OnFinish
	startup   time.Duration
	resultMsg bool  // a PodOperator pod pushes its result through the termination message
	skipCodes []int // a PodOperator pod's exit codes that skip the task

	mu         sync.Mutex
	uid        types.UID
	created    bool
	createdAt  time.Time
	seen       bool
	started    bool
	startedAt  time.Time
	pullSince  time.Time
	killReason string
	deleting   string // why the executor deleted the pod ("" = it did not)
	deletedAt  time.Time
	lost       bool // the pod is being deleted because it was lost before it ran
	logs       *logStream
	skipLines  int
	finished   bool
	cleanupAt  time.Time
	succeeded  bool                 // the try ended well (for the cleanup policy)
	framed     *termination.Message // a result to read from the saved log
}

func newTracked(t executor.Try, pod *corev1.Pod) *tracked {
	tr := &tracked{key: t.Key, try: t, ns: pod.Namespace, name: pod.Name, id: pod.Namespace + "/" + pod.Name,
		kind: pod.Annotations[k8s.AnnotationKind]}
	tr.podTask, _ = t.Task.(k8s.PodTask)
	tr.onFinish = k8s.OnFinish(pod.Annotations[k8s.AnnotationOnFinish])
	tr.resultMsg = pod.Annotations[k8s.AnnotationResult] == "termination-message"
	tr.skipCodes, _ = k8s.ParseExitCodes(pod.Annotations[k8s.AnnotationSkipExitCodes]) // checked when the pod was built
	if d, err := time.ParseDuration(pod.Annotations[k8s.AnnotationStartupTimeout]); err == nil && d > 0 {
		tr.startup = d
	}
	return tr
}

func (tr *tracked) isFinished() bool {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.finished
}

// finish marks the try's end as reported; false if it already was.
func (tr *tracked) finish() bool {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.finished {
		return false
	}
	tr.finished = true
	return true
}

func (e *Executor) startupTimeout(p *corev1.Pod) time.Duration {
	if d, err := time.ParseDuration(p.Annotations[k8s.AnnotationStartupTimeout]); err == nil && d > 0 {
		return d
	}
	return e.cfg.StartupTimeout
}
