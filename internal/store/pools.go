package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// SetPoolSlots sets a pool's size at run time; it overrides the size the
// binary declares for that pool until set again.
func (s *Store) SetPoolSlots(ctx context.Context, name string, slots int) error {
	if slots < 0 {
		return fmt.Errorf("pool %q: %d slots: want 0 or more", name, slots)
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO pools (name, slots, updated_at) VALUES (?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET slots = excluded.slots, updated_at = excluded.updated_at`,
			name, slots, time.Now().UnixMicro())
		if err != nil {
			return fmt.Errorf("pool %q: %w", name, err)
		}
		return nil
	})
}

// PoolSlots returns the pool sizes set at run time, by pool.
func (s *Store) PoolSlots(ctx context.Context) (map[string]int, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT name, slots FROM pools`)
	if err != nil {
		return nil, fmt.Errorf("pools: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var name string
		var n int
		if err := rows.Scan(&name, &n); err != nil {
			return nil, fmt.Errorf("pools: %w", err)
		}
		out[name] = n
	}
	return out, rows.Err()
}
