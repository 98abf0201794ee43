package sensors_test

import (
	"context"
	"fmt"
	"time"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/sensors"
	"github.com/trellisdag/trellis/task"
)

// A DAG that waits for another DAG's task of the same day and for the day's
// files, loads them, and triggers a third DAG without waiting for it.
func Example() {
	exported := sensors.ExternalTask("exported", sensors.ExternalSpec{DAGID: "vendor", TaskID: "export"},
		task.PokeInterval(time.Minute))
	landed := sensors.File("landed", "/data/in/{{ .DS }}/*.csv", task.PokeInterval(time.Minute), task.SensorTimeout(6*time.Hour))
	load := task.Go("load", func(ctx context.Context, r *task.Run) (int, error) {
		files, err := task.Output(r, landed) // the matching paths, sorted
		return len(files), err
	})
	report := sensors.TriggerDAG("report", sensors.TriggerSpec{DAGID: "reporting"})
	d := dag.New("landing")
	d.Add(exported, landed, load, report)
	task.Chain(exported, landed, load, report)

	for _, t := range d.Tasks() {
		fmt.Println(t.ID(), task.SettingsOf(t).Kind)
	}
	// Output:
	// exported sensor
	// landed sensor
	// load go
	// report sensor
}
