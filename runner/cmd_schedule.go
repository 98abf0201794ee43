package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/internal/runs"
	"github.com/trellisdag/trellis/internal/store"
	"github.com/trellisdag/trellis/scheduler"
	"github.com/trellisdag/trellis/task"
)

func cmdDagsPause(ctx context.Context, r *Runner, args []string) error {
	return setPaused(ctx, r, args, true)
}
func cmdDagsUnpause(ctx context.Context, r *Runner, args []string) error {
	return setPaused(ctx, r, args, false)
}

func setPaused(ctx context.Context, r *Runner, args []string, paused bool) error {
	name := "dags unpause"
	if paused {
		name = "dags pause"
	}
	f := newFlags(r, name)
	pos, err := f.parse(args, "<dag>")
	if err != nil {
		return err
	}
	d, err := r.dag(pos[0])
	if err != nil {
		return err
	}
	st, err := r.openWrite(ctx, *f.db)
	if err != nil {
		return err
	}
	defer st.Close()
	action := "unpause"
	if paused {
		action = "pause"
	}
	err = st.SetPaused(ctx, d.ID(), paused)
	r.audit(ctx, st, action, d.ID(), "", "", "", err)
	if err != nil {
		return err
	}
	if paused {
		fmt.Fprintf(r.cfg.Stdout, "DAG %s is paused: the scheduler creates no runs and starts no tasks for it.\n", d.ID())
	} else {
		fmt.Fprintf(r.cfg.Stdout, "DAG %s is unpaused: missed intervals are created as its catchup setting (%v) says.\n", d.ID(), d.CatchupEnabled())
	}
	return nil
}

// lastInterval reads the DAG's last scheduled interval without writing (nil when
// there is none or no database).
func lastInterval(ctx context.Context, db string, d *dag.DAG) (*dag.DataInterval, bool, error) {
	st, err := openRead(ctx, db)
	if err != nil || st == nil {
		return nil, false, err
	}
	defer st.Close()
	rec, err := st.DAG(ctx, d.ID())
	if errors.Is(err, store.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	if rec.LastIntervalStart.IsZero() && rec.LastIntervalEnd.IsZero() {
		return nil, rec.Paused, nil
	}
	return &dag.DataInterval{Start: rec.LastIntervalStart, End: rec.LastIntervalEnd}, rec.Paused, nil
}

// maxNextCount bounds dags next --count (default 5): the runs are computed and
// printed one by one, but a count of 10^8 kept the command busy for minutes.
const maxNextCount = 10000

func cmdDagsNext(ctx context.Context, r *Runner, args []string) error {
	f := newFlags(r, "dags next")
	count := f.fs.Int("count", 5, "how many runs to show")
	at := f.fs.String("now", "", "pretend it is this moment (default: now), to preview a date such as a DST change")
	pos, err := f.parse(args, "<dag>")
	if err != nil {
		return err
	}
	d, err := r.dag(pos[0])
	if err != nil {
		return err
	}
	if *count < 1 || *count > maxNextCount {
		return usagef("dags next: --count %d: want 1 to %d", *count, maxNextCount)
	}
	now := time.Now()
	if *at != "" {
		if now, err = parseDateIn("now", *at, d.Location()); err != nil {
			return err
		}
	}
	if !d.Scheduled() {
		fmt.Fprintf(r.cfg.Stdout, "DAG %s has no schedule: it runs only when triggered.\n", d.ID())
		return nil
	}
	last, paused, err := lastInterval(ctx, *f.db, d)
	if err != nil {
		return err
	}
	loc := d.Location()
	out := r.cfg.Stdout
	fmt.Fprintf(out, "DAG %s: schedule %s, timezone %s, catchup %v", d.ID(), d.ScheduleString(), loc, d.CatchupEnabled())
	if paused {
		fmt.Fprint(out, " (paused: nothing is created until unpaused)")
	}
	fmt.Fprintln(out)
	if d.CatchupEnabled() {
		if due, first := dueNow(d, last, now); due > 1 {
			more := ""
			if due >= maxDueCount {
				more = "at least "
			}
			fmt.Fprintf(out, "Catchup: %s%d runs are due now (from logical date %s); serve creates them all at once"+
				" (up to the DAG's max active runs run at a time). Set a later start date, catchup off, or pause the DAG first.\n",
				more, due, fmtLocal(first, loc))
		}
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "LOGICAL DATE (INTERVAL START)\tINTERVAL END\tCREATED AT\tLOGICAL DATE IN UTC")
	shown := 0
	for shown < *count {
		iv, ok := d.NextDataInterval(last, now)
		if !ok {
			break
		}
		created := iv.End
		if created.Before(now) {
			created = now
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", fmtLocal(iv.Start, loc), fmtLocal(iv.End, loc),
			fmtLocal(created, loc), iv.Start.UTC().Format("2006-01-02T15:04Z"))
		next := iv
		last = &next
		shown++
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if shown < *count {
		fmt.Fprintln(out, "No further runs (end date reached, or @once done).")
	}
	return nil
}

// logCatchup warns, for every unpaused DAG whose catchup would create more
// than one run at once, how many (serve logs it before it schedules).
func (r *Runner) logCatchup(ctx context.Context, st *store.Store, log *slog.Logger) error {
	now := time.Now()
	for _, d := range r.dags {
		if !d.Scheduled() || !d.CatchupEnabled() {
			continue
		}
		rec, err := st.DAG(ctx, d.ID())
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if rec.Paused {
			continue
		}
		var last *dag.DataInterval
		if !rec.LastIntervalStart.IsZero() || !rec.LastIntervalEnd.IsZero() {
			last = &dag.DataInterval{Start: rec.LastIntervalStart, End: rec.LastIntervalEnd}
		}
		if due, first := dueNow(d, last, now); due > 1 {
			n := strconv.Itoa(due)
			if due >= maxDueCount {
				n = "at least " + n
			}
			log.Warn("catchup: runs are due now and are created at once (up to the DAG's max active runs run at a time); "+
				"pause the DAG, set a later start date or turn catchup off to avoid it", "dag", d.ID(), "runs", n,
				"from", first.UTC().Format(time.RFC3339))
		}
	}
	return nil
}

// maxDueCount bounds how many due intervals dueNow counts.
const maxDueCount = 100000

// dueNow counts the data intervals after last that have ended by now (the runs
// a scheduler with catchup creates at once), at most maxDueCount, and returns
// the first one's start.
func dueNow(d *dag.DAG, last *dag.DataInterval, now time.Time) (int, time.Time) {
	n := 0
	var first time.Time
	for n < maxDueCount {
		iv, ok := d.NextDataInterval(last, now)
		if !ok || iv.End.After(now) {
			break
		}
		if n == 0 {
			first = iv.Start
		}
		n++
		last = &iv
	}
	return n, first
}

func fmtLocal(t time.Time, loc *time.Location) string {
	return t.In(loc).Format("2006-01-02 15:04 MST")
}

func cmdDagsBackfill(ctx context.Context, r *Runner, args []string) error {
	f := newFlags(r, "dags backfill")
	fromFlag := f.fs.String("from", "", "first logical date (in the DAG's timezone unless an offset is given)")
	toFlag := f.fs.String("to", "", "last logical date, included")
	reprocess := f.fs.Bool("reprocess-failed", false, "clear and run again the failed tasks of failed runs in the range")
	maxActive := f.fs.Int("max-active-runs", 0, "runs at once (default: the DAG's max active runs)")
	dryRun := f.fs.Bool("dry-run", false, "print the runs that would be created; write nothing")
	kube := r.addKubeFlags(f)
	pos, err := f.parse(args, "<dag>")
	if err != nil {
		return err
	}
	d, err := r.dag(pos[0])
	if err != nil {
		return err
	}
	if *fromFlag == "" || *toFlag == "" {
		return usagef("dags backfill: --from and --to are required")
	}
	from, err := parseDateIn("from", *fromFlag, d.Location())
	if err != nil {
		return err
	}
	to, err := parseDateIn("to", *toFlag, d.Location())
	if err != nil {
		return err
	}
	if *maxActive < 0 {
		return usagef("dags backfill: --max-active-runs %d: must be positive", *maxActive)
	}
	ivs, err := d.BackfillIntervals(from, to)
	if err != nil {
		return &UsageError{err}
	}
	if len(ivs) == 0 {
		return usagef("dag %q: no interval of schedule %s has a logical date between %s and %s", d.ID(), d.ScheduleString(),
			from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	out := r.cfg.Stdout
	if *dryRun {
		fmt.Fprintf(out, "Backfill of %s would cover %d runs (nothing written):\n", d.ID(), len(ivs))
		for _, iv := range ivs {
			fmt.Fprintf(out, "  %s  [%s, %s)\n", fmtLocal(iv.Start, d.Location()), iv.Start.UTC().Format(time.RFC3339), iv.End.UTC().Format(time.RFC3339))
		}
		return nil
	}
	if err := r.kubePreflight(kube()); err != nil {
		return err
	}
	st, err := r.openSynced(ctx, *f.db)
	if err != nil {
		return err
	}
	defer st.Close()
	track, skipped, err := prepareBackfill(ctx, st, d, ivs, *reprocess)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Backfill of %s: %d intervals, %d to run, %d already done\n", d.ID(), len(ivs), len(track), skipped)
	bar := newBar(out, len(track))
	if len(track) > 0 {
		ids := map[int64]bool{}
		for _, id := range track {
			ids[id] = true
		}
		unlock, lerr := store.Lock(*f.db)
		switch {
		case lerr == nil:
			defer unlock()
			e, err := r.newEngine(st, engineConfig{observe: bar.observe, runs: func(x store.Run) bool { return ids[x.ID] },
				exitWhenIdle: true, pollInterval: -1, noCron: true, maxActiveRuns: *maxActive, kube: ptr(kube())})
			if err != nil {
				return err
			}
			if err := e.run(ctx); err != nil {
				return err
			}
		case errors.Is(lerr, store.ErrLocked):
			fmt.Fprintln(out, "A scheduler runs on this database; it runs the backfill (with the DAG's max active runs). Waiting.")
			for _, id := range track {
				if err := waitRun(ctx, st, id); err != nil {
					return err
				}
			}
		default:
			return lerr
		}
	}
	bar.finish()
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted; run the same command again to resume (runs done are not repeated)")
	}
	var failed []string
	counts := map[task.RunState]int{}
	for _, id := range track {
		run, err := st.RunByID(ctx, id)
		if err != nil {
			return err
		}
		counts[run.State]++
		if run.State == task.RunFailed {
			failed = append(failed, run.RunID)
		}
	}
	fmt.Fprintf(out, "Backfill of %s done: %d succeeded, %d failed, %d already done before.\n", d.ID(),
		counts[task.RunSuccess], counts[task.RunFailed], skipped)
	if len(failed) > 0 {
		fmt.Fprintf(out, "Failed runs: %s\n(rerun with --reprocess-failed)\n", strings.Join(failed, ", "))
		return fmt.Errorf("dag %q: backfill: %d runs %w", d.ID(), len(failed), ErrRunFailed)
	}
	return nil
}

// prepareBackfill creates the runs of the range that do not exist yet (in one
// transaction), requeues failed ones when asked, and returns the runs to follow
// and the number already done.
func prepareBackfill(ctx context.Context, st *store.Store, d *dag.DAG, ivs []dag.DataInterval, reprocess bool) ([]int64, int, error) {
	version := d.Version()
	var track []int64
	var create []store.Run
	skipped := 0
	for _, iv := range ivs {
		existing, err := st.RunsAt(ctx, d.ID(), iv.Start)
		if err != nil {
			return nil, 0, err
		}
		if len(existing) == 0 {
			create = append(create, runs.Record(d, version, runs.Spec{Type: task.RunBackfill, LogicalDate: iv.Start,
				IntervalStart: iv.Start, IntervalEnd: iv.End}, time.Now()))
			continue
		}
		run := existing[len(existing)-1]
		switch {
		case run.State == task.RunSuccess:
			skipped++
		case run.State == task.RunFailed && !reprocess:
			skipped++
		case run.State == task.RunFailed:
			// Its failed and upstream_failed tasks (mapped instances
			// included) run again, through the one clear rule.
			if _, err := runs.Clear(ctx, st, d, run, nil, runs.ClearOptions{FailedOnly: true}); err != nil {
				return nil, 0, err
			}
			track = append(track, run.ID)
		default: // queued or running: follow it
			track = append(track, run.ID)
		}
	}
	seeds := runs.Seeds(d)
	for i := 0; i < len(create); i += 1000 {
		created, err := st.CreateRuns(ctx, []store.RunGroup{{DAGID: d.ID(), Runs: create[i:min(i+1000, len(create))], Tasks: seeds}})
		if err != nil {
			return nil, 0, err
		}
		for _, c := range created {
			track = append(track, c.ID)
		}
	}
	return track, skipped, nil
}

// bar shows a backfill's progress: a redrawn bar on a terminal, a line per
// finished run otherwise.
type bar struct {
	w                       io.Writer
	tty                     bool
	total, ok, failed, done int
}

func newBar(w io.Writer, total int) *bar {
	b := &bar{w: w, total: total}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			b.tty = true
		}
	}
	return b
}

func (b *bar) observe(e scheduler.Event) {
	if e.TaskID != "" || !e.RunState.Finished() {
		return
	}
	b.done++
	if e.RunState == task.RunSuccess {
		b.ok++
	} else {
		b.failed++
	}
	if b.tty {
		b.draw()
		return
	}
	fmt.Fprintf(b.w, "[%d/%d] %s %s\n", b.done, b.total, e.RunID, e.RunState)
}

func (b *bar) draw() {
	const width = 30
	filled := 0
	if b.total > 0 {
		filled = b.done * width / b.total
	}
	fmt.Fprintf(b.w, "\r[%s%s] %d/%d runs: %d succeeded, %d failed", strings.Repeat("#", filled),
		strings.Repeat(".", width-filled), b.done, b.total, b.ok, b.failed)
}

func (b *bar) finish() {
	if b.tty {
		b.draw()
		fmt.Fprintln(b.w)
	}
}
