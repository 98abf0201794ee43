package e2e

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/trellisdag/trellis/k8s"
	"github.com/trellisdag/trellis/web"
)

// standbyMaxFailover bounds the time from kill -9 of the active scheduler to
// the standby's first scheduling action.
const standbyMaxFailover = 15 * time.Second

// TestHotStandbyOnKubernetes runs two `serve --executor kubernetes` processes
// of one binary on one PostgreSQL schema (testdata/standbydag). The first
// takes the scheduler lock; the second waits for it as a standby that serves
// the API (a run is triggered through it) and creates no pod. seed runs and
// succeeds in a worker pod, then hold_a and hold_b run in pods that wait for
// a marker file. The active process is killed with -9 while both run, then
// hold_a is released: its pod ends while no scheduler runs. The standby must
// take the lock and schedule within standbyMaxFailover, record hold_a's end
// from its pod, adopt hold_b's still running pod (released once the standby
// schedules), and complete the run: every task pod created exactly once,
// seed not run again, one try per task, and join reading the results of the
// dead process (seed) and of the adopted pods.
func TestHotStandbyOnKubernetes(t *testing.T) {
	e := need(t)
	t.Parallel()
	db := standbySchema(t)
	bin, image := standbyBinary(t, e)
	markers := t.TempDir() // a hostPath volume of the hold pods: the node is this machine

	ld := logicalDate()
	runID := "manual__" + strings.TrimSuffix(ld, "Z") + "+00:00"
	const dagID = "e2e_standby"
	selector := "trellis.dev/dag=" + dagID + ",trellis.dev/run=" + k8s.LabelValue(runID)
	pw := watchPods(t, e, selector)
	t.Cleanup(func() {
		// Release and remove whatever a failed test left running.
		for _, m := range []string{"release-a", "release-b"} {
			os.WriteFile(filepath.Join(markers, m), nil, 0o644)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := e.admin.CoreV1().Pods(namespace).DeleteCollection(ctx, metav1.DeleteOptions{},
			metav1.ListOptions{LabelSelector: selector}); err != nil {
			t.Logf("delete the pods of %s: %v", runID, err)
		}
	})

	env := []string{"KUBECONFIG=" + e.runnerKube, "E2E_STANDBY_DIR=" + markers}
	active := startStandbyServe(t, "active", bin, db, image, env)
	active.wait(t, "scheduler started", nil, time.Minute)
	standby := startStandbyServe(t, "standby", bin, db, image, env)
	standby.wait(t, "serving as a standby: the web UI and the API read and write the database; scheduling waits", nil, time.Minute)
	standby.wait(t, "another scheduler holds the lock on this database; waiting to take over", nil, time.Minute)
	var ready map[string]string
	if code := standby.api(t, "GET", "/readyz", nil, &ready); code != http.StatusOK {
		t.Fatalf("standby /readyz = %d %v, want 200 (a standby serves)", code, ready)
	}

	// Triggered through the standby's API, run by the active scheduler.
	date, err := time.Parse(time.RFC3339, ld)
	if err != nil {
		t.Fatal(err)
	}
	var run web.Run
	if code := standby.api(t, "POST", "/api/v1/dags/"+dagID+"/runs", web.TriggerRequest{LogicalDate: &date}, &run); code != http.StatusCreated {
		t.Fatalf("trigger through the standby: %d %+v", code, run)
	}
	if run.RunID != runID {
		t.Fatalf("triggered run %q, want %q", run.RunID, runID)
	}
	running := map[string]*corev1.Pod{} // task -> its running pod
	for len(running) < 2 {
		p := pw.until(t, "of hold_a and hold_b running", func(p *corev1.Pod) bool {
			s := p.Status.ContainerStatuses
			return strings.HasPrefix(p.Labels[k8s.LabelTask], "hold_") && len(s) > 0 && s[0].State.Running != nil
		})
		running[p.Labels[k8s.LabelTask]] = p
	}
	// seed succeeded (the holds start after its commit), as the standby
	// reads from the database.
	states := standbyStates(t, standby, dagID, runID)
	for id, want := range map[string]string{"seed": "success", "join": "none"} {
		if states[id] != want {
			t.Errorf("before the kill, %s is %q, want %q (%v)", id, states[id], want, states)
		}
	}
	for _, id := range []string{"hold_a", "hold_b"} {
		if s := states[id]; s != "queued" && s != "running" {
			t.Errorf("before the kill, %s is %q, want it in flight (%v)", id, s, states)
		}
	}
	beforeKill := pw.names()
	for _, task := range []string{"seed", "hold_a", "hold_b"} {
		if name := k8s.PodName(dagID, runID, task, 1); !beforeKill[name] {
			t.Errorf("before the kill, no pod %s of %s (pods: %v)", name, task, beforeKill)
		}
	}

	killed := time.Now()
	active.kill()
	// hold_a ends while no process schedules; hold_b runs on.
	if err := os.WriteFile(filepath.Join(markers, "release-a"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// Until the kill, one process scheduled: the standby waited, and its
	// log has no scheduling line; the active one ran seed.
	if l := standby.first(func(l standbyLine) bool {
		return l.at.Before(killed) && (l.msg == "holding the scheduler lock" || l.msg == "scheduler started" || l.msg == "task" || l.msg == "run")
	}); l != nil {
		t.Errorf("the standby scheduled before the kill: %s", l.raw)
	}
	if active.first(func(l standbyLine) bool { return l.msg == "task" && l.m["task"] == "seed" && l.m["state"] == "success" }) == nil {
		t.Errorf("the active process did not log seed's success:\n%s", active.output())
	}

	locked := standby.wait(t, "holding the scheduler lock", nil, time.Minute).at.Sub(killed)
	started := standby.wait(t, "scheduler started", nil, time.Minute).at.Sub(killed)
	firstTask := standby.wait(t, "task", nil, time.Minute)
	changed := firstTask.at.Sub(killed)
	t.Logf("failover after kill -9 of the active scheduler: standby held the lock after %s, its scheduler started after %s, first task state change (%v %v) after %s",
		locked.Round(time.Millisecond), started.Round(time.Millisecond), firstTask.m["task"], firstTask.m["state"], changed.Round(time.Millisecond))
	if started > standbyMaxFailover {
		t.Errorf("the standby's scheduler started %s after the kill, want at most %s", started, standbyMaxFailover)
	}
	if firstTask.m["task"] != "hold_a" || firstTask.m["state"] != "success" {
		t.Errorf("the standby's first task event: %s, want hold_a success (its pod ended during the failover)", firstTask.raw)
	}
	if changed > standbyMaxFailover {
		t.Errorf("the standby recorded hold_a's end %s after the kill, want at most %s", changed, standbyMaxFailover)
	}
	// hold_b's pod still runs: the standby adopted it running.
	p, err := e.admin.CoreV1().Pods(namespace).Get(context.Background(), running["hold_b"].Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.UID != running["hold_b"].UID || p.Status.Phase != corev1.PodRunning {
		t.Fatalf("hold_b's pod after the takeover: uid %s, phase %q; it must be the same pod, still running, for the test to mean anything", p.UID, p.Status.Phase)
	}
	if err := os.WriteFile(filepath.Join(markers, "release-b"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	end := standby.wait(t, "run", func(l standbyLine) bool { return l.m["run"] == runID }, 3*time.Minute)
	if end.m["state"] != "success" {
		t.Fatalf("run ended %v: %s", end.m["state"], end.raw)
	}

	// Each task ran once, in one pod created once; only join's pod is new
	// after the kill.
	all := pw.names()
	if len(all) != 4 {
		t.Errorf("pods of the run: %v, want one for each of seed, hold_a, hold_b, join", all)
	}
	for _, task := range []string{"seed", "hold_a", "hold_b", "join"} {
		name := k8s.PodName(dagID, runID, task, 1)
		if n := pw.count(name); n != 1 {
			t.Errorf("pod %s of %s was created %d times, want once", name, task, n)
		}
		if (task == "join") == beforeKill[name] {
			t.Errorf("pod %s of %s: seen before the kill %v; only join's pod is the standby's", name, task, beforeKill[name])
		}
		var tries web.TryList
		if code := standby.api(t, "GET", "/api/v1/dags/"+dagID+"/runs/"+url.PathEscape(runID)+"/tasks/"+task+"/tries", nil, &tries); code != http.StatusOK {
			t.Fatalf("tries of %s: %d", task, code)
		}
		if len(tries.Tries) != 1 || tries.Tries[0].Try != 1 || tries.Tries[0].State != "success" || tries.Tries[0].Pod != name {
			t.Errorf("tries of %s: %+v, want one successful try in pod %s", task, tries.Tries, name)
		}
	}
	if l := standby.first(func(l standbyLine) bool { return l.msg == "task" && l.m["task"] == "seed" }); l != nil {
		t.Errorf("the standby ran seed again: %s", l.raw)
	}

	// The results: seed's, committed by the dead process, read by the holds
	// and by join; the adopted pods' results read by join.
	seedPod := k8s.PodName(dagID, runID, "seed", 1)
	for task, want := range map[string]string{
		"seed":   seedPod,
		"hold_a": "a after " + seedPod,
		"hold_b": "b after " + seedPod,
		"join":   fmt.Sprintf("seed %s; a after %s; b after %s", seedPod, seedPod, seedPod),
	} {
		var x web.XCom
		if code := standby.api(t, "GET", "/api/v1/dags/"+dagID+"/runs/"+url.PathEscape(runID)+"/tasks/"+task+"/xcom", nil, &x); code != http.StatusOK {
			t.Fatalf("result of %s: %d", task, code)
		}
		var got string
		if err := json.Unmarshal(x.Value, &got); err != nil || got != want {
			t.Errorf("result of %s: %s (%v), want %q", task, x.Value, err, want)
		}
	}
	// The adopted pods' logs: the line each printed at its start is kept
	// once (the standby follows a log from where the saved one ends).
	for _, task := range []string{"hold_a", "hold_b"} {
		var chunk web.LogChunk
		if code := standby.api(t, "GET", "/api/v1/dags/"+dagID+"/runs/"+url.PathEscape(runID)+"/tasks/"+task+"/tries/1/log", nil, &chunk); code != http.StatusOK {
			t.Fatalf("log of %s: %d", task, code)
		}
		if strings.Count(chunk.Content, "hold "+task+" try 1 waits for") != 1 || strings.Count(chunk.Content, "released") != 1 {
			t.Errorf("log of %s, want its start line and \"released\" once each:\n%s", task, chunk.Content)
		}
	}
	if l := standby.first(func(l standbyLine) bool { return l.msg == "delete orphan pod" || l.msg == "delete pod" }); l != nil {
		t.Errorf("the standby: %s", l.raw)
	}
}

// standbyPostgres returns the DSN of the test PostgreSQL server:
// $TRELLIS_TEST_POSTGRES, else the file hack/postgres.sh writes. Without one
// the test skips, or fails when CI is set.
func standbyPostgres(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv("TRELLIS_TEST_POSTGRES")
	file := filepath.Join(cmp.Or(os.Getenv("TRELLIS_PG_DIR"), "/tmp/trellis-pg"), "dsn")
	if dsn == "" {
		if raw, err := os.ReadFile(file); err == nil {
			dsn = strings.TrimSpace(string(raw))
		}
	}
	if dsn == "" {
		msg := "no PostgreSQL: $TRELLIS_TEST_POSTGRES is empty and " + file + " is missing (hack/postgres.sh up)"
		if os.Getenv("CI") != "" {
			t.Fatal("CI is set and there is " + msg)
		}
		t.Skip(msg)
	}
	return dsn
}

// standbySchema creates a schema of the test's own, dropped when it ends, and
// returns a DSN whose search_path is that schema.
func standbySchema(t *testing.T) string {
	t.Helper()
	dsn := standbyPostgres(t)
	b := make([]byte, 8)
	rand.Read(b)
	schema := "e2e_standby_" + hex.EncodeToString(b)
	pgExec := func(stmt string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return err
		}
		defer c.Close(ctx)
		_, err = c.Exec(ctx, stmt)
		return err
	}
	if err := pgExec("CREATE SCHEMA " + schema); err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("PostgreSQL at %s: %v", dsn, err)
		}
		t.Fatalf("PostgreSQL at %s: %v", dsn, err)
	}
	t.Cleanup(func() {
		if err := pgExec("DROP SCHEMA " + schema + " CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

var standbyBuild = struct {
	sync.Mutex
	bin, image string
}{}

// standbyBinary builds testdata/standbydag and its image (once per test
// binary), laid out as TestMain lays out the others.
func standbyBinary(t *testing.T, e *env) (bin, image string) {
	t.Helper()
	standbyBuild.Lock()
	defer standbyBuild.Unlock()
	if standbyBuild.bin != "" {
		return standbyBuild.bin, standbyBuild.image
	}
	bin = filepath.Join(e.bin, "standbydag")
	image = "trellis.local/e2e-standbydag:" + time.Now().UTC().Format("150405")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "./e2e/testdata/standbydag")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build testdata/standbydag: %v\n%s", err, msg)
	}
	img := exec.Command("hack/kube-image.sh", image, bin)
	img.Dir = ".."
	if msg, err := img.CombinedOutput(); err != nil {
		t.Fatalf("image %s: %v\n%s", image, err, msg)
	}
	standbyBuild.bin, standbyBuild.image = bin, image
	return bin, image
}

// standbyServe is one `serve` process; its JSON log lines are read as they
// come, each with the time the test received it.
type standbyServe struct {
	name   string
	cmd    *exec.Cmd
	addr   string
	lines  chan standbyLine // closed once the process has exited
	exited chan struct{}

	mu      sync.Mutex
	log     []standbyLine
	partial []byte // the start of a line not yet complete
}

type standbyLine struct {
	at  time.Time
	msg string
	m   map[string]any
	raw string
}

func startStandbyServe(t *testing.T, name, bin, db, image string, env []string) *standbyServe {
	t.Helper()
	s := &standbyServe{name: name, lines: make(chan standbyLine, 4096), exited: make(chan struct{})}
	s.cmd = exec.Command(bin, "serve", "--executor", "kubernetes", "--db", db, "--listen", "127.0.0.1:0",
		"--image", image, "--namespace", namespace)
	s.cmd.Env = append(os.Environ(), env...)
	s.cmd.Dir = t.TempDir() // each in its own directory: the runner instance must not depend on it
	s.cmd.Stderr = s        // Wait returns once every line has been read
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		s.cmd.Wait()
		s.mu.Lock()
		s.flush()
		s.mu.Unlock()
		close(s.lines)
		close(s.exited)
	}()
	t.Cleanup(func() {
		s.kill()
		if t.Failed() {
			t.Logf("%s's log:\n%s", s.name, s.output())
		}
	})
	l := s.wait(t, "listening", nil, time.Minute)
	addr, _ := l.m["addr"].(string)
	s.addr = strings.TrimPrefix(addr, "http://")
	return s
}

// kill kills the process with SIGKILL and waits until it has exited.
func (s *standbyServe) kill() {
	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.exited
}

// Write takes the process's stderr: each complete line is kept, parsed as
// JSON, and offered to wait.
func (s *standbyServe) Write(p []byte) (int, error) {
	at := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.partial = append(s.partial, p...)
	for {
		i := bytes.IndexByte(s.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		s.add(at, string(s.partial[:i]))
		s.partial = s.partial[i+1:]
	}
}

// flush keeps an unterminated last line.
func (s *standbyServe) flush() {
	if len(s.partial) > 0 {
		s.add(time.Now(), string(s.partial))
		s.partial = nil
	}
}

func (s *standbyServe) add(at time.Time, raw string) {
	l := standbyLine{at: at, raw: raw}
	if json.Unmarshal([]byte(raw), &l.m) == nil {
		l.msg, _ = l.m["msg"].(string)
	}
	s.log = append(s.log, l)
	select {
	case s.lines <- l:
	default: // nobody waits for it: it is in s.log
	}
}

// wait returns the next log line with the message (and, if given, matching),
// failing the test if the process exits or bound passes first.
func (s *standbyServe) wait(t *testing.T, msg string, match func(standbyLine) bool, bound time.Duration) standbyLine {
	t.Helper()
	timeout := time.After(bound)
	for {
		select {
		case l, ok := <-s.lines:
			if !ok {
				t.Fatalf("%s exited before logging %q:\n%s", s.name, msg, s.output())
			}
			if l.msg == msg && (match == nil || match(l)) {
				return l
			}
		case <-timeout:
			t.Fatalf("%s did not log %q within %s:\n%s", s.name, msg, bound, s.output())
		}
	}
}

// first returns the first line logged so far that satisfies ok, or nil.
func (s *standbyServe) first(ok func(standbyLine) bool) *standbyLine {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.log {
		if ok(s.log[i]) {
			return &s.log[i]
		}
	}
	return nil
}

func (s *standbyServe) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	for _, l := range s.log {
		b.WriteString(l.raw)
		b.WriteByte('\n')
	}
	return b.String()
}

// api calls the process's HTTP API (loopback: no token) and decodes the
// answer into out; it returns the status code.
func (s *standbyServe) api(t *testing.T, method, path string, body, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "http://"+s.addr+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s: %s %s: %v", s.name, method, path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 4<<20))
	if err != nil {
		t.Fatalf("%s: %s %s: %v", s.name, method, path, err)
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil && res.StatusCode/100 == 2 {
			t.Fatalf("%s: %s %s: %v: %s", s.name, method, path, err, raw)
		}
	}
	return res.StatusCode
}

// standbyStates returns the state of each task of a run, read through s's API.
func standbyStates(t *testing.T, s *standbyServe, dagID, runID string) map[string]string {
	t.Helper()
	var list web.TaskInstanceList
	if code := s.api(t, "GET", "/api/v1/dags/"+dagID+"/runs/"+url.PathEscape(runID)+"/tasks", nil, &list); code != http.StatusOK {
		t.Fatalf("%s: task instances of %s: %d", s.name, runID, code)
	}
	m := map[string]string{}
	for _, ti := range list.TaskInstances {
		m[ti.TaskID] = string(ti.State)
	}
	return m
}

// names returns the names of the pods the watch has seen.
func (pw *podWatch) names() map[string]bool {
	pw.mu.Lock()
	defer pw.mu.Unlock()
	out := map[string]bool{}
	for name := range pw.labels {
		out[name] = true
	}
	return out
}
