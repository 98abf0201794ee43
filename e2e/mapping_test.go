package e2e

import (
	"bytes"
	"context"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/trellisdag/trellis/k8s"
)

// podsOf returns, for the pods the watch has seen, name -> labels.
func (pw *podWatch) podsOf(task string) map[string]map[string]string {
	pw.mu.Lock()
	defer pw.mu.Unlock()
	out := map[string]map[string]string{}
	for name, l := range pw.labels {
		if l[k8s.LabelTask] == task {
			out[name] = l
		}
	}
	return out
}

// TestMappedPodOperator runs e2e_map on the cluster: a PodOperator mapped
// over an upstream Go task's list of 4 gets one pod per element, each named
// with and labelled by its map index; element 2 fails its first try (its
// command reads {{ .TryNumber }}) and succeeds on its retry in a pod of its
// own; a Go task mapped over the same list runs in worker pods that see their
// element and index; the reducer reads every instance's pushed result with
// task.MappedOutput, in element order.
func TestMappedPodOperator(t *testing.T) {
	e := need(t)
	t.Parallel()
	r := e.runner(t, "kubedag")
	ld := logicalDate()
	runID := "manual__" + strings.TrimSuffix(ld, "Z") + "+00:00"
	pw := watchPods(t, e, "trellis.dev/dag=e2e_map,trellis.dev/run="+k8s.LabelValue(runID))
	out, code := r.run(4*time.Minute, "dags", "test", "e2e_map", "--logical-date", ld)
	if code != 0 {
		t.Fatalf("dags test exited %d:\n%s", code, out)
	}
	for k := range 4 {
		want := "1/2"
		if k == 2 {
			want = "2/2" // failed its first try, retried
		}
		if f := strings.Fields(rowOf(out, "square["+strconv.Itoa(k)+"]")); len(f) < 3 || f[1] != "success" || f[2] != want {
			t.Errorf("square[%d]: %q, want success on try %s\n%s", k, rowOf(out, "square["+strconv.Itoa(k)+"]"), want, out)
		}
	}
	want := `"sum 30 tries a1,b1,c2,d1 labels 0:a,1:b,2:c,3:d"`
	if row := rowOf(out, "total"); !strings.Contains(row, "success") || !strings.Contains(row, want) {
		t.Errorf("total: %q, want success and %s\n%s", row, want, out)
	}
	// Every pod of the run (the watch began before the runner) by its
	// map index and try: square's 4 first tries and element 2's retry,
	// label's 4 worker pods.
	for task, want := range map[string][]string{
		"square": {"0#1", "1#1", "2#1", "2#2", "3#1"},
		"label":  {"0#1", "1#1", "2#1", "3#1"},
	} {
		pods := pw.podsOf(task)
		var got []string
		for name, l := range pods {
			k, try := l[k8s.LabelMapIndex], l[k8s.LabelTry]
			got = append(got, k+"#"+try)
			if wantName := k8s.PodName("e2e_map", runID, task+"["+k+"]", atoi(t, try)); name != wantName {
				t.Errorf("pod %s: want the name of %s[%s] try %s, %s", name, task, k, try, wantName)
			}
			if n := pw.count(name); n != 1 {
				t.Errorf("pod %s created %d times", name, n)
			}
		}
		sort.Strings(got)
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s: pods (map index#try) %v, want %v", task, got, want)
		}
	}
	logs, code := r.run(time.Minute, "logs", "e2e_map", runID, "square[2]", "--try", "1")
	if code != 0 || !strings.Contains(logs, "element 2 fails its first try") {
		t.Errorf("logs of square[2] try 1 (exit %d):\n%s", code, logs)
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return n
}

// TestRunnerKilledAdoptsMappedPods: the runner is killed with SIGKILL while
// the three pods of a mapped PodOperator run; the runner started after it
// adopts each pod by its name (none is created twice), reports each
// instance's end from its pod, and the reducer downstream gets all three
// results in element order.
func TestRunnerKilledAdoptsMappedPods(t *testing.T) {
	e := need(t)
	t.Parallel()
	r := e.runner(t, "kubedag")
	ld := logicalDate()
	runID := "manual__" + strings.TrimSuffix(ld, "Z") + "+00:00"
	pw := watchPods(t, e, "trellis.dev/dag=e2e_map_slow,trellis.dev/run="+k8s.LabelValue(runID))
	first := r.cmd("dags", "trigger", "e2e_map_slow", "--wait", "--logical-date", ld, "--conf", `{"seconds": 8}`)
	var out1 bytes.Buffer
	first.Stdout, first.Stderr = &out1, &out1
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	running := map[string]string{} // pod name -> map index
	for len(running) < 3 {
		p := pw.until(t, "of hold running", func(p *corev1.Pod) bool {
			s := p.Status.ContainerStatuses
			return p.Labels[k8s.LabelTask] == "hold" && len(s) > 0 && s[0].State.Running != nil
		})
		running[p.Name] = p.Labels[k8s.LabelMapIndex]
	}
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.Wait()
	// The pods outlive the runner.
	for name := range running {
		p, err := e.admin.CoreV1().Pods(namespace).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			t.Fatalf("pod %s after the kill: %v; it must still run for the test to mean anything", name, err)
		}
	}

	out, code := r.run(3*time.Minute, "serve", "--until-idle")
	if code != 0 {
		t.Fatalf("serve after the kill exited %d:\n%s", code, out)
	}
	show, _ := r.run(time.Minute, "runs", "show", "e2e_map_slow", runID)
	if row := rowOf(show, "gather"); !strings.Contains(row, "success") || !strings.Contains(row, `"gathered x-0,y-1,z-2"`) {
		t.Errorf("gather: %q, want the three results in element order\n%s", row, show)
	}
	for k := range 3 {
		if f := strings.Fields(rowOf(show, "hold["+strconv.Itoa(k)+"]")); len(f) < 3 || f[1] != "success" || f[2] != "1/1" {
			t.Errorf("hold[%d]: %q, want success on its first try\n%s", k, rowOf(show, "hold["+strconv.Itoa(k)+"]"), show)
		}
	}
	indexes := map[string]bool{}
	for name, k := range running {
		indexes[k] = true
		if n := pw.count(name); n != 1 {
			t.Errorf("pod %s (map index %s) was created %d times; the restarted runner must adopt it", name, k, n)
		}
		if want := k8s.PodName("e2e_map_slow", runID, "hold["+k+"]", 1); name != want {
			t.Errorf("pod %s of hold[%s], want %s", name, k, want)
		}
	}
	if len(indexes) != 3 || !indexes["0"] || !indexes["1"] || !indexes["2"] {
		t.Errorf("running pods' map indexes %v, want 0, 1, 2", indexes)
	}
	if n := len(pw.podsOf("hold")); n != 3 {
		t.Errorf("%d pods of hold, want 3 (one per element, none relaunched)", n)
	}
	for k, item := range []string{"x", "y", "z"} {
		logs, _ := r.run(time.Minute, "logs", "e2e_map_slow", runID, "hold["+strconv.Itoa(k)+"]")
		if !strings.Contains(logs, "start "+item) || strings.Count(logs, "start "+item) != 1 {
			t.Errorf("log of hold[%d] across the restart, want \"start %s\" once:\n%s", k, item, logs)
		}
	}
}
