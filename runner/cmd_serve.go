package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/trellisdag/trellis/internal/store"
)

func cmdServe(ctx context.Context, r *Runner, args []string) error {
	f := newFlags(r, "serve")
	par := f.fs.Int("parallelism", r.cfg.Parallelism, "tries in flight at once")
	untilIdle := f.fs.Bool("until-idle", false, "exit once no run is queued or running (batch jobs, tests)")
	if _, err := f.parse(args); err != nil {
		return err
	}
	if *par <= 0 {
		return usagef("serve: --parallelism %d: must be positive", *par)
	}
	log := slog.New(slog.NewTextHandler(r.cfg.Stderr, nil))
	unlock, err := store.Lock(*f.db)
	if errors.Is(err, store.ErrLocked) {
		log.Info("another scheduler holds the lock on this database; waiting to take over", "db", *f.db)
		unlock, err = store.WaitLock(*f.db)
	}
	if err != nil {
		return err
	}
	defer unlock()
	st, err := r.openWrite(ctx, *f.db)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := r.syncDAGs(ctx, st); err != nil {
		return err
	}
	e, err := r.newEngine(st, engineConfig{parallelism: *par, exitWhenIdle: *untilIdle,
		observe: func(ev schedulerEvent) { logEvent(log, ev) }})
	if err != nil {
		return err
	}
	log.Info("scheduler started", "db", st.Path(), "dags", len(r.dags), "parallelism", *par)
	err = e.run(ctx)
	log.Info("scheduler stopped")
	return err
}

func cmdVersion(_ context.Context, r *Runner, args []string) error {
	f := newFlags(r, "version")
	if _, err := f.parse(args); err != nil {
		return err
	}
	_, err := fmt.Fprintf(r.cfg.Stdout, "trellis %s (schema %d)\n", Version, store.SchemaVersion())
	return err
}
