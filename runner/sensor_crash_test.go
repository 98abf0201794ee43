package runner_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trellisdag/trellis/internal/store/storetest"
)

// TestSensorWaitSurvivesKill9: the runner is SIGKILLed while a sensor is
// deferred; the next runner resumes the wait with the same try (no retry is
// spent, nothing runs twice) and the run completes once the condition holds.
//
// It runs on SQLite and, with $TRELLIS_TEST_POSTGRES, on PostgreSQL.
func TestSensorWaitSurvivesKill9(t *testing.T) {
	t.Parallel()
	bin := buildTestdata(t, "waitdag")
	storetest.Run(t, func(t *testing.T, be storetest.Backend) { testSensorWaitSurvivesKill9(t, bin, be.NewDB(t)) })
}

func testSensorWaitSurvivesKill9(t *testing.T, bin, db string) {
	dir := t.TempDir()
	said := fifo(t, dir, "fifo")
	l := newLives(t, bin, db, 90*time.Second, "WAIT_DIR="+dir)
	l.run("trigger", "dags", "trigger", "wait", "--logical-date", "2024-07-01")
	// The second poke: the first deferral is committed.
	if s := l.serveUntil(said, "the sensor's poke"); s != "deferred" {
		t.Fatalf("sensor said %q", s)
	}
	if err := os.WriteFile(filepath.Join(dir, "ready"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	l.run("second life", "serve", "--until-idle", "--listen", "")
	out := l.run("runs show", "runs", "show", "wait", "latest")
	show := out
	if row := rowOf(show, "ready"); !strings.Contains(row, "success") || !strings.Contains(row, "1/1") {
		t.Errorf("ready: %q, want success in its first try\n%s", row, show)
	}
	if row := rowOf(show, "after"); !strings.Contains(row, "success") {
		t.Errorf("after: %q\n%s", row, show)
	}
	pokes, _ := os.ReadFile(filepath.Join(dir, "pokes"))
	if strings.Contains(string(pokes), "try 2") {
		t.Errorf("the sensor ran a second try:\n%s", pokes)
	}
	if n := strings.Count(string(pokes), "\n"); n < 2 {
		t.Errorf("pokes:\n%s", pokes)
	}
}
