package kubeobject_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/rest"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/k8s"
	"github.com/trellisdag/trellis/sensors/kubeobject"
	"github.com/trellisdag/trellis/task"
)

// fakeAPI is a local API server that serves objects by path, as the real one
// does, and records the paths asked for.
type fakeAPI struct {
	*httptest.Server
	mu      sync.Mutex
	objects map[string]any // path -> object
	status  map[string]int // path -> an error status to answer instead
	asked   []string
}

func newFakeAPI(t *testing.T) *fakeAPI {
	t.Helper()
	f := &fakeAPI{objects: map[string]any{}, status: map[string]int{}}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.asked = append(f.asked, req.Method+" "+req.URL.Path)
		w.Header().Set("Content-Type", "application/json")
		status := func(code int, reason, msg string) {
			w.WriteHeader(code)
			fmt.Fprintf(w, `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":%q,"reason":%q,"code":%d}`, msg, reason, code)
		}
		if req.Header.Get("Accept") != "application/json" {
			status(http.StatusNotAcceptable, "NotAcceptable", "want Accept: application/json")
			return
		}
		switch code := f.status[req.URL.Path]; code {
		case 0:
		case http.StatusForbidden:
			parts := strings.Split(req.URL.Path, "/")
			status(code, "Forbidden", fmt.Sprintf(`configmaps %q is forbidden: User "trellis-runner" cannot get resource "configmaps" in API group "" in the namespace %q`,
				parts[len(parts)-1], parts[len(parts)-3]))
			return
		case http.StatusInternalServerError:
			status(code, "InternalError", "etcd is having a bad day")
			return
		default:
			w.WriteHeader(code)
			fmt.Fprint(w, "not a Status")
			return
		}
		obj, ok := f.objects[req.URL.Path]
		if !ok {
			parts := strings.Split(req.URL.Path, "/")
			status(http.StatusNotFound, "NotFound", fmt.Sprintf("%s %q not found", parts[len(parts)-2], parts[len(parts)-1]))
			return
		}
		_ = json.NewEncoder(w).Encode(obj)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeAPI) put(path string, obj any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.objects[path] = obj
}

func (f *fakeAPI) fail(path string, code int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status[path] = code
}

func (f *fakeAPI) paths() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.asked...)
}

func (f *fakeAPI) config() *rest.Config { return &rest.Config{Host: f.URL} }

func configMap(ns, name string, data map[string]string) map[string]any {
	return map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": name, "namespace": ns, "uid": "u-1", "resourceVersion": "7",
			"managedFields": []any{map[string]any{"manager": "kubectl", "operation": "Apply"}}},
		"data": data}
}

var day = time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC)

// poke runs one poke of s, as the runner does, and returns its result and
// what it logged.
func poke(t *testing.T, ctx context.Context, s *kubeobject.Sensor) (string, string, error) {
	t.Helper()
	if err := errors.Join(task.Problems(s, "")...); err != nil {
		t.Fatalf("sensor %s is invalid: %v", s.ID(), err)
	}
	var log bytes.Buffer
	r := task.NewRun(s, task.Info{DAGID: "d", TaskID: s.ID(), RunID: "r", Try: 1, LogicalDate: day, DataIntervalStart: day,
		DataIntervalEnd: day.Add(24 * time.Hour)}, nil, nil, nil, &log)
	out, err := s.Execute(ctx, r)
	return string(out), log.String(), err
}

// TestObject: the sensor's pokes against a local API server: not found and a
// field that does not match are "not yet"; a match is done with the field's
// value; the name is a template.
func TestObject(t *testing.T) {
	t.Parallel()
	api := newFakeAPI(t)
	ctx := context.Background()
	s := kubeobject.Object("flag", kubeobject.ObjectSpec{Version: "v1", Resource: "configmaps", Namespace: "data",
		Name: "flag-{{ .DS }}", FieldPath: ".data.state", Equals: "ready", Config: api.config()}, task.PokeInterval(time.Second))
	const path = "/api/v1/namespaces/data/configmaps/flag-2024-01-02"

	out, log, err := poke(t, ctx, s)
	if !errors.Is(err, task.ErrNotDone) || out != "" || !strings.Contains(log, `configmaps data/flag-2024-01-02: not found (configmaps "flag-2024-01-02" not found); not yet`) {
		t.Errorf("no object: %q %v, log %q; want not done, logged", out, err, log)
	}
	api.put(path, configMap("data", "flag-2024-01-02", map[string]string{"other": "x"}))
	if _, log, err = poke(t, ctx, s); !errors.Is(err, task.ErrNotDone) || !strings.Contains(log, "no field .data.state yet") {
		t.Errorf("no field: %v, log %q", err, log)
	}
	api.put(path, configMap("data", "flag-2024-01-02", map[string]string{"state": "loading"}))
	if _, log, err = poke(t, ctx, s); !errors.Is(err, task.ErrNotDone) || !strings.Contains(log, `.data.state is "loading", want "ready"; not yet`) {
		t.Errorf("mismatch: %v, log %q", err, log)
	}
	api.put(path, configMap("data", "flag-2024-01-02", map[string]string{"state": "ready"}))
	out, log, err = poke(t, ctx, s)
	if err != nil || out != `"ready"` || !strings.Contains(log, `.data.state is "ready"; done`) {
		t.Errorf("match: %q %v, log %q; want the value \"ready\"", out, err, log)
	}
	for _, p := range api.paths() {
		if p != "GET "+path {
			t.Errorf("asked for %s, want only GET %s", p, path)
		}
	}
}

// TestObjectConditions: a JSONPath filter on a custom group's resource, a
// Match function, a field that is not a string, and the object itself as the
// value when there is no field path.
func TestObjectConditions(t *testing.T) {
	t.Parallel()
	api := newFakeAPI(t)
	ctx := context.Background()
	const path = "/apis/apps/v1/namespaces/web/deployments/front"
	deploy := func(available string, replicas int) map[string]any {
		return map[string]any{"apiVersion": "apps/v1", "kind": "Deployment",
			"metadata": map[string]any{"name": "front", "namespace": "web"},
			"status": map[string]any{"readyReplicas": replicas, "conditions": []any{
				map[string]any{"type": "Progressing", "status": "True"},
				map[string]any{"type": "Available", "status": available},
			}}}
	}
	available := kubeobject.Object("available", kubeobject.ObjectSpec{Group: "apps", Version: "v1", Resource: "deployments",
		Namespace: "web", Name: "front", FieldPath: `{.status.conditions[?(@.type=="Available")].status}`, Equals: "True", Config: api.config()})
	replicas := kubeobject.Object("replicas", kubeobject.ObjectSpec{Group: "apps", Version: "v1", Resource: "deployments",
		Namespace: "web", Name: "front", FieldPath: "status.readyReplicas", Match: func(v string) bool { return v >= "3" }, Config: api.config()})
	exists := kubeobject.Object("exists", kubeobject.ObjectSpec{Group: "apps", Version: "v1", Resource: "deployments",
		Namespace: "web", Name: "front", Config: api.config()})

	api.put(path, deploy("False", 1))
	if _, log, err := poke(t, ctx, available); !errors.Is(err, task.ErrNotDone) || !strings.Contains(log, `deployments.apps web/front: {.status.conditions[?(@.type=="Available")].status} is "False", want "True"`) {
		t.Errorf("available False: %v, log %q", err, log)
	}
	if _, log, err := poke(t, ctx, replicas); !errors.Is(err, task.ErrNotDone) || !strings.Contains(log, `status.readyReplicas is "1", no match yet`) {
		t.Errorf("1 replica: %v, log %q", err, log)
	}
	api.put(path, deploy("True", 3))
	if out, _, err := poke(t, ctx, available); err != nil || out != `"True"` {
		t.Errorf("available True: %q %v", out, err)
	}
	if out, _, err := poke(t, ctx, replicas); err != nil || out != `"3"` {
		t.Errorf("3 replicas: %q %v", out, err)
	}
	out, log, err := poke(t, ctx, exists)
	var value string
	if err == nil {
		err = json.Unmarshal([]byte(out), &value)
	}
	var obj map[string]any
	if err == nil {
		err = json.Unmarshal([]byte(value), &obj)
	}
	if err != nil || obj["kind"] != "Deployment" || !strings.Contains(log, "deployments.apps web/front exists; done") {
		t.Errorf("exists: %q %v, log %q; want the object as JSON", out, err, log)
	}

	// A big object's value is its identity, and managed fields never count.
	big := configMap("web", "big", map[string]string{"blob": strings.Repeat("x", kubeobject.MaxValue)})
	api.put("/api/v1/namespaces/web/configmaps/big", big)
	bigSensor := kubeobject.Object("big", kubeobject.ObjectSpec{Version: "v1", Resource: "configmaps", Namespace: "web", Name: "big", Config: api.config()})
	out, log, err = poke(t, ctx, bigSensor)
	if err != nil || !strings.Contains(out, `\"uid\":\"u-1\"`) || strings.Contains(out, "blob") || strings.Contains(out, "managedFields") ||
		!strings.Contains(log, "its value is its identity only") {
		t.Errorf("big object: %q %v, log %q", out, err, log)
	}
}

// TestObjectErrors: a 403 fails the try with the verb and resource to grant;
// a server error is "not yet"; another client error fails the try.
func TestObjectErrors(t *testing.T) {
	t.Parallel()
	api := newFakeAPI(t)
	ctx := context.Background()
	spec := kubeobject.ObjectSpec{Version: "v1", Resource: "configmaps", Namespace: "data", Name: "secret-flag", FieldPath: ".data.x", Config: api.config()}
	s := kubeobject.Object("flag", spec)
	const path = "/api/v1/namespaces/data/configmaps/secret-flag"

	api.fail(path, http.StatusForbidden)
	_, _, err := poke(t, ctx, s)
	if err == nil || errors.Is(err, task.ErrNotDone) || !apierrors.IsForbidden(err) {
		t.Fatalf("403: %v, want a forbidden error", err)
	}
	for _, want := range []string{`lacks the RBAC verb "get" on resource "configmaps" of API group "" (core) in namespace data`,
		`cannot get resource "configmaps"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("403: %v\nwant it to say %s", err, want)
		}
	}
	api.fail(path, http.StatusInternalServerError)
	if _, log, err := poke(t, ctx, s); !errors.Is(err, task.ErrNotDone) || !strings.Contains(log, "500 Internal Server Error (etcd is having a bad day); not yet") {
		t.Errorf("500: %v, log %q; want not yet", err, log)
	}
	api.fail(path, http.StatusUnauthorized)
	if _, _, err := poke(t, ctx, s); err == nil || !apierrors.IsUnauthorized(err) || !strings.Contains(err.Error(), "get configmaps data/secret-flag: 401 Unauthorized") {
		t.Errorf("401: %v, want an unauthorized error", err)
	}
	// An unreachable server is "not yet".
	api.Close()
	if _, log, err := poke(t, ctx, s); !errors.Is(err, task.ErrNotDone) || !strings.Contains(log, "get configmaps data/secret-flag: ") {
		t.Errorf("server down: %v, log %q; want not yet", err, log)
	}
}

// TestObjectInvalid: what cannot work is a DAG error, before any run.
func TestObjectInvalid(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		spec kubeobject.ObjectSpec
		want string
	}{
		{kubeobject.ObjectSpec{Version: "v1", Resource: "configmaps"}, "no object name"},
		{kubeobject.ObjectSpec{Version: "v1", Resource: "ConfigMap", Name: "x"}, `resource "ConfigMap"`},
		{kubeobject.ObjectSpec{Version: "v1", Resource: "deployments/scale", Name: "x"}, "no subresource"},
		{kubeobject.ObjectSpec{Group: "Apps", Version: "v1", Resource: "deployments", Name: "x"}, `group "Apps"`},
		{kubeobject.ObjectSpec{Resource: "configmaps", Name: "x"}, `version ""`},
		{kubeobject.ObjectSpec{Version: "v1", Resource: "configmaps", Name: "{{ .Nope"}, "name:"},
		{kubeobject.ObjectSpec{Version: "v1", Resource: "configmaps", Name: "x", FieldPath: "{.data[?(@.x==}"}, "field path"},
		{kubeobject.ObjectSpec{Version: "v1", Resource: "configmaps", Name: "x", Equals: "y"}, "need a FieldPath"},
		{kubeobject.ObjectSpec{Version: "v1", Resource: "configmaps", Name: "x", Kubeconfig: "k", Config: &rest.Config{}}, "either Config or Kubeconfig"},
	} {
		d := dag.New("d").Add(kubeobject.Object("s", c.spec))
		if err := d.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want an error about %s", c.spec, err, c.want)
		}
	}
}

// TestObjectRBAC: the access the sensor reports for manifests.
func TestObjectRBAC(t *testing.T) {
	t.Parallel()
	get := func(group, resource string, names ...string) rbacv1.PolicyRule {
		return rbacv1.PolicyRule{APIGroups: []string{group}, Resources: []string{resource}, Verbs: []string{"get"}, ResourceNames: names}
	}
	for _, c := range []struct {
		spec kubeobject.ObjectSpec
		want k8s.RBACRule
	}{
		{kubeobject.ObjectSpec{Version: "v1", Resource: "configmaps", Name: "flag"}, k8s.RBACRule{Rule: get("", "configmaps", "flag")}},
		{kubeobject.ObjectSpec{Group: "batch", Version: "v1", Resource: "jobs", Namespace: "etl", Name: "load-{{ .DS }}"},
			k8s.RBACRule{Namespace: "etl", Rule: get("batch", "jobs")}},
		{kubeobject.ObjectSpec{Version: "v1", Resource: "pods", Namespace: "{{ .Params.ns }}", Name: "p"},
			k8s.RBACRule{Namespace: "{{ .Params.ns }}", Rule: get("", "pods", "p")}},
	} {
		s := kubeobject.Object("s", c.spec)
		got := s.KubeRBAC()
		if len(got) != 1 || !reflect.DeepEqual(got[0], c.want) {
			t.Errorf("%+v: %+v, want %+v", c.spec, got, c.want)
		}
		got[0].Rule.Verbs[0] = "delete" // a copy
		if s.KubeRBAC()[0].Rule.Verbs[0] != "get" {
			t.Error("KubeRBAC returns the sensor's own rules")
		}
	}
}

// writeKubeconfig writes a kubeconfig of the fake API server whose context
// has namespace ns.
func writeKubeconfig(t *testing.T, api *fakeAPI, ns string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster: {server: %q}
users:
- name: me
  user: {token: t0ken}
contexts:
- name: fake
  context: {cluster: fake, user: me, namespace: %s}
- name: other
  context: {cluster: fake, user: me, namespace: other}
current-context: fake
`, api.URL, ns)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestObjectClusterChoice: without Config, the sensor finds its cluster and
// namespace as the runner does: the kubeconfig and context of the spec, else
// the k8s.Cluster of the try's context, else $KUBECONFIG; the namespace is
// the context's unless the runner's is given.
func TestObjectClusterChoice(t *testing.T) {
	t.Setenv("TRELLIS_NAMESPACE", "")
	api := newFakeAPI(t)
	kubeconfig := writeKubeconfig(t, api, "team")
	spec := kubeobject.ObjectSpec{Version: "v1", Resource: "configmaps", Name: "c"}
	ctx := context.Background()
	check := func(what string, s *kubeobject.Sensor, ctx context.Context, wantPath string) {
		t.Helper()
		before := len(api.paths())
		if _, _, err := poke(t, ctx, s); !errors.Is(err, task.ErrNotDone) {
			t.Errorf("%s: %v, want not found", what, err)
		}
		if got := api.paths()[before:]; len(got) != 1 || got[0] != "GET "+wantPath {
			t.Errorf("%s: asked %v, want %s", what, got, wantPath)
		}
	}
	fromFile := spec
	fromFile.Kubeconfig = kubeconfig
	check("kubeconfig", kubeobject.Object("s", fromFile), ctx, "/api/v1/namespaces/team/configmaps/c")
	fromFile.Context = "other"
	check("kubeconfig and context", kubeobject.Object("s", fromFile), ctx, "/api/v1/namespaces/other/configmaps/c")

	s := kubeobject.Object("s", spec)
	check("the runner's cluster", s, k8s.WithCluster(ctx, k8s.Cluster{Kubeconfig: kubeconfig, Namespace: "runner-ns"}),
		"/api/v1/namespaces/runner-ns/configmaps/c")
	check("the runner's cluster and context", s, k8s.WithCluster(ctx, k8s.Cluster{Kubeconfig: kubeconfig, Context: "other"}),
		"/api/v1/namespaces/other/configmaps/c")

	t.Setenv("KUBECONFIG", kubeconfig)
	check("$KUBECONFIG", kubeobject.Object("s", spec), ctx, "/api/v1/namespaces/team/configmaps/c")
	t.Setenv("TRELLIS_NAMESPACE", "env-ns")
	check("$TRELLIS_NAMESPACE", kubeobject.Object("s", spec), ctx, "/api/v1/namespaces/env-ns/configmaps/c")

	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "missing"))
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	if _, _, err := poke(t, ctx, kubeobject.Object("s", spec)); err == nil || !strings.Contains(err.Error(), "kubernetes client: tried $KUBECONFIG=") {
		t.Errorf("no cluster: %v, want an error naming what was tried", err)
	}
}
