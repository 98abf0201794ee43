package runner

import (
	"context"
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
	pos, err := f.parse(args, "<dag>", "<task>")
	if err != nil {
		return err
	}
	d, err := r.dag(pos[0])
	if err != nil {
		return err
	}
	t, ok := d.Task(pos[1])
	if !ok {
		return usagef("dag %q has no task %q", pos[0], pos[1])
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
		run, err := findRun(ctx, st, pos[0], *fromRun)
		if err != nil {
			return err
		}
		defer st.Close()
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
		fmt.Fprintf(r.cfg.Stdout, "task %s skipped in %s: %v\n", t.ID(), took, err)
		return nil
	case errors.Is(err, task.ErrNotDone):
		// One poke of a sensor: not a failure, but not done either.
		sp := task.SensorPolicyOf(t)
		return fmt.Errorf("sensor %q: condition not met yet (this poke took %s); in a run it would be deferred, holding no slot, "+
			"and poke again every %s for at most %s: %w", t.ID(), took, sp.PokeInterval, sp.Timeout, err)
	case err != nil && *fromRun == "" && len(task.Upstream(t)) > 0:
		return fmt.Errorf("task %q failed in %s: %w\n(it has upstream tasks; to give it their results, pass --run <run id> of a run where they succeeded, see runs list)", t.ID(), took, err)
	case err != nil:
		return fmt.Errorf("task %q failed in %s: %w", t.ID(), took, err)
	}
	fmt.Fprintf(r.cfg.Stdout, "task %s succeeded in %s; result: %s\n", t.ID(), took, preview(string(res), 200))
	return nil
}

func cmdTasksClear(ctx context.Context, r *Runner, args []string) error {
	f := newFlags(r, "tasks clear")
	var only stringList
	f.fs.Var(&only, "task", "clear this task (repeatable; default: every task)")
	downstream := f.fs.Bool("downstream", false, "also clear every task downstream of the chosen ones")
	failedOnly := f.fs.Bool("failed-only", false, "clear only failed and upstream_failed tasks")
	pos, err := f.parse(args, "<dag>", "<run>")
	if err != nil {
		return err
	}
	d, err := r.dag(pos[0])
	if err != nil {
		return err
	}
	var chosen []task.Task
	for _, id := range only {
		t, ok := d.Task(id)
		if !ok {
			return usagef("dag %q has no task %q", d.ID(), id)
		}
		chosen = append(chosen, t)
	}
	// The run must exist before anything is opened for writing (a mistyped
	// run or database path creates nothing).
	ro, err := openRead(ctx, *f.db)
	if err != nil {
		return err
	}
	_, err = findRun(ctx, ro, pos[0], pos[1])
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
	ids, err := runs.Clear(ctx, st, d, run, chosen, runs.ClearOptions{Downstream: *downstream, FailedOnly: *failedOnly})
	if err != nil || len(ids) > 0 {
		r.audit(ctx, st, "clear", d.ID(), run.RunID, strings.Join(ids, ","), "", err)
	}
	if errors.Is(err, store.ErrActive) {
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
	if _, ok := d.Task(pos[2]); !ok {
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
