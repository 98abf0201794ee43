package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	authv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/runner"
	"github.com/trellisdag/trellis/sensors/kubeobject"
	"github.com/trellisdag/trellis/task"
)

// answerHook reports the status of each answer the API server gives the
// sensor, through the client configuration's transport.
type answerHook struct{ codes chan int }

func (h answerHook) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		res, err := rt.RoundTrip(req)
		if err == nil {
			select {
			case h.codes <- res.StatusCode:
			default: // nobody waits for this one
			}
		}
		return res, err
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// await waits (bounded) for an answer with the status code.
func (h answerHook) await(ctx context.Context, t *testing.T, code int, what string) {
	t.Helper()
	for {
		select {
		case got := <-h.codes:
			if got == code {
				return
			}
		case <-ctx.Done():
			t.Fatalf("waiting for the sensor to get a %d (%s): %v", code, what, ctx.Err())
		}
	}
}

// gateDAG is a DAG whose sensor waits for the ConfigMap gate-<DS> of ns to
// say state=ready, and whose downstream task returns the sensor's value.
func gateDAG(spec kubeobject.ObjectSpec) (*dag.DAG, *kubeobject.Sensor) {
	spec.Version, spec.Resource = "v1", "configmaps"
	spec.Name, spec.FieldPath, spec.Equals = "gate-{{ .DS }}", "{.data.state}", "ready"
	gate := kubeobject.Object("gate", spec, task.PokeInterval(200*time.Millisecond), task.SensorTimeout(2*time.Minute))
	use := task.Go("use", func(ctx context.Context, r *task.Run) (string, error) {
		v, err := task.Output(r, gate)
		return "gate says " + v, err
	})
	gate.Then(use)
	return dag.New("kubeobject", dag.DefaultRetries(0, 0)).Add(gate, use), gate
}

// inProcess runs the runner's CLI in this process on db with the DAG; local
// executor, so the sensor pokes from here as the runner does.
func inProcess(ctx context.Context, db string, d *dag.DAG, args ...string) (string, int) {
	var out bytes.Buffer
	r := runner.New(runner.Config{Stdout: &out, Stderr: &out, Getenv: func(string) string { return "" }}, d)
	code := r.Run(ctx, append(args, "--db", db))
	return out.String(), code
}

// TestKubeObjectSensor: the Kubernetes object sensor on the local cluster,
// as the restricted runner user. Without the rule the sensor reports
// (KubeRBAC), a poke is forbidden and fails the run with the verb and
// resource to grant; with a Role made of that rule, the sensor waits while
// the ConfigMap does not exist (it is created after the sensor's first poke)
// and while its field does not match, and the run succeeds with the field's
// value once a patch makes it match.
func TestKubeObjectSensor(t *testing.T) {
	e := need(t)
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ns := "e2e-kubeobject-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if _, err := e.admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.admin.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}); err != nil {
			t.Errorf("delete namespace %s: %v", ns, err)
		}
	})
	db := filepath.Join(t.TempDir(), "trellis.db")

	// 1. No RBAC in ns: forbidden, and the run fails saying what to grant.
	d, gate := gateDAG(kubeobject.ObjectSpec{Namespace: ns, Kubeconfig: e.runnerKube})
	out, code := inProcess(ctx, db, d, "dags", "test", "kubeobject", "--logical-date", "2024-01-01")
	if code == 0 {
		t.Fatalf("without RBAC the run succeeded:\n%s", out)
	}
	logs, _ := inProcess(ctx, db, d, "logs", "kubeobject", "manual__2024-01-01T00:00:00+00:00", "gate")
	for _, want := range []string{`lacks the RBAC verb "get" on resource "configmaps"`, "in namespace " + ns,
		`User "trellis-runner" cannot get resource "configmaps"`} {
		if !strings.Contains(out+logs, want) {
			t.Errorf("forbidden run: want %q in its output or log:\n%s\n%s", want, out, logs)
		}
	}

	// 2. Grant what the sensor reports, as manifests would print it there.
	var rules []rbacv1.PolicyRule
	for _, r := range gate.KubeRBAC() {
		if r.Namespace != ns {
			t.Fatalf("sensor rule %+v, want namespace %s", r, ns)
		}
		rules = append(rules, r.Rule)
	}
	meta := metav1.ObjectMeta{Name: "kubeobject-sensor", Namespace: ns}
	if _, err := e.admin.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: meta, Rules: rules}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: meta,
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: meta.Name},
		Subjects: []rbacv1.Subject{{Kind: "Group", APIGroup: rbacv1.GroupName, Name: "trellis-runners"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", e.runnerKube)
	if err != nil {
		t.Fatal(err)
	}
	waitAllowed(ctx, t, cfg, ns)

	// 3. The sensor waits for the object, then for its field.
	hook := answerHook{codes: make(chan int, 64)}
	sensorCfg := rest.CopyConfig(cfg)
	sensorCfg.WrapTransport = hook.wrap
	d, _ = gateDAG(kubeobject.ObjectSpec{Namespace: ns, Config: sensorCfg})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		out, code = inProcess(ctx, db, d, "dags", "test", "kubeobject", "--logical-date", "2024-01-02")
	}()
	defer func() { cancel(); wg.Wait() }() // on a failure below
	hook.await(ctx, t, http.StatusNotFound, "no ConfigMap yet")
	cms := e.admin.CoreV1().ConfigMaps(ns)
	if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "gate-2024-01-02"},
		Data: map[string]string{"state": "pending"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	hook.await(ctx, t, http.StatusOK, "the ConfigMap, not ready")
	if _, err := cms.Patch(ctx, "gate-2024-01-02", types.MergePatchType, []byte(`{"data":{"state":"ready"}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if code != 0 {
		t.Fatalf("dags test exited %d:\n%s", code, out)
	}
	for id, want := range map[string]string{"gate": `"ready"`, "use": `"gate says ready"`} {
		if row := rowOf(out, id); !strings.Contains(row, "success") || !strings.Contains(row, want) {
			t.Errorf("task %s: %q, want success and %s\n%s", id, row, want, out)
		}
	}
	logs, _ = inProcess(ctx, db, d, "logs", "kubeobject", "manual__2024-01-02T00:00:00+00:00", "gate")
	for _, want := range []string{
		fmt.Sprintf(`configmaps %s/gate-2024-01-02: not found (configmaps "gate-2024-01-02" not found); not yet`, ns),
		`{.data.state} is "pending", want "ready"; not yet`,
		`{.data.state} is "ready"; done`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("sensor log lacks %q:\n%s", want, logs)
		}
	}
}

// waitAllowed waits (bounded) until the runner user may get ConfigMaps in ns:
// the API server's RBAC authorizer sees a new binding through its informers.
func waitAllowed(ctx context.Context, t *testing.T, cfg *rest.Config, ns string) {
	t.Helper()
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		rev, err := c.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authv1.SelfSubjectAccessReview{
			Spec: authv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authv1.ResourceAttributes{
				Namespace: ns, Verb: "get", Resource: "configmaps", Name: "gate-2024-01-02"}}}, metav1.CreateOptions{})
		return err == nil && rev.Status.Allowed, err
	})
	if err != nil {
		t.Fatalf("the runner user may not get configmaps in %s after the binding: %v", ns, err)
	}
}
