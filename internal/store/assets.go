package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/trellisdag/trellis/storage"
)

// AssetEvent is storage.AssetEvent.
type AssetEvent = storage.AssetEvent

// Asset is storage.Asset.
type Asset = storage.Asset

// MaxAssetEventsPerRun bounds how many triggering events an asset-triggered
// run records (the newest are kept).
const MaxAssetEventsPerRun = 1000

const insertAssetEvent = `INSERT INTO asset_events (uri, source_dag, source_run, source_task, source_try, source, extra, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`

// assetSteps record an asset event (and the asset, the first time): the
// asset's insert, then the event's, which returns the event's id.
func assetSteps(e AssetEvent) []step {
	if e.Created.IsZero() {
		e.Created = time.Now()
	}
	var extra any
	if len(e.Extra) > 0 {
		extra = string(e.Extra)
	}
	return []step{
		{q: `INSERT INTO assets (uri, created_at) VALUES (?, ?) ON CONFLICT (uri) DO NOTHING`, args: []any{e.URI, e.Created.UnixMicro()},
			want: -1, what: fmt.Sprintf("asset %q", e.URI)},
		{q: insertAssetEvent, args: []any{e.URI, e.SourceDAG, e.SourceRun, e.SourceTask, e.SourceTry, e.Source, extra, e.Created.UnixMicro()},
			want: 1, what: fmt.Sprintf("asset %q: record the event", e.URI)},
	}
}

func putAssetEvent(ctx context.Context, tx *sql.Tx, e AssetEvent) (int64, error) {
	steps := assetSteps(e)
	if _, err := tx.ExecContext(ctx, steps[0].q, steps[0].args...); err != nil {
		return 0, fmt.Errorf("%s: %w", steps[0].what, err)
	}
	var id int64
	if err := tx.QueryRowContext(ctx, steps[1].q, steps[1].args...).Scan(&id); err != nil {
		return 0, fmt.Errorf("%s: %w", steps[1].what, err)
	}
	return id, nil
}

// PostAssetEvent records an event outside a batch (an external event, posted
// through the API) and returns its id.
func (s *Store) PostAssetEvent(ctx context.Context, e AssetEvent) (id int64, err error) {
	err = s.tx(ctx, func(tx *sql.Tx) error {
		id, err = putAssetEvent(ctx, tx, e)
		return err
	})
	return id, err
}

// RegisterAssetConsumer records that dagID is scheduled on uris. An asset it
// did not consume before starts from its newest event: events from before the
// DAG was scheduled on it do not trigger it (as in Airflow).
func (s *Store) RegisterAssetConsumer(ctx context.Context, dagID string, uris []string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		for _, u := range uris {
			if _, err := tx.ExecContext(ctx, `INSERT INTO asset_consumers (dag_id, uri, last_event_id)
				VALUES (?, ?, (SELECT COALESCE(max(id), 0) FROM asset_events WHERE uri = ?)) ON CONFLICT DO NOTHING`, dagID, u, u); err != nil {
				return fmt.Errorf("dag %q: asset %q: %w", dagID, u, err)
			}
		}
		return nil
	})
}

// AssetReadiness says, for each asset a DAG is scheduled on, whether it has
// events the DAG has not consumed.
func (s *Store) AssetReadiness(ctx context.Context, dagID string, uris []string) (map[string]bool, error) {
	out := make(map[string]bool, len(uris))
	for _, u := range uris {
		var ready bool
		err := s.r.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM asset_events WHERE uri = ? AND id >
			COALESCE((SELECT last_event_id FROM asset_consumers WHERE dag_id = ? AND uri = ?), 0))`, u, dagID, u).Scan(&ready)
		if err != nil {
			return nil, fmt.Errorf("dag %q: asset %q: %w", dagID, u, err)
		}
		out[u] = ready
	}
	return out, nil
}

// CreateAssetRun creates run r (with an instance per seed) for a DAG
// scheduled on uris when they have new events: every one of them, or any with
// anyOf. In the same transaction it advances the DAG's consumed events (with a
// compare-and-swap, so one set of events creates one run however many
// schedulers look) and records the triggering events. The run's data interval
// spans the events' times. ok is false when the assets are not ready.
func (s *Store) CreateAssetRun(ctx context.Context, dagID string, uris []string, anyOf bool, r Run, tasks []TaskSeed) (out Run, ok bool, err error) {
	err = s.tx(ctx, func(tx *sql.Tx) error {
		ok = false
		type pend struct {
			uri        string
			last, newe int64
		}
		var ready []pend
		for _, u := range uris {
			var last, newest int64
			err := tx.QueryRowContext(ctx, `SELECT COALESCE((SELECT last_event_id FROM asset_consumers WHERE dag_id = ? AND uri = ?), 0),
				COALESCE((SELECT max(id) FROM asset_events WHERE uri = ?), 0)`, dagID, u, u).Scan(&last, &newest)
			if err != nil {
				return fmt.Errorf("dag %q: asset %q: %w", dagID, u, err)
			}
			if newest > last {
				ready = append(ready, pend{u, last, newest})
			} else if !anyOf {
				return nil // one asset has nothing new: not yet
			}
		}
		if len(ready) == 0 {
			return nil
		}
		var minAt, maxAt sql.NullInt64
		for _, p := range ready {
			if err := tx.QueryRowContext(ctx, `SELECT min(created_at), max(created_at) FROM asset_events WHERE uri = ? AND id > ? AND id <= ?`,
				p.uri, p.last, p.newe).Scan(&minAt, &maxAt); err != nil {
				return err
			}
			if minAt.Valid && (r.IntervalStart.IsZero() || time.UnixMicro(minAt.Int64).Before(r.IntervalStart)) {
				r.IntervalStart = time.UnixMicro(minAt.Int64).UTC()
			}
			if maxAt.Valid && time.UnixMicro(maxAt.Int64).After(r.IntervalEnd) {
				r.IntervalEnd = time.UnixMicro(maxAt.Int64).UTC()
			}
		}
		created, err := s.createRunTx(ctx, tx, r, tasks)
		if errors.Is(err, ErrExists) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, p := range ready {
			res, err := tx.ExecContext(ctx, `INSERT INTO asset_consumers (dag_id, uri, last_event_id) VALUES (?, ?, ?)
				ON CONFLICT (dag_id, uri) DO UPDATE SET last_event_id = excluded.last_event_id WHERE asset_consumers.last_event_id = ?`,
				dagID, p.uri, p.newe, p.last)
			if err != nil {
				return fmt.Errorf("dag %q: asset %q: %w", dagID, p.uri, err)
			}
			if n, _ := res.RowsAffected(); n != 1 {
				return &ConflictError{Run: 0, Reason: fmt.Sprintf("dag %q: asset %q: events consumed concurrently", dagID, p.uri)}
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO run_asset_events (run, event_id)
				SELECT ?, id FROM asset_events WHERE uri = ? AND id > ? AND id <= ? ORDER BY id DESC LIMIT ?`,
				created.ID, p.uri, p.last, p.newe, MaxAssetEventsPerRun); err != nil {
				return fmt.Errorf("dag %q: asset %q: %w", dagID, p.uri, err)
			}
		}
		out, ok = created, true
		return nil
	})
	var conflict *ConflictError
	if errors.As(err, &conflict) {
		return Run{}, false, nil // another scheduler consumed them: its run is the one
	}
	return out, ok, err
}

// Assets lists the assets with their event counts, by URI.
func (s *Store) Assets(ctx context.Context) ([]Asset, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT a.uri, a.created_at, count(e.id), COALESCE(max(e.created_at), 0)
		FROM assets a LEFT JOIN asset_events e ON e.uri = a.uri GROUP BY a.uri ORDER BY a.uri`)
	if err != nil {
		return nil, fmt.Errorf("assets: %w", err)
	}
	defer rows.Close()
	var out []Asset
	for rows.Next() {
		var a Asset
		var created, last int64
		if err := rows.Scan(&a.URI, &created, &a.Events, &last); err != nil {
			return nil, err
		}
		a.Created = time.UnixMicro(created).UTC()
		if last != 0 {
			a.LastEvent = time.UnixMicro(last).UTC()
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// AssetEvents returns the events of an asset (every asset when uri is ""),
// newest first, a page at a time, and how many there are.
func (s *Store) AssetEvents(ctx context.Context, uri string, limit, offset int) ([]AssetEvent, int, error) {
	where, args := "", []any{}
	if uri != "" {
		where, args = ` WHERE uri = ?`, []any{uri}
	}
	var total int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM asset_events`+where, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("asset events: %w", err)
	}
	return s.queryAssetEvents(ctx, `SELECT id, uri, source_dag, source_run, source_task, source_try, source, extra, created_at
		FROM asset_events`+where+` ORDER BY id DESC LIMIT ? OFFSET ?`, total, append(args, limit, offset)...)
}

// RunAssetEvents returns the events that triggered a run (newest first).
func (s *Store) RunAssetEvents(ctx context.Context, run int64) ([]AssetEvent, error) {
	out, _, err := s.queryAssetEvents(ctx, `SELECT e.id, e.uri, e.source_dag, e.source_run, e.source_task, e.source_try, e.source, e.extra, e.created_at
		FROM run_asset_events r JOIN asset_events e ON e.id = r.event_id WHERE r.run = ? ORDER BY e.id DESC`, 0, run)
	return out, err
}

func (s *Store) queryAssetEvents(ctx context.Context, q string, total int, args ...any) ([]AssetEvent, int, error) {
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, 0, fmt.Errorf("asset events: %w", err)
	}
	defer rows.Close()
	var out []AssetEvent
	for rows.Next() {
		var e AssetEvent
		var extra sql.NullString
		var created int64
		if err := rows.Scan(&e.ID, &e.URI, &e.SourceDAG, &e.SourceRun, &e.SourceTask, &e.SourceTry, &e.Source, &extra, &created); err != nil {
			return nil, 0, err
		}
		if extra.Valid {
			e.Extra = []byte(extra.String)
		}
		e.Created = time.UnixMicro(created).UTC()
		out = append(out, e)
	}
	return out, total, rows.Err()
}
