package task

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"text/template"
	"time"
)

// Info identifies one try of one task in one DAG run.
type Info struct {
	DAGID    string
	TaskID   string
	RunID    string
	RunType  RunType
	Try      int // 1 for the first try
	MaxTries int // Retries + 1
	// LogicalDate is the start of the run's data interval (Airflow's logical_date).
	LogicalDate       time.Time
	DataIntervalStart time.Time
	DataIntervalEnd   time.Time
	// Location is the DAG's timezone; nil means UTC.
	Location *time.Location
	// PrevDataIntervalStartSuccess is the data interval start of the latest earlier
	// run of this DAG that succeeded; zero when there is none.
	PrevDataIntervalStartSuccess time.Time
	// MapIndex is the element's index for a try of a mapped task instance
	// (read with Run.MapIndex, which is -1 for a task that is not mapped).
	MapIndex int
}

// Inputs gives a try the results of its direct upstream tasks, as JSON.
type Inputs interface {
	// Result returns the stored result of taskID in this run; ok is false when the
	// task stored none (it was skipped, or returns nothing).
	Result(taskID string) (result []byte, ok bool, err error)
}

// InputsFunc adapts a function to Inputs.
type InputsFunc func(taskID string) ([]byte, bool, error)

// Result calls f.
func (f InputsFunc) Result(taskID string) ([]byte, bool, error) { return f(taskID) }

// Run is the context of one try: which run and data interval it is for, the run's
// params and conf, the upstream results, and the try's log. Executors create it
// with NewRun; a task reads it.
type Run struct {
	info   Info
	task   *Def
	params map[string]any
	conf   json.RawMessage
	inputs Inputs
	log    io.Writer
	logger *slog.Logger
}

// NewRun returns the context of one try of t. params are the run's params (the DAG's
// declared defaults overlaid with the run's conf); conf is the run's conf as given;
// log receives everything the try prints.
func NewRun(t Task, info Info, params map[string]any, conf json.RawMessage, in Inputs, log io.Writer) *Run {
	if log == nil {
		log = io.Discard
	}
	if in == nil {
		in = InputsFunc(func(string) ([]byte, bool, error) { return nil, false, nil })
	}
	return &Run{info: info, task: t.def(), params: params, conf: conf, inputs: in, log: log,
		logger: slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))}
}

// Info returns the identity of this try.
func (r *Run) Info() Info { return r.info }

// LogicalDate returns the run's logical date (the start of its data interval).
func (r *Run) LogicalDate() time.Time { return r.info.LogicalDate }

// DataInterval returns the run's data interval [start, end).
func (r *Run) DataInterval() (start, end time.Time) {
	return r.info.DataIntervalStart, r.info.DataIntervalEnd
}

// Params returns the run's params: declared defaults overlaid with the run's conf,
// as dag.DAG.ResolveConf makes them (integers with the Go type of their default,
// other values as encoding/json decodes them). ParamsAs reads them as a struct.
func (r *Run) Params() map[string]any { return r.params }

// Conf returns the run's conf as given by the trigger (nil when none).
func (r *Run) Conf() json.RawMessage { return r.conf }

// Log returns a logger that writes to this try's log.
func (r *Run) Log() *slog.Logger { return r.logger }

// Output returns a writer to this try's log, for output that is not structured.
func (r *Run) Output() io.Writer { return r.log }

// ErrNotUpstream is returned by Output when the task read is not a direct upstream.
var ErrNotUpstream = errors.New("not a direct upstream task")

// ErrNoResult is returned by Output when the upstream task stored no result (it was
// skipped, or has not run).
var ErrNoResult = errors.New("no result")

func (r *Run) input(from *Def) ([]byte, error) {
	if !contains(r.task.up, from) {
		return nil, fmt.Errorf("task %q reads the result of %q: %w (add %s.Then(%s))",
			r.task.id, from.id, ErrNotUpstream, from.id, r.task.id)
	}
	raw, ok, err := r.inputs.Result(from.id)
	if err != nil {
		return nil, fmt.Errorf("task %q reads the result of %q: %w", r.task.id, from.id, err)
	}
	if !ok {
		return nil, fmt.Errorf("task %q reads the result of %q: %w", r.task.id, from.id, ErrNoResult)
	}
	return raw, nil
}

// TemplateData is what a template sees as dot: Airflow's template context under Go
// names. Dates are in UTC, as Airflow provides them; the Local* fields are in the
// DAG's timezone.
type TemplateData struct {
	DS                string         // logical date, YYYY-MM-DD
	DSNodash          string         // logical date, YYYYMMDD
	TS                string         // logical date, RFC 3339 (2024-01-02T00:00:00+00:00)
	TSNodash          string         // logical date, 20240102T000000
	LogicalDate       time.Time      // logical date
	DataIntervalStart time.Time      // start of the data interval
	DataIntervalEnd   time.Time      // end of the data interval
	LocalDS           string         // logical date in the DAG's timezone, YYYY-MM-DD
	LocalTS           string         // logical date in the DAG's timezone, RFC 3339
	DAGID             string         // the DAG's id
	TaskID            string         // the task's id
	RunID             string         // the run's id
	TryNumber         int            // 1 for the first try
	Params            map[string]any // declared params overlaid with conf (see Run.Params)
	Conf              map[string]any // the run's conf
	// PrevDataIntervalStartSuccess is the data interval start of the previous
	// successful run; zero when there is none.
	PrevDataIntervalStartSuccess time.Time
	// MapIndex is the element's index in a mapped task instance, -1 when
	// the task is not mapped ({{ .MapIndex }}).
	MapIndex int
	// Item is the element a mapped task instance runs for, decoded from JSON
	// as Result decodes ({{ .Item }}, {{ .Item.path }}); nil when the task is
	// not mapped.
	Item any

	run *Run // for Output and Result
}

// Output returns the result of the direct upstream task taskID as JSON text,
// Airflow's {{ ti.xcom_pull(task_ids='extract') }} serialized: in a template,
// {{ .Output "extract" }}. It is an error (the try fails with it) if taskID
// is not a direct upstream or stored no result.
func (d TemplateData) Output(taskID string) (string, error) {
	raw, err := d.upstream(taskID)
	return string(raw), err
}

// Result returns the result of the direct upstream task taskID decoded from
// JSON (objects as maps, numbers as json.Number, so they print as stored),
// to reach into: {{ (.Result "extract").path }}; a string prints without
// quotes. Errors as Output.
func (d TemplateData) Result(taskID string) (any, error) {
	raw, err := d.upstream(taskID)
	if err != nil {
		return nil, err
	}
	v, err := decodeJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("decode the result of %q: %w", taskID, err)
	}
	return v, nil
}

// decodeJSON decodes raw with objects as maps and numbers as json.Number.
func decodeJSON(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	return v, err
}

func (d TemplateData) upstream(taskID string) ([]byte, error) {
	if d.run == nil {
		return nil, fmt.Errorf("the result of %q: %w", taskID, ErrNoResult)
	}
	for _, up := range d.run.task.up {
		if up.id == taskID {
			return d.run.input(up)
		}
	}
	return nil, fmt.Errorf("task %q reads the result of %q: %w", d.run.task.id, taskID, ErrNotUpstream)
}

// Template returns the template context of this try.
func (r *Run) Template() TemplateData {
	i := r.info
	ld := i.LogicalDate.UTC()
	loc := i.Location
	if loc == nil {
		loc = time.UTC
	}
	conf := map[string]any{}
	if len(r.conf) > 0 {
		_ = json.Unmarshal(r.conf, &conf) // conf is validated as a JSON object when the run is created
	}
	return TemplateData{
		DS: ld.Format("2006-01-02"), DSNodash: ld.Format("20060102"),
		TS: ld.Format("2006-01-02T15:04:05-07:00"), TSNodash: ld.Format("20060102T150405"),
		LogicalDate: ld, DataIntervalStart: i.DataIntervalStart.UTC(), DataIntervalEnd: i.DataIntervalEnd.UTC(),
		LocalDS: ld.In(loc).Format("2006-01-02"), LocalTS: ld.In(loc).Format("2006-01-02T15:04:05-07:00"),
		DAGID: i.DAGID, TaskID: i.TaskID, RunID: i.RunID, TryNumber: i.Try,
		Params: r.params, Conf: conf, PrevDataIntervalStartSuccess: i.PrevDataIntervalStartSuccess,
		MapIndex: r.MapIndex(), run: r,
	}
}

// ParseTemplate parses text as a Go text/template for the template context; a
// missing key is an error when rendered.
func ParseTemplate(name, text string) (*template.Template, error) {
	return template.New(name).Option("missingkey=error").Parse(text)
}

// Render executes tmpl over this try's template context.
func (r *Run) Render(tmpl *template.Template) (string, error) {
	var b bytes.Buffer
	data := r.Template()
	if r.task.mapSrc.set {
		raw, err := r.Item()
		if err != nil {
			return "", fmt.Errorf("task %q: render %s: %w", r.task.id, tmpl.Name(), err)
		}
		if data.Item, err = decodeJSON(raw); err != nil {
			return "", fmt.Errorf("task %q: render %s: element %d: %w", r.task.id, tmpl.Name(), data.MapIndex, err)
		}
	}
	if err := tmpl.Execute(&b, data); err != nil {
		return "", fmt.Errorf("task %q: render %s: %w", r.task.id, tmpl.Name(), err)
	}
	return b.String(), nil
}
