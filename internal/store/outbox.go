package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/trellisdag/trellis/storage"
)

// OutboxEntry is storage.OutboxEntry.
type OutboxEntry = storage.OutboxEntry

// outboxStep writes an outbox entry (none when its key exists).
func outboxStep(e OutboxEntry) step {
	var run any
	if e.Run != 0 {
		run = e.Run
	}
	if e.Created.IsZero() {
		e.Created = time.Now()
	}
	if e.NextAt.IsZero() {
		e.NextAt = e.Created
	}
	return step{q: `INSERT INTO outbox (key, dag_id, run, kind, event, created_at, next_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING`,
		args: []any{e.Key, e.DAGID, run, e.Kind, string(e.Event), e.Created.UnixMicro(), e.NextAt.UnixMicro()},
		want: -1, what: fmt.Sprintf("outbox entry %q", e.Key)}
}

// PutOutbox records one entry outside a batch (an entry whose key exists is
// ignored).
func (s *Store) PutOutbox(ctx context.Context, e OutboxEntry) error {
	return s.tx(ctx, func(tx *sql.Tx) error { return s.runSteps(ctx, tx, []step{outboxStep(e)}) })
}

// DueOutbox returns at most limit undelivered entries due at now, oldest
// first.
func (s *Store) DueOutbox(ctx context.Context, now time.Time, limit int) ([]OutboxEntry, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, key, dag_id, COALESCE(run, 0), kind, event, created_at, next_at, attempts, last_error
		FROM outbox WHERE delivered_at IS NULL AND next_at <= ? ORDER BY next_at, id LIMIT ?`, now.UnixMicro(), limit)
	if err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	defer rows.Close()
	var out []OutboxEntry
	for rows.Next() {
		var e OutboxEntry
		var ev string
		var created, next int64
		if err := rows.Scan(&e.ID, &e.Key, &e.DAGID, &e.Run, &e.Kind, &ev, &created, &next, &e.Attempts, &e.LastError); err != nil {
			return nil, fmt.Errorf("outbox: %w", err)
		}
		e.Event, e.Created, e.NextAt = []byte(ev), time.UnixMicro(created).UTC(), time.UnixMicro(next).UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}

// NextOutbox returns when the earliest undelivered entry is due (ok false when
// there is none).
func (s *Store) NextOutbox(ctx context.Context) (at time.Time, ok bool, err error) {
	var next sql.NullInt64
	if err := s.r.QueryRowContext(ctx, `SELECT min(next_at) FROM outbox WHERE delivered_at IS NULL`).Scan(&next); err != nil {
		return time.Time{}, false, fmt.Errorf("outbox: %w", err)
	}
	if !next.Valid {
		return time.Time{}, false, nil
	}
	return time.UnixMicro(next.Int64).UTC(), true, nil
}

// OutboxDone records an entry's delivery attempt: delivered (err empty), to
// retry at next, or given up (giveUp: it stays with its error and is not
// tried again).
func (s *Store) OutboxDone(ctx context.Context, id int64, at time.Time, errMsg string, next time.Time, giveUp bool) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		switch {
		case errMsg == "":
			_, err = tx.ExecContext(ctx, `UPDATE outbox SET attempts = attempts + 1, last_error = '', delivered_at = ? WHERE id = ?`, at.UnixMicro(), id)
		case giveUp:
			_, err = tx.ExecContext(ctx, `UPDATE outbox SET attempts = attempts + 1, last_error = ?, delivered_at = ? WHERE id = ?`, errMsg, at.UnixMicro(), id)
		default:
			_, err = tx.ExecContext(ctx, `UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_at = ? WHERE id = ?`, errMsg, next.UnixMicro(), id)
		}
		if err != nil {
			return fmt.Errorf("outbox entry %d: %w", id, err)
		}
		return nil
	})
}

// OutboxStats counts the entries: delivered, pending and given up (delivered
// with an error).
func (s *Store) OutboxStats(ctx context.Context) (delivered, pending, failed int, err error) {
	err = s.r.QueryRowContext(ctx, `SELECT
		count(*) FILTER (WHERE delivered_at IS NOT NULL AND last_error = ''),
		count(*) FILTER (WHERE delivered_at IS NULL),
		count(*) FILTER (WHERE delivered_at IS NOT NULL AND last_error != '')
		FROM outbox`).Scan(&delivered, &pending, &failed)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("outbox: %w", err)
	}
	return delivered, pending, failed, nil
}
