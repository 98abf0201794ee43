package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/trellisdag/trellis/storage"
	"github.com/trellisdag/trellis/task"
)

// DAG is storage.DAG.
type DAG = storage.DAG

// Run is storage.Run.
type Run = storage.Run

// TaskInstance is storage.TaskInstance.
type TaskInstance = storage.TaskInstance

// Try is storage.Try.
type Try = storage.Try

// PutDAG records a DAG's definition snapshot, keeping its paused flag and last
// interval.
func (s *Store) PutDAG(ctx context.Context, id string, definition []byte, paused bool) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO dags (dag_id, paused, definition, updated_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (dag_id) DO UPDATE SET definition = excluded.definition, updated_at = excluded.updated_at
			WHERE dags.definition IS DISTINCT FROM excluded.definition`,
			id, paused, string(definition), time.Now().UnixMicro())
		return err
	})
}

// SetPaused pauses or unpauses a DAG. The DAG is created if it has no record yet.
func (s *Store) SetPaused(ctx context.Context, id string, paused bool) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO dags (dag_id, paused, updated_at) VALUES (?, ?, ?)
			ON CONFLICT (dag_id) DO UPDATE SET paused = excluded.paused, updated_at = excluded.updated_at`,
			id, paused, time.Now().UnixMicro())
		return err
	})
}

// SetLastInterval records the data interval of the latest scheduled run of a DAG.
func (s *Store) SetLastInterval(ctx context.Context, id string, start, end time.Time) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO dags (dag_id, last_interval_start, last_interval_end, updated_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (dag_id) DO UPDATE SET last_interval_start = excluded.last_interval_start,
			last_interval_end = excluded.last_interval_end, updated_at = excluded.updated_at`,
			id, micros(start), micros(end), time.Now().UnixMicro())
		return err
	})
}

// DAG returns a DAG's record, or ErrNotFound.
func (s *Store) DAG(ctx context.Context, id string) (DAG, error) {
	var d DAG
	var def string
	var ls, le sql.NullInt64
	var up int64
	err := s.r.QueryRowContext(ctx, `SELECT dag_id, paused, definition, last_interval_start, last_interval_end, updated_at
		FROM dags WHERE dag_id = ?`, id).Scan(&d.ID, &d.Paused, &def, &ls, &le, &up)
	if errors.Is(err, sql.ErrNoRows) {
		return DAG{}, fmt.Errorf("dag %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return DAG{}, fmt.Errorf("dag %q: %w", id, err)
	}
	d.Definition = json.RawMessage(def)
	d.LastIntervalStart, d.LastIntervalEnd = fromMicros(ls), fromMicros(le)
	d.Updated = time.UnixMicro(up).UTC()
	return d, nil
}

// TaskSeed is storage.TaskSeed.
type TaskSeed = storage.TaskSeed

// CreateRun inserts a run and its task instances (state none) in one transaction
// and returns the run with its ID set. A run with the same DAG and run id is
// ErrExists.
func (s *Store) CreateRun(ctx context.Context, r Run, tasks []TaskSeed) (Run, error) {
	var out Run
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = s.createRunTx(ctx, tx, r, tasks)
		return err
	})
	if err != nil {
		return Run{}, err
	}
	return out, nil
}

// Reconcile is storage.Reconcile.
type Reconcile = storage.Reconcile

// removedWhileInFlight is the error of a try that was in flight when its task
// was removed from the DAG's definition.
const removedWhileInFlight = "the task was removed from the DAG's definition while this try was in flight"

// ReconcileRun brings a run to another definition of its DAG, as Airflow's
// verify_integrity does after a redeploy (see Reconcile), records the version
// the run now runs with and bumps the run's version, so that every reader
// reloads the run. It returns how many instances it added.
func (s *Store) ReconcileRun(ctx context.Context, run int64, rc Reconcile) (added int, err error) {
	err = s.tx(ctx, func(tx *sql.Tx) error {
		added = 0
		for _, t := range rc.Add {
			res, err := tx.ExecContext(ctx, `INSERT INTO task_instances (run, task_id, state, max_tries) VALUES (?, ?, 'none', ?)
				ON CONFLICT (run, task_id) DO NOTHING`, run, t.TaskID, t.MaxTries)
			if err != nil {
				return fmt.Errorf("add task %q to run #%d: %w", t.TaskID, run, err)
			}
			n, _ := res.RowsAffected()
			added += int(n)
		}
		now := time.Now().UnixMicro()
		for _, id := range rc.Remove {
			var state string
			var try int
			err := tx.QueryRowContext(ctx, `SELECT state, try_number FROM task_instances WHERE run = ? AND task_id = ?`, run, id).Scan(&state, &try)
			if errors.Is(err, sql.ErrNoRows) {
				continue
			}
			if err != nil {
				return fmt.Errorf("remove task %q from run #%d: %w", id, run, err)
			}
			from := task.State(state)
			if from == task.StateRemoved {
				continue
			}
			if err := task.CheckTransition(from, task.StateRemoved); err != nil {
				return fmt.Errorf("remove task %q from run #%d: %w", id, run, err)
			}
			msg := ""
			if from.Active() || from == task.StateDeferred {
				msg = removedWhileInFlight
				if _, err := tx.ExecContext(ctx, `UPDATE task_tries SET state = 'failed', ended_at = ?, error = ?
					WHERE run = ? AND task_id = ? AND try_number = ? AND ended_at IS NULL`, now, msg, run, id, try); err != nil {
					return fmt.Errorf("remove task %q from run #%d: end its try: %w", id, run, err)
				}
			}
			if _, err := tx.ExecContext(ctx, `UPDATE task_instances SET state = 'removed', next_retry_at = NULL,
				ended_at = CASE WHEN ? != '' THEN ? ELSE ended_at END, error = CASE WHEN ? != '' THEN ? ELSE error END
				WHERE run = ? AND task_id = ?`, msg, now, msg, msg, run, id); err != nil {
				return fmt.Errorf("remove task %q from run #%d: %w", id, run, err)
			}
		}
		for _, t := range rc.Restore {
			if _, err := tx.ExecContext(ctx, `UPDATE task_instances SET state = 'none', max_tries = try_number + ?, next_retry_at = NULL,
				error = '' WHERE run = ? AND task_id = ? AND state = 'removed'`, t.MaxTries, run, t.TaskID); err != nil {
				return fmt.Errorf("restore task %q in run #%d: %w", t.TaskID, run, err)
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE dag_runs SET version = version + 1, dag_version = ? WHERE id = ?`, rc.DAGVersion, run); err != nil {
			return fmt.Errorf("reconcile run #%d: %w", run, err)
		}
		return nil
	})
	return added, err
}

// RunGroup is storage.RunGroup.
type RunGroup = storage.RunGroup

// CreateRuns inserts the runs of every group, each with its task instances, in
// one transaction; a run that exists already is skipped (created lists the runs
// inserted).
func (s *Store) CreateRuns(ctx context.Context, groups []RunGroup) (created []Run, err error) {
	err = s.tx(ctx, func(tx *sql.Tx) error {
		created = created[:0]
		for _, g := range groups {
			for _, r := range g.Runs {
				out, err := s.createRunTx(ctx, tx, r, g.Tasks)
				if errors.Is(err, ErrExists) {
					continue
				}
				if err != nil {
					return err
				}
				created = append(created, out)
			}
			if !g.Advance || len(g.Runs) == 0 {
				continue
			}
			last := g.Runs[len(g.Runs)-1]
			if _, err := tx.ExecContext(ctx, `INSERT INTO dags (dag_id, last_interval_start, last_interval_end, updated_at) VALUES (?, ?, ?, ?)
				ON CONFLICT (dag_id) DO UPDATE SET last_interval_start = excluded.last_interval_start,
				last_interval_end = excluded.last_interval_end, updated_at = excluded.updated_at`,
				g.DAGID, micros(last.IntervalStart), micros(last.IntervalEnd), time.Now().UnixMicro()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return created, nil
}

func (s *Store) createRunTx(ctx context.Context, tx *sql.Tx, r Run, tasks []TaskSeed) (Run, error) {
	if r.Created.IsZero() {
		r.Created = time.Now().UTC()
	}
	var conf any
	if len(r.Conf) > 0 {
		conf = string(r.Conf)
	}
	err := tx.StmtContext(ctx, s.stmts[insertRun]).QueryRowContext(ctx, r.DAGID, r.RunID, string(r.Type), string(r.State), r.LogicalDate.UnixMicro(), r.IntervalStart.UnixMicro(),
		r.IntervalEnd.UnixMicro(), conf, r.Created.UnixMicro(), r.DAGVersion).Scan(&r.ID)
	if errors.Is(err, sql.ErrNoRows) { // ON CONFLICT DO NOTHING returned no row
		return Run{}, fmt.Errorf("run %q of dag %q: %w", r.RunID, r.DAGID, ErrExists)
	}
	if err != nil {
		return Run{}, err
	}
	rows := make([]tiRow, 0, len(tasks))
	for _, t := range tasks {
		rows = append(rows, tiRow{Task: t.TaskID, MaxTries: t.MaxTries})
	}
	if _, err = s.execJSON(ctx, tx, bulkInsertTI, rows, r.ID); err != nil {
		return Run{}, err
	}
	return r, nil
}

// DAGs returns the records of every DAG the store knows.
func (s *Store) DAGs(ctx context.Context) ([]DAG, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT dag_id, paused, definition, last_interval_start, last_interval_end, updated_at
		FROM dags ORDER BY dag_id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []DAG
	for rows.Next() {
		var d DAG
		var def string
		var ls, le sql.NullInt64
		var up int64
		if err := rows.Scan(&d.ID, &d.Paused, &def, &ls, &le, &up); err != nil {
			return nil, err
		}
		d.Definition = json.RawMessage(def)
		d.LastIntervalStart, d.LastIntervalEnd = fromMicros(ls), fromMicros(le)
		d.Updated = time.UnixMicro(up).UTC()
		out = append(out, d)
	}
	return out, rows.Err()
}

// RunsAt returns the runs of a DAG at a logical date, of any type.
func (s *Store) RunsAt(ctx context.Context, dagID string, logical time.Time) ([]Run, error) {
	return s.queryRuns(ctx, `SELECT `+runColumns+` FROM dag_runs WHERE dag_id = ? AND logical_date = ? ORDER BY id`,
		dagID, logical.UnixMicro())
}

// PreviousRun returns the run of a DAG with the latest logical date before the
// given one (ok false when there is none). With state set, only runs in that state
// count.
func (s *Store) PreviousRun(ctx context.Context, dagID string, before time.Time, state task.RunState) (Run, bool, error) {
	q := `SELECT ` + runColumns + ` FROM dag_runs WHERE dag_id = ? AND logical_date < ?`
	args := []any{dagID, before.UnixMicro()}
	if state != "" {
		q += ` AND state = ?`
		args = append(args, string(state))
	}
	r, err := scanRun(s.r.QueryRowContext(ctx, q+` ORDER BY logical_date DESC, id DESC LIMIT 1`, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return Run{}, false, nil
	}
	if err != nil {
		return Run{}, false, err
	}
	return r, true, nil
}

const runColumns = `id, dag_id, run_id, run_type, state, logical_date, interval_start, interval_end, conf,
	created_at, started_at, ended_at, version, dag_version`

func scanRun(sc interface{ Scan(...any) error }) (Run, error) {
	var r Run
	var typ, state string
	var ld, is, ie, cr int64
	var conf sql.NullString
	var st, en sql.NullInt64
	if err := sc.Scan(&r.ID, &r.DAGID, &r.RunID, &typ, &state, &ld, &is, &ie, &conf, &cr, &st, &en, &r.Version, &r.DAGVersion); err != nil {
		return Run{}, err
	}
	r.Type, r.State = task.RunType(typ), task.RunState(state)
	r.LogicalDate, r.IntervalStart, r.IntervalEnd = time.UnixMicro(ld).UTC(), time.UnixMicro(is).UTC(), time.UnixMicro(ie).UTC()
	if conf.Valid {
		r.Conf = json.RawMessage(conf.String)
	}
	r.Created, r.Started, r.Ended = time.UnixMicro(cr).UTC(), fromMicros(st), fromMicros(en)
	return r, nil
}

// Run returns the run of a DAG with the given run id, or ErrNotFound.
func (s *Store) Run(ctx context.Context, dagID, runID string) (Run, error) {
	r, err := scanRun(s.r.QueryRowContext(ctx, `SELECT `+runColumns+` FROM dag_runs WHERE dag_id = ? AND run_id = ?`, dagID, runID))
	if errors.Is(err, sql.ErrNoRows) {
		return Run{}, fmt.Errorf("run %q of dag %q: %w", runID, dagID, ErrNotFound)
	}
	return r, err
}

// RunByID returns the run with the given key, or ErrNotFound.
func (s *Store) RunByID(ctx context.Context, id int64) (Run, error) {
	r, err := scanRun(s.r.QueryRowContext(ctx, `SELECT `+runColumns+` FROM dag_runs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Run{}, fmt.Errorf("run #%d: %w", id, ErrNotFound)
	}
	return r, err
}

// RunFilter is storage.RunFilter.
type RunFilter = storage.RunFilter

// whereOf returns the filter's WHERE clause (without Limit and Offset) and its
// arguments.
func whereOf(f RunFilter) (string, []any) {
	q := ` WHERE 1=1`
	var args []any
	if f.DAGID != "" {
		q += ` AND dag_id = ?`
		args = append(args, f.DAGID)
	}
	if len(f.States) > 0 {
		q += ` AND state IN (?` + strings.Repeat(",?", len(f.States)-1) + `)`
		for _, st := range f.States {
			args = append(args, string(st))
		}
	}
	if !f.Since.IsZero() {
		q += ` AND logical_date >= ?`
		args = append(args, f.Since.UnixMicro())
	}
	if !f.Until.IsZero() {
		q += ` AND logical_date < ?`
		args = append(args, f.Until.UnixMicro())
	}
	return q, args
}

// Runs returns runs, newest logical date first.
func (s *Store) Runs(ctx context.Context, f RunFilter) ([]Run, error) {
	where, args := whereOf(f)
	q := `SELECT ` + runColumns + ` FROM dag_runs` + where
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	q += ` ORDER BY logical_date DESC, id DESC LIMIT ? OFFSET ?`
	args = append(args, limit, f.Offset)
	return s.queryRuns(ctx, q, args...)
}

// queryRuns runs a query that selects runColumns.
func (s *Store) queryRuns(ctx context.Context, q string, args ...any) ([]Run, error) {
	return queryAll(ctx, s.r, scanRun, q, args...)
}

// queryAll runs a query on the readers and scans every row with scan.
func queryAll[T any](ctx context.Context, db *sql.DB, scan func(interface{ Scan(...any) error }) (T, error), q string, args ...any) ([]T, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// ActiveRuns returns every queued or running run, oldest first.
func (s *Store) ActiveRuns(ctx context.Context) ([]Run, error) {
	return s.queryRuns(ctx, `SELECT `+runColumns+` FROM dag_runs WHERE state IN ('queued', 'running') ORDER BY id`)
}

const tiColumns = `run, task_id, state, try_number, max_tries, started_at, ended_at, next_retry_at, exit_code, error, executor, host, pod, pokes`

func scanTI(sc interface{ Scan(...any) error }) (TaskInstance, error) {
	var ti TaskInstance
	var state string
	var st, en, nr, ec sql.NullInt64
	if err := sc.Scan(&ti.Run, &ti.TaskID, &state, &ti.Try, &ti.MaxTries, &st, &en, &nr, &ec, &ti.Error, &ti.Executor, &ti.Host, &ti.Pod, &ti.Pokes); err != nil {
		return TaskInstance{}, err
	}
	ti.State = task.State(state)
	ti.Started, ti.Ended, ti.NextRetry, ti.ExitCode = fromMicros(st), fromMicros(en), fromMicros(nr), intPtr(ec)
	return ti, nil
}

// TaskInstances returns the task instances of a run, by task id.
func (s *Store) TaskInstances(ctx context.Context, run int64) ([]TaskInstance, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+tiColumns+` FROM task_instances WHERE run = ? ORDER BY task_id`, run)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []TaskInstance
	for rows.Next() {
		ti, err := scanTI(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, ti)
	}
	return out, rows.Err()
}

// TaskInstance returns one task instance, or ErrNotFound.
func (s *Store) TaskInstance(ctx context.Context, run int64, taskID string) (TaskInstance, error) {
	ti, err := scanTI(s.r.QueryRowContext(ctx, `SELECT `+tiColumns+` FROM task_instances WHERE run = ? AND task_id = ?`, run, taskID))
	if errors.Is(err, sql.ErrNoRows) {
		return TaskInstance{}, fmt.Errorf("task %q in run #%d: %w", taskID, run, ErrNotFound)
	}
	return ti, err
}

// Tries returns the tries of a task instance, first try first.
func (s *Store) Tries(ctx context.Context, run int64, taskID string) ([]Try, error) {
	return s.queryTries(ctx, `WHERE run = ? AND task_id = ? ORDER BY try_number`, run, taskID)
}

// queryTries selects tries with the given WHERE and ORDER BY clause.
func (s *Store) queryTries(ctx context.Context, where string, args ...any) ([]Try, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT run, task_id, try_number, state, queued_at, started_at, ended_at, exit_code,
		error, executor, host, pod FROM task_tries `+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Try
	for rows.Next() {
		var t Try
		var state string
		var q, st, en, ec sql.NullInt64
		if err := rows.Scan(&t.Run, &t.TaskID, &t.Try, &state, &q, &st, &en, &ec, &t.Error, &t.Executor, &t.Host, &t.Pod); err != nil {
			return nil, err
		}
		t.State = task.State(state)
		t.Queued, t.Started, t.Ended, t.ExitCode = fromMicros(q), fromMicros(st), fromMicros(en), intPtr(ec)
		out = append(out, t)
	}
	return out, rows.Err()
}

// XCom returns the stored result of a task in a run; ok is false when there is none.
// The result of a mapped task is the JSON array of its instances' results, by
// map index (null where an instance stored none).
func (s *Store) XCom(ctx context.Context, run int64, taskID string) (value []byte, ok bool, err error) {
	err = s.r.QueryRowContext(ctx, `SELECT value FROM xcom WHERE run = ? AND task_id = ?`, run, taskID).Scan(&value)
	if errors.Is(err, sql.ErrNoRows) {
		return s.mappedXCom(ctx, run, taskID)
	}
	if err != nil {
		return nil, false, fmt.Errorf("result of task %q in run #%d: %w", taskID, run, err)
	}
	return value, true, nil
}

// Log returns a try's whole log from chunk after+1 on, and the number of the
// last chunk returned (pass it as after to read only what was appended since).
// Readers that must stay bounded use LogPage.
func (s *Store) Log(ctx context.Context, run int64, taskID string, try int, after int64) (data []byte, last int64, err error) {
	data, last, _, err = s.LogPage(ctx, run, taskID, try, after, 0)
	return data, last, err
}

// MaxLogPage is the most LogPage returns at once when asked for more (or for
// no bound, 0): 1 MiB. A chunk holds at most 32 KiB.
const MaxLogPage = 1 << 20

// LogPage returns a try's log from chunk after+1 on, whole chunks, stopping
// before the chunk that would take it past maxBytes (at least one chunk;
// maxBytes <= 0 means no bound); last is the number of the last chunk
// returned, the cursor of the next page, and more tells whether chunks remain.
func (s *Store) LogPage(ctx context.Context, run int64, taskID string, try int, after int64, maxBytes int) (data []byte, last int64, more bool, err error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, data FROM task_logs WHERE run = ? AND task_id = ? AND try_number = ? AND id > ?
		ORDER BY id`, run, taskID, try, after)
	if err != nil {
		return nil, after, false, err
	}
	defer rows.Close()
	last = after
	for rows.Next() {
		var id int64
		var chunk []byte
		if err := rows.Scan(&id, &chunk); err != nil {
			return nil, after, false, err
		}
		if maxBytes > 0 && len(data) > 0 && len(data)+len(chunk) > maxBytes {
			return data, last, true, nil
		}
		data, last = append(data, chunk...), id
	}
	return data, last, false, rows.Err()
}

// RunStatesAt returns the states of a DAG's runs at a logical date.
func (s *Store) RunStatesAt(ctx context.Context, dagID string, logical time.Time) ([]task.RunState, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT state FROM dag_runs WHERE dag_id = ? AND logical_date = ?`, dagID, logical.UnixMicro())
	if err != nil {
		return nil, fmt.Errorf("runs of dag %q at %s: %w", dagID, logical.UTC().Format(time.RFC3339), err)
	}
	defer rows.Close()
	var out []task.RunState
	for rows.Next() {
		var st string
		if err := rows.Scan(&st); err != nil {
			return nil, err
		}
		out = append(out, task.RunState(st))
	}
	return out, rows.Err()
}

// TaskStatesAt returns the states of a task in a DAG's runs at a logical date.
func (s *Store) TaskStatesAt(ctx context.Context, dagID, taskID string, logical time.Time) ([]task.State, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT t.state FROM task_instances t JOIN dag_runs r ON r.id = t.run
		WHERE r.dag_id = ? AND r.logical_date = ? AND t.task_id = ?`, dagID, logical.UnixMicro(), taskID)
	if err != nil {
		return nil, fmt.Errorf("task %q of dag %q at %s: %w", taskID, dagID, logical.UTC().Format(time.RFC3339), err)
	}
	defer rows.Close()
	var out []task.State
	for rows.Next() {
		var st string
		if err := rows.Scan(&st); err != nil {
			return nil, err
		}
		out = append(out, task.State(st))
	}
	return out, rows.Err()
}
