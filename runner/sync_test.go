package runner_test

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trellisdag/trellis/runner"
)

// TestConfigSync: a team's main sets the durability with runner's own type;
// a value that is neither full nor normal is an error naming the field.
func TestConfigSync(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "trellis.db")
	for _, tc := range []struct {
		sync runner.Sync
		ok   bool
	}{{runner.SyncFull, true}, {runner.SyncNormal, true}, {"", true}, {"fast", false}} {
		var out bytes.Buffer
		r := runner.New(runner.Config{Sync: tc.sync, Stdout: &out, Stderr: &out, Getenv: func(string) string { return "" }}, testDAGs()...)
		code := r.Run(context.Background(), []string{"dags", "trigger", "etl", "--db", db})
		if tc.ok != (code == 0) {
			t.Errorf("Sync %q: exit %d\n%s", tc.sync, code, &out)
		}
		if !tc.ok && !strings.Contains(out.String(), `runner.Config.Sync "fast": want "full" or "normal"`) {
			t.Errorf("Sync %q: %s", tc.sync, &out)
		}
	}
}
