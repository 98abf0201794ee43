package runner_test

import (
	"os"
	"path/filepath"
	"strings"
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
	l := newLives(t, bin, db, 90*time.Second, "MAP_DIR="+dir)
	l.run("trigger", "dags", "trigger", "map", "--logical-date", "2024-07-01")
	if s := l.serveUntil(said, "instance 3's start"); s != "blocked" {
		t.Fatalf("instance 3 said %q", s)
	}
	l.run("second life", "serve", "--until-idle", "--listen", "")
	out := l.run("runs show", "runs", "show", "map", "latest")
	show := out
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
