package runner_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/trellisdag/trellis/internal/store"
	"github.com/trellisdag/trellis/task"
)

// buildBench builds a testdata binary for a benchmark.
func buildBench(tb testing.TB, name string) string {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), name)
	if out, err := exec.Command("go", "build", "-o", bin, "./testdata/"+name).CombinedOutput(); err != nil {
		tb.Fatalf("build %s: %v\n%s", name, err, out)
	}
	return bin
}

// procCPU returns the CPU time (user + system) process pid has used, from
// /proc/<pid>/stat, in ticks of tick.
func procCPU(tb testing.TB, pid int, tick time.Duration) time.Duration {
	tb.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		tb.Fatal(err)
	}
	// The fields after the command name, which is in parentheses: state is
	// field 3, utime 14, stime 15.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		tb.Fatalf("/proc/%d/stat: %q", pid, b)
	}
	return time.Duration(utime+stime) * tick
}

// procMem returns a size field ("VmRSS", "VmHWM") of /proc/<pid>/status, in
// bytes.
func procMem(tb testing.TB, pid int, field string) int64 {
	tb.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		tb.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				tb.Fatal(err)
			}
			return kb << 10
		}
	}
	tb.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// clockTick is the unit of /proc's CPU times (getconf CLK_TCK, 100 Hz on
// Linux unless told otherwise).
func clockTick() time.Duration {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if hz, perr := strconv.Atoi(strings.TrimSpace(string(out))); err == nil && perr == nil && hz > 0 {
		return time.Second / time.Duration(hz)
	}
	return 10 * time.Millisecond
}

// BenchmarkServeSensors10000 checks the sensors requirement's memory and idle
// CPU on a real runner process: `serve` (web server listening, default
// parallelism, synchronous=FULL) of a binary whose hourly DAG of 100 sensors
// catches up 100 runs, the sensors never met, poke interval an hour. Once the
// 10,000 first pokes are made it measures the process's RSS (/proc) and its
// CPU time over 10 s of wall time with every sensor deferred. (The pokes/s of
// all sensors due together needs the fake clock: BenchmarkSensors10000 in
// scheduler.)
func BenchmarkServeSensors10000(b *testing.B) {
	const sensors, runs = 10000, 100
	const quiet = 10 * time.Second
	bin := buildBench(b, "sensordag")
	tick := clockTick()
	for range b.N {
		dir := b.TempDir()
		db := filepath.Join(dir, "trellis.db")
		poked := make(chan struct{})
		var once sync.Once
		sig := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			once.Do(func() { close(poked) })
		}))
		cmd := exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--db", db)
		cmd.Env = append(os.Environ(), "SENSORS_SIGNAL_AT="+strconv.Itoa(sensors), "SENSORS_SIGNAL_URL="+sig.URL,
			"TRELLIS_PAUSE_NEW_DAGS=false")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		began := time.Now()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		select {
		case <-poked:
		case err := <-exited:
			b.Fatalf("serve exited: %v\n%s", err, &out)
		case <-time.After(5 * time.Minute):
			cmd.Process.Kill()
			b.Fatalf("%d first pokes not made in 5 minutes\n%s", sensors, &out)
		}
		firstPokes := time.Since(began)
		pid := cmd.Process.Pid
		rss0 := procMem(b, pid, "VmRSS")
		cpu0, wall0 := procCPU(b, pid, tick), time.Now()
		time.Sleep(quiet) // the measurement window itself: nothing is awaited
		cpu, wall := procCPU(b, pid, tick)-cpu0, time.Since(wall0)
		rss1, hwm := procMem(b, pid, "VmRSS"), procMem(b, pid, "VmHWM")

		st, err := store.Open(context.Background(), db, store.Options{ReadOnly: true})
		if err != nil {
			b.Fatal(err)
		}
		active, err := st.ActiveRuns(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		deferred := 0
		for _, r := range active {
			tis, err := st.TaskInstances(context.Background(), r.ID)
			if err != nil {
				b.Fatal(err)
			}
			for _, ti := range tis {
				if ti.State == task.StateDeferred {
					deferred++
				}
			}
		}
		st.Close()
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			b.Fatal(err)
		}
		if err := <-exited; err != nil {
			b.Errorf("serve: %v\n%s", err, &out)
		}
		sig.Close()
		if len(active) != runs || deferred != sensors {
			b.Fatalf("%d active runs, %d sensors deferred after the window; want %d, %d", len(active), deferred, runs, sensors)
		}
		share := cpu.Seconds() / wall.Seconds()
		b.Logf("serve with %d sensors deferred across %d runs: first pokes made %s after start; RSS %.1f MB (%.1f MB after the window), peak %.1f MB; CPU %s in %s (%.2f%% of a core)",
			sensors, runs, firstPokes.Round(time.Millisecond), float64(rss0)/1e6, float64(rss1)/1e6, float64(hwm)/1e6,
			cpu, wall.Round(time.Millisecond), 100*share)
		b.ReportMetric(float64(rss1)/1e6, "MB-RSS-deferred")
		b.ReportMetric(float64(hwm)/1e6, "MB-peak-RSS")
		b.ReportMetric(100*share, "%core-between-pokes")
		if hwm > 150e6 || share > 0.05 {
			b.Errorf("a ceiling is missed: peak RSS %.1f MB (≤ 150), %.2f%% of a core between pokes (≤ 5)", float64(hwm)/1e6, 100*share)
		}
	}
}
