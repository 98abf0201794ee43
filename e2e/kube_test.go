package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	authv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/trellisdag/trellis/k8s"
)

// cluster is what the tests know of the local cluster; nil when there is none.
var cluster *env

type env struct {
	vars       map[string]string
	admin      kubernetes.Interface
	runnerKube string // the restricted kubeconfig
	bin        string // directory of the built binaries
	quickImage string
	dagImage   string
	teamImage  string // e2e/testdata/teamdag, laid out as its Dockerfile says
	skip       string
}

const namespace = "default"

func TestMain(m *testing.M) {
	code := func() int {
		e, err := setup()
		if err != nil {
			fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
			return 1
		}
		cluster = e
		if e.bin != "" {
			defer os.RemoveAll(e.bin)
		}
		return m.Run()
	}()
	os.Exit(code)
}

func envFile() string {
	dir := os.Getenv("TRELLIS_KUBE_DIR")
	if dir == "" {
		dir = "/tmp/trellis-kube"
	}
	return filepath.Join(dir, "env")
}

// setup reads the cluster's env file, binds the runner's Role, and builds the
// binaries and images the tests run.
func setup() (*env, error) {
	raw, err := os.ReadFile(envFile())
	if err != nil {
		if os.Getenv("CI") != "" {
			return nil, fmt.Errorf("CI is set and there is no cluster (%v); run hack/kube-up.sh first", err)
		}
		return &env{skip: fmt.Sprintf("no local cluster (%s missing; run hack/kube-up.sh)", envFile())}, nil
	}
	e := &env{vars: map[string]string{}}
	for _, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimPrefix(strings.TrimSpace(line), "export ")
		if k, v, ok := strings.Cut(line, "="); ok {
			e.vars[k] = v
		}
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", e.vars["TRELLIS_KUBE_ADMIN_KUBECONFIG"])
	if err != nil {
		return nil, err
	}
	if e.admin, err = kubernetes.NewForConfig(cfg); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := e.admin.CoreV1().Namespaces().Get(ctx, namespace, metav1.GetOptions{}); err != nil {
		if os.Getenv("CI") != "" {
			return nil, fmt.Errorf("the cluster of %s does not answer: %v", envFile(), err)
		}
		return &env{skip: fmt.Sprintf("the cluster of %s does not answer: %v", envFile(), err)}, nil
	}
	e.runnerKube = e.vars["TRELLIS_KUBE_RUNNER_KUBECONFIG"]
	if err := applyRBAC(ctx, e.admin); err != nil {
		return nil, fmt.Errorf("bind the runner's Role: %w", err)
	}
	if e.bin, err = os.MkdirTemp("", "trellis-e2e-"); err != nil {
		return nil, err
	}
	stamp := time.Now().UTC().Format("150405")
	e.quickImage, e.dagImage = "trellis.local/e2e-quickstart:"+stamp, "trellis.local/e2e-kubedag:"+stamp
	e.teamImage = "trellis.local/e2e-teamdag:" + stamp
	for _, b := range []struct{ name, pkg, image string }{
		{"quickstart", "./examples/quickstart", e.quickImage},
		{"kubedag", "./e2e/testdata/kubedag", e.dagImage},
		{"teamdag", "./e2e/testdata/teamdag", e.teamImage},
	} {
		out := filepath.Join(e.bin, b.name)
		// As the generated Dockerfile builds it (see TestDeployedByItsManifests).
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, b.pkg)
		cmd.Dir = ".."
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if msg, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("build %s: %v\n%s", b.pkg, err, msg)
		}
		img := exec.Command("hack/kube-image.sh", b.image, out)
		img.Dir = ".."
		if msg, err := img.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("image %s: %v\n%s", b.image, err, msg)
		}
	}
	return e, nil
}

// applyRBAC creates (or updates) the Role and RoleBinding of testdata/rbac.yaml.
func applyRBAC(ctx context.Context, c kubernetes.Interface) error {
	raw, err := os.ReadFile("testdata/rbac.yaml")
	if err != nil {
		return err
	}
	docs := strings.Split(string(raw), "\n---\n")
	if len(docs) != 2 {
		return fmt.Errorf("testdata/rbac.yaml: %d documents, want a Role and a RoleBinding", len(docs))
	}
	var role rbacv1.Role
	var binding rbacv1.RoleBinding
	if err := yaml.UnmarshalStrict([]byte(docs[0]), &role); err != nil {
		return err
	}
	if err := yaml.UnmarshalStrict([]byte(docs[1]), &binding); err != nil {
		return err
	}
	roles, bindings := c.RbacV1().Roles(namespace), c.RbacV1().RoleBindings(namespace)
	if _, err := roles.Create(ctx, &role, metav1.CreateOptions{}); apierrors.IsAlreadyExists(err) {
		_, err = roles.Update(ctx, &role, metav1.UpdateOptions{})
		if err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	if _, err := bindings.Create(ctx, &binding, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return nil
}

func need(t *testing.T) *env {
	t.Helper()
	if cluster == nil || cluster.skip != "" {
		reason := "no cluster"
		if cluster != nil {
			reason = cluster.skip
		}
		t.Skip(reason)
	}
	return cluster
}

// runner runs a DAG binary as the restricted user.
type runnerCmd struct {
	t   *testing.T
	e   *env
	bin string
	db  string
	env []string
}

func (e *env) runner(t *testing.T, bin string) *runnerCmd {
	image := e.dagImage
	if bin == "quickstart" {
		image = e.quickImage
	}
	return &runnerCmd{t: t, e: e, bin: filepath.Join(e.bin, bin), db: filepath.Join(t.TempDir(), "trellis.db"),
		env: append(os.Environ(), "KUBECONFIG="+e.runnerKube, "TRELLIS_IMAGE="+image, "TRELLIS_EXECUTOR=kubernetes",
			"TRELLIS_NAMESPACE="+namespace)}
}

func (r *runnerCmd) cmd(args ...string) *exec.Cmd {
	c := exec.Command(r.bin, append(args, "--db", r.db)...)
	c.Env = r.env
	return c
}

// run runs a command to its end (bounded) and returns its output and exit code.
func (r *runnerCmd) run(timeout time.Duration, args ...string) (string, int) {
	r.t.Helper()
	c := r.cmd(args...)
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	if err := c.Start(); err != nil {
		r.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case <-done:
	case <-time.After(timeout):
		c.Process.Kill()
		<-done
		r.t.Fatalf("%s %v did not end within %s:\n%s", filepath.Base(r.bin), args, timeout, out.String())
	}
	return out.String(), c.ProcessState.ExitCode()
}

// logicalDate returns a logical date no earlier test run used, so that pod
// names (deterministic per DAG, run, task and try) never meet old pods.
func logicalDate() string {
	return time.Now().UTC().Format("2006-01-02T15:04:05Z")
}

// rowOf returns the summary row of a task (dags test and runs show print them).
func rowOf(out, taskID string) string {
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == taskID {
			return line
		}
	}
	return ""
}

func TestQuickstartOnKubernetes(t *testing.T) {
	e := need(t)
	t.Parallel()
	r := e.runner(t, "quickstart")
	ld := logicalDate()
	out, code := r.run(3*time.Minute, "dags", "test", "etl", "--executor", "kubernetes", "--logical-date", ld)
	if code != 0 {
		t.Fatalf("dags test exited %d:\n%s", code, out)
	}
	for task, want := range map[string]string{
		"extract":   `[{"id":1,"customer":"ada","amount":5}`,
		"aggregate": "2/3",
		"load":      `"loaded 4 customers, revenue 258.00"`,
	} {
		if row := rowOf(out, task); !strings.Contains(row, "success") || !strings.Contains(row, want) {
			t.Errorf("task %s: %q, want success and %q\n%s", task, row, want, out)
		}
	}
	// Logs outlive the pods (deleted on success).
	runID := "manual__" + strings.TrimSuffix(ld, "Z") + "+00:00"
	sel := "trellis.dev/dag=etl,trellis.dev/run=" + k8s.LabelValue(runID)
	waitNoPods(t, e, sel+",trellis.dev/task!=aggregate")
	kept, err := e.admin.CoreV1().Pods(namespace).List(context.Background(), metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		t.Fatal(err)
	}
	if len(kept.Items) != 1 || kept.Items[0].Labels[k8s.LabelTry] != "1" || kept.Items[0].Status.Phase != corev1.PodFailed {
		t.Errorf("want only the failed first try of aggregate kept (delete-on-success), got %d pods", len(kept.Items))
	}
	logs, code := r.run(time.Minute, "logs", "etl", runID, "load")
	if code != 0 || !strings.Contains(logs, "margaret") || strings.Count(logs, "margaret") != 1 {
		t.Errorf("logs of load after its pod was deleted (exit %d):\n%s", code, logs)
	}
	logs, _ = r.run(time.Minute, "logs", "etl", runID, "aggregate", "--try", "1")
	if !strings.Contains(logs, "warehouse connection reset") {
		t.Errorf("logs of aggregate's failed try:\n%s", logs)
	}
}

// waitNoPods waits (bounded) until no pod matches selector.
func waitNoPods(t *testing.T, e *env, selector string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		list, err := e.admin.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			t.Fatalf("pods %s still there: %v", selector, err)
		}
		if len(list.Items) == 0 {
			return
		}
		w, err := e.admin.CoreV1().Pods(namespace).Watch(ctx, metav1.ListOptions{LabelSelector: selector, ResourceVersion: list.ResourceVersion})
		if err != nil {
			t.Fatal(err)
		}
		for ev := range w.ResultChan() {
			if ev.Type == watch.Deleted {
				break
			}
		}
		w.Stop()
	}
}

func TestPodOperatorResultDownstream(t *testing.T) {
	e := need(t)
	t.Parallel()
	r := e.runner(t, "kubedag")
	ld := logicalDate()
	out, code := r.run(3*time.Minute, "dags", "test", "e2e_pod", "--logical-date", ld)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	want := fmt.Sprintf(`"3 files, hello %s"`, ld[:10])
	if row := rowOf(out, "consume"); !strings.Contains(row, want) {
		t.Errorf("consume: %q, want %s\n%s", row, want, out)
	}
	if row := rowOf(out, "count"); !strings.Contains(row, `{"files":3,"greet":"hello`) && !strings.Contains(row, `{"files": 3, "greet": "hello`) {
		t.Errorf("count: %q", row)
	}
	// relay's command and env were rendered from count's stored result.
	if row := rowOf(out, "relay"); !strings.Contains(row, `{"files":3,"raw":{"files":3,"greet":"hello `+ld[:10]+`"}}`) {
		t.Errorf("relay: %q, want count's result in its command and env\n%s", row, out)
	}
	// maybe exited 42, one of its skip-on-exit-codes: skipped, not failed,
	// and after_maybe (all_success) skipped with it.
	if f := strings.Fields(rowOf(out, "maybe")); len(f) < 5 || f[1] != "skipped" || f[4] != "42" {
		t.Errorf("maybe row %q: want skipped with exit code 42\n%s", rowOf(out, "maybe"), out)
	}
	if f := strings.Fields(rowOf(out, "after_maybe")); len(f) < 2 || f[1] != "skipped" {
		t.Errorf("after_maybe row %q: want skipped\n%s", rowOf(out, "after_maybe"), out)
	}
}

func TestFailingPodRetriedThenFailed(t *testing.T) {
	e := need(t)
	t.Parallel()
	r := e.runner(t, "kubedag")
	out, code := r.run(3*time.Minute, "dags", "test", "e2e_fail", "--logical-date", logicalDate())
	if code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", code, out)
	}
	row := rowOf(out, "exit3")
	if f := strings.Fields(row); len(f) < 5 || f[1] != "failed" || f[2] != "2/2" || f[4] != "3" {
		t.Errorf("exit3 row %q: want failed, try 2/2, exit code 3\n%s", row, out)
	}
}

func TestMissingImageFailsFast(t *testing.T) {
	e := need(t)
	t.Parallel()
	r := e.runner(t, "kubedag")
	began := time.Now()
	out, code := r.run(2*time.Minute, "dags", "test", "e2e_image", "--logical-date", logicalDate())
	if code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", code, out)
	}
	if took := time.Since(began); took > time.Minute {
		t.Errorf("took %s; the startup timeout is 5m, the pull grace 3s", took)
	}
	row := rowOf(out, "bad_image")
	if !strings.Contains(row, "ErrImagePull") && !strings.Contains(row, "ImagePullBackOff") {
		t.Errorf("bad_image: %q, want the pull error\n%s", row, out)
	}
}

// podWatch records the pods of a DAG as the API server shows them.
type podWatch struct {
	mu      sync.Mutex
	uids    map[string]map[types.UID]bool // pod name -> UIDs seen
	labels  map[string]map[string]string  // pod name -> its labels
	pods    chan *corev1.Pod
	stop    func()
	stopped chan struct{}
}

func watchPods(t *testing.T, e *env, selector string) *podWatch {
	t.Helper()
	return watchPodsIn(t, e, namespace, selector)
}

// watchPodsIn watches the pods of a namespace that match selector, recording
// every pod (by name and UID) it sees, until the test ends.
func watchPodsIn(t *testing.T, e *env, ns, selector string) *podWatch {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w, err := e.admin.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		t.Fatal(err)
	}
	pw := &podWatch{uids: map[string]map[types.UID]bool{}, labels: map[string]map[string]string{}, pods: make(chan *corev1.Pod, 1000), stopped: make(chan struct{})}
	pw.stop = func() { cancel(); w.Stop(); <-pw.stopped }
	go func() {
		defer close(pw.stopped)
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			pw.mu.Lock()
			if pw.uids[p.Name] == nil {
				pw.uids[p.Name] = map[types.UID]bool{}
			}
			pw.uids[p.Name][p.UID] = true
			pw.labels[p.Name] = p.Labels
			pw.mu.Unlock()
			select {
			case pw.pods <- p:
			default:
			}
		}
	}()
	t.Cleanup(pw.stop)
	return pw
}

// until waits (bounded) for a pod that satisfies ok.
func (pw *podWatch) until(t *testing.T, what string, ok func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	timeout := time.After(2 * time.Minute)
	for {
		select {
		case p := <-pw.pods:
			if ok(p) {
				return p
			}
		case <-timeout:
			t.Fatalf("no pod %s within 2m", what)
		}
	}
}

func (pw *podWatch) count(name string) int {
	pw.mu.Lock()
	defer pw.mu.Unlock()
	return len(pw.uids[name])
}

func TestPodDeletedBeforeStartIsRelaunched(t *testing.T) {
	e := need(t)
	t.Parallel()
	r := e.runner(t, "kubedag")
	r.env = append(r.env, "E2E_INIT_SLEEP=6")
	ld := logicalDate()
	runID := "manual__" + strings.TrimSuffix(ld, "Z") + "+00:00"
	pw := watchPods(t, e, "trellis.dev/dag=e2e_slow,trellis.dev/task=first,trellis.dev/run="+k8s.LabelValue(runID))
	c := r.cmd("dags", "test", "e2e_slow", "--logical-date", ld, "--conf", `{"seconds": 1}`)
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	// Delete the pod while its init container still waits: the task has not started.
	p := pw.until(t, "in its init container", func(p *corev1.Pod) bool {
		return p.DeletionTimestamp == nil && len(p.Status.InitContainerStatuses) > 0 && p.Status.InitContainerStatuses[0].State.Running != nil
	})
	if err := e.admin.CoreV1().Pods(namespace).Delete(context.Background(), p.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := waitCmd(c, 3*time.Minute); err != nil {
		t.Fatalf("dags test: %v\n%s", err, out.String())
	}
	if row := rowOf(out.String(), "first"); !strings.Contains(row, "success") || !strings.Contains(row, "1/1") {
		t.Errorf("first: %q, want success on try 1/1 (no retry spent)\n%s", row, out.String())
	}
	if n := pw.count(p.Name); n != 2 {
		t.Errorf("pod %s was created %d times, want 2 (the relaunch under the same name)", p.Name, n)
	}
}

func waitCmd(c *exec.Cmd, timeout time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(timeout):
		c.Process.Kill()
		<-done
		return fmt.Errorf("did not end within %s", timeout)
	}
}

func TestRunnerKilledAdoptsPods(t *testing.T) {
	e := need(t)
	t.Parallel()
	r := e.runner(t, "kubedag")
	r.env = append(r.env, "E2E_INIT_SLEEP=1")
	ld := logicalDate()
	runID := "manual__" + strings.TrimSuffix(ld, "Z") + "+00:00"
	pw := watchPods(t, e, "trellis.dev/dag=e2e_slow,trellis.dev/run="+k8s.LabelValue(runID))
	first := r.cmd("dags", "trigger", "e2e_slow", "--wait", "--executor", "kubernetes", "--logical-date", ld, "--conf", `{"seconds": 8}`)
	var out1 bytes.Buffer
	first.Stdout, first.Stderr = &out1, &out1
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	p := pw.until(t, "running task first", func(p *corev1.Pod) bool {
		s := p.Status.ContainerStatuses
		return p.Labels[k8s.LabelTask] == "first" && len(s) > 0 && s[0].State.Running != nil
	})
	// Once the log stream has saved a line or two (read from the database
	// while the runner writes it), kill -9 the runner mid-stream.
	deadline := time.Now().Add(time.Minute)
	for {
		saved, _ := r.run(time.Minute, "logs", "e2e_slow", runID, "first")
		if strings.Contains(saved, "tick 1") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no tick 1 in the saved log after 1m:\n%s", saved)
		}
	}
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.Wait()

	out, code := r.run(3*time.Minute, "serve", "--until-idle")
	if code != 0 {
		t.Fatalf("serve after the kill exited %d:\n%s", code, out)
	}
	show, _ := r.run(time.Minute, "runs", "show", "e2e_slow", runID)
	for _, task := range []string{"first", "second"} {
		if row := rowOf(show, task); !strings.Contains(row, "success") || !strings.Contains(row, "1/1") {
			t.Errorf("%s: %q, want success on its first try\n%s", task, row, show)
		}
	}
	if row := rowOf(show, "second"); !strings.Contains(row, `"got 7"`) {
		t.Errorf("second: %q, want \"got 7\"", row)
	}
	if n := pw.count(p.Name); n != 1 {
		t.Errorf("pod %s was created %d times; the restarted runner must adopt it", p.Name, n)
	}
	logs, _ := r.run(time.Minute, "logs", "e2e_slow", runID, "first")
	var ticks []string
	sc := bufio.NewScanner(strings.NewReader(logs))
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "tick ") {
			ticks = append(ticks, sc.Text())
		}
	}
	if want := "tick 0,tick 1,tick 2,tick 3,tick 4,tick 5,tick 6,tick 7"; strings.Join(ticks, ",") != want {
		t.Errorf("log across the restart: %v, want each tick once:\n%s", ticks, logs)
	}
}

func TestRunnerRBACIsMinimal(t *testing.T) {
	e := need(t)
	cfg, err := clientcmd.BuildConfigFromFlags("", e.runnerKube)
	if err != nil {
		t.Fatal(err)
	}
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, check := range []struct {
		verb, resource, sub string
		allowed             bool
	}{
		{"create", "pods", "", true}, {"watch", "pods", "", true}, {"delete", "pods", "", true}, {"get", "pods", "log", true},
		{"list", "events", "", true},
		{"update", "pods", "", false}, {"get", "secrets", "", false}, {"create", "pods", "exec", false}, {"list", "pods", "", true},
	} {
		rev, err := c.AuthorizationV1().SelfSubjectAccessReviews().Create(context.Background(), &authv1.SelfSubjectAccessReview{
			Spec: authv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authv1.ResourceAttributes{
				Namespace: namespace, Verb: check.verb, Resource: check.resource, Subresource: check.sub}}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if rev.Status.Allowed != check.allowed {
			t.Errorf("%s %s/%s: allowed=%v, want %v", check.verb, check.resource, check.sub, rev.Status.Allowed, check.allowed)
		}
	}
}
