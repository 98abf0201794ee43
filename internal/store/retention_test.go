package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/trellisdag/trellis/task"
)

// TestDeleteRun: a finished run goes with every row that hangs off it, its
// many log rows in several transactions; an active run is refused.
func testDeleteRun(t *testing.T, be backend) {
	t.Parallel()
	s, _ := setup(t, be)
	ctx := context.Background()
	r := mkRun(t, s, "r1", "a")
	// More log rows than one delete transaction takes.
	if _, err := s.w.Exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
		INSERT INTO task_logs (run, task_id, try_number, data) SELECT CAST(? AS BIGINT), 'a', 1, 'x' FROM n`, 2*logDeleteBatch+5, r.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRun(ctx, r.ID); !errors.Is(err, ErrRunActive) {
		t.Fatalf("DeleteRun of a queued run = %v, want ErrRunActive", err)
	}
	apply(t, s, rc(r.ID, task.RunQueued, task.RunRunning, t0), rc(r.ID, task.RunRunning, task.RunFailed, t0.Add(time.Minute)))
	if err := s.DeleteRun(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"dag_runs", "task_instances", "task_logs"} {
		var n int
		if err := s.r.QueryRow(`SELECT count(*) FROM ` + table).Scan(&n); err != nil || n != 0 {
			t.Errorf("%s: %d rows left, %v", table, n, err)
		}
	}
}
