package runner_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/trellisdag/trellis/runner"
)

// logLines is a runner's stderr: its JSON log lines go to a channel, and all
// of it is kept for failure messages.
type logLines struct {
	mu    sync.Mutex
	all   bytes.Buffer
	part  []byte
	lines chan map[string]any
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all.Write(p)
	l.part = append(l.part, p...)
	for {
		i := bytes.IndexByte(l.part, '\n')
		if i < 0 {
			return len(p), nil
		}
		var m map[string]any
		if json.Unmarshal(l.part[:i], &m) == nil {
			select {
			case l.lines <- m:
			default: // nobody waits for this many lines
			}
		}
		l.part = l.part[i+1:]
	}
}

func (l *logLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.all.String()
}

// inProcessServe is `serve --listen 127.0.0.1:0` run by a runner in this
// process, stopped (and required to exit 0) when the test ends.
type inProcessServe struct {
	t    *testing.T
	addr string
	log  *logLines
	code chan int
}

func startServeInProcess(t *testing.T, args ...string) *inProcessServe {
	t.Helper()
	s := &inProcessServe{t: t, log: &logLines{lines: make(chan map[string]any, 256)}, code: make(chan int, 1)}
	r := runner.New(runner.Config{Stdout: io.Discard, Stderr: s.log, Getenv: func(string) string { return "" }}, testDAGs()...)
	ctx, cancel := context.WithCancel(context.Background())
	args = append([]string{"serve", "--listen", "127.0.0.1:0", "--db", filepath.Join(t.TempDir(), "trellis.db")}, args...)
	go func() { s.code <- r.Run(ctx, args) }()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-s.code:
			if code != 0 {
				t.Errorf("serve exited %d after its context ended:\n%s", code, s.log)
			}
		case <-time.After(60 * time.Second):
			t.Errorf("serve did not stop within 60 s of its context ending:\n%s", s.log)
		}
	})
	m := s.wait("listening")
	s.addr = strings.TrimPrefix(m["addr"].(string), "http://")
	s.wait("scheduler started") // the API handler is in place
	return s
}

// wait returns the first log line (from now) with the message, failing the
// test if serve exits or 60 s pass first.
func (s *inProcessServe) wait(msg string) map[string]any {
	s.t.Helper()
	bound := time.After(60 * time.Second)
	for {
		select {
		case m := <-s.log.lines:
			if m["msg"] == msg {
				return m
			}
		case code := <-s.code:
			s.t.Fatalf("serve exited %d before logging %q:\n%s", code, msg, s.log)
		case <-bound:
			s.t.Fatalf("serve did not log %q within 60 s:\n%s", msg, s.log)
		}
	}
}

// cutOff sends what to serve on a new connection and stalls, and returns what
// serve answered and how long after the dial it closed the connection. The
// test fails if serve keeps the connection beyond bound.
func (s *inProcessServe) cutOff(what string, bound time.Duration) (string, time.Duration) {
	s.t.Helper()
	began := time.Now() // before the dial: serve's deadlines start after it
	conn, err := net.Dial("tcp", s.addr)
	if err != nil {
		s.t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, what); err != nil {
		s.t.Fatal(err)
	}
	conn.SetReadDeadline(began.Add(bound))
	got, err := io.ReadAll(conn) // until serve closes the connection
	took := time.Since(began)
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		s.t.Fatalf("serve still held the stalled connection after %v (read %q)", bound, got)
	case err != nil && !errors.Is(err, syscall.ECONNRESET):
		s.t.Fatalf("reading the stalled connection: %v", err)
	}
	return string(got), took
}

// TestServeHTTPTimeouts: a client that stalls while sending the headers of a
// request, or its body, to the public login route is cut off once
// --http-read-header-timeout, or --http-read-timeout, has passed, and not
// before; the defaults are in --help.
func TestServeHTTPTimeouts(t *testing.T) {
	t.Parallel()
	const header, read = 300 * time.Millisecond, 2 * time.Second
	tokens := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(tokens, []byte("s3cret-token-0123456789 operator alice\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServeInProcess(t, "--tokens", tokens,
		"--http-read-header-timeout", header.String(), "--http-read-timeout", read.String())

	// Headers, then nothing.
	got, took := s.cutOff("POST /api/v1/session HTTP/1.1\r\nHost: trellis\r\nContent-Type: application/json\r\n", 5*time.Second)
	if took < header || took >= read {
		t.Errorf("stalled headers: connection closed after %v, want from --http-read-header-timeout %v to --http-read-timeout %v", took, header, read)
	}
	if got != "" {
		t.Errorf("stalled headers: serve answered %q, want the connection closed", got)
	}

	// Headers announcing 100 bytes of body, 12 of them, then nothing.
	body := `{"token":"s3`
	got, took = s.cutOff("POST /api/v1/session HTTP/1.1\r\nHost: trellis\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"+body, read+5*time.Second)
	if took < read {
		t.Errorf("stalled body: connection closed after %v, before --http-read-timeout %v", took, read)
	}
	if got != "" && !strings.HasPrefix(got, "HTTP/1.1 4") { // today a 400 naming the i/o timeout
		t.Errorf("stalled body: serve answered %q, want a 4xx or nothing", got)
	}
	if strings.Contains(got, "alice") || strings.Contains(got, "Set-Cookie") {
		t.Errorf("stalled body: a half-sent token signed in: %q", got)
	}
}

// TestServeHTTPMaxBody: with --http-max-body 1024 the login route refuses a
// 2 KiB body with 413 and a message that names the limit, and takes a body
// under it.
func TestServeHTTPMaxBody(t *testing.T) {
	t.Parallel()
	const token = "s3cret-token-0123456789"
	tokens := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(tokens, []byte(token+" operator alice\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServeInProcess(t, "--tokens", tokens, "--http-max-body", "1024")
	login := func(body string) (int, string) {
		t.Helper()
		res, err := http.Post("http://"+s.addr+"/api/v1/session", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return res.StatusCode, string(b)
	}
	big := fmt.Sprintf(`{"token":%q}`, token+strings.Repeat(" ", 2048))
	if code, body := login(big); code != http.StatusRequestEntityTooLarge ||
		!strings.Contains(body, `"code":"payload_too_large"`) || !strings.Contains(body, "request body is larger than 1024 bytes") {
		t.Errorf("login with a %d-byte body = %d %s, want 413 naming the limit of 1024 bytes", len(big), code, body)
	}
	padded := fmt.Sprintf(`{"token":%q}`, token+strings.Repeat(" ", 900)) // the token is trimmed
	if code, body := login(padded); code != http.StatusOK || !strings.Contains(body, "alice") {
		t.Errorf("login with a %d-byte body = %d %s, want 200 as alice", len(padded), code, body)
	}
}

// TestServeHTTPFlags: the --http-* flags show their defaults in --help, and a
// bad value is a usage error (exit 2) that names the flag, before anything is
// opened or listened on.
func TestServeHTTPFlags(t *testing.T) {
	t.Parallel()
	c := setup(t)
	if code := c.run("serve", "--help"); code != 0 {
		t.Fatalf("serve --help: exit %d\n%s", code, &c.stderr)
	}
	for _, want := range []string{
		"--http-read-header-timeout string", `(default "10s")`,
		"--http-read-timeout string", `(default "30s")`,
		"--http-write-timeout string", `(default "2m0s")`,
		"--http-idle-timeout string", `(default "2m0s")`,
		"--http-max-body int", "(default 65536)",
	} {
		if !strings.Contains(c.stdout.String(), want) {
			t.Errorf("serve --help lacks %q:\n%s", want, &c.stdout)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--http-read-timeout", "banana"}, `--http-read-timeout "banana": want a positive duration`},
		{[]string{"--http-write-timeout", "0s"}, `--http-write-timeout "0s": want a positive duration`},
		{[]string{"--http-idle-timeout", "-1m"}, `--http-idle-timeout "-1m": want a positive duration`},
		{[]string{"--http-read-header-timeout", "1m"}, "--http-read-header-timeout 1m0s is longer than --http-read-timeout 30s"},
		{[]string{"--http-max-body", "0"}, "--http-max-body 0: must be a positive number of bytes"},
		{[]string{"--http-max-body", "lots"}, `invalid value "lots" for flag -http-max-body`},
	} {
		if code := c.run(append([]string{"serve", "--listen", "127.0.0.1:0"}, tc.args...)...); code != 2 || !strings.Contains(c.stderr.String(), tc.want) {
			t.Errorf("serve %s: exit %d %q, want 2 and %q", strings.Join(tc.args, " "), code, &c.stderr, tc.want)
		}
		if fileExists(c.db) {
			t.Errorf("serve %s: the database was created", strings.Join(tc.args, " "))
		}
	}
}
