package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/trellisdag/trellis/internal/runs"
	"github.com/trellisdag/trellis/internal/store"
	"github.com/trellisdag/trellis/task"
)

func cmdTasksTest(ctx context.Context, r *Runner, args []string) error {
	f := newFlags(r, "tasks test")
	ld := f.fs.String("logical-date", "", "logical date, in the DAG's timezone unless it has an offset (default: now)")
	confFlag := f.fs.String("conf", "", "run conf, a JSON object")
	fromRun := f.fs.String("run", "", "an existing run: its upstream results, logical date, data interval and conf (--logical-date and --conf override)")
	var mi mapIndexFlag
	f.fs.Var(&mi, "map-index", "run the instance of a mapped task for this element of its list (also written task[N]); a list that is an upstream's result is read from --run")
	itemFlag := f.fs.String("item", "", "run a mapped task for this element, as JSON, instead of one of its list (needed for a task mapped over an upstream's result without --run)")
	pos, err := f.parse(args, "<dag>", "<task>")
	if err != nil {
		return err
	}
	d, err := r.dag(pos[0])
	if err != nil {
		return err
	}
	arg, err := parseTaskArg("tasks test", d, pos[1], &mi)
	if err != nil {
		return err
	}
	t := arg.task
	if t == nil {
		return usagef("dag %q has no task %q", pos[0], arg.base)
	}
	mapped := task.SettingsOf(t).Mapped
	switch {
	case *itemFlag != "" && !mapped:
		return usagef("tasks test: --item: task %q of dag %q is not mapped", t.ID(), d.ID())
	case *itemFlag != "" && !json.Valid([]byte(*itemFlag)):
		return usagef("tasks test: --item: malformed JSON: %s", preview(*itemFlag, 60))
	case mapped && arg.index < 0 && *itemFlag == "":
		return usagef("tasks test: task %q is mapped: pass --map-index N (the element of its list to run for) or the element itself with --item JSON", t.ID())
	}
	logical := time.Now().UTC()
	if *ld != "" {
		if logical, err = parseDateIn("logical-date", *ld, d.Location()); err != nil {
			return err
		}
		logical = logical.UTC()
	}
	conf, err := parseConf(*confFlag)
	if err != nil {
		return err
	}
	params, err := d.ResolveConf(conf)
	if err != nil {
		return &UsageError{err}
	}
	start, end := d.InferInterval(logical)
	info := task.Info{DAGID: d.ID(), TaskID: t.ID(), RunID: runID("test", logical), RunType: task.RunManual,
		Try: 1, MaxTries: 1, LogicalDate: logical, DataIntervalStart: start, DataIntervalEnd: end, Location: d.Location()}
	var inputs task.Inputs
	if *fromRun != "" {
		st, err := openRead(ctx, *f.db)
		if err != nil {
			return err
		}
		if st != nil {
			defer st.Close()
		}
		run, err := findRun(ctx, st, pos[0], *fromRun)
		if err != nil {
			return err
		}
		inputs = task.InputsFunc(func(id string) ([]byte, bool, error) { return st.XCom(ctx, run.ID, id) })
		// The task sees the run it is tested in: its dates, id and conf.
		info.RunID, info.RunType = run.RunID, run.Type
		if *ld == "" {
			info.LogicalDate, info.DataIntervalStart, info.DataIntervalEnd = run.LogicalDate, run.IntervalStart, run.IntervalEnd
		}
		if *confFlag == "" && len(run.Conf) > 0 {
			conf = run.Conf
			if params, err = d.ResolveConf(conf); err != nil {
				return &UsageError{fmt.Errorf("conf of run %q: %w", run.RunID, err)}
			}
		}
	}
	name := t.ID()
	info.MapIndex = -1
	if mapped {
		k := max(arg.index, 0)
		item, err := testItem(t, k, *itemFlag, *fromRun, inputs, params)
		if err != nil {
			return err
		}
		info.MapIndex, name = k, task.InstanceID(t.ID(), k)
		inputs = task.WithItem(inputs, item)
	}
	run := task.NewRun(t, info, params, conf, inputs, r.cfg.Stdout)
	pol := task.PolicyOf(t, d.Defaults())
	tctx := ctx
	if pol.Timeout > 0 {
		var cancel context.CancelFunc
		tctx, cancel = context.WithTimeout(ctx, pol.Timeout)
		defer cancel()
	}
	began := time.Now()
	res, err := t.Execute(tctx, run)
	took := round(time.Since(began))
	switch {
	case errors.Is(err, task.ErrSkip):
		fmt.Fprintf(r.cfg.Stdout, "task %s skipped in %s: %v\n", name, took, err)
		return nil
	case errors.Is(err, task.ErrNotDone):
		// One poke of a sensor: not a failure, but not done either.
		sp := task.SensorPolicyOf(t)
		return fmt.Errorf("sensor %q: condition not met yet (this poke took %s); in a run it would be deferred, holding no slot, "+
			"and poke again every %s for at most %s: %w", t.ID(), took, sp.PokeInterval, sp.Timeout, err)
	case err != nil && *fromRun == "" && len(task.Upstream(t)) > 0:
		return fmt.Errorf("task %q failed in %s: %w\n(it has upstream tasks; to give it their results, pass --run <run id> of a run where they succeeded, see runs list)", name, took, err)
	case err != nil:
		return fmt.Errorf("task %q failed in %s: %w", name, took, err)
	}
	fmt.Fprintf(r.cfg.Stdout, "task %s succeeded in %s; result: %s\n", name, took, preview(string(res), 200))
	return nil
}

// testItem returns the element a tasks test of mapped task t runs for: item
// when given (--item), else element k of the list t is mapped over, read
// through in (an upstream's result, from --run) or params. Without a run, an
// upstream's result does not exist: that is a usage error saying so.
func testItem(t task.Task, k int, item, fromRun string, in task.Inputs, params map[string]any) (json.RawMessage, error) {
	if item != "" {
		return json.RawMessage(item), nil
	}
	m, _ := task.MappingOf(t)
	if m.Over != "" && fromRun == "" {
		return nil, usagef("tasks test: --map-index %d: task %q is mapped over the result of %q, which only a run has: "+
			"pass --run <run id> of a run where %q succeeded, or the element itself with --item JSON", k, t.ID(), m.Over, m.Over)
	}
	items, ok, err := m.Elements(in, params)
	switch {
	case errors.Is(err, task.ErrNotAList):
		return nil, &UsageError{fmt.Errorf("tasks test: task %q: the list it is mapped over: %w", t.ID(), err)}
	case err != nil && m.Param != "":
		return nil, &UsageError{fmt.Errorf("tasks test: task %q: %w", t.ID(), err)}
	case err != nil:
		return nil, fmt.Errorf("tasks test: task %q: read the list it is mapped over: %w", t.ID(), err)
	case !ok:
		return nil, usagef("tasks test: run %q has no result of %q (it did not succeed), so task %q has no list to map over; pass the element with --item JSON",
			fromRun, m.Over, t.ID())
	case k >= len(items):
		return nil, usagef("tasks test: --map-index %d is out of range: the list task %q is mapped over has %d element(s)", k, t.ID(), len(items))
	}
	return items[k], nil
}

func cmdTasksClear(ctx context.Context, r *Runner, args []string) error {
	f := newFlags(r, "tasks clear")
	var only stringList
	f.fs.Var(&only, "task", "clear this task (repeatable; default: every task)")
	downstream := f.fs.Bool("downstream", false, "also clear every task downstream of the chosen ones")
	failedOnly := f.fs.Bool("failed-only", false, "clear only failed and upstream_failed tasks")
	var indexes mapIndexList
	f.fs.Var(&indexes, "map-index", "clear only this instance of the mapped task given with --task (repeatable; also written --task T[N]); the tasks taken along are cleared whole")
	pos, err := f.parse(args, "<dag>", "<run>")
	if err != nil {
		return err
	}
	d, err := r.dag(pos[0])
	if err != nil {
		return err
	}
	var chosen []task.Task
	var named []taskArg // the tasks given, with the map index each names
	for _, id := range only {
		a, err := parseTaskArg("tasks clear", d, id, nil)
		if err != nil {
			return err
		}
		if a.task == nil {
			return usagef("dag %q has no task %q", d.ID(), a.base)
		}
		if !slices.Contains(chosen, a.task) {
			chosen = append(chosen, a.task)
		}
		named = append(named, a)
	}
	for _, a := range named {
		if a.index >= 0 {
			indexes = append(indexes, a.index)
		}
	}
	var target task.Task // the mapped task the indexes are of
	if len(indexes) > 0 {
		var mapped []task.Task
		for _, t := range chosen {
			if task.SettingsOf(t).Mapped {
				mapped = append(mapped, t)
			}
		}
		switch {
		case len(chosen) == 1 && len(mapped) == 0:
			return usagef("tasks clear: --map-index %d: task %q of dag %q is not mapped", indexes[0], chosen[0].ID(), d.ID())
		case len(mapped) != 1:
			return usagef("tasks clear: --map-index needs exactly one --task that is mapped (got %d mapped)", len(mapped))
		}
		target = mapped[0]
	}
	// The run must exist (and the instances named) before anything is
	// opened for writing (a mistyped run or database path creates nothing).
	ro, err := openRead(ctx, *f.db)
	if err != nil {
		return err
	}
	roRun, err := findRun(ctx, ro, pos[0], pos[1])
	for _, k := range indexes {
		if err == nil {
			err = checkInstance(ctx, ro, "tasks clear", roRun, taskArg{base: target.ID(), index: k, task: target})
		}
	}
	if ro != nil {
		ro.Close()
	}
	if err != nil {
		return err
	}
	st, err := r.openWrite(ctx, *f.db)
	if err != nil {
		return err
	}
	defer st.Close()
	run, err := findRun(ctx, st, pos[0], pos[1])
	if err != nil {
		return err
	}
	ids, err := runs.Clear(ctx, st, d, run, chosen, runs.ClearOptions{Downstream: *downstream, FailedOnly: *failedOnly, MapIndexes: indexes})
	if err != nil || len(ids) > 0 {
		r.audit(ctx, st, "clear", d.ID(), run.RunID, strings.Join(ids, ","), "", err)
	}
	if errors.Is(err, store.ErrActive) || errors.Is(err, store.ErrNotFound) {
		return &UsageError{err}
	}
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		fmt.Fprintln(r.cfg.Stdout, "Nothing to clear.")
		return nil
	}
	slices.Sort(ids)
	fmt.Fprintf(r.cfg.Stdout, "Cleared %d task(s) of run %s: %v\nThe run is queued; a scheduler (serve, or dags trigger --wait) runs them.\n", len(ids), run.RunID, ids)
	return nil
}

func cmdTasksMark(ctx context.Context, r *Runner, args []string) error {
	f := newFlags(r, "tasks mark")
	to := f.fs.String("state", "", "success or failed (required)")
	note := f.fs.String("note", "", "why, recorded as the task's error when marked failed")
	pos, err := f.parse(args, "<dag>", "<run>", "<task>")
	if err != nil {
		return err
	}
	state := task.State(*to)
	if state != task.StateSuccess && state != task.StateFailed {
		return usagef("tasks mark: --state %q: want success or failed", *to)
	}
	d, err := r.dag(pos[0])
	if err != nil {
		return err
	}
	if a, err := parseTaskArg("tasks mark", d, pos[2], nil); err != nil {
		return err
	} else if a.task == nil {
		return usagef("dag %q has no task %q", d.ID(), pos[2])
	}
	st, run, err := r.openForRun(ctx, *f.db, pos[0], pos[1])
	if err != nil {
		return err
	}
	defer st.Close()
	msg := *note
	if msg == "" {
		msg = "marked failed from the command line"
	}
	from, err := runs.Mark(ctx, st, d, run, pos[2], state, msg)
	r.audit(ctx, st, "mark_"+string(state), d.ID(), run.RunID, pos[2], *note, err)
	switch {
	case errors.Is(err, store.ErrConflict), errors.Is(err, store.ErrNotFound):
		return &UsageError{fmt.Errorf("tasks mark: %w", err)}
	case err != nil:
		return err
	}
	fmt.Fprintf(r.cfg.Stdout, "Marked %s of run %s %s (it was %s).\nThe run is re-evaluated by the scheduler (serve, or dags trigger --wait).\n", pos[2], run.RunID, state, from)
	return nil
}
