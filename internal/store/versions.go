package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// PutDAGVersion stores a version of a DAG's definition once; storing it again
// changes nothing.
func (s *Store) PutDAGVersion(ctx context.Context, dagID, version string, definition []byte) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO dag_versions (dag_id, version, definition, created_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (dag_id, version) DO NOTHING`, dagID, version, string(definition), time.Now().UnixMicro())
		if err != nil {
			return fmt.Errorf("dag %q version %s: %w", dagID, version, err)
		}
		return nil
	})
}

// DAGVersion returns a stored version of a DAG's definition, or ErrNotFound.
func (s *Store) DAGVersion(ctx context.Context, dagID, version string) (json.RawMessage, error) {
	var def string
	err := s.r.QueryRowContext(ctx, `SELECT definition FROM dag_versions WHERE dag_id = ? AND version = ?`, dagID, version).Scan(&def)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("dag %q version %s: %w", dagID, version, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("dag %q version %s: %w", dagID, version, err)
	}
	return json.RawMessage(def), nil
}
