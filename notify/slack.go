package notify

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/trellisdag/trellis/task"
)

// Slack returns a callback that posts the event to a Slack incoming webhook
// (https://api.slack.com/messaging/webhooks): a message whose first line
// sums it up,
//
//	:red_circle: Task orders_etl.load failed (try 3/3) in run scheduled__2026-01-02T00:00:00Z
//
// followed by a link to the try when the event has a URL, the error and the
// end of the log in code blocks (cut to fit Slack's 3,000-character block
// text, keeping the log's end), and a context line with the logical date,
// the data interval and the event's key.
//
// The webhook URL is a secret: give it with WithURLFile (and webhookURL "")
// to read it from a mounted Kubernetes Secret at each call. Errors name
// hooks.slack.com, never the URL's path. The options and the request headers
// (Idempotency-Key included) are Webhook's; Slack answers errors with a 4xx status and a short body ("invalid_payload",
// "no_service", ...), which the error quotes.
func Slack(webhookURL string, opts ...Option) task.Callback {
	h := newHTTPConfig(opts)
	return func(ctx context.Context, e task.Event) error {
		body, err := marshal(newSlackMessage(e, logTailLimit(h.logTail)))
		if err != nil {
			return fmt.Errorf("notify: slack: %w", err)
		}
		return h.post(ctx, "slack", webhookURL, e, body)
	}
}

// slackMessage is an incoming webhook's payload: Text is the notification's
// (and the fallback's) text, Blocks the message.
type slackMessage struct {
	Text   string       `json:"text"`
	Blocks []slackBlock `json:"blocks"`
}

type slackBlock struct {
	Type     string      `json:"type"`
	Text     *slackText  `json:"text,omitempty"`
	Elements []slackText `json:"elements,omitempty"`
}

type slackText struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// slackBlockText is the most a section block's text may hold (Slack counts
// characters; we count bytes, which is stricter); slackCodeBudget leaves room
// for a section's title and fences.
// The summary line and the link share a section: their bounds keep it
// within Slack's.
const (
	slackBlockText  = 3000
	slackCodeBudget = slackBlockText - 100
	slackMaxSummary = 800
	slackMaxURL     = 2000
)

func slackEmoji(k task.EventKind) string {
	switch k {
	case task.EventTaskFailure, task.EventRunFailure:
		return ":red_circle:"
	case task.EventTaskRetry:
		return ":large_orange_circle:"
	case task.EventTaskSuccess, task.EventRunSuccess:
		return ":large_green_circle:"
	case task.EventDeadlineMissed:
		return ":alarm_clock:"
	}
	return ":information_source:"
}

func newSlackMessage(e task.Event, logLimit int) slackMessage {
	sum, _ := slackFit(summary(e), slackMaxSummary, false)
	line := slackEmoji(e.Kind) + " " + sum
	top := line
	if u := slackEscape(strings.ReplaceAll(e.URL, "|", "%7C")); u != "" && len(u) <= slackMaxURL {
		what := "the try"
		if e.TaskID == "" {
			what = "the run"
		}
		top += "\n<" + u + "|View " + what + " in trellis>"
	}
	m := slackMessage{Text: line}
	section := func(s string) {
		m.Blocks = append(m.Blocks, slackBlock{Type: "section", Text: &slackText{Type: "mrkdwn", Text: s}})
	}
	section(top)
	if e.Error != "" {
		s, cut := slackFit(cutError(e.Error), slackCodeBudget, false)
		if cut {
			s += "…"
		}
		section("*Error*\n```" + s + "```")
	}
	if logTail, cut := tail(e.LogTail, logLimit); logTail != "" {
		s, cut2 := slackFit(logTail, slackCodeBudget, true)
		if cut || cut2 {
			s = "…\n" + s
		}
		section("*Log tail*\n```" + s + "```")
	}
	var ctx []string
	if d := timeText(e.LogicalDate); d != "" {
		ctx = append(ctx, "Logical date "+d)
	}
	if !e.DataIntervalStart.IsZero() || !e.DataIntervalEnd.IsZero() {
		ctx = append(ctx, "data interval "+timeText(e.DataIntervalStart)+" – "+timeText(e.DataIntervalEnd))
	}
	if e.Key != "" {
		k, _ := head(oneLine(e.Key), 200)
		ctx = append(ctx, "event "+k)
	}
	if len(ctx) > 0 {
		m.Blocks = append(m.Blocks, slackBlock{Type: "context", Elements: []slackText{{Type: "mrkdwn", Text: slackEscape(strings.Join(ctx, " · "))}}})
	}
	return m
}

// slackEscape escapes the three characters Slack's mrkdwn gives a meaning to.
func slackEscape(s string) string { return slackEscaper.Replace(s) }

var slackEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

func slackEscLen(r rune, size int) int {
	switch r {
	case '&':
		return len("&amp;")
	case '<', '>':
		return len("&lt;")
	}
	return size
}

// slackFit escapes s for a code block and cuts it to at most n bytes once
// escaped: keeping its end when fromEnd, else its start. A "```" in s would
// close the block: a zero-width space breaks it up.
func slackFit(s string, n int, fromEnd bool) (string, bool) {
	s = strings.ReplaceAll(s, "```", "``\u200b`")
	size := 0
	if fromEnd {
		i := len(s)
		for i > 0 {
			r, w := utf8.DecodeLastRuneInString(s[:i])
			if size+slackEscLen(r, w) > n {
				break
			}
			size += slackEscLen(r, w)
			i -= w
		}
		return slackEscape(s[i:]), i > 0
	}
	i := 0
	for i < len(s) {
		r, w := utf8.DecodeRuneInString(s[i:])
		if size+slackEscLen(r, w) > n {
			break
		}
		size += slackEscLen(r, w)
		i += w
	}
	return slackEscape(s[:i]), i < len(s)
}
