package runner_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/task"
)

// TestBackfillReprocessFailedMapped: a backfill whose mapped instance fails
// leaves the run failed; the same backfill with --reprocess-failed clears
// only what failed (the instance and what it failed downstream), and the run
// succeeds without running the succeeded instances again.
func TestBackfillReprocessFailedMapped(t *testing.T) {
	dir := t.TempDir()
	ok := filepath.Join(dir, "ok")
	var calls [3]atomic.Int32
	src := task.Go("src", func(context.Context, *task.Run) ([]int, error) { return []int{0, 1, 2}, nil })
	each := task.Map("each", src, func(_ context.Context, r *task.Run, x int) (int, error) {
		calls[x].Add(1)
		if _, err := os.Stat(ok); x == 1 && err != nil {
			return 0, errors.New("not yet")
		}
		return x, nil
	})
	after := task.Go("after", func(_ context.Context, r *task.Run) ([]int, error) { return task.Output(r, each) })
	each.Then(after)
	d := dag.New("bf", dag.Schedule("@daily"), dag.StartDate(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)),
		dag.DefaultRetries(0, 0)).Add(src, each, after)
	db := filepath.Join(dir, "trellis.db")
	args := []string{"dags", "backfill", "bf", "--from", "2024-01-01", "--to", "2024-01-01"}
	if code, out, errOut := runCLI(t, []*dag.DAG{d}, db, args...); code == 0 || !strings.Contains(out+errOut, "reprocess-failed") {
		t.Fatalf("first backfill: exit %d, want a failure naming --reprocess-failed\n%s%s", code, out, errOut)
	}
	if err := os.WriteFile(ok, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCLI(t, []*dag.DAG{d}, db, append(args, "--reprocess-failed")...); code != 0 {
		t.Fatalf("reprocess: exit %d\n%s%s", code, out, errOut)
	}
	if calls[0].Load() != 1 || calls[1].Load() != 2 || calls[2].Load() != 1 {
		t.Errorf("calls = %d %d %d, want 1 2 1", calls[0].Load(), calls[1].Load(), calls[2].Load())
	}
	_, out, _ := runCLI(t, []*dag.DAG{d}, db, "runs", "show", "bf", "latest")
	if row := rowOf(out, "after"); !strings.Contains(row, "success") || !strings.Contains(row, "[0,1,2]") {
		t.Errorf("after: %q\n%s", row, out)
	}
}
