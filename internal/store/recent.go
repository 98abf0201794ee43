package store

import (
	"context"
	"fmt"
	"strings"
)

// MaxRecentDAGs bounds the DAGs one RecentRuns call reads.
const MaxRecentDAGs = 1000

// RecentRuns returns the latest n runs (by logical date, newest first) of
// each of the DAGs, in one query: each DAG's runs come from its
// (dag_id, logical_date) index, so the cost follows the runs returned, not
// the runs stored.
func (s *Store) RecentRuns(ctx context.Context, dagIDs []string, n int) (map[string][]Run, error) {
	out := make(map[string][]Run, len(dagIDs))
	if len(dagIDs) == 0 || n <= 0 {
		return out, nil
	}
	if len(dagIDs) > MaxRecentDAGs {
		return nil, fmt.Errorf("recent runs of %d DAGs: at most %d at once", len(dagIDs), MaxRecentDAGs)
	}
	args := make([]any, 0, len(dagIDs)+1)
	for _, id := range dagIDs {
		args = append(args, id)
	}
	args = append(args, n)
	q := `WITH wanted(name) AS (VALUES ` + strings.TrimSuffix(strings.Repeat("(?),", len(dagIDs)), ",") + `)
		SELECT ` + runColumns + ` FROM wanted JOIN dag_runs ON dag_runs.id IN
			(SELECT x.id FROM dag_runs x WHERE x.dag_id = wanted.name ORDER BY x.logical_date DESC, x.id DESC LIMIT ?)
		ORDER BY dag_id, logical_date DESC, id DESC`
	runs, err := s.queryRuns(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("recent runs: %w", err)
	}
	for _, r := range runs {
		out[r.DAGID] = append(out[r.DAGID], r)
	}
	return out, nil
}
