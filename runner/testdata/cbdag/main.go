// Command cbdag is a DAG binary for the runner's callback crash test: its task
// fails, and its failure callback, on its first call, tells the test the
// event's key through a FIFO and blocks until the test kills the runner; on a
// later call it records the key as delivered.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/runner"
	"github.com/trellisdag/trellis/task"
)

var cb = dag.New("cb", dag.DefaultRetries(0, 0))

func onFailure(ctx context.Context, e task.Event) error {
	dir := os.Getenv("CB_DIR")
	if _, err := os.Stat(dir + "/first-call"); errors.Is(err, os.ErrNotExist) {
		if err := os.WriteFile(dir+"/first-call", []byte(e.Key), 0o600); err != nil {
			return err
		}
		f, err := os.OpenFile(dir+"/fifo", os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		fmt.Fprintln(f, e.Key)
		f.Close()
		<-ctx.Done() // the runner is killed meanwhile
		return ctx.Err()
	}
	f, err := os.OpenFile(dir+"/delivered", os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = fmt.Fprintf(f, "%s %s %s try %d: %s\n", e.Key, e.Kind, e.TaskID, e.Try, e.Error)
	return err
}

func init() {
	cb.Add(task.Go("boom", func(ctx context.Context, r *task.Run) (int, error) {
		fmt.Fprintln(r.Output(), "about to fail")
		return 0, errors.New("boom")
	}, task.OnFailure(onFailure)))
}

func main() { runner.Main(cb) }
