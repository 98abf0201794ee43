package runner_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestIsolatedTasks: Go tasks in a child process each (task.Isolated) pass
// typed results across the process boundary, and a panic in a goroutine,
// os.Exit or a hang past the timeout fails only that try, with its exit
// status and its stderr in the log; the runner itself goes on.
func TestIsolatedTasks(t *testing.T) {
	t.Parallel()
	bin := buildTestdata(t, "isodag")
	db := filepath.Join(t.TempDir(), "t.db")
	start := time.Now()
	out, err := exec.Command(bin, "dags", "test", "iso", "--logical-date", "2024-06-01", "--db", db).CombinedOutput()
	if code := exitCode(err); code != 1 {
		t.Fatalf("dags test: exit %d, want 1 (the run failed, the runner did not):\n%s", code, out)
	}
	if took := time.Since(start); took > time.Minute {
		t.Errorf("dags test took %s: the hanging task was not killed at its timeout", took)
	}
	text := string(out)
	for task, want := range map[string]string{
		"ok":     `success`,
		"after":  `"got 3 in pid`,
		"panics": "the task's process exited with status 2", // before or after the task returned: the panic races it
		"exits":  "the task's process exited with status 3 before it reported its end; the last lines of its stderr: giving up",
		"hangs":  "execution timeout of 1s exceeded",
	} {
		if row := rowOf(text, task); !strings.Contains(row, want) {
			t.Errorf("%s: %q, want %q\n%s", task, row, want, text)
		}
	}
	logs, err := exec.Command(bin, "logs", "iso", "latest", "panics", "--db", db).CombinedOutput()
	if err != nil || !strings.Contains(string(logs), "assignment to entry in nil map") {
		t.Errorf("the panic is not in the try's log (%v):\n%s", err, logs)
	}

	// dag.Isolated: every Go task of the DAG in a child of its own.
	out, err = exec.Command(bin, "dags", "test", "iso_all", "--logical-date", "2024-06-01", "--db", db).CombinedOutput()
	if code := exitCode(err); code != 1 {
		t.Fatalf("dags test iso_all: exit %d, want 1:\n%s", code, out)
	}
	if row := rowOf(string(out), "crashes"); !strings.Contains(row, "exited with status 2 before it reported its end") {
		t.Errorf("crashes: %q\n%s", row, out)
	}
	if logs, err := exec.Command(bin, "logs", "iso_all", "latest", "crashes", "--db", db).CombinedOutput(); err != nil ||
		!strings.Contains(string(logs), "panic: a goroutine gave up") {
		t.Errorf("the panic is not in the try's log (%v):\n%s", err, logs)
	}
	if row := rowOf(string(out), "calm"); !strings.Contains(row, "success") {
		t.Errorf("calm: %q\n%s", row, out)
	}
}

func exitCode(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// TestCrashReport: an in-process task that crashes the runner (a panic in a
// goroutine it started) leaves the Go runtime's crash report next to the
// database; the restarted runner attaches it to the log of the try that was in
// flight, and runs the task again without spending a retry.
func TestCrashReport(t *testing.T) {
	t.Parallel()
	bin := buildTestdata(t, "isodag")
	db := filepath.Join(t.TempDir(), "t.db")
	out, err := exec.Command(bin, "dags", "test", "crashy", "--logical-date", "2024-06-01", "--db", db).CombinedOutput()
	if code := exitCode(err); code != 2 || !strings.Contains(string(out), "the runner's own process gave up") {
		t.Fatalf("the first runner should crash with exit 2: exit %d\n%s", code, out)
	}
	if out, err := exec.Command(bin, "serve", "--until-idle", "--listen", "", "--db", db).CombinedOutput(); err != nil {
		t.Fatalf("serve after the crash: %v\n%s", err, out)
	}
	show, _ := exec.Command(bin, "runs", "show", "crashy", "latest", "--db", db).CombinedOutput()
	if row := rowOf(string(show), "dies"); !strings.Contains(row, "success") || !strings.Contains(row, "2/2") {
		t.Errorf("dies after the crash: %q, want success on try 2 of 2 (the interrupted try costs no retry)\n%s", row, show)
	}
	logs, err := exec.Command(bin, "logs", "crashy", "latest", "dies", "--try", "1", "--db", db).CombinedOutput()
	if err != nil || !strings.Contains(string(logs), "the runner crashed while this try was in flight; its crash report follows") ||
		!strings.Contains(string(logs), "panic: the runner's own process gave up") {
		t.Errorf("try 1's log lacks the crash report (%v):\n%s", err, logs)
	}
}
