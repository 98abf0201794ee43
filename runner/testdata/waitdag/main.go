// Command waitdag is a DAG binary for the runner's sensor crash test: a
// sensor waits for $WAIT_DIR/ready (poke interval 200 ms); at its second poke
// (so its first deferral is committed) it tells the test through the FIFO
// $WAIT_DIR/fifo, so the test can kill the runner while the sensor waits.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/runner"
	"github.com/trellisdag/trellis/task"
)

var d = dag.New("wait", dag.DefaultRetries(0, 0))

var (
	once  sync.Once
	count atomic.Int32
)

var (
	ready = task.Sensor("ready", func(ctx context.Context, r *task.Run) (bool, error) {
		dir := os.Getenv("WAIT_DIR")
		f, err := os.OpenFile(dir+"/pokes", os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			return false, err
		}
		fmt.Fprintf(f, "pid %d try %d\n", os.Getpid(), r.Info().Try)
		f.Close()
		_, err = os.Stat(dir + "/ready")
		if errors.Is(err, os.ErrNotExist) {
			if count.Add(1) < 2 {
				return false, nil
			}
			once.Do(func() {
				if fifo, err := os.OpenFile(dir+"/fifo", os.O_WRONLY, 0); err == nil {
					fmt.Fprintln(fifo, "deferred")
					fifo.Close()
				}
			})
			return false, nil
		}
		return err == nil, err
	}, task.PokeInterval(200*time.Millisecond))
	after = task.Go("after", func(ctx context.Context, r *task.Run) (string, error) { return "went on", nil })
)

func init() {
	d.Add(ready, after)
	ready.Then(after)
}

func main() { runner.Main(d) }
