package notify_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trellisdag/trellis/task"
)

// bound is how long a test waits for something that should happen at once.
const bound = 10 * time.Second

// recv waits, at most bound, for a value on ch.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(bound):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// failureEvent is a task's last try failing, with every field set. Its
// logical date is in CET, to check that notifiers send UTC.
func failureEvent() task.Event {
	cet := time.FixedZone("CET", 3600)
	return task.Event{
		Kind:              task.EventTaskFailure,
		DAGID:             "orders_etl",
		RunID:             "scheduled__2026-01-02T00:00:00Z",
		TaskID:            "load",
		Try:               3,
		MaxTries:          3,
		State:             "failed",
		Error:             `load: relation "orders" does not exist`,
		LogicalDate:       time.Date(2026, 1, 2, 1, 0, 0, 0, cet),
		DataIntervalStart: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		DataIntervalEnd:   time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC),
		At:                time.Date(2026, 1, 2, 0, 7, 12, 500_000_000, time.UTC),
		LogTail:           "connecting\nloading 1200 rows\nERROR: relation \"orders\" does not exist\n",
		URL:               "https://trellis.example.com/dags/orders_etl/runs/scheduled__2026-01-02T00:00:00Z/tasks/load?try=3&view=log",
		Key:               "evt-42/task_failure",
	}
}

// request is what an HTTP sink received.
type request struct {
	method, path string
	header       http.Header
	body         []byte
}

// httpSink starts an HTTP server on 127.0.0.1 that records each request on
// the returned channel and answers status and body.
func httpSink(t *testing.T, status int, body string) (*httptest.Server, <-chan request) {
	t.Helper()
	ch := make(chan request, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("sink: reading the body: %v", err)
		}
		ch <- request{method: r.Method, path: r.URL.Path, header: r.Header.Clone(), body: b}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, ch
}

// stallingHTTPSink starts an HTTP server that signals each request's arrival
// and never answers it: it waits until the client goes away (or the test
// ends).
func stallingHTTPSink(t *testing.T) (*httptest.Server, <-chan struct{}) {
	t.Helper()
	arrived := make(chan struct{}, 16)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs first: frees the handlers
	return srv, arrived
}

// writeFile writes a file in the test's temporary directory.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// smtpMail is what the SMTP sink received in one transaction.
type smtpMail struct {
	helo, auth, from string
	to               []string
	data             []byte
	tls              bool // received after STARTTLS
}

// smtpOptions say what the SMTP sink offers besides the basics.
type smtpOptions struct {
	auth bool        // AUTH PLAIN
	tls  *tls.Config // STARTTLS, with this server config
}

// smtpSink starts a minimal SMTP server on 127.0.0.1 (EHLO, MAIL, RCPT,
// DATA, RSET, NOOP, QUIT; AUTH PLAIN and STARTTLS only as opts say) and
// returns its address and the channel of the messages it accepted.
func smtpSink(t *testing.T, opts smtpOptions) (string, <-chan smtpMail) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan smtpMail, 16)
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	t.Cleanup(func() { ln.Close() }) // runs first: ends the accept loop
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				serveSMTP(c, opts, ch)
			}()
		}
	}()
	return ln.Addr().String(), ch
}

func serveSMTP(c net.Conn, opts smtpOptions, ch chan<- smtpMail) {
	defer func() { c.Close() }()
	_ = c.SetDeadline(time.Now().Add(bound))
	tp := textproto.NewConn(c)
	inTLS := false
	reply := func(lines ...string) {
		for _, l := range lines {
			if err := tp.PrintfLine("%s", l); err != nil {
				return
			}
		}
	}
	reply("220 sink.test ESMTP")
	var m smtpMail
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO":
			m.helo = arg
			ext := []string{"250-sink.test", "250-8BITMIME"}
			if opts.tls != nil && !inTLS {
				ext = append(ext, "250-STARTTLS")
			}
			if opts.auth {
				ext = append(ext, "250-AUTH PLAIN")
			}
			ext = append(ext, "250 SIZE 1048576")
			reply(ext...)
		case "STARTTLS":
			if opts.tls == nil || inTLS {
				reply("502 5.5.2 Command not recognized")
				continue
			}
			reply("220 2.0.0 Ready to start TLS")
			tc := tls.Server(c, opts.tls)
			if err := tc.Handshake(); err != nil {
				return
			}
			c, tp, inTLS, m = tc, textproto.NewConn(tc), true, smtpMail{}
		case "AUTH":
			m.auth = arg
			reply("235 2.7.0 Authentication successful")
		case "MAIL":
			m.from = arg
			reply("250 2.1.0 OK")
		case "RCPT":
			m.to = append(m.to, arg)
			reply("250 2.1.5 OK")
		case "DATA":
			reply("354 End data with <CR><LF>.<CR><LF>")
			data, err := tp.ReadDotBytes()
			if err != nil {
				return
			}
			m.data, m.tls = data, inTLS
			ch <- m
			m = smtpMail{helo: m.helo, auth: m.auth}
			reply("250 2.0.0 OK: queued")
		case "RSET":
			m = smtpMail{helo: m.helo, auth: m.auth}
			reply("250 2.0.0 OK")
		case "NOOP":
			reply("250 2.0.0 OK")
		case "QUIT":
			reply("221 2.0.0 Bye")
			return
		default:
			reply("502 5.5.2 Command not recognized")
		}
	}
}

// stallingListener accepts connections on 127.0.0.1, signals each, and never
// writes a byte (an SMTP server that never greets).
func stallingListener(t *testing.T) (string, <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	arrived := make(chan struct{}, 16)
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			arrived <- struct{}{}
		}
	}()
	return ln.Addr().String(), arrived
}

// selfSigned makes a certificate for 127.0.0.1 and returns the server's TLS
// config and a client's that trusts it.
func selfSigned(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "sink.test"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}},
		&tls.Config{RootCAs: pool}
}
