package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/internal/store"
	"github.com/trellisdag/trellis/scheduler"
	"github.com/trellisdag/trellis/task"
)

func cmdDagsList(ctx context.Context, r *Runner, args []string) error {
	f := newFlags(r, "dags list")
	if _, err := f.parse(args); err != nil {
		return err
	}
	st, err := openRead(ctx, *f.db)
	if err != nil {
		return err
	}
	if st != nil {
		defer st.Close()
	}
	w := tabwriter.NewWriter(r.cfg.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "DAG\tSCHEDULE\tTASKS\tPAUSED\tLATEST RUN\tSTATE\tDESCRIPTION")
	for _, d := range r.dags {
		sched := d.ScheduleExpr()
		if sched == "" {
			sched = "(manual)"
		}
		paused, latest, state := "no", "-", "-"
		if st != nil {
			if rec, err := st.DAG(ctx, d.ID()); err == nil && rec.Paused {
				paused = "yes"
			}
			runs, err := st.Runs(ctx, store.RunFilter{DAGID: d.ID(), Limit: 1})
			if err != nil {
				return err
			}
			if len(runs) > 0 {
				latest, state = runs[0].RunID, string(runs[0].State)
			}
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", d.ID(), sched, len(d.Tasks()), paused, latest, state, d.DescriptionText())
	}
	return w.Flush()
}

func cmdDagsShow(ctx context.Context, r *Runner, args []string) error {
	f := newFlags(r, "dags show")
	asJSON := f.fs.Bool("json", false, "print the definition as JSON")
	version := f.fs.String("version", "", "print this stored version of the definition (runs show names a run's) instead of this binary's")
	pos, err := f.parse(args, "<dag>")
	if err != nil {
		return err
	}
	d, err := r.dag(pos[0])
	if err != nil {
		return err
	}
	snap, shown := d.Snapshot(), d.Version()
	if *version != "" && *version != shown {
		st, err := openRead(ctx, *f.db)
		if err != nil {
			return err
		}
		if st == nil {
			return usagef("dag %q has no stored version %q (the database has none)", d.ID(), *version)
		}
		defer st.Close()
		def, err := st.DAGVersion(ctx, d.ID(), *version)
		if errors.Is(err, store.ErrNotFound) {
			return usagef("dag %q has no stored version %q", d.ID(), *version)
		}
		if err != nil {
			return err
		}
		snap = dag.Snapshot{}
		if err := json.Unmarshal(def, &snap); err != nil {
			return fmt.Errorf("dag %q version %s: %w", d.ID(), *version, err)
		}
		shown = *version
	}
	if *asJSON {
		enc := json.NewEncoder(r.cfg.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(snap)
	}
	out := r.cfg.Stdout
	fmt.Fprintf(out, "DAG %s", snap.ID)
	if snap.Description != "" {
		fmt.Fprintf(out, ": %s", snap.Description)
	}
	fmt.Fprintf(out, "\n  version:    %s", shown)
	if shown != d.Version() {
		fmt.Fprintf(out, " (stored; this binary's is %s)", d.Version())
	}
	fmt.Fprintln(out)
	sched := snap.Schedule
	if sched == "" {
		sched = "(manual runs only)"
	}
	fmt.Fprintf(out, "  schedule:   %s (timezone %s, catchup %v)\n", sched, snap.Timezone, snap.Catchup)
	if snap.StartDate != nil {
		fmt.Fprintf(out, "  start date: %s\n", snap.StartDate.Format(time.RFC3339))
	}
	if snap.EndDate != nil {
		fmt.Fprintf(out, "  end date:   %s\n", snap.EndDate.Format(time.RFC3339))
	}
	fmt.Fprintf(out, "  limits:     %d active runs, %d active tasks", snap.MaxActiveRuns, snap.MaxActiveTasks)
	if snap.RunTimeout != "" {
		fmt.Fprintf(out, ", run timeout %s", snap.RunTimeout)
	}
	fmt.Fprintln(out)
	for _, p := range snap.Params {
		def, _ := json.Marshal(p.Default)
		if p.Required {
			def = []byte("(required)")
		}
		kind := paramType(p)
		if allowed := paramAllowed(p); allowed != "" {
			kind += ", " + allowed
		}
		fmt.Fprintf(out, "  param:      %s = %s (%s)  %s\n", p.Name, def, kind, p.Description)
	}
	if len(snap.Tags) > 0 {
		fmt.Fprintf(out, "  tags:       %s\n", strings.Join(snap.Tags, ", "))
	}
	if len(snap.Assets) > 0 {
		rule := "all of"
		if snap.AnyAsset {
			rule = "any of"
		}
		fmt.Fprintf(out, "  assets:     runs on new events of %s %s\n", rule, strings.Join(snap.Assets, ", "))
	}
	if shown == d.Version() { // callbacks are code: only this binary's are known
		var cbs []string
		for _, k := range []task.EventKind{task.EventRunSuccess, task.EventRunFailure} {
			if n := len(d.Callbacks(k)); n > 0 {
				cbs = append(cbs, fmt.Sprintf("%d on %s", n, k))
			}
		}
		for _, dl := range d.Deadlines() {
			cbs = append(cbs, dl.String())
		}
		if len(cbs) > 0 {
			fmt.Fprintf(out, "  callbacks:  %s\n", strings.Join(cbs, "; "))
		}
	}
	fmt.Fprintln(out)
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "TASK\tKIND\tTRIGGER RULE\tRETRIES\tRETRY DELAY\tTIMEOUT\tPRIORITY\tPOOL\tEXECUTOR\tPAST\tDOWNSTREAM")
	for _, t := range snap.Tasks {
		pool := t.Pool
		if pool == "" {
			pool = scheduler.DefaultPool
		}
		timeout := t.Timeout
		if timeout == "" {
			timeout = "-"
		}
		ex := string(t.Executor.Executor)
		if ex == "" {
			ex = "default"
		}
		down := strings.Join(t.Downstream, ", ")
		if down == "" {
			down = "-"
		}
		delay := t.RetryDelay
		if t.Backoff != "" {
			delay += " (" + t.Backoff + ")"
		}
		past := "-"
		switch {
		case t.WaitForDownstream:
			past = "wait_for_downstream"
		case t.DependsOnPast:
			past = "depends_on_past"
		}
		prio := strconv.Itoa(t.Priority)
		if t.WeightRule != task.WeightDownstream {
			prio += " (" + string(t.WeightRule) + ")"
		}
		if t.PoolSlots > 1 {
			pool += fmt.Sprintf(" (%d slots)", t.PoolSlots)
		}
		kind := string(t.Kind)
		switch {
		case t.Setup:
			kind += " (setup)"
		case t.Teardown && t.FailRun:
			kind += " (teardown, fails run)"
		case t.Teardown:
			kind += " (teardown)"
		}
		if t.Map != nil {
			kind += " (mapped)"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, kind, t.TriggerRule, t.Retries, delay, timeout,
			prio, pool, ex, past, down)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := printGroups(out, snap); err != nil {
		return err
	}
	var current *dag.DAG
	if shown == d.Version() {
		current = d
	}
	printMapped(out, snap, current, r.cfg.MaxMapLength)
	for _, t := range snap.Tasks {
		if t.Sensor != nil {
			fmt.Fprintf(out, "\nsensor %s: pokes every %s for at most %s", t.ID, t.Sensor.PokeInterval, t.Sensor.Timeout)
			if t.Sensor.Backoff != "" {
				fmt.Fprintf(out, ", backoff %s", t.Sensor.Backoff)
			}
			if t.Sensor.SoftFail {
				fmt.Fprint(out, ", skipped on timeout (soft fail)")
			}
			fmt.Fprintln(out)
		}
		if len(t.Outlets) > 0 {
			fmt.Fprintf(out, "\n%s updates %s\n", t.ID, strings.Join(t.Outlets, ", "))
		}
		if cur, ok := d.Task(t.ID); ok && shown == d.Version() {
			var cbs []string
			for _, k := range []task.EventKind{task.EventTaskSuccess, task.EventTaskRetry, task.EventTaskFailure} {
				if n := len(task.CallbacksOf(cur, k)); n > 0 {
					cbs = append(cbs, fmt.Sprintf("%d on %s", n, k))
				}
			}
			if len(cbs) > 0 {
				fmt.Fprintf(out, "\n%s callbacks: %s\n", t.ID, strings.Join(cbs, "; "))
			}
		}
	}
	if snap.Doc != "" {
		fmt.Fprintf(out, "\n%s\n", snap.Doc)
	}
	for _, t := range snap.Tasks {
		if t.Doc != "" {
			fmt.Fprintf(out, "\n%s: %s\n", t.ID, t.Doc)
		}
	}
	return nil
}

func cmdDagsTest(ctx context.Context, r *Runner, args []string) error {
	f := newFlags(r, "dags test")
	ld := f.fs.String("logical-date", "", "logical date of the run, in the DAG's timezone unless it has an offset (default: now)")
	confFlag := f.fs.String("conf", "", "run conf, a JSON object")
	maxMap := addMaxMapLengthFlag(f)
	kube := r.addKubeFlags(f)
	pos, err := f.parse(args, "<dag>")
	if err != nil {
		return err
	}
	maxMapLength, err := maxMap()
	if err != nil {
		return err
	}
	d, err := r.dag(pos[0])
	if err != nil {
		return err
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
	if _, err := d.ResolveConf(conf); err != nil {
		return &UsageError{err}
	}
	id := runID("manual", logical)
	if err := noRun(ctx, *f.db, d.ID(), id, logical); err != nil {
		return err
	}
	if err := r.kubePreflight(kube()); err != nil {
		return err
	}
	unlock, err := store.Lock(*f.db)
	if err != nil {
		if errors.Is(err, store.ErrLocked) {
			return fmt.Errorf("%w: a scheduler (trellis serve) runs on this database; use dags trigger --wait instead", err)
		}
		return err
	}
	defer unlock()
	st, err := r.openSynced(ctx, *f.db)
	if err != nil {
		return err
	}
	defer st.Close()
	run, err := createRun(ctx, st, d, task.RunManual, id, logical, conf)
	if err != nil {
		return err
	}
	fmt.Fprintf(r.cfg.Stdout, "Testing DAG %s: run %s (logical date %s)\n", d.ID(), run.RunID, logical.Format(time.RFC3339))
	p := newProgress(r.cfg.Stdout, d)
	e, err := r.newEngine(st, engineConfig{
		observe:      p.observe,
		runs:         func(x store.Run) bool { return x.ID == run.ID },
		exitWhenIdle: true,
		pollInterval: -1,
		noCron:       true,
		kube:         ptr(kube()),
		maxMapLength: maxMapLength,
	})
	if err != nil {
		return err
	}
	if err := e.run(ctx); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted; run %s is left as it was (tasks clear or serve resume it)", run.RunID)
	}
	return r.summary(ctx, st, d.ID(), run.RunID)
}

func cmdDagsTrigger(ctx context.Context, r *Runner, args []string) error {
	f := newFlags(r, "dags trigger")
	confFlag := f.fs.String("conf", "", "run conf, a JSON object")
	ld := f.fs.String("logical-date", "", "logical date of the run, in the DAG's timezone unless it has an offset (default: now)")
	wait := f.fs.Bool("wait", false, "wait until the run ends; run it in this process when no scheduler is running")
	maxMap := addMaxMapLengthFlag(f)
	kube := r.addKubeFlags(f)
	pos, err := f.parse(args, "<dag>")
	if err != nil {
		return err
	}
	maxMapLength, err := maxMap()
	if err != nil {
		return err
	}
	d, err := r.dag(pos[0])
	if err != nil {
		return err
	}
	conf, err := parseConf(*confFlag)
	if err != nil {
		return err
	}
	if _, err := d.ResolveConf(conf); err != nil {
		return &UsageError{err}
	}
	logical := time.Now().UTC()
	if *ld != "" {
		if logical, err = parseDateIn("logical-date", *ld, d.Location()); err != nil {
			return err
		}
		logical = logical.UTC()
	}
	id := runID("manual", logical)
	if err := noRun(ctx, *f.db, d.ID(), id, logical); err != nil {
		return err
	}
	// Without --wait the run is left to serve: check the options, but
	// contact no cluster.
	if *wait {
		err = r.kubePreflight(kube())
	} else {
		_, err = kube().check()
	}
	if err != nil {
		return err
	}
	st, err := r.openSynced(ctx, *f.db)
	if err != nil {
		return err
	}
	defer st.Close()
	run, err := createRun(ctx, st, d, task.RunManual, id, logical, conf)
	r.audit(ctx, st, "trigger", d.ID(), id, "", string(conf), err)
	if err != nil {
		return err
	}
	fmt.Fprintf(r.cfg.Stdout, "Created run %s of DAG %s (queued)\n", run.RunID, d.ID())
	if !*wait {
		return nil
	}
	unlock, err := store.Lock(*f.db)
	if err == nil {
		// No scheduler runs: run it here.
		defer unlock()
		p := newProgress(r.cfg.Stdout, d)
		e, err := r.newEngine(st, engineConfig{observe: p.observe, runs: func(x store.Run) bool { return x.ID == run.ID },
			exitWhenIdle: true, pollInterval: -1, noCron: true, kube: ptr(kube()), maxMapLength: maxMapLength})
		if err != nil {
			return err
		}
		if err := e.run(ctx); err != nil {
			return err
		}
	} else if errors.Is(err, store.ErrLocked) {
		fmt.Fprintln(r.cfg.Stdout, "A scheduler runs on this database; waiting for the run to end.")
		if err := waitRun(ctx, st, run.ID); err != nil {
			return err
		}
	} else {
		return err
	}
	return r.summary(ctx, st, d.ID(), run.RunID)
}

// waitRun waits until a run run by another process ends, watching the database's
// data version.
func waitRun(ctx context.Context, st *store.Store, id int64) error {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		run, err := st.RunByID(ctx, id)
		if err != nil {
			return err
		}
		if run.State.Finished() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// summary prints a run's task table and returns ErrRunFailed if it failed.
func (r *Runner) summary(ctx context.Context, st *store.Store, dagID, runID string) error {
	run, err := st.Run(ctx, dagID, runID)
	if err != nil {
		return err
	}
	if err := r.printRun(ctx, st, run, defaultMaxInstances); err != nil {
		return err
	}
	if run.State == task.RunFailed {
		return fmt.Errorf("dag %q run %q: %w", dagID, runID, ErrRunFailed)
	}
	if !run.State.Finished() {
		return fmt.Errorf("dag %q run %q is still %s", dagID, runID, run.State)
	}
	return nil
}

// noRun is a usage error when the run exists already; it reads without writing.
func noRun(ctx context.Context, db, dagID, runID string, logical time.Time) error {
	st, err := openRead(ctx, db)
	if err != nil || st == nil {
		return err
	}
	defer st.Close()
	_, err = st.Run(ctx, dagID, runID)
	switch {
	case err == nil:
		return usagef("dag %q: a run at logical date %s exists already; pick another --logical-date or use tasks clear", dagID, logical.Format(time.RFC3339))
	case errors.Is(err, store.ErrNotFound):
		return nil
	}
	return err
}
