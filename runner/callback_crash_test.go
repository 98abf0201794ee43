package runner_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trellisdag/trellis/internal/store/storetest"
)

// TestCallbackDeliveredAfterKill9: the runner is killed (SIGKILL) while a
// failure callback runs, after the failure was committed. The next process on
// the database delivers the callback (at least once), with the same event key.
//
// It runs on SQLite and, with $TRELLIS_TEST_POSTGRES, on PostgreSQL.
func TestCallbackDeliveredAfterKill9(t *testing.T) {
	t.Parallel()
	bin := buildTestdata(t, "cbdag")
	storetest.Run(t, func(t *testing.T, be storetest.Backend) { testCallbackDeliveredAfterKill9(t, bin, be.NewDB(t)) })
}

func testCallbackDeliveredAfterKill9(t *testing.T, bin, db string) {
	dir := t.TempDir()
	keyc := fifo(t, dir, "fifo")
	l := newLives(t, bin, db, 60*time.Second, "CB_DIR="+dir)
	// The run is triggered, then scheduled by a serve that does not stop when
	// the run ends: a process that stops (dags trigger --wait) cancels the
	// blocked call and delivers the entry again before it exits, which is
	// at-least-once but not the crash this test is about.
	l.run("trigger", "dags", "trigger", "cb", "--logical-date", "2024-05-01")
	key := l.serveUntil(keyc, "the callback's call")
	if !strings.HasPrefix(key, "task/") || !strings.HasSuffix(key, "/boom/1/task_failure#0") {
		t.Fatalf("event key %q", key)
	}
	l.run("second life", "serve", "--until-idle", "--listen", "")
	b, err := os.ReadFile(filepath.Join(dir, "delivered"))
	if err != nil {
		t.Fatalf("the callback was not delivered after the restart: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], key+" task_failure boom try 1: boom") {
		t.Errorf("delivered = %q, want one delivery of %s", b, key)
	}
}
