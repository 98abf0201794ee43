package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/trellisdag/trellis/task"
)

// Webhook returns a callback that POSTs the event to url as a JSON
// WebhookPayload, with the headers
//
//	Content-Type: application/json
//	Idempotency-Key: <the event's Key>
//	User-Agent: trellis-notify
//
// plus those of the options (WithHeader, WithHeaderFile,
// WithBearerTokenFile). Any 2xx response is success; another status is an
// error wrapping an *HTTPError. Deliveries are at least once: a receiver that
// must act once deduplicates on Idempotency-Key (the payload's key).
//
// The log tail is cut to DefaultLogTailLimit bytes (WithLogTailLimit), the
// error to ErrorLimit, so the body stays small: a few KiB.
func Webhook(url string, opts ...Option) task.Callback {
	h := newHTTPConfig(opts)
	return func(ctx context.Context, e task.Event) error {
		body, err := marshal(NewWebhookPayload(e, h.logTail))
		if err != nil {
			return fmt.Errorf("notify: webhook: %w", err)
		}
		return h.post(ctx, "webhook", url, e, body)
	}
}

// WebhookPayload is the JSON document Webhook posts. Its field names are
// stable; fields may be added. Times are RFC 3339 in UTC and left out when
// unknown (a manual run's data interval may be). For a run's events taskId is
// "" and try and maxTries are 0. An example:
//
//	{
//	  "kind": "task_failure",
//	  "dagId": "orders_etl",
//	  "runId": "scheduled__2026-01-02T00:00:00Z",
//	  "taskId": "load",
//	  "try": 3,
//	  "maxTries": 3,
//	  "state": "failed",
//	  "error": "exit status 1",
//	  "logicalDate": "2026-01-02T00:00:00Z",
//	  "dataIntervalStart": "2026-01-01T00:00:00Z",
//	  "dataIntervalEnd": "2026-01-02T00:00:00Z",
//	  "at": "2026-01-02T00:07:12.5Z",
//	  "logTail": "loading 1200 rows\nERROR: relation \"orders\" does not exist\n",
//	  "url": "https://trellis.example.com/dags/orders_etl/runs/scheduled__2026-01-02T00:00:00Z/tasks/load?try=3",
//	  "key": "…"
//	}
type WebhookPayload struct {
	// Kind is the event's kind: task_failure, task_retry, task_success,
	// run_failure, run_success or deadline_missed.
	Kind task.EventKind `json:"kind"`
	// DAGID, RunID and TaskID say where it happened.
	DAGID  string `json:"dagId"`
	RunID  string `json:"runId"`
	TaskID string `json:"taskId"`
	// Try is the try that ended; MaxTries its task's.
	Try      int `json:"try"`
	MaxTries int `json:"maxTries"`
	// State is the task's or the run's state after the change.
	State string `json:"state"`
	// Error is the try's or the run's error, at most ErrorLimit bytes.
	Error string `json:"error"`
	// LogicalDate and the data interval of the run.
	LogicalDate       time.Time `json:"logicalDate,omitzero"`
	DataIntervalStart time.Time `json:"dataIntervalStart,omitzero"`
	DataIntervalEnd   time.Time `json:"dataIntervalEnd,omitzero"`
	// At is when the change was committed.
	At time.Time `json:"at,omitzero"`
	// LogTail is the end of the try's log, at most the notifier's limit
	// (DefaultLogTailLimit bytes unless told otherwise).
	LogTail string `json:"logTail"`
	// LogTailTruncated is true when LogTail was cut to the limit; left out
	// when false.
	LogTailTruncated bool `json:"logTailTruncated,omitempty"`
	// URL links to the try or the run in the web UI; "" when the runner has
	// no base URL.
	URL string `json:"url"`
	// Key is the same for every delivery of one event: deduplicate on it.
	Key string `json:"key"`
}

// NewWebhookPayload is the payload Webhook sends for e, its log tail cut to
// limit bytes (0: DefaultLogTailLimit; negative: none) and its error to
// ErrorLimit.
func NewWebhookPayload(e task.Event, limit int) WebhookPayload {
	logTail, cut := tail(e.LogTail, logTailLimit(limit))
	return WebhookPayload{
		Kind:              e.Kind,
		DAGID:             e.DAGID,
		RunID:             e.RunID,
		TaskID:            e.TaskID,
		Try:               e.Try,
		MaxTries:          e.MaxTries,
		State:             e.State,
		Error:             cutError(e.Error),
		LogicalDate:       utc(e.LogicalDate),
		DataIntervalStart: utc(e.DataIntervalStart),
		DataIntervalEnd:   utc(e.DataIntervalEnd),
		At:                utc(e.At),
		LogTail:           logTail,
		LogTailTruncated:  cut,
		URL:               e.URL,
		Key:               e.Key,
	}
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}

// marshal encodes v without HTML escaping (a log's "<" stays "<").
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
