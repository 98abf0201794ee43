package runner_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/trellisdag/trellis/internal/store/storetest"
)

// server is a `serve` process whose JSON log lines arrive on a channel.
type server struct {
	t     *testing.T
	name  string
	cmd   *exec.Cmd
	lines chan map[string]any
	mu    sync.Mutex
	log   []string
	addr  string
}

// startServe starts `bin serve` on db (given with --db; "" leaves it to the
// environment), with env added to the test's environment, and waits until it
// listens.
func startServe(t *testing.T, name, bin, db string, env ...string) *server {
	t.Helper()
	s := &server{t: t, name: name, lines: make(chan map[string]any, 1024)}
	args := []string{"serve", "--listen", "127.0.0.1:0"}
	if db != "" {
		args = append(args, "--db", db)
	}
	s.cmd = exec.Command(bin, args...)
	s.cmd.Env = append(os.Environ(), env...)
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.cmd.Process.Kill()
		s.cmd.Wait()
	})
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			s.mu.Lock()
			s.log = append(s.log, sc.Text())
			s.mu.Unlock()
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				s.lines <- m
			}
		}
		close(s.lines)
	}()
	m := s.wait("listening", nil)
	s.addr = strings.TrimPrefix(m["addr"].(string), "http://")
	return s
}

// wait reads log lines until one has the message (and, if given, matches).
func (s *server) wait(msg string, match func(map[string]any) bool) map[string]any {
	s.t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		select {
		case m, ok := <-s.lines:
			if !ok {
				s.t.Fatalf("%s exited before logging %q:\n%s", s.name, msg, s.output())
			}
			if m["msg"] == msg && (match == nil || match(m)) {
				return m
			}
		case <-deadline:
			s.t.Fatalf("%s did not log %q in time:\n%s", s.name, msg, s.output())
		}
	}
}

func (s *server) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.log, "\n")
}

func (s *server) get(path string) (int, string) {
	s.t.Helper()
	res, err := http.Get("http://" + s.addr + path)
	if err != nil {
		s.t.Fatalf("%s: GET %s: %v", s.name, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// trigger triggers a run of the DAG "lock" through the server's API.
func (s *server) trigger(date string) string {
	s.t.Helper()
	return s.triggerDAG("lock", date)
}

// triggerDAG triggers a run of the DAG through the server's API and returns
// its id.
func (s *server) triggerDAG(dagID, date string) string {
	s.t.Helper()
	res, err := http.Post("http://"+s.addr+"/api/v1/dags/"+dagID+"/runs", "application/json", strings.NewReader(`{"logicalDate":"`+date+`"}`))
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	var run struct{ RunID string }
	json.NewDecoder(res.Body).Decode(&run)
	if res.StatusCode != 201 {
		s.t.Fatalf("%s: trigger: %d", s.name, res.StatusCode)
	}
	return run.RunID
}

func runEnded(runID, state string) func(map[string]any) bool {
	return func(m map[string]any) bool { return m["run"] == runID && m["state"] == state }
}

// TestServeLock runs two serve processes on one database, SQLite and
// PostgreSQL: one schedules; the other waits for the scheduler lock as a
// standby, which serves the UI and the API from the database, ready, without
// scheduling (a run triggered through it is run by the first); after kill -9
// of the first, the second takes over and schedules.
func TestServeLock(t *testing.T) {
	t.Parallel()
	bin := buildTestdata(t, "servedag")
	storetest.Run(t, func(t *testing.T, be storetest.Backend) {
		db := be.NewDB(t)
		if be.Postgres {
			db = withPassword(t, db, "secret") // the test server trusts loopback: a password that must not show
		}
		testServeLock(t, bin, db)
	})
}

func testServeLock(t *testing.T, bin, db string) {
	a := startServe(t, "first", bin, db)
	a.wait("scheduler started", nil)
	b := startServe(t, "second", bin, db)
	b.wait("serving as a standby: the web UI and the API read and write the database; scheduling waits", nil)
	b.wait("another scheduler holds the lock on this database; waiting to take over", nil)

	if code, body := a.get("/readyz"); code != 200 {
		t.Errorf("first /readyz = %d %s", code, body)
	}
	if code, body := b.get("/readyz"); code != 200 {
		t.Errorf("standby /readyz = %d %s, want 200: a rolling update waits for it", code, body)
	}
	if code, _ := b.get("/healthz"); code != 200 {
		t.Errorf("second /healthz = %d", code)
	}
	if code, body := b.get("/api/v1/dags"); code != 200 || !strings.Contains(body, `"lock"`) {
		t.Errorf("standby API = %d %s", code, body)
	}
	for _, c := range []struct {
		p    *server
		want string
	}{{a, "trellis_scheduler_active 1"}, {b, "trellis_scheduler_active 0"}} {
		if code, body := c.p.get("/metrics"); code != 200 || !strings.Contains(body, c.want) {
			t.Errorf("%s /metrics: %d, want %q", c.p.name, code, c.want)
		}
	}

	// Only the first schedules, also a run triggered through the standby.
	run1 := b.trigger("2024-01-01T00:00:00Z")
	a.wait("run", runEnded(run1, "success"))
	if strings.Contains(b.output(), `"msg":"task"`) || strings.Contains(b.output(), "scheduler started") {
		t.Errorf("the waiting process scheduled:\n%s", b.output())
	}
	if code, body := b.get("/api/v1/dags/lock/runs"); code != 200 || !strings.Contains(body, `"total":1`) || !strings.Contains(body, `"success"`) {
		t.Errorf("the standby does not read what the first committed: %d %s", code, body)
	}

	// kill -9 the first: the second takes over.
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	a.cmd.Wait()
	b.wait("scheduler started", nil)
	if code, body := b.get("/readyz"); code != 200 {
		t.Errorf("second /readyz after takeover = %d %s", code, body)
	}
	if code, body := b.get("/metrics"); code != 200 || !strings.Contains(body, "trellis_scheduler_active 1") {
		t.Errorf("second /metrics after takeover: %d, want trellis_scheduler_active 1", code)
	}
	run2 := b.trigger("2024-01-02T00:00:00Z")
	b.wait("run", runEnded(run2, "success"))
	if code, body := b.get("/api/v1/dags/lock/runs"); code != 200 || !strings.Contains(body, `"total":2`) {
		t.Errorf("runs after takeover = %d %s", code, body)
	}

	// SIGTERM: the second stops cleanly, in order.
	if err := b.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	b.wait("http server stopped", nil)
	b.wait("scheduler stopped", nil)
	if err := b.cmd.Wait(); err != nil {
		t.Errorf("second after SIGTERM: %v\n%s", err, b.output())
	}
	if strings.Contains(a.output()+b.output(), "secret") {
		t.Errorf("a log shows the password of the DSN")
	}
}

// withPassword returns the DSN with the password set.
func withPassword(t *testing.T, dsn, password string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(u.User.Username(), password)
	return u.String()
}
