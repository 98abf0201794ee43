package sensors

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"time"

	"github.com/trellisdag/trellis/task"
)

// MaxFiles bounds the paths File returns.
const MaxFiles = 1000

// File waits until the glob pattern (filepath.Match syntax; a template with
// the fields of task.TemplateData, such as {{ .DS }}) matches at least one
// path, as Airflow's FileSensor. Its value is the matching paths, sorted, at
// most MaxFiles.
func File(id, pattern string, opts ...task.Option) *task.ValueSensor[[]string] {
	tmpl, err := task.ParseTemplate(id, pattern)
	if err != nil {
		opts = append(opts, task.Invalid(fmt.Errorf("file sensor %q: pattern: %w", id, err)))
	}
	return task.SensorOf(id, func(ctx context.Context, r *task.Run) (bool, []string, error) {
		p, err := r.Render(tmpl)
		if err != nil {
			return false, nil, fmt.Errorf("pattern: %w", err)
		}
		matches, err := filepath.Glob(p)
		if err != nil {
			return false, nil, fmt.Errorf("pattern %q: %w", p, err)
		}
		if len(matches) == 0 {
			fmt.Fprintf(r.Output(), "no file matches %s yet\n", p)
			return false, nil, nil
		}
		slices.Sort(matches)
		if len(matches) > MaxFiles {
			matches = matches[:MaxFiles]
		}
		fmt.Fprintf(r.Output(), "%d file(s) match %s\n", len(matches), p)
		return true, matches, nil
	}, opts...)
}

// HTTPSpec says what HTTP answers an HTTP sensor waits for.
type HTTPSpec struct {
	// URL is fetched at every poke; it may be a template (task.TemplateData).
	URL string
	// Method defaults to GET.
	Method string
	// Header is sent with every request.
	Header http.Header
	// Status is the status that means done (default 200).
	Status int
	// Body, when set, must also accept the response body (at most MaxBody
	// bytes) for the sensor to be done.
	Body func(body []byte) bool
	// Client defaults to http.DefaultClient; each request is bounded by the
	// task's Timeout (execution timeout), else by 30 s.
	Client *http.Client
}

// MaxBody bounds the response body an HTTP sensor reads.
const MaxBody = 1 << 20

// HTTP waits until an endpoint answers with the wanted status (and body), as
// Airflow's HttpSensor. Its value is the body of the answer that met it. A
// transport error or another status is a "not yet", logged in the try's log.
func HTTP(id string, spec HTTPSpec, opts ...task.Option) *task.ValueSensor[string] {
	tmpl, err := task.ParseTemplate(id, spec.URL)
	if err != nil || spec.URL == "" {
		opts = append(opts, task.Invalid(fmt.Errorf("http sensor %q: url %q: %v", id, spec.URL, err)))
	}
	if spec.Method == "" {
		spec.Method = http.MethodGet
	}
	if spec.Status == 0 {
		spec.Status = http.StatusOK
	}
	client := spec.Client
	if client == nil {
		client = http.DefaultClient
	}
	return task.SensorOf(id, func(ctx context.Context, r *task.Run) (bool, string, error) {
		u, err := r.Render(tmpl)
		if err != nil {
			return false, "", fmt.Errorf("url: %w", err)
		}
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
		}
		req, err := http.NewRequestWithContext(ctx, spec.Method, u, nil)
		if err != nil {
			return false, "", fmt.Errorf("request: %w", err)
		}
		for k, vs := range spec.Header {
			req.Header[k] = slices.Clone(vs)
		}
		res, err := client.Do(req)
		if err != nil {
			fmt.Fprintf(r.Output(), "%s %s: %v; not yet\n", spec.Method, req.URL.Redacted(), err)
			return false, "", nil
		}
		defer res.Body.Close()
		body, err := io.ReadAll(io.LimitReader(res.Body, MaxBody))
		if err != nil {
			fmt.Fprintf(r.Output(), "%s %s: read the body: %v; not yet\n", spec.Method, req.URL.Redacted(), err)
			return false, "", nil
		}
		if res.StatusCode != spec.Status || (spec.Body != nil && !spec.Body(body)) {
			fmt.Fprintf(r.Output(), "%s %s: %s; not yet\n", spec.Method, req.URL.Redacted(), res.Status)
			return false, "", nil
		}
		fmt.Fprintf(r.Output(), "%s %s: %s; done\n", spec.Method, req.URL.Redacted(), res.Status)
		return true, string(body), nil
	}, opts...)
}

// Until waits until the moment at computes from the run (Airflow's
// DateTimeSensor), e.g. the data interval's end plus an hour. Its value is
// that moment.
func Until(id string, at func(r *task.Run) time.Time, opts ...task.Option) *task.ValueSensor[time.Time] {
	if at == nil {
		opts = append(opts, task.Invalid(fmt.Errorf("time sensor %q: nil moment function", id)))
	}
	return task.SensorOf(id, func(ctx context.Context, r *task.Run) (bool, time.Time, error) {
		t := at(r)
		if time.Now().Before(t) {
			fmt.Fprintf(r.Output(), "waiting until %s\n", t.UTC().Format(time.RFC3339))
			return false, time.Time{}, nil
		}
		return true, t, nil
	}, opts...)
}

// Delay waits until the run's data interval has ended d ago (Airflow's
// TimeDeltaSensor).
func Delay(id string, d time.Duration, opts ...task.Option) *task.ValueSensor[time.Time] {
	return Until(id, func(r *task.Run) time.Time {
		_, end := r.DataInterval()
		return end.Add(d)
	}, opts...)
}

// ExternalSpec says which run of another DAG an ExternalTask sensor waits for
// and what its states mean.
type ExternalSpec struct {
	// DAGID is the other DAG (of the same binary).
	DAGID string
	// TaskID is the task waited for; empty waits for the whole run.
	TaskID string
	// LogicalDate computes the other run's logical date from this run's
	// (Airflow's execution_date_fn); nil: the same logical date. Delta
	// (Airflow's execution_delta) is subtracted from it.
	LogicalDate func(logical time.Time) time.Time
	Delta       time.Duration
	// Allowed states mean done (default success); Failed states fail the
	// sensor at once without retry (default none); Skipped states skip it.
	// Task states for a task, run states ("success", "failed") for a run.
	Allowed, Failed, Skipped []string
}

// ExternalTask waits for a task (or a whole run) of another DAG of the same
// binary at the same logical date or one computed from it, as Airflow's
// ExternalTaskSensor. It runs in the runner (task.LookupFrom).
func ExternalTask(id string, spec ExternalSpec, opts ...task.Option) *task.SensorTask {
	if spec.DAGID == "" {
		opts = append(opts, task.Invalid(fmt.Errorf("external task sensor %q: no DAG id", id)))
	}
	if len(spec.Allowed) == 0 {
		spec.Allowed = []string{"success"}
	}
	return task.Sensor(id, func(ctx context.Context, r *task.Run) (bool, error) {
		l, err := task.LookupFrom(ctx)
		if err != nil {
			return false, err
		}
		logical := r.LogicalDate()
		if spec.LogicalDate != nil {
			logical = spec.LogicalDate(logical)
		}
		logical = logical.Add(-spec.Delta)
		var states []string
		what := fmt.Sprintf("dag %s at %s", spec.DAGID, logical.UTC().Format(time.RFC3339))
		if spec.TaskID == "" {
			rs, err := l.RunStates(ctx, spec.DAGID, logical)
			if err != nil {
				return false, err
			}
			for _, s := range rs {
				states = append(states, string(s))
			}
		} else {
			what = fmt.Sprintf("task %s of %s", spec.TaskID, what)
			ts, err := l.TaskStates(ctx, spec.DAGID, spec.TaskID, logical)
			if err != nil {
				return false, err
			}
			for _, s := range ts {
				states = append(states, string(s))
			}
		}
		for _, s := range states {
			switch {
			case slices.Contains(spec.Failed, s):
				return false, fmt.Errorf("%w: %s is %s (a failed state)", task.ErrFailNow, what, s)
			case slices.Contains(spec.Skipped, s):
				return false, task.Skip(fmt.Sprintf("%s is %s (a skipped state)", what, s))
			case slices.Contains(spec.Allowed, s):
				fmt.Fprintf(r.Output(), "%s is %s: done\n", what, s)
				return true, nil
			}
		}
		if len(states) == 0 {
			fmt.Fprintf(r.Output(), "%s: no run yet\n", what)
		} else {
			fmt.Fprintf(r.Output(), "%s is %v; waiting for %v\n", what, states, spec.Allowed)
		}
		return false, nil
	}, opts...)
}

// TriggerSpec says what run of which DAG TriggerDAG starts.
type TriggerSpec struct {
	// DAGID is the DAG to trigger (of the same binary).
	DAGID string
	// Conf is the run's conf, checked against that DAG's params.
	Conf json.RawMessage
	// LogicalDate computes the run's logical date from this run's (default:
	// the same).
	LogicalDate func(logical time.Time) time.Time
	// Wait makes the task wait (deferred) until the triggered run has
	// finished, and fail when it failed (Airflow's wait_for_completion).
	Wait bool
}

// Triggered is TriggerDAG's value: the run it started.
type Triggered struct {
	DAGID string `json:"dagId"`
	RunID string `json:"runId"`
	State string `json:"state,omitempty"`
}

// TriggerDAG starts a run of another DAG of the same binary (Airflow's
// TriggerDagRunOperator) and, with Wait, waits for it without holding a slot.
// The run's id is derived from this run and task, so a retry finds the run it
// started instead of starting another.
func TriggerDAG(id string, spec TriggerSpec, opts ...task.Option) *task.ValueSensor[Triggered] {
	if spec.DAGID == "" {
		opts = append(opts, task.Invalid(fmt.Errorf("trigger %q: no DAG id", id)))
	}
	return task.SensorOf(id, func(ctx context.Context, r *task.Run) (bool, Triggered, error) {
		l, err := task.LookupFrom(ctx)
		if err != nil {
			return false, Triggered{}, err
		}
		info := r.Info()
		logical := r.LogicalDate()
		if spec.LogicalDate != nil {
			logical = spec.LogicalDate(logical)
		}
		out := Triggered{DAGID: spec.DAGID, RunID: fmt.Sprintf("triggered__%s__by_%s.%s.%s",
			logical.UTC().Format("2006-01-02T15:04:05.999999-07:00"), info.DAGID, info.TaskID, info.RunID)}
		state, found, err := l.RunState(ctx, spec.DAGID, out.RunID)
		if err != nil {
			return false, out, err
		}
		if !found {
			if _, err := l.TriggerRun(ctx, spec.DAGID, out.RunID, logical, spec.Conf); err != nil {
				return false, out, fmt.Errorf("trigger dag %q: %w", spec.DAGID, err)
			}
			fmt.Fprintf(r.Output(), "triggered run %s of dag %s\n", out.RunID, spec.DAGID)
			state = task.RunQueued
		}
		out.State = string(state)
		if !spec.Wait {
			return true, out, nil
		}
		switch state {
		case task.RunSuccess:
			fmt.Fprintf(r.Output(), "run %s of dag %s succeeded\n", out.RunID, spec.DAGID)
			return true, out, nil
		case task.RunFailed:
			return false, out, fmt.Errorf("%w: triggered run %s of dag %s failed", task.ErrFailNow, out.RunID, spec.DAGID)
		}
		fmt.Fprintf(r.Output(), "run %s of dag %s is %s; waiting\n", out.RunID, spec.DAGID, state)
		return false, out, nil
	}, opts...)
}
