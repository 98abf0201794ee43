package notify_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trellisdag/trellis/notify"
	"github.com/trellisdag/trellis/task"
)

// parsed is a message as a mail client reads it.
type parsed struct {
	header mail.Header
	body   string
}

func parseMail(t *testing.T, data []byte) parsed {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("not a message: %v\n%s", err, data)
	}
	if cte := msg.Header.Get("Content-Transfer-Encoding"); cte != "quoted-printable" {
		t.Fatalf("Content-Transfer-Encoding = %q", cte)
	}
	body, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if err != nil {
		t.Fatalf("body: %v", err)
	}
	return parsed{msg.Header, string(body)}
}

func TestEmailDelivers(t *testing.T) {
	addr, msgs := smtpSink(t, smtpOptions{})
	ev := failureEvent()
	long := strings.Repeat("x", 2000) // longer than a mail line may be
	ev.LogTail = "connecting\n.a line that starts with a dot\n" + long + "\nnaïve ERROR\n"
	cb := notify.Email(notify.SMTPConfig{
		Addr:      addr,
		From:      "Trellis <trellis@example.com>",
		To:        []string{"Data On-call <oncall@example.com>", "lead@example.com"},
		LocalName: "runner-1.example.com",
	})
	if err := cb(context.Background(), ev); err != nil {
		t.Fatalf("Email: %v", err)
	}
	m := recv(t, msgs, "the message")
	if m.helo != "runner-1.example.com" {
		t.Errorf("EHLO %q", m.helo)
	}
	if !strings.HasPrefix(m.from, "FROM:<trellis@example.com>") {
		t.Errorf("MAIL %q", m.from)
	}
	if want := []string{"TO:<oncall@example.com>", "TO:<lead@example.com>"}; !slices.Equal(m.to, want) {
		t.Errorf("RCPT %q, want %q", m.to, want)
	}

	p := parseMail(t, m.data)
	from, err := p.header.AddressList("From")
	if err != nil || len(from) != 1 || from[0].Address != "trellis@example.com" || from[0].Name != "Trellis" {
		t.Errorf("From = %v (%v)", from, err)
	}
	to, err := p.header.AddressList("To")
	if err != nil || len(to) != 2 || to[0].Address != "oncall@example.com" || to[0].Name != "Data On-call" || to[1].Address != "lead@example.com" {
		t.Errorf("To = %v (%v)", to, err)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(p.header.Get("Subject"))
	if err != nil || subject != "[trellis] orders_etl.load failed" {
		t.Errorf("Subject = %q (%v)", subject, err)
	}
	msgID := p.header.Get("Message-ID")
	if !regexp.MustCompile(`^<trellis\.[0-9a-f]{32}@example\.com>$`).MatchString(msgID) {
		t.Errorf("Message-ID = %q", msgID)
	}
	if date, err := p.header.Date(); err != nil || !date.Equal(ev.At.Truncate(time.Second)) {
		t.Errorf("Date = %v (%v), want %v", date, err, ev.At)
	}
	for name, want := range map[string]string{
		"Auto-Submitted":      "auto-generated",
		"X-Trellis-Event-Key": "evt-42/task_failure",
		"Content-Type":        "text/plain; charset=utf-8",
		"MIME-Version":        "1.0",
	} {
		if got := p.header.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	for _, want := range []string{
		"Task orders_etl.load failed (try 3/3) in run scheduled__2026-01-02T00:00:00Z\n\n",
		"Try:           3 of 3\n",
		"Logical date:  2026-01-02T00:00:00Z\n",
		"Data interval: 2026-01-01T00:00:00Z – 2026-01-02T00:00:00Z\n",
		"Link:          " + ev.URL + "\n",
		"Event key:     evt-42/task_failure\n",
		"\nError:\n" + ev.Error + "\n",
		"\nLog tail:\n" + ev.LogTail, // the dot line and the long line intact
	} {
		if !strings.Contains(p.body, want) {
			t.Errorf("body does not hold %q:\n%s", want, p.body)
		}
	}
	if !strings.HasSuffix(p.body, ev.LogTail) {
		t.Errorf("body does not end with the log tail")
	}

	// A second delivery of the event has the same Message-ID; another
	// event's differs.
	if err := cb(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if again := parseMail(t, recv(t, msgs, "the message again").data).header.Get("Message-ID"); again != msgID {
		t.Errorf("redelivery Message-ID = %q, want %q", again, msgID)
	}
	ev.Key = "evt-43/task_failure"
	if err := cb(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if other := parseMail(t, recv(t, msgs, "another message").data).header.Get("Message-ID"); other == msgID {
		t.Errorf("another event has the same Message-ID %q", other)
	}
}

func TestEmailRunEventAndLimits(t *testing.T) {
	addr, msgs := smtpSink(t, smtpOptions{})
	ev := task.Event{
		Kind: task.EventRunFailure, DAGID: "orders_etl", RunID: "manual__1", State: "failed",
		Error: "2 tasks failed", Key: "run-1",
	}
	cb := notify.Email(notify.SMTPConfig{Addr: addr, From: "trellis@example.com", To: []string{"oncall@example.com"}, SubjectPrefix: "[prod]"})
	if err := cb(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	p := parseMail(t, recv(t, msgs, "the message").data)
	if s := p.header.Get("Subject"); s != "[prod] orders_etl run manual__1 failed" {
		t.Errorf("Subject = %q", s)
	}
	if strings.Contains(p.body, "Task:") || strings.Contains(p.body, "Log tail:") {
		t.Errorf("a run's message has task fields:\n%s", p.body)
	}

	ev = failureEvent()
	ev.LogTail = strings.Repeat("early\n", 1000) + "THE END\n"
	cb = notify.Email(notify.SMTPConfig{Addr: addr, From: "trellis@example.com", To: []string{"oncall@example.com"}, LogTailLimit: 100})
	if err := cb(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	p = parseMail(t, recv(t, msgs, "the message").data)
	_, logPart, _ := strings.Cut(p.body, "\nLog tail:\n…\n")
	if !strings.HasSuffix(logPart, "THE END\n") || len(logPart) > 100 {
		t.Errorf("log part is %d bytes: %q", len(logPart), logPart)
	}
}

func TestEmailAuthPlain(t *testing.T) {
	addr, msgs := smtpSink(t, smtpOptions{auth: true})
	pw := writeFile(t, "password", "hunter2\n")
	cb := notify.Email(notify.SMTPConfig{
		Addr: addr, From: "trellis@example.com", To: []string{"oncall@example.com"},
		Username: "trellis", PasswordFile: pw,
	})
	if err := cb(context.Background(), failureEvent()); err != nil {
		t.Fatalf("Email: %v", err)
	}
	m := recv(t, msgs, "the message")
	want := "PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00trellis\x00hunter2"))
	if m.auth != want {
		t.Errorf("AUTH %q, want %q", m.auth, want)
	}
}

func TestEmailUsesSTARTTLSWhenOffered(t *testing.T) {
	serverTLS, clientTLS := selfSigned(t)
	addr, msgs := smtpSink(t, smtpOptions{auth: true, tls: serverTLS})
	pw := writeFile(t, "password", "hunter2")
	cb := notify.Email(notify.SMTPConfig{
		Addr: addr, From: "trellis@example.com", To: []string{"oncall@example.com"},
		Username: "trellis", PasswordFile: pw,
		RequireTLS: true,
		TLSConfig:  clientTLS, // its ServerName is filled in from Addr
	})
	if err := cb(context.Background(), failureEvent()); err != nil {
		t.Fatalf("Email: %v", err)
	}
	m := recv(t, msgs, "the message")
	if !m.tls || m.auth == "" {
		t.Errorf("message sent with TLS %v, AUTH %q: want both", m.tls, m.auth)
	}
	if s := parseMail(t, m.data).header.Get("Subject"); s != "[trellis] orders_etl.load failed" {
		t.Errorf("Subject = %q", s)
	}

	// A client that does not trust the server's certificate does not send.
	cb = notify.Email(notify.SMTPConfig{Addr: addr, From: "trellis@example.com", To: []string{"oncall@example.com"}})
	if err := cb(context.Background(), failureEvent()); err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Errorf("error = %v, want a STARTTLS error", err)
	}
}

func TestEmailRefusesWhatItCannotDoSafely(t *testing.T) {
	addr, msgs := smtpSink(t, smtpOptions{}) // offers neither STARTTLS nor AUTH
	pw := writeFile(t, "password", "hunter2")
	for _, tc := range []struct {
		name string
		cfg  notify.SMTPConfig
		want string
	}{
		{"RequireTLS", notify.SMTPConfig{RequireTLS: true}, "STARTTLS: not offered by the server, and RequireTLS is set"},
		{"AUTH not offered", notify.SMTPConfig{Username: "trellis", PasswordFile: pw}, "AUTH: not offered by the server"},
		{"missing password file", notify.SMTPConfig{Username: "trellis", PasswordFile: "/nonexistent/pw"}, "reading the password"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Addr, cfg.From, cfg.To = addr, "trellis@example.com", []string{"oncall@example.com"}
			err := notify.Email(cfg)(context.Background(), failureEvent())
			if err == nil || !strings.Contains(err.Error(), "notify: email via "+addr+": "+tc.want) {
				t.Fatalf("error = %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
	// None got as far as DATA.
	select {
	case m := <-msgs:
		t.Errorf("a message was sent: %s", m.data)
	default:
	}
}

func TestEmailHonoursTheDeadline(t *testing.T) {
	addr, arrived := stallingListener(t)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- notify.Email(notify.SMTPConfig{Addr: addr, From: "trellis@example.com", To: []string{"oncall@example.com"}})(ctx, failureEvent())
	}()
	recv(t, arrived, "the connection")
	err := recv(t, done, "the e-mail to give up at its deadline")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error = %v, want context.DeadlineExceeded", err)
	}
	if !strings.Contains(err.Error(), "notify: email via "+addr+": greeting") {
		t.Errorf("error %q does not name the server and the step", err)
	}
}

func TestEmailConfigErrors(t *testing.T) {
	ok := notify.SMTPConfig{Addr: "127.0.0.1:25", From: "trellis@example.com", To: []string{"oncall@example.com"}}
	for _, tc := range []struct {
		name string
		edit func(*notify.SMTPConfig)
		want string
	}{
		{"no port", func(c *notify.SMTPConfig) { c.Addr = "smtp.example.com" }, `Addr "smtp.example.com" is not host:port`},
		{"bad From", func(c *notify.SMTPConfig) { c.From = "not an address" }, `From "not an address"`},
		{"no To", func(c *notify.SMTPConfig) { c.To = nil }, "no recipient"},
		{"bad To", func(c *notify.SMTPConfig) { c.To = []string{"oncall@example.com", "nope"} }, `To "nope"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ok
			tc.edit(&cfg)
			err := notify.Email(cfg)(context.Background(), failureEvent())
			if err == nil || !strings.HasPrefix(err.Error(), "notify: email: ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want %q", err, tc.want)
			}
		})
	}
}
