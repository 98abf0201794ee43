// Command notifydag is a DAG binary for the runner's notification crash test:
// 1,000 tasks fail, each with a failure callback that posts to the webhook at
// $SINK_URL (notify.Webhook); once every one has failed (its failure, and so
// its outbox entry, committed), the task "all_failed" tells the test by
// posting to $SINK_URL/all-failed.
package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/trellisdag/trellis/dag"
	"github.com/trellisdag/trellis/notify"
	"github.com/trellisdag/trellis/runner"
	"github.com/trellisdag/trellis/task"
)

// Failing is how many tasks fail.
const Failing = 1000

var d = dag.New("notify", dag.DefaultRetries(0, 0), dag.MaxActiveTasks(32))

func init() {
	sink := os.Getenv("SINK_URL")
	done := task.Go("all_failed", func(ctx context.Context, r *task.Run) (struct{}, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, sink+"/all-failed", strings.NewReader(r.Info().RunID))
		if err != nil {
			return struct{}{}, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return struct{}{}, err
		}
		return struct{}{}, resp.Body.Close()
	}, task.Trigger(task.AllDone))
	d.Add(done)
	for i := range Failing {
		t := task.Go(fmt.Sprintf("t%04d", i), func(_ context.Context, r *task.Run) (struct{}, error) {
			fmt.Fprintln(r.Output(), "about to fail")
			return struct{}{}, errors.New("boom")
		}, task.OnFailure(notify.Webhook(sink)))
		d.Add(t)
		t.Then(done)
	}
}

func main() { runner.Main(d) }
