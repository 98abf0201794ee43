package runner_test

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trellisdag/trellis/internal/store/storetest"
)

// buildTestdata builds the DAG binary testdata/<name> into a fresh directory
// and returns the binary's path.
func buildTestdata(t *testing.T, name string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), name)
	out, err := exec.Command("go", "build", "-o", bin, "./testdata/"+name).CombinedOutput()
	if err != nil {
		t.Fatalf("build %s: %v\n%s", name, err, out)
	}
	return bin
}

// TestKill9MidRunLosesNothing SIGKILLs a runner while a task runs, restarts it,
// and checks that the succeeded task did not run again and the run completes;
// on SQLite and PostgreSQL.
func TestKill9MidRunLosesNothing(t *testing.T) {
	t.Parallel()
	bin := buildTestdata(t, "crashdag")
	storetest.Run(t, func(t *testing.T, be storetest.Backend) { testKill9MidRun(t, bin, be.NewDB(t)) })
}

func testKill9MidRun(t *testing.T, bin, db string) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "CRASH_DIR="+dir, "TMPDIR="+dir) // TMPDIR: where a DSN's crash report goes

	// First life: trigger and run in-process; "block" signals its pid through the
	// FIFO on its first try and then sleeps.
	first := exec.Command(bin, "dags", "trigger", "crash", "--wait", "--logical-date", "2024-05-01", "--db", db)
	first.Env = env
	var out1 bytes.Buffer
	first.Stdout, first.Stderr = &out1, &out1
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	pidc := make(chan string, 1)
	go func() {
		f, err := os.Open(fifo) // blocks until the task opens it for writing
		if err != nil {
			pidc <- ""
			return
		}
		defer f.Close()
		line, _ := bufio.NewReader(f).ReadString('\n')
		pidc <- strings.TrimSpace(line)
	}()
	var taskPID int
	select {
	case s := <-pidc:
		taskPID, _ = strconv.Atoi(s)
	case <-time.After(60 * time.Second):
		first.Process.Kill()
		t.Fatalf("task never started; output:\n%s", &out1)
	}
	if taskPID == 0 {
		t.Fatalf("no task pid; output:\n%s", &out1)
	}
	// The task's process group outlives the runner; end it when the test ends.
	t.Cleanup(func() { syscall.Kill(-taskPID, syscall.SIGKILL) })

	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.Wait()
	if !strings.Contains(out1.String(), "✓ first") {
		t.Fatalf("first task had not succeeded before the kill:\n%s", &out1)
	}

	// Second life: the scheduler recovers the run.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	second := exec.CommandContext(ctx, bin, "serve", "--until-idle", "--db", db)
	second.Env = env
	if out, err := second.CombinedOutput(); err != nil {
		t.Fatalf("restart: %v\n%s", err, out)
	}

	show := exec.Command(bin, "runs", "show", "crash", "manual__2024-05-01T00:00:00+00:00", "--db", db)
	out, err := show.CombinedOutput()
	if err != nil {
		t.Fatalf("runs show: %v\n%s", err, out)
	}
	text := string(out)
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`of crash: success`),
		regexp.MustCompile(`first +success +1/2`),
		regexp.MustCompile(`block +success +2/3 .*"try 2 ok"`), // the interrupted try costs no retry
		regexp.MustCompile(`last +success +1/2 .*"after try 2 ok"`),
	} {
		if !want.MatchString(text) {
			t.Errorf("runs show lacks %s:\n%s", want, text)
		}
	}
	// The first try's subshell outlived the killed runner; the restarted
	// runner must stop it before the second try starts: no tick of try 1
	// after "start 2".
	ticks, err := os.ReadFile(filepath.Join(dir, "ticks"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(ticks), "start 2\n")
	if !ok {
		t.Fatalf("no second try in the ticks file:\n%s", ticks)
	}
	if n := strings.Count(after, "tick 1"); n > 0 {
		t.Errorf("try 1's process ran on during try 2 (%d ticks after try 2 started): two executions of one task overlapped", n)
	}
	ran, err := os.ReadFile(filepath.Join(dir, "first"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(ran), "ran"); n != 1 {
		t.Errorf("the succeeded task ran %d times, want 1", n)
	}
}
