package notify_test

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/trellisdag/trellis/notify"
	"github.com/trellisdag/trellis/task"
)

func loadOrders(ctx context.Context, r *task.Run) (int, error) { return 0, nil }

// Post to a Slack channel when a task's last try fails. The incoming
// webhook's URL is a secret: it is read, at each call, from a mounted
// Kubernetes Secret.
func ExampleSlack() {
	load := task.Go("load", loadOrders,
		task.Retries(2),
		task.OnFailure(notify.Slack("", notify.WithURLFile("/var/run/secrets/slack/webhook-url"))),
	)
	_ = load // add it to a DAG
}

// Tell another system about every try that will be retried, and every
// failure, with a bearer token that can rotate.
func ExampleWebhook() {
	hook := notify.Webhook("https://ops.example.com/hooks/trellis",
		notify.WithBearerTokenFile("/var/run/secrets/ops/token"),
		notify.WithHeader("X-Team", "data-platform"),
		notify.WithLogTailLimit(16<<10),
	)
	load := task.Go("load", loadOrders,
		task.Retries(2),
		task.OnRetry(hook),
		task.OnFailure(hook),
	)
	_ = load
}

// Mail the on-call list when a task fails: STARTTLS when the server offers
// it, AUTH PLAIN with a password from a mounted Secret.
func ExampleEmail() {
	mail := notify.Email(notify.SMTPConfig{
		Addr:         "smtp.example.com:587",
		From:         "Trellis <trellis@example.com>",
		To:           []string{"data-oncall@example.com"},
		Username:     "trellis",
		PasswordFile: "/var/run/secrets/smtp/password",
		RequireTLS:   true,
	})
	load := task.Go("load", loadOrders, task.OnFailure(mail))
	_ = load
}

// Several notifiers for one event: callbacks run in order, each on its own.
func Example_several() {
	load := task.Go("load", loadOrders,
		task.OnFailure(notify.Slack("", notify.WithURLFile("/var/run/secrets/slack/webhook-url"))),
		task.OnFailure(notify.Email(notify.SMTPConfig{
			Addr: "smtp.example.com:587",
			From: "trellis@example.com",
			To:   []string{"data-oncall@example.com"},
		})),
	)
	_ = load
}

// The document Webhook posts for a task's last failed try.
func ExampleWebhookPayload() {
	ev := task.Event{
		Kind:              task.EventTaskFailure,
		DAGID:             "orders_etl",
		RunID:             "scheduled__2026-01-02T00:00:00Z",
		TaskID:            "load",
		Try:               3,
		MaxTries:          3,
		State:             "failed",
		Error:             "exit status 1",
		LogicalDate:       time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC),
		DataIntervalStart: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		DataIntervalEnd:   time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC),
		At:                time.Date(2026, 1, 2, 0, 7, 12, 0, time.UTC),
		LogTail:           "loading 1200 rows\nERROR: relation \"orders\" does not exist\n",
		URL:               "https://trellis.example.com/dags/orders_etl/runs/scheduled__2026-01-02T00:00:00Z/tasks/load?try=3",
		Key:               "7f3c9a",
	}
	b, _ := json.MarshalIndent(notify.NewWebhookPayload(ev, 0), "", "  ")
	fmt.Println(string(b))
	// Output:
	// {
	//   "kind": "task_failure",
	//   "dagId": "orders_etl",
	//   "runId": "scheduled__2026-01-02T00:00:00Z",
	//   "taskId": "load",
	//   "try": 3,
	//   "maxTries": 3,
	//   "state": "failed",
	//   "error": "exit status 1",
	//   "logicalDate": "2026-01-02T00:00:00Z",
	//   "dataIntervalStart": "2026-01-01T00:00:00Z",
	//   "dataIntervalEnd": "2026-01-02T00:00:00Z",
	//   "at": "2026-01-02T00:07:12Z",
	//   "logTail": "loading 1200 rows\nERROR: relation \"orders\" does not exist\n",
	//   "url": "https://trellis.example.com/dags/orders_etl/runs/scheduled__2026-01-02T00:00:00Z/tasks/load?try=3",
	//   "key": "7f3c9a"
	// }
}
