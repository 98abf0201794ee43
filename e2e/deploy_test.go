package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/trellisdag/trellis/k8s"
	"github.com/trellisdag/trellis/task"
	"github.com/trellisdag/trellis/web"
)

// TestDeployedByItsManifests deploys a team binary the way a team does: the
// image laid out as `manifests --dockerfile` says, the objects of `manifests`
// applied unchanged (but for the image name), plus the tokens Secret and a
// PersistentVolume. The Deployment must become Available with its probes
// passing, the scheduled run and a run triggered through the REST API must
// complete with every task in its own pod, and after the runner pod is deleted
// mid-run its replacement must adopt the running task pod: the run completes,
// no task runs twice, no task pod is created twice. The runner has only the
// Role that `manifests` prints.
func TestDeployedByItsManifests(t *testing.T) {
	e := need(t)
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	bin := filepath.Join(e.bin, "teamdag")

	// The image: hack/kube-image.sh stands in for docker build, with the
	// Dockerfile's layout (checked here) and busybox as the base's shell.
	dockerfile := output(t, bin, "manifests", "--dockerfile")
	entry := regexp.MustCompile(`(?m)^ENTRYPOINT \["([^"]+)"\]$`).FindStringSubmatch(dockerfile)
	if entry == nil || entry[1] != "/usr/local/bin/teamdag" {
		t.Fatalf("the Dockerfile's ENTRYPOINT is %v, want /usr/local/bin/teamdag (where hack/kube-image.sh puts it):\n%s", entry, dockerfile)
	}
	for _, want := range []string{"COPY --from=build /out/teamdag /usr/local/bin/teamdag", `-ldflags="-s -w"`,
		"./e2e/testdata/teamdag", "FROM debian:12-slim", "USER 65532:65532"} {
		if !strings.Contains(dockerfile, want) {
			t.Errorf("the Dockerfile lacks %q (team.report is a Bash task: the base needs a shell):\n%s", want, dockerfile)
		}
	}

	ns := "e2e-deploy-" + time.Now().UTC().Format("150405")
	if _, err := e.admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pvDir, err := os.MkdirTemp("", "trellis-e2e-pv-")
	if err != nil {
		t.Fatal(err)
	}
	// The runner runs as 65532; a hostPath volume ignores fsGroup.
	if err := os.Chown(pvDir, 65532, 65532); err != nil {
		t.Fatal(err)
	}
	pvName := ns + "-data"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := e.admin.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
			t.Logf("delete namespace %s: %v", ns, err)
		}
		if err := e.admin.CoreV1().PersistentVolumes().Delete(ctx, pvName, metav1.DeleteOptions{}); err != nil {
			t.Logf("delete pv %s: %v", pvName, err)
		}
		os.RemoveAll(pvDir)
	})
	pods := watchPodsIn(t, e, ns, "")

	manifests := output(t, bin, "manifests", "--image", e.teamImage, "--namespace", ns, "--name", "team")
	if !strings.Contains(manifests, "create secret generic team-tokens") {
		t.Errorf("manifests does not say to create the tokens Secret first:\n%s", manifests)
	}
	token := "e2e-operator-token-0123456789"
	if _, err := e.admin.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "team-tokens"},
		StringData: map[string]string{"tokens": token + " operator e2e\n"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	hostPath := corev1.HostPathDirectory
	if _, err := e.admin.CoreV1().PersistentVolumes().Create(ctx, &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: pvName},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("5Gi")},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			ClaimRef:                      &corev1.ObjectReference{Namespace: ns, Name: "team"},
			PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: pvDir, Type: &hostPath}},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	applyManifests(ctx, t, e, ns, manifests)

	// Available with its probes passing (the kubelet probes the pod's IP).
	runnerPod := waitRunnerReady(ctx, t, e, ns, "")
	api := &teamAPI{token: token, ip: runnerPod.Status.PodIP}

	// The scheduled run (catchup off: the newest interval, at start-up).
	var scheduled web.Run
	eventually(ctx, t, "the scheduled run to succeed", func() (bool, string) {
		var list web.RunList
		if err := api.do(ctx, "GET", "/api/v1/dags/team/runs", nil, &list); err != nil {
			return false, err.Error()
		}
		for _, r := range list.Runs {
			if r.Type == task.RunScheduled {
				scheduled = r
				api.failIfFailed(ctx, t, r)
				return r.State == task.RunSuccess, fmt.Sprintf("run %s is %s", r.RunID, r.State)
			}
		}
		return false, fmt.Sprintf("no scheduled run among %d", len(list.Runs))
	})

	// A run triggered through the API, its task "wait" running for 25 s.
	var manual web.Run
	if err := api.do(ctx, "POST", "/api/v1/dags/team/runs", web.TriggerRequest{Conf: json.RawMessage(`{"seconds": 25}`)}, &manual); err != nil {
		t.Fatal(err)
	}
	waitPod := pods.until(t, "of task wait running", func(p *corev1.Pod) bool {
		s := p.Status.ContainerStatuses
		return p.Labels[k8s.LabelRun] == k8s.LabelValue(manual.RunID) && p.Labels[k8s.LabelTask] == "wait" &&
			len(s) > 0 && s[0].State.Running != nil
	})
	// The runner pod goes mid-run; the Deployment replaces it.
	if err := e.admin.CoreV1().Pods(ns).Delete(ctx, runnerPod.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	replacement := waitRunnerReady(ctx, t, e, ns, runnerPod.Name)
	api.ip = replacement.Status.PodIP
	eventually(ctx, t, "the triggered run to succeed after the runner was replaced", func() (bool, string) {
		var r web.Run
		if err := api.do(ctx, "GET", "/api/v1/dags/team/runs/"+url.PathEscape(manual.RunID), nil, &r); err != nil {
			return false, err.Error()
		}
		api.failIfFailed(ctx, t, r)
		return r.State == task.RunSuccess, fmt.Sprintf("run %s is %s", r.RunID, r.State)
	})

	for _, run := range []web.Run{scheduled, manual} {
		var tis web.TaskInstanceList
		if err := api.do(ctx, "GET", "/api/v1/dags/team/runs/"+url.PathEscape(run.RunID)+"/tasks", nil, &tis); err != nil {
			t.Fatal(err)
		}
		if len(tis.TaskInstances) != 4 {
			t.Errorf("run %s has %d task instances, want 4", run.RunID, len(tis.TaskInstances))
		}
		for _, ti := range tis.TaskInstances {
			if ti.State != task.StateSuccess || ti.Try != 1 {
				t.Errorf("run %s task %s: %s on try %d, want success on its only try", run.RunID, ti.TaskID, ti.State, ti.Try)
			}
			if ti.Pod == "" {
				t.Errorf("run %s task %s ran in no pod (executor %q)", run.RunID, ti.TaskID, ti.Executor)
			}
		}
		// One pod per task, each created once, none after the run ended.
		perTask := map[string][]string{}
		pods.mu.Lock()
		for name, l := range pods.labels {
			if l[k8s.LabelRun] == k8s.LabelValue(run.RunID) {
				perTask[l[k8s.LabelTask]] = append(perTask[l[k8s.LabelTask]], name)
				if n := len(pods.uids[name]); n != 1 {
					t.Errorf("pod %s was created %d times", name, n)
				}
			}
		}
		pods.mu.Unlock()
		for _, id := range []string{"extract", "wait", "total", "report"} {
			if len(perTask[id]) != 1 {
				t.Errorf("run %s task %s had pods %v, want exactly one", run.RunID, id, perTask[id])
			}
		}
	}
	if n := pods.count(waitPod.Name); n != 1 {
		t.Errorf("the running pod %s was created %d times; the new runner must adopt it", waitPod.Name, n)
	}
	var chunk web.LogChunk
	if err := api.do(ctx, "GET", "/api/v1/dags/team/runs/"+url.PathEscape(manual.RunID)+"/tasks/report/tries/1/log", nil, &chunk); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(chunk.Content, "total for ") || !strings.Contains(chunk.Content, ": 12") {
		t.Errorf("report's log (a Bash task in the team image, reading total's result): %q", chunk.Content)
	}
}

// failIfFailed ends the test at once, with every task's error and log, when
// the run failed.
func (a *teamAPI) failIfFailed(ctx context.Context, t *testing.T, r web.Run) {
	t.Helper()
	if r.State != task.RunFailed {
		return
	}
	var b strings.Builder
	var tis web.TaskInstanceList
	if err := a.do(ctx, "GET", "/api/v1/dags/team/runs/"+url.PathEscape(r.RunID)+"/tasks", nil, &tis); err != nil {
		t.Fatalf("run %s failed; its tasks: %v", r.RunID, err)
	}
	for _, ti := range tis.TaskInstances {
		fmt.Fprintf(&b, "\n%s: %s try %d pod %q error %q", ti.TaskID, ti.State, ti.Try, ti.Pod, ti.Error)
		if ti.Try > 0 {
			var chunk web.LogChunk
			if err := a.do(ctx, "GET", fmt.Sprintf("/api/v1/dags/team/runs/%s/tasks/%s/tries/%d/log", url.PathEscape(r.RunID), ti.TaskID, ti.Try), nil, &chunk); err == nil {
				fmt.Fprintf(&b, "\n  log: %s", chunk.Content)
			}
		}
	}
	t.Fatalf("run %s failed:%s", r.RunID, b.String())
}

// output runs a team binary command locally and returns its standard output.
func output(t *testing.T, bin string, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	c := exec.Command(bin, args...)
	c.Stdout, c.Stderr = &stdout, &stderr
	if err := c.Run(); err != nil {
		t.Fatalf("%s %v: %v\n%s", filepath.Base(bin), args, err, stderr.String())
	}
	return stdout.String()
}

// applyManifests creates every object of `manifests` in ns, decoded strictly.
func applyManifests(ctx context.Context, t *testing.T, e *env, ns, manifests string) {
	t.Helper()
	kinds := []string{}
	for _, doc := range strings.Split(manifests, "\n---\n") {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
			t.Fatalf("manifests: %v\n%s", err, doc)
		}
		kinds = append(kinds, tm.Kind)
		var err error
		c := e.admin
		switch tm.Kind {
		case "ServiceAccount":
			err = create(ctx, doc, c.CoreV1().ServiceAccounts(ns).Create)
		case "Role":
			err = create(ctx, doc, c.RbacV1().Roles(ns).Create)
		case "RoleBinding":
			err = create(ctx, doc, c.RbacV1().RoleBindings(ns).Create)
		case "PersistentVolumeClaim":
			err = create(ctx, doc, c.CoreV1().PersistentVolumeClaims(ns).Create)
		case "Deployment":
			err = create(ctx, doc, c.AppsV1().Deployments(ns).Create)
		case "Service":
			err = create(ctx, doc, c.CoreV1().Services(ns).Create)
		default:
			t.Fatalf("manifests: unexpected kind %q", tm.Kind)
		}
		if err != nil {
			t.Fatalf("apply %s: %v\n%s", tm.Kind, err, doc)
		}
	}
	if got := strings.Join(kinds, ","); got != "ServiceAccount,Role,RoleBinding,PersistentVolumeClaim,Deployment,Service" {
		t.Errorf("manifests printed %s", got)
	}
}

// create decodes one document strictly into a T and creates it.
func create[T any](ctx context.Context, doc string, create func(context.Context, *T, metav1.CreateOptions) (*T, error)) error {
	var o T
	if err := yaml.UnmarshalStrict([]byte(doc), &o); err != nil {
		return err
	}
	_, err := create(ctx, &o, metav1.CreateOptions{})
	return err
}

// waitRunnerReady waits until the Deployment is Available with a ready runner
// pod other than old, and returns that pod.
func waitRunnerReady(ctx context.Context, t *testing.T, e *env, ns, old string) *corev1.Pod {
	t.Helper()
	var ready *corev1.Pod
	eventually(ctx, t, "the Deployment to be Available with a ready runner pod", func() (bool, string) {
		d, err := e.admin.AppsV1().Deployments(ns).Get(ctx, "team", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		available := false
		for _, c := range d.Status.Conditions {
			available = available || c.Type == appsv1.DeploymentAvailable && c.Status == corev1.ConditionTrue
		}
		list, err := e.admin.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=team"})
		if err != nil {
			return false, err.Error()
		}
		var states []string
		for i := range list.Items {
			p := &list.Items[i]
			hasReady := false
			for _, c := range p.Status.Conditions {
				hasReady = hasReady || c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue
			}
			if available && hasReady && p.Name != old && p.DeletionTimestamp == nil && p.Status.PodIP != "" {
				ready = p
				return true, ""
			}
			states = append(states, fmt.Sprintf("%s %s ready=%v", p.Name, p.Status.Phase, hasReady))
		}
		return false, fmt.Sprintf("available=%v, pods %v", available, states)
	})
	for _, c := range ready.Status.ContainerStatuses {
		if c.RestartCount != 0 {
			t.Errorf("runner pod %s restarted %d times (probes failing?)", ready.Name, c.RestartCount)
		}
	}
	return ready
}

// eventually calls check every 250 ms until it is true, failing the test with
// check's last word when ctx ends or 4 minutes pass.
func eventually(ctx context.Context, t *testing.T, what string, check func() (bool, string)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, last := check()
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s: %s", what, last)
		case <-tick.C:
		}
	}
}

// teamAPI calls the REST API of the runner pod, by its IP (the host routes
// to the pod network; there is no kube-proxy for the Service).
type teamAPI struct {
	token string
	ip    string // the runner pod's
}

func (a *teamAPI) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "http://"+a.ip+":8080"+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 4<<20))
	if err != nil {
		return err
	}
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, path, res.Status, b)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(b, out)
}
