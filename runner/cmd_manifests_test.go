package runner_test

import (
	"bytes"
	"context"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/k8s"
	"github.com/trellisdag/trellis/runner"
	"github.com/trellisdag/trellis/sensors/kubeobject"
	"github.com/trellisdag/trellis/task"
)

func TestManifests(t *testing.T) {
	t.Parallel()
	var out, errb bytes.Buffer
	r := runner.New(runner.Config{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}, testDAGs()...)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if code := r.Run(ctx, []string{"manifests", "--image", "registry.example.com/team:1.2.3", "--namespace", "data", "--name", "team", "--storage-size", "2Gi"}); code != 0 {
		t.Fatalf("manifests: exit %d: %s", code, &errb)
	}
	docs := strings.Split(out.String(), "\n---\n")
	kinds := map[string][]byte{}
	for _, d := range docs {
		var tm struct{ Kind, APIVersion string }
		if err := yaml.Unmarshal([]byte(d), &tm); err != nil {
			t.Fatalf("document does not parse: %v\n%s", err, d)
		}
		kinds[tm.Kind] = []byte(d)
	}
	strict := func(kind string, into any) {
		t.Helper()
		if err := yaml.UnmarshalStrict(kinds[kind], into); err != nil {
			t.Fatalf("%s: %v\n%s", kind, err, kinds[kind])
		}
	}
	var dep appsv1.Deployment
	strict("Deployment", &dep)
	spec := dep.Spec.Template.Spec
	c := spec.Containers[0]
	if dep.Namespace != "data" || dep.Name != "team" || *dep.Spec.Replicas != 1 || dep.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType ||
		c.Image != "registry.example.com/team:1.2.3" || c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.LivenessProbe.HTTPGet.Path != "/healthz" ||
		spec.ServiceAccountName != "team" || !*spec.SecurityContext.RunAsNonRoot || *spec.SecurityContext.RunAsUser == 0 ||
		*c.SecurityContext.AllowPrivilegeEscalation || !*c.SecurityContext.ReadOnlyRootFilesystem {
		t.Errorf("deployment = %+v", dep)
	}
	if !strings.Contains(strings.Join(c.Args, " "), "serve --listen 0.0.0.0:8080 --db /data/trellis.db --tokens /etc/trellis/tokens --leader-elect") {
		t.Errorf("args = %v", c.Args)
	}
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	if env["TRELLIS_EXECUTOR"] != "kubernetes" || env["TRELLIS_IMAGE"] != "registry.example.com/team:1.2.3" || env["TRELLIS_INSTANCE"] != "team" {
		t.Errorf("env = %v: want the kubernetes executor, the team image for workers and the Deployment's name as instance", env)
	}
	vols := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		vols[v.Name] = v
	}
	if vols["data"].PersistentVolumeClaim == nil || vols["data"].PersistentVolumeClaim.ClaimName != "team" ||
		vols["tokens"].Secret == nil || vols["tokens"].Secret.SecretName != "team-tokens" || vols["tmp"].EmptyDir == nil {
		t.Errorf("volumes = %+v", spec.Volumes)
	}
	var pvc corev1.PersistentVolumeClaim
	strict("PersistentVolumeClaim", &pvc)
	if q := pvc.Spec.Resources.Requests[corev1.ResourceStorage]; q.String() != "2Gi" || pvc.Spec.AccessModes[0] != corev1.ReadWriteOnce {
		t.Errorf("pvc = %+v", pvc.Spec)
	}
	var sa corev1.ServiceAccount
	strict("ServiceAccount", &sa)
	var role rbacv1.Role
	strict("Role", &role)
	verbs := map[string]string{}
	for _, rule := range role.Rules {
		for _, res := range rule.Resources {
			verbs[res] = strings.Join(rule.Verbs, ",")
		}
	}
	want := map[string]string{"pods": "create,get,list,watch,delete", "pods/log": "get", "events": "list", "leases": "get,create,update"}
	for res, v := range want {
		if verbs[res] != v {
			t.Errorf("role on %s: %q, want %q", res, verbs[res], v)
		}
	}
	if len(verbs) != len(want) {
		t.Errorf("role grants more than needed: %v", verbs)
	}
	var rb rbacv1.RoleBinding
	strict("RoleBinding", &rb)
	if rb.RoleRef.Name != "team" || rb.Subjects[0].Name != "team" || rb.Subjects[0].Namespace != "data" {
		t.Errorf("binding = %+v", rb)
	}
	var svc corev1.Service
	strict("Service", &svc)
	if svc.Spec.Selector["app.kubernetes.io/name"] != "team" || svc.Spec.Ports[0].TargetPort.StrVal != "http" {
		t.Errorf("service = %+v", svc.Spec)
	}
	if len(kinds) != 6 {
		t.Errorf("kinds = %d, want 6", len(kinds))
	}

	// Worker pods run the path where the Dockerfile puts this binary.
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	workerPath := "/usr/local/bin/" + filepath.Base(exe)
	if env["TRELLIS_WORKER_COMMAND"] != workerPath {
		t.Errorf("TRELLIS_WORKER_COMMAND = %q, want %q", env["TRELLIS_WORKER_COMMAND"], workerPath)
	}

	out.Reset()
	if code := r.Run(ctx, []string{"manifests", "--dockerfile"}); code != 0 {
		t.Fatalf("dockerfile: exit %d: %s", code, &errb)
	}
	for _, want := range []string{"USER 65532", "CGO_ENABLED=0", `-ldflags="-s -w"`,
		"COPY --from=build /out/" + filepath.Base(exe) + " " + workerPath, `ENTRYPOINT ["` + workerPath + `"]`,
		"FROM debian:12-slim", "Bash tasks (etl.say)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("dockerfile lacks %q:\n%s", want, &out)
		}
	}
	if code := r.Run(ctx, []string{"manifests", "--image", "x:1", "--storage-size", "lots"}); code != runner.ExitUsage ||
		!strings.Contains(errb.String(), `--storage-size "lots"`) {
		t.Errorf("manifests --storage-size lots: %d %s", code, &errb)
	}
	errb.Reset()
	if code := r.Run(ctx, []string{"manifests"}); code != runner.ExitUsage || !strings.Contains(errb.String(), "--image is required") {
		t.Errorf("manifests without --image: %d %s", code, &errb)
	}
}

// TestManifestsFollowWorkerCommand: a team that puts its binary elsewhere
// ($TRELLIS_WORKER_COMMAND) gets a Dockerfile and manifests that agree, and
// DAGs without Bash tasks get an image without a shell.
func TestManifestsFollowWorkerCommand(t *testing.T) {
	t.Parallel()
	var out, errb bytes.Buffer
	env := map[string]string{"TRELLIS_WORKER_COMMAND": "/app/team"}
	d := dag.New("gos")
	d.Add(task.Go("one", func(context.Context, *task.Run) (int, error) { return 1, nil }))
	r := runner.New(runner.Config{Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return env[k] }}, d)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if code := r.Run(ctx, []string{"manifests", "--dockerfile"}); code != 0 {
		t.Fatalf("dockerfile: exit %d: %s", code, &errb)
	}
	for _, want := range []string{" /app/team\n", `ENTRYPOINT ["/app/team"]`, "FROM gcr.io/distroless/static-debian12:nonroot"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("dockerfile lacks %q:\n%s", want, &out)
		}
	}
	out.Reset()
	if code := r.Run(ctx, []string{"manifests", "--image", "x:1"}); code != 0 {
		t.Fatalf("manifests: exit %d: %s", code, &errb)
	}
	if !strings.Contains(out.String(), "name: TRELLIS_WORKER_COMMAND\n          value: /app/team\n") {
		t.Errorf("manifests do not run workers as /app/team:\n%s", &out)
	}
}

// rbacTask is a task that needs more of the API server (k8s.RBACTask).
type rbacTask struct {
	*task.GoTask[int]
	rules []k8s.RBACRule
}

func (t *rbacTask) KubeRBAC() []k8s.RBACRule { return t.rules }

// TestManifestsTaskRBAC: the Role that manifests prints grants what the DAGs'
// Kubernetes object sensors (and any k8s.RBACTask) need, merged with the
// runner's own rules, deduplicated and sorted; other namespaces get a Role
// and a RoleBinding of their own; a namespace known only at run time is
// named in a comment. Without such tasks the Role is the runner's alone.
func TestManifestsTaskRBAC(t *testing.T) {
	t.Parallel()
	obj := func(id, group, resource, ns, name string) *kubeobject.Sensor {
		return kubeobject.Object(id, kubeobject.ObjectSpec{Group: group, Version: "v1", Resource: resource, Namespace: ns, Name: name})
	}
	d := dag.New("watch")
	d.Add(obj("flag", "", "configmaps", "", "flag"),
		obj("flag2", "", "configmaps", "data", "other-flag"), // the runner's namespace, named
		obj("job", "batch", "jobs", "", "load-{{ .DS }}"),    // every job
		obj("pod", "", "pods", "", "p"),                      // the runner's Role has it already
		obj("model", "serving.example.com", "models", "models", "m"),
		obj("tmpl", "", "configmaps", "{{ .Params.ns }}", "x"),
		&rbacTask{task.Go("custom", func(context.Context, *task.Run) (int, error) { return 1, nil }), []k8s.RBACRule{
			{Rule: rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"pods", "secrets"}, Verbs: []string{"patch", "get"}, ResourceNames: []string{"p"}}},
			{Rule: rbacv1.PolicyRule{APIGroups: []string{"batch"}, Resources: []string{"jobs"}, Verbs: []string{"get"}, ResourceNames: []string{"j"}}},
		}})
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	manifests := func(dags ...*dag.DAG) (string, map[string][]string) {
		t.Helper()
		var out, errb bytes.Buffer
		r := runner.New(runner.Config{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}, dags...)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if code := r.Run(ctx, []string{"manifests", "--image", "x:1", "--namespace", "data", "--name", "team"}); code != 0 {
			t.Fatalf("manifests: exit %d: %s", code, &errb)
		}
		docs := map[string][]string{} // kind -> documents
		for _, doc := range strings.Split(out.String(), "\n---\n") {
			var tm struct{ Kind string }
			if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
				t.Fatalf("document does not parse: %v\n%s", err, doc)
			}
			docs[tm.Kind] = append(docs[tm.Kind], doc)
		}
		return out.String(), docs
	}
	roles := func(docs map[string][]string) map[string]rbacv1.Role {
		t.Helper()
		out := map[string]rbacv1.Role{}
		for _, doc := range docs["Role"] {
			var role rbacv1.Role
			if err := yaml.UnmarshalStrict([]byte(doc), &role); err != nil {
				t.Fatalf("Role: %v\n%s", err, doc)
			}
			out[role.Namespace+"/"+role.Name] = role
		}
		return out
	}
	rule := func(group, resource, verbs string, names ...string) rbacv1.PolicyRule {
		return rbacv1.PolicyRule{APIGroups: []string{group}, Resources: []string{resource}, Verbs: strings.Split(verbs, ","), ResourceNames: names}
	}
	own := []rbacv1.PolicyRule{
		rule("", "pods", "create,get,list,watch,delete"), rule("", "pods/log", "get"), rule("", "events", "list"),
		rule("coordination.k8s.io", "leases", "get,create,update"),
	}

	text, docs := manifests(testDAGs()...)
	if got := roles(docs); len(got) != 1 || !reflect.DeepEqual(got["data/team"].Rules, own) {
		t.Errorf("without object sensors: roles %+v, want only the runner's rules %+v", got, own)
	}
	if strings.Contains(text, "Tasks read objects") || len(docs["RoleBinding"]) != 1 {
		t.Errorf("without object sensors the manifests mention task RBAC:\n%s", text)
	}

	text, docs = manifests(append(testDAGs(), d)...)
	got := roles(docs)
	want := append(slices.Clone(own),
		rule("", "configmaps", "get", "flag", "other-flag"),
		rule("", "pods", "patch", "p"),
		rule("", "secrets", "get,patch", "p"),
		rule("batch", "jobs", "get"))
	if !reflect.DeepEqual(got["data/team"].Rules, want) {
		t.Errorf("runner's Role:\n%+v\nwant\n%+v", got["data/team"].Rules, want)
	}
	if r := got["models/team.data"].Rules; len(got) != 2 || !reflect.DeepEqual(r, []rbacv1.PolicyRule{rule("serving.example.com", "models", "get", "m")}) {
		t.Errorf("roles %+v, want the runner's and one in namespace models with get on models (m)", got)
	}
	var bindings []rbacv1.RoleBinding
	for _, doc := range docs["RoleBinding"] {
		var rb rbacv1.RoleBinding
		if err := yaml.UnmarshalStrict([]byte(doc), &rb); err != nil {
			t.Fatalf("RoleBinding: %v\n%s", err, doc)
		}
		bindings = append(bindings, rb)
	}
	if len(bindings) != 2 || bindings[1].Namespace != "models" || bindings[1].Name != "team.data" || bindings[1].RoleRef.Name != "team.data" ||
		len(bindings[1].Subjects) != 1 || bindings[1].Subjects[0] != (rbacv1.Subject{Kind: "ServiceAccount", Name: "team", Namespace: "data"}) {
		t.Errorf("bindings %+v, want the runner's and one in models binding team.data to ServiceAccount data/team", bindings)
	}
	for _, line := range []string{
		"#   watch.flag: get on configmaps (flag) in namespace data\n",
		"#   watch.job: get on jobs.batch in namespace data\n",
		"#   watch.model: get on models.serving.example.com (m) in namespace models\n",
		"#   watch.tmpl: get on configmaps (x) in namespace {{ .Params.ns }}\n" +
			"#     NOT GRANTED HERE: that namespace is known only at run time; grant it there to ServiceAccount data/team.\n",
	} {
		if !strings.Contains(text, line) {
			t.Errorf("manifests lack %q:\n%s", line, text)
		}
	}
	if len(docs["Deployment"]) != 1 || len(docs["Service"]) != 1 || len(docs["ServiceAccount"]) != 1 || len(docs["PersistentVolumeClaim"]) != 1 {
		t.Errorf("documents: %v", slices.Collect(maps.Keys(docs)))
	}
}

// TestManifestsDBSecret: with --db-secret the Deployment runs two replicas
// on PostgreSQL with a rolling update: no claim, no data volume, no --db
// argument and no Lease (the database's advisory lock elects), the DSN from
// the Secret as $TRELLIS_DB; without it the SQLite deployment is printed.
func TestManifestsDBSecret(t *testing.T) {
	t.Parallel()
	var out, errb bytes.Buffer
	r := runner.New(runner.Config{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}, testDAGs()...)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	manifests := func(args ...string) (map[string][]byte, string) {
		t.Helper()
		out.Reset()
		errb.Reset()
		args = append([]string{"manifests", "--image", "registry.example.com/team:1.2.3", "--namespace", "data", "--name", "team"}, args...)
		if code := r.Run(ctx, args); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, &errb)
		}
		kinds := map[string][]byte{}
		for _, d := range strings.Split(out.String(), "\n---\n") {
			var tm struct{ Kind string }
			if err := yaml.Unmarshal([]byte(d), &tm); err != nil {
				t.Fatalf("document does not parse: %v\n%s", err, d)
			}
			kinds[tm.Kind] = []byte(d)
		}
		return kinds, out.String()
	}
	deployment := func(kinds map[string][]byte) appsv1.Deployment {
		t.Helper()
		var dep appsv1.Deployment
		if err := yaml.UnmarshalStrict(kinds["Deployment"], &dep); err != nil {
			t.Fatalf("Deployment: %v\n%s", err, kinds["Deployment"])
		}
		return dep
	}

	kinds, text := manifests("--db-secret", "team-db", "--db-secret-key", "url")
	dep := deployment(kinds)
	spec := dep.Spec.Template.Spec
	c := spec.Containers[0]
	if *dep.Spec.Replicas != 2 || dep.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType ||
		dep.Spec.Strategy.RollingUpdate == nil || dep.Spec.Strategy.RollingUpdate.MaxUnavailable.IntValue() != 0 {
		t.Errorf("replicas %d, strategy %+v: want 2 replicas, a rolling update that keeps both available", *dep.Spec.Replicas, dep.Spec.Strategy)
	}
	if _, ok := kinds["PersistentVolumeClaim"]; ok {
		t.Errorf("a PersistentVolumeClaim is printed:\n%s", kinds["PersistentVolumeClaim"])
	}
	for _, v := range spec.Volumes {
		if v.PersistentVolumeClaim != nil || v.Name == "data" {
			t.Errorf("volume %+v: want no data volume", v)
		}
	}
	for _, m := range c.VolumeMounts {
		if m.Name == "data" {
			t.Errorf("mount %+v: want no data volume", m)
		}
	}
	args := strings.Join(c.Args, " ")
	if strings.Contains(args, "--db") || strings.Contains(args, "--lease-name") || !strings.Contains(args, "--leader-elect=false") ||
		!strings.HasPrefix(args, "serve --listen 0.0.0.0:8080 --tokens /etc/trellis/tokens") {
		t.Errorf("args = %q: want serve without --db, without the Lease", args)
	}
	var dbEnv []corev1.EnvVar
	for _, e := range c.Env {
		if e.Name == "TRELLIS_DB" {
			dbEnv = append(dbEnv, e)
		}
	}
	if len(dbEnv) != 1 || dbEnv[0].Value != "" || dbEnv[0].ValueFrom == nil || dbEnv[0].ValueFrom.SecretKeyRef == nil ||
		dbEnv[0].ValueFrom.SecretKeyRef.Name != "team-db" || dbEnv[0].ValueFrom.SecretKeyRef.Key != "url" {
		t.Errorf("TRELLIS_DB = %+v: want one, from key url of Secret team-db", dbEnv)
	}
	if spec.Affinity == nil || spec.Affinity.PodAntiAffinity == nil {
		t.Errorf("no anti-affinity: both replicas may land on one node")
	}
	var role rbacv1.Role
	if err := yaml.UnmarshalStrict(kinds["Role"], &role); err != nil {
		t.Fatal(err)
	}
	for _, rule := range role.Rules {
		if slices.Contains(rule.Resources, "leases") {
			t.Errorf("the Role grants leases, which nothing uses: %+v", rule)
		}
	}
	if !strings.Contains(text, "kubectl -n data create secret generic team-db --from-literal=url=") || strings.Contains(text, "ReadWriteOnce") {
		t.Errorf("the header does not say how to create the DSN's Secret:\n%s", text)
	}

	// Without --db-secret: the SQLite deployment, one replica on its claim.
	kinds, _ = manifests()
	dep = deployment(kinds)
	if *dep.Spec.Replicas != 1 || dep.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType || kinds["PersistentVolumeClaim"] == nil ||
		!strings.Contains(strings.Join(dep.Spec.Template.Spec.Containers[0].Args, " "), "--db /data/trellis.db") {
		t.Errorf("without --db-secret: replicas %d, strategy %s, claim %t, args %v", *dep.Spec.Replicas, dep.Spec.Strategy.Type,
			kinds["PersistentVolumeClaim"] != nil, dep.Spec.Template.Spec.Containers[0].Args)
	}

	// Usage errors exit 2 and name the flag.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--db-secret", "Team_DB"}, `--db-secret "Team_DB"`},
		{[]string{"--db-secret", "team-db", "--db-secret-key", "a/b"}, `--db-secret-key "a/b"`},
		{[]string{"--db-secret-key", "url"}, "--db-secret-key needs --db-secret"},
		{[]string{"--db-secret", "team-db", "--storage-size", "2Gi"}, "--storage-size: --db-secret has no volume claim"},
	} {
		errb.Reset()
		args := append([]string{"manifests", "--image", "x:1"}, tc.args...)
		if code := r.Run(ctx, args); code != runner.ExitUsage || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%v: exit %d, %q; want %d and %q", args, code, errb.String(), runner.ExitUsage, tc.want)
		}
	}
}
