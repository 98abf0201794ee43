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
)

// TestClearFromAnotherProcessWhileATaskRuns is the repro with two
// processes: serve runs the DAG; while s1 runs, a second process clears q1
// (s1's finished upstream), which makes the scheduler's next commit fail its
// compare-and-swap. s1's report must survive: before, it was dropped, s1 stayed
// running forever and serve --until-idle never returned.
func TestClearFromAnotherProcessWhileATaskRuns(t *testing.T) {
	t.Parallel()
	bin := buildTestdata(t, "racedag")
	dir := t.TempDir()
	db := filepath.Join(dir, "trellis.db")
	started := fifo(t, dir, "started")
	if err := syscall.Mkfifo(filepath.Join(dir, "release"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "RACE_DIR="+dir)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := func(args ...string) *exec.Cmd {
		c := exec.CommandContext(ctx, bin, append(args, "--db", db)...)
		c.Env = env
		return c
	}
	const runID = "manual__2024-06-01T00:00:00+00:00"
	if out, err := cmd("dags", "trigger", "slow", "--logical-date", "2024-06-01").CombinedOutput(); err != nil {
		t.Fatalf("trigger: %v\n%s", err, out)
	}
	serve := cmd("serve", "--until-idle", "--listen", "")
	var served bytes.Buffer
	serve.Stdout, serve.Stderr = &served, &served
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- serve.Wait() }()

	select {
	case line := <-started:
		if line != "try 1" {
			t.Fatalf("s1 said %q, want try 1", line)
		}
	case err := <-exited:
		t.Fatalf("serve exited before s1 started: %v\n%s", err, &served)
	case <-ctx.Done():
		t.Fatalf("s1 never started\n%s", &served)
	}

	if out, err := cmd("tasks", "clear", "slow", runID, "--task", "q1").CombinedOutput(); err != nil {
		t.Fatalf("tasks clear from the second process: %v\n%s", err, out)
	}
	release, err := os.OpenFile(filepath.Join(dir, "release"), os.O_WRONLY, 0) // s1 is reading
	if err != nil {
		t.Fatal(err)
	}
	if _, err := release.WriteString("go\n"); err != nil {
		t.Fatal(err)
	}
	release.Close()

	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("serve: %v\n%s", err, &served)
		}
	case <-ctx.Done():
		t.Fatalf("serve --until-idle never returned: s1's report was lost\n%s", &served)
	}
	out, err := cmd("runs", "show", "slow", runID).CombinedOutput()
	if err != nil {
		t.Fatalf("runs show: %v\n%s", err, out)
	}
	show := string(out)
	if !strings.Contains(show, ": success") {
		t.Errorf("run not success:\n%s", show)
	}
	for _, id := range []string{"q1", "s1", "done"} {
		if row := rowOf(show, id); !strings.Contains(row, "success") {
			t.Errorf("%s: %q, want success\n%s", id, row, show)
		}
	}
	if row := rowOf(show, "s1"); !strings.Contains(row, "1/1") || !strings.Contains(row, "s1 released: go") {
		t.Errorf("s1: %q, want its first try's report and result kept\n%s", row, show)
	}
	if row := rowOf(show, "q1"); !strings.Contains(row, "2/2") {
		t.Errorf("q1: %q, want it run again after the clear (try 2)\n%s", row, show)
	}
}
