package notify_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/trellisdag/trellis/notify"
	"github.com/trellisdag/trellis/task"
)

func TestWebhookPostsTheEvent(t *testing.T) {
	srv, reqs := httpSink(t, http.StatusNoContent, "")
	token := writeFile(t, "token", "s3cret-token\n")
	cb := notify.Webhook(srv.URL+"/hooks/trellis",
		notify.WithBearerTokenFile(token),
		notify.WithHeader("X-Team", "data-platform"),
		notify.WithHeader("Content-Type", "text/plain"), // the notifier's wins
	)
	ev := failureEvent()
	if err := cb(context.Background(), ev); err != nil {
		t.Fatalf("Webhook: %v", err)
	}
	r := recv(t, reqs, "the request")
	if r.method != http.MethodPost || r.path != "/hooks/trellis" {
		t.Errorf("request = %s %s, want POST /hooks/trellis", r.method, r.path)
	}
	for name, want := range map[string]string{
		"Content-Type":    "application/json",
		"Idempotency-Key": "evt-42/task_failure",
		"Authorization":   "Bearer s3cret-token",
		"X-Team":          "data-platform",
		"User-Agent":      "trellis-notify",
	} {
		if got := r.header.Get(name); got != want {
			t.Errorf("header %s = %q, want %q", name, got, want)
		}
	}

	var doc map[string]any
	if err := json.Unmarshal(r.body, &doc); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, r.body)
	}
	want := map[string]any{
		"kind":              "task_failure",
		"dagId":             "orders_etl",
		"runId":             "scheduled__2026-01-02T00:00:00Z",
		"taskId":            "load",
		"try":               3.0,
		"maxTries":          3.0,
		"state":             "failed",
		"error":             `load: relation "orders" does not exist`,
		"logicalDate":       "2026-01-02T00:00:00Z", // 01:00 CET, sent in UTC
		"dataIntervalStart": "2026-01-01T00:00:00Z",
		"dataIntervalEnd":   "2026-01-02T00:00:00Z",
		"at":                "2026-01-02T00:07:12.5Z",
		"logTail":           ev.LogTail,
		"url":               ev.URL,
		"key":               "evt-42/task_failure",
	}
	if !reflect.DeepEqual(doc, want) {
		t.Errorf("body fields:\n got %v\nwant %v", doc, want)
	}
	// The URL's "&" is not HTML-escaped in the raw body.
	if !strings.Contains(string(r.body), "try=3&view=log") {
		t.Errorf("body escapes the URL: %s", r.body)
	}

	// A Go receiver decodes the document into WebhookPayload.
	var p notify.WebhookPayload
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatal(err)
	}
	if wantP := notify.NewWebhookPayload(ev, 0); !reflect.DeepEqual(p, wantP) {
		t.Errorf("decoded payload = %+v, want %+v", p, wantP)
	}
}

func TestWebhookRunEventLeavesOutUnknownTimes(t *testing.T) {
	srv, reqs := httpSink(t, http.StatusOK, "ok")
	ev := task.Event{
		Kind:  task.EventRunFailure,
		DAGID: "orders_etl", RunID: "manual__1", State: "failed",
		At:  time.Date(2026, 1, 2, 0, 7, 0, 0, time.UTC),
		Key: "run-1",
	}
	if err := notify.Webhook(srv.URL)(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(recv(t, reqs, "the request").body, &doc); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range doc {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	wantKeys := []string{"at", "dagId", "error", "key", "kind", "logTail", "maxTries", "runId", "state", "taskId", "try", "url"}
	if !slices.Equal(keys, wantKeys) {
		t.Errorf("fields = %v, want %v", keys, wantKeys)
	}
	if doc["taskId"] != "" || doc["try"] != 0.0 || doc["kind"] != "run_failure" {
		t.Errorf("run event body = %v", doc)
	}
}

func TestWebhookReadsTheTokenAtEachCall(t *testing.T) {
	srv, reqs := httpSink(t, http.StatusOK, "")
	token := writeFile(t, "token", "first\n")
	cb := notify.Webhook(srv.URL, notify.WithBearerTokenFile(token), notify.WithHeaderFile("X-Api-Key", token))
	for _, want := range []string{"first", "second"} {
		if err := os.WriteFile(token, []byte(want+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := cb(context.Background(), failureEvent()); err != nil {
			t.Fatal(err)
		}
		r := recv(t, reqs, "the request")
		if got := r.header.Get("Authorization"); got != "Bearer "+want {
			t.Errorf("Authorization = %q, want %q", got, "Bearer "+want)
		}
		if got := r.header.Get("X-Api-Key"); got != want {
			t.Errorf("X-Api-Key = %q, want %q", got, want)
		}
	}
}

func TestWebhookLogTailKeepsTheEnd(t *testing.T) {
	srv, reqs := httpSink(t, http.StatusOK, "")
	ev := failureEvent()
	// 2-byte runes: a cut at an odd offset falls inside one.
	ev.LogTail = strings.Repeat("é", 5000) + "\nTHE END\n"
	ev.Error = strings.Repeat("e", 1<<20)

	for _, tc := range []struct {
		name    string
		opts    []notify.Option
		max     int
		maxBody int
	}{
		{"default", nil, notify.DefaultLogTailLimit, notify.DefaultLogTailLimit + notify.ErrorLimit + 1024},
		{"limit 101", []notify.Option{notify.WithLogTailLimit(101)}, 101, 101 + notify.ErrorLimit + 1024},
		{"no log", []notify.Option{notify.WithLogTailLimit(-1)}, 0, notify.ErrorLimit + 1024},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := notify.Webhook(srv.URL, tc.opts...)(context.Background(), ev); err != nil {
				t.Fatal(err)
			}
			r := recv(t, reqs, "the request")
			if len(r.body) > tc.maxBody {
				t.Errorf("body is %d bytes, want at most %d", len(r.body), tc.maxBody)
			}
			var p notify.WebhookPayload
			if err := json.Unmarshal(r.body, &p); err != nil {
				t.Fatal(err)
			}
			if len(p.LogTail) > tc.max || len(p.LogTail) < tc.max-1 {
				t.Errorf("logTail is %d bytes, want %d (or one less, at a rune boundary)", len(p.LogTail), tc.max)
			}
			if !strings.HasSuffix(ev.LogTail, p.LogTail) || !utf8.ValidString(p.LogTail) {
				t.Errorf("logTail is not a valid end of the log: %q", p.LogTail)
			}
			if tc.max > 0 && !strings.HasSuffix(p.LogTail, "\nTHE END\n") {
				t.Errorf("logTail lost the log's end: ...%q", p.LogTail[max(0, len(p.LogTail)-20):])
			}
			if !p.LogTailTruncated {
				t.Error("logTailTruncated = false, want true")
			}
			if len(p.Error) != notify.ErrorLimit || !strings.HasSuffix(p.Error, "…") {
				t.Errorf("error is %d bytes ending %q, want %d ending with …", len(p.Error), p.Error[len(p.Error)-5:], notify.ErrorLimit)
			}
		})
	}
}

func TestWebhookNon2xxIsAnError(t *testing.T) {
	body := strings.Repeat("A", 200) + strings.Repeat("B", 800)
	srv, reqs := httpSink(t, http.StatusServiceUnavailable, body)
	token := writeFile(t, "token", "s3cret-token")
	err := notify.Webhook(srv.URL+"/hooks/SECRETPATH?sig=SECRETSIG", notify.WithBearerTokenFile(token))(context.Background(), failureEvent())
	recv(t, reqs, "the request")
	if err == nil {
		t.Fatal("a 503 answer is not an error")
	}
	var he *notify.HTTPError
	if !errors.As(err, &he) {
		t.Fatalf("error %v does not wrap an *HTTPError", err)
	}
	if he.StatusCode != http.StatusServiceUnavailable || he.Body != strings.Repeat("A", 200) {
		t.Errorf("HTTPError = %d %q", he.StatusCode, he.Body)
	}
	msg := err.Error()
	host := strings.TrimPrefix(srv.URL, "http://")
	for _, want := range []string{"notify: webhook to " + host, "503 Service Unavailable", strings.Repeat("A", 200)} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not name %q", msg, want)
		}
	}
	for _, secret := range []string{"SECRETPATH", "SECRETSIG", "s3cret-token", "B"} {
		if strings.Contains(msg, secret) {
			t.Errorf("error %q shows %q", msg, secret)
		}
	}
}

func TestWebhookHonoursTheDeadline(t *testing.T) {
	srv, arrived := stallingHTTPSink(t)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- notify.Webhook(srv.URL+"/hooks/SECRETPATH")(ctx, failureEvent()) }()
	recv(t, arrived, "the request")
	err := recv(t, done, "the webhook to give up at its deadline")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error = %v, want context.DeadlineExceeded", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "notify: webhook to 127.0.0.1:") || strings.Contains(msg, "SECRETPATH") {
		t.Errorf("error %q: want the host, not the path", msg)
	}
}

func TestWebhookHonoursCancel(t *testing.T) {
	srv, arrived := stallingHTTPSink(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- notify.Webhook(srv.URL)(ctx, failureEvent()) }()
	recv(t, arrived, "the request")
	cancel()
	if err := recv(t, done, "the webhook to give up when cancelled"); !errors.Is(err, context.Canceled) {
		t.Fatalf("error = %v, want context.Canceled", err)
	}
}

func TestWebhookConfigErrors(t *testing.T) {
	// A port nothing listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	empty := writeFile(t, "empty", "\n")
	ev := failureEvent()
	for _, tc := range []struct {
		name      string
		cb        task.Callback
		want      []string
		notWanted []string
	}{
		{"no URL", notify.Webhook(""), []string{"notify: webhook: no URL"}, nil},
		{"missing URL file", notify.Webhook("", notify.WithURLFile("/nonexistent/url")), []string{"notify: webhook: reading the URL", "/nonexistent/url"}, nil},
		{"not http", notify.Webhook("ftp://user:PASSWORD@example.com/SECRET"), []string{"not an http(s) URL"}, []string{"PASSWORD", "SECRET"}},
		{"unparsable", notify.Webhook("http://example.com/%zzSECRET"), []string{"not an http(s) URL"}, []string{"SECRET", "%zz"}},
		{"refused", notify.Webhook("http://user:PASSWORD@" + closed + "/SECRET"), []string{"notify: webhook to " + closed, "refused"}, []string{"PASSWORD", "SECRET"}},
		{"empty token file", notify.Webhook("http://"+closed, notify.WithBearerTokenFile(empty)), []string{"reading header Authorization", "is empty"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cb(context.Background(), ev)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			for _, w := range tc.notWanted {
				if strings.Contains(err.Error(), w) {
					t.Errorf("error %q shows %q", err, w)
				}
			}
		})
	}
}
