package runner

import (
	"context"
	"errors"
	"fmt"
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
	pos, err := f.parse(args, "<dag>", "<run>")
	if err != nil {
		return err
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
	return r.printRun(ctx, st, run)
}

// printRun prints a run's header and a table of its task instances in DAG order.
func (r *Runner) printRun(ctx context.Context, st *store.Store, run store.Run) error {
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
	for _, ti := range tis {
		byID[ti.TaskID] = ti
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
	for _, ti := range tis { // tasks the run has but the DAG lost, last
		if !known[ti.TaskID] {
			order = append(order, ti.TaskID)
		}
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "TASK\tSTATE\tTRY\tDURATION\tEXIT\tRESULT / ERROR")
	for _, id := range order {
		ti, ok := byID[id]
		if !ok {
			continue
		}
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
		if len(known) > 0 && !known[id] && ti.State != task.StateRemoved {
			detail = "(removed from the DAG) " + detail
		}
		fmt.Fprintf(w, "%s\t%s\t%d/%d\t%s\t%s\t%s\n", id, ti.State, ti.Try, ti.MaxTries, fmtDuration(ti.Started, ti.Ended), exit, preview(detail, 120))
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
	pos, err := f.parse(args, "<dag>", "<run>", "<task>")
	if err != nil {
		return err
	}
	d, err := r.dag(pos[0])
	if err != nil {
		return err
	}
	// A task the DAG no longer has (renamed or removed since) still has its
	// logs in the runs that ran it.
	_, known := d.Task(pos[2])
	unknown := usagef("dag %q has no task %q", pos[0], pos[2])
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
	ti, err := st.TaskInstance(ctx, run.ID, pos[2])
	if err != nil {
		if !known && errors.Is(err, store.ErrNotFound) {
			return unknown
		}
		return err
	}
	if ti.Try == 0 {
		return usagef("task %q of run %q has no try yet (it is %s)", pos[2], pos[1], ti.State)
	}
	n := *try
	if n == 0 {
		n = ti.Try
	}
	if n < 1 || n > ti.Try {
		return usagef("task %q of run %q has %d tries; --try %d does not exist", pos[2], pos[1], ti.Try, *try)
	}
	// Page by page, so that memory stays bounded whatever the log's size.
	for after, more := int64(0), true; more; {
		var data []byte
		data, after, more, err = st.LogPage(ctx, run.ID, pos[2], n, after, store.MaxLogPage)
		if err != nil {
			return err
		}
		if _, err := r.cfg.Stdout.Write(data); err != nil {
			return err
		}
	}
	return nil
}
