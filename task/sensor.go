package task

import (
	"context"
	"crypto/sha1"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"
)

// KindSensor is a task that waits for a condition (see Sensor).
const KindSensor Kind = "sensor"

// Sensor defaults, as in Airflow.
const (
	// DefaultPokeInterval is the time between two pokes (Airflow's poke_interval).
	DefaultPokeInterval = 60 * time.Second
	// DefaultSensorTimeout is how long a sensor may wait in all (Airflow's
	// sensor timeout: 7 days).
	DefaultSensorTimeout = 7 * 24 * time.Hour
)

// ErrNotDone is returned by a sensor's Execute when its poke found the
// condition not met yet: the task is deferred until its next poke.
var ErrNotDone = errors.New("sensor condition not met yet")

// ErrSensorTimeout is wrapped by the error of a sensor that waited longer than
// its SensorTimeout.
var ErrSensorTimeout = errors.New("sensor timed out")

type sensorConf struct {
	interval, timeout, maxWait time.Duration
	softFail, backoff          bool
}

// PokeInterval sets the time between two pokes of a sensor (default 60 s, as
// Airflow's poke_interval). Between pokes the sensor is deferred: it holds no
// pool or parallelism slot, and no pod.
func PokeInterval(d time.Duration) Option {
	return sensorOption("PokeInterval", func(c *sensorConf) error {
		if d <= 0 {
			return fmt.Errorf("poke interval %s: want a positive duration", d)
		}
		c.interval = d
		return nil
	})
}

// SensorTimeout sets how long a sensor may wait in all, from its first poke
// (default 7 days, as Airflow's sensor timeout); past it the sensor fails
// without retry, or is skipped with SoftFail. Each poke is bounded by the
// task's Timeout (execution timeout).
func SensorTimeout(d time.Duration) Option {
	return sensorOption("SensorTimeout", func(c *sensorConf) error {
		if d <= 0 {
			return fmt.Errorf("sensor timeout %s: want a positive duration", d)
		}
		c.timeout = d
		return nil
	})
}

// SoftFail makes a sensor that times out skipped instead of failed (Airflow's
// soft_fail); its downstream tasks follow their trigger rules.
func SoftFail() Option {
	return sensorOption("SoftFail", func(c *sensorConf) error { c.softFail = true; return nil })
}

// PokeBackoff makes the time between pokes grow exponentially, as Airflow's
// exponential_backoff (with a deterministic jitter), never past maxWait
// (Airflow's max_wait; 0: no bound but the sensor's timeout).
func PokeBackoff(maxWait time.Duration) Option {
	return sensorOption("PokeBackoff", func(c *sensorConf) error {
		if maxWait < 0 {
			return fmt.Errorf("poke backoff max wait %s is negative", maxWait)
		}
		c.backoff, c.maxWait = true, maxWait
		return nil
	})
}

func sensorOption(name string, set func(*sensorConf) error) Option {
	return func(d *Def) {
		if d.kind != KindSensor {
			d.fail("%s applies to sensors only (task %q is %s)", name, d.id, d.kind)
			return
		}
		if err := set(&d.sensor); err != nil {
			d.fail("%v", err)
		}
	}
}

// SensorPolicy is a sensor's waiting settings, defaults applied.
type SensorPolicy struct {
	PokeInterval time.Duration
	Timeout      time.Duration
	SoftFail     bool
	Backoff      bool
	MaxWait      time.Duration // 0: none
}

// SensorPolicyOf returns a sensor's waiting settings (zero for other tasks).
func SensorPolicyOf(t Task) SensorPolicy {
	d := t.def()
	if d.kind != KindSensor {
		return SensorPolicy{}
	}
	p := SensorPolicy{PokeInterval: d.sensor.interval, Timeout: d.sensor.timeout, SoftFail: d.sensor.softFail,
		Backoff: d.sensor.backoff, MaxWait: d.sensor.maxWait}
	if p.PokeInterval == 0 {
		p.PokeInterval = DefaultPokeInterval
	}
	if p.Timeout == 0 {
		p.Timeout = DefaultSensorTimeout
	}
	return p
}

// NextPoke returns the wait before the next poke of a sensor that has poked
// pokes times (1 after its first poke) since firstPoke, waited elapsed so far,
// in dag dagID: the poke interval, or under backoff Airflow's
// _get_next_poke_interval: at least interval·2^(pokes-2) (and 1 s), plus a
// jitter below that from a hash of the DAG, task, first poke and count, capped
// by the time left before the timeout and by MaxWait.
func (p SensorPolicy) NextPoke(dagID, taskID string, firstPoke time.Time, pokes int, elapsed time.Duration) time.Duration {
	if !p.Backoff {
		return p.PokeInterval
	}
	minBackoff := max(time.Duration(math.Ldexp(p.PokeInterval.Seconds(), pokes-2))*time.Second, time.Second)
	minSec := int64(minBackoff / time.Second)
	sum := sha1.Sum(fmt.Appendf(nil, "%s#%s#%s#%d", dagID, taskID, firstPoke.UTC().Format(time.RFC3339Nano), pokes))
	jitter := int64(binary.BigEndian.Uint64(sum[12:]) % uint64(minSec))
	next := time.Duration(minSec+jitter) * time.Second
	if left := p.Timeout - elapsed; left < next {
		next = max(left, 0)
	}
	if p.MaxWait > 0 && p.MaxWait < next {
		next = p.MaxWait
	}
	return next
}

// ValueSensor is a sensor whose poke returns a value once its condition is met
// (Airflow's PokeReturnValue); downstream tasks read it with Output.
type ValueSensor[T any] struct {
	Def
	Returns[T]
	poke func(ctx context.Context, r *Run) (bool, T, error)
}

var _ Ref[int] = (*ValueSensor[int])(nil)

// SensorTask is a sensor without a value (see Sensor).
type SensorTask = ValueSensor[struct{}]

// Sensor returns a task that waits until poke reports done, calling it every
// PokeInterval (default 60 s) for at most SensorTimeout (default 7 days).
// Between pokes the task is deferred: it holds no slot of its pool, of the
// DAG's max active tasks or of the runner's parallelism, and no pod; its next
// poke time is durable, so a restart resumes the wait. Pokes run in the
// runner, each bounded by the task's Timeout; an error from poke fails the try
// (retries apply). See also SoftFail and PokeBackoff.
func Sensor(id string, poke func(ctx context.Context, r *Run) (done bool, err error), opts ...Option) *SensorTask {
	var fn func(ctx context.Context, r *Run) (bool, struct{}, error)
	if poke != nil {
		fn = func(ctx context.Context, r *Run) (bool, struct{}, error) {
			done, err := poke(ctx, r)
			return done, struct{}{}, err
		}
	}
	return SensorOf(id, fn, opts...)
}

// SensorOf returns a sensor whose poke also returns a value when done; it is
// the task's result.
func SensorOf[T any](id string, poke func(ctx context.Context, r *Run) (done bool, v T, err error), opts ...Option) *ValueSensor[T] {
	t := &ValueSensor[T]{Def: NewDef(id, KindSensor, opts...), poke: poke}
	if poke == nil {
		t.fail("nil poke function")
	}
	return t
}

// Execute pokes once: ErrNotDone when the condition is not met yet, else the
// value as JSON.
func (t *ValueSensor[T]) Execute(ctx context.Context, r *Run) ([]byte, error) {
	done, v, err := t.poke(ctx, r)
	if err != nil {
		return nil, err
	}
	if !done {
		return nil, ErrNotDone
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode the sensor's value as JSON: %w", err)
	}
	return b, nil
}
