package task

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// DefaultMaxMapLength is the longest list a task may be mapped over unless the
// runner sets another limit (Airflow's [core] max_map_length).
const DefaultMaxMapLength = 1024

// mapSource is where a mapped task's list comes from: exactly one of an
// upstream's result, a literal list, or a DAG param.
type mapSource struct {
	from  *Def
	items []json.RawMessage
	param string
	set   bool
}

// MapOver maps the task over the result of from, a list: the task runs once
// per element, each run a task instance of its own (Airflow's expand). It adds
// the edge from from. Bash and Pod tasks read the element in their templates as
// {{ .Item }} and its index as {{ .MapIndex }}; Go tasks use Map.
func MapOver[T any](from Ref[[]T]) Option {
	return func(d *Def) {
		if from == nil {
			d.fail("MapOver: nil task")
			return
		}
		d.setMap(mapSource{from: from.def(), set: true})
	}
}

// MapItems maps the task over a literal list (Airflow's expand with a list):
// one task instance per element.
func MapItems[T any](items ...T) Option {
	return func(d *Def) {
		raw := make([]json.RawMessage, len(items))
		for i, it := range items {
			b, err := json.Marshal(it)
			if err != nil {
				d.fail("MapItems: element %d: %v", i, err)
				return
			}
			raw[i] = b
		}
		d.setMap(mapSource{items: raw, set: true})
	}
}

// MapParam maps the task over the DAG param name, whose value must be a list
// (Airflow's expand over a param): one task instance per element of the run's
// value.
func MapParam(name string) Option {
	return func(d *Def) {
		if name == "" {
			d.fail("MapParam: empty param name")
			return
		}
		d.setMap(mapSource{param: name, set: true})
	}
}

func (d *Def) setMap(m mapSource) {
	if d.mapSrc.set {
		d.fail("the task is mapped twice (MapOver, MapItems, MapParam or Map): map it over one list")
		return
	}
	d.mapSrc = m
}

// Mapping says what a mapped task is mapped over; MappingOf returns it.
type Mapping struct {
	// Over is the id of the upstream task whose result is the list; empty when
	// the list is Items or Param.
	Over string
	// Items is a literal list (MapItems).
	Items []json.RawMessage
	// Param names the DAG param holding the list (MapParam).
	Param string
}

// MappingOf returns how t is mapped; ok is false for a task that is not mapped.
func MappingOf(t Task) (m Mapping, ok bool) {
	d := t.def()
	if !d.mapSrc.set {
		return Mapping{}, false
	}
	m = Mapping{Items: d.mapSrc.items, Param: d.mapSrc.param}
	if d.mapSrc.from != nil {
		m.Over = d.mapSrc.from.id
	}
	return m, true
}

// ErrNotAList is wrapped by the error of a list to map over that is not a JSON
// array.
var ErrNotAList = errors.New("not a list")

// Elements returns the list m maps over: the result of m.Over read through
// in, the literal items, or the param's value in params. ok is false when the
// upstream stored no result (it was skipped or failed).
func (m Mapping) Elements(in Inputs, params map[string]any) (items []json.RawMessage, ok bool, err error) {
	switch {
	case m.Over != "":
		raw, found, err := in.Result(m.Over)
		if err != nil || !found {
			return nil, false, err
		}
		items, err := SplitList(raw)
		if err != nil {
			return nil, false, fmt.Errorf("the result of %q: %w", m.Over, err)
		}
		return items, true, nil
	case m.Param != "":
		v, found := params[m.Param]
		if !found {
			return nil, false, fmt.Errorf("param %q: not declared and not in the run's conf", m.Param)
		}
		raw, err := json.Marshal(v)
		if err != nil {
			return nil, false, fmt.Errorf("param %q: %w", m.Param, err)
		}
		items, err := SplitList(raw)
		if err != nil {
			return nil, false, fmt.Errorf("param %q: %w", m.Param, err)
		}
		return items, true, nil
	}
	return m.Items, true, nil
}

// SplitList splits a JSON array into its elements. null is the empty list (a
// Go task's nil slice encodes as null); anything else is an error wrapping
// ErrNotAList.
func SplitList(raw []byte) ([]json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if string(raw) == "null" {
		return []json.RawMessage{}, nil
	}
	if len(raw) == 0 || raw[0] != '[' {
		kind := "empty"
		if len(raw) > 0 {
			kind = string(raw[:min(len(raw), 20)])
		}
		return nil, fmt.Errorf("a task is mapped over %s...: %w (want a JSON array)", kind, ErrNotAList)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotAList, err)
	}
	return items, nil
}

// InstanceID is the id of the mapped task instance of taskID for element
// index ("resize[3]"), the id its tries, logs and result are stored and shown
// under. A negative index is the task's own id.
func InstanceID(taskID string, index int) string {
	if index < 0 {
		return taskID
	}
	return taskID + "[" + strconv.Itoa(index) + "]"
}

// ParseInstanceID splits an instance id made by InstanceID into the task's id
// and the map index; index is -1 for an id without one.
func ParseInstanceID(id string) (taskID string, index int) {
	if !strings.HasSuffix(id, "]") {
		return id, -1
	}
	open := strings.LastIndexByte(id, '[')
	if open <= 0 {
		return id, -1
	}
	n, err := strconv.Atoi(id[open+1 : len(id)-1])
	if err != nil || n < 0 || strconv.Itoa(n) != id[open+1:len(id)-1] {
		return id, -1
	}
	return id[:open], n
}

// MapIndex returns the index of the element this try runs for, for a mapped
// task instance (Airflow's map_index), or -1 for a task that is not mapped.
func (r *Run) MapIndex() int {
	if !r.task.mapSrc.set {
		return -1
	}
	return r.info.MapIndex
}

// itemInputs is the Inputs of one mapped task instance, which carries its
// element so the try does not read the whole list.
type itemInputs struct {
	Inputs
	item json.RawMessage
}

// WithItem returns in, carrying item: the element a mapped task instance runs
// for. Executors that know the element pass it on this way; without it, Item
// reads the whole list and picks the element.
func WithItem(in Inputs, item json.RawMessage) Inputs {
	if in == nil {
		in = InputsFunc(func(string) ([]byte, bool, error) { return nil, false, nil })
	}
	return itemInputs{Inputs: in, item: item}
}

// ItemOf returns the element in carries (see WithItem).
func ItemOf(in Inputs) (json.RawMessage, bool) {
	ii, ok := in.(itemInputs)
	return ii.item, ok
}

// ErrNotMapped is returned by Item for a task that is not mapped.
var ErrNotMapped = errors.New("the task is not mapped")

// Item returns the element this try of a mapped task runs for, as JSON.
func (r *Run) Item() (json.RawMessage, error) {
	if !r.task.mapSrc.set {
		return nil, fmt.Errorf("task %q: %w", r.task.id, ErrNotMapped)
	}
	if item, ok := ItemOf(r.inputs); ok {
		return item, nil
	}
	m := Mapping{Items: r.task.mapSrc.items, Param: r.task.mapSrc.param}
	if f := r.task.mapSrc.from; f != nil {
		m.Over = f.id
	}
	items, ok, err := m.Elements(r.inputs, r.params)
	if err == nil && !ok {
		err = fmt.Errorf("the result of %q: %w", m.Over, ErrNoResult)
	}
	if err != nil {
		return nil, fmt.Errorf("task %q: the list it is mapped over: %w", r.task.id, err)
	}
	i := r.info.MapIndex
	if i < 0 || i >= len(items) {
		return nil, fmt.Errorf("task %q: map index %d out of range of a list of %d", r.task.id, i, len(items))
	}
	return items[i], nil
}

// MapTask is a Go task mapped over a list: fn runs once per element, each in
// a task instance of its own with its own state, tries, log and result. Its
// result, read downstream with Output, is every element's result in element
// order. Build it with Map.
type MapTask[T, U any] struct {
	Def
	Returns[[]U]
	fn func(ctx context.Context, r *Run, item T) (U, error)
}

var _ Ref[[]int] = (*MapTask[string, int])(nil)

// Map returns a task that runs fn once for every element of over's result, in parallel.
//
// Each element is a task instance ("resize[3]") with its own state, tries,
// retries, log and result; r.MapIndex tells fn its element's index. An empty
// list skips the task; a list longer than the runner's limit
// (DefaultMaxMapLength) fails over. Output(r, m) in a downstream task returns
// the results of every element in element order; a map can map over another
// map's result.
func Map[T, U any](id string, over Ref[[]T], fn func(ctx context.Context, r *Run, item T) (U, error), opts ...Option) *MapTask[T, U] {
	t := &MapTask[T, U]{Def: NewDef(id, KindGo, append([]Option{MapOver(over)}, opts...)...), fn: fn}
	if fn == nil {
		t.fail("nil function")
	}
	return t
}

// Execute decodes the try's element, runs fn on it and encodes the result.
func (t *MapTask[T, U]) Execute(ctx context.Context, r *Run) ([]byte, error) {
	raw, err := r.Item()
	if err != nil {
		return nil, err
	}
	var item T
	if err := json.Unmarshal(raw, &item); err != nil {
		return nil, fmt.Errorf("decode element %d as %T: %w", r.MapIndex(), item, err)
	}
	return encodeResult(t.fn(ctx, r, item))
}

// mapProblems reports misuses of mapping.
func (d *Def) mapProblems() []error {
	if !d.mapSrc.set {
		return nil
	}
	var errs []error
	if d.trigger == Always && d.mapSrc.from != nil {
		errs = append(errs, fmt.Errorf("trigger rule always on a task mapped over %q: it could run before the list exists (Airflow refuses it too)", d.mapSrc.from.id))
	}
	switch d.kind {
	case KindBranch, KindShortCircuit, KindSensor:
		errs = append(errs, fmt.Errorf("a %s task cannot be mapped", d.kind))
	}
	if d.setup || d.teardown {
		errs = append(errs, errors.New("a setup or teardown cannot be mapped"))
	}
	return errs
}

// summaryOrder is Airflow's order for the state shown for a mapped task (the
// grid's row): the first of these that any of its instances has.
var summaryOrder = []State{StateFailed, StateUpstreamFailed, StateUpForRetry, StateQueued, StateScheduled,
	StateDeferred, StateRunning, StateNone, StateSuccess, StateSkipped, StateRemoved}

// SummaryState returns the state shown for a mapped task whose instances have
// the states counted in counts: the first of failed, upstream_failed,
// up_for_retry, queued, scheduled, deferred, running, none, success, skipped and
// removed that any instance has (Airflow's rule). ok is false when counts
// counts nothing.
func SummaryState(counts map[State]int) (s State, ok bool) {
	for _, st := range summaryOrder {
		if counts[st] > 0 {
			return st, true
		}
	}
	return StateNone, false
}

// MappedOutput returns the results of every instance of the mapped task
// from, a direct upstream of r's task, in element order. It is for tasks
// mapped with MapOver, MapItems or MapParam, whose Ref is of one instance's
// result (a mapped Bash task's string); a Map task is read with Output.
func MappedOutput[T any](r *Run, from Ref[T]) ([]T, error) {
	if !from.def().mapSrc.set {
		return nil, fmt.Errorf("task %q reads %q with MappedOutput: %w", r.task.id, from.ID(), ErrNotMapped)
	}
	raw, err := r.input(from.def())
	if err != nil {
		return nil, err
	}
	var vs []T
	if err := json.Unmarshal(raw, &vs); err != nil {
		return nil, fmt.Errorf("task %q: decode the results of %q as %T: %w", r.task.id, from.ID(), vs, err)
	}
	return vs, nil
}
