// Command sensordag is a DAG binary for the runner's sensor benchmark: an
// hourly DAG of 100 sensors whose condition is never met (poke interval an
// hour), with 100 runs of catchup (2024-01-01T00 to T99), so that serve holds
// 10,000 deferred sensors across 100 runs. Once the sensors have made
// $SENSORS_SIGNAL_AT first pokes in all, it posts to $SENSORS_SIGNAL_URL.
package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/runner"
	"github.com/trellisdag/trellis/task"
)

const runs, sensors = 100, 100

var start = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

var d = dag.New("sensors", dag.Schedule("@hourly"), dag.StartDate(start), dag.EndDate(start.Add((runs-1)*time.Hour)),
	dag.MaxActiveRuns(runs), dag.MaxActiveTasks(sensors), dag.DefaultRetries(0, 0))

var pokes atomic.Int64

func poke(ctx context.Context, _ *task.Run) (bool, error) {
	at, _ := strconv.ParseInt(os.Getenv("SENSORS_SIGNAL_AT"), 10, 64)
	if n := pokes.Add(1); n == at {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, os.Getenv("SENSORS_SIGNAL_URL"), strings.NewReader(strconv.FormatInt(n, 10)))
		if err != nil {
			return false, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, err
		}
		resp.Body.Close()
	}
	return false, nil
}

func init() {
	for i := range sensors {
		d.Add(task.Sensor(fmt.Sprintf("s%03d", i), poke, task.PokeInterval(time.Hour)))
	}
}

func main() { runner.Main(d) }
