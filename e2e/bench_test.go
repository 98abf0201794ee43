package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/executor"
	kubeexec "github.com/trellisdag/trellis/executor/kubernetes"
	"github.com/trellisdag/trellis/k8s"
	"github.com/trellisdag/trellis/k8s/termination"
	"github.com/trellisdag/trellis/operators"
	"github.com/trellisdag/trellis/runner"
	"github.com/trellisdag/trellis/task"
)

// How benchmark pods finish without containers: they are bound (spec.nodeName)
// to fakeNode, a Node object with no kubelet behind it, so no container ever
// starts; a completer (admin client) watches them and patches each one's
// status to Succeeded with the base container terminated, exit code 0 and a
// worker termination message, as a kubelet would.
const fakeNode = "trellis-bench-node"

func benchEnabled(t *testing.T) *env {
	e := need(t)
	if os.Getenv("TRELLIS_KUBE_BENCH") == "" {
		t.Skip("set TRELLIS_KUBE_BENCH=1 to run the Kubernetes benchmarks (1,000 pods)")
	}
	ctx := context.Background()
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: fakeNode}}
	if _, err := e.admin.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil && !strings.Contains(err.Error(), "already exists") {
		t.Fatal(err)
	}
	return e
}

func fastClient(t *testing.T, kubeconfig string) kubernetes.Interface {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.QPS, cfg.Burst = runner.DefaultQPS, runner.DefaultBurst
	cfg.ContentType = "application/vnd.kubernetes.protobuf" // as the runner's client
	cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	if q, err := strconv.Atoi(os.Getenv("TRELLIS_KUBE_BENCH_QPS")); err == nil && q > 0 {
		cfg.QPS, cfg.Burst = float32(q), 2*q // other limits, for both sides
	}
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// completer finishes the pods matching selector; hold delays completions
// until release is closed. It records when each pod was added and when its
// Succeeded status was written.
type completer struct {
	mu        sync.Mutex
	added     map[string]time.Time
	succeeded map[string]time.Time
	order     []string
	addedN    chan int
}

func complete(t *testing.T, e *env, selector string, release <-chan struct{}) (*completer, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	admin := fastClient(t, e.vars["TRELLIS_KUBE_ADMIN_KUBECONFIG"])
	c := &completer{added: map[string]time.Time{}, succeeded: map[string]time.Time{}, addedN: make(chan int, 10000)}
	body, _ := termination.Message{Status: termination.Succeeded, Result: []byte("7")}.Encode()
	jobs := make(chan string, 10000)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				var name string
				select {
				case name = <-jobs:
				case <-ctx.Done():
					return
				}
				if release != nil {
					select {
					case <-release:
					case <-ctx.Done():
						return
					}
				}
				now := metav1.Now()
				st := corev1.PodStatus{Phase: corev1.PodSucceeded, ContainerStatuses: []corev1.ContainerStatus{{Name: "base", Ready: false, Image: "x", ImageID: "x",
					State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed", Message: string(body), StartedAt: now, FinishedAt: now}}}}}
				patch := fmt.Sprintf(`{"status":%s}`, mustJSON(st))
				_, err := admin.CoreV1().Pods(namespace).Patch(ctx, name, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}, "status")
				c.mu.Lock()
				if err == nil {
					c.succeeded[name] = time.Now()
				}
				c.mu.Unlock()
			}
		}()
	}
	// An informer, not a bare watch: it relists if the watch breaks under load.
	f := informers.NewSharedInformerFactoryWithOptions(admin, 0, informers.WithNamespace(namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = selector }))
	inf := f.Core().V1().Pods().Informer()
	inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: func(obj any) {
		p, ok := obj.(*corev1.Pod)
		if !ok {
			return
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if _, seen := c.added[p.Name]; !seen {
			c.added[p.Name] = time.Now()
			c.order = append(c.order, p.Name)
			c.addedN <- len(c.order)
			jobs <- p.Name
		}
	}})
	stop := make(chan struct{})
	f.Start(stop)
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		t.Fatal("completer: informer did not sync")
	}
	return c, func() { cancel(); close(stop); f.Shutdown(); wg.Wait() }
}

func benchPod(name string, i int) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: map[string]string{"trellis-bench": "bare"}},
		Spec: corev1.PodSpec{NodeName: fakeNode, RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{Name: "base", Image: "trellis.local/busybox:1", Command: []string{"true", strconv.Itoa(i)}}}},
	}
}

// benchTry is the i-th try of a throughput round.
func benchTry(instance string, i int) executor.Try {
	tr := executor.Try{Key: executor.Key{Run: 1, DAGID: "bench", RunID: instance, TaskID: fmt.Sprintf("t%04d", i), Try: 1}}
	tr.Task = task.Go(tr.TaskID, func(context.Context, *task.Run) (int, error) { return 0, nil })
	return tr
}

// benchWork is what a throughput round creates: the i-th try of a round and
// how its pod is built; the bare loop creates exactly the pods the executor
// does, built the same way.
type benchWork struct {
	try   func(instance string, i int) executor.Try
	build func(instance string) func(context.Context, executor.Try) (*corev1.Pod, error)
}

// workerWork is the tries of 1,000 independent tasks and their worker pods.
var workerWork = benchWork{try: benchTry, build: benchBuild}

// benchBuild builds the pod of a try the way the runner labels its pods;
// the bare loop creates exactly these pods too.
func benchBuild(instance string) func(context.Context, executor.Try) (*corev1.Pod, error) {
	return func(_ context.Context, tr executor.Try) (*corev1.Pod, error) {
		id := k8s.TryIdentity{DAGID: tr.DAGID, RunID: tr.RunID, TaskID: tr.TaskID, Try: tr.Try, Instance: instance}
		p := benchPod(id.PodName(), 0)
		p.Labels, p.Annotations = id.Labels(), id.Annotations()
		p.Annotations[k8s.AnnotationKind] = k8s.KindWorker
		return p, nil
	}
}

// deleteSettled deletes the pods matching selector and returns once a watch
// has seen the last of them go, so that the next round starts on a quiet
// server.
func deleteSettled(t *testing.T, admin kubernetes.Interface, selector string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	zero := int64(0)
	pods := admin.CoreV1().Pods(namespace)
	if err := pods.DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &zero}, metav1.ListOptions{LabelSelector: selector}); err != nil {
		t.Fatal(err)
	}
	list, err := pods.List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		t.Fatal(err)
	}
	left := map[string]bool{}
	for _, p := range list.Items {
		left[p.Name] = true
	}
	if len(left) == 0 {
		return
	}
	w, err := pods.Watch(ctx, metav1.ListOptions{LabelSelector: selector, ResourceVersion: list.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for ev := range w.ResultChan() {
		if p, ok := ev.Object.(*corev1.Pod); ok && ev.Type == "DELETED" {
			delete(left, p.Name)
			if len(left) == 0 {
				return
			}
		}
	}
	t.Fatalf("%d pods of %s still there after 2m", len(left), selector)
}

// cpuTicks returns the CPU time (user+system, clock ticks) of the process
// whose pid is in $TRELLIS_KUBE_DIR/run/<name>.pid, or -1.
func cpuTicks(e *env, name string) int64 {
	b, err := os.ReadFile(filepath.Join(e.vars["TRELLIS_KUBE_DIR"], "run", name+".pid"))
	if err != nil {
		return -1
	}
	st, err := os.ReadFile("/proc/" + strings.TrimSpace(string(b)) + "/stat")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(st[strings.LastIndexByte(string(st), ')')+2:]))
	u, _ := strconv.ParseInt(f[11], 10, 64)
	sy, _ := strconv.ParseInt(f[12], 10, 64)
	return u + sy
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// throughputRound is one timed creation of n pods, by the bare loop or by
// the executor.
type throughputRound struct {
	executor  bool
	created   time.Duration // first create → last pod seen by a watch
	server    int64         // CPU ticks of kube-apiserver and etcd meanwhile
	self      time.Duration // CPU time of this process meanwhile
	completed time.Duration // executor: first Start → last Succeeded report
}

// bareRound creates n pods with a bare client-go loop (32 in flight, the
// same client settings and user as the executor) and times them until a
// watch has seen the last. The loop follows its pods with a plain informer
// (started and synced before the clock starts): the least that anything
// which launches pods and waits for them runs, and what the executor's own
// informer costs the server on the other side.
func bareRound(t *testing.T, e *env, n int, instance string, w benchWork) throughputRound {
	ctx := context.Background()
	client := fastClient(t, e.runnerKube)
	build := w.build(instance)
	bw, stop := complete(t, e, k8s.InstanceSelector(instance), make(chan struct{}))
	defer stop()
	f := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = k8s.InstanceSelector(instance) }))
	own := f.Core().V1().Pods().Informer()
	stopOwn := make(chan struct{})
	defer func() { close(stopOwn); f.Shutdown() }()
	f.Start(stopOwn)
	if !cache.WaitForCacheSync(stopOwn, own.HasSynced) {
		t.Fatal("bare loop: informer did not sync")
	}
	runtime.GC()
	cpu0, self0 := cpuTicks(e, "kube-apiserver")+cpuTicks(e, "etcd"), selfCPU()
	began := time.Now()
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	var failed sync.Map
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			pod, err := build(ctx, w.try(instance, i))
			if err != nil {
				failed.Store(i, err)
				return
			}
			if _, err := client.CoreV1().Pods(namespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
				failed.Store(i, err)
			}
		}()
	}
	wg.Wait()
	failed.Range(func(k, v any) bool { t.Fatalf("bare create %v: %v", k, v); return false })
	for k := range bw.addedN {
		if k == n {
			break
		}
	}
	return throughputRound{created: time.Since(began), server: cpuTicks(e, "kube-apiserver") + cpuTicks(e, "etcd") - cpu0, self: selfCPU() - self0}
}

// executorRound starts n tries on a new executor (restricted user) and times
// them until a watch has seen the last pod; completions are held back until
// then, so that creation runs on a server doing what it did for the bare
// loop. Then the pods are completed and the tries followed to Succeeded.
func executorRound(t *testing.T, e *env, n int, instance string, w benchWork) throughputRound {
	ctx := context.Background()
	release := make(chan struct{})
	c, stop := complete(t, e, k8s.InstanceSelector(instance), release)
	defer stop()
	reports := make(chan executor.Report, 3*n)
	cs := fastClient(t, e.runnerKube)
	ex, err := kubeexec.New(kubeexec.Config{
		Client: kubeexec.ClientOf(cs.CoreV1().Pods, cs.CoreV1().Events), Namespace: namespace, Instance: instance, NoLogs: true,
		Build:        w.build(instance),
		Report:       func(r executor.Report) { reports <- r },
		Cleanup:      k8s.OnFinishKeep,
		CleanupDelay: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	// Like the bare loop's informer, the executor's is started and synced
	// before the clock starts (Recover with nothing to adopt; a runner pays
	// this once per process, at most one 100 ms sync poll of client-go).
	if err := ex.Recover(ctx, nil); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	cpu0, self0 := cpuTicks(e, "kube-apiserver")+cpuTicks(e, "etcd"), selfCPU()
	began := time.Now()
	for i := range n {
		if err := ex.Start(ctx, w.try(instance, i)); err != nil {
			t.Fatal(err)
		}
	}
	var r throughputRound
	r.executor = true
	for k := range c.addedN {
		if k == n {
			r.created = time.Since(began)
			r.server = cpuTicks(e, "kube-apiserver") + cpuTicks(e, "etcd") - cpu0
			r.self = selfCPU() - self0
			break
		}
	}
	close(release)
	done := 0
	timeout := time.After(5 * time.Minute)
	for done < n {
		select {
		case rep := <-reports:
			if rep.Status == executor.Succeeded {
				done++
			} else if rep.Status != executor.Started {
				t.Fatalf("report %v: %s", rep.Status, rep.Error)
			}
		case <-timeout:
			t.Fatalf("%d of %d tries done after 5m", done, n)
		}
	}
	r.completed = time.Since(began)
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := ex.Shutdown(sctx); err != nil {
		t.Error(err)
	}
	return r
}

// TestKubeBenchThroughput compares how fast the executor gets 1,000 pods
// created (and seen by a watch) with a bare client-go loop creating the same
// pods as the same user with the same client settings (the ceiling).
//
// One round of 1,000 pods takes 1.5-3.5 s here, and a round's rate swings
// by up to half with how much CPU kube-apiserver and etcd burn in it (their
// garbage collection and compaction; the test process's own CPU stays at
// about 0.5 s a round on either side, and both sides send the same requests:
// 1,000 creates, one list and one watch), so the two sides alternate in a
// balanced order (B E E B E B B E B E E B: any linear drift of the server
// weighs on both alike; TRELLIS_KUBE_BENCH_ROUNDS pairs, default 6), each
// round starts on a quiet server (the previous round's pods deleted and their
// deletion seen), and the medians of the rounds are compared, so that a few
// disturbed rounds do not decide. Each round logs its rate, the CPU time
// kube-apiserver and etcd used (clock ticks) and the test process's.
func TestKubeBenchThroughput(t *testing.T) {
	throughput(t, benchEnabled(t), workerWork)
}

// TestKubeBenchMapped is TestKubeBenchThroughput for the 1,000 instances
// of one PodOperator mapped over a list (task.MapItems of 1,000 elements):
// each try is an instance ("resize[k]", its element carried by its inputs
// as the scheduler hands it over) and its pod is built as the runner builds
// a PodTask's (the operator's templates rendered over the instance's run,
// {{ .Item.name }} and {{ .MapIndex }} among them, then k8s.Builder.Finish:
// the name with the map index, the identity and map-index labels); the bare
// loop creates the same pods, built the same way, on the same terms.
func TestKubeBenchMapped(t *testing.T) {
	throughput(t, benchEnabled(t), mappedWork(t))
}

// mappedWork is the instances of a PodOperator mapped over 1,000 files.
func mappedWork(t *testing.T) benchWork {
	type file struct {
		Name  string `json:"name"`
		Width int    `json:"width"`
	}
	files := make([]file, 1000)
	items := make([]json.RawMessage, len(files))
	for i := range files {
		files[i] = file{Name: fmt.Sprintf("img-%04d.png", i), Width: 100 + i}
		items[i] = json.RawMessage(mustJSON(files[i]))
	}
	resize := operators.Pod("resize", operators.PodSpec{
		Image:   "trellis.local/busybox:1",
		Command: []string{"sh", "-c", "resize {{ .Item.name }} to {{ .Item.width }} (element {{ .MapIndex }} of {{ .RunID }})"},
		Env:     []corev1.EnvVar{{Name: "FILE", Value: "{{ .Item.name }}"}},
		Pod:     &corev1.Pod{Spec: corev1.PodSpec{NodeName: fakeNode, RestartPolicy: corev1.RestartPolicyNever}},
	}, task.MapItems(files...))
	d := dag.New("bench_map", dag.DefaultRetries(0, 0))
	d.Add(resize)
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	try := func(instance string, i int) executor.Try {
		info := task.Info{DAGID: "bench_map", TaskID: "resize", RunID: instance, Try: 1, MaxTries: 1, MapIndex: i}
		return executor.Try{Key: executor.Key{Run: 1, DAGID: "bench_map", RunID: instance, TaskID: task.InstanceID("resize", i), Try: 1},
			Task: resize, Info: info, Inputs: task.WithItem(nil, items[i])}
	}
	build := func(instance string) func(context.Context, executor.Try) (*corev1.Pod, error) {
		b, err := k8s.NewBuilder(k8s.BuilderConfig{Command: []string{"/usr/local/bin/bench"}, Image: "trellis.local/busybox:1",
			Namespace: namespace, Instance: instance})
		if err != nil {
			t.Fatal(err)
		}
		return func(ctx context.Context, tr executor.Try) (*corev1.Pod, error) {
			pod, err := resize.Pod(ctx, task.NewRun(tr.Task, tr.Info, nil, nil, tr.Inputs, nil))
			if err != nil {
				return nil, err
			}
			return b.Finish(ctx, pod, tr.Info, tr.Timeout)
		}
	}
	// The pods are what the runner would create for the instances.
	pod, err := build("check")(context.Background(), try("check", 7))
	if err != nil {
		t.Fatal(err)
	}
	if pod.Labels[k8s.LabelMapIndex] != "7" || pod.Name != k8s.PodName("bench_map", "check", "resize[7]", 1) ||
		!strings.Contains(pod.Spec.Containers[0].Command[2], "resize img-0007.png to 107 (element 7 of check)") {
		t.Fatalf("mapped instance's pod: %s %v %v", pod.Name, pod.Labels, pod.Spec.Containers[0].Command)
	}
	return benchWork{try: try, build: build}
}

// throughput runs the rounds of a throughput benchmark: the bare loop and
// the executor alternately, each creating 1,000 pods of w.
func throughput(t *testing.T, e *env, w benchWork) {
	const n = 1000
	pairs := 6
	if v, err := strconv.Atoi(os.Getenv("TRELLIS_KUBE_BENCH_ROUNDS")); err == nil && v > 0 {
		pairs = v
	}
	admin := fastClient(t, e.vars["TRELLIS_KUBE_ADMIN_KUBECONFIG"])
	stamp := time.Now().Format("150405")
	var bare, ex, completed []float64
	for i := range 2 * pairs {
		instance := fmt.Sprintf("bench-%s-%d", stamp, i)
		if balancedOrder(i) {
			r := executorRound(t, e, n, instance, w)
			ex = append(ex, float64(n)/r.created.Seconds())
			t.Logf("round %d executor: %.0f pods/s, server CPU %d ticks, test process %s", i, float64(n)/r.created.Seconds(), r.server, r.self)
			completed = append(completed, float64(n)/r.completed.Seconds())
		} else {
			r := bareRound(t, e, n, instance, w)
			bare = append(bare, float64(n)/r.created.Seconds())
			t.Logf("round %d bare: %.0f pods/s, server CPU %d ticks, test process %s", i, float64(n)/r.created.Seconds(), r.server, r.self)
		}
		deleteSettled(t, admin, k8s.InstanceSelector(instance))
	}
	bareRate, exRate := median(bare), median(ex)
	t.Logf("bare client-go loop: %d rounds of %d pods created and seen by a watch: %s pods/s; median %.0f pods/s", pairs, n, rates(bare), bareRate)
	t.Logf("executor: %d rounds of %d pods created and seen by a watch: %s pods/s; median %.0f pods/s = %.0f%% of the bare loop", pairs, n, rates(ex), exRate, 100*exRate/bareRate)
	t.Logf("executor: completions released once every pod exists; first Start → last Succeeded reported: %s tries/s; median %.0f tries/s", rates(completed), median(completed))
	if exRate < 0.8*bareRate {
		t.Errorf("executor creates %.0f pods/s (median), under 80%% of the bare loop's %.0f", exRate, bareRate)
	}
}

// balancedOrder reports whether round i is the executor's in the order
// B E E B E B B E (repeated): each side's mean position is the same.
func balancedOrder(i int) bool {
	return "BEEBEBBE"[i%8] == 'E'
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func rates(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = strconv.FormatFloat(x, 'f', 0, 64)
	}
	return strings.Join(parts, ", ")
}

// TestKubeBenchRunner runs the benchmark DAGs with the runner binary (the
// restricted user, the kubernetes executor): the hand-off latency along a
// chain of 40 tasks, and the runner's memory with 1,000 pods in flight.
func TestKubeBenchRunner(t *testing.T) {
	e := benchEnabled(t)
	bin := filepath.Join(e.bin, "benchdag")
	build := exec.Command("go", "build", "-o", bin, "./e2e/testdata/benchdag")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	tmpl := filepath.Join(t.TempDir(), "fake-node.yaml")
	os.WriteFile(tmpl, []byte("apiVersion: v1\nkind: Pod\nspec:\n  nodeName: "+fakeNode+"\n  restartPolicy: Never\n  containers:\n  - name: base\n"), 0o644)
	r := &runnerCmd{t: t, e: e, bin: bin, db: filepath.Join(t.TempDir(), "trellis.db"),
		env: append(os.Environ(), "KUBECONFIG="+e.runnerKube, "TRELLIS_IMAGE=trellis.local/busybox:1", "TRELLIS_EXECUTOR=kubernetes",
			"TRELLIS_NAMESPACE="+namespace, "TRELLIS_POD_TEMPLATE="+tmpl, "TRELLIS_SYNC=normal")}

	t.Run("handoff", func(t *testing.T) {
		ld := time.Now().UTC().Format("2006-01-02T15:04:05Z")
		runID := "manual__" + strings.TrimSuffix(ld, "Z") + "+00:00"
		c, stop := complete(t, e, "trellis.dev/dag=bench_chain,trellis.dev/run="+k8s.LabelValue(runID), nil)
		defer stop()
		out, code := r.run(5*time.Minute, "dags", "test", "bench_chain", "--logical-date", ld)
		if code != 0 {
			t.Fatalf("exit %d:\n%s", code, out)
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		var lat []time.Duration
		for i := 1; i < len(c.order); i++ {
			prev, next := c.order[i-1], c.order[i]
			if s, ok := c.succeeded[prev]; ok {
				lat = append(lat, c.added[next].Sub(s))
			}
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		if len(lat) < 30 {
			t.Fatalf("%d hand-offs measured", len(lat))
		}
		p50, p90 := lat[len(lat)/2], lat[len(lat)*9/10]
		t.Logf("hand-off, Succeeded status written -> downstream pod's ADDED event seen (an upper bound of Succeeded event -> create request): p50 %s, p90 %s, max %s over %d hand-offs",
			p50.Round(100*time.Microsecond), p90.Round(100*time.Microsecond), lat[len(lat)-1].Round(time.Millisecond), len(lat))
		if p50 > 50*time.Millisecond {
			t.Errorf("hand-off p50 %s > 50ms", p50)
		}
	})

	// The runner end to end: 1,000 instances of a PodOperator mapped over
	// a literal list, expanded by the scheduler, each committed queued and
	// handed to the executor, its pod created and completed at once; then
	// the same for bench_wide's 1,000 unmapped Go tasks (worker pods), for
	// what mapping costs. The bare loop creates the mapped pods (built as the
	// runner builds them) just before and just after, for the ratio.
	// Completions are held until all 1,000 pods exist, as in executorRound.
	t.Run("mapped", func(t *testing.T) {
		admin := fastClient(t, e.vars["TRELLIS_KUBE_ADMIN_KUBECONFIG"])
		w := mappedWork(t)
		bareRate := func(i int) float64 {
			instance := fmt.Sprintf("bench-map-%s-%d", time.Now().Format("150405"), i)
			b := bareRound(t, e, 1000, instance, w)
			deleteSettled(t, admin, k8s.InstanceSelector(instance))
			return 1000 / b.created.Seconds()
		}
		// runnerRate runs a DAG of 1,000 pods with the runner and returns
		// its rate from the first pod seen to the last.
		runnerRate := func(dagID string) float64 {
			ld := time.Now().UTC().Format("2006-01-02T15:04:05Z")
			runID := "manual__" + strings.TrimSuffix(ld, "Z") + "+00:00"
			sel := "trellis.dev/dag=" + dagID + ",trellis.dev/run=" + k8s.LabelValue(runID)
			// As in executorRound, completions wait until every pod exists,
			// so that creation runs on a server doing what it does for the
			// bare loop (no status writes, no deletions meanwhile).
			release := make(chan struct{})
			c, stop := complete(t, e, sel, release)
			defer stop()
			go func() {
				defer close(release)
				for k := range c.addedN {
					if k == 1000 {
						return
					}
				}
			}()
			began := time.Now()
			out, code := r.run(5*time.Minute, "dags", "test", dagID, "--logical-date", ld)
			took := time.Since(began)
			if code != 0 {
				t.Fatalf("%s: exit %d:\n%s", dagID, code, out)
			}
			c.mu.Lock()
			n := len(c.order)
			first, last := c.added[c.order[0]], c.added[c.order[n-1]]
			c.mu.Unlock()
			if n != 1000 {
				t.Fatalf("%s: %d pods, want 1,000", dagID, n)
			}
			deleteSettled(t, admin, sel)
			rate := 999 / last.Sub(first).Seconds()
			t.Logf("runner, %s: first pod seen %s after the start, all 1,000 seen %s later (%.0f pods/s), run done in %s",
				dagID, first.Sub(began).Round(time.Millisecond), last.Sub(first).Round(time.Millisecond), rate, took.Round(time.Millisecond))
			return rate
		}
		before := bareRate(0)
		mapped := runnerRate("bench_map")
		wide := runnerRate("bench_wide")
		after := bareRate(1)
		t.Logf("the bare loop before and after: %.0f and %.0f pods/s; the runner's mapped PodOperator at %.0f%% of their mean, its 1,000 unmapped Go tasks at %.0f%%",
			before, after, 200*mapped/(before+after), 200*wide/(before+after))
	})

	t.Run("memory", func(t *testing.T) {
		ld := time.Now().UTC().Format("2006-01-02T15:04:05Z")
		runID := "manual__" + strings.TrimSuffix(ld, "Z") + "+00:00"
		sel := "trellis.dev/dag=bench_wide,trellis.dev/run=" + k8s.LabelValue(runID)
		admin := fastClient(t, e.vars["TRELLIS_KUBE_ADMIN_KUBECONFIG"])
		defer func() {
			zero := int64(0)
			admin.CoreV1().Pods(namespace).DeleteCollection(context.Background(), metav1.DeleteOptions{GracePeriodSeconds: &zero},
				metav1.ListOptions{LabelSelector: sel})
		}()
		cmd := r.cmd("dags", "test", "bench_wide", "--logical-date", ld)
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		began := time.Now()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { cmd.Process.Kill(); cmd.Wait() }()
		// No pod finishes (nothing completes them): all 1,000 stay in flight.
		deadline := time.Now().Add(3 * time.Minute)
		for {
			list, err := admin.CoreV1().Pods(namespace).List(context.Background(), metav1.ListOptions{LabelSelector: sel, ResourceVersion: "0"})
			if err != nil {
				t.Fatal(err)
			}
			if len(list.Items) >= 1000 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d of 1000 pods after 3m:\n%s", len(list.Items), out.String())
			}
			time.Sleep(200 * time.Millisecond) // polling the API server from the test, bounded by the deadline
		}
		created := time.Since(began)
		time.Sleep(2 * time.Second) // a measurement window: RSS is read after 2 s with every pod watched, not a wait for an event
		status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
		var rss, hwm string
		for _, line := range strings.Split(string(status), "\n") {
			if strings.HasPrefix(line, "VmRSS:") {
				rss = strings.TrimSpace(strings.TrimPrefix(line, "VmRSS:"))
			}
			if strings.HasPrefix(line, "VmHWM:") {
				hwm = strings.TrimSpace(strings.TrimPrefix(line, "VmHWM:"))
			}
		}
		t.Logf("runner with 1,000 pods in flight (all created after %s, none finished): RSS %s (peak %s)", created.Round(time.Millisecond), rss, hwm)
		kb, _ := strconv.Atoi(strings.Fields(hwm + " 0")[0])
		if kb > 300*1024 {
			t.Errorf("peak RSS %d kB > 300 MB", kb)
		}
	})
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
