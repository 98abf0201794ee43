package notify_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/trellisdag/trellis/notify"
	"github.com/trellisdag/trellis/task"
)

// slackMessage is an incoming webhook's payload, as Slack reads it.
type slackMessage struct {
	Text   string `json:"text"`
	Blocks []struct {
		Type string `json:"type"`
		Text *struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"text"`
		Elements []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"elements"`
	} `json:"blocks"`
}

func decodeSlack(t *testing.T, r request) slackMessage {
	t.Helper()
	var m slackMessage
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, r.body)
	}
	for i, b := range m.Blocks {
		if b.Type == "section" {
			if b.Text == nil || b.Text.Type != "mrkdwn" {
				t.Fatalf("block %d: a section without mrkdwn text: %s", i, r.body)
			}
			if n := utf8.RuneCountInString(b.Text.Text); n > 3000 {
				t.Errorf("block %d: text is %d characters, more than Slack takes", i, n)
			}
		}
	}
	return m
}

func TestSlackMessage(t *testing.T) {
	srv, reqs := httpSink(t, http.StatusOK, "ok")
	ev := failureEvent()
	ev.Error = `load: relation "orders" does not exist <&>`
	cb := notify.Slack(srv.URL + "/services/T000/B000/XXXX")
	if err := cb(context.Background(), ev); err != nil {
		t.Fatalf("Slack: %v", err)
	}
	r := recv(t, reqs, "the request")
	if r.method != http.MethodPost || r.path != "/services/T000/B000/XXXX" {
		t.Errorf("request = %s %s", r.method, r.path)
	}
	if ct, k := r.header.Get("Content-Type"), r.header.Get("Idempotency-Key"); ct != "application/json" || k != ev.Key {
		t.Errorf("Content-Type %q, Idempotency-Key %q", ct, k)
	}
	m := decodeSlack(t, r)
	const line = ":red_circle: Task orders_etl.load failed (try 3/3) in run scheduled__2026-01-02T00:00:00Z"
	if m.Text != line {
		t.Errorf("text = %q, want %q", m.Text, line)
	}
	if len(m.Blocks) != 4 {
		t.Fatalf("%d blocks, want summary, error, log, context: %s", len(m.Blocks), r.body)
	}
	link := "<https://trellis.example.com/dags/orders_etl/runs/scheduled__2026-01-02T00:00:00Z/tasks/load?try=3&amp;view=log|View the try in trellis>"
	if got, want := m.Blocks[0].Text.Text, line+"\n"+link; got != want {
		t.Errorf("summary block = %q, want %q", got, want)
	}
	if got, want := m.Blocks[1].Text.Text, "*Error*\n```load: relation \"orders\" does not exist &lt;&amp;&gt;```"; got != want {
		t.Errorf("error block = %q, want %q", got, want)
	}
	if got, want := m.Blocks[2].Text.Text, "*Log tail*\n```"+ev.LogTail+"```"; got != want {
		t.Errorf("log block = %q, want %q", got, want)
	}
	if m.Blocks[3].Type != "context" || len(m.Blocks[3].Elements) != 1 {
		t.Fatalf("last block: %s", r.body)
	}
	ctxText := m.Blocks[3].Elements[0].Text
	for _, want := range []string{"Logical date 2026-01-02T00:00:00Z", "data interval 2026-01-01T00:00:00Z – 2026-01-02T00:00:00Z", "event evt-42/task_failure"} {
		if !strings.Contains(ctxText, want) {
			t.Errorf("context %q does not say %q", ctxText, want)
		}
	}
}

func TestSlackSummaries(t *testing.T) {
	srv, reqs := httpSink(t, http.StatusOK, "ok")
	run := "scheduled__2026-01-02T00:00:00Z"
	for _, tc := range []struct {
		kind task.EventKind
		try  int
		want string
	}{
		{task.EventTaskFailure, 3, ":red_circle: Task orders_etl.load failed (try 3/3) in run " + run},
		{task.EventTaskRetry, 1, ":large_orange_circle: Task orders_etl.load failed (try 1/3) in run " + run + "; it will be retried"},
		{task.EventTaskSuccess, 2, ":large_green_circle: Task orders_etl.load succeeded (try 2/3) in run " + run},
		{task.EventRunFailure, 0, ":red_circle: Run " + run + " of DAG orders_etl failed"},
		{task.EventRunSuccess, 0, ":large_green_circle: Run " + run + " of DAG orders_etl succeeded"},
		{task.EventDeadlineMissed, 0, ":alarm_clock: Run " + run + " of DAG orders_etl missed its deadline"},
	} {
		ev := failureEvent()
		ev.Kind, ev.Try = tc.kind, tc.try
		if tc.try == 0 {
			ev.TaskID, ev.MaxTries, ev.LogTail, ev.Error = "", 0, "", ""
		}
		if err := notify.Slack(srv.URL)(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
		m := decodeSlack(t, recv(t, reqs, "the request"))
		if m.Text != tc.want {
			t.Errorf("%s: text = %q, want %q", tc.kind, m.Text, tc.want)
		}
		if tc.try == 0 && !strings.Contains(m.Blocks[0].Text.Text, "|View the run in trellis>") {
			t.Errorf("%s: summary block %q does not link to the run", tc.kind, m.Blocks[0].Text.Text)
		}
	}
}

func TestSlackURLFromFile(t *testing.T) {
	srv, reqs := httpSink(t, http.StatusOK, "ok")
	p := writeFile(t, "url", srv.URL+"/services/T000/B000/SECRET\n")
	if err := notify.Slack("", notify.WithURLFile(p))(context.Background(), failureEvent()); err != nil {
		t.Fatal(err)
	}
	if r := recv(t, reqs, "the request"); r.path != "/services/T000/B000/SECRET" {
		t.Errorf("path = %q", r.path)
	}
}

func TestSlackLongLogAndErrorFit(t *testing.T) {
	srv, reqs := httpSink(t, http.StatusOK, "ok")
	ev := failureEvent()
	// Every "<&>" grows when escaped; a "```" would close the code block.
	ev.LogTail = strings.Repeat("a <&> b ``` é\n", 2000) + "THE <END>"
	ev.Error = "FIRST " + strings.Repeat("<&>", 100000)
	ev.URL = ""
	if err := notify.Slack(srv.URL, notify.WithLogTailLimit(1<<20))(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	r := recv(t, reqs, "the request")
	m := decodeSlack(t, r) // checks every section holds at most 3000 characters
	if len(m.Blocks) != 4 {
		t.Fatalf("%d blocks: %s", len(m.Blocks), r.body)
	}
	if strings.Contains(m.Blocks[0].Text.Text, "View the try") {
		t.Errorf("a link without a URL: %q", m.Blocks[0].Text.Text)
	}
	errText := m.Blocks[1].Text.Text
	if !strings.HasPrefix(errText, "*Error*\n```FIRST &lt;&amp;&gt;") || !strings.HasSuffix(errText, "…```") {
		t.Errorf("error block = %q...%q", errText[:40], errText[len(errText)-20:])
	}
	logText := m.Blocks[2].Text.Text
	if !strings.HasPrefix(logText, "*Log tail*\n```…\n") || !strings.HasSuffix(logText, "THE &lt;END&gt;```") {
		t.Errorf("log block = %q...%q", logText[:40], logText[len(logText)-40:])
	}
	inner := strings.TrimSuffix(strings.TrimPrefix(logText, "*Log tail*\n```"), "```")
	if strings.Contains(inner, "```") {
		t.Error("the log closes the code block early")
	}
	if len(logText) < 2500 {
		t.Errorf("log block is %d bytes: cut more than needed", len(logText))
	}
	if len(r.body) > 12<<10 {
		t.Errorf("body is %d bytes", len(r.body))
	}
}

func TestSlackNon2xxIsAnError(t *testing.T) {
	srv, reqs := httpSink(t, http.StatusNotFound, "no_service")
	err := notify.Slack(srv.URL+"/services/T000/B000/SECRET")(context.Background(), failureEvent())
	recv(t, reqs, "the request")
	if err == nil {
		t.Fatal("a 404 answer is not an error")
	}
	host := strings.TrimPrefix(srv.URL, "http://")
	for _, want := range []string{"notify: slack to " + host, "404 Not Found", "no_service"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "SECRET") {
		t.Errorf("error %q shows the webhook's path", err)
	}
}
