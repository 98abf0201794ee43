package runner

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/trellisdag/trellis/internal/runs"
	"github.com/trellisdag/trellis/internal/store"
	"github.com/trellisdag/trellis/task"
)

func cmdRunsList(ctx context.Context, r *Runner, args []string) error {
	f := newFlags(r, "runs list")
	state := f.fs.String("state", "", "only runs in this state (queued, running, success, failed)")
	limit := f.fs.Int("limit", 25, "at most this many runs")
	pos, err := f.parse(args, "<dag>")
	if err != nil {
		return err
	}
	if _, err := r.dag(pos[0]); err != nil {
		return err
	}
	filter := store.RunFilter{DAGID: pos[0], Limit: *limit}
	if *state != "" {
		s := task.RunState(*state)
		switch s {
		case task.RunQueued, task.RunRunning, task.RunSuccess, task.RunFailed:
		default:
			return usagef("runs list: --state %q: want queued, running, success or failed", *state)
		}
		filter.States = []task.RunState{s}
	}
	if *limit <= 0 {
		return usagef("runs list: --limit %d: must be positive", *limit)
	}
	st, err := openRead(ctx, *f.db)
	if err != nil || st == nil {
		return err
	}
	defer st.Close()
	runs, err := st.Runs(ctx, filter)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(r.cfg.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "RUN\tTYPE\tSTATE\tLOGICAL DATE\tSTARTED\tDURATION")
	for _, run := range runs {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", run.RunID, run.Type, run.State, run.LogicalDate.Format(time.RFC3339),
			fmtTime(run.Started), fmtDuration(run.Started, run.Ended))
	}
	return w.Flush()
}

// fmtTime prints a moment in UTC with its zone, like the logical dates beside
// it ("-" for none).
func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func fmtDuration(a, b time.Time) string {
	if a.IsZero() || b.IsZero() {
		return "-"
	}
	return round(b.Sub(a)).String()
}

// openForRun finds a DAG's run read-only first, so that a missing database or
// run writes nothing, then opens the database for writing.
func (r *Runner) openForRun(ctx context.Context, db, dagID, runID string) (*store.Store, store.Run, error) {
	ro, err := openRead(ctx, db)
	if err != nil {
		return nil, store.Run{}, err
	}
	run, err := findRun(ctx, ro, dagID, runID)
	if ro != nil {
		ro.Close()
	}
	if err != nil {
		return nil, store.Run{}, err
	}
	st, err := r.openWrite(ctx, db)
	if err != nil {
		return nil, store.Run{}, err
	}
	return st, run, nil
}

// findRun returns a DAG's run by its id, or its newest run (by logical date)
// for "latest"; a run that does not exist is a usage error.
func findRun(ctx context.Context, st *store.Store, dagID, runID string) (store.Run, error) {
	if st == nil {
		return store.Run{}, usagef("dag %q has no run %q (the database has no runs)", dagID, runID)
	}
	if runID == "latest" {
		runs, err := st.Runs(ctx, store.RunFilter{DAGID: dagID, Limit: 1})
		if err != nil {
			return store.Run{}, err
		}
		if len(runs) == 0 {
			return store.Run{}, usagef("dag %q has no run yet, so no latest run", dagID)
		}
		return runs[0], nil
	}
	run, err := st.Run(ctx, dagID, runID)
	if errors.Is(err, store.ErrNotFound) {
		return store.Run{}, usagef("dag %q has no run %q (see runs list %s)", dagID, runID, dagID)
	}
	return run, err
}

func cmdRunsShow(ctx context.Context, r *Runner, args []string) error {
	f := newFlags(r, "runs show")
	maxInst := f.fs.Int("max-instances", defaultMaxInstances, "instances listed under each mapped task (those not succeeded first); 0 lists all")
	pos, err := f.parse(args, "<dag>", "<run>")
	if err != nil {
		return err
	}
	if *maxInst < 0 {
		return usagef("runs show: --max-instances %d: want 0 (all) or more", *maxInst)
	}
	if _, err := r.dag(pos[0]); err != nil {
		return err
	}
	st, err := openRead(ctx, *f.db)
	if err != nil {
		return err
	}
	if st != nil {
		defer st.Close()
	}
	run, err := findRun(ctx, st, pos[0], pos[1])
	if err != nil {
		return err
	}
	return r.printRun(ctx, st, run, *maxInst)
}

// defaultMaxInstances is how many instances of a mapped task runs show (and
// the summary of dags test) lists.
const defaultMaxInstances = 20

// instanceStates is the order in which the per-state counts of a mapped task
// are printed: Airflow's order for its summary state.
var instanceStates = []task.State{task.StateFailed, task.StateUpstreamFailed, task.StateUpForRetry, task.StateQueued,
	task.StateScheduled, task.StateDeferred, task.StateRunning, task.StateNone, task.StateSuccess, task.StateSkipped, task.StateRemoved}

// stateCounts prints counts as "4 success, 1 failed", in instanceStates'
// order (states it does not know last, by name).
func stateCounts(counts map[task.State]int) string {
	var parts []string
	seen := map[task.State]bool{}
	for _, s := range instanceStates {
		seen[s] = true
		if counts[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
		}
	}
	var other []string
	for s, n := range counts {
		if !seen[s] && n > 0 {
			other = append(other, fmt.Sprintf("%d %s", n, s))
		}
	}
	slices.Sort(other)
	return strings.Join(append(parts, other...), ", ")
}

// shownInstances picks at most limit (0: all) of a mapped task's instances,
// those that did not succeed first, and returns them by map index.
func shownInstances(tis []store.TaskInstance, limit int) []store.TaskInstance {
	if limit == 0 || len(tis) <= limit {
		return tis
	}
	rank := func(s task.State) int {
		switch s {
		case task.StateSuccess, task.StateSkipped, task.StateRemoved:
			return 1
		}
		return 0
	}
	picked := slices.Clone(tis)
	slices.SortStableFunc(picked, func(a, b store.TaskInstance) int { return rank(a.State) - rank(b.State) })
	picked = picked[:limit]
	slices.SortFunc(picked, func(a, b store.TaskInstance) int {
		_, i := task.ParseInstanceID(a.TaskID)
		_, j := task.ParseInstanceID(b.TaskID)
		return i - j
	})
	return picked
}

// printRun prints a run's header and a table of its task instances in DAG
// order. A mapped task is one line with its summary state and a count per
// state, followed by at most maxInstances (0: all) of its instances.
func (r *Runner) printRun(ctx context.Context, st *store.Store, run store.Run, maxInstances int) error {
	tis, err := st.TaskInstances(ctx, run.ID)
	if err != nil {
		return err
	}
	out := r.cfg.Stdout
	fmt.Fprintf(out, "\nRun %s of %s: %s", run.RunID, run.DAGID, run.State)
	if d := fmtDuration(run.Started, run.Ended); d != "-" {
		fmt.Fprintf(out, " in %s", d)
	}
	fmt.Fprintf(out, "\n  logical date %s, data interval [%s, %s)\n", run.LogicalDate.Format(time.RFC3339),
		run.IntervalStart.Format(time.RFC3339), run.IntervalEnd.Format(time.RFC3339))
	if run.DAGVersion != "" {
		fmt.Fprintf(out, "  DAG version %s", run.DAGVersion)
		if d, err := r.dag(run.DAGID); err == nil && d.Version() != run.DAGVersion {
			fmt.Fprintf(out, " (this binary's is %s: dags show %s --version %s prints the one the run has)", d.Version(), run.DAGID, run.DAGVersion)
		}
		fmt.Fprintln(out)
	}
	fmt.Fprintln(out)
	byID := map[string]store.TaskInstance{}
	instances := map[string][]store.TaskInstance{} // a mapped task's instances, by map index
	for _, ti := range tis {
		if base, k := task.ParseInstanceID(ti.TaskID); k >= 0 {
			instances[base] = append(instances[base], ti)
			continue
		}
		byID[ti.TaskID] = ti
	}
	for _, list := range instances {
		slices.SortFunc(list, func(a, b store.TaskInstance) int {
			_, i := task.ParseInstanceID(a.TaskID)
			_, j := task.ParseInstanceID(b.TaskID)
			return i - j
		})
	}
	var order []string
	var waiting map[string]string
	known := map[string]bool{}
	if d, err := r.dag(run.DAGID); err == nil {
		for _, t := range d.Tasks() {
			order, known[t.ID()] = append(order, t.ID()), true
		}
		if waiting, err = runs.Waiting(ctx, st, d, run, tis); err != nil {
			return err
		}
	}
	listed := map[string]bool{}
	for _, ti := range tis { // tasks the run has but the DAG lost, last
		id, _ := task.ParseInstanceID(ti.TaskID)
		if !known[id] && !listed[id] {
			order, listed[id] = append(order, id), true
		}
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "TASK\tSTATE\tTRY\tDURATION\tEXIT\tRESULT / ERROR")
	removed := func(id string, detail string) string {
		if len(known) > 0 && !known[id] {
			return "(removed from the DAG) " + detail
		}
		return detail
	}
	row := func(id string, ti store.TaskInstance, base string) {
		exit := "-"
		if ti.ExitCode != nil {
			exit = strconv.Itoa(*ti.ExitCode)
		}
		detail := ti.Error
		if why := waiting[id]; why != "" && detail == "" {
			detail = "waiting: " + why
		}
		if ti.State == task.StateSuccess {
			if v, ok, err := st.XCom(ctx, run.ID, id); err == nil && ok {
				detail = preview(string(v), 60)
			}
		}
		if ti.State != task.StateRemoved {
			detail = removed(base, detail)
		}
		fmt.Fprintf(w, "%s\t%s\t%d/%d\t%s\t%s\t%s\n", id, ti.State, ti.Try, ti.MaxTries, fmtDuration(ti.Started, ti.Ended), exit, preview(detail, 120))
	}
	for _, id := range order {
		if ti, ok := byID[id]; ok {
			row(id, ti, id)
		}
		list := instances[id]
		if len(list) == 0 {
			continue
		}
		counts := map[task.State]int{}
		var first, last time.Time
		for _, ti := range list {
			counts[ti.State]++
			if !ti.Started.IsZero() && (first.IsZero() || ti.Started.Before(first)) {
				first = ti.Started
			}
			if ti.Ended.After(last) {
				last = ti.Ended
			}
		}
		state, _ := task.SummaryState(counts)
		dur := "-"
		if counts[task.StateRunning]+counts[task.StateQueued]+counts[task.StateScheduled]+counts[task.StateNone]+
			counts[task.StateUpForRetry]+counts[task.StateDeferred] == 0 {
			dur = fmtDuration(first, last)
		}
		detail := "[" + stateCounts(counts) + "]"
		if state == task.StateSuccess {
			if v, ok, err := st.XCom(ctx, run.ID, id); err == nil && ok {
				detail += " " + preview(string(v), 60)
			}
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", id, state, "-", dur, "-", preview(removed(id, detail), 120))
		shown := shownInstances(list, maxInstances)
		for _, ti := range shown {
			row(ti.TaskID, ti, id)
		}
		if n := len(list) - len(shown); n > 0 {
			fmt.Fprintf(w, "%s[…]\t%d more instances of %s not shown (runs show --max-instances 0 lists all)\n", id, n, id)
		}
	}
	return w.Flush()
}

func preview(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n-1] + "…"
	}
	return s
}

func cmdLogs(ctx context.Context, r *Runner, args []string) error {
	f := newFlags(r, "logs")
	try := f.fs.Int("try", 0, "try number (default: the latest)")
	var mi mapIndexFlag
	f.fs.Var(&mi, "map-index", "the instance of a mapped task (its element's index in the list; also written task[N])")
	pos, err := f.parse(args, "<dag>", "<run>", "<task>")
	if err != nil {
		return err
	}
	d, err := r.dag(pos[0])
	if err != nil {
		return err
	}
	arg, err := parseTaskArg("logs", d, pos[2], &mi)
	if err != nil {
		return err
	}
	// A task the DAG no longer has (renamed or removed since) still has its
	// logs in the runs that ran it.
	known := arg.task != nil
	unknown := usagef("dag %q has no task %q", pos[0], arg.base)
	st, err := openRead(ctx, *f.db)
	if err != nil {
		return err
	}
	if st != nil {
		defer st.Close()
	}
	run, err := findRun(ctx, st, pos[0], pos[1])
	if err != nil {
		if !known {
			return unknown
		}
		return err
	}
	if err := checkInstance(ctx, st, "logs", run, arg); err != nil {
		return err
	}
	id := arg.id()
	ti, err := st.TaskInstance(ctx, run.ID, id)
	if err != nil {
		if !known && errors.Is(err, store.ErrNotFound) {
			return unknown
		}
		return fmt.Errorf("logs of %q in run %q: %w", id, run.RunID, err)
	}
	if ti.Try == 0 {
		return usagef("task %q of run %q has no try yet (it is %s)", id, pos[1], ti.State)
	}
	n := *try
	if n == 0 {
		n = ti.Try
	}
	if n < 1 || n > ti.Try {
		return usagef("task %q of run %q has %d tries; --try %d does not exist", id, pos[1], ti.Try, *try)
	}
	// Page by page, so that memory stays bounded whatever the log's size.
	for after, more := int64(0), true; more; {
		var data []byte
		data, after, more, err = st.LogPage(ctx, run.ID, id, n, after, store.MaxLogPage)
		if err != nil {
			return err
		}
		if _, err := r.cfg.Stdout.Write(data); err != nil {
			return err
		}
	}
	return nil
}

// checkInstance checks, in a run, the task instance a command names: a map
// index the run's mapped task has, or a mapped task that is not yet expanded
// when no index is given. Anything else is a usage error naming --map-index.
func checkInstance(ctx context.Context, st *store.Store, cmd string, run store.Run, a taskArg) error {
	if a.task != nil && a.index < 0 && !task.SettingsOf(a.task).Mapped {
		return nil
	}
	if a.task == nil && a.index < 0 {
		return nil
	}
	tis, err := st.Instances(ctx, run.ID, a.base)
	if err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	top := -1
	for _, ti := range tis {
		if _, k := task.ParseInstanceID(ti.TaskID); k > top {
			top = k
		}
		if ti.TaskID == a.id() {
			return nil
		}
	}
	switch {
	case a.index < 0 && len(tis) == 0:
		return nil // not expanded yet, or mapped over an empty list: the task's own row
	case a.index < 0:
		return usagef("%s: task %q is mapped: pass --map-index N (run %q has map indexes 0-%d)", cmd, a.base, run.RunID, top)
	case len(tis) == 0:
		return usagef("%s: --map-index %d: task %q of run %q has no mapped instances (its list is not known yet, or was empty)", cmd, a.index, a.base, run.RunID)
	}
	return usagef("%s: --map-index %d is out of range: task %q of run %q has map indexes 0-%d", cmd, a.index, a.base, run.RunID, top)
}
