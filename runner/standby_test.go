package runner_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trellisdag/trellis/internal/store/storetest"
)

// maxFailover is how long the standby may take to schedule after the active
// scheduler is killed.
const maxFailover = 15 * time.Second

// TestHotStandby runs two serve processes on one PostgreSQL database (SQLite
// has no standby on another machine; TestServeLock covers its flock). The
// active one is killed with -9 while a run has two tasks succeeded and two in
// flight; the standby, which served the API meanwhile without scheduling,
// takes over within maxFailover, keeps the results the dead process
// committed, runs no succeeded task again, runs the interrupted ones again and
// completes the run.
func TestHotStandby(t *testing.T) {
	t.Parallel()
	be := storetest.Postgres(t)
	bin := buildTestdata(t, "standbydag")
	db := withPassword(t, be.NewDB(t), "secret")
	dir := t.TempDir()
	running := make(chan string, 2)
	for _, name := range []string{"slow1", "slow2"} {
		fifo := filepath.Join(dir, name+".fifo")
		if err := syscall.Mkfifo(fifo, 0o600); err != nil {
			t.Fatal(err)
		}
		go func() {
			f, err := os.Open(fifo) // blocks until the task's first try opens it
			if err != nil {
				running <- "open " + fifo + ": " + err.Error()
				return
			}
			defer f.Close()
			line, _ := bufio.NewReader(f).ReadString('\n')
			running <- name + " " + strings.TrimSpace(line)
		}()
	}
	// The DSN comes from the environment, as from a Secret in a cluster.
	env := []string{"TRELLIS_DB=" + db, "STANDBY_DIR=" + dir, "TMPDIR=" + dir}

	active := startServe(t, "active", bin, "", env...)
	active.wait("scheduler started", nil)
	standby := startServe(t, "standby", bin, "", env...)
	standby.wait("serving as a standby: the web UI and the API read and write the database; scheduling waits", nil)
	if code, body := standby.get("/readyz"); code != 200 {
		t.Fatalf("standby /readyz = %d %s, want 200", code, body)
	}

	// Triggered through the standby, run by the active scheduler.
	runID := standby.triggerDAG("standby", "2024-03-01T00:00:00Z")
	deadline := time.After(60 * time.Second)
	for range 2 {
		select {
		case s := <-running:
			if !strings.HasSuffix(s, " running") {
				t.Fatalf("in-flight task: %s", s)
			}
		case <-deadline:
			t.Fatalf("the slow tasks never started; active:\n%s", active.output())
		}
	}
	// a and b succeeded (slow1 and slow2 start after their commit); the
	// standby reads it from the database.
	states := taskStates(t, standby, "standby", runID)
	for id, want := range map[string]string{"a": "success", "b": "success", "join": "none"} {
		if states[id] != want {
			t.Errorf("before the kill, %s is %q, want %q (%v)", id, states[id], want, states)
		}
	}
	for _, id := range []string{"slow1", "slow2"} {
		if s := states[id]; s != "queued" && s != "running" {
			t.Errorf("before the kill, %s is %q, want it in flight (%v)", id, s, states)
		}
	}
	if out := standby.output(); strings.Contains(out, "scheduler started") || strings.Contains(out, `"msg":"task"`) {
		t.Fatalf("the standby scheduled:\n%s", out)
	}

	killed := time.Now()
	if err := active.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	active.cmd.Wait()
	standby.wait("holding the scheduler lock", nil)
	locked := time.Since(killed)
	standby.wait("scheduler started", nil)
	took := time.Since(killed)
	t.Logf("failover: the standby held the lock %s and scheduled %s after kill -9 of the active scheduler", locked.Round(time.Millisecond), took.Round(time.Millisecond))
	if took > maxFailover {
		t.Errorf("failover took %s, want at most %s", took, maxFailover)
	}
	standby.wait("run", runEnded(runID, "success"))

	// No succeeded task ran again; the results the dead process committed
	// are the ones the join read; the interrupted tries ran again.
	ran, err := os.ReadFile(filepath.Join(dir, "ran"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Fields(string(ran)); len(got) != 2 || !strings.Contains(string(ran), "a\n") || !strings.Contains(string(ran), "b\n") {
		t.Errorf("tasks that ran: %q, want a and b once each", got)
	}
	join, err := os.ReadFile(filepath.Join(dir, "join"))
	if err != nil {
		t.Fatal(err)
	}
	pid := active.cmd.Process.Pid
	if want := fmt.Sprintf("a@%d b@%d slow1@try2 slow2@try2", pid, pid); string(join) != want {
		t.Errorf("join read %q, want %q", join, want)
	}
	for id, want := range map[string]int{"a": 1, "b": 1, "slow1": 2, "slow2": 2, "join": 1} {
		if n := tries(t, standby, "standby", runID, id); n != want {
			t.Errorf("%s has %d tries, want %d", id, n, want)
		}
	}
	if strings.Contains(active.output()+standby.output(), "secret") {
		t.Errorf("a log shows the password of the DSN")
	}
}

// taskStates returns the state of each task of a run, read through s's API.
func taskStates(t *testing.T, s *server, dagID, runID string) map[string]string {
	t.Helper()
	code, body := s.get("/api/v1/dags/" + dagID + "/runs/" + runID + "/tasks")
	if code != 200 {
		t.Fatalf("%s: task instances: %d %s", s.name, code, body)
	}
	var list struct {
		TaskInstances []struct{ TaskID, State string }
	}
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		t.Fatalf("%s: task instances: %v", s.name, err)
	}
	m := map[string]string{}
	for _, ti := range list.TaskInstances {
		m[ti.TaskID] = ti.State
	}
	return m
}

// tries returns how many tries a task instance has, read through s's API.
func tries(t *testing.T, s *server, dagID, runID, taskID string) int {
	t.Helper()
	code, body := s.get("/api/v1/dags/" + dagID + "/runs/" + runID + "/tasks/" + taskID + "/tries")
	if code != 200 {
		t.Fatalf("%s: tries of %s: %d %s", s.name, taskID, code, body)
	}
	var list struct{ Tries []json.RawMessage }
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		t.Fatalf("%s: tries of %s: %v", s.name, taskID, err)
	}
	return len(list.Tries)
}
