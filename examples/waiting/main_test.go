package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trellisdag/trellis/runner"
)

// TestWaitingExample runs the example's flow: vendor's export, then landing
// (its external task and file sensors are met at their first poke), whose
// load updates the asset that schedules reporting.
func TestWaitingExample(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("LANDING_DIR", dir)
	if err := os.WriteFile(filepath.Join(dir, "2026-01-05.csv"), []byte("id,amount\n1,10\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "trellis.db")
	run := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		r := runner.New(runner.Config{Stdout: &out, Stderr: &out}, Vendor(), Landing(), Reporting())
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if code := r.Run(ctx, append(args, "--db", db)); code != 0 {
			t.Fatalf("%v: exit %d\n%s", args, code, &out)
		}
		return out.String()
	}
	run("dags", "trigger", "vendor", "--logical-date", "2026-01-05")
	run("serve", "--until-idle", "--listen", "")
	run("dags", "trigger", "landing", "--logical-date", "2026-01-05")
	run("serve", "--until-idle", "--listen", "")
	if out := run("runs", "show", "landing", "latest"); !strings.Contains(out, "landing: success") || !strings.Contains(out, "2026-01-05.csv") {
		t.Errorf("landing:\n%s", out)
	}
	if out := run("runs", "list", "reporting"); !strings.Contains(out, "asset_triggered__") || !strings.Contains(out, "success") {
		t.Errorf("reporting did not run on the asset:\n%s", out)
	}
	if out := run("assets", "list"); !strings.Contains(out, "warehouse://sales.orders") || !strings.Contains(out, "landing.load") || !strings.Contains(out, "reporting") {
		t.Errorf("assets list:\n%s", out)
	}
}
