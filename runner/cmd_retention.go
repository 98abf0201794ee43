package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/trellisdag/trellis/internal/runs"
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
	err = runs.Delete(ctx, st, run)
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
	s, err := deleteOldRuns(ctx, st, dagID, before, nil)
	return s.deleted, err
}

// cleanStats is what one clean did.
type cleanStats struct {
	before  time.Time // runs whose logical date is before this were deleted
	deleted int       // runs deleted
	// longestDelete is the longest DeleteRun of the clean: its few small write
	// transactions and the read before them. It bounds from above how long the
	// clean held the store's one writer connection (and so delayed the
	// scheduler's commits) at a time.
	longestDelete time.Duration
	took          time.Duration // the whole clean
}

// deleteOldRuns deletes the finished runs before before (of dagID when set)
// cleanBatch at a time, each run in its own few small transactions (see
// store.DeleteRun), so that the scheduler's commits go in between. timed, when
// set, is called with the duration of every DeleteRun.
func deleteOldRuns(ctx context.Context, st *store.Store, dagID string, before time.Time, timed func(time.Duration)) (s cleanStats, err error) {
	s.before = before
	start := time.Now()
	defer func() { s.took = time.Since(start) }() // s is the result
	for {
		old, err := st.OldRuns(ctx, dagID, before, cleanBatch)
		if err != nil {
			return s, fmt.Errorf("find the finished runs before %s: %w", before.UTC().Format(time.RFC3339), err)
		}
		if len(old) == 0 {
			return s, nil
		}
		deleted := 0
		for _, run := range old {
			t0 := time.Now()
			err := runs.Delete(ctx, st, run)
			took := time.Since(t0)
			s.longestDelete = max(s.longestDelete, took)
			if timed != nil {
				timed(took)
			}
			if errors.Is(err, store.ErrRunActive) {
				continue // cleared meanwhile: it is no longer history
			}
			if err != nil {
				return s, err
			}
			deleted++
		}
		if deleted == 0 {
			return s, nil // every run of the batch became active again
		}
		s.deleted += deleted
	}
}

// retentionInterval is how often serve --retention cleans after the clean at
// start.
const retentionInterval = time.Hour

// retention is serve --retention: it deletes the finished runs (of every DAG)
// whose logical date is older than age, as db clean --before does, beside the
// scheduler.
type retention struct {
	st  *store.Store
	age time.Duration
	now func() time.Time // the clock: time.Now in serve, a fake one in the soak benchmark
	log *slog.Logger
	// timed, when set, is called with the duration of every DeleteRun (the soak
	// benchmark's distribution); nil in serve.
	timed func(time.Duration)
}

// clean deletes the finished runs older than age, logs what it did (or its
// error, unless ctx ended) and returns it.
func (c *retention) clean(ctx context.Context) (cleanStats, error) {
	before := c.now().Add(-c.age)
	s, err := deleteOldRuns(ctx, c.st, "", before, c.timed)
	switch {
	case err != nil && ctx.Err() == nil:
		c.log.Error("retention", "before", before.UTC().Format(time.RFC3339), "deleted", s.deleted, "err", err)
	case s.deleted > 0:
		c.log.Info("retention: deleted old runs", "before", before.UTC().Format(time.RFC3339), "deleted", s.deleted,
			"took", s.took.String(), "longest_delete", s.longestDelete.String())
	}
	if err != nil {
		return s, fmt.Errorf("retention: %w", err)
	}
	return s, nil
}

// loop cleans at every tick until ctx ends.
func (c *retention) loop(ctx context.Context, tick <-chan time.Time) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
			c.clean(ctx) // logged; the next tick tries again
		}
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
