package task_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/task"
)

func TestSensorOptionsAndDefaults(t *testing.T) {
	t.Parallel()
	s := task.Sensor("s", func(context.Context, *task.Run) (bool, error) { return true, nil })
	if p := task.SensorPolicyOf(s); p.PokeInterval != time.Minute || p.Timeout != 7*24*time.Hour || p.SoftFail || p.Backoff {
		t.Errorf("defaults = %+v, want Airflow's (60 s, 7 days)", p)
	}
	s2 := task.Sensor("s2", func(context.Context, *task.Run) (bool, error) { return true, nil },
		task.PokeInterval(5*time.Second), task.SensorTimeout(time.Hour), task.SoftFail(), task.PokeBackoff(time.Minute))
	if p := task.SensorPolicyOf(s2); p.PokeInterval != 5*time.Second || p.Timeout != time.Hour || !p.SoftFail || !p.Backoff || p.MaxWait != time.Minute {
		t.Errorf("set = %+v", p)
	}
	if task.SettingsOf(s2).Kind != task.KindSensor {
		t.Errorf("kind = %s", task.SettingsOf(s2).Kind)
	}
	// Sensor options on a task that is not a sensor, and bad values, are
	// validation errors naming the task.
	d := dag.New("bad")
	d.Add(task.Go("g", func(context.Context, *task.Run) (int, error) { return 0, nil }, task.PokeInterval(time.Second)),
		task.Sensor("z", func(context.Context, *task.Run) (bool, error) { return true, nil }, task.PokeInterval(0)),
		task.Sensor("n", nil))
	err := d.Validate()
	for _, want := range []string{`PokeInterval applies to sensors only (task "g" is go)`, "poke interval 0s: want a positive duration", "nil poke function"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to say %q", err, want)
		}
	}
}

func TestSensorExecute(t *testing.T) {
	t.Parallel()
	met := false
	s := task.SensorOf("s", func(context.Context, *task.Run) (bool, int, error) { return met, 42, nil })
	r := task.NewRun(s, task.Info{TaskID: "s"}, nil, nil, nil, nil)
	if _, err := s.Execute(context.Background(), r); !errors.Is(err, task.ErrNotDone) {
		t.Errorf("unmet poke: %v, want ErrNotDone", err)
	}
	met = true
	if out, err := s.Execute(context.Background(), r); err != nil || string(out) != "42" {
		t.Errorf("met poke: %s, %v", out, err)
	}
}

// TestNextPokeBackoff: Airflow's exponential poke backoff: the wait before
// poke n+1 is in [b, 2b) with b = interval·2^(n-2) (at least 1 s), the same
// for the same sensor, first poke and count, and capped by the time left and
// by MaxWait.
func TestNextPokeBackoff(t *testing.T) {
	t.Parallel()
	first := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := task.SensorPolicy{PokeInterval: 60 * time.Second, Timeout: 7 * 24 * time.Hour, Backoff: true}
	for n, base := range map[int]time.Duration{1: 30 * time.Second, 2: 60 * time.Second, 3: 120 * time.Second, 6: 960 * time.Second} {
		got := p.NextPoke("d", "s", first, n, 0)
		if got < base || got >= 2*base {
			t.Errorf("poke %d: next in %s, want in [%s, %s)", n, got, base, 2*base)
		}
		if again := p.NextPoke("d", "s", first, n, 0); again != got {
			t.Errorf("poke %d: %s then %s, want the same (deterministic jitter)", n, got, again)
		}
	}
	if got := p.NextPoke("d", "s", first, 10, p.Timeout-5*time.Second); got != 5*time.Second {
		t.Errorf("near the timeout: %s, want the 5 s left", got)
	}
	p.MaxWait = 90 * time.Second
	if got := p.NextPoke("d", "s", first, 10, 0); got != 90*time.Second {
		t.Errorf("with MaxWait: %s, want 90s", got)
	}
	p.Backoff = false
	if got := p.NextPoke("d", "s", first, 10, 0); got != time.Minute {
		t.Errorf("without backoff: %s, want the poke interval", got)
	}
}

func TestSensorRefusesExecutorConfig(t *testing.T) {
	t.Parallel()
	d := dag.New("bad")
	d.Add(task.Sensor("s", func(context.Context, *task.Run) (bool, error) { return true, nil },
		task.Executor(task.ExecutorConfig{Executor: task.ExecutorKubernetes})))
	if err := d.Validate(); err == nil || !strings.Contains(err.Error(), `sensor "s" has an executor config`) {
		t.Errorf("Validate() = %v", err)
	}
}

// A group's executor config is a default for its tasks, not for its sensors.
func TestGroupExecutorSkipsSensors(t *testing.T) {
	t.Parallel()
	g := task.NewGroup("g", task.Executor(task.ExecutorConfig{Executor: task.ExecutorKubernetes}))
	s := task.Sensor("s", func(context.Context, *task.Run) (bool, error) { return true, nil })
	w := task.Go("w", func(context.Context, *task.Run) (int, error) { return 0, nil })
	g.Add(s, w)
	d := dag.New("d")
	d.Add(g)
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := task.SettingsOf(w).Executor.Executor; got != task.ExecutorKubernetes {
		t.Errorf("w's executor = %q, want the group's", got)
	}
	if got := task.SettingsOf(s).Executor.Executor; got != task.ExecutorDefault {
		t.Errorf("the sensor's executor = %q, want none", got)
	}
}
