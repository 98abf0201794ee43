package runner

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/trellisdag/trellis/internal/store"
)

func cmdRunsDelete(ctx context.Context, r *Runner, args []string) error {
	f := newFlags(r, "runs delete")
	pos, err := f.parse(args, "<dag>", "<run>")
	if err != nil {
		return err
	}
	if _, err := r.dag(pos[0]); err != nil {
		return err
	}
	st, run, err := r.openForRun(ctx, *f.db, pos[0], pos[1])
	if err != nil {
		return err
	}
	defer st.Close()
	err = st.DeleteRun(ctx, run.ID)
	if errors.Is(err, store.ErrRunActive) {
		return &UsageError{err}
	}
	if err != nil {
		return err
	}
	r.audit(ctx, st, "delete_run", run.DAGID, run.RunID, "", "", nil)
	fmt.Fprintf(r.cfg.Stdout, "Deleted run %s of DAG %s with its task instances, tries, logs and results.\n", run.RunID, run.DAGID)
	return nil
}

// cleanBatch is how many runs db clean looks up at a time.
const cleanBatch = 100

func cmdDBClean(ctx context.Context, r *Runner, args []string) error {
	f := newFlags(r, "db clean")
	beforeFlag := f.fs.String("before", "", "delete finished runs whose logical date is before this date (required; UTC unless it has an offset, or with --dag the DAG's timezone)")
	dagID := f.fs.String("dag", "", "only this DAG's runs")
	dry := f.fs.Bool("dry-run", false, "say what would be deleted; delete nothing")
	if _, err := f.parse(args); err != nil {
		return err
	}
	if *beforeFlag == "" {
		return usagef("db clean: --before is required")
	}
	loc := time.UTC
	if *dagID != "" {
		d, err := r.dag(*dagID)
		if err != nil {
			return err
		}
		loc = d.Location()
	}
	before, err := parseDateIn("before", *beforeFlag, loc)
	if err != nil {
		return err
	}
	st, err := r.openWrite(ctx, *f.db)
	if err != nil {
		return err
	}
	defer st.Close()
	n, err := cleanRuns(ctx, st, *dagID, before, *dry)
	if err != nil {
		return err
	}
	verb := "Deleted"
	if *dry {
		verb = "Would delete"
	}
	fmt.Fprintf(r.cfg.Stdout, "%s %d finished run(s) before %s with their task instances, tries, logs and results (the newest finished run of each DAG is kept).\n",
		verb, n, before.UTC().Format(time.RFC3339))
	if !*dry && n > 0 {
		r.audit(ctx, st, "clean", *dagID, "", "", fmt.Sprintf("before %s: %d run(s)", before.UTC().Format(time.RFC3339), n), nil)
	}
	return nil
}

// cleanRuns deletes (or with dry only counts) the finished runs before before,
// each in a few small transactions, and returns how many.
func cleanRuns(ctx context.Context, st *store.Store, dagID string, before time.Time, dry bool) (int, error) {
	if dry {
		return st.CountOldRuns(ctx, dagID, before)
	}
	n := 0
	for {
		runs, err := st.OldRuns(ctx, dagID, before, cleanBatch)
		if err != nil || len(runs) == 0 {
			return n, err
		}
		deleted := 0
		for _, run := range runs {
			err := st.DeleteRun(ctx, run.ID)
			if errors.Is(err, store.ErrRunActive) {
				continue // cleared meanwhile: it is no longer history
			}
			if err != nil {
				return n, err
			}
			deleted++
		}
		if deleted == 0 {
			return n, nil // every run of the batch became active again
		}
		n += deleted
	}
}

// parseAge reads an age as a Go duration (720h) or a number of days (30d).
func parseAge(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("want a positive number of days (30d) or a duration (720h)")
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("want a positive number of days (30d) or a duration (720h)")
	}
	return d, nil
}
