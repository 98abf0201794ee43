package runner_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trellisdag/trellis/internal/store/storetest"
)

// TestMapSurvivesKill9: the runner is SIGKILLed while instance 3 of a mapped
// task runs and instances 0-2 are committed. The next runner runs none of
// 0-2 again, runs 3 again with the next try number (its first try is kept,
// interrupted, and spends no retry), then 4 and 5, and the reduce reads every
// result.
//
// It runs on SQLite and, with $TRELLIS_TEST_POSTGRES, on PostgreSQL.
func TestMapSurvivesKill9(t *testing.T) {
	t.Parallel()
	bin := buildTestdata(t, "mapdag")
	storetest.Run(t, func(t *testing.T, be storetest.Backend) { testMapSurvivesKill9(t, bin, be.NewDB(t)) })
}

func testMapSurvivesKill9(t *testing.T, bin, db string) {
	dir := t.TempDir()
	said := fifo(t, dir, "fifo")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := func(args ...string) *exec.Cmd {
		c := exec.CommandContext(ctx, bin, append(args, "--db", db)...)
		c.Env = append(os.Environ(), "MAP_DIR="+dir)
		return c
	}
	if out, err := cmd("dags", "trigger", "map", "--logical-date", "2024-07-01").CombinedOutput(); err != nil {
		t.Fatalf("trigger: %v\n%s", err, out)
	}
	first := cmd("serve", "--listen", "")
	var out1 bytes.Buffer
	first.Stdout, first.Stderr = &out1, &out1
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-said:
		if s != "blocked" {
			t.Fatalf("instance 3 said %q", s)
		}
	case <-ctx.Done():
		t.Fatalf("instance 3 never started\n%s", &out1)
	}
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.Wait()
	if out, err := cmd("serve", "--until-idle", "--listen", "").CombinedOutput(); err != nil {
		t.Fatalf("second life: %v\n%s", err, out)
	}
	out, err := cmd("runs", "show", "map", "latest").CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	show := string(out)
	if row := rowOf(show, "sum"); !strings.Contains(row, "success") || !strings.Contains(row, "55") {
		t.Errorf("sum: %q, want success with 55\n%s", row, show)
	}
	if row := rowOf(show, "each[3]"); !strings.Contains(row, "success") || !strings.Contains(row, "2/") {
		t.Errorf("each[3]: %q, want success in try 2\n%s", row, show)
	}
	starts, _ := os.ReadFile(filepath.Join(dir, "starts"))
	for _, want := range []string{"index 0 try 1\n", "index 1 try 1\n", "index 2 try 1\n", "index 3 try 1\n", "index 3 try 2\n", "index 4 try 1\n", "index 5 try 1\n"} {
		if n := strings.Count(string(starts), want); n != 1 {
			t.Errorf("%q started %d times, want once\n%s", strings.TrimSpace(want), n, starts)
		}
	}
	if n := strings.Count(string(starts), "\n"); n != 7 {
		t.Errorf("%d starts, want 7:\n%s", n, starts)
	}
}
