package runner_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/sensors"
	"github.com/trellisdag/trellis/task"
)

const fast = 20 * time.Millisecond // the sensors' poke interval in these tests

// TestTriggerAndExternalTaskSensors: a DAG triggers another of the same
// binary and waits for it (deferred), then an external task sensor sees the
// other DAG's task at the same logical date; a failed triggered run fails the
// trigger task without retry. serve --until-idle runs all of it.
func TestTriggerAndExternalTaskSensors(t *testing.T) {
	t.Parallel()
	childFails := atomic.Bool{}
	child := dag.New("child", dag.DefaultRetries(0, 0))
	child.Add(task.Go("work", func(ctx context.Context, r *task.Run) (string, error) {
		if childFails.Load() {
			return "", errors.New("child broke")
		}
		return "worked " + r.Info().RunID, nil
	}))
	parent := dag.New("parent", dag.DefaultRetries(2, 0))
	kick := sensors.TriggerDAG("kick", sensors.TriggerSpec{DAGID: "child", Wait: true}, task.PokeInterval(fast))
	seen := sensors.ExternalTask("seen", sensors.ExternalSpec{DAGID: "child", TaskID: "work"}, task.PokeInterval(fast))
	report := task.Go("report", func(ctx context.Context, r *task.Run) (string, error) {
		k, err := task.Output(r, kick)
		return "child run " + k.RunID + " " + k.State, err
	})
	parent.Add(kick, seen, report)
	task.Chain(kick, seen, report)
	kick.Then(report)
	c := &cli{t: t, db: filepath.Join(t.TempDir(), "trellis.db"), dags: []*dag.DAG{parent, child}}

	if code := c.run("dags", "trigger", "parent", "--logical-date", "2024-01-01"); code != 0 {
		t.Fatalf("trigger: %d %s", code, &c.stderr)
	}
	if code := c.run("serve", "--until-idle", "--listen", ""); code != 0 {
		t.Fatalf("serve: %d\n%s%s", code, &c.stdout, &c.stderr)
	}
	if code := c.run("runs", "show", "parent", "latest"); code != 0 {
		t.Fatal(c.stderr.String())
	}
	show := c.stdout.String()
	for _, id := range []string{"kick", "seen", "report"} {
		if row := rowOf(show, id); !strings.Contains(row, "success") || !strings.Contains(row, "1/3") {
			t.Errorf("%s: %q, want success in its first try\n%s", id, row, show)
		}
	}
	if !strings.Contains(rowOf(show, "report"), `"child run triggered__2024-01-01T00:00:00+00:00__by_parent.`) {
		t.Errorf("report: %q", rowOf(show, "report"))
	}
	if code := c.run("runs", "list", "child"); code != 0 || strings.Count(c.stdout.String(), "triggered__2024-01-01T00:00:00+00:00__by_parent.kick.manual__2024-01-01T00:00:00+00:00") != 1 {
		t.Errorf("child runs (want exactly the one triggered):\n%s%s", &c.stdout, &c.stderr)
	}

	// A failed child fails the trigger at once, without its retries.
	childFails.Store(true)
	if code := c.run("dags", "trigger", "parent", "--logical-date", "2024-01-02"); code != 0 {
		t.Fatalf("trigger: %d %s", code, &c.stderr)
	}
	c.run("serve", "--until-idle", "--listen", "")
	c.run("runs", "show", "parent", "latest")
	if row := rowOf(c.stdout.String(), "kick"); !strings.Contains(row, "failed") || !strings.Contains(row, "1/3") || !strings.Contains(row, "failed") {
		t.Errorf("kick with a failing child: %q, want failed in try 1\n%s", row, &c.stdout)
	}
}

// TestFileAndHTTPSensors: a file sensor is met by a file an upstream task
// writes (its value is the paths); another, on a file that never comes, is
// skipped once its timeout passes (SoftFail); an HTTP sensor waits through
// two 503 answers for a 200 whose body it accepts, and returns the body.
func TestFileAndHTTPSensors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) <= 2 {
			http.Error(w, "warming up", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte(`{"ready": true}`))
	}))
	defer srv.Close()

	d := dag.New("wait", dag.DefaultRetries(0, 0))
	write := task.Go("write", func(ctx context.Context, r *task.Run) (int, error) {
		return 0, os.WriteFile(filepath.Join(dir, r.Template().DS+".csv"), []byte("a,b\n"), 0o600)
	})
	landed := sensors.File("landed", filepath.Join(dir, "{{ .DS }}.csv"), task.PokeInterval(fast))
	never := sensors.File("never", filepath.Join(dir, "missing-*.csv"), task.PokeInterval(fast), task.SensorTimeout(200*time.Millisecond), task.SoftFail())
	up := sensors.HTTP("up", sensors.HTTPSpec{URL: srv.URL + "/health?day={{ .DS }}", Body: func(b []byte) bool { return strings.Contains(string(b), `"ready": true`) }},
		task.PokeInterval(fast))
	use := task.Go("use", func(ctx context.Context, r *task.Run) (string, error) {
		files, err := task.Output(r, landed)
		if err != nil {
			return "", err
		}
		body, err := task.Output(r, up)
		return filepath.Base(files[0]) + " " + body, err
	})
	d.Add(write, landed, never, up, use)
	write.Then(landed)
	landed.Then(use)
	up.Then(use)
	c := &cli{t: t, db: filepath.Join(t.TempDir(), "trellis.db"), dags: []*dag.DAG{d}}
	if code := c.run("dags", "test", "wait", "--logical-date", "2024-03-05"); code != 0 {
		t.Fatalf("dags test: %d\n%s%s", code, &c.stdout, &c.stderr)
	}
	c.run("runs", "show", "wait", "latest")
	show := c.stdout.String()
	if row := rowOf(show, "use"); !strings.Contains(row, `2024-03-05.csv {\"ready\": true}`) {
		t.Errorf("use: %q\n%s", row, show)
	}
	if row := rowOf(show, "never"); !strings.Contains(row, "skipped") || !strings.Contains(row, "sensor timed out") {
		t.Errorf("never: %q, want skipped by its timeout\n%s", row, show)
	}
	if hits.Load() != 3 {
		t.Errorf("the endpoint was polled %d times, want 3", hits.Load())
	}
	if code := c.run("logs", "wait", "latest", "up"); code != 0 || strings.Count(c.stdout.String(), "503 Service Unavailable; not yet") != 2 {
		t.Errorf("up's log (one try, every poke):\n%s%s", &c.stdout, &c.stderr)
	}
}

// TestDagsShowWaiting: dags show prints a DAG's asset schedule, its sensors'
// waiting policy, the assets its tasks update and its callbacks.
func TestDagsShowWaiting(t *testing.T) {
	t.Parallel()
	noop := func(context.Context, task.Event) error { return nil }
	d := dag.New("w", dag.ScheduleOnAnyAsset("s3://a", "s3://b"), dag.OnFailure(noop), dag.AlertAfter(time.Hour, dag.FromQueued, noop))
	s := task.Sensor("s", func(context.Context, *task.Run) (bool, error) { return true, nil },
		task.PokeInterval(30*time.Second), task.SensorTimeout(time.Hour), task.SoftFail(), task.PokeBackoff(5*time.Minute))
	out := task.Go("out", func(context.Context, *task.Run) (int, error) { return 0, nil }, task.Outlets("s3://c"), task.OnFailure(noop), task.OnRetry(noop))
	d.Add(s, out)
	s.Then(out)
	c := &cli{t: t, db: filepath.Join(t.TempDir(), "trellis.db"), dags: []*dag.DAG{d}}
	if code := c.run("dags", "show", "w"); code != 0 {
		t.Fatal(c.stderr.String())
	}
	for _, want := range []string{
		"assets:     runs on new events of any of s3://a, s3://b",
		"callbacks:  1 on run_failure; alert when not finished 1h0m0s after queued",
		"sensor s: pokes every 30s for at most 1h0m0s, backoff exponential up to 5m0s, skipped on timeout (soft fail)",
		"out updates s3://c",
		"out callbacks: 1 on task_retry; 1 on task_failure",
	} {
		if !strings.Contains(c.stdout.String(), want) {
			t.Errorf("dags show lacks %q:\n%s", want, &c.stdout)
		}
	}
}

// TestTasksTestSensor: tasks test pokes a sensor once; an unmet condition is
// exit 1 with what a run would do, not a failure with an upstream hint.
func TestTasksTestSensor(t *testing.T) {
	t.Parallel()
	met := atomic.Bool{}
	d := dag.New("s")
	up := task.Go("up", func(context.Context, *task.Run) (int, error) { return 1, nil })
	s := task.Sensor("ready", func(context.Context, *task.Run) (bool, error) { return met.Load(), nil }, task.PokeInterval(time.Minute))
	d.Add(up, s)
	up.Then(s)
	c := &cli{t: t, db: filepath.Join(t.TempDir(), "trellis.db"), dags: []*dag.DAG{d}}
	if code := c.run("tasks", "test", "s", "ready"); code != 1 || !strings.Contains(c.stderr.String(), `sensor "ready": condition not met yet`) ||
		!strings.Contains(c.stderr.String(), "poke again every 1m0s for at most 168h0m0s") || strings.Contains(c.stderr.String(), "upstream") {
		t.Errorf("unmet: exit %d\n%s", code, &c.stderr)
	}
	met.Store(true)
	if code := c.run("tasks", "test", "s", "ready"); code != 0 || !strings.Contains(c.stdout.String(), "task ready succeeded") {
		t.Errorf("met: exit %d\n%s%s", code, &c.stdout, &c.stderr)
	}
}

// TestRenderSkipsSensors: a sensor has no pod: render says so for one and
// leaves sensors out of a whole DAG's pods.
func TestRenderSkipsSensors(t *testing.T) {
	t.Parallel()
	d := dag.New("r")
	s := task.Sensor("s", func(context.Context, *task.Run) (bool, error) { return true, nil })
	g := task.Go("g", func(context.Context, *task.Run) (int, error) { return 0, nil })
	d.Add(s, g)
	s.Then(g)
	c := &cli{t: t, db: filepath.Join(t.TempDir(), "trellis.db"), dags: []*dag.DAG{d}}
	if code := c.run("render", "r", "s", "--image", "img:1"); code != 2 || !strings.Contains(c.stderr.String(), `task "s" of dag "r" is a sensor`) {
		t.Errorf("render a sensor: exit %d\n%s", code, &c.stderr)
	}
	if code := c.run("render", "r", "--image", "img:1"); code != 0 || strings.Count(c.stdout.String(), "kind: Pod") != 1 ||
		!strings.Contains(c.stderr.String(), "s is a sensor") {
		t.Errorf("render the DAG: exit %d\n%s%s", code, &c.stdout, &c.stderr)
	}
}

// TestAssetsPost: a bad URI or extra is a usage error that writes nothing; a
// good event is recorded and listed.
func TestAssetsPost(t *testing.T) {
	t.Parallel()
	d := dag.New("cons", dag.ScheduleOnAssets("s3://x"))
	d.Add(task.Go("t", func(context.Context, *task.Run) (int, error) { return 0, nil }))
	db := filepath.Join(t.TempDir(), "trellis.db")
	c := &cli{t: t, db: db, dags: []*dag.DAG{d}}
	if code := c.run("assets", "post", "has space"); code != 2 || !strings.Contains(c.stderr.String(), "whitespace") {
		t.Errorf("bad uri: exit %d\n%s", code, &c.stderr)
	}
	if code := c.run("assets", "post", "s3://x", "--extra", "[1]"); code != 2 || !strings.Contains(c.stderr.String(), "--extra: want a JSON object") {
		t.Errorf("bad extra: exit %d\n%s", code, &c.stderr)
	}
	if c.fingerprint() != "" {
		t.Error("a refused event created the database")
	}
	if code := c.run("assets", "post", "s3://x", "--extra", `{"rows":1}`); code != 0 {
		t.Fatalf("post: exit %d\n%s", code, &c.stderr)
	}
	if code := c.run("assets", "events"); code != 0 || !strings.Contains(c.stdout.String(), `{"rows":1}`) || !strings.Contains(c.stdout.String(), "cli:") {
		t.Errorf("events: exit %d\n%s%s", code, &c.stdout, &c.stderr)
	}
}
