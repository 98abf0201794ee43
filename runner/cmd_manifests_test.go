package runner_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/runner"
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
