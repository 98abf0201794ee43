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
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := func(args ...string) *exec.Cmd {
		c := exec.CommandContext(ctx, bin, append(args, "--db", db)...)
		c.Env = append(os.Environ(), "WAIT_DIR="+dir)
		return c
	}
	if out, err := cmd("dags", "trigger", "wait", "--logical-date", "2024-07-01").CombinedOutput(); err != nil {
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
		if s != "deferred" {
			t.Fatalf("sensor said %q", s)
		}
	case <-ctx.Done():
		t.Fatalf("the sensor never poked\n%s", &out1)
	}
	// The second poke: the first deferral is committed.
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.Wait()

	if err := os.WriteFile(filepath.Join(dir, "ready"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := cmd("serve", "--until-idle", "--listen", "").CombinedOutput(); err != nil {
		t.Fatalf("second life: %v\n%s", err, out)
	}
	out, err := cmd("runs", "show", "wait", "latest").CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	show := string(out)
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
