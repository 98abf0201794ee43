package notify

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/trellisdag/trellis/task"
)

// DefaultLogTailLimit is how many bytes of an event's log tail a notifier
// sends when it is not told otherwise (WithLogTailLimit,
// SMTPConfig.LogTailLimit). The end of the log is kept: that is where a
// failure usually shows.
const DefaultLogTailLimit = 4096

// ErrorLimit is how many bytes of an event's error a notifier sends. The start
// of the error is kept and a cut error ends with "…".
const ErrorLimit = 2048

// DefaultTimeout bounds a call whose ctx has no deadline. The runner always
// gives one; this is for callers that do not.
const DefaultTimeout = 30 * time.Second

// withDeadline returns ctx, with DefaultTimeout when it has no deadline.
func withDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, DefaultTimeout)
}

// logTailLimit resolves a limit: 0 is the default, negative is none.
func logTailLimit(n int) int {
	switch {
	case n == 0:
		return DefaultLogTailLimit
	case n < 0:
		return 0
	}
	return n
}

// readSecret reads a file holding one value (a token, a password, a URL), at
// call time so that a mounted Kubernetes Secret can rotate. Surrounding white
// space (the trailing newline of most files) is dropped; an empty file is an
// error. Errors name the file, never its content.
func readSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return s, nil
}

// tail returns the end of s, at most n bytes, starting on a rune boundary,
// and whether it cut anything.
func tail(s string, n int) (string, bool) {
	if len(s) <= n {
		return s, false
	}
	if n <= 0 {
		return "", true
	}
	i := len(s) - n
	for i < len(s) && !utf8.RuneStart(s[i]) {
		i++
	}
	return s[i:], true
}

// head returns the start of s, at most n bytes, ending on a rune boundary,
// and whether it cut anything.
func head(s string, n int) (string, bool) {
	if len(s) <= n {
		return s, false
	}
	if n <= 0 {
		return "", true
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i], true
}

// cutError bounds an event's error to ErrorLimit bytes, "…" included.
func cutError(s string) string {
	if h, cut := head(s, ErrorLimit-len("…")); cut {
		return h + "…"
	}
	return s
}

// oneLine replaces line breaks and other control characters with spaces, for
// a subject or a summary line.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// subject names what happened in a few words: "orders_etl.load failed".
func subject(e task.Event) string {
	t := e.DAGID + "." + e.TaskID
	run := e.DAGID + " run " + e.RunID
	var s string
	switch e.Kind {
	case task.EventTaskFailure:
		s = t + " failed"
	case task.EventTaskRetry:
		s = t + " failed " + tryOf(e) + ", will retry"
	case task.EventTaskSuccess:
		s = t + " succeeded"
	case task.EventRunFailure:
		s = run + " failed"
	case task.EventRunSuccess:
		s = run + " succeeded"
	case task.EventDeadlineMissed:
		s = run + " missed its deadline"
	default:
		what := run
		if e.TaskID != "" {
			what = t
		}
		s = what + ": " + string(e.Kind)
		if e.State != "" {
			s += " (" + e.State + ")"
		}
	}
	return oneLine(s)
}

// summary is one line saying what happened, where:
// "Task orders_etl.load failed (try 3/3) in run scheduled__2026-01-02T00:00:00Z".
func summary(e task.Event) string {
	t := e.DAGID + "." + e.TaskID
	var s string
	switch e.Kind {
	case task.EventTaskFailure:
		s = fmt.Sprintf("Task %s failed (%s) in run %s", t, tryOf(e), e.RunID)
	case task.EventTaskRetry:
		s = fmt.Sprintf("Task %s failed (%s) in run %s; it will be retried", t, tryOf(e), e.RunID)
	case task.EventTaskSuccess:
		s = fmt.Sprintf("Task %s succeeded (%s) in run %s", t, tryOf(e), e.RunID)
	case task.EventRunFailure:
		s = fmt.Sprintf("Run %s of DAG %s failed", e.RunID, e.DAGID)
	case task.EventRunSuccess:
		s = fmt.Sprintf("Run %s of DAG %s succeeded", e.RunID, e.DAGID)
	case task.EventDeadlineMissed:
		s = fmt.Sprintf("Run %s of DAG %s missed its deadline", e.RunID, e.DAGID)
	default:
		if e.TaskID != "" {
			s = fmt.Sprintf("Task %s: %s", t, e.Kind)
		} else {
			s = fmt.Sprintf("Run %s of DAG %s: %s", e.RunID, e.DAGID, e.Kind)
		}
		if e.State != "" {
			s += " (" + e.State + ")"
		}
	}
	return oneLine(s)
}

func tryOf(e task.Event) string {
	if e.MaxTries > 0 {
		return fmt.Sprintf("try %d/%d", e.Try, e.MaxTries)
	}
	return fmt.Sprintf("try %d", e.Try)
}

// field is one labelled line of a human-readable notification.
type field struct{ label, value string }

// fields lists what is known of an event, in a fixed order, leaving out what
// is empty. The error and the log tail are not fields: they have sections.
func fields(e task.Event) []field {
	var fs []field
	add := func(label, value string) {
		if value != "" {
			fs = append(fs, field{label, oneLine(value)})
		}
	}
	add("DAG", e.DAGID)
	add("Task", e.TaskID)
	add("Run", e.RunID)
	if e.Try > 0 {
		if e.MaxTries > 0 {
			add("Try", fmt.Sprintf("%d of %d", e.Try, e.MaxTries))
		} else {
			add("Try", fmt.Sprint(e.Try))
		}
	}
	add("State", e.State)
	add("Logical date", timeText(e.LogicalDate))
	if !e.DataIntervalStart.IsZero() || !e.DataIntervalEnd.IsZero() {
		add("Data interval", timeText(e.DataIntervalStart)+" – "+timeText(e.DataIntervalEnd))
	}
	add("At", timeText(e.At))
	add("Link", e.URL)
	add("Event key", e.Key)
	return fs
}

func timeText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
