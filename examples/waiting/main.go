// Command waiting shows what a pipeline waits for and how it tells people when
// it fails, with no slot held while it waits:
//
//   - vendor stands for another team's DAG in the same binary: it exports the
//     day's orders;
//   - landing waits for vendor's export of the same day (an external task
//     sensor) and for the day's file (a file sensor), then loads it and
//     updates the asset warehouse://sales.orders; load posts a Slack message
//     when its last try fails ($SLACK_WEBHOOK_FILE names a file holding the
//     webhook URL; without it the alert is a log line);
//   - reporting is scheduled on that asset: it runs each time landing has
//     updated it;
//   - landing alerts if a run has not finished two hours after it was
//     queued.
//
// Try it with no cluster:
//
//	mkdir -p /tmp/landing && touch /tmp/landing/2026-01-05.csv
//	go run ./examples/waiting dags trigger vendor --logical-date 2026-01-05
//	go run ./examples/waiting dags trigger landing --logical-date 2026-01-05
//	go run ./examples/waiting serve --until-idle --listen ""
//	go run ./examples/waiting runs list reporting
//	go run ./examples/waiting assets list
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/notify"
	"github.com/trellisdag/trellis/runner"
	"github.com/trellisdag/trellis/sensors"
	"github.com/trellisdag/trellis/task"
)

// Orders is the asset landing updates and reporting is scheduled on.
const Orders = "warehouse://sales.orders"

// dir is where the day's files land ($LANDING_DIR, default /tmp/landing).
func dir() string {
	if d := os.Getenv("LANDING_DIR"); d != "" {
		return d
	}
	return "/tmp/landing"
}

// alert is the failure notification: Slack when $SLACK_WEBHOOK_FILE is set,
// else a log line.
func alert() task.Callback {
	if f := os.Getenv("SLACK_WEBHOOK_FILE"); f != "" {
		return notify.Slack("", notify.WithURLFile(f))
	}
	return func(_ context.Context, e task.Event) error {
		slog.Error("alert", "dag", e.DAGID, "task", e.TaskID, "run", e.RunID, "kind", e.Kind, "error", e.Error)
		return nil
	}
}

func late(_ context.Context, e task.Event) error {
	slog.Warn("late", "dag", e.DAGID, "run", e.RunID, "why", e.Error)
	return nil
}

// Landing waits for vendor's export and the day's file, then loads it.
func Landing() *dag.DAG {
	// Triggered (by the vendor's system, through the API or the CLI); with
	// dag.Schedule("@daily") it would run every day.
	d := dag.New("landing", dag.DefaultRetries(2, time.Minute), dag.AlertAfter(2*time.Hour, dag.FromQueued, late))
	exported := sensors.ExternalTask("exported", sensors.ExternalSpec{DAGID: "vendor", TaskID: "export"},
		task.PokeInterval(10*time.Second), task.SensorTimeout(12*time.Hour))
	landed := sensors.File("landed", filepath.Join(dir(), "{{ .DS }}.csv"),
		task.PokeInterval(10*time.Second), task.SensorTimeout(6*time.Hour))
	load := task.Go("load", func(ctx context.Context, r *task.Run) (int, error) {
		files, err := task.Output(r, landed)
		if err != nil {
			return 0, err
		}
		fmt.Fprintf(r.Output(), "loading %v\n", files)
		return len(files), nil
	}, task.Outlets(Orders), task.OnFailure(alert()))
	d.Add(exported, landed, load)
	task.Chain(exported, landed, load)
	return d
}

// Vendor exports the day's orders (another team's DAG, in this binary).
func Vendor() *dag.DAG {
	d := dag.New("vendor")
	d.Add(task.Go("export", func(ctx context.Context, r *task.Run) (string, error) {
		return "exported " + r.Template().DS, nil
	}))
	return d
}

// Reporting runs each time the orders asset is updated.
func Reporting() *dag.DAG {
	d := dag.New("reporting", dag.ScheduleOnAssets(Orders))
	d.Add(task.Go("publish", func(ctx context.Context, r *task.Run) (string, error) {
		return "report published at " + r.LogicalDate().UTC().Format(time.RFC3339), nil
	}))
	return d
}

func main() { runner.Main(Vendor(), Landing(), Reporting()) }
